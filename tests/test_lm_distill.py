"""Speech distillation (`aqaa.train.distill`): the audio targets mix the truth with a teacher."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from aqaa.lm.data import Mixture, PretrainSource, load_items, write_synthetic_corpus
from aqaa.lm.format import KIND_AUDIO, KIND_CONTEXT, KIND_TEXT, FormatConfig
from aqaa.lm.model import build_model, save_checkpoint
from aqaa.lm.vocab import train_vocab
from aqaa.train.distill import SpeechTeacher
from aqaa.train.loop import LoopConfig, read_log
from aqaa.train.objectives import LMTask, TargetLogprobs, pad_batch
from aqaa.train.pretrain import PretrainConfig, run_pretrain
from aqaa.train.stage import stage_dir

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_corpus(tmp_path_factory.mktemp("corpus"), n_train=12, n_valid=4)


@pytest.fixture(scope="module")
def setup(corpus: Path):
    items = load_items(corpus, "train")
    vocab = train_vocab([t.human_text for it in items for t in it.turns] * 2, 300)
    # speaking tasks (audio targets) and ASR (text targets) in one batch
    mix = Mixture(asr=1, continuation=0, tts=1, interleaved=1, text_qa=0, generated_qa=0)
    return PretrainSource(items, vocab, FormatConfig(), 2048, mix), vocab


def _task(setup, teacher=None, audio_weight: float = 1.0) -> LMTask:
    src, _ = setup
    return LMTask(src, seed=0, text_weight=1.0, audio_weight=audio_weight, teacher=teacher)


def test_loss_equals_a_hand_computation(setup) -> None:
    _, vocab = setup
    student = build_model("tiny", vocab.size, seed=0)
    teacher = SpeechTeacher(build_model("tiny", vocab.size, seed=1), vocab, alpha=0.3)
    task = _task(setup, teacher)
    batch = task.batch(0, 6)
    loss, st = task.loss(TargetLogprobs(student), batch, 100.0)

    ids, kinds = pad_batch(batch)
    with torch.no_grad():
        ls = torch.log_softmax(student(ids).logits[:, :-1].float(), -1)
        lt = torch.log_softmax(teacher.model(ids).logits[:, :-1].float(), -1)
    total = kl = 0.0
    n_audio = n_text = 0
    for b in range(ids.shape[0]):
        for i in range(ids.shape[1] - 1):
            k, truth = int(kinds[b, i + 1]), int(ids[b, i + 1])
            if k == KIND_TEXT:
                total += -float(ls[b, i, truth])
                n_text += 1
            elif k == KIND_AUDIO:
                soft = -float((lt[b, i].exp() * ls[b, i]).sum())
                total += 0.7 * -float(ls[b, i, truth]) + 0.3 * soft
                kl += float((lt[b, i].exp() * (lt[b, i] - ls[b, i])).sum())
                n_audio += 1
            else:
                assert k == KIND_CONTEXT
    assert n_audio > 0 and n_text > 0
    assert float(loss.detach()) == pytest.approx(total / 100.0, rel=1e-4)
    assert st["kl_n"] == n_audio and st["kl_nll"] == pytest.approx(kl, rel=1e-3)
    # the logged audio loss stays the plain loss of the true codes
    truth_nll = [-float(ls[b, i, ids[b, i + 1]]) for b in range(ids.shape[0])
                 for i in range(ids.shape[1] - 1) if kinds[b, i + 1] == KIND_AUDIO]  # fmt: skip
    assert st["audio_nll"] == pytest.approx(sum(truth_nll), rel=1e-4)


def test_a_teacher_equal_to_the_student_leaves_only_the_text_gradient(setup) -> None:
    """At α = 1 with the student's own copy as teacher, the audio positions' gradient is
    p_student − p_teacher = 0: the step is the text-only step."""
    _, vocab = setup
    student = build_model("tiny", vocab.size, seed=0)
    batch = _task(setup).batch(3, 6)

    def grads(task: LMTask) -> list[torch.Tensor]:
        student.zero_grad()
        loss, _ = task.loss(TargetLogprobs(student), batch, 50.0)
        loss.backward()
        return [p.grad.clone() for p in student.parameters()]

    teacher = SpeechTeacher(copy.deepcopy(student), vocab, alpha=1.0)
    distilled = grads(_task(setup, teacher))
    text_only = grads(_task(setup, audio_weight=0.0))
    for a, b in zip(distilled, text_only, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
    # and the teacher is frozen
    assert not any(p.requires_grad for p in teacher.model.parameters())


def test_teacher_checks(setup, tmp_path: Path) -> None:
    _, vocab = setup
    with pytest.raises(ValueError, match="needs a teacher"):
        SpeechTeacher.for_run(0.5, None, vocab)
    assert SpeechTeacher.for_run(0.0, None, vocab) is None
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        SpeechTeacher.for_run(1.5, tmp_path / "nowhere", vocab)
    # a teacher with another vocabulary cannot teach
    other = train_vocab(["a different text altogether", "and more words here"] * 4, 280)
    save_checkpoint(build_model("tiny", other.size, seed=0), other, tmp_path / "other")
    with pytest.raises(ValueError, match="another vocabulary"):
        SpeechTeacher.load(tmp_path / "other", vocab, 1.0)


def test_pretrain_with_speech_distill_logs_the_drift(corpus: Path, tmp_path: Path) -> None:
    loop = dict(max_steps=4, batch_size=4, micro_batch=2, lr=3e-3, warmup_steps=1, log_every=1,
                eval_every=4, ckpt_every=4, threads=1, seed=1, bf16=False)  # fmt: skip
    base = PretrainConfig(data=str(corpus), out=str(tmp_path / "a"), preset="tiny",
                          text_vocab_size=300, max_len=512, eval_examples=4,
                          loop=LoopConfig(**loop))  # type: ignore[arg-type]  # fmt: skip
    init = run_pretrain(base, progress=False).final
    cfg = copy.deepcopy(base)
    cfg.out, cfg.init, cfg.speech_distill = str(tmp_path / "b"), str(init), 1.0
    run_pretrain(cfg, progress=False)
    rows = read_log(stage_dir(tmp_path / "b", "pretrain"))
    train = [r for r in rows if r["kind"] == "train" and "audio_loss" in r]
    assert train and all("kl_loss" in r for r in train)
    # the first step starts at the teacher: no drift yet; later steps move a little
    assert train[0]["kl_loss"] == pytest.approx(0.0, abs=1e-5)
    assert any(r["kl_loss"] > 0 for r in train[1:])
    assert any(r["kind"] == "eval" and "kl_loss" in r for r in rows)


def test_cli_error_without_a_teacher(corpus: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aqaa.cli import app

    args = ["train", "pretrain", "--data", str(corpus), "--out", str(tmp_path / "r"), "--preset",
            "tiny", "--text-vocab", "300", "--max-steps", "1", "--no-progress",
            "--speech-distill", "0.5"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    assert "needs a teacher" in " ".join(res.output.split())
