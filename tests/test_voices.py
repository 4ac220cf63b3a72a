"""The voice bank: engine discovery, the reserved-voice rule, and measurable prosody controls."""

from __future__ import annotations

import numpy as np
import pytest

from aqaa.data.prosody import REFERENCE_RMS_DB, median_f0, rms_db
from aqaa.data.styles import EMOTION_STYLES, PERSONA_STYLES, STYLES, Prosody, style_prosody
from aqaa.data.voices import (
    ASSISTANT_VOICE,
    RESERVED_VOICES,
    ReservedVoiceError,
    VoiceBank,
)

SR = 16000
TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


@pytest.fixture(scope="module")
def bank() -> VoiceBank:
    return VoiceBank.discover()


def voiced_ratio(x: np.ndarray, sr: int = SR) -> float:
    import pyworld as pw

    x64 = x.astype(np.float64)
    f0, t = pw.dio(x64, sr, f0_floor=50.0, f0_ceil=700.0)
    f0 = pw.stonemask(x64, f0, t, sr)
    loud = np.array(
        [np.sqrt(np.mean(x[int(ti * sr) : int(ti * sr) + 80] ** 2)) for ti in t]
    ) > 10 ** ((REFERENCE_RMS_DB - 20) / 20)
    return float(np.mean(f0[loud] > 0))


def test_all_engines_discovered(bank: VoiceBank) -> None:
    engines = set(bank.engines)
    assert {"espeak", "flite", "festival", "piper"} <= engines
    assert len(bank) > 100  # espeak accents x variants alone give hundreds
    assert ASSISTANT_VOICE in bank
    assert all(v in bank for v in RESERVED_VOICES)


def test_reserved_voices_never_in_training(bank: VoiceBank) -> None:
    for split in ("train", "valid", None):
        ids = {v.id for v in bank.voices(split)}  # type: ignore[arg-type]
        assert not ids & RESERVED_VOICES
    assert {v.id for v in bank.voices("test", purpose="eval") if v.reserved} == RESERVED_VOICES
    for vid in RESERVED_VOICES:
        assert bank.get(vid).split == "test"
        with pytest.raises(ReservedVoiceError, match="reserved test voice"):
            bank.render("Hello there.", vid)
    # the same speaker as the reserved HTS voice is held out too
    assert bank.get("flite:slt").split == "test"


def test_splits_hold_out_voices(bank: VoiceBank) -> None:
    train = {v.id for v in bank.voices("train")}
    test = {v.id for v in bank.voices("test", purpose="eval")}
    valid = {v.id for v in bank.voices("valid")}
    assert train and test and valid
    assert not train & test and not train & valid and not valid & test
    assert ASSISTANT_VOICE not in {v.id for v in bank.voices()}
    assert bank.voices("train", gender="female") and bank.voices(
        "test", gender="female", purpose="eval"
    )


@pytest.mark.parametrize(
    "voice",
    ["espeak:en-us+m3", "flite:kal16", "festival:kal_diphone", ASSISTANT_VOICE, "flite:rms~f"],
)
def test_render_each_engine(bank: VoiceBank, voice: str) -> None:
    x = bank.render("Hello there, how are you today?", voice, sample_rate=SR)
    assert x.dtype == np.float32 and x.ndim == 1
    assert 0.8 < len(x) / SR < 5.0
    assert abs(rms_db(x) - REFERENCE_RMS_DB) < 1.0
    assert np.max(np.abs(x)) < 1.0


def test_reserved_voice_renders_for_eval(bank: VoiceBank) -> None:
    x = bank.render("Hello there.", "flite:awb", purpose="eval", sample_rate=SR)
    assert len(x) > SR // 4


@pytest.mark.parametrize(
    "voice",
    ["espeak:en-us+m3", "flite:awb", "festival:kal_diphone", "festival:cmu_us_slt_arctic_hts"],
)
def test_every_engine_applies_the_speaking_rate(bank: VoiceBank, voice: str) -> None:
    neutral = len(bank.render(TEXT, voice, purpose="eval", sample_rate=SR))
    fast = len(bank.render(TEXT, voice, style_prosody("fast"), purpose="eval", sample_rate=SR))
    slow = len(bank.render(TEXT, voice, style_prosody("slow"), purpose="eval", sample_rate=SR))
    assert fast < 0.85 * neutral and slow > 1.2 * neutral


