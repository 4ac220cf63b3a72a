"""Spelling CTC: targets, the loss against a hand computation, and a pretraining run that uses it."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from aqaa.lm.data import Mixture, PretrainSource, load_items, write_synthetic_corpus
from aqaa.lm.format import FormatConfig
from aqaa.lm.spelling import (
    SPELL_CHARS,
    spell_columns,
    spell_greedy,
    spell_targets,
    spelling_ctc,
)
from aqaa.lm.vocab import PAD_ID, train_vocab
from aqaa.train.loop import LoopConfig, read_log
from aqaa.train.pretrain import PretrainConfig, run_pretrain
from aqaa.train.stage import stage_dir

ASR_ONLY = Mixture(
    asr=1.0, continuation=0.0, tts=0.0, interleaved=0.0, text_qa=0.0, generated_qa=0.0
)


def test_spell_targets_drop_tags_case_and_punctuation() -> None:
    assert spell_targets("(happy) Hi, Bob!") == [8, 9, 27, 2, 15, 2]
    assert spell_targets("  It's   ok. ") == [9, 20, 28, 19, 27, 15, 11]
    assert spell_targets("Hi-there") == [8, 9, 27, 20, 8, 5, 18, 5]
    assert spell_targets("42 ?!") == []


def test_spell_columns_are_single_character_tokens() -> None:
    vocab = train_vocab(["hello world, it's a test"] * 4, 300)
    cols = spell_columns(vocab)
    assert cols[0] == PAD_ID and len(cols) == len(SPELL_CHARS) + 1 == len(set(cols))
    assert [vocab.decode([c]) for c in cols[1:]] == list(SPELL_CHARS)


def test_spelling_ctc_matches_hand_computation_and_skips_unspanned() -> None:
    torch.manual_seed(0)
    hidden, head = torch.randn(3, 12, 8), torch.randn(40, 8)
    cols = torch.tensor([0, 5, 6, 7])
    spans = [(2, 9), None, (0, 4)]
    targets = [[1, 2, 2, 3], [1], [3]]
    total, n = spelling_ctc(hidden, head, cols, spans, targets)
    expect = 0.0
    for b in (0, 2):
        a, e = spans[b]
        logp = (hidden[b, a:e] @ head[cols].T).log_softmax(-1)
        expect += F.ctc_loss(logp[:, None], torch.tensor([targets[b]]), [e - a],
                             [len(targets[b])], reduction="sum")  # fmt: skip
    torch.testing.assert_close(total, expect)
    assert n == 5
    # a hidden state that points at the right class at every step spells with ~zero loss
    good = torch.zeros(1, 4, 4)
    for t, c in enumerate([1, 0, 2, 3]):
        good[0, t, c] = 30.0
    loss, _ = spelling_ctc(good, torch.eye(4), torch.arange(4), [(0, 4)], [[1, 2, 3]])
    assert float(loss) < 1e-3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_corpus(tmp_path_factory.mktemp("corpus"), n_train=24, n_valid=6)


def test_asr_examples_carry_the_question_span_and_targets(corpus: Path) -> None:
    items = load_items(corpus, "train")
    vocab = train_vocab([t.human_text for it in items for t in it.turns] * 2, 300)
    src = PretrainSource(items, vocab, FormatConfig(), 512, ASR_ONLY)
    ex = src.draw(random.Random(3))
    assert ex is not None and ex.ctc_span is not None and ex.ctc_targets
    a, e = ex.ctc_span
    assert all(vocab.is_audio(t) for t in ex.ids[a:e])
    assert not vocab.is_audio(ex.ids[a - 1]) and not vocab.is_audio(ex.ids[e])


def test_pretraining_with_spelling_ctc_logs_it_and_adds_no_weights(
    corpus: Path, tmp_path: Path
) -> None:
    loop = LoopConfig(max_steps=4, batch_size=4, micro_batch=2, lr=3e-3, warmup_steps=1,
                      log_every=1, eval_every=4, ckpt_every=4, threads=1, seed=1, bf16=False)  # fmt: skip
    cfg = PretrainConfig(data=str(corpus), out=str(tmp_path), preset="tiny", text_vocab_size=300,
                         max_len=512, eval_examples=4, ctc_weight=1.0, mixture=ASR_ONLY,
                         loop=loop)  # fmt: skip
    res = run_pretrain(cfg, progress=False)
    rows = read_log(stage_dir(tmp_path, "pretrain"))
    train = [r for r in rows if r["kind"] == "train"]
    assert all(math.isfinite(r["ctc_loss"]) and r["ctc_loss"] > 0 for r in train)
    # the objective carries the CTC term on top of the next-token loss
    assert train[-1]["objective"] > train[-1]["text_loss"] * 0.5
    from safetensors.torch import load_file

    keys = set(load_file(str(res.final / "model.safetensors")))
    assert not any("ctc" in k or "spell" in k for k in keys)


def test_spell_greedy_merges_repeats_and_drops_blanks() -> None:
    columns = torch.tensor([3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
                            26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37])  # fmt: skip
    head = torch.zeros(40, len(columns))
    head[columns, torch.arange(len(columns))] = 1.0  # column k scores class k
    classes = [8, 8, 0, 9, 9, 0, 0, 9, 27, 27, 2]  # h h _ i i _ _ i ␣ ␣ b
    hidden = F.one_hot(torch.tensor(classes), len(columns)).float()
    assert spell_greedy(hidden, head, columns) == "hii b"
    assert spell_greedy(hidden[:0], head, columns) == ""
