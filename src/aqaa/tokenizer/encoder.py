"""A chunk-streaming transformer encoder, shared by the linguistic and semantic tokenizers.

Attention is limited to blocks: a frame in chunk `c` sees the frames of chunks `c - left_chunks … c`
(itself included, nothing to its right beyond its own chunk). Offline encoding applies that block
mask to the whole utterance; streaming encoding feeds one chunk at a time and keeps, per layer, the
keys and values of the last `left_chunks` chunks. Both compute the same function, so streaming
tokens equal offline tokens up to float rounding (tested). Positions are rotary (RoPE) on the
absolute frame index, so any length works.

Written by hand rather than taken from a library because the streaming cache must match the
training-time mask exactly, and that is a few lines here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class EncoderConfig:
    input_dim: int
    dim: int = 256
    layers: int = 6
    heads: int = 4
    ff_mult: int = 4
    chunk: int = 8
    left_chunks: int = 4
    dropout: float = 0.1


def _rope(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :d/2], x[..., d/2:]) of (B, H, T, D) by angles pos * θ_i."""
    d = x.shape[-1] // 2
    inv = 1.0 / (10000 ** (torch.arange(d, device=x.device, dtype=torch.float32) / d))
    ang = pos.to(torch.float32)[:, None] * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.dim)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.ff = nn.Sequential(
            nn.Linear(cfg.dim, cfg.ff_mult * cfg.dim),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.ff_mult * cfg.dim, cfg.dim),
        )
        self.drop = nn.Dropout(cfg.dropout)

    def qkv_heads(self, x: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, ...]:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        return _rope(q, pos), _rope(k, pos), v

    def finish(self, x: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        b, h, t, dh = attn.shape
        x = x + self.drop(self.out(attn.transpose(1, 2).reshape(b, t, h * dh)))
        return x + self.drop(self.ff(self.norm2(x)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_heads(x, pos)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.finish(x, attn)


@dataclass
class EncoderState:
    """Streaming state: frames consumed so far and per-layer (keys, values) of recent chunks."""

    frames: int = 0
    cache: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


class ChunkedEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.proj = nn.Linear(cfg.input_dim, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.dim)

    def block_mask(self, t: int, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B or 1, 1, T, T) boolean: True where attention is allowed."""
        c = torch.arange(t) // self.cfg.chunk
        allowed = (c[None, :] <= c[:, None]) & (c[None, :] >= c[:, None] - self.cfg.left_chunks)
        mask = allowed[None, None]
        if lengths is not None:
            keys = torch.arange(t)[None, :] < lengths[:, None]
            mask = mask & keys[:, None, None, :]
        return mask

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, input_dim) -> (B, T, dim), offline with the streaming block mask."""
        t = x.shape[1]
        mask = self.block_mask(t, lengths).to(x.device)
        pos = torch.arange(t, device=x.device)
        h = self.proj(x)
        for blk in self.blocks:
            h = blk(h, mask, pos)
        return self.norm(h)

    @torch.no_grad()
    def stream(
        self, x: torch.Tensor, state: EncoderState, final: bool = False
    ) -> tuple[torch.Tensor, EncoderState]:
        """Encode the next chunks of one utterance: x (1, n·chunk, input_dim).

        Only whole chunks, except with `final=True`, where the last chunk may be partial (as the
        last chunk of an offline encode is).
        """
        c = self.cfg.chunk
        if x.shape[1] % c and not final:
            raise ValueError(f"stream() takes whole chunks of {c} frames, got {x.shape[1]}")
        outs = [self._stream_chunk(x[:, i : i + c], state) for i in range(0, x.shape[1], c)]
        out = torch.cat(outs, 1) if outs else x.new_zeros(1, 0, self.cfg.dim)
        return out, state

    def _stream_chunk(self, x: torch.Tensor, state: EncoderState) -> torch.Tensor:
        if state.frames % self.cfg.chunk:
            raise ValueError("a partial chunk was already streamed: the utterance has ended")
        c = x.shape[1]
        pos = torch.arange(state.frames, state.frames + c, device=x.device)
        keep = self.cfg.left_chunks * self.cfg.chunk
        h = self.proj(x)
        new_cache = []
        for i, blk in enumerate(self.blocks):
            q, k, v = blk.qkv_heads(h, pos)
            if state.cache:
                pk, pv = state.cache[i]
                k_all, v_all = torch.cat([pk, k], 2), torch.cat([pv, v], 2)
            else:
                k_all, v_all = k, v
            h = blk.finish(h, F.scaled_dot_product_attention(q, k_all, v_all))
            new_cache.append(
                (
                    k_all[:, :, -keep:] if keep else k_all[:, :, :0],
                    v_all[:, :, -keep:] if keep else v_all[:, :, :0],
                )
            )
        state.cache = new_cache
        state.frames += c
        return self.norm(h)
