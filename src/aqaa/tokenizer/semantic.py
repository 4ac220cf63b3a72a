"""Semantic tokenizer (after CosyVoice's supervised semantic tokens): content and coarse acoustics.

fbank → stack 4 frames (25 Hz) → chunk-streaming transformer encoder → FSQ with 4,096 codes.
Training pulls the codes two ways: a CTC phone head (content) and a reconstruction decoder that
predicts, for the 4 fbank frames under each token, the mel spectrum, log-F0, voicing and energy.
The vocoder sees nothing but tokens, so pitch, loudness, rate, whisper and emotion have to survive
in these codes; the reconstruction losses are what keeps them there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from aqaa.tokenizer.encoder import ChunkedEncoder, EncoderConfig
from aqaa.tokenizer.fsq import FSQ
from aqaa.tokenizer.linguistic import N_MELS, FeatureNorm


@dataclass
class SemanticConfig:
    stack: int = 4
    fsq_levels: tuple[int, ...] = (8, 8, 8, 8)
    n_phonemes: int = 64
    ctc_upsample: int = 2
    encoder: EncoderConfig = field(
        default_factory=lambda: EncoderConfig(input_dim=4 * N_MELS, dim=256, layers=6, chunk=12)
    )
    decoder: EncoderConfig = field(
        default_factory=lambda: EncoderConfig(input_dim=4, dim=256, layers=3, chunk=12)
    )


class SemanticTokenizer(nn.Module):
    def __init__(self, cfg: SemanticConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm = FeatureNorm()
        self.encoder = ChunkedEncoder(cfg.encoder)
        self.fsq = FSQ(cfg.fsq_levels)
        self.pre_q = nn.Linear(cfg.encoder.dim, self.fsq.dim)
        # Training-only heads: the decoder reads the quantized vectors alone.
        self.decoder = ChunkedEncoder(cfg.decoder)
        s = cfg.stack
        self.ctc = nn.Linear(cfg.decoder.dim, cfg.ctc_upsample * cfg.n_phonemes)
        self.recon = nn.Linear(cfg.decoder.dim, s * (N_MELS + 3))  # mel, lf0, voicing, energy

    def encode(self, stacked: torch.Tensor, lengths: torch.Tensor | None = None):
        """stacked (B, T, 4·80) -> (quantized (B, T, 4), codes (B, T))."""
        return self.fsq(self.pre_q(self.encoder(stacked, lengths)))

    def losses(
        self,
        stacked: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
        frame_targets: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """All training losses. `frame_targets` hold per-fbank-frame tensors (B, 4·T[, 80])."""
        q, _ = self.encode(stacked, lengths)
        d = self.decoder(q, lengths)
        b, t, _ = d.shape
        k = self.cfg.ctc_upsample
        logp = self.ctc(d).view(b, t * k, -1).float().log_softmax(-1).transpose(0, 1)
        ctc = F.ctc_loss(logp, targets, lengths * k, target_lengths, zero_infinity=True)
        r = self.recon(d).float().view(b, t * self.cfg.stack, N_MELS + 3)
        valid = (
            torch.arange(t * self.cfg.stack)[None, :] < (lengths * self.cfg.stack)[:, None]
        ).float()
        voiced = frame_targets["voiced"] * valid

        def masked_l1(pred: torch.Tensor, tgt: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            err = (pred - tgt).abs()
            if err.dim() == 3:
                err = err.mean(-1)
            return (err * m).sum() / m.sum().clamp_min(1.0)

        return {
            "ctc": ctc,
            "mel": masked_l1(r[..., :N_MELS], frame_targets["mel"], valid),
            "lf0": masked_l1(r[..., N_MELS], frame_targets["lf0"], voiced),
            "vuv": (
                F.binary_cross_entropy_with_logits(
                    r[..., N_MELS + 1], frame_targets["voiced"], reduction="none"
                )
                * valid
            ).sum()
            / valid.sum(),
            "energy": masked_l1(r[..., N_MELS + 2], frame_targets["energy"], valid),
        }
