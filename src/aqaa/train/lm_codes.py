"""LM-sampled stand-ins for the vocoder's training codes.

The vocoder's flow learns from the tokenizer's codes of real recordings, but at answer time it
reads codes that the LM *sampled*: near the truth, yet not it. This module gives every answer clip
of a corpus split one alternative code sequence drawn the way the engine draws them: the LM reads
the SFT example of the clip's turn (speech mode, with its history) teacher-forced, and at every
audio position a code is sampled from its prediction given the *true* prefix, within the
position's codebook (linguistic or semantic), at the engine's audio temperature, top-k and top-p.
`aqaa train vocoder --code-noise P --noise-lm DIR` then swaps each code for its stand-in with
probability P (`aqaa.train.vocoder.corrupt_codes`): noise shaped like the LM's own errors rather
than uniform.

The samples are one draw per position given the true past, not a free-running generation: a
free run drifts away from the recording, and then no target mel exists for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from aqaa.engine.sampling import SamplingConfig, choose_rows
from aqaa.lm.data import load_items
from aqaa.lm.format import KIND_AUDIO, FormatConfig, build_example
from aqaa.lm.model import load_checkpoint
from aqaa.tokenizer import ids


@torch.no_grad()
def sample_lm_codes(
    lm: str | Path,
    corpus: str | Path,
    split: str = "train",
    sampling: SamplingConfig | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """``{clip id: codes}`` for every answer clip of ``corpus``'s ``split`` shard, ids as the
    vocoder cache names them (``item/turn/clip``), each the same length as the clip's codes."""
    from tqdm import tqdm

    sampling = sampling or SamplingConfig()
    model, vocab = load_checkpoint(lm)
    model.eval()
    fmt = FormatConfig()
    max_len = int(model.config.max_position_embeddings)
    gen = torch.Generator().manual_seed(sampling.seed)
    lo, hi = vocab.audio_base, vocab.audio_base + ids.LINGUISTIC_CODES  # linguistic id range
    out: dict[str, np.ndarray] = {}
    items = load_items(corpus, split)
    for item in tqdm(items, desc="LM codes", disable=not progress):
        for k, turn in enumerate(item.turns):
            if not turn.answer_clips or not turn.answer_text:
                continue
            chats = [t.chat(with_audio=True) for t in item.turns[: k + 1]]
            ex = build_example(vocab, chats, "speech", fmt)
            if len(ex) > max_len:  # a long history: the turn alone
                ex = build_example(vocab, chats[-1:], "speech", fmt)
            if len(ex) > max_len:
                continue
            seq = torch.tensor(ex.ids)
            kinds = zip(ex.ids, ex.kinds, strict=True)
            pos = [i for i, (t, kd) in enumerate(kinds) if kd == KIND_AUDIO and vocab.is_audio(t)]
            logits = model(seq[None]).logits[0, torch.tensor(pos) - 1]  # predictions of pos
            truth = seq[pos]
            ling = truth < hi
            ling_pick = choose_rows(logits[:, lo:hi], sampling.audio_temperature,
                                    sampling.top_k, sampling.top_p, gen) + lo  # fmt: skip
            sem_pick = choose_rows(logits[:, hi : vocab.size], sampling.audio_temperature,
                                   sampling.top_k, sampling.top_p, gen) + hi  # fmt: skip
            codes = (torch.where(ling, ling_pick, sem_pick) - vocab.audio_base).numpy()
            start = 0
            for c, clip in enumerate(turn.answer_clips):
                n = len(clip.codes)
                out[f"{item.id}/{k}/{c}"] = codes[start : start + n].astype(np.int64)
                start += n
            if start != len(codes):
                raise RuntimeError(f"{item.id}/{k}: {len(codes)} audio positions for {start} codes")
    return out


def save_codes(codes: dict[str, np.ndarray], path: Path) -> None:
    """Atomically write ``codes`` as an ``.npz`` (keys are clip ids)."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **codes)
    tmp.replace(path)


def load_codes(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
