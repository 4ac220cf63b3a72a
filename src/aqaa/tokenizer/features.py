"""Tokenizer front end and training targets.

- fbank: `aqaa.audio.log_mel` at 16 kHz (80 bins, 25 ms window, 10 ms hop, no edge padding), so the
  features of a prefix are a prefix of the features: the streaming encoder sees exactly the
  offline frames.
- Low-frame-rate stacking: frame i of a stack (m, n) is fbank frames [n·i, n·i + m) concatenated;
  there are `stacked_frames(F, m, n)` of them (no padding). Linguistic: (7, 6) → 16.67 Hz;
  semantic: (4, 4) → 25 Hz.
- Prosodic targets for the semantic tokenizer, per fbank frame: log-F0 and voicing from WORLD's
  dio + stonemask (fast, deterministic), and log energy.
"""

from __future__ import annotations

import numpy as np
import torch

from aqaa.audio import HOP_LENGTH, SAMPLE_RATE, WIN_LENGTH, log_mel, num_frames


def fbank(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(frames, 80) log-mel of 16 kHz audio."""
    return log_mel(x, SAMPLE_RATE)


def stacked_frames(n_frames: int, m: int, n: int) -> int:
    return 0 if n_frames < m else 1 + (n_frames - m) // n


def stack_frames(feats: torch.Tensor, m: int, n: int) -> torch.Tensor:
    """(..., F, D) -> (..., stacked_frames(F, m, n), m·D)."""
    count = stacked_frames(feats.shape[-2], m, n)
    if count == 0:
        return feats.new_zeros(*feats.shape[:-2], 0, m * feats.shape[-1])
    windows = feats.unfold(-2, m, n)[..., :count, :, :]  # (..., count, D, m)
    return windows.transpose(-1, -2).reshape(*feats.shape[:-2], count, m * feats.shape[-1])


def prosody_targets(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per fbank frame: log-F0 (0 where unvoiced), voicing (0/1) and log energy."""
    import pyworld as pw

    frames = num_frames(len(x), HOP_LENGTH, WIN_LENGTH)
    x64 = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = pw.dio(x64, SAMPLE_RATE, f0_floor=50.0, f0_ceil=700.0, frame_period=5.0)
    f0 = pw.stonemask(x64, f0, t, SAMPLE_RATE)
    centres = (np.arange(frames) * HOP_LENGTH + WIN_LENGTH / 2) / SAMPLE_RATE
    idx = np.clip(np.round(centres / 0.005).astype(int), 0, len(f0) - 1)
    f0 = f0[idx]
    voiced = (f0 > 0).astype(np.float32)
    lf0 = np.where(f0 > 0, np.log(np.maximum(f0, 1.0)), 0.0).astype(np.float32)
    if frames:
        w = np.lib.stride_tricks.sliding_window_view(x, WIN_LENGTH)[::HOP_LENGTH][:frames]
        energy = np.log(np.mean(w.astype(np.float64) ** 2, axis=1) + 1e-8).astype(np.float32)
    else:
        energy = np.zeros(0, np.float32)
    return {"lf0": lf0, "voiced": voiced, "energy": energy}
