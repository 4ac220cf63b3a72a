"""Building blocks shared by the token encoder and the flow estimator.

Every block is *local*: attention sees only keys within ``window`` positions of the query
(band attention, rotary positions, so outputs depend on relative positions only), convolutions
have small kernels and normalisation is per frame (LayerNorm over channels, never over time).
A frame's output therefore depends on a bounded neighbourhood, and is the same wherever a
window of the utterance starts: that is what lets :mod:`aqaa.vocoder.stream` decode overlapping
windows that agree with the offline decode.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

#: Queries per block when band attention is computed block-wise on long sequences.
_ATTN_BLOCK = 128


@lru_cache(maxsize=64)
def _rope_table(t: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin ``(t, d)`` of angles ``pos · θ_i`` for positions ``0 … t−1`` (cached).

    Made outside inference mode, so the cached tables also serve training.
    """
    with torch.inference_mode(False):
        inv = 1.0 / (10000 ** (torch.arange(d, dtype=torch.float32) / d))
        ang = torch.arange(t, dtype=torch.float32)[:, None] * inv[None, :]
        return ang.cos(), ang.sin()


def rope(x: torch.Tensor) -> torch.Tensor:
    """Rotate the halves of ``(..., T, D)`` by angles ``pos · θ_i`` (rotary positions 0 … T−1)."""
    d = x.shape[-1] // 2
    cos, sin = _rope_table(x.shape[-2], d)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


@lru_cache(maxsize=256)
def _band(a: int, b: int, lo: int, hi: int, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Band mask ``(b−a, hi−lo)`` and diagonal mask for query rows a…b and key columns lo…hi."""
    with torch.inference_mode(False):
        qi, kj = torch.arange(a, b), torch.arange(lo, hi)
        return (qi[:, None] - kj[None, :]).abs() <= window, qi[:, None] == kj[None, :]


def band_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int, valid: torch.Tensor | None
) -> torch.Tensor:
    """Attention of ``(B, H, T, D)`` where query ``i`` sees keys ``j`` with ``|i - j| <= window``.

    ``valid`` (B, T) marks real frames (padding keys are ignored). Long sequences are processed
    in query blocks, so the cost is ``O(T · window)``, not ``O(T²)``.
    """
    t = q.shape[2]
    outs = []
    for a in range(0, t, _ATTN_BLOCK):
        b = min(t, a + _ATTN_BLOCK)
        lo, hi = max(0, a - window), min(t, b + window)
        band, diag = _band(a, b, lo, hi, window)
        mask = band[None, None]
        if valid is not None:
            mask = mask & (valid[:, None, None, lo:hi] | diag[None, None])
        outs.append(
            F.scaled_dot_product_attention(q[:, :, a:b], k[:, :, lo:hi], v[:, :, lo:hi], mask)
        )
    return torch.cat(outs, 2) if len(outs) > 1 else outs[0]


class TransformerBlock(nn.Module):
    """Pre-norm transformer block with rotary band attention; works on ``(B, T, dim)``."""

    def __init__(
        self, dim: int, heads: int, window: int, ff_mult: int = 2, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if dim % heads or (dim // heads) % 2:
            raise ValueError(f"dim {dim} must split into {heads} heads of even size")
        self.heads, self.window = heads, window
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        b, t, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # (3, B, H, T, Dh)
        qk = rope(qkv[:2])
        att = band_attention(qk[0], qk[1], qkv[2], self.window, valid)
        x = x + self.drop(self.out(att.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of a channels-first ``(B, C, T)`` tensor (per frame)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def timestep_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """Sinusoidal embedding ``(B,) → (B, dim)`` of flow times in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    ang = scale * t.float()[:, None] * freqs[None, :]
    return torch.cat([ang.sin(), ang.cos()], dim=-1)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
