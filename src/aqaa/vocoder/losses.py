"""Training losses and discriminators of the mel vocoder (used only by ``aqaa train vocoder``).

* Multi-resolution STFT loss (Yamamoto et al., Parallel WaveGAN): spectral convergence plus L1 of
  log magnitudes at three resolutions.
* Discriminators, kept small: multi-period (HiFi-GAN MPD, periods 2, 3, 5, 7, 11) and
  multi-resolution spectrogram (UnivNet MRD) discriminators.
* Least-squares GAN losses and L1 feature matching.
* Phase losses (`phase_loss`, after APNet, Ai & Ling 2023): the instantaneous phase, its time
  difference (instantaneous frequency) and its frequency difference (group delay) of the output's
  STFT against the target's. Magnitude losses and the discriminators constrain phase only
  indirectly; after 6,000 GAN steps the harmonics of copy synthesis still did not follow the
  source's pitch (session 12 in `TRAINING.md`), which these supervise directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

STFT_RESOLUTIONS: tuple[tuple[int, int, int], ...] = (
    (512, 128, 512),
    (1024, 256, 1024),
    (2048, 512, 2048),
)


def _stft_mag(x: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    window = torch.hann_window(win, device=x.device)
    spec = torch.stft(x.float(), n_fft, hop, win, window, center=True, return_complex=True)
    return spec.abs().clamp(min=1e-7)  # (B, F, T)


def _unit(spec: torch.Tensor, eps: float) -> torch.Tensor:
    return spec / (spec.abs() + eps)


def phase_loss(
    y_hat: torch.Tensor, y: torch.Tensor, n_fft: int = 1024, hop: int = 256, eps: float = 1e-4
) -> dict[str, torch.Tensor]:
    """Phase distances of ``(B, T)`` waveforms, each 1 − cos of an angle difference (0 when equal,
    2 when opposite), averaged over bins weighted by the target's magnitude (so noise-floor bins,
    whose phase is arbitrary, barely count):

    - ``ip``: instantaneous phase, ∠ŷ − ∠y per bin;
    - ``iaf``: instantaneous frequency, the phase advance from frame to frame;
    - ``gd``: group delay, the phase step from bin to bin.

    APNet uses anti-wrapped absolute differences of angles; the cosine form computes the same
    differences as products of unit phasors, needs no ``atan2`` and has no wrap-around, and its
    gradient stays finite where the output is silent (``eps``)."""
    window = torch.hann_window(n_fft, device=y.device)

    def stft(x: torch.Tensor) -> torch.Tensor:
        return torch.stft(x.float(), n_fft, hop, n_fft, window, center=True, return_complex=True)

    s_hat, s = stft(y_hat), stft(y)
    u_hat, u = _unit(s_hat, eps), _unit(s, eps).detach()
    w = s.abs().detach()
    w = w / w.mean(dim=(1, 2), keepdim=True).clamp(min=1e-8)

    def dist(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return ((1.0 - (a * b.conj()).real) * weight).mean()

    return {
        "ip": dist(u_hat, u, w),
        "iaf": dist(u_hat[..., 1:] * u_hat[..., :-1].conj(), u[..., 1:] * u[..., :-1].conj(),
                    torch.minimum(w[..., 1:], w[..., :-1])),
        "gd": dist(u_hat[:, 1:] * u_hat[:, :-1].conj(), u[:, 1:] * u[:, :-1].conj(),
                   torch.minimum(w[:, 1:], w[:, :-1])),
    }  # fmt: skip


def multi_resolution_stft_loss(
    y_hat: torch.Tensor,
    y: torch.Tensor,
    resolutions: tuple[tuple[int, int, int], ...] = STFT_RESOLUTIONS,
) -> torch.Tensor:
    """Mean over resolutions of spectral convergence + L1 of log magnitude; ``(B, T)`` inputs."""
    total = y.new_zeros(())
    for n_fft, hop, win in resolutions:
        m_hat, m = _stft_mag(y_hat, n_fft, hop, win), _stft_mag(y, n_fft, hop, win)
        sc = torch.linalg.norm(m - m_hat, dim=(1, 2)) / torch.linalg.norm(m, dim=(1, 2))
        total = total + sc.mean() + F.l1_loss(m_hat.log(), m.log())
    return total / len(resolutions)


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN period discriminator: samples ``p`` apart form one sequence.

    HiFi-GAN folds the waveform to ``(T / p, p)`` and uses ``(k, 1)`` 2-D convolutions; the same
    function is computed here with 1-D convolutions over the ``p`` phases folded into the batch,
    which is several times faster on CPU.
    """

    def __init__(self, period: int, channels: tuple[int, ...] = (8, 16, 32, 64)) -> None:
        super().__init__()
        self.period = period
        convs, cin = [], 1
        for i, c in enumerate(channels):
            stride = 3 if i < len(channels) - 1 else 1
            convs.append(weight_norm(nn.Conv1d(cin, c, 5, stride, padding=2)))
            cin = c
        self.convs = nn.ModuleList(convs)
        self.post = weight_norm(nn.Conv1d(cin, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), mode="reflect")
        p = self.period
        h = x.view(b, -1, p).transpose(1, 2).reshape(b * p, 1, -1)  # (B·p, 1, T/p)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.1)
            feats.append(h)
        h = self.post(h)
        feats.append(h)
        return h.reshape(b, -1), feats


class ResolutionDiscriminator(nn.Module):
    """UnivNet-style discriminator on one linear magnitude spectrogram resolution."""

    def __init__(self, n_fft: int, hop: int, win: int, channels: int = 16) -> None:
        super().__init__()
        self.res = (n_fft, hop, win)
        self.convs = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(1, channels, (7, 5), (4, 2), padding=(3, 2))),
                weight_norm(nn.Conv2d(channels, channels, (5, 3), (2, 1), padding=(2, 1))),
                weight_norm(nn.Conv2d(channels, channels, (5, 3), (2, 1), padding=(2, 1))),
                weight_norm(nn.Conv2d(channels, channels, 3, padding=1)),
            ]
        )
        self.post = weight_norm(nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = _stft_mag(x, *self.res).pow(0.3)[:, None]  # (B, 1, F, T), compressed
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.1)
            feats.append(h)
        h = self.post(h)
        feats.append(h)
        return h.flatten(1), feats


class Discriminators(nn.Module):
    """All sub-discriminators; ``forward(x)`` returns one (logits, features) per sub-model."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), channels: int = 16) -> None:
        super().__init__()
        self.subs = nn.ModuleList(
            [PeriodDiscriminator(p) for p in periods]
            + [ResolutionDiscriminator(*r, channels=channels) for r in STFT_RESOLUTIONS]
        )

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [d(x) for d in self.subs]


def discriminator_loss(real: list, fake: list) -> torch.Tensor:
    """Least-squares GAN: real logits → 1, fake logits → 0, summed over sub-discriminators."""
    return sum(
        ((1 - r[0].float()) ** 2).mean() + (f[0].float() ** 2).mean()
        for r, f in zip(real, fake, strict=True)
    )


def generator_loss(fake: list) -> torch.Tensor:
    return sum(((1 - f[0].float()) ** 2).mean() for f in fake)


def feature_matching_loss(real: list, fake: list) -> torch.Tensor:
    total = 0.0
    for r, f in zip(real, fake, strict=True):
        for fr, ff in zip(r[1], f[1], strict=True):
            total = total + F.l1_loss(ff.float(), fr.detach().float())
    return total
