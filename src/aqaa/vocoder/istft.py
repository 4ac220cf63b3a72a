"""Mel vocoder: log-mel at 50 Hz → 24 kHz waveform (Vocos-style ConvNeXt backbone + iSTFT head).

The backbone maps each (normalised) mel frame, with the context of its kernel-7 depthwise
convolutions, to the magnitude and phase of one STFT frame (``n_fft = 4·hop = 1920``, periodic Hann
window); the head's inverse STFT overlap-adds the frames. Frame ``j`` is centred on output sample
``j · hop`` (the same ``center=True`` convention as :mod:`aqaa.vocoder.mel`), and ``F`` frames give
exactly ``F · hop`` samples. Trained with multi-resolution STFT, mel and adversarial losses
(:mod:`aqaa.vocoder.losses`). Everything is per frame or local, so overlapping windows of a mel
decode to the same samples as the whole mel, away from the window edges.

``upsample = U > 1`` (session 5): the backbone's frames are upsampled ×U in time (a transposed
convolution with kernel = stride, then two ConvNeXt blocks at the new rate) and the head synthesises
frames of ``hop / U`` samples with ``n_fft / U``. Reason, measured in session 3: at hop 480 (20 ms,
where Vocos uses 256 at 24 kHz) the shipped vocoder buzzes at the hop rate even on ground-truth mel
(autocorrelation 0.77 at 20 ms; copy-synthesis DNSMOS 3.28 vs source 3.96): each 80 ms frame must
carry a phase that lines up with its neighbours 20 ms away, which a frame-wise head learns slowly.
Default 1 keeps configs written before it loading unchanged.

``phase_advance`` (session 11): bin ``k`` of head frame ``j`` gets ``2π k j hop / n_fft`` added to its
predicted phase, the advance of a steady sinusoid at the bin's centre frequency. Reason, measured in
session 11: without it, where the mel is steady the translation-equivariant backbone emits near
identical frames every hop, and only harmonics on the hop-rate grid (50 Hz) come out coherent; 48%
of the copy synthesis's 40–2,000 Hz energy sat within ±2 Hz of a multiple of 50 Hz (source: 8%),
and pyin read a constant 50 Hz in every clip. With the prior, identical frames make a sinusoid at
the bin frequency (12.5 Hz grid). The absolute frame index then matters: `MelVocoder.forward`
takes ``frame0``, the index of the first mel frame, so that streaming windows decode what the
whole mel does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class MelVocoderConfig:
    n_mels: int = 80
    dim: int = 192
    intermediate: int = 576
    layers: int = 8
    kernel: int = 7
    hop_length: int = 480
    n_fft: int = 1920  # synthesis frame (and window) length, 4 × hop
    #: Head frames per mel frame (1 = the head runs at the mel rate); hop and n_fft divide by it.
    upsample: int = 1
    #: Add each bin's steady-sinusoid phase advance to the predicted phase (see module doc).
    phase_advance: bool = False


class ConvNeXtBlock(nn.Module):
    """Depthwise conv → LayerNorm → pointwise MLP with a learned layer scale (ConvNeXt/Vocos)."""

    def __init__(self, dim: int, intermediate: int, kernel: int, scale: float) -> None:
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, intermediate)
        self.pw2 = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(torch.full((dim,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        h = self.norm(self.dw(x).transpose(1, 2))
        h = self.gamma * self.pw2(F.gelu(self.pw1(h)))
        return x + h.transpose(1, 2)


def istft(
    spec: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor, cache: bool = False
) -> torch.Tensor:
    """Inverse STFT of ``(B, n_fft // 2 + 1, T)`` complex frames → ``(B, T · hop)`` samples.

    Windowed overlap-add normalised by the summed squared window; frame ``j`` is centred on
    sample ``j · hop`` (``torch.stft(center=True)`` framing), and the output stops ``hop``
    samples after the last frame's centre. ``cache=True`` reuses the normalisation per length
    (for a fixed window, as in :class:`ISTFTHead`).
    """
    t = spec.shape[-1]
    frames = torch.fft.irfft(spec, n=n_fft, dim=1) * window[None, :, None]
    full = (t - 1) * hop + n_fft
    start = n_fft // 2
    y = F.fold(frames, (1, full), (1, n_fft), stride=(1, hop))[:, 0, 0, start : start + t * hop]
    key = (t, n_fft, hop)
    env = _ENVELOPES.get(key) if cache else None
    if env is None:
        with torch.inference_mode(False):  # a cached envelope must also serve training
            env = F.fold(
                window.detach().clone().square()[None, :, None].expand(1, -1, t),
                (1, full),
                (1, n_fft),
                stride=(1, hop),
            )[0, 0, 0, start : start + t * hop].clamp(min=1e-8)
        if cache:
            if len(_ENVELOPES) > 256:
                _ENVELOPES.clear()
            _ENVELOPES[key] = env
    return y / env


_ENVELOPES: dict[tuple[int, int, int], torch.Tensor] = {}


class ISTFTHead(nn.Module):
    """``(B, T, dim)`` → ``(B, T · hop)`` samples: predicted log-magnitude and phase, inverse STFT."""

    def __init__(self, dim: int, n_fft: int, hop: int, phase_advance: bool = False) -> None:
        super().__init__()
        if n_fft % hop or n_fft % 2:
            raise ValueError(f"n_fft ({n_fft}) must be an even multiple of hop ({hop})")
        self.n_fft, self.hop = n_fft, hop
        self.phase_advance = phase_advance
        self.proj = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def forward(self, x: torch.Tensor, frame0: int = 0) -> torch.Tensor:
        """`frame0`: the index of `x`'s first frame in the utterance (with `phase_advance`)."""
        with torch.autocast("cpu", enabled=False):
            h = self.proj(x.float()).transpose(1, 2)  # (B, n_fft + 2, T)
            log_mag, phase = h.chunk(2, dim=1)
            if self.phase_advance:  # 2π k j hop / n_fft, reduced mod 2π in integers
                period = self.n_fft // self.hop
                k = torch.arange(phase.shape[1])[:, None]
                j = torch.arange(frame0, frame0 + phase.shape[2])[None] % period
                phase = phase + (2 * math.pi / period) * ((k * j) % period).to(phase.dtype)
            mag = torch.exp(log_mag).clamp(max=1e2)
            spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
            return istft(spec, self.n_fft, self.hop, self.window, cache=True)


class MelVocoder(nn.Module):
    """``(B, T, n_mels)`` normalised log-mel → ``(B, T · hop)`` waveform."""

    def __init__(self, cfg: MelVocoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.n_mels, cfg.dim, cfg.kernel, padding=cfg.kernel // 2)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        scale = 1.0 / cfg.layers
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(cfg.dim, cfg.intermediate, cfg.kernel, scale) for _ in range(cfg.layers)
        )
        u = cfg.upsample
        if u < 1 or cfg.hop_length % u or cfg.n_fft % u:
            raise ValueError(f"upsample ({u}) must divide hop ({cfg.hop_length}) and n_fft")
        if u > 1:
            self.up = nn.ConvTranspose1d(cfg.dim, cfg.dim, u, stride=u)
            self.up_blocks = nn.ModuleList(
                ConvNeXtBlock(cfg.dim, cfg.intermediate, cfg.kernel, scale) for _ in range(2)
            )
        self.final_norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.head = ISTFTHead(cfg.dim, cfg.n_fft // u, cfg.hop_length // u, cfg.phase_advance)

    def forward(self, mel: torch.Tensor, frame0: int = 0) -> torch.Tensor:
        """``(B, T, n_mels)`` → ``(B, T · hop)``; `frame0` is the first mel frame's index in the
        utterance (it matters only with ``phase_advance``)."""
        x = self.embed(mel.transpose(1, 2))
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for blk in self.blocks:
            x = blk(x)
        if self.cfg.upsample > 1:
            x = self.up(x)
            for blk in self.up_blocks:
                x = blk(x)
        return self.head(self.final_norm(x.transpose(1, 2)), frame0 * self.cfg.upsample)
