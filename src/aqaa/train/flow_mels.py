"""The flow's own log-mel of every cached clip, for fine-tuning the mel vocoder on it.

`aqaa train vocoder --init VOC --flow-steps 0 --mel-input flow` teaches the mel vocoder to turn
what the flow *writes* into the clip's real waveform, instead of the true mel it was trained on.
This is the "fine-tune the vocoder on predicted features" step of Tacotron 2 / HiFi-GAN: the flow
is conditioned on codes that are time-aligned with the audio, so its mel is frame-aligned with the
recording and the waveform losses stay valid. It targets issue 4's DNSMOS gap, which lives between
the flow's mel and the true one (copy synthesis 3.45, resynthesis 3.12 in session 23: the flow
blurs the harmonics across mel bands and the mel vocoder renders that blur faithfully).

Measured (session 24, TRAINING.md): 3,000 such steps from the shipped vocoder left resynthesis
DNSMOS where it was (3.145 vs 3.147 on 40 held-out clips) and made the 50 Hz buzz worse: the
flow's mel does not fix the pitch harmonics, so the vocoder learns their average. The option stays
for a flow that does resolve them.

The mels are sampled once per split with the run's frozen flow (seeded per clip, the flow's
default Euler steps and guidance) into ``OUT/flow_mels/<split>.bin`` (float16, the cache's frame
layout) with a JSON index; a resumed run reuses them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from aqaa.vocoder.model import Vocoder

#: Bumped when the sampling below changes, so stale files are recomputed.
FLOW_MELS_VERSION = 1


def _seed(base: int, clip: int) -> int:
    return base * 100_003 + clip


def compute_flow_mels(
    model: Vocoder,
    clips: object,
    path: Path,
    seed: int = 0,
    progress: bool = True,
) -> np.ndarray:
    """Sample the flow's log-mel of every clip of a `ClipSet` into ``path`` (reused if present).

    Returns a read-only float16 memmap shaped like ``clips.mel``: clip ``i``'s frames sit at the
    same offsets as its true mel, so a crop of one is aligned with a crop of the other.
    """
    from tqdm import tqdm

    from aqaa.train.vocoder import ClipSet

    assert isinstance(clips, ClipSet)
    shape = tuple(clips.mel.shape)
    index = path.with_suffix(".json")
    want = {"version": FLOW_MELS_VERSION, "shape": list(shape), "seed": seed}
    if path.is_file() and index.is_file() and json.loads(index.read_text()) == want:
        return np.memmap(path, np.float16, "r", shape=shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    out = np.memmap(tmp, np.float16, "w+", shape=shape)
    for i in tqdm(range(len(clips)), desc=f"flow mels ({path.stem})", disable=not progress):
        codes, mel, _ = clips.clip(i)
        mo = clips.clips[i][3]
        out[mo : mo + len(mel)] = model.decode_mel(codes, seed=_seed(seed, i)).numpy()
    out.flush()
    del out
    os.replace(tmp, path)
    index.write_text(json.dumps(want) + "\n")
    return np.memmap(path, np.float16, "r", shape=shape)
