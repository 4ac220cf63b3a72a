"""`aqaa eval hearing`: the LM's transcripts of the suite's questions, WER by voice group."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aqaa.cli import app
from aqaa.eval.hearing import HearingRow, suite_hearing, summarize, voice_group
from aqaa.eval.suite import load_suite


def test_voice_groups_follow_the_splits() -> None:
    assert voice_group("flite:awb") == "reserved"
    assert voice_group("festival:cmu_us_slt_arctic_hts") == "reserved"
    assert voice_group("flite:slt") == "held-out"
    assert voice_group("piper:joe") == "training"  # the assistant's voice is a training voice
    suite = load_suite("default")  # the suite asks in test-split voices only
    assert {voice_group(t.voice) for it in suite.items for t in it.turns} == {
        "reserved",
        "held-out",
    }


def test_summary_weights_by_words() -> None:
    rows = [
        HearingRow("a", 0, "flite:awb", "reserved", "one two three four", "x", 4, 4),
        HearingRow("b", 0, "flite:slt", "held-out", "one two", "one two", 0, 2),
        HearingRow("c", 0, "flite:slt", "held-out", "one two", "one", 1, 2),
    ]
    rep = summarize(rows)
    assert rep.words == 8 and rep.wer == pytest.approx(5 / 8)
    assert rep.groups == {
        "held-out": {"wer": 0.25, "words": 4},
        "reserved": {"wer": 1.0, "words": 4},
    }


def test_suite_hearing_scores_every_turn() -> None:
    suite = load_suite("smoke")
    heard: list[tuple[str, int]] = []

    def audio(item, k, turn):
        heard.append((item.id, k))
        return np.zeros(160, dtype=np.float32)

    questions = iter([t.question for it in suite.items for t in it.turns])
    rep = suite_hearing(suite, audio, lambda x: next(questions), progress=False)
    assert len(heard) == suite.n_turns == len(rep.rows)
    assert rep.wer == 0.0 and rep.words == sum(len(r.question.split()) for r in rep.rows)
    rep = suite_hearing(suite, audio, lambda x: "", progress=False)
    assert rep.wer == 1.0  # nothing heard: every word deleted


def test_cli_needs_a_model_directory(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["eval", "hearing", "--out", str(tmp_path / "o"), "--model",
                                 str(tmp_path)])  # fmt: skip
    assert r.exit_code == 2 and "has no tokenizer/" in r.output


def test_cli_hears_the_smoke_suite(tiny_model_dir: Path, tmp_path: Path) -> None:
    """End to end on a random tiny LM: babble, but every turn is scored and written."""
    import json

    r = CliRunner().invoke(app, ["eval", "hearing", "--out", str(tmp_path / "o"), "--model",
                                 str(tiny_model_dir), "--suite", "smoke", "--threads", "1"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "o" / "hearing.json").read_text())
    assert len(rep["rows"]) == 5 and rep["wer"] > 0.5
    assert set(rep["groups"]) == {"reserved", "held-out"}  # espeak en-gb+sandro: test split


def test_cli_refuses_an_lm_of_another_tokenizer(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    from aqaa.lm.model import load_checkpoint, save_checkpoint

    model, vocab = load_checkpoint(tiny_model_dir / "lm")
    model.config.audio_tokenizer = "0123456789ab"
    save_checkpoint(model, vocab, tmp_path / "lm")
    r = CliRunner().invoke(app, ["eval", "hearing", "--out", str(tmp_path / "o"), "--model",
                                 str(tiny_model_dir), "--lm", str(tmp_path / "lm"), "--suite",
                                 "smoke"])  # fmt: skip
    assert r.exit_code == 2 and "0123456789ab" in r.output.replace("\n", "")
    shutil.rmtree(tmp_path / "lm")
    r = CliRunner().invoke(app, ["eval", "hearing", "--out", str(tmp_path / "o"), "--lm",
                                 str(tmp_path / "lm")])  # fmt: skip
    assert r.exit_code == 2 and "is not an LM checkpoint" in r.output
