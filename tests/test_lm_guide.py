"""Guided attention: spoken fractions, recorded weights equal eager attention, the loss against a
hand computation, unchanged outputs, and a pretraining run that uses it."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

from aqaa.lm.data import (
    Mixture,
    PretrainSource,
    asr_example,
    load_items,
    write_synthetic_corpus,
)
from aqaa.lm.format import KIND_TEXT, FormatConfig
from aqaa.lm.guide import (
    default_layers,
    guide_loss,
    head_alignment,
    record_attention,
    token_fractions,
)
from aqaa.lm.model import build_model
from aqaa.lm.vocab import train_vocab
from aqaa.train.loop import LoopConfig, read_log
from aqaa.train.pretrain import PretrainConfig, run_pretrain
from aqaa.train.stage import stage_dir

ASR_ONLY = Mixture(
    asr=1.0, continuation=0.0, tts=0.0, interleaved=0.0, text_qa=0.0, generated_qa=0.0
)


def test_token_fractions_are_character_centres() -> None:
    assert token_fractions(["ab", "cd"]) == [0.25, 0.75]
    assert token_fractions(["a", "bcd", ""]) == [0.125, 0.625, 1.0]
    assert token_fractions(["", ""]) == [1.0, 1.0]
    assert default_layers(8) == [4, 5, 6, 7] and default_layers(1) == [0]


def test_recorded_weights_are_eager_attention_and_outputs_unchanged() -> None:
    model = build_model("tiny", 400, seed=0).eval()
    ids = torch.randint(0, 400, (2, 9))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with record_attention(model, [1], heads=2) as rec:
            guided = model(input_ids=ids).logits
        model.config._attn_implementation = "eager"
        eager = model(input_ids=ids, output_attentions=True)
        model.config._attn_implementation = "sdpa"
    torch.testing.assert_close(guided, plain)
    assert set(rec.weights) == {1} and rec.weights[1].shape == (2, 2, 9, 9)
    torch.testing.assert_close(rec.weights[1], eager.attentions[1][:, :2].float())
    # causal rows sum to one, and nothing looks ahead
    torch.testing.assert_close(rec.weights[1].sum(-1), torch.ones(2, 2, 9))
    assert float(rec.weights[1].triu(1).abs().max()) == 0.0
    # the implementation is restored after the block
    assert model.config._attn_implementation == "sdpa"


def test_record_attention_rejects_bad_layers_and_heads() -> None:
    model = build_model("tiny", 400, seed=0)
    with (
        pytest.raises(ValueError, match=r"heads must be in 1\.\.4"),
        record_attention(model, [0], 5),
    ):
        pass
    with pytest.raises(ValueError, match=r"layers \[2\]"), record_attention(model, [2], 1):
        pass


def test_guide_loss_matches_hand_computation() -> None:
    torch.manual_seed(0)
    w = torch.rand(2, 3, 10, 10).softmax(-1)  # (B, H, L, L), one layer
    spans = [(2, 6), None]
    total, n = guide_loss([w], spans, [[6, 7], [8]], [[0.1, 0.9], [0.5]], width=0.2)
    pos = [(t + 0.5) / 4 for t in range(4)]
    expect = 0.0
    for q, f in ((6, 0.1), (7, 0.9)):
        for h in range(3):
            on = sum(float(w[0, h, q, 2 + t]) * math.exp(-((p - f) ** 2) / 0.08)
                     for t, p in enumerate(pos))  # fmt: skip
            expect += (1 - on) / 3
    assert n == 2
    assert float(total) == pytest.approx(expect, rel=1e-5)
    # attention exactly on the spoken spot costs less than attention on the prompt
    on_spot = torch.zeros(1, 1, 10, 10)
    on_spot[0, 0, 6, 2] = 1.0
    elsewhere = torch.zeros(1, 1, 10, 10)
    elsewhere[0, 0, 6, 0] = 1.0
    good, _ = guide_loss([on_spot], [(2, 6)], [[6]], [[0.1]], width=0.1)
    bad, _ = guide_loss([elsewhere], [(2, 6)], [[6]], [[0.1]], width=0.1)
    assert float(good) < 0.1 and float(bad) == 1.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_corpus(tmp_path_factory.mktemp("corpus"), n_train=24, n_valid=6)


def test_asr_examples_carry_guide_queries(corpus: Path) -> None:
    items = load_items(corpus, "train")
    vocab = train_vocab([t.human_text for it in items for t in it.turns] * 2, 300)
    ex = PretrainSource(items, vocab, FormatConfig(), 512, ASR_ONLY).draw(random.Random(3))
    assert ex is not None and ex.guide_queries
    # each query predicts a transcript token, at rising fractions of the clip
    assert all(ex.kinds[q + 1] == KIND_TEXT for q in ex.guide_queries)
    assert ex.guide_queries[0] > ex.ctc_span[1]
    assert ex.guide_fractions == sorted(ex.guide_fractions)
    assert 0 < ex.guide_fractions[0] < 0.5 and ex.guide_fractions[-1] == 1.0


def test_pretraining_with_guided_attention_logs_it_and_lowers_it(
    corpus: Path, tmp_path: Path
) -> None:
    loop = LoopConfig(max_steps=12, batch_size=4, micro_batch=2, lr=1e-2, warmup_steps=1,
                      log_every=1, eval_every=12, ckpt_every=12, threads=1, seed=1, bf16=False)  # fmt: skip
    cfg = PretrainConfig(data=str(corpus), out=str(tmp_path), preset="tiny", text_vocab_size=300,
                         max_len=512, eval_examples=4, guide_weight=5.0, mixture=ASR_ONLY,
                         loop=loop)  # fmt: skip
    run_pretrain(cfg, progress=False)
    rows = read_log(stage_dir(tmp_path, "pretrain"))
    guide = [r["guide_loss"] for r in rows if r["kind"] == "train"]
    assert len(guide) == 12 and all(0 < g <= 1 for g in guide)
    assert sum(guide[-3:]) < sum(guide[:3])
    assert any("guide_loss" in r for r in rows if r["kind"] == "eval")


def test_head_alignment_is_a_mass_per_layer_and_head(corpus: Path) -> None:
    items = load_items(corpus, "train")
    vocab = train_vocab([t.human_text for it in items for t in it.turns] * 2, 300)
    model = build_model("tiny", vocab.size, seed=0).eval()
    exs = [asr_example(vocab, FormatConfig(), it.turns[0].human_text, it.turns[0].human_codes)
           for it in items[:3]]  # fmt: skip
    al = head_alignment(model, exs)
    assert al.shape == (2, 4) and float(al.min()) >= 0 and float(al.max()) <= 1
    # one example alone gives its own score; the mean over three lies within the per-example range
    each = torch.stack([head_alignment(model, [ex]) for ex in exs])
    assert bool((al >= each.min(0).values - 1e-6).all() and (al <= each.max(0).values + 1e-6).all())
    with pytest.raises(ValueError, match="no ASR example"):
        head_alignment(model, [])
