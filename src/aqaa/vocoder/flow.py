"""Optimal-transport conditional flow matching from noise to the (normalised) 50 Hz log-mel.

Path (Lipman et al. 2023, "OT-CFM" with ``σ_min``): ``x_t = (1 − (1 − σ_min)·t)·x0 + t·x1`` with
``x0 ~ N(0, I)`` and ``x1`` the target mel; the estimator regresses the constant velocity
``u = x1 − (1 − σ_min)·x0``. Times are drawn uniformly and warped by the cosine schedule
``t ← 1 − cos(t·π/2)`` (more steps near the noise end, as in CosyVoice), and inference integrates
with a few Euler steps on the same warped grid. Classifier-free guidance: the condition ``mu`` is
zeroed for a fraction of training examples; at inference
``v = (1 + w)·v(x, mu) − w·v(x, 0)`` (both evaluated in one batched call).

The estimator is a 1-D U-Net (one ×2 down/up level) of ResNet blocks (per-frame LayerNorm,
kernel-3 convolutions, additive time embedding) each followed by a band-attention transformer
block. Written by hand: the path and the solver are a few lines, and no dependency is needed.

With ``pitch`` set, the estimator also reads a harmonic template ``aux`` (B, n_mels, T) drawn from
an F0 contour (:mod:`aqaa.vocoder.pitch`) through a zero-initialised convolution added after the
first ResNet block, so a flow fine-tuned with it starts as the flow it came from. ``aux`` is kept in
both passes of the guidance: guidance amplifies the codes' condition, not the pitch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aqaa.vocoder.layers import ChannelNorm, TransformerBlock, timestep_embedding


@dataclass
class FlowConfig:
    n_mels: int = 80
    channels: int = 192
    mid_blocks: int = 2
    heads: int = 4
    window: int = 16  # attention reach in frames at 50 Hz (halved in the 25 Hz middle)
    ff_mult: int = 2
    time_dim: int = 128
    sigma_min: float = 1e-4
    cond_dropout: float = 0.2  # training probability of dropping mu (for guidance)
    n_steps: int = 5  # Euler steps at inference (a latency vs quality knob: --steps)
    cfg_strength: float = 0.7  # guidance weight w at inference (0 disables the second pass)
    prior_weight: float = 1.0  # weight of the auxiliary loss ||mu − x1||²
    pitch: bool = False  # predict F0 from the codes and condition on its harmonic template


class ResBlock1d(nn.Module):
    """``x + conv(act(norm(conv(act(norm(x))) + time)))`` with a 1×1 skip when widths differ."""

    def __init__(self, cin: int, cout: int, time_dim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = ChannelNorm(cin), nn.Conv1d(cin, cout, 3, padding=1)
        self.time = nn.Linear(time_dim, cout)
        self.norm2, self.conv2 = ChannelNorm(cout), nn.Conv1d(cout, cout, 3, padding=1)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) * mask
        h = h + self.time(temb)[:, :, None]
        h = self.conv2(F.silu(self.norm2(h))) * mask
        return (self.skip(x) + h) * mask


class Stage(nn.Module):
    """A ResNet block followed by a transformer block, on channels-first ``(B, C, T)``."""

    def __init__(self, cin: int, cout: int, cfg: FlowConfig, window: int) -> None:
        super().__init__()
        self.res = ResBlock1d(cin, cout, cfg.time_dim)
        self.tx = TransformerBlock(cout, cfg.heads, window, cfg.ff_mult)

    def forward(
        self,
        x: torch.Tensor,
        temb: torch.Tensor,
        mask: torch.Tensor,
        extra: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``extra`` (B, cout, T), if given, is added between the ResNet and transformer blocks."""
        h = self.res(x, temb, mask)
        if extra is not None:
            h = h + extra * mask
        valid = mask[:, 0] > 0
        return self.tx(h.transpose(1, 2), valid).transpose(1, 2) * mask


