"""LM vocabulary, conversation format, parsing and the response grammar."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch

from aqaa.data.schema import parse_tagged
from aqaa.lm.data import TokenItem, synthetic_records
from aqaa.lm.format import (
    KIND_AUDIO,
    KIND_CONTEXT,
    KIND_TEXT,
    ChatTurn,
    FormatConfig,
    FormatError,
    Grammar,
    GrammarError,
    GrammarLogitsProcessor,
    build_example,
    build_prompt,
    header,
    parse_response,
    response,
)
from aqaa.lm.vocab import (
    AUDIO_END_ID,
    AUDIO_START_ID,
    EOT_ID,
    N_SPECIAL,
    PAD_ID,
    SPECIALS,
    TEXT_END_ID,
    Vocab,
    train_vocab,
)
from aqaa.tokenizer.ids import AUDIO_CODES, split

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return synthetic_records(40, seed=3)


@pytest.fixture(scope="module")
def items(records: list[dict]) -> list[TokenItem]:
    return [TokenItem.from_dict(r) for r in records]


@pytest.fixture(scope="module")
def vocab(records: list[dict]) -> Vocab:
    texts = FormatConfig().fixed_texts()
    for r in records:
        for t in r["turns"]:
            texts += [t["human_text"], t["answer_text"]]
    return train_vocab(texts, 400)


def codes(rng: random.Random, groups: int) -> list[int]:
    out = []
    for _ in range(groups):
        out += [rng.randrange(1024) for _ in range(2)] + [
            1024 + rng.randrange(4096) for _ in range(3)
        ]
    return out


# ----- vocabulary -------------------------------------------------------------------------


def test_vocab_layout(vocab: Vocab) -> None:
    assert [vocab.tokenizer.token_to_id(s) for s in SPECIALS] == list(range(N_SPECIAL))
    assert vocab.size - vocab.audio_base == AUDIO_CODES == 5120
    assert vocab.tokenizer.get_vocab_size() == vocab.size
    assert vocab.audio_id(0) == vocab.audio_base and vocab.audio_code(vocab.audio_id(5119)) == 5119
    with pytest.raises(ValueError):
        vocab.audio_id(5120)
    m = vocab.masks()
    assert m["text"].sum() == vocab.n_text and m["audio"].sum() == 5120
    assert not (m["text"] & m["audio"]).any()
    assert m["linguistic"].sum() == 1024 and m["semantic"].sum() == 4096


def test_vocab_text_round_trip_and_persistence(vocab: Vocab, tmp_path) -> None:
    for s in ["(sad) I am sorry. It is raining.", "What is 7 + 8?", "Ünïcödé works too: 東京"]:
        ids = vocab.encode(s)
        assert all(vocab.is_text(i) for i in ids)
        assert vocab.decode(ids) == s
    vocab.save(tmp_path)
    again = Vocab.load(tmp_path)
    assert again == vocab and again.audio_base == vocab.audio_base
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(tmp_path))
    assert len(hf) == vocab.size
    assert hf.convert_tokens_to_ids("<audio_0>") == vocab.audio_base
    assert hf.eos_token_id == EOT_ID and hf.pad_token_id == PAD_ID


def test_vocab_rejects_text_that_spells_specials(vocab: Vocab) -> None:
    with pytest.raises(ValueError):
        vocab.encode("hello <audio_3>")


# ----- building ---------------------------------------------------------------------------


def _channels(vocab: Vocab, ids: list[int]) -> tuple[list[int], list[int]]:
    t = [i for i in ids if vocab.is_text(i) or i == TEXT_END_ID]
    a = [i for i in ids if vocab.is_audio(i) or i in (AUDIO_START_ID, AUDIO_END_ID)]
    return t, a


def _reinterleave(t: list[int], a: list[int], ts: int = 10, as_: int = 15) -> list[int]:
    """The 10 : 15 interleave written out independently of `format.response`."""
    out, ti, ai = [], 0, 0
    while ti < len(t):
        out += t[ti : ti + ts]
        ti += ts
        out += a[ai : ai + as_]
        ai += as_
    return out + a[ai:]


def test_response_slots_by_hand(vocab: Vocab) -> None:
    rng = random.Random(0)
    text = "The capital of Peru is Lima. It is a large city by the sea."
    clips = [codes(rng, 12), codes(rng, 9)]
    ids, kinds = response(vocab, text, clips, "speech")
    t_ids = [*vocab.encode(text), TEXT_END_ID]
    assert len(t_ids) > 10  # several text slots
    a_ids = []
    for c in clips:
        a_ids += [AUDIO_START_ID, *[vocab.audio_base + x for x in c], AUDIO_END_ID]
    # slot by slot: 10 text, 15 audio, ...
    assert ids[:10] == t_ids[:10]
    assert ids[10:25] == a_ids[:15]
    assert ids[25:35] == t_ids[10:20]
    assert ids == [*_reinterleave(t_ids, a_ids), EOT_ID]
    assert kinds == [
        KIND_TEXT if (vocab.is_text(i) or i in (TEXT_END_ID, EOT_ID)) else KIND_AUDIO for i in ids
    ]


def test_response_modes(vocab: Vocab) -> None:
    rng = random.Random(1)
    c = codes(rng, 4)
    ids, _ = response(vocab, "Hi.", [], "text")
    assert ids == [*vocab.encode("Hi."), TEXT_END_ID, EOT_ID]
    ids, kinds = response(vocab, "ignored", [c], "audio")
    assert ids == [AUDIO_START_ID, *vocab.audio_ids(c), AUDIO_END_ID, EOT_ID]
    assert kinds[:-1] == [KIND_AUDIO] * (len(ids) - 1)
    with pytest.raises(FormatError):
        response(vocab, "Hi.", [], "speech")  # speech needs audio
    with pytest.raises(FormatError):  # audio shorter than the text it must accompany
        response(
            vocab,
            "one two three four five six seven eight nine ten eleven",
            [codes(rng, 1)],
            "speech",
        )
    with pytest.raises(FormatError):  # not whole [l l s s s] groups
        response(vocab, "Hi.", [c[:7]], "speech")


@pytest.mark.parametrize("multi", [False, True])
def test_build_parse_round_trip(vocab: Vocab, items: list[TokenItem], multi: bool) -> None:
    chosen = [
        t
        for it in items
        for t in it.turns
        if (len(t.answer_clips) > 1 and len({c.style for c in t.answer_clips}) >= 1) == multi
    ]
    if multi:  # a multi-style answer made by marker-preserving concatenation
        a, b = chosen[0], chosen[1]
        text = f"(happy) {a.answer_clips[0].text} (whisper) {b.answer_clips[0].text}"
        clips = [a.answer_clips[0].codes, b.answer_clips[0].codes]
        cases = [(text, clips, ["happy", "whisper"])]
    else:
        cases = [
            (t.answer_text, [c.codes for c in t.answer_clips], [c.style for c in t.answer_clips])
            for t in chosen[:10]
        ]
    for text, clips, styles in cases:
        ex = build_example(
            vocab,
            [
                ChatTurn(
                    human_codes=codes(random.Random(2), 3), answer_text=text, answer_clips=clips
                )
            ],
            "speech",
        )
        p = parse_response(vocab, ex.ids)  # whole sequence: parses the last assistant turn
        assert p.complete
        assert p.text == text
        assert p.styles == styles == [s.style for s in parse_tagged(text)]
        assert len(p.clips) == len(clips)
        for got, want in zip(p.clips, clips, strict=True):
            np.testing.assert_array_equal(got, np.asarray(want))
        np.testing.assert_array_equal(p.codes, np.concatenate([np.asarray(c) for c in clips]))


def test_parse_tolerates_truncation(vocab: Vocab) -> None:
    rng = random.Random(4)
    ids, _ = response(vocab, "(sad) It is raining.", [codes(rng, 6)], "speech")
    p = parse_response(vocab, ids[:-8])
    assert not p.complete and p.text == "(sad) It is raining." and p.styles == ["sad"]
    assert len(p.clips) == 1 and len(p.clips[0]) < 30


def test_dialogue_masks_and_history(vocab: Vocab) -> None:
    rng = random.Random(5)
    t1 = ChatTurn(human_codes=codes(rng, 3), answer_text="Lima.", answer_clips=[codes(rng, 4)])
    t2 = ChatTurn(human_codes=codes(rng, 2), answer_text="Santiago.", answer_clips=[codes(rng, 5)])
    ex = build_example(vocab, [t1, t2], "speech")
    prompt = build_prompt(vocab, [t1, t2], "speech")
    assert ex.ids[: len(prompt)] == prompt and prompt[-len(header(vocab, "assistant")) :] == header(
        vocab, "assistant"
    )
    assert set(ex.kinds[: len(prompt)]) == {KIND_CONTEXT}
    assert all(k != KIND_CONTEXT for k in ex.kinds[len(prompt) :])
    # history keeps the user's audio and the assistant's text, drops the assistant's audio
    first_answer_audio = vocab.audio_ids(t1.answer_clips[0])
    assert vocab.audio_ids(t1.human_codes)[0] in prompt
    assert vocab.encode("Lima.")[0] in prompt
    assert not set(first_answer_audio[:5]) <= set(prompt) or first_answer_audio[0] not in prompt
    assert prompt.count(AUDIO_START_ID) == 2  # two human turns, no assistant clip
    kept = build_prompt(vocab, [t1, t2], "speech", FormatConfig(keep_assistant_audio=True))
    assert kept.count(AUDIO_START_ID) == 3
    # text-mode answer: response is text + <text_end> + <|EOT|>, all text channel
    ex_t = build_example(vocab, [t1], "text")
    resp = ex_t.ids[len(build_prompt(vocab, [t1], "text")) :]
    assert resp == [*vocab.encode("Lima."), TEXT_END_ID, EOT_ID]


# ----- grammar ----------------------------------------------------------------------------


def test_grammar_accepts_every_built_response(vocab: Vocab, items: list[TokenItem]) -> None:
    g = Grammar(vocab)
    n = 0
    for it in items:
        for t in it.turns:
            for mode in ("speech", "text", "audio"):
                ids, kinds = response(vocab, t.answer_text, [c.codes for c in t.answer_clips], mode)
                st = g.start(mode)
                for tok, kind in zip(ids, kinds, strict=True):
                    assert kind == (
                        KIND_AUDIO
                        if vocab.is_audio(tok) or tok in (AUDIO_START_ID, AUDIO_END_ID)
                        else KIND_TEXT
                    )
                    st.advance(tok)
                assert st.finished
                n += 1
    assert n >= 120


def test_grammar_rejects_out_of_place_tokens(vocab: Vocab) -> None:
    g = Grammar(vocab)
    st = g.start("speech")
    with pytest.raises(GrammarError):
        st.advance(vocab.audio_id(3))  # audio in a text slot
    st.advance(vocab.encode("Hi")[0])
    st.advance(TEXT_END_ID)
    with pytest.raises(GrammarError):
        st.advance(vocab.encode("x")[0])  # text in an audio slot
    with pytest.raises(GrammarError):
        st.advance(EOT_ID)  # speech needs a clip first
    st.advance(AUDIO_START_ID)
    with pytest.raises(GrammarError):
        st.advance(vocab.audio_id(1024))  # a semantic code where a linguistic one belongs
    with pytest.raises(GrammarError):
        st.advance(AUDIO_END_ID)  # an empty clip


def _random_decode(
    g: Grammar, vocab: Vocab, mode: str, rng: torch.Generator, max_steps: int
) -> list[int]:
    st = g.start(mode)
    out: list[int] = []
    special = torch.tensor([TEXT_END_ID, AUDIO_START_ID, AUDIO_END_ID, EOT_ID, PAD_ID])
    for _ in range(max_steps):
        logits = torch.randn(vocab.size, generator=rng) * 3
        if torch.rand((), generator=rng) < 0.3:  # sometimes favour a special token
            logits[special[torch.randint(len(special), (), generator=rng)]] += 12
        logits = logits.masked_fill(~st.allowed(), float("-inf"))
        tok = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=rng))
        st.advance(tok)
        out.append(tok)
        if tok == EOT_ID:
            break
    return out


@pytest.mark.parametrize("mode", ["speech", "text", "audio"])
def test_grammar_never_mixes_channels_under_random_logits(vocab: Vocab, mode: str) -> None:
    g = Grammar(vocab)
    rng = torch.Generator().manual_seed(7)
    steps = finished = 0
    for _ in range(25):
        ids = _random_decode(g, vocab, mode, rng, 400)
        steps += len(ids)
        body = ids[:-1] if ids[-1] == EOT_ID else ids
        finished += ids[-1] == EOT_ID
        t, a = _channels(vocab, body)
        assert len(t) + len(a) == len(body)  # nothing but text and audio channel tokens
        if mode == "speech":
            # every text token sits in a 10-slot, every audio token in a 15-slot
            assert body == _reinterleave(t, a)[: len(body)]
        if mode == "text":
            assert a == []
        if mode == "audio":
            assert t == []
        if ids[-1] == EOT_ID and mode != "text":
            p = parse_response(vocab, ids)
            assert p.complete and p.clips
            for c in p.clips:  # whole [l l s s s] groups
                split(c)
    assert steps > {"speech": 2000, "audio": 1000, "text": 200}[mode] and finished >= 10


def test_logits_processor_with_hf_generate_and_lean_decoder(vocab: Vocab) -> None:
    from aqaa.lm.decode import LeanDecoder, generate
    from aqaa.lm.model import build_model

    model = build_model("tiny", vocab.size, seed=0).eval()
    rng = random.Random(8)
    prompt = build_prompt(vocab, [ChatTurn(human_codes=codes(rng, 4))], "speech")
    g = Grammar(vocab)
    proc = GrammarLogitsProcessor(g, "speech", len(prompt))
    out = model.generate(
        torch.tensor([prompt]),
        logits_processor=[proc],
        do_sample=False,
        max_new_tokens=60,
        eos_token_id=EOT_ID,
        pad_token_id=PAD_ID,
    )[0, len(prompt) :].tolist()
    st = g.start("speech")
    for tok in out:
        st.advance(tok)  # raises if HF generate emitted anything off-grammar
    # the lean KV-cached loop decodes the same greedy tokens
    lean = generate(LeanDecoder(model, max_len=512), prompt, g, "speech", max_new_tokens=60)
    assert lean.ids == out[: len(lean.ids)]
    assert len(lean.ids) == len(out)


def test_generated_qa_is_typed_fresh_and_deterministic(
    items: list[TokenItem], vocab: Vocab
) -> None:
    from aqaa.lm.data import TEXT_QA_CATEGORIES, Mixture, PretrainSource

    only = Mixture(**{t: 0.0 for t in ("continuation", "asr", "tts", "interleaved", "text_qa")})
    src = PretrainSource(items, vocab, FormatConfig(), 512, mixture=only)
    a, b = src.example(seed=5, index=7), src.example(seed=5, index=7)
    assert a.task == "generated_qa" and a.ids == b.ids
    assert not any(k == KIND_AUDIO for k in a.kinds)  # typed question, text answer
    corpus_texts = {t.human_text for it in items for t in it.turns}
    questions = {vocab.decode(src.example(seed=5, index=i).ids) for i in range(40)}
    # Drawn from the generators, not the corpus: most prompts are not in the 40-item corpus.
    assert sum(any(q in text for q in corpus_texts) for text in questions) < 20
    assert "voice_understanding" not in TEXT_QA_CATEGORIES


def _spoken_codes(ex, vocab: Vocab) -> tuple[int, ...]:
    """The audio codes an example's audio channel says (clip markers left out)."""
    base = vocab.audio_id(0)
    return tuple(
        x - base for x, k in zip(ex.ids, ex.kinds, strict=True) if k == KIND_AUDIO and x >= base
    )


