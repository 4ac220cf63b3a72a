"""The shared training loop: learning, checkpoints, resume after a kill, multi-process DDP."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aqaa.lm.data import write_synthetic_corpus
from aqaa.lm.model import build_model, load_checkpoint
from aqaa.train.loop import LoopConfig, _save_best, best_checkpoint, latest_checkpoint, read_log
from aqaa.train.pretrain import PretrainConfig, run_pretrain
from aqaa.train.stage import load_config, stage_dir

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_corpus(tmp_path_factory.mktemp("corpus"), n_train=24, n_valid=6)


def tiny_cfg(corpus: Path, out: Path, **loop: object) -> PretrainConfig:
    base = dict(
        max_steps=6, batch_size=4, micro_batch=2, lr=3e-3, warmup_steps=2, log_every=1,
        eval_every=0, ckpt_every=3, threads=1, seed=1, bf16=False,
    )  # fmt: skip
    base.update(loop)
    return PretrainConfig(
        data=str(corpus),
        out=str(out),
        preset="tiny",
        text_vocab_size=300,
        max_len=512,
        eval_examples=4,
        loop=LoopConfig(**base),  # type: ignore[arg-type]
    )


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(ckpt / "model.safetensors"))


def test_audio_loss_splits_by_codebook(corpus: Path) -> None:
    from aqaa.lm.data import Mixture, PretrainSource, load_items
    from aqaa.lm.format import KIND_AUDIO, FormatConfig
    from aqaa.lm.vocab import train_vocab
    from aqaa.train.objectives import LMTask, TargetLogprobs

    items = load_items(corpus, "train")
    vocab = train_vocab([t.human_text for it in items for t in it.turns] * 2, 300)
    mix = Mixture(asr=0, continuation=1, tts=1, interleaved=1, text_qa=0, generated_qa=0)
    task = LMTask(PretrainSource(items, vocab, FormatConfig(), 2048, mix), seed=0)
    batch = task.batch(0, 4)
    _, st = task.loss(TargetLogprobs(build_model("tiny", vocab.size, seed=0)), batch, 1.0)
    # by hand: audio targets are codes (linguistic below 1024) or the clip markers
    codes = [t - vocab.audio_base for ex in batch
             for t, k in zip(ex.ids[1:], ex.kinds[1:], strict=True) if k == KIND_AUDIO]  # fmt: skip
    assert st["ling_n"] == sum(0 <= c < 1024 for c in codes) > 0
    assert st["sem_n"] == sum(c >= 1024 for c in codes) > 0
    assert st["audio_n"] == len(codes) > st["ling_n"] + st["sem_n"]  # the markers
    assert 0 < st["ling_nll"] < st["audio_nll"] and 0 < st["sem_nll"] < st["audio_nll"]


def test_pretrain_learns_and_writes_a_standard_checkpoint(corpus: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(corpus, tmp_path, max_steps=10, eval_every=5, ckpt_every=5, lr=1e-2)
    res = run_pretrain(cfg, progress=False)
    sdir = stage_dir(tmp_path, "pretrain")
    rows = read_log(sdir)
    train = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 11))
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [5, 10]
    # it learns the text (the synthetic audio codes are random, so only text is learnable):
    # held-out text loss falls from ~ln(vocab) ≈ 8.6 at initialisation
    assert evals[1]["text_loss"] < evals[0]["text_loss"] - 0.3 < math.log(5400) - 0.8
    assert {"text_loss", "audio_loss", "tokens_per_s", "lr"} <= set(train[-1])
    assert all("ling_loss" in r and "sem_loss" in r for r in train if "audio_loss" in r)
    assert (sdir / "loss.png").stat().st_size > 1000
    # a standard HF checkpoint with its tokenizer; the stage config round-trips
    model, vocab = load_checkpoint(res.final)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf = AutoModelForCausalLM.from_pretrained(str(res.final))
    assert hf.config.vocab_size == vocab.size == len(AutoTokenizer.from_pretrained(str(res.final)))
    ids = torch.tensor([[1, 2, 3, vocab.audio_base]])
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, model(ids).logits)
    assert load_config(PretrainConfig, sdir) == cfg
    assert load_config(PretrainConfig, res.final) == cfg
    # two checkpoints were written, the pointer names the last
    assert latest_checkpoint(sdir).name == "step_00000010"
    # best/ holds the weights of the lowest held-out loss (the total: the random audio codes
    # can make it rise while the text loss falls), equal to that step's checkpoint
    path, loss, step = best_checkpoint(sdir)
    low = min(evals, key=lambda r: r["loss"])
    assert (step, loss) == (low["step"], low["loss"])
    best, _ = load_checkpoint(path)
    same, _ = load_checkpoint(sdir / "ckpt" / f"step_{step:08d}")
    for (k, a), b in zip(same.state_dict().items(), best.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)


def test_best_weights_survive_a_kill_while_being_replaced(tmp_path: Path) -> None:
    from aqaa.lm.model import build_model
    from aqaa.lm.vocab import train_vocab

    vocab = train_vocab(["what is the capital of peru", "lima is"] * 20, 300)
    model = build_model("tiny", vocab.size, seed=0)
    assert best_checkpoint(tmp_path) is None
    _save_best(tmp_path, 200, 2.5, model, vocab, {})
    assert best_checkpoint(tmp_path)[1:] == (2.5, 200)
    _save_best(tmp_path, 400, 2.25, model, vocab, {})
    assert best_checkpoint(tmp_path)[1:] == (2.25, 400)
    assert [p.name for p in tmp_path.iterdir()] == ["best"]
    # a kill between moving best/ aside and renaming the new one in: the old one still counts
    (tmp_path / "best").rename(tmp_path / ".old_best_123")
    path, loss, step = best_checkpoint(tmp_path)
    assert (path.name, loss, step) == (".old_best_123", 2.25, 400)


def test_resume_after_kill_matches_uninterrupted_run(corpus: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    kw = dict(max_steps=4, ckpt_every=2, bf16=True)
    full = run_pretrain(tiny_cfg(corpus, a, **kw), progress=False)
    # "kill" run b after step 3: its last checkpoint is step 2, step 3 is lost
    killed = run_pretrain(tiny_cfg(corpus, b, **kw), progress=False, stop_after=3)
    assert killed.final is None
    sb = stage_dir(b, "pretrain")
    assert latest_checkpoint(sb).name == "step_00000002"
    assert max(r["step"] for r in read_log(sb)) == 3
    with pytest.raises(ValueError, match="--resume"):
        run_pretrain(tiny_cfg(corpus, b, **kw), progress=False)  # no silent restart
    resumed = run_pretrain(tiny_cfg(corpus, b, **kw), resume=True, progress=False)
    wa, wb = weights(full.final), weights(resumed.final)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    la = [(r["step"], r["objective"]) for r in read_log(stage_dir(a, "pretrain"))]
    lb = [(r["step"], r["objective"]) for r in read_log(sb)]
    assert la == lb  # the log has no duplicate or lost steps either


def test_audio_embedding_rows_get_their_own_learning_rate(corpus: Path, tmp_path: Path) -> None:
    outs = {}
    for mult in (1.0, 3.0):
        cfg = tiny_cfg(corpus, tmp_path / str(mult), max_steps=1, warmup_steps=1,
                       audio_embedding_lr_mult=mult, weight_decay=0.0)  # fmt: skip
        outs[mult] = run_pretrain(cfg, progress=False).final
    _, vocab = load_checkpoint(outs[1.0])
    e0 = build_model("tiny", vocab.size, seed=1).get_input_embeddings().weight.detach()
    e1 = weights(outs[1.0])["model.embed_tokens.weight"]
    e3 = weights(outs[3.0])["model.embed_tokens.weight"]
    a = slice(vocab.audio_base, vocab.size)
    t = slice(0, vocab.audio_base)
    torch.testing.assert_close(e3[t], e1[t], rtol=0, atol=0)
    d1, d3 = e1[a] - e0[a], e3[a] - e0[a]
    assert d1.abs().max() > 0
    torch.testing.assert_close(d3, 3 * d1, rtol=1e-4, atol=1e-7)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_torchrun_matches_one_process(corpus: Path, tmp_path: Path) -> None:
    # one process, in this process, configured as the CLI below configures it
    # with every auxiliary loss on: each process must log the same keys even when its share
    # of a step holds no ASR or spoken example
    cfg = PretrainConfig(
        data=str(corpus), out=str(tmp_path / "one"), preset="tiny", text_vocab_size=300, max_len=512,
        ctc_weight=0.5, guide_weight=1.0, speech_guide_weight=1.0,
    )  # fmt: skip
    for k, v in dict(max_steps=3, batch_size=4, micro_batch=1, lr=3e-3, bf16=False, threads=1,
                     seed=1, log_every=1).items():  # fmt: skip
        setattr(cfg.loop, k, v)
    run_pretrain(cfg, progress=False)
    # two processes under torchrun (gloo), through the CLI, same global batch
    args = [
        "train", "pretrain", "--data", str(corpus), "--out", str(tmp_path / "two"),
        "--preset", "tiny", "--max-steps", "3", "--batch-size", "4", "--micro-batch", "1",
        "--lr", "3e-3", "--no-bf16", "--threads", "1", "--text-vocab", "300", "--max-len", "512",
        "--seed", "1", "--log-every", "1", "--no-progress", "--ctc-weight", "0.5",
        "--guide-weight", "1", "--speech-guide-weight", "1",
    ]  # fmt: skip
    # the same tokenizer, so both runs see identical ids
    shutil.copytree(
        stage_dir(tmp_path / "one", "pretrain") / "tokenizer",
        stage_dir(tmp_path / "two", "pretrain") / "tokenizer",
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    two = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
            "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
            "-m", "aqaa.cli", *args,
        ],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert load_config(PretrainConfig, stage_dir(tmp_path / "two", "pretrain")).loop == cfg.loop
    w1 = weights(stage_dir(tmp_path / "one", "pretrain") / "final")
    w2 = weights(stage_dir(tmp_path / "two", "pretrain") / "final")
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=2e-5, msg=k)
    l1 = [r for r in read_log(stage_dir(tmp_path / "one", "pretrain")) if r["kind"] == "train"]
    l2 = [r for r in read_log(stage_dir(tmp_path / "two", "pretrain")) if r["kind"] == "train"]
    assert [r["step"] for r in l1] == [r["step"] for r in l2] == [1, 2, 3]
    for r1, r2 in zip(l1, l2, strict=True):
        assert abs(r1["objective"] - r2["objective"]) < 1e-4
        assert set(r1) == set(r2)
        for k in ("ctc_loss", "guide_loss", "speak_loss"):
            if k in r1:
                assert r1[k] == pytest.approx(r2[k], rel=1e-4), k
    assert any("speak_loss" in r for r in l1) and any("ctc_loss" in r for r in l1)
    # the steps did something: the weights left their initialisation
    init = build_model(
        "tiny", load_checkpoint(stage_dir(tmp_path / "one", "pretrain") / "final")[1].size, seed=1
    )
    moved = max((w1[k] - v).abs().max().item() for k, v in init.state_dict().items() if k in w1)
    assert moved > 1e-5
