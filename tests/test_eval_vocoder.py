"""`aqaa eval vocoder` metrics on constructed values (no model, no Whisper)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aqaa.eval.acoustics import frame_grid_share
from aqaa.eval.vocoder import ClipResult, _jumps, style_retention, summarize


def clip(
    style: str, src: dict, res: dict, wer_res: float = 0.0, text: str = "a b c d"
) -> ClipResult:
    return ClipResult("x", style, text, 1.0, text, text, 0.0, wer_res, 3.5, 3.0,
                      0.1, 0.01, 0.05, 0.02, src, res)  # fmt: skip


def ac(f0: float | None, rate: float, rms: float, voicing: float = 0.9) -> dict:
    return {"duration_s": 1.0, "speech_s": 1.0, "rms_db": rms, "f0_hz": f0, "f0_spread_st": 2.0,
            "f0_rise_st": 0.0, "voicing": voicing, "words": 4, "rate_wps": rate}  # fmt: skip


def test_style_retention_counts_direction_and_size() -> None:
    up4 = 100.0 * 2 ** (4 / 12)
    results = [
        clip("neutral", ac(100.0, 3.0, -26.0), ac(120.0, 3.0, -24.0)),
        # +4 st in the source; the resynthesis moves +3.2 st (80%) from its own baseline: kept.
        clip("high", ac(up4, 3.0, -26.0), ac(120.0 * 2 ** (3.2 / 12), 3.0, -24.0)),
        # Louder by 6 dB in the source, but quieter in the resynthesis: lost.
        clip("loud", ac(100.0, 3.0, -20.0), ac(120.0, 3.0, -25.0)),
        clip("whisper", ac(None, 3.0, -30.0, 0.05), ac(120.0, 3.0, -30.0, 0.8)),
    ]
    s = style_retention(results)
    assert s["per_style"]["high"]["ratios"]["f0_st"] == [pytest.approx(0.8, abs=1e-3)]
    assert s["per_style"]["high"]["retained"] == 1.0
    assert s["per_style"]["loud"]["retained"] == 0.0
    assert s["per_style"]["whisper"]["retained"] == 0.0  # voiced resynthesis of a whisper
    assert s["pairs"] == 3 and s["retained"] == pytest.approx(1 / 3)


def test_seam_jump_finds_a_click_at_a_boundary() -> None:
    t = np.arange(24000) / 24000
    x = 0.3 * np.sin(2 * np.pi * 150 * t)
    seam, med, p99 = _jumps(x, [12000])
    assert seam / p99 < 1.1  # a smooth boundary is an ordinary sample step
    x[12000:] += 0.5  # a DC step: a click
    seam, med, p99 = _jumps(x, [12000])
    assert seam > 0.45 and seam / med > 20


def test_summary_pools_wer_over_words() -> None:
    r = [clip("neutral", ac(100, 3, -26), ac(100, 3, -26), 1.0, "one"),
         clip("neutral", ac(100, 3, -26), ac(100, 3, -26), 0.0, "one two three")]  # fmt: skip
    assert summarize(r)["summary"]["wer_resynth"] == pytest.approx(0.25)
    assert summarize(r)["summary"]["wer_copy"] is None  # not measured
    r[0].wer_copy, r[1].wer_copy = 0.0, 1.0
    r[0].dnsmos_copy, r[1].dnsmos_copy = 3.0, 4.0
    s = summarize(r)["summary"]
    assert s["wer_copy"] == pytest.approx(0.75) and s["dnsmos_p808_copy"] == pytest.approx(3.5)
    assert s["frame_grid_copy"] is None  # not measured
    r[0].grid_copy, r[1].grid_copy = 0.1, 0.5
    assert summarize(r)["summary"]["frame_grid_copy"] == pytest.approx(0.3)
    assert "wer_resynth_unseen" not in s  # no clip is known to be unseen
    r[0].seen, r[1].seen = False, True  # only the one-word clip speaks a new sentence
    s = summarize(r)["summary"]
    assert s["clips_unseen"] == 1 and s["wer_resynth_unseen"] == pytest.approx(1.0)
    assert s["wer_resynth"] == pytest.approx(0.25)


def test_frame_grid_share_separates_a_frame_rate_buzz_from_speechlike_signals() -> None:
    sr = 24000
    t = np.arange(3 * sr) / sr
    pulses = np.zeros(3 * sr)
    pulses[::480] = 1.0  # a click every 20 ms: all harmonics on the 50 Hz grid
    noise = np.random.default_rng(0).standard_normal(3 * sr)
    assert frame_grid_share(pulses, sr) == pytest.approx(1.0, abs=1e-6)
    assert frame_grid_share(noise, sr) == pytest.approx(0.10, abs=0.02)  # chance: 5 of 50 bins
    assert frame_grid_share(np.sin(2 * np.pi * 137 * t), sr) < 1e-6
    assert frame_grid_share(np.sin(2 * np.pi * 137 * t), sr, frame_rate=137 / 2) > 0.99
    assert frame_grid_share(pulses[: sr // 2], sr) is None  # too short for 1 Hz bins


def test_band_envelope_keeps_ramps_and_swap_structure_moves_the_harmonics() -> None:
    from aqaa.eval.vocoder import band_envelope, swap_structure

    bands = np.arange(80, dtype=np.float32)
    ramp = np.tile(-0.05 * bands, (4, 1))
    np.testing.assert_allclose(band_envelope(ramp)[:, 2:-2], ramp[:, 2:-2], atol=1e-5)
    comb = np.tile(np.where(bands % 4 < 2, 1.0, -1.0).astype(np.float32), (4, 1))  # "harmonics"
    flow, true = ramp, -3.0 + 0.02 * bands + comb  # the flow: smooth; the recording: striated
    true_env, true_fine = swap_structure(flow, true, fine_bands=30)
    # the recording's envelope carries its level and tilt, not its striations
    assert np.abs(true_env - band_envelope(true))[:, 4:-4].max() < 1e-4  # the flow adds none
    assert np.abs(true_env - band_envelope(true_env))[:, 4:-4].max() < 0.3
    # the recording's striations go into the flow's lowest 30 bands; above them the flow stays
    fine = true_fine - band_envelope(true_fine)
    assert np.corrcoef(fine[0, 4:26], comb[0, 4:26])[0, 1] > 0.9
    np.testing.assert_array_equal(true_fine[:, 30:], flow[:, 30:])
    same = swap_structure(true, true)
    np.testing.assert_allclose(same[0], true, atol=1e-5)
    np.testing.assert_allclose(same[1], true, atol=1e-5)


def test_train_sentences_are_the_train_splits_answer_clips(tmp_path) -> None:
    from aqaa.eval.vocoder import train_sentences

    (tmp_path / "tokens").mkdir()
    for split, texts in (("train", ["Hi.", "Bye."]), ("test", ["New."])):
        clips = [{"text": t, "style": "neutral", "codes": [], "audio": "a.flac"} for t in texts]
        rec = {"id": split, "split": split, "category": "x", "turns": [{"human_text": "q",
               "human_codes": [], "answer_clips": clips}]}  # fmt: skip
        (tmp_path / "tokens" / f"{split}.jsonl").write_text(json.dumps(rec) + "\n")
    assert train_sentences(tmp_path) == {"Hi.", "Bye."}
