"""`aqaa.lm.twin`: typed twins of spoken questions and the hidden-state alignment to them."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from aqaa.cli import app
from aqaa.lm.data import SFTSource, load_items, write_synthetic_corpus
from aqaa.lm.format import KIND_CONTEXT, FormatConfig
from aqaa.lm.twin import common_suffix, twin_alignment, twin_positions
from aqaa.lm.vocab import AUDIO_END_ID, EOT_ID, train_vocab


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_corpus(tmp_path_factory.mktemp("corpus"), n_train=24, n_valid=4)


def _source(corpus: Path, twins: bool = True) -> SFTSource:
    items = load_items(corpus, "train")
    texts = [x for it in items for t in it.turns for x in (t.human_text, t.answer_text)]
    vocab = train_vocab(texts + FormatConfig().fixed_texts(), 300)
    return SFTSource(items, vocab, FormatConfig(), 1024, text_twins=twins)


def test_common_suffix() -> None:
    assert common_suffix([1, 2, 3, 4], [9, 3, 4]) == 2
    assert common_suffix([1, 2], [3]) == 0
    assert common_suffix([5, 5], [5, 5]) == 2


def test_twin_types_the_question_and_keeps_the_response(corpus: Path) -> None:
    src = _source(corpus)
    for it in src.items:
        it.category = "knowledge"  # the synthetic corpus has voice-understanding items too
    rng = random.Random(0)
    seen = 0
    for _ in range(40):
        ex = src.draw(rng)
        if ex is None or ex.task not in ("sft_text", "sft_speech"):
            continue
        tw = ex.twin
        assert tw is not None
        vocab = src.vocab
        assert any(
            vocab.is_audio(t) for t, k in zip(ex.ids, ex.kinds, strict=True) if k == KIND_CONTEXT
        )
        # the last question is typed: its audio is gone from the twin's prompt
        n_resp = sum(k != KIND_CONTEXT for k in ex.kinds)
        assert tw.ids[-n_resp:] == ex.ids[-n_resp:] and tw.kinds[-n_resp:] == ex.kinds[-n_resp:]
        s0, t0, n = twin_positions(ex, tw)
        assert n >= n_resp  # the shared part covers the whole response and the header before it
        assert ex.ids[s0 : s0 + n + 1] == tw.ids[t0 : t0 + n + 1] and s0 + n + 1 == len(ex)
        assert ex.ids[s0 - 1] == AUDIO_END_ID and ex.ids[s0] == tw.ids[t0] == EOT_ID
        seen += 1
    assert seen >= 10
    off = _source(corpus, twins=False)
    assert off.draw(random.Random(0)).twin is None


def test_voice_understanding_gets_no_twin(corpus: Path) -> None:
    src = _source(corpus)
    for it in src.subset:
        it.category = "voice_understanding"
    assert all(src.draw(random.Random(i)).twin is None for i in range(10))


def test_alignment_known_values() -> None:
    h = torch.randn(2, 6, 4)
    teacher = [h[1:2, 1:5].clone(), h[1:2, 1:5].clone() * 3.0]  # scale does not matter
    total, n = twin_alignment([h, h], teacher, [None, (1, 0, 4)])
    assert n == 4 and float(total) == pytest.approx(0.0, abs=1e-5)
    # orthogonal states cost 1 per position, opposite ones 2 (averaged over layers)
    s = torch.zeros(1, 3, 2)
    s[0, :, 0] = 1.0
    t_orth, t_opp = torch.zeros(1, 3, 2), -s.clone()
    t_orth[0, :, 1] = 1.0
    total, n = twin_alignment([s, s], [t_orth, t_opp], [(0, 0, 3)])
    assert n == 3 and float(total) == pytest.approx(3 * (1.0 + 2.0) / 2)
    with pytest.raises(ValueError, match="same, non-empty"):
        twin_alignment([s], [], [(0, 0, 1)])


def test_lm_task_adds_the_twin_loss_and_an_identical_twin_costs_nothing(
    tiny_model_dir: Path, corpus: Path
) -> None:
    from aqaa.lm.model import load_checkpoint
    from aqaa.train.objectives import LMTask, TargetLogprobs

    model, vocab = load_checkpoint(tiny_model_dir / "lm")
    items = load_items(corpus, "train")
    src = SFTSource(items, vocab, FormatConfig(), 1024, text_twins=True)
    for it in src.items:
        it.category = "knowledge"
    exs = [e for e in (src.draw(random.Random(i)) for i in range(30)) if e and e.twin][:3]
    assert len(exs) == 3
    task = LMTask(src, 0, twin_weight=1.0)
    wrapped = TargetLogprobs(model)
    loss, stats = task.loss(wrapped, exs, 100.0)
    assert stats["twin_n"] == sum(twin_positions(e, e.twin)[2] for e in exs)
    assert 0.0 < stats["twin_nll"] / stats["twin_n"] < 2.0
    base, _ = LMTask(src, 0).loss(wrapped, exs, 100.0)
    assert float(loss.detach()) == pytest.approx(
        float(base.detach()) + stats["twin_nll"] / 100.0, rel=1e-4
    )
    # a twin that is the example itself is already aligned
    for e in exs:
        e.twin = type(e)(list(e.ids), list(e.kinds))
    _, same = task.loss(wrapped, exs, 100.0)
    assert same["twin_nll"] == pytest.approx(0.0, abs=1e-3)


def test_sft_cli_trains_with_twins_and_logs_the_loss(corpus: Path, tmp_path: Path) -> None:
    from aqaa.train.loop import read_log
    from aqaa.train.sft import SFTConfig
    from aqaa.train.stage import load_config, stage_dir

    fast = ["--max-steps", "3", "--batch-size", "4", "--micro-batch", "2", "--threads", "1",
            "--no-bf16", "--no-progress", "--log-every", "1"]  # fmt: skip
    run = [str(a) for a in ("--data", corpus, "--out", tmp_path / "run")]
    r = CliRunner().invoke(app, ["train", "pretrain", *run, "--preset", "tiny", "--text-vocab",
                                 "300", "--max-len", "512", *fast])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["train", "sft", *run, "--twin-weight", "-1", *fast])
    assert r.exit_code == 2 and "--twin-weight must be ≥ 0" in r.output
    r = CliRunner().invoke(app, ["train", "sft", *run, "--twin-weight", "0.5", *fast])
    assert r.exit_code == 0, r.output
    assert load_config(SFTConfig, tmp_path / "run" / "sft1").twin_weight == 0.5
    rows = [x for x in read_log(stage_dir(tmp_path / "run", "sft1")) if x["kind"] == "train"]
    assert rows and all(math.isfinite(x["twin_loss"]) and x["twin_loss"] > 0 for x in rows)
