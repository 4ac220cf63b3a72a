"""Tests for aqaa.audio: safe loading, typed errors, resampling, framing and log-mel."""

from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aqaa import audio as A

SR = A.SAMPLE_RATE
HAS_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def sine(freq: float, seconds: float, rate: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_freq(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spec)])


def wav_bytes(x: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Typed errors
# ---------------------------------------------------------------------------------------------


def test_error_hierarchy() -> None:
    for cls in (
        A.NotAudioError,
        A.EmptyAudioError,
        A.SilentAudioError,
        A.TooShortError,
        A.TooLongError,
        A.ChannelLayoutError,
        A.SampleRateError,
    ):
        assert issubclass(cls, A.AudioError)
    assert issubclass(A.AudioError, ValueError)
    assert issubclass(A.AudioWriteError, OSError)


def test_text_file_renamed_wav(tmp_path: Path) -> None:
    p = tmp_path / "question.wav"
    p.write_text("hello, this is not audio\n" * 50)
    with pytest.raises(A.NotAudioError, match=r"'question\.wav' is not a readable audio file"):
        A.load_audio(p)


def test_random_bytes_not_audio() -> None:
    data = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    with pytest.raises(A.NotAudioError, match="WAV, FLAC") as exc:
        A.load_audio(data)
    assert "5000 bytes" in str(exc.value)


@pytest.mark.parametrize("cut", [12, 30])
def test_truncated_wav(cut: int) -> None:
    data = wav_bytes(sine(440, 1.0), SR)
    with pytest.raises(A.NotAudioError, match="data' chunk"):
        A.load_audio(data[:cut])


def test_corrupt_wav_header() -> None:
    data = bytearray(wav_bytes(sine(440, 1.0), SR))
    data[20:36] = b"\xff" * 16  # the 'fmt ' chunk body
    with pytest.raises(A.NotAudioError, match="fmt"):
        A.load_audio(bytes(data))


def test_wav_truncated_mid_data_loads_what_is_there() -> None:
    data = wav_bytes(sine(440, 1.0), SR)
    y = A.load_audio(data[: 44 + 2 * 8000], normalize=False)
    assert len(y) == 8000


def test_empty_inputs(tmp_path: Path) -> None:
    with pytest.raises(A.EmptyAudioError, match="no samples"):
        A.load_audio(np.zeros(0, np.float32), SR)
    with pytest.raises(A.EmptyAudioError):
        A.load_audio(np.zeros((0, 2), np.int16), SR)
    with pytest.raises(A.EmptyAudioError, match="0 bytes"):
        A.load_audio(b"")
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(A.EmptyAudioError, match=r"'empty\.wav' is empty"):
        A.load_audio(p)
    # a valid header with no samples
    with pytest.raises(A.EmptyAudioError):
        A.load_audio(wav_bytes(np.zeros(0, np.float32), SR))


def test_silent() -> None:
    with pytest.raises(A.SilentAudioError, match=r"silent.*dBFS.*microphone"):
        A.load_audio(np.zeros(SR, np.float32), SR)
    with pytest.raises(A.SilentAudioError):  # a couple of LSBs of int16 noise is still silence
        A.load_audio(np.array([0, 1, -1, 2] * 4000, np.int16), SR)
    A.load_audio(np.full(SR, 2e-4, np.float32), SR)  # just above the threshold is accepted


def test_too_short() -> None:
    with pytest.raises(A.TooShortError, match=r"0\.050 s \(800 samples at 16000 Hz\).*0\.1 s"):
        A.load_audio(sine(440, 0.05), SR)
    A.load_audio(sine(440, 0.1), SR)  # exactly the minimum is fine


def test_too_long_default_and_configurable() -> None:
    with pytest.raises(A.TooLongError, match=r"61\.0 s; the limit is 60 s"):
        A.load_audio(sine(440, 61.0, rate=8000), 8000)
    x = sine(440, 3.0)
    with pytest.raises(A.TooLongError, match=r"3\.0 s; the limit is 2 s"):
        A.load_audio(x, SR, max_duration=2)
    assert len(A.load_audio(x, SR, max_duration=3.5)) == len(x)


def test_too_long_refused_from_header_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "long.flac"
    sf.write(p, sine(440, 61.0, rate=8000), 8000)

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded a file whose header already says it is too long")

    monkeypatch.setattr(sf, "read", no_decode)
    with pytest.raises(A.TooLongError, match=r"'long\.flac' is too long: 61\.0 s"):
        A.load_audio(p)


def test_channel_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(A.ChannelLayoutError, match=r"10 channels.*at most 8"):
        A.load_audio(np.full((SR, 10), 0.1, np.float32), SR)
    with pytest.raises(A.ChannelLayoutError, match="10 channels"):
        A.load_audio(np.full((10, SR), 0.1, np.float32), SR)
    with pytest.raises(A.ChannelLayoutError, match=r"cannot tell channels.*\(4, 6\)"):
        A.load_audio(np.full((4, 6), 0.1, np.float32), SR)
    with pytest.raises(A.ChannelLayoutError, match="3-D"):
        A.load_audio(np.full((2, 2, SR), 0.1, np.float32), SR)
    p = tmp_path / "ten.wav"
    sf.write(p, np.full((1600, 10), 0.1, np.float32), SR)
    with pytest.raises(A.ChannelLayoutError, match=r"'ten\.wav' has 10 channels"):
        A.load_audio(p)


def test_missing_sample_rate_for_arrays() -> None:
    with pytest.raises(A.SampleRateError, match="missing"):
        A.load_audio(sine(440, 1.0))
    with pytest.raises(A.SampleRateError, match="missing"):
        A.load_audio(torch.from_numpy(sine(440, 1.0)))


@pytest.mark.parametrize("rate", [0, -16000, 999, 500_000, 16000.5, float("nan"), "16000", True])
def test_bad_sample_rates(rate: object) -> None:
    with pytest.raises(A.SampleRateError, match="sample rate"):
        A.load_audio(sine(440, 1.0), rate)  # type: ignore[arg-type]


def test_bad_sample_rate_in_file_and_target(tmp_path: Path) -> None:
    p = tmp_path / "slow.wav"
    sf.write(p, np.full(800, 0.1, np.float32), 500)
    with pytest.raises(A.SampleRateError, match=r"'slow\.wav' 500 Hz.*between 1000 and 384000"):
        A.load_audio(p)
    with pytest.raises(A.SampleRateError, match="target sample rate"):
        A.load_audio(sine(440, 1.0), SR, target_rate=0)


def test_non_finite_samples() -> None:
    x = sine(440, 1.0)
    x[100] = np.nan
    x[200] = np.inf
    with pytest.raises(A.NotAudioError, match="2 invalid sample"):
        A.load_audio(x, SR)
    with pytest.raises(A.NotAudioError):  # float64 beyond float32 range
        A.load_audio(np.full(SR, 1e300), SR)


def test_validate_order() -> None:
    short_nan = np.full(100, np.nan, np.float32)
    with pytest.raises(A.NotAudioError):  # non-finite is reported before too-short
        A.validate(short_nan, SR)
    with pytest.raises(A.TooShortError):  # too-short before silent
        A.validate(np.zeros(100, np.float32), SR)
    with pytest.raises(A.TooLongError):  # too-long before silent
        A.validate(np.zeros(3 * SR, np.float32), SR, max_duration=2)
    assert A.validate(sine(440, 1.0), SR) is None


def test_argument_type_errors(tmp_path: Path) -> None:
    p = tmp_path / "a.wav"
    sf.write(p, sine(440, 0.5), SR)
    with pytest.raises(TypeError, match="only for raw sample arrays"):
        A.load_audio(p, 16000)
    with pytest.raises(TypeError, match="audio source"):
        A.load_audio([0.1, 0.2], SR)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dtype"):
        A.load_audio(np.ones(SR, bool), SR)
    with pytest.raises(FileNotFoundError):
        A.load_audio(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="max_duration"):
        A.load_audio(sine(440, 1.0), SR, max_duration=0)
    with p.open("r") as text, pytest.raises(TypeError, match="text mode"):
        A.load_audio(text)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def test_sources_agree(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    stereo = np.stack([sine(440, 1.3, 22050), sine(660, 1.3, 22050, amp=0.3)], axis=1)
    stereo += 0.01 * rng.standard_normal(stereo.shape).astype(np.float32)
    p = tmp_path / "q.wav"
    sf.write(p, stereo, 22050, subtype="PCM_16")
    data = p.read_bytes()
    from_path = A.load_audio(p)
    assert from_path.dtype == np.float32 and from_path.ndim == 1
    assert abs(len(from_path) - round(stereo.shape[0] * SR / 22050)) <= 1
    np.testing.assert_array_equal(A.load_audio(str(p)), from_path)
    np.testing.assert_array_equal(A.load_audio(data), from_path)
    np.testing.assert_array_equal(A.load_audio(bytearray(data)), from_path)
    np.testing.assert_array_equal(A.load_audio(io.BytesIO(data)), from_path)
    with p.open("rb") as f:
        np.testing.assert_array_equal(A.load_audio(f), from_path)
    offset = io.BytesIO(b"preamble" + data)
    offset.seek(8)
    np.testing.assert_array_equal(A.load_audio(offset), from_path)
    decoded, rate = sf.read(p, dtype="float32")
    np.testing.assert_array_equal(A.load_audio(decoded, rate), from_path)
    np.testing.assert_array_equal(A.load_audio(decoded.T.copy(), rate), from_path)
    np.testing.assert_array_equal(A.load_audio(torch.from_numpy(decoded), rate), from_path)
    ints, _ = sf.read(p, dtype="int16")
    np.testing.assert_allclose(A.load_audio(ints, rate), from_path, atol=1e-6)


def test_non_seekable_file_object() -> None:
    data = wav_bytes(sine(440, 0.5), SR)

    class Stream(io.RawIOBase):
        def __init__(self) -> None:
            self._buf = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            chunk = self._buf.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    np.testing.assert_array_equal(A.load_audio(Stream()), A.load_audio(data))


@pytest.mark.parametrize(
    ("suffix", "subtype", "atol"),
    [
        (".wav", "PCM_16", 1e-4),
        (".wav", "FLOAT", 0.0),
        (".flac", "PCM_24", 1e-6),
        (".ogg", None, 0),
    ],
)
def test_round_trip(tmp_path: Path, suffix: str, subtype: str | None, atol: float) -> None:
    x = sine(440, 0.8) + sine(1230, 0.8, amp=0.2)
    p = tmp_path / f"r{suffix}"
    sf.write(p, x, SR, subtype=subtype)
    y = A.load_audio(p, normalize=False)
    assert y.dtype == np.float32 and len(y) == len(x)
    if suffix == ".ogg":  # lossy: compare waveforms by SNR
        snr = 10 * np.log10(np.sum(x**2) / np.sum((x - y) ** 2))
        assert snr > 20
    else:
        np.testing.assert_allclose(y, x, atol=atol)


def test_mp3(tmp_path: Path) -> None:
    p = tmp_path / "q.mp3"
    x = sine(1000, 1.0, 22050)
    if HAS_FFMPEG:
        src = tmp_path / "src.wav"
        sf.write(src, x, 22050)
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-c:a", "libmp3lame"]
        if subprocess.run([*cmd, str(p)], capture_output=True, check=False).returncode != 0:
            pytest.skip("ffmpeg cannot encode MP3 (no libmp3lame)")
    elif "MP3" in sf.available_formats():
        sf.write(p, x, 22050, format="MP3")
    else:
        pytest.skip("no MP3 encoder: neither ffmpeg nor an MP3-capable libsndfile is installed")
    y = A.load_audio(p)
    assert abs(len(y) / SR - 1.0) < 0.1  # encoder delay/padding adds a few ms
    assert abs(peak_freq(y, SR) - 1000) < 5
    np.testing.assert_array_equal(A.load_audio(p.read_bytes()), y)


@pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg/ffprobe not installed: no fallback decoder")
def test_ffmpeg_fallback_m4a(tmp_path: Path) -> None:
    p = tmp_path / "phone.m4a"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi"]
    cmd += ["-i", "sine=frequency=1000:duration=1.5:sample_rate=22050", "-ac", "2", "-c:a", "aac"]
    subprocess.run([*cmd, str(p)], check=True, capture_output=True)
    with pytest.raises(sf.LibsndfileError):
        sf.info(p)  # really needs the fallback
    y = A.load_audio(p)
    assert abs(len(y) / SR - 1.5) < 0.1
    assert abs(peak_freq(y, SR) - 1000) < 5
    np.testing.assert_array_equal(A.load_audio(p.read_bytes()), y)
    with pytest.raises(A.TooLongError, match=r"'phone\.m4a' is too long: 1\.5 s"):
        A.load_audio(p, max_duration=1.0)


@pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg/ffprobe not installed: no fallback decoder")
def test_ffmpeg_fallback_refuses_playlists(tmp_path: Path) -> None:
    # Without the demuxer whitelist ffmpeg would follow these to another local file.
    sf.write(tmp_path / "secret.wav", sine(440, 1.0), SR)
    concat = tmp_path / "concat.wav"
    concat.write_text("ffconcat version 1.0\nfile 'secret.wav'\n")
    hls = tmp_path / "list.m3u8"
    hls.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nsecret.wav\n#EXT-X-ENDLIST\n")
    for p in (concat, hls):
        with pytest.raises(A.NotAudioError, match=p.name):
            A.load_audio(p)


def test_stereo_to_mono_mean() -> None:
    left, right = sine(440, 1.0), sine(700, 1.0, amp=0.25)
    mean = (left + right) / 2
    for arr in (np.stack([left, right], 1), np.stack([left, right], 0)):
        np.testing.assert_allclose(A.load_audio(arr, SR, normalize=False), mean, atol=1e-7)
    np.testing.assert_allclose(A.to_mono(np.stack([left, right], 1)), mean, atol=1e-7)
    np.testing.assert_array_equal(A.to_mono(left[:, None]), left)
    np.testing.assert_array_equal(A.to_mono(left[None, :]), left)


def test_integer_scaling() -> None:
    n = SR // 2
    full = np.resize(np.array([32767, -32768, 16384, 0], np.int16), n)
    y = A.load_audio(full, SR, normalize=False)
    np.testing.assert_allclose(y[:4], [32767 / 32768, -1.0, 0.5, 0.0])
    y32 = A.load_audio(full.astype(np.int32) * 65536, SR, normalize=False)
    np.testing.assert_allclose(y32, y, atol=1e-7)
    u8 = np.resize(np.array([255, 0, 192, 128], np.uint8), n)
    np.testing.assert_allclose(A.to_mono(u8)[:4], [127 / 128, -1.0, 0.5, 0.0])


def test_load_normalizes_and_resamples() -> None:
    y = A.load_audio(sine(440, 1.0, 48000, amp=0.1), 48000)
    assert len(y) == SR
    assert abs(float(np.abs(y).max()) - 0.999) < 2e-3
    quiet = A.load_audio(sine(440, 1.0, amp=0.001), SR)  # below the 0.01 floor: ×99.9
    assert abs(float(np.abs(quiet).max()) - 0.0999) < 1e-4
    raw = A.load_audio(sine(440, 1.0, amp=0.1), SR, normalize=False)
    assert abs(float(np.abs(raw).max()) - 0.1) < 1e-4
    assert len(A.load_audio(sine(440, 1.0), SR, target_rate=24000)) == 24000


# ---------------------------------------------------------------------------------------------
# Resampling
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [44100, 22050, 8000, 48000])
def test_resample_to_16k(rate: int) -> None:
    x = sine(1000, 1.25, rate)
    y = A.resample(x, rate, SR)
    assert y.dtype == np.float32
    assert abs(len(y) - round(len(x) * SR / rate)) <= 1
    assert abs(peak_freq(y, SR) - 1000) < 2


def test_resample_identity_and_channels() -> None:
    x = sine(440, 0.5)
    y = A.resample(x, SR, SR)
    np.testing.assert_array_equal(y, x)
    assert y is not x
    st2 = np.stack([x, x], 1)
    assert A.resample(st2, SR, 8000).shape == (4000, 2)
    assert A.resample(np.zeros(0, np.float32), SR, 8000).shape == (0,)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 4000),
    orig=st.integers(A.MIN_SAMPLE_RATE, 96000),
    target=st.integers(A.MIN_SAMPLE_RATE, 96000),
)
def test_resample_length_property(n: int, orig: int, target: int) -> None:
    x = np.random.default_rng(n).uniform(-1, 1, n).astype(np.float32)
    y = A.resample(x, orig, target)
    assert abs(len(y) - round(n * target / orig)) <= 1


