"""Finite scalar quantization (Mentzer et al., 2023) with levels (8, 8, 8, 8) = 4,096 codes.

Why FSQ for the semantic codebook: it has no learned codebook, so it cannot collapse; it needs no
commitment loss, EMA updates or dead-code resets; and with a small projection in front it reaches
high code usage on its own (reported by `aqaa eval tokenizer` as usage and perplexity).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FSQ(nn.Module):
    def __init__(self, levels: tuple[int, ...] = (8, 8, 8, 8)) -> None:
        super().__init__()
        self.levels = tuple(levels)
        lv = torch.tensor(levels, dtype=torch.float32)
        basis = torch.cumprod(torch.tensor([1, *levels[:-1]]), 0)
        self.register_buffer("_levels", lv, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        half = (self._levels - 1) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (..., dim) -> (quantized in [-1, 1], straight-through; codes (...) int64)."""
        b = self._bound(z.float())
        q = b + (torch.round(b) - b).detach()
        digits = (torch.round(b) + self._levels // 2).long()
        codes = (digits * self._basis).sum(-1)
        return q / (self._levels // 2), codes

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        digits = (codes[..., None] // self._basis) % self._levels.long()
        return (digits - self._levels.long() // 2).float() / (self._levels // 2)
