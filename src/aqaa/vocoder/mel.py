"""The vocoder's 24 kHz mel spectrogram (its training target and the mel vocoder's input).

Parameters (:class:`MelConfig` defaults), chosen for 24 kHz speech at the 50 Hz frame rate of
design §1.4:

* ``sample_rate=24000``, ``hop_length=480`` (20 ms, 50 frames/s: 2 frames per 25 Hz token pair);
* ``win_length=1200`` (50 ms periodic Hann window), zero-padded to ``n_fft=2048`` (11.7 Hz bins);
* ``n_mels=80`` Slaney mel bands from ``fmin=0`` to ``fmax=12000`` (the Nyquist frequency);
* ``center=True`` framing (reflect padding): frame ``i`` is centred on sample ``i * 480``, so
  ``n`` samples give ``1 + n // 480`` frames and ``F`` frames are decoded to ``F * 480`` samples;
* natural log of the mel *power*, floored at ``1e-5`` (about 100 dB below a full-scale sine, so
  silence does not spend the model's capacity on the 16-bit noise floor).

No peak normalisation is applied to the vocoder's audio: loudness is a style the tokens carry.
The recipe itself is :func:`aqaa.audio.log_mel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aqaa.audio import log_mel, mel_filterbank


@dataclass
class MelConfig:
    """Framing and filterbank of the vocoder's log-mel (see the module docstring)."""

    sample_rate: int = 24000
    n_fft: int = 2048
    win_length: int = 1200
    hop_length: int = 480
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 12000.0
    floor: float = 1e-5

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length


def mel_spectrogram(x: np.ndarray | torch.Tensor, cfg: MelConfig) -> torch.Tensor:
    """``(T,)`` or ``(B, T)`` samples at ``cfg.sample_rate`` → ``(frames[, B], n_mels)`` log-mel.

    ``frames == 1 + T // hop_length``; differentiable for tensor input.
    """
    return log_mel(
        x,
        cfg.sample_rate,
        cfg.n_mels,
        n_fft=cfg.n_fft,
        win_length=cfg.win_length,
        hop_length=cfg.hop_length,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        center=True,
        floor=cfg.floor,
    )


def fit_frames(mel: torch.Tensor, frames: int, cfg: MelConfig) -> torch.Tensor:
    """Crop or pad ``(T, n_mels)`` to ``frames`` rows; padding is the log floor (silence)."""
    if mel.shape[0] >= frames:
        return mel[:frames]
    pad = mel.new_full((frames - mel.shape[0], mel.shape[1]), float(np.log(cfg.floor)))
    return torch.cat([mel, pad], 0)


def griffin_lim(mel: np.ndarray | torch.Tensor, cfg: MelConfig, n_iter: int = 32) -> np.ndarray:
    """Fallback mel inversion (tests and debugging only): ``(F, n_mels)`` → ``F * hop`` samples.

    The mel power is mapped back to linear frequency with the filterbank's pseudo-inverse
    (fast; librosa's NNLS is minutes per utterance), then librosa's Griffin-Lim estimates phase.
    """
    import librosa

    m = mel.detach().cpu().numpy() if isinstance(mel, torch.Tensor) else np.asarray(mel)
    frames = m.shape[0]
    if frames == 0:
        return np.zeros(0, dtype=np.float32)
    fb = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax).numpy()
    power = np.maximum(np.exp(m.astype(np.float64)) @ np.linalg.pinv(fb), 0.0).T  # (bins, F)
    mag = np.sqrt(power)
    mag = np.concatenate([mag, mag[:, -1:]], axis=1)  # F + 1 centred frames span F · hop samples
    y = librosa.griffinlim(
        mag,
        n_iter=n_iter,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        n_fft=cfg.n_fft,
        center=True,
        random_state=0,
    )
    return y[: frames * cfg.hop_length].astype(np.float32)
