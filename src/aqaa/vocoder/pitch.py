"""An explicit pitch path for the flow: F0 predicted from the codes, drawn as a harmonic template.

Why (session 24, TRAINING.md): the flow's mel lacks the pitch harmonics that the recording's
mel shows as striations in its lowest ~25 bands, and no sampler setting, noise temperature or
fine-tuning of the mel vocoder on the flow's output puts them back. The codes do carry the pitch
(the semantic tokenizer is trained to reconstruct log-F0 from them), but mapping a pitch to the
exact bands its harmonics fall in is a hard non-linear job for a small estimator. So, as FastSpeech
2 predicts pitch and NSF vocoders feed a sine excitation, the vocoder here

1. predicts per 50 Hz mel frame a normalised log-F0 and a voicing logit from the token encoder's
   features (:class:`PitchHead`, trained on WORLD's F0 of the recording, :func:`frame_f0`), and
2. draws that pitch as a *harmonic template* (:func:`harmonic_template`): the log-mel that a flat
   harmonic comb at F0 would have under the vocoder's own STFT window and mel filterbank. A log
   mel of voiced speech is close to its envelope plus this comb, so the template enters twice,
   each through a zero-initialised convolution (a vocoder gaining the path starts as it was):
   added to the encoder's ``mu`` (``TokenEncoder.pitch_prior``), where the prior loss rewards
   the striations directly, and as an extra input of the flow's estimator
   (:class:`aqaa.vocoder.flow.UNetEstimator`). Training feeds the template of the *true* F0
   (teacher forcing); decoding feeds the predicted one.

Measured (session 25, `TRAINING.md`): with the estimator's input alone, 1,000 fine-tuning steps
moved its weights by at most 0.014 and the flow's mel stayed smooth (the striations are a small
share of the velocity loss); hence the second route through ``mu``. 1,500 steps of both from the
shipped vocoder: resynthesis WER 46.1% (shipped 34.5%), DNSMOS 3.164 (3.149), the styles' F0
effects lost. Not shipped. `aqaa eval vocoder --decompose` showed why it could not pay: putting
the recording's own harmonics into the flow's mel changes no words; the words are in the envelope.

The template is computed per frame in closed form, with no phase, so a streamed window gives the
same template as the offline decode for the same frames. Each STFT bin gets the power of the
Hann window's transform at its distance from the nearest harmonic (side lobes of the next
harmonics are below −31 dB and left out).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aqaa.audio import mel_filterbank
from aqaa.vocoder.mel import MelConfig

#: log-F0 (natural log of Hz) is predicted as ``(lf0 − LF0_MEAN) / LF0_SCALE``
LF0_MEAN, LF0_SCALE = 5.0, 0.5
#: F0 search range of :func:`frame_f0` (Hz)
F0_FLOOR, F0_CEIL = 50.0, 700.0
#: template = ``(log(mel_power + TEMPLATE_FLOOR) − TEMPLATE_SHIFT) / TEMPLATE_SCALE``
TEMPLATE_FLOOR, TEMPLATE_SHIFT, TEMPLATE_SCALE = 1e-5, -7.0, 4.0  # about [−1.1, 1]


class PitchHead(nn.Module):
    """Token-encoder features ``(B, F, dim)`` → ``(B, F, 2)``: normalised log-F0, voicing logit."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 2))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def frame_f0(wav: np.ndarray, cfg: MelConfig, frames: int) -> np.ndarray:
    """F0 in Hz (0 where unvoiced) of each of ``frames`` mel frames of ``wav`` (WORLD DIO +
    StoneMask at the mel hop: frame ``i`` is centred on sample ``i · hop``, as the mel's)."""
    import pyworld as pw

    x = np.asarray(wav, dtype=np.float64)
    out = np.zeros(frames, dtype=np.float32)
    if len(x) < cfg.hop_length or not np.any(x):
        return out
    period = 1000.0 * cfg.hop_length / cfg.sample_rate
    f0, t = pw.dio(x, cfg.sample_rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=period)
    f0 = pw.stonemask(x, f0, t, cfg.sample_rate)
    n = min(frames, len(f0))
    out[:n] = f0[:n]
    return out


def pitch_targets(f0_hz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """F0 in Hz → (normalised log-F0, 0 where unvoiced; voicing 0/1), the head's targets."""
    voiced = (f0_hz > 0).float()
    lf0 = torch.where(f0_hz > 0, (torch.log(f0_hz.clamp(min=1.0)) - LF0_MEAN) / LF0_SCALE, 0.0)
    return lf0, voiced


def pitch_to_f0(pred: torch.Tensor) -> torch.Tensor:
    """The head's output ``(..., 2)`` → F0 in Hz, 0 where the voicing logit is negative."""
    f0 = torch.exp(pred[..., 0].float() * LF0_SCALE + LF0_MEAN).clamp(F0_FLOOR, F0_CEIL)
    return torch.where(pred[..., 1] > 0, f0, torch.zeros_like(f0))


def pitch_loss(pred: torch.Tensor, f0_hz: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 on normalised log-F0 over voiced frames + voicing cross-entropy over ``mask`` frames.

    ``pred`` (B, F, 2), ``f0_hz`` and ``mask`` (B, F)."""
    lf0, voiced = pitch_targets(f0_hz)
    m = mask.float()
    vm = m * voiced
    l1 = ((pred[..., 0].float() - lf0).abs() * vm).sum() / vm.sum().clamp(min=1.0)
    bce = nn.functional.binary_cross_entropy_with_logits(
        pred[..., 1].float(), voiced, reduction="none"
    )
    return l1 + (bce * m).sum() / m.sum().clamp(min=1.0)


def _hann_power(x: torch.Tensor) -> torch.Tensor:
    """|W(x)|² of a Hann window's transform at ``x`` window-bins off centre, 1 at 0."""
    x = x.abs()
    near = (x - 1.0).abs() < 1e-4  # sinc(1) = 0 over 1 − 1² = 0: the limit is 1/2
    w = torch.sinc(x) / torch.where(near, torch.ones_like(x), 1.0 - x.square())
    w = torch.where(near, torch.full_like(x, 0.5), w)
    return torch.where(x < 2.5, w.square(), torch.zeros_like(x))


def harmonic_template(f0_hz: torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """F0 ``(B, F)`` in Hz (0: unvoiced) → template ``(B, n_mels, F)``: the normalised log-mel of
    a flat harmonic comb at that F0 under the vocoder's window and filterbank (see the module)."""
    bins = torch.linspace(0.0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1, device=f0_hz.device)
    fb = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
    f0 = f0_hz.float().clamp(min=0.0)[..., None]  # (B, F, 1)
    safe = f0.clamp(min=1.0)
    k = torch.round(bins / safe)  # nearest harmonic number per bin
    dist_hz = bins - k * safe
    power = _hann_power(dist_hz * cfg.win_length / cfg.sample_rate)
    power = power * ((k >= 1) & (f0 > 0)).float()  # (B, F, bins)
    mel = power @ fb.to(power.device)  # (B, F, n_mels)
    z = (torch.log(mel + TEMPLATE_FLOOR) - TEMPLATE_SHIFT) / TEMPLATE_SCALE
    return z.transpose(1, 2)
