"""Safe audio input and the log-mel front end (design §1, first two lines of the pipeline).

Everything that turns a user's recording into model input goes through this module::

    wav (any rate, any common format)
      → mono, 16 kHz, peak-normalised (x / max(|x|max, 0.01) * 0.999), optional silence trim
      → 80-bin log-mel fbank, 25 ms window, 10 ms hop

Conventions
-----------
* **Waveforms** are ``float32`` numpy arrays, mono, shape ``(n,)``, nominally in ``[-1, 1]``.
  Integer arrays are scaled by their full range (``int16 / 32768``, ``int32 / 2**31``, unsigned
  types are centred first). Multi-channel audio is mixed to mono by the plain channel mean.
* **2-D arrays** may be ``(n, ch)`` or ``(ch, n)`` with at most :data:`MAX_CHANNELS` channels; the
  small axis is the channel axis. If both axes are small the layout is ambiguous and refused
  (:class:`ChannelLayoutError`); if both are large there are too many channels.
* **Loading** (:func:`load_audio`) reads WAV/FLAC/OGG/MP3 (and the other libsndfile formats) with
  soundfile. Anything libsndfile cannot open (e.g. M4A/AAC, WebM/Opus, WMA) is decoded by the
  ``ffmpeg`` binary if one is installed, restricted to local files and a whitelist of plain audio
  demuxers (no playlists, no network). The duration in the file header is checked *before* the
  samples are decoded, and decoding never reads more than ``max_duration`` (plus a little), so a
  huge upload is refused cheaply. Then :func:`validate` checks, in this order: empty, non-finite,
  too short, too long, silent. Then resampling (soxr, high quality), peak normalisation and the
  optional silence trim.
* **Errors** a user can cause are subclasses of :class:`AudioError` (a ``ValueError``); each
  message says what was wrong, with the numbers, and what to do. Programming errors (wrong Python
  types, a ``sample_rate`` passed with an encoded file) raise ``TypeError``; a missing file raises
  ``FileNotFoundError``.
* **Framing** (:func:`num_frames`, :func:`log_mel`): by default ``center=False``, Kaldi's
  ``snip_edges`` framing. Frame ``i`` covers samples ``[i * hop, i * hop + win)``, so a signal of
  ``n`` samples has ``1 + (n - win) // hop`` frames if ``n >= win`` and 0 otherwise (at 16 kHz:
  about ``100 * seconds - 1.5``). No padding is invented at the edges, so the features of a prefix
  are a prefix of the features: a streaming tokenizer that feeds chunks overlapping by
  ``win - hop`` samples gets exactly the frames of the whole utterance. ``center=True`` is offered
  for vocoder-style framing: the signal is reflect-padded by ``win // 2`` on both sides (zero-padded
  if too short to reflect), frame ``i`` is centred on sample ``i * hop``, and there are
  ``1 + (n + 2 * (win // 2) - win) // hop`` frames (``1 + n // hop`` for an even ``win``) for
  ``n > 0``; this equals ``torch.stft(center=True, pad_mode="reflect")``.
* **Log-mel**: each frame is multiplied by a periodic Hann window of ``win_length`` samples,
  zero-padded to ``n_fft``, and transformed with a real FFT; the power spectrum ``|X|**2``
  (unnormalised) is projected onto ``librosa.filters.mel`` (Slaney mel scale and area
  normalisation, ``fmin=0``, ``fmax=sample_rate / 2`` by default); the result is the *natural* log
  of the mel power floored at ``1e-10`` (so the minimum value is ``ln(1e-10) ≈ -23.03``). No
  pre-emphasis, no dither, no mean normalisation. Output shape ``(frames, n_mels)`` or
  ``(batch, frames, n_mels)``, ``float32``; differentiable for torch input. All parameters are
  arguments, so the vocoder can reuse it at 24 kHz (hop 480, window 1200, ``center=True``).
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import numpy as np
import soundfile as sf
import soxr
import torch

__all__ = [
    "DEFAULT_MAX_DURATION",
    "HOP_LENGTH",
    "LOG_FLOOR",
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "MIN_DURATION",
    "MIN_SAMPLE_RATE",
    "N_FFT",
    "N_MELS",
    "SAMPLE_RATE",
    "SILENCE_THRESHOLD",
    "WIN_LENGTH",
    "AudioError",
    "AudioWriteError",
    "ChannelLayoutError",
    "EmptyAudioError",
    "NotAudioError",
    "SampleRateError",
    "SilentAudioError",
    "TooLongError",
    "TooShortError",
    "duration",
    "load_audio",
    "log_mel",
    "mel_filterbank",
    "num_frames",
    "peak_normalize",
    "resample",
    "save_audio",
    "to_mono",
    "trim_silence",
    "validate",
]

#: Model input sample rate (Hz).
SAMPLE_RATE = 16000
#: Mel bins of the front-end fbank.
N_MELS = 80
#: Analysis window: 25 ms at 16 kHz.
WIN_LENGTH = 400
#: Frame hop: 10 ms at 16 kHz (100 frames/s).
HOP_LENGTH = 160
#: FFT size (the window is zero-padded to it).
N_FFT = 512
#: Shortest accepted input (s).
MIN_DURATION = 0.1
#: Default longest accepted input (s); configurable per call.
DEFAULT_MAX_DURATION = 60.0
#: Peak level below which an input counts as silent (1e-4 = -80 dBFS).
SILENCE_THRESHOLD = 1e-4
#: Most channels accepted (7.1 surround).
MAX_CHANNELS = 8
#: Accepted range of sample rates (Hz), inclusive.
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384000
#: Floor applied to the mel power before the log.
LOG_FLOOR = 1e-10

_SUPPORTED = "WAV, FLAC, OGG/Vorbis or MP3"
# ffmpeg demuxers allowed in the fallback: plain audio containers only (no hls/concat/playlists,
# which can make ffmpeg open other files or URLs named inside an uploaded file).
_FFMPEG_DEMUXERS = "mov,matroska,ogg,mp3,aac,wav,flac,asf,amr,caf,aiff,w64,au"
_FFMPEG_MIN_PROBE_SCORE = 50
_FFMPEG_TIMEOUT = 120.0


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class AudioError(ValueError):
    """Base class of every error a user's audio input can cause."""


