"""`aqaa train …`: the whole recipe on a tiny model, and one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from aqaa.cli import app
from aqaa.lm.data import write_synthetic_corpus
from aqaa.lm.model import load_checkpoint
from aqaa.train.dpo import DPOConfig
from aqaa.train.loop import read_log
from aqaa.train.sft import SFT2_CATEGORIES, SFTConfig
from aqaa.train.stage import load_config

pytestmark = pytest.mark.usefixtures("one_thread")


runner = CliRunner()
FAST = ["--max-steps", "2", "--batch-size", "2", "--micro-batch", "2", "--threads", "1",
        "--no-bf16", "--no-progress", "--log-every", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_corpus(tmp_path_factory.mktemp("corpus"), n_train=20, n_valid=4)


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_full_recipe_tiny(corpus: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = invoke("train", "pretrain", "--data", corpus, "--out", run, "--preset", "tiny",
               "--text-vocab", "300", "--max-len", "512", *FAST)  # fmt: skip
    assert r.exit_code == 0, r.output
    for stage in ("1", "2"):
        r = invoke("train", "sft", "--stage", stage, "--data", corpus, "--out", run, *FAST)
        assert r.exit_code == 0, r.output
    r = invoke("train", "dpo", "--data", corpus, "--out", run, "--beta", "0.3", *FAST)
    assert r.exit_code == 0, r.output
    r = invoke("train", "merge", "--out", run)
    assert r.exit_code == 0, r.output
    for stage in ("pretrain", "sft1", "sft2", "dpo", "merged"):
        load_checkpoint(run / stage / ("final" if stage != "merged" else ""))
    # each stage starts from its predecessor and records it in its config
    assert load_config(SFTConfig, run / "sft1").init == str(run / "pretrain" / "final")
    sft2 = load_config(SFTConfig, run / "sft2")
    assert sft2.init == str(run / "sft1" / "final") and sft2.categories == SFT2_CATEGORIES
    dpo = load_config(DPOConfig, run / "dpo")
    assert dpo.reference == dpo.init == str(run / "sft1" / "final") and dpo.beta == 0.3
    assert {"dpo_loss", "reward_acc"} <= set(read_log(run / "dpo")[0])
    # merged = (5·sft1 + 5·sft2 + 1·dpo) / 11
    from safetensors.torch import load_file

    w = {
        s: load_file(str(run / s / "final" / "model.safetensors")) for s in ("sft1", "sft2", "dpo")
    }
    m = load_file(str(run / "merged" / "model.safetensors"))
    k = "model.layers.0.mlp.up_proj.weight"
    want = (5 * w["sft1"][k].double() + 5 * w["sft2"][k].double() + w["dpo"][k].double()) / 11
    assert torch.equal(m[k], want.float())
    # resuming a finished stage with more steps continues it
    r = invoke("train", "sft", "--stage", "1", "--data", corpus, "--out", run, "--resume",
               "--max-steps", "3", "--no-progress", "--threads", "1")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert [x["step"] for x in read_log(run / "sft1") if x["kind"] == "train"] == [1, 2, 3]


def test_sft_replays_asr_with_its_auxiliary_losses(corpus: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = invoke("train", "pretrain", "--data", corpus, "--out", run, "--preset", "tiny",
               "--text-vocab", "300", "--max-len", "512", *FAST)  # fmt: skip
    assert r.exit_code == 0, r.output
    fast = [a if a != "2" else "4" for a in FAST]  # 4 steps of 4: ASR draws all but surely occur
    r = invoke("train", "sft", "--stage", "1", "--data", corpus, "--out", run, "--asr-replay",
               "0.5", "--ctc-weight", "1", "--guide-weight", "1", "--speech-guide-weight", "2",
               *fast)  # fmt: skip
    assert r.exit_code == 0, r.output
    cfg = load_config(SFTConfig, run / "sft1")
    assert (cfg.asr_replay, cfg.ctc_weight, cfg.guide_weight) == (0.5, 1.0, 1.0)
    assert cfg.speech_guide_weight == 2.0
    rows = [x for x in read_log(run / "sft1") if x["kind"] == "train"]
    assert any("guide_loss" in x and "ctc_loss" in x for x in rows)
    assert any(0 < x.get("speak_loss", 0) <= 1 for x in rows)  # the spoken answers' guide


def test_sft_source_asr_replay_draws_asr_examples(corpus: Path) -> None:
    import random

    from aqaa.lm.data import SFTSource, load_items
    from aqaa.lm.format import FormatConfig
    from aqaa.lm.vocab import train_vocab

    items = load_items(corpus, "train")
    vocab = train_vocab([t.human_text for it in items for t in it.turns] * 2, 300)
    src = SFTSource(items, vocab, FormatConfig(), 1024, asr_replay=0.5)
    rng = random.Random(0)
    draws = [src.draw(rng) for _ in range(40)]
    asr = [ex for ex in draws if ex.task == "asr"]
    assert 10 <= len(asr) <= 30
    assert all(ex.ctc_span and ex.guide_queries for ex in asr)
    assert all(ex.ctc_span is None for ex in draws if ex.task != "asr")
    with pytest.raises(ValueError, match="asr_replay"):
        SFTSource(items, vocab, FormatConfig(), 1024, asr_replay=1.0)
    # text-only generated QA replay: questions as text, from the training templates
    src = SFTSource(items, vocab, FormatConfig(), 1024, asr_replay=0.3, qa_replay=0.3)
    draws = [src.draw(rng) for _ in range(60)]
    qa = [ex for ex in draws if ex.task == "generated_qa"]
    assert 8 <= len(qa) <= 32 and 8 <= sum(ex.task == "asr" for ex in draws) <= 32
    assert all(not any(vocab.is_audio(i) for i in ex.ids) for ex in qa)
    with pytest.raises(ValueError, match="sum below 1"):
        SFTSource(items, vocab, FormatConfig(), 1024, asr_replay=0.5, qa_replay=0.5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "sft", "--stage", "1"], "run `aqaa train pretrain` first"),
        (["train", "sft", "--stage", "3"], "stage must be 1 or 2"),
        (["train", "sft", "--asr-replay", "1"], "--asr-replay must be in [0, 1)"),
        (["train", "dpo"], "run `aqaa train sft1` first"),
        (["train", "pretrain", "--preset", "paper"], "--preset must be tiny or base"),
        (["train", "pretrain", "--resume"], "nothing to resume"),
        (["train", "merge", "--weights", "5,x"], "--weights"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    corpus: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    extra = [] if args[1] == "merge" else ["--data", str(corpus)]
    r = invoke(*args, *extra, "--out", tmp_path / "run")
    assert r.exit_code == 2, r.output
    assert message in r.output.replace("\n", " ")
    assert "Traceback" not in r.output


def test_missing_shards_and_existing_run(corpus: Path, tmp_path: Path) -> None:
    r = invoke("train", "pretrain", "--data", tmp_path / "nope", "--out", tmp_path / "r",
               "--preset", "tiny", *FAST)  # fmt: skip
    assert r.exit_code == 2 and "aqaa data tokenize" in r.output.replace("\n", " ")
    args = ["train", "pretrain", "--data", corpus, "--out", tmp_path / "r2", "--preset", "tiny",
            "--text-vocab", "300", "--max-len", "512", *FAST]  # fmt: skip
    assert invoke(*args).exit_code == 0
    r = invoke(*args)
    assert r.exit_code == 2 and "--resume" in r.output
