"""The lean KV-cached decoder, `respond`, the model presets, and the LM-only evaluation."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from aqaa.cli import app
from aqaa.lm.data import TokenItem, synthetic_records
from aqaa.lm.decode import LeanDecoder, packed_weights_supported, respond
from aqaa.lm.evaluate import evaluate_lm, word_errors
from aqaa.lm.format import ChatTurn, FormatConfig
from aqaa.lm.model import PRESETS, build_model, count_parameters, paper_parameter_count
from aqaa.lm.model import save_checkpoint as save_ckpt
from aqaa.lm.spelling import SPELL_CHARS
from aqaa.lm.vocab import Vocab, train_vocab

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup() -> tuple[Vocab, list[TokenItem]]:
    recs = synthetic_records(12, seed=9, split="valid")
    texts = FormatConfig().fixed_texts()
    texts += [x for r in recs for t in r["turns"] for x in (t["human_text"], t["answer_text"])]
    return train_vocab(texts, 320), [TokenItem.from_dict(r) for r in recs]


@pytest.mark.parametrize(
    ("dtype", "weights", "tol"),
    [(torch.float32, "dense", 1e-4), (torch.bfloat16, "dense", 5e-2),
     (torch.float32, "fp16", 2e-3), (torch.float32, "int8", 5e-2)],
)  # fmt: skip
def test_lean_decoder_matches_hf_forward(
    setup, dtype: torch.dtype, weights: str, tol: float
) -> None:
    vocab, _ = setup
    if weights != "dense" and not packed_weights_supported():
        pytest.skip("packed weights need fbgemm")
    model = build_model("tiny", vocab.size, seed=3).eval()
    ids = torch.randint(0, vocab.size, (1, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(ids).logits[0]
    dec = LeanDecoder(model, max_len=64, dtype=dtype, weights=weights)
    assert dec.weights == weights
    torch.testing.assert_close(dec.forward(ids[0, :25]), ref[24], atol=tol, rtol=0)
    torch.testing.assert_close(dec.forward(ids[0, 25:32]), ref[31], atol=tol, rtol=0)  # a block
    for j in range(32, 40):  # one token at a time from the cache
        last = dec.forward(ids[0, j : j + 1])
    torch.testing.assert_close(last, ref[39], atol=tol, rtol=0)
    with pytest.raises(ValueError):
        dec.forward(torch.zeros(30, dtype=torch.long))  # past max_len


def test_lean_decoder_rejects_an_unknown_weight_format(setup) -> None:
    model = build_model("tiny", setup[0].size, seed=3).eval()
    with pytest.raises(ValueError, match="weight format must be one of"):
        LeanDecoder(model, max_len=64, weights="int4")


def test_respond_follows_the_grammar(setup) -> None:
    vocab, items = setup
    model = build_model("tiny", vocab.size, seed=4).eval()
    dec = LeanDecoder(model, max_len=1024)
    turn = ChatTurn(human_codes=items[0].turns[0].human_codes)
    for mode in ("text", "speech", "audio"):
        parsed, res = respond(dec, vocab, [turn], mode, max_new_tokens=200, temperature=1.0)
        assert res.ids and res.tokens_per_second > 0
        if mode == "text":
            assert not parsed.clips
        if mode == "audio":
            assert parsed.text == ""
        for c in parsed.clips:  # whole groups, linguistic then semantic
            assert len(c) % 5 == 0 or not parsed.complete
            assert all(x < 1024 for i, x in enumerate(c) if i % 5 < 2)
            assert all(x >= 1024 for i, x in enumerate(c) if i % 5 >= 2)


def test_presets_and_paper_count() -> None:
    assert set(PRESETS) == {"tiny", "small", "base", "paper"}
    p = PRESETS["paper"]
    assert (p.layers, p.hidden, p.heads, p.kv_heads, p.ffn) == (88, 12288, 96, 8, 31232)
    n = paper_parameter_count()["total"]
    assert 125e9 < n < 135e9  # the "130B" shape, counted on the meta device
    base = count_parameters(build_model("base", 2048 + 5120, device="meta"))["total"]
    assert 12e6 < base < 40e6  # sized for real-time decode on 2 CPU cores (design §7)
    small = count_parameters(build_model("small", 2048 + 5120, device="meta"))["total"]
    assert 5e6 < small < base


def test_word_errors() -> None:
    assert word_errors("What is the capital of Peru?", "what is the capital of peru") == (0, 6)
    assert word_errors("(sad) It is raining.", "it was raining") == (1, 3)
    assert word_errors("one two three", "one three four five") == (3, 3)


def test_evaluate_lm_and_cli(setup, tmp_path) -> None:
    vocab, items = setup
    model = build_model("tiny", vocab.size, seed=5).eval()
    res = evaluate_lm(model, vocab, items, n_asr=3, n_qa=3)
    assert res.asr_n == 3 and res.asr_wer is not None and res.asr_wer >= 0
    # a random head spells noise: about one error per reference character, or more
    assert res.spelling_cer is not None and res.spelling_cer >= 0.5
    assert all(set(s["spelled"]) <= set(SPELL_CHARS) for s in res.samples if s["task"] == "asr")
    assert res.qa_n == min(3, sum(it.category in ("knowledge", "reasoning") for it in items))
    assert res.qa_accuracy == 0.0  # a random model answers nothing right
    assert res.qa_text_accuracy == 0.0  # ... whether it hears the question or reads it
    assert res.qa_transcript_accuracy == 0.0  # ... or reads its own transcript of it
    qa = [s for s in res.samples if s["task"] == "qa"]
    assert qa and all({"answer_from_text", "heard", "answer_from_heard"} <= set(s) for s in qa)
    # one alignment score per layer, an attention mass
    assert len(res.alignment) == model.config.num_hidden_layers
    assert all(0.0 <= a <= 1.0 for a in res.alignment)
    from aqaa.lm.data import write_synthetic_corpus

    corpus = write_synthetic_corpus(tmp_path / "c", n_train=2, n_valid=12, seed=9)
    save_ckpt(model, vocab, tmp_path / "ck")
    r = CliRunner().invoke(
        app, ["train", "evaluate", "--checkpoint", str(tmp_path / "ck"), "--data", str(corpus),
              "-n", "2", "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert '"asr_n": 2' in r.output
    plot = tmp_path / "attention.png"
    r = CliRunner().invoke(
        app, ["train", "evaluate", "--checkpoint", str(tmp_path / "ck"), "--data", str(corpus),
              "-n", "2", "--joint-ctc", "0.3", "--attention-plot", str(plot)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "attention on the spoken word" in r.output and plot.stat().st_size > 1000
    assert "joint CTC/attention" in r.output
    r = CliRunner().invoke(
        app, ["train", "evaluate", "--checkpoint", str(tmp_path / "ck"), "--data", str(corpus),
              "-n", "1", "--generated", "4"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "generated questions as text, test templates: 0.0%" in r.output
    r = CliRunner().invoke(
        app, ["train", "evaluate", "--checkpoint", str(tmp_path / "ck"), "--data", str(corpus),
              "--joint-ctc", "2"],
    )  # fmt: skip
    assert r.exit_code != 0 and "--joint-ctc must be in [0, 1]" in r.output
    # --read-aloud: the LM says held-out answers through a vocoder and the Whisper judge
    from aqaa.vocoder.model import Vocoder, VocoderConfig

    torch.manual_seed(0)
    Vocoder(VocoderConfig.tiny()).save(tmp_path / "voc")
    r = CliRunner().invoke(
        app, ["train", "evaluate", "--checkpoint", str(tmp_path / "ck"), "--data", str(corpus),
              "-n", "1", "--read-aloud", "1", "--vocoder", str(tmp_path / "voc")],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "read aloud (1 sentences): WER" in r.output and "true codes through" in r.output
    r = CliRunner().invoke(
        app, ["train", "evaluate", "--checkpoint", str(tmp_path / "ck"), "--data", str(corpus),
              "-n", "1", "--read-aloud", "1", "--vocoder", str(tmp_path / "nowhere")],
    )  # fmt: skip
    assert r.exit_code == 2 and "error" in r.output


def test_generated_qa_accuracy_judges_answers_by_their_accept_lists() -> None:
    import random

    from aqaa.data.schema import CONTENT_CATEGORIES
    from aqaa.data.tasks import generate
    from aqaa.lm.evaluate import generated_qa_accuracy

    # the same stream of questions the evaluation draws (seed 7, categories in turn)
    rng = random.Random(7)
    key = {}
    for i in range(8):
        t = generate(CONTENT_CATEGORIES[i % 4], rng, "test").turns[0]
        key[t.human_text] = t.accept[0]
    oracle = generated_qa_accuracy(lambda q: f"Well, {key[q]}.", 8, "test")
    assert oracle == {c: 1.0 for c in CONTENT_CATEGORIES} | {"all": 1.0}
    silent = generated_qa_accuracy(lambda q: "I do not know.", 8, "test")
    assert silent["all"] == 0.0
    # right on knowledge only: a quarter of the questions
    half = generated_qa_accuracy(
        lambda q: key[q] if q in key and list(key).index(q) % 4 == 0 else "", 8, "test"
    )
    assert half["knowledge"] == 1.0 and half["reasoning"] == 0.0 and half["all"] == 0.25


def test_audio_temperature_samples_speech_and_keeps_the_text_greedy(setup) -> None:
    from aqaa.lm.decode import generate
    from aqaa.lm.format import Grammar, build_prompt

    vocab, items = setup
    model = build_model("tiny", vocab.size, seed=4).eval()
    dec = LeanDecoder(model, max_len=1024)
    prompt = build_prompt(vocab, [ChatTurn(human_codes=items[0].turns[0].human_codes)], "speech")
    g = Grammar(vocab)
    greedy = generate(dec, prompt, g, "speech", 120).ids
    assert generate(dec, prompt, g, "speech", 120, audio_temperature=0.0).ids == greedy
    sampled = [generate(dec, prompt, g, "speech", 120, seed=s, audio_temperature=1.5).ids
               for s in range(3)]  # fmt: skip
    assert any(ids != greedy for ids in sampled)
    # the first text slot is decoded before any audio: greedy whatever the audio temperature
    n_text = FormatConfig().text_slot
    assert all(ids[:n_text] == greedy[:n_text] for ids in sampled)


def test_read_aloud_scores_the_lm_against_the_true_clips(setup) -> None:
    from aqaa.lm.evaluate import read_aloud

    vocab, items = setup
    model = build_model("tiny", vocab.size, seed=4).eval()
    clips = [c for it in items for c in it.turns[0].answer_clips][:3]
    truth = {tuple(int(x) for x in c.codes): c.text for c in clips}

    def hear(codes):  # ears that understand the true clips only; 1 s per group of 5 codes
        return truth.get(tuple(int(x) for x in codes), "mumble"), len(codes) / 5

    res = read_aloud(LeanDecoder(model, max_len=2048), vocab, [(c.text, c.codes) for c in clips],
                     hear)  # fmt: skip
    assert res.n == 3 and res.wer_true_codes == 0.0
    assert res.wer >= 0.9  # a random LM says none of it
    assert res.duration_ratio > 0 and len(res.samples) == 3
    assert res.samples[0]["true_said"] == clips[0].text
    with pytest.raises(ValueError, match="at least one sentence"):
        read_aloud(LeanDecoder(model, max_len=2048), vocab, [], hear)