class NotAudioError(AudioError):
    """Not an audio file, corrupt, an unsupported format, or non-finite samples."""


class EmptyAudioError(AudioError):
    """The input holds zero samples."""


class SilentAudioError(AudioError):
    """The input's peak is below :data:`SILENCE_THRESHOLD`."""


class TooShortError(AudioError):
    """The input is shorter than :data:`MIN_DURATION`."""


class TooLongError(AudioError):
    """The input is longer than the configured maximum duration."""


class ChannelLayoutError(AudioError):
    """Too many channels, or an array whose channel axis cannot be determined."""


class SampleRateError(AudioError):
    """Missing, non-integer, non-positive or absurd sample rate."""


class AudioWriteError(OSError):
    """:func:`save_audio` could not write the file."""


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _check_rate(sample_rate: Any, what: str = "sample rate") -> int:
    """Return ``sample_rate`` as an int, or raise :class:`SampleRateError`."""
    if sample_rate is None:
        raise SampleRateError(
            f"the {what} is missing: a raw sample array needs its sample rate "
            f"(e.g. load_audio(samples, 16000))."
        )
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | float | np.number):
        raise SampleRateError(
            f"the {what} must be a number of Hz, got {type(sample_rate).__name__} {sample_rate!r}."
        )
    value = float(sample_rate)
    if not math.isfinite(value) or value != round(value):
        raise SampleRateError(f"the {what} must be a whole number of Hz, got {sample_rate!r}.")
    rate = int(value)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise SampleRateError(
            f"the {what} {rate} Hz is not supported: it must be between {MIN_SAMPLE_RATE} and "
            f"{MAX_SAMPLE_RATE} Hz. Re-export the recording at a common rate such as 16000, "
            f"44100 or 48000 Hz."
        )
    return rate


def _check_max_duration(max_duration: float) -> float:
    value = float(max_duration)
    if math.isnan(value) or value < MIN_DURATION:
        raise ValueError(f"max_duration must be at least {MIN_DURATION} s, got {max_duration!r}")
    return value


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"expected a numpy array or torch tensor of samples, got {type(x).__name__}")