# ---------------------------------------------------------------------------------------------
# Normalisation and trimming
# ---------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        st.integers(1, 300),
        elements=st.floats(-4, 4, width=32, allow_nan=False),
    )
)
def test_peak_normalize_property(x: np.ndarray) -> None:
    y = A.peak_normalize(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    peak = float(np.max(np.abs(x)))
    if peak >= 0.01:
        assert math.isclose(float(np.max(np.abs(y))), 0.999, rel_tol=1e-6)
    else:
        np.testing.assert_allclose(y, x * (0.999 / 0.01), rtol=1e-6, atol=1e-12)


def test_peak_normalize_formula() -> None:
    x = np.array([0.5, -0.25], np.float32)
    np.testing.assert_allclose(A.peak_normalize(x, floor=0.01, peak=0.9), [0.9, -0.45])
    np.testing.assert_array_equal(A.peak_normalize(np.zeros(3, np.float32)), np.zeros(3))


def test_trim_silence_around_tone() -> None:
    rng = np.random.default_rng(2)
    tone = sine(440, 1.0)
    x = np.concatenate([np.zeros(SR // 2), tone, np.zeros(int(0.7 * SR))]).astype(np.float32)
    x += 1e-4 * rng.standard_normal(len(x)).astype(np.float32)  # room noise, -80 dB
    y = A.trim_silence(x, SR, top_db=40, pad=0.05)
    # the tone plus 50 ms of pad on both sides, plus at most one 25 ms frame of slack per side
    assert 1.1 * SR <= len(y) <= 1.15 * SR
    assert len(A.trim_silence(x, SR, pad=0.0)) <= 1.05 * SR
    loaded = A.load_audio(x, SR, trim_silence=True)
    assert 1.1 * SR <= len(loaded) <= 1.15 * SR
    z = np.zeros(SR, np.float32)
    np.testing.assert_array_equal(A.trim_silence(z, SR), z)
    assert len(A.trim_silence(tone, SR)) == len(tone)


# ---------------------------------------------------------------------------------------------
# Framing and log-mel
# ---------------------------------------------------------------------------------------------


def test_num_frames_convention() -> None:
    assert A.num_frames(0) == 0
    assert A.num_frames(399) == 0
    assert A.num_frames(400) == 1
    assert A.num_frames(559) == 1
    assert A.num_frames(560) == 2
    assert A.num_frames(SR) == 98
    assert A.num_frames(SR, center=True) == 101
    assert A.num_frames(0, center=True) == 0
    assert A.num_frames(24000, hop=480, win=1200, center=True) == 51


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 3000),
    win=st.integers(64, 600),
    hop=st.integers(1, 300),
    center=st.booleans(),
)
def test_num_frames_matches_log_mel(n: int, win: int, hop: int, center: bool) -> None:
    n_fft = 1 << (win - 1).bit_length()
    x = np.random.default_rng(n).uniform(-1, 1, n).astype(np.float32)
    m = A.log_mel(x, SR, 8, n_fft=n_fft, win_length=win, hop_length=hop, center=center)
    assert m.shape == (A.num_frames(n, hop, win, center), 8)


def test_log_mel_shape_dtype_finite() -> None:
    x = sine(440, 1.0)
    m = A.log_mel(x)
    assert isinstance(m, torch.Tensor)
    assert m.shape == (98, A.N_MELS) and m.dtype == torch.float32
    assert torch.isfinite(m).all()
    silent = A.log_mel(np.zeros(SR, np.float32))
    assert torch.allclose(silent, torch.full_like(silent, math.log(1e-10)))
    assert A.log_mel(np.zeros(100, np.float32)).shape == (0, A.N_MELS)
    torch.testing.assert_close(A.log_mel(torch.from_numpy(x)), m)
    ints = (x * 32767).astype(np.int16)
    torch.testing.assert_close(A.log_mel(ints), A.log_mel(ints / 32768.0))


@pytest.mark.parametrize("freq", [250.0, 1000.0, 3000.0])
def test_log_mel_sine_lands_in_nearest_bin(freq: float) -> None:
    m = A.log_mel(sine(freq, 1.0))
    centres = librosa.mel_frequencies(A.N_MELS + 2, fmin=0.0, fmax=SR / 2)[1:-1]
    assert int(m.mean(0).argmax()) == int(np.argmin(np.abs(centres - freq)))


def test_log_mel_batched_equals_per_item() -> None:
    rng = np.random.default_rng(3)
    batch = rng.uniform(-0.5, 0.5, (3, 4000)).astype(np.float32)
    out = A.log_mel(batch)
    assert out.shape == (3, A.num_frames(4000), A.N_MELS)
    for i in range(3):
        torch.testing.assert_close(out[i], A.log_mel(batch[i]))
    centred = A.log_mel(torch.from_numpy(batch), center=True)
    for i in range(3):
        torch.testing.assert_close(centred[i], A.log_mel(batch[i], center=True))


def test_log_mel_center_true_matches_torch_stft() -> None:
    x = torch.from_numpy(np.random.default_rng(4).uniform(-1, 1, (2, 5000)).astype(np.float32))
    window = torch.hann_window(A.WIN_LENGTH)
    spec = torch.stft(
        x, A.N_FFT, A.HOP_LENGTH, A.WIN_LENGTH, window, center=True, return_complex=True
    )
    ref = torch.log(torch.clamp(spec.abs().square().transpose(1, 2) @ A.mel_filterbank(), 1e-10))
    torch.testing.assert_close(A.log_mel(x, center=True), ref, atol=1e-4, rtol=1e-4)


def test_log_mel_streaming_prefix() -> None:
    x = np.random.default_rng(5).uniform(-1, 1, 8000).astype(np.float32)
    full = A.log_mel(x)
    for m in (400, 1234, 5000):
        torch.testing.assert_close(A.log_mel(x[:m]), full[: A.num_frames(m)])


def test_log_mel_vocoder_params_and_grad() -> None:
    x = torch.from_numpy(sine(440, 1.0, 24000)).requires_grad_(True)
    m = A.log_mel(x, 24000, n_fft=2048, win_length=1200, hop_length=480, center=True)
    assert m.shape == (51, A.N_MELS)
    m.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


# ---------------------------------------------------------------------------------------------
# Helpers and saving
# ---------------------------------------------------------------------------------------------


def test_duration() -> None:
    assert A.duration(np.zeros(8000), SR) == 0.5
    assert A.duration(np.zeros((8000, 2)), SR) == 0.5
    assert A.duration(np.zeros((2, 8000)), SR) == 0.5
    assert A.duration(torch.zeros(24000), 24000) == 1.0
    assert A.duration(np.zeros(0), SR) == 0.0


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_save_audio_round_trip(tmp_path: Path, suffix: str) -> None:
    x = sine(440, 0.5)
    p = tmp_path / "deep" / "er" / f"out{suffix}"
    assert A.save_audio(p, x, SR) == p
    y, rate = sf.read(p, dtype="float32")
    assert rate == SR and len(y) == len(x)
    if suffix != ".ogg":
        np.testing.assert_allclose(y, x, atol=1e-4)
    assert sorted(os.listdir(p.parent)) == [p.name]  # no temporary file left behind


def test_save_audio_clips_and_overwrites(tmp_path: Path) -> None:
    p = tmp_path / "out.wav"
    A.save_audio(p, np.full(1600, 0.2, np.float32), SR)
    A.save_audio(p, torch.full((1600,), 3.0), SR)
    y, _ = sf.read(p, dtype="float32")
    assert np.all(y > 0.99)  # clipped to full scale, not wrapped around
    with pytest.raises(ValueError, match="NaN"):
        A.save_audio(p, np.full(10, np.nan, np.float32), SR)


def test_save_audio_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "out.wav"
    A.save_audio(p, sine(440, 0.5), SR)
    before = p.read_bytes()
    real_write = sf.write

    def failing_write(file: object, *args: object, **kwargs: object) -> None:
        real_write(file, *args, **kwargs)  # write fully, then fail as a full disk would
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sf, "write", failing_write)
    with pytest.raises(A.AudioWriteError, match="No space left"):
        A.save_audio(p, sine(880, 1.0), SR)
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.wav"]


def test_save_audio_unwritable(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(A.AudioWriteError, match=r"cannot write audio to .*file\.txt/out\.wav"):
        A.save_audio(blocker / "out.wav", sine(440, 0.5), SR)
    folder = tmp_path / "taken.wav"
    folder.mkdir()
    with pytest.raises(A.AudioWriteError, match="cannot write audio"):
        A.save_audio(folder, sine(440, 0.5), SR)
    assert sorted(os.listdir(tmp_path)) == ["file.txt", "taken.wav"]
    with pytest.raises(ValueError, match=r"\.wav, \.flac or \.ogg"):
        A.save_audio(tmp_path / "out.mp4", sine(440, 0.5), SR)
