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
from aqaa.lm.format import KIND_AUDIO, KIND_TEXT, FormatConfig
from aqaa.lm.guide import (
    default_layers,
    guide_loss,
    head_alignment,
    record_attention,
    token_fractions,
    uniform_fractions,
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
    w = torch.rand(3, 3, 10, 10).softmax(-1)  # (B, H, L, L), one layer
    keys = [[2, 3, 4, 5], [], [1, 3]]  # example 1 has no guide
    centres = [uniform_fractions(4), [], [0.2, 0.7]]
    per, n = guide_loss([w], keys, centres, [[6, 7], [8], [9]], [[0.1, 0.9], [0.5], [0.6]], 0.2)
    assert uniform_fractions(4) == [0.125, 0.375, 0.625, 0.875]

    def hand(b: int, q: int, f: float) -> float:
        on = [sum(float(w[b, h, q, k]) * math.exp(-((c - f) ** 2) / 0.08)
                  for k, c in zip(keys[b], centres[b], strict=True)) for h in range(3)]  # fmt: skip
        return sum(1 - o for o in on) / 3

    assert n == [2, 0, 1] and per.shape == (3,)
    assert float(per[0]) == pytest.approx(hand(0, 6, 0.1) + hand(0, 7, 0.9), rel=1e-5)
    assert float(per[1]) == 0.0
    assert float(per[2]) == pytest.approx(hand(2, 9, 0.6), rel=1e-5)
    # attention exactly on the spoken spot costs less than attention on the prompt
    on_spot = torch.zeros(1, 1, 10, 10)
    on_spot[0, 0, 6, 2] = 1.0
    elsewhere = torch.zeros(1, 1, 10, 10)
    elsewhere[0, 0, 6, 0] = 1.0
    args = ([[2, 3, 4, 5]], [uniform_fractions(4)], [[6]], [[0.1]], 0.1)
    good, _ = guide_loss([on_spot], *args)
    bad, _ = guide_loss([elsewhere], *args)
    assert float(good[0]) < 0.1 and float(bad[0]) == 1.0


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
    # the keys are the question's audio, evenly spaced
    a, e = ex.ctc_span
    assert ex.guide_keys == list(range(a, e)) and not ex.guide_speaks
    assert ex.guide_key_fractions == uniform_fractions(e - a)


@pytest.mark.parametrize("task", ["tts", "interleaved"])
def test_speaking_examples_guide_audio_queries_to_the_text_said(corpus: Path, task: str) -> None:
    from aqaa.lm.vocab import TEXT_END_ID

    items = load_items(corpus, "train")
    texts = [t.human_text for it in items for t in it.turns]
    texts += [c.tagged for it in items for t in it.turns for c in t.answer_clips]
    vocab = train_vocab(texts * 2, 300)
    only = Mixture(**dict.fromkeys(ASR_ONLY.__dataclass_fields__, 0.0) | {task: 1.0})
    src = PretrainSource(items, vocab, FormatConfig(), 4096, only)
    tagged = 0
    for i in range(12):
        ex = src.example(seed=5, index=i)
        assert ex.guide_speaks and ex.ctc_span is None
        # every query predicts one of the clip's audio tokens, in order, at rising fractions
        assert [ex.ids[q + 1] for q in ex.guide_queries] == [
            t
            for t, k in zip(ex.ids, ex.kinds, strict=True)
            if k == KIND_AUDIO and vocab.is_audio(t)
        ]
        assert ex.guide_fractions == uniform_fractions(len(ex.guide_queries))
        # the keys are text tokens before the audio they guide, at rising character centres
        keys = ex.guide_keys
        assert keys and all(not vocab.is_audio(ex.ids[k]) for k in keys)
        assert ex.guide_key_fractions == sorted(ex.guide_key_fractions)
        assert 0 < ex.guide_key_fractions[0] < 0.5 < ex.guide_key_fractions[-1] < 1
        said = vocab.decode([ex.ids[k] for k in keys]).strip()
        if task == "interleaved":  # the response's own text, without <text_end>
            assert all(ex.kinds[k] == KIND_TEXT and ex.ids[k] != TEXT_END_ID for k in keys)
        else:  # the prompt's text, before any audio
            assert keys[-1] < ex.guide_queries[0]
        # the style tag is not said: the keys are the sentence's words
        sentence = [c for it in items for t in it.turns for c in t.answer_clips
                    if said and said in c.tagged]  # fmt: skip
        assert sentence and not said.startswith("(")
        tagged += any(c.tagged.startswith("(") for c in sentence)
    assert tagged  # the synthetic corpus has styled clips, so the tag was really dropped


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


def test_sft_answers_guide_each_clip_to_its_own_sentence(corpus: Path) -> None:
    from aqaa.lm.data import SFTSource
    from aqaa.lm.vocab import AUDIO_START_ID

    items = load_items(corpus, "train")
    texts = [t.answer_text for it in items for t in it.turns] + ["(happy) (sad)"]
    vocab = train_vocab(texts * 2, 300)
    src = SFTSource(items, vocab, FormatConfig(), 4096, text_answer_fraction=0.0,
                    multi_style_boost=50.0)  # fmt: skip
    multi = 0
    for i in range(20):
        ex = src.example(seed=2, index=i)
        assert ex.task == "sft_speech" and ex.guide_speaks
        starts = [p for p, (t, k) in enumerate(zip(ex.ids, ex.kinds, strict=True))
                  if k == KIND_AUDIO and t == AUDIO_START_ID]  # fmt: skip
        assert ex.guide_fractions == uniform_fractions(len(ex.guide_queries))
        assert ex.guide_key_fractions == sorted(ex.guide_key_fractions)
        if len(starts) < 2:
            continue
        multi += 1
        # the keys of the text said in the second clip sit in the second clip's share of the audio
        second = starts[1]
        share = sum(q + 1 < second for q in ex.guide_queries) / len(ex.guide_queries)
        first_keys = [f for f in ex.guide_key_fractions if f < share]
        assert 0 < len(first_keys) < len(ex.guide_keys)
        said = vocab.decode([ex.ids[k] for k in ex.guide_keys])
        assert "(" not in said  # no style tag is said
    assert multi


def test_pretraining_with_the_speaking_guide_logs_both_guides_and_lowers_it(
    corpus: Path, tmp_path: Path
) -> None:
    loop = LoopConfig(max_steps=12, batch_size=4, micro_batch=2, lr=1e-2, warmup_steps=1,
                      log_every=1, eval_every=12, ckpt_every=12, threads=1, seed=1, bf16=False)  # fmt: skip
    mix = Mixture(asr=1.0, continuation=0.0, tts=1.0, interleaved=1.0, text_qa=0.0,
                  generated_qa=0.0)  # fmt: skip
    cfg = PretrainConfig(data=str(corpus), out=str(tmp_path), preset="tiny", text_vocab_size=300,
                         max_len=1024, eval_examples=4, guide_weight=1.0, speech_guide_weight=5.0,
                         mixture=mix, loop=loop)  # fmt: skip
    run_pretrain(cfg, progress=False)
    rows = [r for r in read_log(stage_dir(tmp_path, "pretrain")) if r["kind"] == "train"]
    speak = [r["speak_loss"] for r in rows if "speak_loss" in r]
    assert len(speak) >= 10 and all(0 < g <= 1 for g in speak)
    assert any("guide_loss" in r for r in rows)  # the ASR guide is logged on its own
    assert sum(speak[-3:]) < sum(speak[:3])


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
    with pytest.raises(ValueError, match="no example with a guide"):
        head_alignment(model, [])