def _as_float32(x: Any) -> np.ndarray:
    """Samples as float32; integer types scaled by their full range to ``[-1, 1)``."""
    a = _to_numpy(x)
    kind = a.dtype.kind
    if kind == "f":
        with np.errstate(over="ignore"):  # float64 beyond float32 range becomes inf: caught later
            return a.astype(np.float32, copy=False)
    if kind == "i":
        scale = float(2 ** (8 * a.dtype.itemsize - 1))
        return (a.astype(np.float64) / scale).astype(np.float32)
    if kind == "u":
        half = float(2 ** (8 * a.dtype.itemsize - 1))
        return ((a.astype(np.float64) - half) / half).astype(np.float32)
    raise TypeError(
        f"audio samples must be integers or floats, got dtype {a.dtype}; "
        f"convert them with e.g. x.astype(np.float32)."
    )


def _time_axis(shape: Sequence[int]) -> int:
    """The time axis of a non-empty 1-D or 2-D sample array (see the module docstring)."""
    if len(shape) == 1:
        return 0
    if len(shape) != 2:
        raise ChannelLayoutError(
            f"audio arrays must be 1-D (samples,) or 2-D (samples, channels) / (channels, "
            f"samples); got {len(shape)}-D shape {tuple(shape)}."
        )
    rows, cols = shape
    if rows <= MAX_CHANNELS < cols:
        return 1
    if cols <= MAX_CHANNELS < rows:
        return 0
    if rows <= MAX_CHANNELS and cols <= MAX_CHANNELS:
        raise ChannelLayoutError(
            f"cannot tell channels from samples in an array of shape {tuple(shape)}: both axes "
            f"are {MAX_CHANNELS} or less. Pass a 1-D mono array, or a longer (samples, channels) "
            f"array."
        )
    raise ChannelLayoutError(
        f"the audio has {min(rows, cols)} channels (array shape {tuple(shape)}); at most "
        f"{MAX_CHANNELS} are supported. Mix it down to mono or stereo first."
    )


def to_mono(x: Any) -> np.ndarray:
    """Float32 mono samples from a 1-D or 2-D (either orientation) numpy array or tensor.

    Integer samples are scaled to ``[-1, 1)``; channels are averaged. An empty input gives an
    empty array (:func:`validate` then raises :class:`EmptyAudioError`).
    """
    a = _as_float32(x)
    if a.size == 0:
        return np.zeros(0, dtype=np.float32)
    if a.ndim == 0:
        raise ChannelLayoutError("got a single number, not an array of audio samples.")
    axis = _time_axis(a.shape)
    if a.ndim == 2:
        a = a.mean(axis=1 - axis, dtype=np.float32)
    return np.ascontiguousarray(a, dtype=np.float32)


def duration(x: Any, sample_rate: int) -> float:
    """Duration in seconds of a sample array (1-D, or 2-D in either orientation)."""
    rate = _check_rate(sample_rate)
    shape = tuple(_to_numpy(x).shape)
    if len(shape) == 0:
        raise ChannelLayoutError("got a single number, not an array of audio samples.")
    if math.prod(shape) == 0:
        return 0.0
    return shape[_time_axis(shape)] / rate