def test_rate_pitch_loudness_whisper_are_measurable(bank: VoiceBank) -> None:
    v = "espeak:en-us+m3"
    neutral = bank.render(TEXT, v, sample_rate=SR)
    fast = bank.render(TEXT, v, style_prosody("fast"), sample_rate=SR)
    slow = bank.render(TEXT, v, style_prosody("slow"), sample_rate=SR)
    assert len(fast) < 0.8 * len(neutral) < 0.8 * 0.8 * len(slow)

    f0 = median_f0(neutral, SR)
    high = median_f0(bank.render(TEXT, v, Prosody(pitch=6.0), sample_rate=SR), SR)
    assert 12 * np.log2(high / f0) == pytest.approx(6.0, abs=1.5)

    loud = bank.render(TEXT, v, style_prosody("loud"), sample_rate=SR)
    quiet = bank.render(TEXT, v, style_prosody("quiet"), sample_rate=SR)
    assert rms_db(loud) - rms_db(quiet) > 18.0

    whisper = bank.render(TEXT, v, style_prosody("whisper"), sample_rate=SR)
    assert voiced_ratio(neutral) > 0.5
    assert voiced_ratio(whisper) < 0.15


def test_glide_rises_and_female_variant_is_higher(bank: VoiceBank) -> None:
    sung = bank.render(
        "Do re mi fa so la ti do.", ASSISTANT_VOICE, style_prosody("sing"), sample_rate=SR
    )
    half = len(sung) // 2
    assert median_f0(sung[half:], SR) > median_f0(sung[:half], SR) * 1.2
    male = median_f0(bank.render(TEXT, "flite:rms", sample_rate=SR), SR)
    female = median_f0(bank.render(TEXT, "flite:rms~f", sample_rate=SR), SR)
    assert female > male * 1.5


def _pyin_f0(x: np.ndarray, sr: int = SR) -> float:
    import librosa

    f0, _, _ = librosa.pyin(x, fmin=50.0, fmax=500.0, sr=sr)
    return float(np.nanmedian(f0))


def test_assistant_f0_agrees_with_pyin_and_styles_move_it(bank: VoiceBank) -> None:
    """The low piper voice: WORLD dio read it an octave high (~171 Hz against pyin's ~91 Hz)."""
    neutral = bank.render(TEXT, ASSISTANT_VOICE, sample_rate=SR)
    ref = _pyin_f0(neutral)
    assert 70.0 < ref < 130.0
    assert median_f0(neutral, SR) == pytest.approx(ref, rel=0.25)
    # A -4 semitone edit must come out lower than the neutral voice, measured independently.
    low = bank.render(TEXT, ASSISTANT_VOICE, Prosody(pitch=-4.0), sample_rate=SR)
    high = bank.render(TEXT, ASSISTANT_VOICE, Prosody(pitch=4.0), sample_rate=SR)
    assert 12 * np.log2(_pyin_f0(low) / ref) == pytest.approx(-4.0, abs=1.5)
    assert 12 * np.log2(_pyin_f0(high) / ref) == pytest.approx(4.0, abs=1.5)


def test_style_presets() -> None:
    assert set(EMOTION_STYLES) == {"happy", "sad", "angry", "calm", "excited"}
    assert set(PERSONA_STYLES) == {"robot", "child", "giant"}
    assert STYLES["robot"].pitch_range == 0.0
    assert STYLES["sad"].rate < 1 < STYLES["excited"].rate
    with pytest.raises(KeyError, match="known styles"):
        style_prosody("sarcastic")
    with pytest.raises(ValueError, match="rate"):
        Prosody(rate=10.0)
    p = Prosody(rate=1.2, pitch=2.0).combine(Prosody(rate=0.5, pitch=1.0, whisper=True))
    assert p == Prosody(rate=0.6, pitch=3.0, whisper=True)


def test_loudness_survives_peak_normalisation(bank: VoiceBank) -> None:
    """The model sees peak-normalised audio: effort must show in the spectrum, not just the level."""
    from aqaa.audio import peak_normalize

    def hf_share(x: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(peak_normalize(x))) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / SR)
        return float(spec[freqs > 1500].sum() / spec.sum())

    v = "espeak:en-us+m3"
    shares = [
        hf_share(bank.render(TEXT, v, style_prosody(s), sample_rate=SR))
        for s in ("quiet", "neutral", "loud")
    ]
    assert shares[0] < 0.8 * shares[1] and shares[1] < 0.8 * shares[2]