class UNetEstimator(nn.Module):
    """Velocity field ``v(x_t, mu, t)``: ``(B, n_mels, T)`` each, ``t`` (B,) → ``(B, n_mels, T)``."""

    def __init__(self, cfg: FlowConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.time_dim, cfg.time_dim * 2),
            nn.SiLU(),
            nn.Linear(cfg.time_dim * 2, cfg.time_dim),
        )
        self.time_dim = cfg.time_dim
        self.down = Stage(2 * cfg.n_mels, c, cfg, cfg.window)
        self.pitch_in: nn.Conv1d | None = None
        if cfg.pitch:
            self.pitch_in = nn.Conv1d(cfg.n_mels, c, 3, padding=1)
            nn.init.zeros_(self.pitch_in.weight)
            nn.init.zeros_(self.pitch_in.bias)
        self.downsample = nn.Conv1d(c, c, 3, stride=2, padding=1)
        half = max(1, cfg.window // 2)
        self.mid = nn.ModuleList(Stage(c, c, cfg, half) for _ in range(cfg.mid_blocks))
        self.upsample = nn.Conv1d(c, c, 3, padding=1)
        self.up = Stage(2 * c, c, cfg, cfg.window)
        self.final_norm = ChannelNorm(c)
        self.final = nn.Conv1d(c, c, 3, padding=1)
        self.out = nn.Conv1d(c, cfg.n_mels, 1)

    def forward(
        self,
        x: torch.Tensor,
        mu: torch.Tensor,
        t: torch.Tensor,
        mask: torch.Tensor,
        aux: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``mask`` (B, 1, T) is 1 on real frames; ``aux`` is the pitch template (``pitch`` only)."""
        if (aux is None) != (self.pitch_in is None):
            raise ValueError(
                "a pitch flow needs its template (aux), and only a pitch flow takes one"
            )
        temb = self.time_mlp(timestep_embedding(t, self.time_dim))
        extra = None if self.pitch_in is None else self.pitch_in(aux)
        h = self.down(torch.cat([x, mu], 1), temb, mask, extra)
        skip = h
        mask_half = mask[:, :, ::2]
        h = self.downsample(h) * mask_half
        for blk in self.mid:
            h = blk(h, temb, mask_half)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")[:, :, : x.shape[2]]
        h = self.upsample(h) * mask
        h = self.up(torch.cat([h, skip], 1), temb, mask)
        h = self.final(F.silu(self.final_norm(h))) * mask
        return self.out(h) * mask


def cosine_times(n_steps: int, device: torch.device | None = None) -> torch.Tensor:
    """The ``n_steps + 1`` Euler grid points ``1 − cos(k/n · π/2)``, from 0 to 1."""
    k = torch.linspace(0.0, 1.0, n_steps + 1, device=device)
    return 1.0 - torch.cos(k * math.pi / 2)


class FlowMatching(nn.Module):
    """Training loss and Euler sampler around a :class:`UNetEstimator`."""

    def __init__(self, cfg: FlowConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.estimator = UNetEstimator(cfg)

    def loss(
        self,
        x1: torch.Tensor,
        mu: torch.Tensor,
        mask: torch.Tensor,
        generator: torch.Generator,
        aux: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Masked mean-squared velocity error; ``x1``, ``mu`` (and ``aux``) are ``(B, n_mels, T)``."""
        b = x1.shape[0]
        t = torch.rand(b, generator=generator)
        t = 1.0 - torch.cos(t * math.pi / 2)
        x0 = torch.randn(x1.shape, generator=generator)
        keep = (torch.rand(b, generator=generator) >= self.cfg.cond_dropout).float()
        tt = t[:, None, None]
        xt = (1 - (1 - self.cfg.sigma_min) * tt) * x0 + tt * x1
        u = x1 - (1 - self.cfg.sigma_min) * x0
        pred = self.estimator(xt, mu * keep[:, None, None], t, mask, aux)
        err = (pred.float() - u).square() * mask
        return err.sum() / (mask.sum() * x1.shape[1])

    @torch.no_grad()
    def sample(
        self,
        mu: torch.Tensor,
        noise: torch.Tensor,
        mask: torch.Tensor | None = None,
        n_steps: int | None = None,
        cfg_strength: float | None = None,
        aux: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Integrate from ``noise`` (B, n_mels, T) to a normalised mel, conditioned on ``mu``
        (and, for a pitch flow, on the template ``aux``)."""
        steps = self.cfg.n_steps if n_steps is None else n_steps
        w = self.cfg.cfg_strength if cfg_strength is None else cfg_strength
        if steps < 1:
            raise ValueError(f"n_steps must be at least 1, got {steps}")
        if mask is None:
            mask = noise.new_ones(noise.shape[0], 1, noise.shape[2])
        grid = cosine_times(steps)
        x = noise
        b = x.shape[0]
        guided = w != 0.0
        mu_in = torch.cat([mu, torch.zeros_like(mu)]) if guided else mu
        mask_in = torch.cat([mask, mask]) if guided else mask
        aux_in = torch.cat([aux, aux]) if guided and aux is not None else aux
        for k in range(steps):
            t0, t1 = grid[k], grid[k + 1]
            x_in = torch.cat([x, x]) if guided else x
            v = self.estimator(x_in, mu_in, t0.expand(x_in.shape[0]), mask_in, aux_in).float()
            if guided:
                v = (1 + w) * v[:b] - w * v[b:]
            x = x + (t1 - t0) * v
        return x * mask