def test_tts_and_interleaved_speak_only_the_assistant_voice(
    items: list[TokenItem], vocab: Vocab
) -> None:
    from aqaa.lm.data import Mixture, PretrainSource

    answers = {tuple(c.codes) for it in items for t in it.turns for c in t.answer_clips}
    assert answers
    off = dict.fromkeys(
        ("continuation", "asr", "tts", "interleaved", "text_qa", "generated_qa"), 0.0
    )
    for task in ("tts", "interleaved"):
        src = PretrainSource(items, vocab, FormatConfig(), 4096, Mixture(**(off | {task: 1.0})))
        for i in range(30):
            ex = src.example(seed=3, index=i)
            assert ex.task == task and _spoken_codes(ex, vocab) in answers, (task, i)
    # a corpus without answer audio (babble) speaks its human clips
    mute = copy.deepcopy(items[:4])
    for t in (t for it in mute for t in it.turns):
        t.answer_clips = []
    src = PretrainSource(mute, vocab, FormatConfig(), 4096, Mixture(**(off | {"tts": 1.0})))
    heard = {tuple(t.human_codes) for it in mute for t in it.turns}
    assert _spoken_codes(src.example(seed=3, index=0), vocab) in heard


def test_mixture_option_and_several_corpora(tmp_path) -> None:
    import json as _json

    from aqaa.lm.data import iter_records
    from aqaa.train.cli import _UserError, parse_mixture

    m = parse_mixture("asr=3, continuation=0.25")
    assert (m.asr, m.continuation, m.tts) == (3.0, 0.25, 1.0)
    for bad in ("asr", "speech=1", "asr=x", "asr=0,continuation=0,tts=0,interleaved=0,"
                "text_qa=0,generated_qa=0"):  # fmt: skip
        with pytest.raises((_UserError, ValueError)):
            parse_mixture(bad)
    for name, n in (("a", 2), ("b", 3)):
        (tmp_path / name / "tokens").mkdir(parents=True)
        lines = [_json.dumps({"id": f"{name}{i}"}) for i in range(n)]
        (tmp_path / name / "tokens" / "train.jsonl").write_text("\n".join(lines) + "\n")
    both = f"{tmp_path / 'a'},{tmp_path / 'b'}"
    assert [r["id"] for r in iter_records(both, "train")] == ["a0", "a1", "b0", "b1", "b2"]
    with pytest.raises(FileNotFoundError, match="no token shard"):
        list(iter_records(f"{tmp_path / 'a'},{tmp_path / 'missing'}", "train"))