def _dbfs(level: float) -> float:
    return 20.0 * math.log10(level) if level > 0 else -math.inf


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def validate(
    x: np.ndarray,
    sample_rate: int,
    max_duration: float = DEFAULT_MAX_DURATION,
    *,
    min_duration: float = MIN_DURATION,
    silence_threshold: float = SILENCE_THRESHOLD,
) -> None:
    """Raise the typed :class:`AudioError` for an unusable mono signal; return None if it is fine.

    Checks, in order: the sample rate (:class:`SampleRateError`), the layout (1-D, else
    :class:`ChannelLayoutError`), empty (:class:`EmptyAudioError`), non-finite samples
    (:class:`NotAudioError`), shorter than ``min_duration`` (:class:`TooShortError`), longer than
    ``max_duration`` (:class:`TooLongError`), peak below ``silence_threshold``
    (:class:`SilentAudioError`).
    """
    rate = _check_rate(sample_rate)
    limit = _check_max_duration(max_duration)
    a = np.asarray(_to_numpy(x))
    if a.size == 0:
        raise EmptyAudioError(
            "the audio contains no samples (0 s). Record again and check that the microphone "
            "is connected and actually capturing."
        )
    if a.ndim != 1:
        raise ChannelLayoutError(
            f"validate() expects mono 1-D samples, got shape {a.shape}; mix it with to_mono()."
        )
    finite = np.isfinite(a)
    if not finite.all():
        bad = int(a.size - np.count_nonzero(finite))
        raise NotAudioError(
            f"the audio contains {bad} invalid sample(s) (NaN or infinity) out of {a.size}; "
            f"the recording or its decoder is broken. Export it again as WAV or FLAC."
        )
    seconds = a.size / rate
    if seconds < min_duration:
        raise TooShortError(
            f"the audio is too short: {seconds:.3f} s ({a.size} samples at {rate} Hz); at least "
            f"{min_duration:g} s is needed. Record a longer question."
        )
    if seconds > limit:
        raise TooLongError(
            f"the audio is too long: {seconds:.1f} s; the limit is {limit:g} s. Trim it or split "
            f"the question into shorter parts."
        )
    peak = float(np.max(np.abs(a)))
    if peak < silence_threshold:
        raise SilentAudioError(
            f"the audio is silent: its peak level is {peak:.2g} ({_dbfs(peak):.0f} dBFS), below "
            f"the {silence_threshold:g} ({_dbfs(silence_threshold):.0f} dBFS) threshold. Check "
            f"that the microphone is not muted and speak closer to it."
        )


# ---------------------------------------------------------------------------------------------
# Signal operations
# ---------------------------------------------------------------------------------------------


