"""The corpus builder: plan determinism, a valid tiny corpus, resume, failures, stats, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from aqaa.cli import app
from aqaa.data import corpus as corpus_mod
from aqaa.data.corpus import (
    ASSISTANT_RATE,
    HUMAN_RATE,
    BuildConfig,
    build_corpus,
    coverage_schedule,
    plan_corpus,
    read_manifest,
)
from aqaa.data.schema import CATEGORIES
from aqaa.data.stats import corpus_stats
from aqaa.data.styles import STYLES
from aqaa.data.tasks import template_split
from aqaa.data.voices import RESERVED_VOICES, VoiceBank

# A tiny corpus: the first items of the coverage schedule, all categories and styles.
HOURS = 0.012


@pytest.fixture(scope="module")
def bank() -> VoiceBank:
    return VoiceBank.discover()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    summary = build_corpus(BuildConfig(out=out, hours=HOURS, seed=3, workers=2), progress=False)
    assert summary["items_ok"] == summary["items_planned"] > 0
    return out


def test_plan_is_deterministic_and_a_prefix(tmp_path: Path, bank: VoiceBank) -> None:
    a = plan_corpus(BuildConfig(out=tmp_path, hours=0.05, seed=1), bank)
    b = plan_corpus(BuildConfig(out=tmp_path, hours=0.05, seed=1), bank)
    longer = plan_corpus(BuildConfig(out=tmp_path, hours=0.2, seed=1), bank)
    other = plan_corpus(BuildConfig(out=tmp_path, hours=0.05, seed=2), bank)
    assert a == b
    assert longer[: len(a)] == a and len(longer) > len(a)
    assert [p.item for p in other] != [p.item for p in a]


def test_plan_covers_every_category_and_style(tmp_path: Path, bank: VoiceBank) -> None:
    plan = plan_corpus(BuildConfig(out=tmp_path, hours=0.05, seed=0), bank)
    assert {p.item["category"] for p in plan} == set(CATEGORIES)
    styles = {s["style"] for p in plan for t in p.item["turns"] for s in t["answer"]}
    assert styles == set(STYLES)
    assert len(coverage_schedule(list(CATEGORIES))) <= len(plan)


def test_plan_respects_splits(tmp_path: Path, bank: VoiceBank) -> None:
    plan = plan_corpus(BuildConfig(out=tmp_path, hours=1.0, seed=0), bank)
    splits = {p.split for p in plan}
    assert splits == {"train", "valid", "test"}
    for p in plan:
        assert template_split(p.item["template"]) == p.split
        assert all(template_split(t) == p.split for t in p.item["templates"])
        assert len(p.item["facts"]) == len(p.item["turns"])
        for t in p.turns:
            assert bank.get(t.voice).split == p.split
            if p.split != "test":
                assert t.voice not in RESERVED_VOICES
    assert any(t.voice in RESERVED_VOICES for p in plan for t in p.turns)
    engines = {t.voice.split(":")[0] for p in plan if p.split == "train" for t in p.turns}
    assert engines == {"espeak", "flite", "festival"}  # piper is the assistant only


def test_built_corpus_is_valid(built: Path) -> None:
    records = read_manifest(built)
    assert records
    for r in records:
        for t in r["turns"]:
            h = t["human_audio"]
            x, sr = sf.read(built / h["path"])
            assert sr == HUMAN_RATE and x.ndim == 1
            assert len(x) / sr == pytest.approx(h["duration"], abs=1e-3)
            assert h["phonemes"] and t["human_text"]
            clips = t["answer_audio"]
            tagged = [
                c["text"] if c["style"] == "neutral" else f"({c['style']}) {c['text']}"
                for c in clips
            ]
            assert " ".join(tagged) == t["answer_text"]  # one clip per answer sentence
            for c in t["answer_audio"]:
                y, sr2 = sf.read(built / c["path"])
                assert sr2 == ASSISTANT_RATE and len(y) > 0.2 * sr2
                assert c["phonemes"] and c["style"] in STYLES
    summary = json.loads((built / "build.json").read_text())
    assert summary["hours_total"] > 0 and summary["bytes_on_disk"] > 0


def test_resume_renders_only_missing_items(built: Path) -> None:
    records = read_manifest(built)
    victim = built / "items" / f"{records[1]['id']}.json"
    victim.unlink()
    summary = build_corpus(BuildConfig(out=built, hours=HOURS, seed=3, workers=1), progress=False)
    assert summary["items_ok"] == len(records)
    again = read_manifest(built)
    assert [r["id"] for r in again] == [r["id"] for r in records]
    assert again[1] == records[1]  # the re-rendered item is identical
    rerendered = summary["rendered_this_run_seconds"]
    assert rerendered == pytest.approx(corpus_mod._record_seconds(records[1]), abs=0.01)


def test_build_is_deterministic(built: Path, tmp_path: Path) -> None:
    build_corpus(BuildConfig(out=tmp_path, hours=0.003, seed=3, workers=1), progress=False)
    small = read_manifest(tmp_path)
    big = {r["id"]: r for r in read_manifest(built)}
    for r in small:
        assert r == big[r["id"]]
        a, _ = sf.read(tmp_path / r["turns"][0]["human_audio"]["path"])
        b, _ = sf.read(built / r["turns"][0]["human_audio"]["path"])
        np.testing.assert_array_equal(a, b)


def test_other_config_in_same_dir_is_refused(built: Path) -> None:
    with pytest.raises(ValueError, match="another configuration"):
        build_corpus(BuildConfig(out=built, hours=HOURS, seed=4, workers=1), progress=False)


def test_failing_item_is_logged_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = corpus_mod._render_human

    def flaky(bank, text, split, pt):
        if pt.voice.startswith("espeak:"):
            raise RuntimeError("engine crashed")
        return real(bank, text, split, pt)

    monkeypatch.setattr(corpus_mod, "_render_human", flaky)
    summary = build_corpus(
        BuildConfig(out=tmp_path, hours=0.006, seed=3, workers=1), progress=False
    )
    errors = [json.loads(x) for x in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert summary["items_failed_this_run"] == len(errors) > 0
    assert all("engine crashed" in e["error"] for e in errors)
    assert summary["items_ok"] + len(errors) == summary["items_planned"]


def test_stats_and_cli(built: Path) -> None:
    st = corpus_stats(built)
    assert sum(st["per_category"].values()) == st["items"] == len(read_manifest(built))
    assert st["hours_total"] == pytest.approx(
        sum(sum(h.values()) for h in st["hours"].values()), abs=1e-3
    )
    runner = CliRunner()
    res = runner.invoke(app, ["data", "stats", str(built), "--plot", str(built / "d.png")])
    assert res.exit_code == 0, res.output
    assert (built / "d.png").stat().st_size > 1000
    res = runner.invoke(app, ["data", "stats", str(built / "nope")])
    assert res.exit_code == 2 and "not found" in res.output
    res = runner.invoke(app, ["data", "build", "--out", str(built / "x"), "--hours", "-1"])
    assert res.exit_code == 2 and "--hours" in res.output


def test_every_listed_command_runs() -> None:
    runner = CliRunner()
    for args in (
        ["--help"],
        ["version"],
        ["voices"],
        ["data", "--help"],
        ["data", "sample", "-n", "1"],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, (args, res.output)
