"""Train the token-only vocoder (`aqaa train vocoder --data CORPUS --out DIR`).

Data: the token shards ``CORPUS/tokens/{train,valid}.jsonl`` written by ``aqaa data tokenize``;
every assistant clip gives (interleaved codes, 24 kHz audio). On first use the audio is read once
into a cache under ``CORPUS/cache/vocoder-<key>/`` (per split: codes ``int16``, log-mel ``float16``
and waveform ``int16`` as flat memory-mapped arrays plus a JSON index), so training never decodes
audio again. ``G`` whole groups of codes are paired with ``6·G`` mel frames and ``2880·G``
samples (the clip's audio is cropped, or padded with silence, to that length). ``--data a,b``
trains on the assistant clips of several corpora (e.g. a dialogue corpus and an assistant-voice
set from ``aqaa data babble --source assistant``): one cache under the first corpus holds them all.

Two stages in one explicit loop (global step ``0 … flow_steps + mel_steps``):

1. **Flow** (steps ``< flow_steps``): token encoder + flow estimator on random group-aligned crops
   of (codes, mel): flow-matching loss + ``prior_weight`` × MSE(mu, mel). With ``pitch`` the
   encoder's F0 head is trained too (+ ``pitch_weight`` × its loss) and the flow reads the
   harmonic template of the recording's own F0 (:mod:`aqaa.vocoder.pitch`; WORLD F0 per mel frame,
   computed once into ``CORPUS/cache/vocoder-<key>/<split>.f0.bin``).
2. **Mel vocoder** (the remaining ``mel_steps``): ConvNeXt/iSTFT generator on random crops of
   (ground-truth mel, waveform): mel L1 + multi-resolution STFT, and after ``gan_start`` steps of
   this stage least-squares adversarial + feature-matching losses against small multi-period and
   multi-resolution discriminators.

Every ``ckpt_every`` steps the full state (models, optimisers, RNGs, step) is written atomically
(temporary file + ``os.replace``) to ``OUT/checkpoint.pt`` and the current vocoder is exported to
``OUT/vocoder/``; ``--resume`` continues from the checkpoint. Losses go to ``OUT/log.jsonl`` (one
JSON object per logged step), spectrogram plots to ``OUT/plots/``. bf16 autocast is used for the
matrix work when it is faster on this CPU (``bf16="auto"`` measures it: CPUs without AVX512-BF16
or AMX emulate bf16 and are many times slower). Under ``torchrun`` every rank trains on its own
samples and gradients are averaged with ``all_reduce`` (gloo on CPU); rank 0 writes.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from aqaa.data.shards import corpora, shard_tokenizer
from aqaa.precision import use_bf16
from aqaa.tokenizer import ids
from aqaa.vocoder.losses import (
    Discriminators,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    multi_resolution_stft_loss,
    phase_loss,
)
from aqaa.vocoder.mel import MelConfig, fit_frames, mel_spectrogram
from aqaa.vocoder.model import Vocoder, VocoderConfig
from aqaa.vocoder.pitch import pitch_loss
from aqaa.vocoder.tokens import FRAMES_PER_PAIR, LING_PAD, PAIRS_PER_GROUP, regroup

log = logging.getLogger(__name__)

CACHE_VERSION = 1
SPLITS = ("train", "valid")


class DataError(ValueError):
    """The training data directory is missing or unusable (a message for the user)."""


@dataclass
class VocoderTrainConfig:
    data: str
    out: str
    preset: str = "default"  # model size: "default" or "tiny"
    #: start from this vocoder (weights, config, mel statistics) instead of random weights; if it
    #: learnt another tokenizer's codes, its code embeddings start over (`restart_code_embeddings`)
    init: str | None = None
    mel_upsample: int = 1  # the mel vocoder's head frames per mel frame (MelVocoderConfig.upsample)
    mel_phase_advance: bool = False  # MelVocoderConfig.phase_advance (a new mel vocoder only)
    flow_steps: int = 20000
    mel_steps: int = 20000
    max_steps: int | None = None  # stop this run at this global step (continue with --resume)
    batch_size: int = 16
    segment_groups: int = 25  # flow crops: 25 groups = 3 s
    mel_batch_size: int = 8
    mel_segment_frames: int = 32  # vocoder crops: 0.64 s
    lr: float = 3e-4
    mel_lr: float = 2e-4
    warmup: int = 500
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    gan_start: int = 2000  # steps into stage 2 before the discriminators join
    mel_weight: float = 45.0
    stft_weight: float = 2.5
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    #: weight of the phase losses (`aqaa.vocoder.losses.phase_loss`: ip + iaf + gd) in stage 2;
    #: 0 leaves them out of the objective (they are still reported on the validation batches)
    phase_weight: float = 0.0
    #: stage 1: the chance that each pair's linguistic code, and independently its semantic code,
    #: is swapped for a uniformly random one (`corrupt_codes`): robustness to the LM's sampled
    #: codes, which are rougher than the tokenizer's; 0: off. Validation batches stay clean.
    code_noise: float = 0.0
    #: with code_noise: swap codes for this LM's teacher-forced samples (`aqaa.train.lm_codes`,
    #: computed once into OUT/lm_codes.npz) instead of uniformly random ones
    noise_lm: str | None = None
    #: stage 2's input mel: "true" (the clip's own log-mel) or "flow" (the --init vocoder's flow
    #: sampled from the clip's codes, `aqaa.train.flow_mels`: fine-tuning on what the flow writes;
    #: needs flow_steps 0 and an --init vocoder with a trained flow)
    mel_input: str = "true"
    #: give the flow the explicit pitch path (`aqaa.vocoder.pitch`): a new vocoder is built with
    #: it; an --init vocoder without one gains it (its new layers start at zero, so the flow
    #: starts as it was)
    pitch: bool = False
    pitch_weight: float = 1.0  # weight of the F0 head's loss in stage 1 (with pitch)
    log_every: int = 10
    ckpt_every: int = 250
    plot_every: int = 1000
    eval_every: int = 250  # fixed validation batches, also at step 0
    seed: int = 0
    bf16: str = "auto"  # "auto", "on" or "off"
    threads: int | None = None  # torch CPU threads (None: torch's default)
    progress: bool = True

    def check(self) -> None:
        if self.preset not in ("default", "tiny"):
            raise ValueError(f"unknown model preset {self.preset!r}: use 'default' or 'tiny'")
        if self.flow_steps < 0 or self.mel_steps < 0 or self.flow_steps + self.mel_steps == 0:
            raise ValueError("flow_steps and mel_steps must be >= 0 and not both 0")
        if min(self.batch_size, self.segment_groups, self.mel_batch_size) < 1:
            raise ValueError("batch sizes and segment lengths must be positive")
        if self.mel_segment_frames < 4:
            raise ValueError("mel_segment_frames must be at least 4")
        if self.phase_weight < 0:
            raise ValueError(f"phase_weight must be >= 0, got {self.phase_weight}")
        if not 0 <= self.code_noise < 1:
            raise ValueError(f"code_noise must be in [0, 1), got {self.code_noise}")
        if self.noise_lm and self.code_noise == 0:
            raise ValueError("noise_lm needs code_noise > 0 (the chance of a swap)")
        if self.mel_input not in ("true", "flow"):
            raise ValueError(f"mel_input must be 'true' or 'flow', got {self.mel_input!r}")
        if self.mel_input == "flow" and (self.flow_steps > 0 or not self.init):
            raise ValueError(
                "mel_input 'flow' fine-tunes the mel vocoder on a trained flow's output: give "
                "--init VOCODER and --flow-steps 0 (train the flow first)"
            )
        if self.pitch_weight < 0:
            raise ValueError(f"pitch_weight must be >= 0, got {self.pitch_weight}")
        if self.bf16 not in ("auto", "on", "off"):
            raise ValueError(f"bf16 must be auto, on or off, got {self.bf16!r}")
        if min(self.log_every, self.ckpt_every, self.plot_every, self.eval_every) < 1:
            raise ValueError("log, checkpoint and plot intervals must be positive")


# ---------------------------------------------------------------------------------------------
# bf16 on CPU
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Cache: (codes, mel, wav) per clip, memory-mapped
# ---------------------------------------------------------------------------------------------


def _clips(shard: Path) -> list[dict[str, Any]]:
    clips = []
    with shard.open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{shard}:{n} is not valid JSON ({e.msg})") from None
            for ti, turn in enumerate(d.get("turns", [])):
                for ci, c in enumerate(turn.get("answer_clips", [])):
                    if "codes" not in c or "audio" not in c:
                        raise DataError(f"{shard}:{n}: an answer clip lacks 'codes' or 'audio'")
                    clips.append(
                        {
                            "id": f"{d.get('id', n)}/{ti}/{ci}",
                            "codes": c["codes"],
                            "audio": c["audio"],
                        }
                    )
    return clips


def _read_24k(path: Path, rate: int) -> np.ndarray:
    import soundfile as sf
    import soxr

    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != rate:
        x = soxr.resample(x, sr, rate, quality="HQ").astype(np.float32)
    return x


def _cache_key(roots: list[Path], mel: MelConfig) -> str:
    h = hashlib.sha256(json.dumps(dataclasses.asdict(mel), sort_keys=True).encode())
    h.update(str(CACHE_VERSION).encode())
    for k, root in enumerate(roots):
        if k:  # a single corpus keeps the key it had before several were allowed
            h.update(f"+{root.resolve()}".encode())
        for split in SPLITS:
            p = root / "tokens" / f"{split}.jsonl"
            if p.exists():
                st = p.stat()
                h.update(f"{split}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def _shard_roots(data: str | os.PathLike[str]) -> list[Path]:
    """The corpora of ``--data`` (``a,b``), each checked for a train token shard."""
    roots = corpora(data)
    for root in roots:
        if not (root / "tokens" / "train.jsonl").is_file():
            raise DataError(
                f"no token shards in {root}: expected {root}/tokens/train.jsonl "
                f"(make them with `aqaa data tokenize`)"
            )
    return roots


def build_cache(data: str | os.PathLike[str], mel: MelConfig, progress: bool = True) -> Path:
    """Read every assistant clip once into ``CORPUS/cache/vocoder-<key>/`` (reused if present);
    for ``a,b`` the clips of all corpora go into one cache under the first."""
    from tqdm import tqdm

    roots = _shard_roots(data)
    data = roots[0]
    final = data / "cache" / f"vocoder-{_cache_key(roots, mel)}"
    if (final / "index.json").is_file():
        return final
    tmp = data / "cache" / f".vocoder-tmp-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"version": CACHE_VERSION, "mel": dataclasses.asdict(mel), "splits": {}}
    spf = mel.hop_length
    for split in SPLITS:
        shards = [r / "tokens" / f"{split}.jsonl" for r in roots]
        clips = [
            (r, s, c) for r, s in zip(roots, shards, strict=True) if s.is_file() for c in _clips(s)
        ]
        if not clips:
            continue
        rows, off_c, off_m, off_w = [], 0, 0, 0
        skipped = 0
        with (
            (tmp / f"{split}.codes.bin").open("wb") as fc,
            (tmp / f"{split}.mel.bin").open("wb") as fm,
            (tmp / f"{split}.wav.bin").open("wb") as fw,
        ):
            for root, shard, clip in tqdm(
                clips, desc=f"vocoder cache {split}", disable=not progress
            ):
                codes = np.asarray(clip["codes"], dtype=np.int64)
                groups = len(codes) // 5
                codes = codes[: groups * 5]
                if groups == 0:
                    skipped += 1
                    continue
                try:
                    regroup(codes)
                except ValueError as e:
                    raise DataError(f"{shard}: clip {clip['id']}: {e}") from None
                path = root / clip["audio"]
                if not path.is_file():
                    raise DataError(f"{shard}: clip {clip['id']}: audio file {path} not found")
                wav = _read_24k(path, mel.sample_rate)
                frames = groups * PAIRS_PER_GROUP * FRAMES_PER_PAIR
                m = fit_frames(mel_spectrogram(wav, mel), frames, mel).numpy()
                w = np.zeros(frames * spf, dtype=np.float32)
                w[: min(len(wav), len(w))] = wav[: len(w)]
                fc.write(codes.astype(np.int16).tobytes())
                fm.write(m.astype(np.float16).tobytes())
                fw.write((np.clip(w, -1, 1) * 32767).round().astype(np.int16).tobytes())
                rows.append([clip["id"], off_c, groups, off_m, off_w])
                off_c, off_m, off_w = off_c + len(codes), off_m + frames, off_w + len(w)
        if not rows and split == "train":
            raise DataError(f"{', '.join(map(str, shards))}: no usable assistant clips")
        index["splits"][split] = {
            "clips": rows,
            "codes": off_c,
            "frames": off_m,
            "samples": off_w,
            "skipped": skipped,
        }
    (tmp / "index.json").write_text(json.dumps(index))
    try:
        os.replace(tmp, final)
    except OSError:  # another process finished first: keep theirs
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return final


class ClipSet:
    """One cached split: random crops for both stages."""

    def __init__(self, cache: Path, split: str) -> None:
        index = json.loads((cache / "index.json").read_text())
        if split not in index["splits"]:
            raise DataError(f"the cache has no {split} split")
        s = index["splits"][split]
        self.mel_cfg = MelConfig(**index["mel"])
        self.n_mels = self.mel_cfg.n_mels
        self.clips = s["clips"]  # [id, code_off, groups, mel_off, wav_off]
        self.codes = np.memmap(cache / f"{split}.codes.bin", np.int16, "r", shape=(s["codes"],))
        self.mel = np.memmap(
            cache / f"{split}.mel.bin", np.float16, "r", shape=(s["frames"], self.n_mels)
        )
        self.wav = np.memmap(cache / f"{split}.wav.bin", np.int16, "r", shape=(s["samples"],))
        groups = np.array([c[2] for c in self.clips], dtype=np.float64)
        self.weights = groups / groups.sum()
        #: per clip, stand-in codes for `corrupt_codes` (`use_alternatives`), or None
        self.alt: list[np.ndarray] | None = None
        #: stage 2's input mel, laid out like `mel` (`use_input_mels`); None: the true mel
        self.input_mel: np.ndarray | None = None
        #: F0 in Hz per mel frame, laid out like `mel`'s rows (`load_f0`); None: not loaded
        self.f0: np.ndarray | None = None
        self._cache, self._split = cache, split

    def load_f0(self, progress: bool = True) -> None:
        """Attach each frame's F0 (`aqaa.vocoder.pitch.frame_f0`), computed once into the cache
        as ``<split>.f0.bin`` (float32) and reused; flow batches then carry ``f0`` (B, 2P)."""
        from tqdm import tqdm

        from aqaa.vocoder.pitch import frame_f0

        path = self._cache / f"{self._split}.f0.bin"
        frames = self.mel.shape[0]
        if not path.is_file():
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            out = np.memmap(tmp, np.float32, "w+", shape=(frames,))
            for i in tqdm(range(len(self)), desc=f"F0 ({self._split})", disable=not progress):
                _, mel, wav = self.clip(i)
                mo = self.clips[i][3]
                out[mo : mo + len(mel)] = frame_f0(wav, self.mel_cfg, len(mel))
            out.flush()
            del out
            os.replace(tmp, path)
        self.f0 = np.memmap(path, np.float32, "r", shape=(frames,))

    def use_alternatives(self, alt: dict[str, np.ndarray]) -> None:
        """Attach stand-in codes by clip id (e.g. `aqaa.train.lm_codes`); flow batches then carry
        them as ``ling_alt``/``sem_alt``. A clip without one keeps its own codes."""
        out = []
        for cid, co, g, _, _ in self.clips:
            a, n = alt.get(cid), 5 * g
            own = a is None or len(a) < n
            out.append(np.asarray(self.codes[co : co + n] if own else a[:n], dtype=np.int64))
        self.alt = out

    def use_input_mels(self, mel: np.ndarray) -> None:
        """Feed `mel_batch` these mels (same frame layout as the true mel, e.g. the flow's
        samples from `aqaa.train.flow_mels`) instead of the true mel; the waveform is unchanged."""
        if mel.shape != self.mel.shape:
            raise ValueError(f"input mels of shape {mel.shape}, the cache has {self.mel.shape}")
        self.input_mel = mel

    def __len__(self) -> int:
        return len(self.clips)

    def clip(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(codes, mel (F, n_mels) float32, wav float32) of clip ``i``."""
        _, co, g, mo, wo = self.clips[i]
        f = g * PAIRS_PER_GROUP * FRAMES_PER_PAIR
        hop = self.mel_cfg.hop_length
        return (
            np.asarray(self.codes[co : co + 5 * g], dtype=np.int64),
            np.asarray(self.mel[mo : mo + f], dtype=np.float32),
            np.asarray(self.wav[wo : wo + f * hop], dtype=np.float32) / 32767.0,
        )

    def mel_stats(self, max_frames: int = 2_000_000) -> tuple[np.ndarray, np.ndarray]:
        m = np.asarray(self.mel[:max_frames], dtype=np.float64)
        return m.mean(0).astype(np.float32), np.maximum(m.std(0), 1e-3).astype(np.float32)

    def flow_batch(self, rng: np.random.Generator, batch: int, seg_groups: int) -> dict:
        """Group-aligned crops: pair codes (B, P), mel (B, 2P, n_mels), valid pairs (B, P)."""
        picks = rng.choice(len(self.clips), size=batch, p=self.weights)
        items = []
        for i in picks:
            codes, mel, _ = self.clip(int(i))
            groups = len(codes) // 5
            g0 = int(rng.integers(0, groups - seg_groups + 1)) if groups > seg_groups else 0
            g1 = min(groups, g0 + seg_groups)
            ling, sem = regroup(codes[5 * g0 : 5 * g1])
            fpg = PAIRS_PER_GROUP * FRAMES_PER_PAIR
            alt = regroup(self.alt[int(i)][5 * g0 : 5 * g1]) if self.alt is not None else None
            f0 = None
            if self.f0 is not None:
                mo = self.clips[int(i)][3]
                f0 = np.array(self.f0[mo + fpg * g0 : mo + fpg * g1], dtype=np.float32)
            items.append((ling, sem, mel[fpg * g0 : fpg * g1], alt, f0))
        p = max(len(it[1]) for it in items)
        ling = torch.full((batch, p), 0, dtype=torch.long)
        sem = torch.zeros((batch, p), dtype=torch.long)
        ling_alt, sem_alt = ling.clone(), sem.clone()
        mel = torch.zeros((batch, FRAMES_PER_PAIR * p, self.n_mels))
        f0 = torch.zeros((batch, FRAMES_PER_PAIR * p))
        valid = torch.zeros((batch, p), dtype=torch.bool)
        for j, (li, si, mi, alt, fi) in enumerate(items):
            n = len(si)
            ling[j, :n], sem[j, :n] = torch.from_numpy(li), torch.from_numpy(si)
            if alt is not None:
                ling_alt[j, :n], sem_alt[j, :n] = torch.from_numpy(alt[0]), torch.from_numpy(alt[1])
            mel[j, : 2 * n] = torch.from_numpy(mi)
            if fi is not None:
                f0[j, : 2 * n] = torch.from_numpy(fi)
            valid[j, :n] = True
        b = {"ling": ling, "sem": sem, "mel": mel, "valid": valid}
        if self.alt is not None:
            b |= {"ling_alt": ling_alt, "sem_alt": sem_alt}
        if self.f0 is not None:
            b["f0"] = f0
        return b

    def mel_batch(self, rng: np.random.Generator, batch: int, frames: int) -> dict:
        """Crops of ``frames`` mel frames (B, frames, n_mels) and their samples (B, frames·hop)."""
        picks = rng.choice(len(self.clips), size=batch, p=self.weights)
        hop = self.mel_cfg.hop_length
        mels = torch.full((batch, frames, self.n_mels), math.log(self.mel_cfg.floor))
        wavs = torch.zeros((batch, frames * hop))
        for j, i in enumerate(picks):
            _, mel, wav = self.clip(int(i))
            if self.input_mel is not None:
                mo = self.clips[int(i)][3]
                mel = np.asarray(self.input_mel[mo : mo + len(mel)], dtype=np.float32)
            f = len(mel)
            f0 = int(rng.integers(0, f - frames + 1)) if f > frames else 0
            n = min(frames, f - f0)
            mels[j, :n] = torch.from_numpy(mel[f0 : f0 + n])
            wavs[j, : n * hop] = torch.from_numpy(wav[f0 * hop : (f0 + n) * hop])
        return {"mel": mels, "wav": wavs}


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def _lr(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to 10% over one stage."""
    if step < warmup:
        return base * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _init_distributed() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")


def _average_grads(params: list[torch.nn.Parameter]) -> None:
    _, world = _rank_world()
    if world == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def corrupt_codes(b: dict, p: float, gen: torch.Generator) -> dict:
    """A copy of flow batch ``b`` in which each valid pair's linguistic code (never the group's
    pad) and, independently, its semantic code is replaced with probability ``p``: by the batch's
    stand-in (``ling_alt``/``sem_alt``, e.g. the LM's samples of `aqaa.train.lm_codes`) where it
    has one, else by a uniformly random code of its codebook. Uniform noise is the simplest
    stand-in for the LM's sampling errors: it teaches the encoder not to trust any one code,
    without a model of which codes the LM confuses."""
    if p <= 0:
        return b
    ling, sem, valid = b["ling"], b["sem"], b["valid"]
    swap_l = (torch.rand(ling.shape, generator=gen) < p) & valid & (ling != LING_PAD)
    swap_s = (torch.rand(sem.shape, generator=gen) < p) & valid
    if "ling_alt" in b:
        rand_l, rand_s = b["ling_alt"], b["sem_alt"]
    else:
        rand_l = torch.randint(0, LING_PAD, ling.shape, generator=gen)
        rand_s = torch.randint(0, ids.SEMANTIC_CODES, sem.shape, generator=gen)
    return b | {"ling": torch.where(swap_l, rand_l, ling), "sem": torch.where(swap_s, rand_s, sem)}


def flow_losses(model: Vocoder, b: dict, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Stage-1 losses of one batch: ``flow`` (velocity MSE), ``prior`` (mu vs mel MSE) and, for
    a pitch flow, ``pitch`` (the F0 head's; the flow reads the template of the batch's true F0)."""
    x1 = model.normalize(b["mel"]).transpose(1, 2)  # (B, n_mels, F)
    mu, pitch = model.encoder.encode(b["ling"], b["sem"], b["valid"])
    if pitch is not None and "f0" not in b:
        raise ValueError("a pitch flow trains on batches with F0 (ClipSet.load_f0)")
    mu, aux = model.condition(mu, None if pitch is None else b["f0"])
    mask = b["valid"].repeat_interleave(FRAMES_PER_PAIR, dim=1)[:, None].float()
    flow = model.flow.loss(x1, mu, mask, gen, aux)
    prior = ((mu - x1).square() * mask).sum() / (mask.sum() * x1.shape[1])
    out = {"flow": flow, "prior": prior}
    if pitch is not None:
        out["pitch"] = pitch_loss(pitch, b["f0"], mask[:, 0])
    return out


def _recon_losses(
    model: Vocoder, y_hat: torch.Tensor, y: torch.Tensor, phase: bool
) -> dict[str, torch.Tensor]:
    mc = model.config.mel
    mel_l1 = F.l1_loss(mel_spectrogram(y_hat.float(), mc), mel_spectrogram(y, mc))
    out = {"mel_l1": mel_l1, "stft": multi_resolution_stft_loss(y_hat.float(), y)}
    if phase:
        out |= {f"phase_{k}": v for k, v in phase_loss(y_hat.float(), y).items()}
    return out


@torch.no_grad()
def evaluate(model: Vocoder, batches: dict[str, dict], seed: int = 0) -> dict[str, float]:
    """Losses of both stages on fixed validation batches (fixed noise): comparable over time."""
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    fl = flow_losses(model, batches["flow"], gen)
    y_hat = model.mel_vocoder(model.normalize(batches["mel"]["mel"]))
    rec = _recon_losses(model, y_hat, batches["mel"]["wav"], phase=True)
    model.train(was)
    return {f"valid_{k}": float(v) for k, v in (fl | rec).items()}


def _plot(path: Path, panels: list[tuple[str, np.ndarray]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.4 * len(panels)), squeeze=False)
    lo = min(float(p.min()) for _, p in panels)
    hi = max(float(p.max()) for _, p in panels)
    for ax, (title, m) in zip(axes[:, 0], panels, strict=True):
        ax.imshow(m.T, origin="lower", aspect="auto", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("mel bin")
    axes[-1, 0].set_xlabel("frame (20 ms)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


def sample_plot(model: Vocoder, data: ClipSet, step: int, out: Path, stage: str) -> Path:
    """Target mel vs the model's mel (stage 1: from codes; stage 2: of the vocoded audio)."""
    codes, mel, wav = data.clip(0)
    frames = min(len(mel), 300)
    codes, mel, wav = codes[: 5 * (frames // 6)], mel[: 6 * (frames // 6)], wav
    gen_mel = model.decode_mel(codes, seed=0).numpy()
    panels = [("target log-mel", mel), (f"flow log-mel from codes (step {step})", gen_mel)]
    if stage == "mel":
        was = model.training
        model.eval()
        with torch.inference_mode():
            src, what = (gen_mel, "flow") if data.input_mel is not None else (mel, "target")
            z = model.normalize(torch.from_numpy(src))[None]
            y = model.mel_vocoder(z)[0]
            resyn = mel_spectrogram(y, model.config.mel)[: len(mel)].numpy()
        model.train(was)
        panels.append((f"log-mel of the vocoded {what} mel (step {step})", resyn))
    path = out / "plots" / f"{stage}_step{step:07d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    _plot(path, panels)
    return path


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint a resumed run starts from)."""
    if not path.is_file():
        return
    keep = [
        ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step
    ]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(ln + "\n" for ln in keep))
    os.replace(tmp, path)


def _use_flow_mels(
    model: Vocoder, cfg: VocoderTrainConfig, out: Path, sets: list[ClipSet], rank: int, world: int
) -> None:
    """Stage 2 reads the frozen flow's mels of every clip (rank 0 samples them once; resumes
    reuse OUT/flow_mels/)."""
    from aqaa.train.flow_mels import compute_flow_mels

    for name, s in zip(SPLITS, sets, strict=True):
        if name == "valid" and s is sets[0]:
            s.use_input_mels(sets[0].input_mel)  # no valid split: the train set stands in
            continue
        path = out / "flow_mels" / f"{name}.bin"
        if rank == 0:
            compute_flow_mels(model, s, path, seed=cfg.seed, progress=cfg.progress)
        if world > 1:
            dist.barrier()
        s.use_input_mels(compute_flow_mels(model, s, path, seed=cfg.seed, progress=False))


def _lm_codes(cfg: VocoderTrainConfig, out: Path, rank: int) -> dict[str, np.ndarray]:
    """The LM's stand-in codes of the train split: OUT/lm_codes.npz, sampled once (resumes reuse
    the file; every rank samples the same, seeded)."""
    from aqaa.train.lm_codes import load_codes, sample_lm_codes, save_codes

    path = out / "lm_codes.npz"
    if path.is_file():
        return load_codes(path)
    assert cfg.noise_lm is not None
    codes = sample_lm_codes(cfg.noise_lm, cfg.data, "train", progress=cfg.progress and rank == 0)
    if rank == 0:
        save_codes(codes, path)
    return codes


def train_vocoder(
    cfg: VocoderTrainConfig,
    resume: bool = False,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> Path:
    """Run (or continue) training; returns the exported vocoder directory ``OUT/vocoder``.

    ``on_step(step, losses)`` is called after every optimisation step (tests use it to simulate
    a kill).
    """
    from tqdm import tqdm

    cfg.check()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    _init_distributed()
    rank, world = _rank_world()
    _shard_roots(cfg.data)
    out = Path(cfg.out)
    ckpt_path = out / "checkpoint.pt"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    if not resume and ckpt_path.exists():
        raise FileExistsError(
            f"{ckpt_path} exists: pass --resume to continue it, or choose another --out"
        )
    if resume and not ckpt_path.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")

    state = torch.load(ckpt_path, weights_only=False) if resume else None
    base = Vocoder.load(cfg.init) if cfg.init and state is None else None
    if state is not None:
        model_cfg = VocoderConfig.from_dict(state["model_config"])
    elif base is not None:
        model_cfg = copy.deepcopy(base.config)
        model_cfg.flow.pitch = model_cfg.flow.pitch or cfg.pitch
        if cfg.mel_upsample not in (1, model_cfg.vocoder.upsample):
            raise ValueError(f"--init {cfg.init} has mel upsample {model_cfg.vocoder.upsample}")
        if cfg.mel_phase_advance and not model_cfg.vocoder.phase_advance:
            raise ValueError(f"--init {cfg.init} has a mel vocoder without the phase advance")
    else:
        model_cfg = VocoderConfig.tiny() if cfg.preset == "tiny" else VocoderConfig()
        model_cfg.vocoder.upsample = cfg.mel_upsample
        model_cfg.vocoder.phase_advance = cfg.mel_phase_advance
        model_cfg.flow.pitch = cfg.pitch
    cache = build_cache(cfg.data, model_cfg.mel, progress=cfg.progress and rank == 0)
    train_set = ClipSet(cache, "train")
    if cfg.noise_lm:
        train_set.use_alternatives(_lm_codes(cfg, out, rank))
    try:
        valid_set = ClipSet(cache, "valid")
    except DataError:
        valid_set = train_set
    if model_cfg.flow.pitch:  # the F0 head's targets and the template (also for validation)
        for s in {id(train_set): train_set, id(valid_set): valid_set}.values():
            if rank == 0:
                s.load_f0(progress=cfg.progress)
            if world > 1:
                dist.barrier()
            s.load_f0(progress=False)

    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = Vocoder(model_cfg)
    model.audio_tokenizer = shard_tokenizer(cfg.data)
    disc = Discriminators()
    torch.manual_seed(cfg.seed + 1000 * rank)  # per-rank dropout
    flow_params = list(model.encoder.parameters()) + list(model.flow.parameters())
    gen_params = list(model.mel_vocoder.parameters())
    opt_flow = torch.optim.AdamW(flow_params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    opt_gen = torch.optim.AdamW(gen_params, lr=cfg.mel_lr, betas=(0.8, 0.99))
    opt_disc = torch.optim.AdamW(disc.parameters(), lr=cfg.mel_lr, betas=(0.8, 0.99))
    rng = np.random.default_rng([cfg.seed, rank])
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + rank)
    step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        disc.load_state_dict(state["disc"])
        opt_flow.load_state_dict(state["opt_flow"])
        opt_gen.load_state_dict(state["opt_gen"])
        opt_disc.load_state_dict(state["opt_disc"])
        step = int(state["step"])
        if rank < len(state["rng"]):  # same world size as before: continue every stream
            r = state["rng"][rank]
            rng.bit_generator.state = r["numpy"]
            gen.set_state(r["gen"])
            torch.set_rng_state(r["torch"])
            random.setstate(r["python"])
    elif base is not None:
        # its mel statistics too (its mel vocoder's); a pitch path it lacks starts at zero
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
        if unexpected or any(".pitch" not in k for k in missing):
            raise ValueError(f"--init {cfg.init} does not fit: {unexpected or missing}")
        if base.audio_tokenizer is None or base.audio_tokenizer != model.audio_tokenizer:
            restart_code_embeddings(model)
    else:
        mean, std = train_set.mel_stats()
        model.mel_mean.copy_(torch.from_numpy(mean))
        model.mel_std.copy_(torch.from_numpy(std))
    if cfg.mel_input == "flow":
        _use_flow_mels(model, cfg, out, [train_set, valid_set], rank, world)
    if rank == 0:
        _truncate_log(out / "log.jsonl", step if resume else -1)

    bf16 = use_bf16(cfg.bf16)
    total = cfg.flow_steps + cfg.mel_steps
    stop = total if cfg.max_steps is None else min(total, cfg.max_steps)
    log_f = (out / "log.jsonl").open("a") if rank == 0 else None
    bar = tqdm(total=total, initial=step, desc="vocoder", disable=not cfg.progress or rank != 0)
    model.train()
    disc.train()
    acc: dict[str, list[float]] = {}
    t_last = time.time()
    vrng = np.random.default_rng(12345)
    valid_batches = {
        "flow": valid_set.flow_batch(vrng, cfg.batch_size, cfg.segment_groups),
        "mel": valid_set.mel_batch(vrng, cfg.mel_batch_size, cfg.mel_segment_frames),
    }

    def write_log(rec: dict[str, Any]) -> None:
        if log_f is not None:
            log_f.write(json.dumps(rec) + "\n")
            log_f.flush()

    if step == 0 and rank == 0:
        write_log({"step": 0, "stage": "eval", **evaluate(model, valid_batches)})

    def checkpoint() -> None:
        rngs = [
            {
                "numpy": rng.bit_generator.state,
                "gen": gen.get_state(),
                "torch": torch.get_rng_state(),
                "python": random.getstate(),
            }
        ]
        if world > 1:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, rngs[0])
            rngs = gathered
        if rank != 0:
            return
        _atomic_save(
            {
                "step": step,
                "model": model.state_dict(),
                "disc": disc.state_dict(),
                "opt_flow": opt_flow.state_dict(),
                "opt_gen": opt_gen.state_dict(),
                "opt_disc": opt_disc.state_dict(),
                "rng": rngs,
                "model_config": model_cfg.to_dict(),
                "train_config": dataclasses.asdict(cfg),
            },
            ckpt_path,
        )
        model.save(out / "vocoder")

    while step < stop:
        losses: dict[str, torch.Tensor] = {}
        if step < cfg.flow_steps:
            stage = "flow"
            lr = _lr(step, cfg.flow_steps, cfg.lr, cfg.warmup)
            for g in opt_flow.param_groups:
                g["lr"] = lr
            b = train_set.flow_batch(rng, cfg.batch_size, cfg.segment_groups)
            b = corrupt_codes(b, cfg.code_noise, gen)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                losses = flow_losses(model, b, gen)
            loss = losses["flow"] + model_cfg.flow.prior_weight * losses["prior"]
            if "pitch" in losses:
                loss = loss + cfg.pitch_weight * losses["pitch"]
            opt_flow.zero_grad(set_to_none=True)
            loss.backward()
            _average_grads(flow_params)
            losses["grad_norm"] = torch.nn.utils.clip_grad_norm_(flow_params, cfg.grad_clip)
            opt_flow.step()
        else:
            stage = "mel"
            s2 = step - cfg.flow_steps
            lr = _lr(s2, cfg.mel_steps, cfg.mel_lr, cfg.warmup)
            for opt in (opt_gen, opt_disc):
                for g in opt.param_groups:
                    g["lr"] = lr
            b = train_set.mel_batch(rng, cfg.mel_batch_size, cfg.mel_segment_frames)
            y = b["wav"]
            gan = s2 >= cfg.gan_start
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                y_hat = model.mel_vocoder(model.normalize(b["mel"])).float()
            if gan:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    d_loss = discriminator_loss(disc(y), disc(y_hat.detach()))
                opt_disc.zero_grad(set_to_none=True)
                d_loss.backward()
                _average_grads(list(disc.parameters()))
                torch.nn.utils.clip_grad_norm_(disc.parameters(), 10.0)
                opt_disc.step()
                losses["disc"] = d_loss.detach()
            losses |= _recon_losses(model, y_hat, y, phase=cfg.phase_weight > 0)
            g_loss = cfg.mel_weight * losses["mel_l1"] + cfg.stft_weight * losses["stft"]
            if cfg.phase_weight > 0:
                g_loss = g_loss + cfg.phase_weight * (
                    losses["phase_ip"] + losses["phase_iaf"] + losses["phase_gd"]
                )
            if gan:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    with torch.no_grad():
                        real = disc(y)  # targets of feature matching only
                    fake = disc(y_hat)
                    losses["adv"] = generator_loss(fake)
                    losses["fm"] = feature_matching_loss(real, fake)
                g_loss = g_loss + cfg.adv_weight * losses["adv"] + cfg.fm_weight * losses["fm"]
            opt_gen.zero_grad(set_to_none=True)
            g_loss.backward()
            _average_grads(gen_params)
            losses["grad_norm"] = torch.nn.utils.clip_grad_norm_(gen_params, 10.0)
            opt_gen.step()
        step += 1
        vals = {k: float(v.detach()) for k, v in losses.items()}
        for k, v in vals.items():
            acc.setdefault(k, []).append(v)
        bar.update(1)
        if step % cfg.log_every == 0 or step == stop:
            now = time.time()
            rec = {
                "step": step,
                "stage": stage,
                "lr": lr,
                **{k: float(np.mean(v)) for k, v in acc.items()},
            }
            rec["sec_per_step"] = (now - t_last) / max(1, len(next(iter(acc.values()))))
            t_last, acc = now, {}
            write_log(rec)
            main = "flow" if stage == "flow" else "mel_l1"
            bar.set_postfix({main: f"{rec[main]:.3f}"})
        if rank == 0 and (step % cfg.eval_every == 0 or step == total):
            write_log({"step": step, "stage": "eval", **evaluate(model, valid_batches)})
        if rank == 0 and (step % cfg.plot_every == 0 or step == total):
            sample_plot(model, valid_set, step, out, stage)
        if step % cfg.ckpt_every == 0 or step == stop:
            checkpoint()
        if on_step is not None:
            on_step(step, vals)
    bar.close()
    if log_f is not None:
        log_f.close()
    if rank == 0 and step >= total:
        model.save(out / "vocoder")
        model.save(out / "vocoder-fp16", fp16=True)
    return out / "vocoder"


def restart_code_embeddings(model: Vocoder) -> None:
    """Fresh random code embeddings (linguistic, bar the pad row, and semantic) at the old rows'
    spread: what a trained vocoder needs before it learns a new tokenizer's codes. The encoder
    blocks, the flow and the mel vocoder keep their weights, so the flow retrains fast."""
    with torch.no_grad():
        for emb in (model.encoder.ling.weight[:-1], model.encoder.sem.weight):
            emb.normal_(0.0, float(emb.std()))


@torch.no_grad()
def fold_mel_statistics(
    embed: torch.nn.Conv1d,
    trained: tuple[torch.Tensor, torch.Tensor],
    given: tuple[torch.Tensor, torch.Tensor],
) -> None:
    """Make `embed` (the mel vocoder's first convolution over mel bins) read z-scores under the
    `given` (mean, std) as it read them under the `trained` ones: z_trained = z_given · r + o with
    r = std_given / std_trained and o = (mean_given − mean_trained) / std_trained, per bin, so the
    weights scale by r and the bias takes W · o. Zero padding at the edges is the one difference."""
    (m_t, s_t), (m_g, s_g) = trained, given
    r = (s_g / s_t).to(embed.weight.dtype)
    o = ((m_g - m_t) / s_t).to(embed.weight.dtype)
    shift = (embed.weight * o[None, :, None]).sum(dim=(1, 2))
    embed.weight.mul_(r[None, :, None])
    if embed.bias is not None:
        embed.bias.add_(shift)


def join_vocoders(
    flow_dir: str | os.PathLike[str], mel_dir: str | os.PathLike[str], out: str | os.PathLike[str]
) -> Path:
    """Token encoder + flow from `flow_dir`, mel vocoder from `mel_dir`, into `out` (fp16).

    The two stages never share gradients (stage 2 trains on ground-truth mels), so on a machine
    with spare cores they can run as two processes (`--mel-steps 0` and `--flow-steps 0` on the
    same corpus) and be joined here. Both must compute the same mel features; the mel vocoder keeps
    its own shape (e.g. `--mel-upsample`), the flow run gives the token encoder, the flow, the
    streaming settings and the mel statistics. When the runs standardised the mel with different
    statistics (another corpus), the mel vocoder's first convolution is re-expressed for the flow's
    z-scores (`fold_mel_statistics`), which is exact away from the 3 edge frames of a decode.
    """
    import copy

    from aqaa.vocoder.model import Vocoder

    a, b = Vocoder.load(flow_dir), Vocoder.load(mel_dir)
    if a.config.mel != b.config.mel:
        raise ValueError(f"{flow_dir} and {mel_dir} compute different mel features")
    if not torch.allclose(a.mel_mean, b.mel_mean) or not torch.allclose(a.mel_std, b.mel_std):
        fold_mel_statistics(b.mel_vocoder.embed, (b.mel_mean, b.mel_std), (a.mel_mean, a.mel_std))
    config = copy.deepcopy(a.config)
    config.vocoder = copy.deepcopy(b.config.vocoder)
    joined = Vocoder(config)
    joined.encoder.load_state_dict(a.encoder.state_dict())
    joined.flow.load_state_dict(a.flow.state_dict())
    joined.mel_vocoder.load_state_dict(b.mel_vocoder.state_dict())
    joined.mel_mean.copy_(a.mel_mean)
    joined.mel_std.copy_(a.mel_std)
    joined.audio_tokenizer = a.audio_tokenizer  # the flow's: the mel vocoder never sees tokens
    return joined.save(out, fp16=True)