def test_audio_embedding_init_keeps_tokenizer_geometry(vocab: Vocab) -> None:
    from aqaa.lm.audio_init import audio_code_vectors, init_audio_embeddings
    from aqaa.lm.model import build_model

    model = build_model("tiny", vocab.size, seed=0)
    emb = model.get_input_embeddings().weight
    text_before = emb[: vocab.audio_base].detach().clone()
    std_before = emb[vocab.audio_base :].detach().std()
    codes = audio_code_vectors()
    idx = torch.arange(0, 1024, 8)  # linguistic codes: centroid distances vs embedding distances

    def dist_corr() -> float:
        a = torch.pdist(codes[idx])
        b = torch.pdist(emb[vocab.audio_base + idx].detach().float())
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])

    assert abs(dist_corr()) < 0.2  # a random init knows nothing of the codes
    init_audio_embeddings(model, vocab.audio_base, structured=0.8)
    assert dist_corr() > 0.5
    assert torch.equal(emb[: vocab.audio_base], text_before)  # text rows untouched
    assert float(emb[vocab.audio_base :].detach().std()) == pytest.approx(
        float(std_before), rel=0.1
    )
    with pytest.raises(ValueError, match="structured"):
        init_audio_embeddings(model, vocab.audio_base, structured=1.5)