def resample(x: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample float samples with soxr (``HQ``); identity (a float32 copy) when rates are equal.

    ``x`` is 1-D ``(n,)`` or 2-D ``(n, channels)``. The output has ``round(n * target / orig)``
    samples (within one sample) and dtype float32.
    """
    orig = _check_rate(orig_rate, "original sample rate")
    target = _check_rate(target_rate, "target sample rate")
    a = np.ascontiguousarray(_as_float32(x))
    if a.ndim not in (1, 2):
        raise ValueError(f"resample expects (n,) or (n, channels) samples, got shape {a.shape}")
    if orig == target:
        return a.copy()
    if a.shape[0] == 0:
        return np.zeros((0, *a.shape[1:]), dtype=np.float32)
    out = soxr.resample(a, orig, target, quality="HQ")
    return np.ascontiguousarray(out, dtype=np.float32)


def peak_normalize(x: np.ndarray, floor: float = 0.01, peak: float = 0.999) -> np.ndarray:
    """``x / max(|x|max, floor) * peak`` as float32 (design §1).

    Inputs whose peak is at least ``floor`` end with peak ``peak``; quieter ones are scaled by
    ``peak / floor`` (so near-silence is not blown up to full scale).
    """
    if floor <= 0:
        raise ValueError(f"floor must be positive, got {floor}")
    a = _as_float32(x)
    if a.size == 0:
        return a.copy()
    denom = max(float(np.max(np.abs(a))), floor)
    return (a.astype(np.float64) * (peak / denom)).astype(np.float32)


def trim_silence(
    x: np.ndarray, sample_rate: int, top_db: float = 40.0, pad: float = 0.05
) -> np.ndarray:
    """Cut leading and trailing silence, keeping ``pad`` seconds on each side.

    RMS is measured in 25 ms frames every 10 ms; a frame is sound if its RMS is within ``top_db``
    of the loudest frame. The result runs from the first sound frame's start to the last sound
    frame's end, widened by ``pad`` seconds (clipped to the signal). All-zero input is returned
    unchanged (a copy). Silence inside the signal is kept.
    """
    rate = _check_rate(sample_rate)
    if top_db <= 0:
        raise ValueError(f"top_db must be positive, got {top_db}")
    if pad < 0:
        raise ValueError(f"pad must be non-negative, got {pad}")
    a = _as_float32(x)
    if a.ndim != 1:
        raise ChannelLayoutError(f"trim_silence expects mono 1-D samples, got shape {a.shape}")
    n = a.size
    if n == 0:
        return a.copy()
    frame = max(1, round(0.025 * rate))
    hop = max(1, round(0.010 * rate))
    count = 1 + max(0, math.ceil((n - frame) / hop))
    buf = np.zeros((count - 1) * hop + frame, dtype=np.float64)
    buf[:n] = a
    frames = np.lib.stride_tricks.sliding_window_view(buf, frame)[::hop]
    rms = np.sqrt(np.mean(frames**2, axis=1))
    ref = float(rms.max())
    if ref <= 0:
        return a.copy()
    loud = np.flatnonzero(rms > ref * 10.0 ** (-top_db / 20.0))
    start = int(loud[0]) * hop
    end = min(n, int(loud[-1]) * hop + frame)
    margin = round(pad * rate)
    return a[max(0, start - margin) : min(n, end + margin)].copy()


# ---------------------------------------------------------------------------------------------
# Framing and log-mel
# ---------------------------------------------------------------------------------------------


def num_frames(
    num_samples: int, hop: int = HOP_LENGTH, win: int = WIN_LENGTH, center: bool = False
) -> int:
    """Frames :func:`log_mel` makes from ``num_samples`` samples.

    ``center=False`` (default, Kaldi ``snip_edges``): ``1 + (n - win) // hop`` if ``n >= win``,
    else 0. ``center=True``: the signal is padded by ``win // 2`` on each side, giving
    ``1 + (n + 2 * (win // 2) - win) // hop`` frames for ``n > 0`` (``1 + n // hop`` for even
    ``win``), and 0 for ``n == 0``.
    """
    n = int(num_samples)
    if n < 0:
        raise ValueError(f"num_samples must be non-negative, got {num_samples}")
    if hop < 1 or win < 1:
        raise ValueError(f"hop and win must be positive, got hop={hop}, win={win}")
    if center:
        if n == 0:
            return 0
        n += 2 * (win // 2)
    return 1 + (n - win) // hop if n >= win else 0


@lru_cache(maxsize=32)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> torch.Tensor:
    import librosa  # slow import: only when a filterbank is first needed

    fb = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float32
    )
    return torch.from_numpy(np.ascontiguousarray(fb.T))  # (n_fft // 2 + 1, n_mels)


def mel_filterbank(
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> torch.Tensor:
    """The cached ``(n_fft // 2 + 1, n_mels)`` float32 mel projection used by :func:`log_mel`.

    ``librosa.filters.mel`` with the Slaney scale and area normalisation; ``fmax`` defaults to
    ``sample_rate / 2``. The returned tensor is shared: do not modify it in place.
    """
    rate = _check_rate(sample_rate)
    top = rate / 2.0 if fmax is None else float(fmax)
    if not 0.0 <= fmin < top <= rate / 2.0:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={fmin}, fmax={top}")
    return _mel_basis(rate, int(n_fft), int(n_mels), float(fmin), top)


def log_mel(
    x: np.ndarray | torch.Tensor,
    sample_rate: int = SAMPLE_RATE,
    n_mels: int = N_MELS,
    *,
    n_fft: int = N_FFT,
    win_length: int = WIN_LENGTH,
    hop_length: int = HOP_LENGTH,
    fmin: float = 0.0,
    fmax: float | None = None,
    center: bool = False,
    floor: float = LOG_FLOOR,
) -> torch.Tensor:
    """Natural-log mel power: ``(T,) → (frames, n_mels)`` or ``(B, T) → (B, frames, n_mels)``.

    See the module docstring for the exact recipe; ``frames == num_frames(T, hop_length,
    win_length, center)``. numpy input (ints are scaled to ``[-1, 1)``) gives a CPU tensor; torch
    input stays on its device and keeps its autograd graph. Output dtype float32.
    """
    if win_length < 1 or hop_length < 1 or n_fft < win_length:
        raise ValueError(
            f"need 1 <= win_length <= n_fft and hop_length >= 1, got win_length={win_length}, "
            f"n_fft={n_fft}, hop_length={hop_length}"
        )
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        t = x.to(torch.float32)
    else:
        t = torch.from_numpy(np.ascontiguousarray(_as_float32(x)))
    single = t.ndim == 1
    if single:
        t = t.unsqueeze(0)
    if t.ndim != 2:
        raise ValueError(f"log_mel expects (T,) or (B, T) samples, got shape {tuple(t.shape)}")
    fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax).to(t.device)
    batch, length = t.shape
    if center and length > 0:
        p = win_length // 2
        mode = "reflect" if length > p else "constant"
        t = torch.nn.functional.pad(t.unsqueeze(1), (p, p), mode=mode).squeeze(1)
    if t.shape[-1] >= win_length:
        frames = t.unfold(-1, win_length, hop_length)  # (B, F, win)
        window = torch.hann_window(win_length, periodic=True, dtype=t.dtype, device=t.device)
        spec = torch.fft.rfft(frames * window, n=n_fft)
        power = spec.real.square() + spec.imag.square()
        out = torch.log(torch.clamp(power @ fb, min=floor))
    else:
        out = t.new_zeros((batch, 0, fb.shape[1]))
    return out[0] if single else out


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def _not_audio(name: str, detail: str) -> NotAudioError:
    return NotAudioError(
        f"'{name}' is not a readable audio file ({detail}). Please upload a recording in a "
        f"common format ({_SUPPORTED}); if it plays elsewhere, re-export it as WAV or FLAC."
    )


def _empty_file(name: str) -> EmptyAudioError:
    return EmptyAudioError(
        f"'{name}' is empty (0 bytes): the upload or recording did not arrive. Record again and "
        f"check that the microphone is connected and actually capturing."
    )


def _check_header(
    name: str, rate: int, channels: int, frames: int | None, limit: float
) -> tuple[int, int]:
    """Checks that need only the header; returns the validated (rate, channels)."""
    rate = _check_rate(rate, f"sample rate of '{name}'")
    if channels < 1 or channels > MAX_CHANNELS:
        raise ChannelLayoutError(
            f"'{name}' has {channels} channels; 1 to {MAX_CHANNELS} are supported. Mix it down "
            f"to mono or stereo first."
        )
    if frames is not None and frames / rate > limit:
        raise TooLongError(
            f"the audio '{name}' is too long: {frames / rate:.1f} s; the limit is {limit:g} s. "
            f"Trim it or split the question into shorter parts."
        )
    return rate, channels


def _read_soundfile(src: str | IO[bytes], name: str, limit: float) -> tuple[np.ndarray, int] | str:
    """Decode with libsndfile; libsndfile's complaint (a str) if it cannot open the data."""
    start = src.tell() if not isinstance(src, str) else 0
    try:
        info = sf.info(src)
    except (sf.LibsndfileError, RuntimeError) as e:
        reason = getattr(e, "error_string", None) or str(e)
        return reason.strip().rstrip(".") or "Format not recognised"
    rate, _ = _check_header(name, info.samplerate, info.channels, info.frames, limit)
    cap = -1 if math.isinf(limit) else int(limit * rate) + 2
    if not isinstance(src, str):
        src.seek(start)
    try:
        data, _ = sf.read(src, frames=cap, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise _not_audio(name, f"decoding failed: {e}") from e
    return data, rate


def _read_ffmpeg(path: str, name: str, limit: float, detail: str) -> tuple[np.ndarray, int]:
    """Decode a local file with ffprobe/ffmpeg (whitelisted demuxers, local files only)."""
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if ffmpeg is None or ffprobe is None:
        raise _not_audio(name, detail)
    url = "file:" + os.path.abspath(path)
    safe = ["-protocol_whitelist", "file", "-format_whitelist", _FFMPEG_DEMUXERS]
    entries = "stream=sample_rate,channels,duration:format=duration,probe_score"
    cmd = [ffprobe, "-v", "error", *safe, "-select_streams", "a:0"]
    cmd += ["-show_entries", entries, "-of", "json", url]
    try:
        probe = subprocess.run(cmd, capture_output=True, timeout=30, check=False)
        meta = json.loads(probe.stdout or b"{}")
    except (subprocess.TimeoutExpired, OSError, ValueError) as e:
        raise _not_audio(name, f"{detail}; probing it failed: {e}") from e
    streams, fmt = meta.get("streams") or [], meta.get("format") or {}
    if probe.returncode != 0 or not streams or fmt.get("probe_score", 0) < _FFMPEG_MIN_PROBE_SCORE:
        raise _not_audio(name, f"{detail}; no other decoder recognises it either")
    stream = streams[0]
    try:
        rate, channels = int(stream["sample_rate"]), int(stream["channels"])
    except (KeyError, TypeError, ValueError) as e:
        raise _not_audio(name, "the audio stream has no sample rate or channel count") from e
    seconds = None
    for value in (stream.get("duration"), fmt.get("duration")):
        try:
            seconds = float(value)
            break
        except (TypeError, ValueError):
            continue
    frames = None if seconds is None else round(seconds * rate)
    rate, channels = _check_header(name, rate, channels, frames, limit)
    cmd = [ffmpeg, "-nostdin", "-v", "error", *safe, "-i", url, "-map", "0:a:0", "-vn"]
    if not math.isinf(limit):
        cmd += ["-t", f"{limit + 1.0:.3f}"]  # never decode far past the limit
    cmd += ["-ac", str(channels), "-ar", str(rate), "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1"]
    try:
        run = subprocess.run(cmd, capture_output=True, timeout=_FFMPEG_TIMEOUT, check=False)
    except (subprocess.TimeoutExpired, OSError) as e:
        raise _not_audio(name, f"decoding with ffmpeg failed: {e}") from e
    if run.returncode != 0:
        msg = run.stderr.decode(errors="replace").strip().splitlines()
        raise _not_audio(name, f"decoding failed: {msg[-1] if msg else 'ffmpeg error'}")
    usable = len(run.stdout) // (4 * channels) * (4 * channels)
    data = np.frombuffer(run.stdout[:usable], dtype="<f4").reshape(-1, channels)
    return data.astype(np.float32), rate


def _decode(source: Any, limit: float) -> tuple[np.ndarray, int]:
    """Decode an encoded source into ``((n, channels) float32, rate)``."""
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        name = os.path.basename(path) or path
        if not os.path.exists(path):
            raise FileNotFoundError(f"audio file not found: {path}")
        if os.path.isdir(path):
            raise IsADirectoryError(f"expected an audio file, got the directory {path}")
        if os.path.getsize(path) == 0:
            raise _empty_file(name)
        got = _read_soundfile(path, name, limit)
        if not isinstance(got, str):
            return got
        return _read_ffmpeg(path, name, limit, got)

    if isinstance(source, bytes | bytearray | memoryview):
        raw = bytes(source)
        buf, name = io.BytesIO(raw), f"<{len(raw)} bytes>"
    elif hasattr(source, "read"):
        if isinstance(source, io.TextIOBase):
            raise TypeError("the file object is open in text mode; open it with 'rb'")
        raw_name = getattr(source, "name", None)
        name = os.path.basename(raw_name) if isinstance(raw_name, str) else "<file object>"
        seekable = getattr(source, "seekable", None)
        # libsndfile seeks absolutely, so only a stream positioned at 0 is used in place
        if callable(seekable) and seekable() and source.tell() == 0:
            buf = source
        else:
            data = source.read()
            if isinstance(data, str):
                raise TypeError("the file object is open in text mode; open it with 'rb'")
            buf = io.BytesIO(data)
    else:
        raise TypeError(
            "audio source must be a path, bytes, a binary file object, or a numpy array/torch "
            f"tensor of samples; got {type(source).__name__}"
        )
    start = buf.tell()
    buf.seek(0, io.SEEK_END)
    if buf.tell() == start:
        raise _empty_file(name)
    buf.seek(start)
    got = _read_soundfile(buf, name, limit)
    if not isinstance(got, str):
        return got
    if shutil.which("ffmpeg") is None:
        raise _not_audio(name, got)
    buf.seek(start)
    with tempfile.NamedTemporaryFile(prefix="aqaa-audio-", suffix=".bin") as tmp:
        shutil.copyfileobj(buf, tmp)
        tmp.flush()
        return _read_ffmpeg(tmp.name, name, limit, got)


def load_audio(
    source: str | os.PathLike[str] | bytes | IO[bytes] | np.ndarray | torch.Tensor,
    sample_rate: int | None = None,
    *,
    target_rate: int = SAMPLE_RATE,
    max_duration: float = DEFAULT_MAX_DURATION,
    normalize: bool = True,
    trim_silence: bool = False,
) -> np.ndarray:
    """Load, check and prepare a user's audio: float32 mono at ``target_rate``.

    ``source`` is a path, the bytes of a whole encoded file, a binary file object, or a sample
    array/tensor (then ``sample_rate`` is required, see :func:`to_mono` for accepted shapes).
    Steps: decode (header checked first), mix to mono, :func:`validate`, :func:`resample`,
    :func:`peak_normalize` (if ``normalize``), :func:`trim_silence` (if ``trim_silence``).

    Raises a subclass of :class:`AudioError` for bad audio (with a message meant for the user),
    ``TypeError`` for a wrong argument type or a ``sample_rate`` given with an encoded file, and
    ``FileNotFoundError`` for a missing path.
    """
    limit = _check_max_duration(max_duration)
    target = _check_rate(target_rate, "target sample rate")
    if isinstance(source, np.ndarray | torch.Tensor):
        rate = _check_rate(sample_rate)
        mono = to_mono(source)
    else:
        if not isinstance(source, str | os.PathLike | bytes | bytearray | memoryview) and not (
            hasattr(source, "read")
        ):
            raise TypeError(
                "audio source must be a path, bytes, a binary file object, or a numpy array/"
                f"torch tensor of samples; got {type(source).__name__}"
            )
        if sample_rate is not None:
            raise TypeError(
                "sample_rate is only for raw sample arrays: an encoded file carries its own rate. "
                "For headerless PCM bytes use load_audio(np.frombuffer(data, '<i2'), rate)."
            )
        data, rate = _decode(source, limit)
        mono = to_mono(data)
    validate(mono, rate, limit)
    out = resample(mono, rate, target)
    if normalize:
        out = peak_normalize(out)
    if trim_silence:
        out = _trim_silence(out, target)
    return np.ascontiguousarray(out, dtype=np.float32)


_trim_silence = trim_silence  # load_audio's keyword argument shadows the function's name


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------

_SAVE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}


def save_audio(
    path: str | os.PathLike[str],
    x: np.ndarray | torch.Tensor,
    sample_rate: int,
    *,
    subtype: str | None = None,
) -> Path:
    """Write ``x`` (``(n,)`` or ``(n, channels)``) atomically; the format follows the suffix.

    ``.wav`` and ``.flac`` are 16-bit PCM by default, ``.ogg`` is Vorbis; ``subtype`` overrides
    (e.g. ``"FLOAT"``). Samples are clipped to ``[-1, 1]`` unless the subtype is floating point.
    Parent directories are created; the data goes to a temporary file in the same directory
    that is then renamed over ``path``, so readers never see a half-written file. Raises
    :class:`AudioWriteError` (an ``OSError``) if the path cannot be written.
    """
    target = Path(path)
    fmt = _SAVE_FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the audio format of '{target.name}': use a .wav, .flac or .ogg suffix"
        )
    rate = _check_rate(sample_rate)
    file_format, sub = fmt[0], (subtype or fmt[1]).upper()
    data = _as_float32(x)
    if data.ndim not in (1, 2):
        raise ValueError(f"save_audio expects (n,) or (n, channels) samples, got {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError("cannot save audio that contains NaN or infinite samples")
    if sub not in ("FLOAT", "DOUBLE"):
        data = np.clip(data, -1.0, 1.0)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            sf.write(f, data, rate, format=file_format, subtype=sub)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as e:
        reason = e.strerror or str(e)
        raise AudioWriteError(
            f"cannot write audio to '{target}': {reason}. Check that the directory is writable "
            f"and the path is not a directory."
        ) from e
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return target
