"""Acoustic measures of a spoken answer, and whether it follows a requested style.

Measures (`measure`), all at 16 kHz:

- **speech span**: from the first to the last 10 ms frame within `ACTIVE_DB` dB of the loudest
  frame (leading and trailing silence removed, pauses inside kept). This is the "voiced duration"
  of the speaking rate: whispered speech has no voicing but still has a span.
- **speaking rate**: words per second of speech span, words counted from a transcript after
  normalisation (numbers as spoken words).
- **loudness**: RMS level in dB of the active frames only, so that pauses do not lower it; a
  signal scaled by g measures exactly 20·log10(g) dB more (the active frames are chosen relative
  to the loudest, which scales too).
- **F0**: `librosa.pyin` (50–600 Hz); median over voiced active frames, plus the spread (90th minus
  10th percentile, semitones) and the rise (median of the last third of voiced frames minus the
  first third, semitones: a sung rising scale climbs).
- **voicing ratio**: voiced share of the active pyin frames (whisper ≈ 0).
- **CPP**: cepstral peak prominence (dB), median over active frames: how clearly the spectrum
  shows harmonics. Breathy and whispered speech has a low CPP. It backs up the voicing ratio
  for whispers, because pyin finds spurious periodicity in some noise and no voicing in some
  creaky normal speech (the assistant voice, piper joe, has a lot of creak).
- **frame-grid share** (`frame_grid_share`, for vocoders): the share of the 40–2,000 Hz energy
  that lies within ±2 Hz of a multiple of the vocoder's frame rate (50 Hz). Natural speech puts
  about the chance share there (5 of every 50 1-Hz bins, 0.10); a vocoder that repeats its phase
  every frame puts much more (the 20 ms buzz of sessions 3–11: 0.48 in copy synthesis).
- **DNSMOS** P.808 and P.835 (`speechmos`, bundled ONNX models) for quality.

Style following (`style_pass`) compares an answer's measures with those of the *neutral* rendering
of the same words. The expectations are derived from the style presets of `aqaa.data.styles`
(the same numbers the training targets were rendered with), by these rules:

| preset control | judged when | expectation (measured vs neutral) |
|---|---|---|
| pitch p (semitones) | abs(p) ≥ 2.5 | F0 change ≥ p/3 semitones in p's direction (high +6: ≥ +2) |
| rate r | abs(r − 1) ≥ 0.2 | rate ratio beyond r^0.3 in r's direction (fast 1.6: ≥ 1.15) |
| loudness L (dB) | abs(L) ≥ 3 | level change beyond min(3, abs(L)/2) dB in L's direction |
| whisper | always | voicing ratio ≤ 0.3 and CPP ratio ≤ 0.8 |
| pitch range k | k ≤ 0.5 or k ≥ 1.5 (no glide) | F0-spread ratio beyond (1 + k)/2 in k's direction |
| glide g (semitones) | abs(g) ≥ 6 | F0 rise minus the neutral rise ≥ g/3 in g's direction |

A preset is followed when every judged expectation holds (each is a third to a half of the
preset's size: enough to hear, with room for a model that is not exact). `style_table()` lists the
result per style.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from aqaa.audio import resample
from aqaa.data.styles import Prosody, style_prosody
from aqaa.eval.judge import count_words

ANALYSIS_RATE = 16000
#: A frame is active (speech) when its level is within this many dB of the loudest frame.
ACTIVE_DB = 35.0
#: ...and above this absolute level (dBFS), so that digital silence never counts.
FLOOR_DB = -75.0
_HOP = 160  # 10 ms activity frames
_WIN = 400
_PYIN_HOP = 256
_PYIN_WIN = 2048  # pyin's YIN window is half: 64 ms, three periods of the 50 Hz floor
F0_MIN, F0_MAX = 50.0, 600.0

# Thresholds of the derivation rules (see the module docstring).
PITCH_MIN_ST = 2.5
RATE_MIN_DEV = 0.2
RATE_EXPONENT = 0.3
LOUD_MIN_DB = 3.0
LOUD_MAX_EXPECT_DB = 3.0
WHISPER_MAX_VOICING = 0.3
WHISPER_MAX_CPP_RATIO = 0.8
GLIDE_MIN_ST = 6.0


@dataclass
class Acoustics:
    """What `measure` finds in one clip (None where it cannot be measured)."""

    duration_s: float
    speech_s: float
    rms_db: float | None
    f0_hz: float | None
    f0_spread_st: float | None
    f0_rise_st: float | None
    voicing: float | None
    words: int | None = None
    rate_wps: float | None = None
    cpp_db: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Acoustics:
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


def _frame_db(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    import librosa

    rms = librosa.feature.rms(y=x, frame_length=win, hop_length=hop, center=True)[0]
    return 20.0 * np.log10(rms.astype(np.float64) + 1e-12)


def _active(db: np.ndarray) -> np.ndarray:
    if len(db) == 0:
        return np.zeros(0, bool)
    return (db > db.max() - ACTIVE_DB) & (db > FLOOR_DB)


def _to_analysis(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    if sample_rate != ANALYSIS_RATE:
        x = resample(x, sample_rate, ANALYSIS_RATE)
    return x


def f0_track(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """pyin F0 (Hz, NaN where unvoiced) and the voiced flags, at 16 ms hops on 16 kHz audio
    (128 ms frames: a 64 ms YIN window holds three periods of the lowest F0, 50 Hz)."""
    import librosa

    x = _to_analysis(audio, sample_rate)
    if len(x) < _PYIN_WIN:
        return np.zeros(0), np.zeros(0, bool)
    f0, voiced, _ = librosa.pyin(
        x.astype(np.float64),
        fmin=F0_MIN,
        fmax=F0_MAX,
        sr=ANALYSIS_RATE,
        frame_length=_PYIN_WIN,
        hop_length=_PYIN_HOP,
    )
    return f0, voiced.astype(bool)


def cepstral_peak_prominence(audio: np.ndarray, sample_rate: int) -> float | None:
    """Median CPP (dB) over the active frames: the height of the cepstral peak in the F0
    quefrency range (1/600 to 1/50 s) above the regression line of the cepstrum there."""
    x = _to_analysis(audio, sample_rate).astype(np.float64)
    if len(x) < _PYIN_WIN:
        return None
    import librosa

    mag = np.abs(librosa.stft(x, n_fft=_PYIN_WIN, hop_length=_PYIN_HOP, win_length=_PYIN_WIN // 2))
    db = 10.0 * np.log10((mag**2).mean(axis=0) + 1e-20)
    act = _active(db)
    if not act.any():
        return None
    ceps = np.fft.irfft(20.0 * np.log10(mag[:, act] + 1e-9), axis=0)[: _PYIN_WIN // 2]
    q = np.arange(len(ceps)) / ANALYSIS_RATE
    band = (q >= 1.0 / F0_MAX) & (q <= 1.0 / F0_MIN)
    cb, qb = ceps[band], q[band]
    slope, icpt = np.polyfit(qb, cb, 1)
    peak = cb.argmax(axis=0)
    prominence = cb.max(axis=0) - (slope * qb[peak] + icpt)
    return float(np.median(prominence))


def frame_grid_share(
    audio: np.ndarray,
    sample_rate: int,
    frame_rate: float = 50.0,
    band: tuple[float, float] = (40.0, 2000.0),
    tolerance_hz: float = 2.0,
) -> float | None:
    """Share of the `band` energy within `tolerance_hz` of a multiple of `frame_rate` (Welch
    spectrum, 1 Hz bins). Chance, for a spectrum with no relation to the grid, is
    (2·tolerance + 1) / frame_rate: 0.10 at the defaults. None for clips under a second."""
    from scipy.signal import welch

    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if len(x) < sample_rate:
        return None
    freqs, power = welch(x, fs=sample_rate, nperseg=sample_rate)  # 1 Hz bins
    inband = (freqs >= band[0]) & (freqs <= band[1])
    total = power[inband].sum()
    if total <= 0:
        return None
    offset = np.abs(freqs - frame_rate * np.round(freqs / frame_rate))
    return float(power[inband & (offset <= tolerance_hz)].sum() / total)


def measure(
    audio: np.ndarray,
    sample_rate: int,
    transcript: str | None = None,
    words: int | None = None,
    with_f0: bool = True,
) -> Acoustics:
    """The acoustic measures of one clip. The speaking rate needs the words said: pass the
    `transcript` (words counted after normalisation) or a word count."""
    x = _to_analysis(audio, sample_rate)
    duration = len(x) / ANALYSIS_RATE
    if words is None and transcript is not None:
        words = count_words(transcript)
    empty = Acoustics(duration, 0.0, None, None, None, None, None, words, None)
    if len(x) < _WIN or float(np.max(np.abs(x))) < 1e-5:
        return empty
    db = _frame_db(x, _WIN, _HOP)
    act = _active(db)
    if not act.any():
        return empty
    idx = np.flatnonzero(act)
    speech = (idx[-1] - idx[0] + 1) * _HOP / ANALYSIS_RATE
    power = np.power(10.0, db[act] / 10.0)
    rms_db = float(10.0 * np.log10(power.mean() + 1e-24))
    rate = float(words / speech) if words is not None and speech > 0 else None
    out = Acoustics(duration, float(speech), rms_db, None, None, None, None, words, rate)
    if not with_f0:
        return out
    out.cpp_db = cepstral_peak_prominence(x, ANALYSIS_RATE)
    f0, voiced = f0_track(x, ANALYSIS_RATE)
    if len(f0) == 0:
        return out
    pact = _active(_frame_db(x, _PYIN_WIN, _PYIN_HOP))[: len(f0)]
    voiced = voiced[: len(pact)] & pact & np.isfinite(f0[: len(pact)])
    out.voicing = float(voiced.sum() / max(pact.sum(), 1))
    if voiced.sum() >= 3:
        st = 12.0 * np.log2(f0[: len(voiced)][voiced] / 100.0)  # semitones re 100 Hz
        out.f0_hz = float(100.0 * 2 ** (np.median(st) / 12.0))
        out.f0_spread_st = float(np.percentile(st, 90) - np.percentile(st, 10))
        third = max(len(st) // 3, 1)
        out.f0_rise_st = float(np.median(st[-third:]) - np.median(st[:third]))
    return out


# ---- quality ----------------------------------------------------------------------------------------


#: DNSMOS scores one 9.01 s window per second of audio beyond 9 s: longer clips are cut here, so
#: every clip costs one window (~1 s of CPU).
DNSMOS_MAX_S = 10.0


def dnsmos(audio: np.ndarray, sample_rate: int) -> dict[str, float] | None:
    """DNSMOS scores (`ovrl`, `sig`, `bak` of P.835 and `p808`) of a clip's first 10 s, or None
    when the clip is too short (< 0.25 s) or silent. speechmos loops short clips to its 9 s
    window."""
    x = _to_analysis(audio, sample_rate)[: int(DNSMOS_MAX_S * ANALYSIS_RATE)]
    if len(x) < ANALYSIS_RATE // 4 or float(np.max(np.abs(x))) < 1e-4:
        return None
    from speechmos import dnsmos as dm

    r = dm.run(np.clip(x, -1.0, 1.0).astype(np.float32), ANALYSIS_RATE)
    return {
        "ovrl": float(r["ovrl_mos"]),
        "sig": float(r["sig_mos"]),
        "bak": float(r["bak_mos"]),
        "p808": float(r["p808_mos"]),
    }


# ---- style expectations ---------------------------------------------------------------------------

Cue = Literal[
    "f0_st", "rate_ratio", "rms_db", "voicing", "cpp_ratio", "f0_spread_ratio", "f0_rise_st"
]


@dataclass(frozen=True)
class Expectation:
    """One judged cue: `value(measured, neutral) op threshold`."""

    cue: Cue
    op: Literal[">=", "<="]
    threshold: float

    def holds(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        return value >= self.threshold if self.op == ">=" else value <= self.threshold

    def describe(self) -> str:
        return f"{self.cue} {self.op} {self.threshold:.3g}"


def expectations(prosody: Prosody) -> list[Expectation]:
    """The cues a rendering with `prosody` must show against the neutral one (module rules)."""
    out: list[Expectation] = []
    p = prosody
    if p.whisper:
        out.append(Expectation("voicing", "<=", WHISPER_MAX_VOICING))
        out.append(Expectation("cpp_ratio", "<=", WHISPER_MAX_CPP_RATIO))
    if not p.whisper and abs(p.pitch) >= PITCH_MIN_ST:
        out.append(Expectation("f0_st", ">=" if p.pitch > 0 else "<=", p.pitch / 3.0))
    if abs(p.rate - 1.0) >= RATE_MIN_DEV:
        out.append(Expectation("rate_ratio", ">=" if p.rate > 1 else "<=", p.rate**RATE_EXPONENT))
    if abs(p.loudness) >= LOUD_MIN_DB:
        size = min(LOUD_MAX_EXPECT_DB, abs(p.loudness) / 2.0)
        out.append(Expectation("rms_db", ">=" if p.loudness > 0 else "<=", math.copysign(size, p.loudness)))  # fmt: skip
    if not p.whisper and p.glide == 0.0 and (p.pitch_range <= 0.5 or p.pitch_range >= 1.5):
        op = "<=" if p.pitch_range < 1 else ">="
        out.append(Expectation("f0_spread_ratio", op, (1.0 + p.pitch_range) / 2.0))
    if abs(p.glide) >= GLIDE_MIN_ST:
        out.append(Expectation("f0_rise_st", ">=" if p.glide > 0 else "<=", p.glide / 3.0))
    return out


def style_expectations(style: str) -> list[Expectation]:
    """`expectations` of a named style preset (empty for "neutral": nothing to judge)."""
    return expectations(style_prosody(style))


def cue_value(cue: Cue, m: Acoustics, n: Acoustics) -> float | None:
    """The value of `cue` for measured `m` against neutral `n` (None if either is missing)."""

    def ok(*v: float | None) -> bool:
        return all(x is not None and math.isfinite(x) for x in v)

    if cue == "voicing":
        return m.voicing
    if cue == "cpp_ratio":
        return m.cpp_db / n.cpp_db if ok(m.cpp_db, n.cpp_db) and n.cpp_db else None  # type: ignore[operator]
    if cue == "f0_st":
        return 12.0 * math.log2(m.f0_hz / n.f0_hz) if ok(m.f0_hz, n.f0_hz) and n.f0_hz else None  # type: ignore[operator, arg-type]
    if cue == "rate_ratio":
        return m.rate_wps / n.rate_wps if ok(m.rate_wps, n.rate_wps) and n.rate_wps else None  # type: ignore[operator]
    if cue == "rms_db":
        return m.rms_db - n.rms_db if ok(m.rms_db, n.rms_db) else None  # type: ignore[operator]
    if cue == "f0_spread_ratio":
        if ok(m.f0_spread_st, n.f0_spread_st) and n.f0_spread_st:
            return m.f0_spread_st / n.f0_spread_st  # type: ignore[operator]
        return None
    if cue == "f0_rise_st":
        return m.f0_rise_st - n.f0_rise_st if ok(m.f0_rise_st, n.f0_rise_st) else None  # type: ignore[operator]
    raise ValueError(f"unknown cue {cue!r}")


@dataclass
class Check:
    cue: str
    expected: str
    value: float | None
    passed: bool


@dataclass
class StyleResult:
    """Whether a clip follows `style`: `passed` is None for "neutral" (nothing judged)."""

    style: str
    passed: bool | None
    checks: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "style": self.style,
            "passed": self.passed,
            "checks": [
                {**asdict(c), "value": None if c.value is None else round(c.value, 4)}
                for c in self.checks
            ],
        }


def style_pass(measured: Acoustics, neutral: Acoustics, style: str) -> StyleResult:
    """Does `measured` differ from the `neutral` rendering of the same words the way `style`
    asks? Every expectation of the style must hold (see the module docstring)."""
    exps = style_expectations(style)
    if not exps:
        return StyleResult(style, None)
    checks = []
    for e in exps:
        v = cue_value(e.cue, measured, neutral)
        checks.append(Check(e.cue, e.describe(), v, e.holds(v)))
    return StyleResult(style, all(c.passed for c in checks), checks)


def style_table() -> dict[str, list[str]]:
    """Style -> its judged expectations, as text (for the report and the docs)."""
    from aqaa.data.styles import STYLES

    return {s: [e.describe() for e in style_expectations(s)] for s in STYLES}
