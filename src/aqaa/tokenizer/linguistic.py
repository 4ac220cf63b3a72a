"""Linguistic tokenizer (after Paraformer): phonetic content, speaker-invariant, 16.67 Hz, 1,024 codes.

fbank → LFR stack (m=7, n=6) → chunk-streaming transformer encoder, trained with CTC on espeak-ng
phonemes → a token is the index of the nearest of 1,024 k-means centroids of the encoder output.

Deviation, measured: at 16.67 Hz a CTC head cannot emit fast speech (espeak-ng at 1.6× rate says
~20 phones/s, more than the frame rate, and CTC needs a frame per phone plus blanks between
repeats). The CTC head therefore emits two phone posteriors per frame (a 33 Hz CTC alignment).
The tokens themselves stay at 16.67 Hz.

Online mean normalisation (`cmn_prior > 0`, session 5): each LFR input frame has the running mean
of the utterance so far subtracted, shrunk towards the global mean by `cmn_prior` virtual frames:
`y_t = x_t − Σ_{s≤t} x_s / (cmn_prior + t + 1)`. A voice's (or channel's) long-term spectrum is an
additive offset in log-mel, so this removes much of it before the encoder sees it; it uses only the
past, so a stream computes exactly what an offline encode computes (`CmnState` carries the sum).
0 (off) is the default so that configs written before it load unchanged; training uses 10.
Measured (TRAINING.md, session 5, same data and steps): phone error on the reserved voices
51.7% without it, 44.0% with it (festival slt HTS 51.0% → 39.3%).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from aqaa.tokenizer.encoder import ChunkedEncoder, EncoderConfig

N_MELS = 80


@dataclass
class LinguisticConfig:
    lfr_m: int = 7
    lfr_n: int = 6
    n_codes: int = 1024
    n_phonemes: int = 64
    ctc_upsample: int = 2
    #: Online mean normalisation of the LFR input: prior weight in frames (0 = off).
    cmn_prior: int = 0
    encoder: EncoderConfig = field(
        default_factory=lambda: EncoderConfig(input_dim=7 * N_MELS, dim=256, layers=6, chunk=8)
    )


class FeatureNorm(nn.Module):
    """Global mean/variance normalisation of fbank bins (statistics fitted on training data)."""

    def __init__(self, n: int = N_MELS) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("std", torch.ones(n))

    def fit(self, feats: torch.Tensor) -> None:
        self.mean.copy_(feats.mean(0))
        self.std.copy_(feats.std(0).clamp_min(1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@dataclass
class CmnState:
    """Running sum (float64) and count of the LFR frames a stream has normalised so far."""

    total: torch.Tensor | None = None
    count: int = 0


class LinguisticTokenizer(nn.Module):
    def __init__(self, cfg: LinguisticConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm = FeatureNorm()
        self.encoder = ChunkedEncoder(cfg.encoder)
        self.ctc = nn.Linear(cfg.encoder.dim, cfg.ctc_upsample * cfg.n_phonemes)
        self.register_buffer("centroids", torch.zeros(cfg.n_codes, cfg.encoder.dim))

    def cmn(self, lfr: torch.Tensor, state: CmnState | None = None) -> torch.Tensor:
        """Online mean normalisation of (B, T, D) LFR frames (identity when `cmn_prior` is 0).

        With `state` (a stream, B = 1) the frames continue the ones already seen and the state
        advances; the sum runs in float64 in the same order either way, so chunked == offline.
        """
        if self.cfg.cmn_prior <= 0:
            return lfr
        x = lfr.double()
        start = 0
        if state is not None and state.total is not None:
            x = torch.cat([state.total.view(1, 1, -1), x], 1)  # carry first: same summation order
            start = 1
        sums = x.cumsum(1)[:, start:]
        seen = state.count if state is not None else 0
        counts = torch.arange(1, lfr.shape[1] + 1, dtype=torch.float64) + seen
        mean = sums / (counts + self.cfg.cmn_prior)[None, :, None]
        if state is not None and lfr.shape[1]:
            state.total = sums[0, -1].clone()
            state.count += lfr.shape[1]
        return (x[:, start:] - mean).to(lfr.dtype)

    def hidden(self, lfr: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(self.cmn(lfr), lengths)

    def ctc_logits(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) -> (B, ctc_upsample·T, n_phonemes)."""
        b, t, _ = h.shape
        return self.ctc(h).view(b, t * self.cfg.ctc_upsample, self.cfg.n_phonemes)

    def ctc_loss(
        self,
        h: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
    ) -> torch.Tensor:
        logp = self.ctc_logits(h).float().log_softmax(-1).transpose(0, 1)
        return F.ctc_loss(
            logp, targets, lengths * self.cfg.ctc_upsample, target_lengths, zero_infinity=True
        )

    def quantize(self, h: torch.Tensor) -> torch.Tensor:
        """Nearest centroid (squared L2) of each frame: (..., dim) -> (...) int64."""
        flat = h.reshape(-1, h.shape[-1]).float()
        d = (
            (flat**2).sum(1, keepdim=True)
            - 2 * flat @ self.centroids.T
            + (self.centroids**2).sum(1)
        )
        return d.argmin(1).view(h.shape[:-1])
