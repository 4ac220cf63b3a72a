"""Apply prosody controls to a rendered utterance.

TTS engines control speaking rate natively (the voice bank passes the rate to them); everything
else is done here, the same way for every engine, so that "+6 semitones" means the same thing for
espeak-ng, flite, festival and piper:

- pitch shift, pitch range, glide, whisper and formant warp go through the WORLD vocoder
  (`pyworld`): analysis into F0, spectral envelope and aperiodicity, edit, resynthesis. Whisper is
  F0 = 0 with full aperiodicity, i.e. the spectral envelope excited by noise alone. A formant warp
  (scaling the envelope's frequency axis) with an F0 shift turns a male voice into a plausible
  female one (a shorter vocal tract), which widens the voice bank.
- level: the utterance is set to a reference RMS, then moved by `loudness` dB. Loud speech also gets
  a flatter spectral tilt and soft speech a steeper one (vocal effort), and a soft limiter replaces
  clipping.

WORLD costs about 1/7 of real time per core at 22 kHz, so it runs only when a control needs it.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from aqaa.data.styles import Prosody

#: RMS of a neutral rendering, in dBFS. Leaves ≥ 20 dB of headroom for loud styles.
REFERENCE_RMS_DB = -26.0
_FRAME_MS = 5.0


def needs_world(p: Prosody, formant: float = 1.0, f0_shift: float = 0.0) -> bool:
    return (
        p.whisper
        or p.pitch != 0.0
        or p.pitch_range != 1.0
        or p.glide != 0.0
        or formant != 1.0
        or f0_shift != 0.0
    )


def world_edit(
    x: np.ndarray,
    sample_rate: int,
    *,
    pitch: float = 0.0,
    pitch_range: float = 1.0,
    glide: float = 0.0,
    whisper: bool = False,
    formant: float = 1.0,
) -> np.ndarray:
    """Resynthesise `x` with an edited F0 contour and spectral envelope (WORLD vocoder)."""
    import pyworld as pw  # optional dependency of the data extra

    x64 = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = _f0(x64, sample_rate)
    sp = pw.cheaptrick(x64, f0, t, sample_rate)
    ap = pw.d4c(x64, f0, t, sample_rate)

    if formant != 1.0:
        sp = _warp_envelope(sp, formant)
    voiced = f0 > 0
    if whisper:
        f0 = np.zeros_like(f0)
        ap = np.ones_like(ap)
    elif voiced.any():
        lf0 = np.log(f0[voiced])
        mean = lf0.mean()
        ramp = np.linspace(0.0, 1.0, len(f0))[voiced] * glide
        lf0 = mean + (lf0 - mean) * pitch_range + (pitch + ramp) * np.log(2.0) / 12.0
        f0 = f0.copy()
        f0[voiced] = np.clip(np.exp(lf0), 40.0, 1100.0)
    y = pw.synthesize(f0, sp, ap, sample_rate, _FRAME_MS)
    return y[: len(x)].astype(np.float32)


def _warp_envelope(sp: np.ndarray, ratio: float) -> np.ndarray:
    """Scale the frequency axis of a spectral envelope: formants move by `ratio`."""
    bins = np.arange(sp.shape[1], dtype=np.float64)
    src = np.clip(bins / ratio, 0, sp.shape[1] - 1)
    return np.stack([np.interp(src, bins, frame) for frame in sp])


def _f0(x64: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """F0 contour (0 = unvoiced) on WORLD's 5 ms frame grid, and the frame times.

    librosa's pyin at a 10 ms hop, interpolated in log-F0, rather than WORLD's own trackers: on the
    low piper `joe` assistant voice dio + stonemask reads ~171 Hz and harvest ~105 Hz (with octave
    jumps in 10% of the frames) against pyin's ~88 Hz, and a resynthesis from those contours moves
    pitch by the wrong amount (a -4 semitone edit came out +2.8). With pyin's contour the WORLD
    round trip keeps 87.6 Hz and -4/+4 semitone edits measure -4.0/+4.1. Corpora c1 and c2 were
    built with dio. Cost ~0.15x real time.
    """
    import librosa

    hop = round(sample_rate * 0.010)
    frame = 1 << int(np.ceil(np.log2(sample_rate * 0.064)))
    f, voiced, _ = librosa.pyin(
        x64.astype(np.float32),
        fmin=50.0,
        fmax=600.0,
        sr=sample_rate,
        frame_length=frame,
        hop_length=hop,
        center=True,
    )
    n = int(len(x64) / (sample_rate * _FRAME_MS / 1000.0)) + 1
    t = np.arange(n, dtype=np.float64) * _FRAME_MS / 1000.0
    tp = np.arange(len(f), dtype=np.float64) * hop / sample_rate
    voiced = voiced & np.isfinite(f)
    if not voiced.any():
        return np.zeros(n), t
    lf0 = np.interp(t, tp[voiced], np.log(f[voiced]))
    v = np.interp(t, tp, voiced.astype(np.float64)) > 0.5
    return np.where(v, np.exp(lf0), 0.0), t


def median_f0(x: np.ndarray, sample_rate: int) -> float:
    """Median F0 of the voiced frames (pyin, see `_f0`)."""
    x64 = np.ascontiguousarray(x, dtype=np.float64)
    f0, _ = _f0(x64, sample_rate)
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if len(voiced) else 0.0


def rms_db(x: np.ndarray) -> float:
    return float(20.0 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def set_level(x: np.ndarray, sample_rate: int, loudness: float) -> np.ndarray:
    """Bring `x` to the reference RMS plus `loudness` dB, with vocal-effort tilt and a limiter."""
    if loudness != 0:
        # Vocal effort changes timbre, not just level: loud speech has relatively more energy
        # above 1.5 kHz, soft speech less. The tilt is what survives the peak normalisation at
        # the model's input, so "loud" and "quiet" stay audible to the tokenizer.
        sos = scipy.signal.butter(2, 1500.0, "highpass", fs=sample_rate, output="sos")
        shelf = 10 ** (float(np.clip(loudness, -16.0, 12.0)) / 40.0) - 1.0
        x = x + shelf * scipy.signal.sosfilt(sos, x)
    gain_db = REFERENCE_RMS_DB + loudness - rms_db(x)
    y = x * 10 ** (gain_db / 20.0)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 0.95:
        # Soft limiter: tanh keeps the sign and shape and caps the peak below 1.
        y = np.tanh(y / 0.95 * 1.2) * 0.95 / np.tanh(1.2)
    return y.astype(np.float32)


def apply(
    x: np.ndarray,
    sample_rate: int,
    prosody: Prosody,
    *,
    formant: float = 1.0,
    f0_shift: float = 0.0,
) -> np.ndarray:
    """Everything but the rate (which the engine applied): WORLD edits if needed, then level."""
    if needs_world(prosody, formant, f0_shift):
        x = world_edit(
            x,
            sample_rate,
            pitch=prosody.pitch + f0_shift,
            pitch_range=prosody.pitch_range,
            glide=prosody.glide,
            whisper=prosody.whisper,
            formant=formant,
        )
    return set_level(x, sample_rate, prosody.loudness)
