"""Token side of the vocoder: regroup the interleaved codes at 25 Hz and encode them to 50 Hz.

An interleaved stream has 5 codes per 120 ms group, ``[l l s s s]`` (:mod:`aqaa.tokenizer.ids`).
The vocoder reads it as 3 time-aligned *pairs* per group at 25 Hz (40 ms each)::

    [l0 l1 s0 s1 s2] → [l0, s0], [l1, s1], [pad, s2]

(semantic codes without their 1024 offset, ``pad`` = :data:`LING_PAD`). The encoder embeds both
codebooks plus the pair's phase within its group (0, 1, 2), runs a 1-pair look-ahead convolution
and local transformer blocks, repeats each pair ×2 to 50 Hz (two 20 ms mel frames per pair),
smooths with a convolution and projects to ``mu``: a coarse 80-bin mel that conditions the flow
(trained towards the target mel with an auxiliary "prior" loss, as in Matcha-TTS). With ``pitch``
it also predicts each frame's log-F0 and voicing from the same features
(:class:`aqaa.vocoder.pitch.PitchHead`; see :meth:`TokenEncoder.encode`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from aqaa.tokenizer import ids
from aqaa.vocoder.layers import TransformerBlock
from aqaa.vocoder.pitch import PitchHead

#: Pairs (25 Hz steps) per 120 ms group.
PAIRS_PER_GROUP = ids.GROUP[1]
#: Mel frames (50 Hz) per pair.
FRAMES_PER_PAIR = 2
#: Linguistic id standing in for the missing third linguistic code of a group.
LING_PAD = ids.LINGUISTIC_CODES


def regroup(codes: np.ndarray | list[int] | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved codes (a multiple of 5, in ``[0, 5120)``) → (linguistic, semantic) per pair.

    Both outputs have ``3 · groups`` entries; every third linguistic entry is :data:`LING_PAD`;
    semantic codes are in ``[0, 4096)``. Raises ``ValueError`` for a malformed stream.
    """
    arr = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    ling, sem = ids.split(arr.astype(np.int64).reshape(-1))
    groups = len(sem) // PAIRS_PER_GROUP
    lp = np.full((groups, PAIRS_PER_GROUP), LING_PAD, dtype=np.int64)
    lp[:, : ids.GROUP[0]] = ling.reshape(groups, ids.GROUP[0])
    return lp.reshape(-1), sem


def ungroup(ling: np.ndarray, sem: np.ndarray) -> np.ndarray:
    """Inverse of :func:`regroup`: pairs back to the interleaved ``[l l s s s]`` stream."""
    ling, sem = np.asarray(ling, dtype=np.int64), np.asarray(sem, dtype=np.int64)
    if len(ling) != len(sem) or len(sem) % PAIRS_PER_GROUP:
        raise ValueError(f"need equal pair counts, a multiple of 3; got {len(ling)}, {len(sem)}")
    lg = ling.reshape(-1, PAIRS_PER_GROUP)
    if (lg[:, ids.GROUP[0] :] != LING_PAD).any():
        raise ValueError("every third linguistic pair entry must be the pad id")
    return ids.interleave(lg[:, : ids.GROUP[0]].reshape(-1), sem)


def complete_codes(codes: np.ndarray | list[int] | torch.Tensor) -> np.ndarray:
    """The whole groups of a code stream (an incomplete tail group is dropped, as in ids)."""
    arr = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    arr = arr.astype(np.int64).reshape(-1)
    return arr[: len(arr) - len(arr) % ids.GROUP_SIZE]


@dataclass
class TokenEncoderConfig:
    dim: int = 192
    layers: int = 3
    heads: int = 4
    window: int = 8  # attention reach in pairs (±320 ms)
    ff_mult: int = 3
    dropout: float = 0.1
    n_mels: int = 80


class TokenEncoder(nn.Module):
    """``(B, P)`` linguistic and semantic pair codes → ``mu`` ``(B, 2P, n_mels)`` at 50 Hz."""

    def __init__(self, cfg: TokenEncoderConfig, pitch: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.ling = nn.Embedding(ids.LINGUISTIC_CODES + 1, cfg.dim)
        self.sem = nn.Embedding(ids.SEMANTIC_CODES, cfg.dim)
        self.phase = nn.Embedding(PAIRS_PER_GROUP, cfg.dim)
        self.pre = nn.Conv1d(cfg.dim, cfg.dim, 3, padding=1)  # one pair of look-ahead
        self.blocks = nn.ModuleList(
            TransformerBlock(cfg.dim, cfg.heads, cfg.window, cfg.ff_mult, cfg.dropout)
            for _ in range(cfg.layers)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.up = nn.Conv1d(cfg.dim, cfg.dim, 3, padding=1)
        self.proj = nn.Linear(cfg.dim, cfg.n_mels)
        self.pitch = PitchHead(cfg.dim) if pitch else None
        #: the pitch template's share of ``mu`` (zero at the start: see aqaa.vocoder.pitch)
        self.pitch_prior: nn.Conv1d | None = None
        if pitch:
            self.pitch_prior = nn.Conv1d(cfg.n_mels, cfg.n_mels, 3, padding=1)
            nn.init.zeros_(self.pitch_prior.weight)
            nn.init.zeros_(self.pitch_prior.bias)

    def forward(
        self,
        ling: torch.Tensor,
        sem: torch.Tensor,
        valid: torch.Tensor | None = None,
        offset: int = 0,
    ) -> torch.Tensor:
        """``valid`` (B, P) marks real pairs; ``offset`` is the absolute index of pair 0."""
        return self.encode(ling, sem, valid, offset)[0]

    def encode(
        self,
        ling: torch.Tensor,
        sem: torch.Tensor,
        valid: torch.Tensor | None = None,
        offset: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(``mu`` (B, 2P, n_mels), the pitch head's (B, 2P, 2) or None without ``pitch``)."""
        p = ling.shape[1]
        phase = (torch.arange(p, device=ling.device) + offset) % PAIRS_PER_GROUP
        x = self.ling(ling) + self.sem(sem) + self.phase(phase)[None]
        m = None if valid is None else valid[..., None].to(x.dtype)
        if m is not None:
            x = x * m
        x = x + self.pre(x.transpose(1, 2)).transpose(1, 2)
        for blk in self.blocks:
            x = blk(x, valid)
            if m is not None:
                x = x * m
        x = self.norm(x).repeat_interleave(FRAMES_PER_PAIR, dim=1)  # (B, 2P, dim)
        if m is not None:
            x = x * m.repeat_interleave(FRAMES_PER_PAIR, dim=1)
        x = x + self.up(x.transpose(1, 2)).transpose(1, 2)
        return self.proj(x), None if self.pitch is None else self.pitch(x)
