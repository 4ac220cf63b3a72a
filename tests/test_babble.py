"""Babble: random-word speech for the tokenizer, from training voices only, in the corpus layout."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from aqaa.data.babble import BabbleConfig, babble_sentence, build_babble, load_words
from aqaa.data.voices import HELD_OUT_VOICES, RESERVED_VOICES


def test_words_and_sentences(tmp_path: Path) -> None:
    f = tmp_path / "words"
    made = [a + b + c for a in "bdk" for b in "aeiou" for c in "mnpst"]  # 75 x 2 words
    f.write_text("\n".join(["Boston", "cat's", "x", "a" * 13, *made, *(w + "er" for w in made)]))
    words = load_words(f)
    assert words and all(w.isalpha() and w.islower() and 2 <= len(w) <= 12 for w in words)
    assert "Boston" not in words and "cat's" not in words and "x" not in words
    s = babble_sentence(random.Random(0), words)
    assert s.endswith(".") and s[0].isupper() and 4 <= len(s.split()) <= 12
    with pytest.raises(FileNotFoundError, match="wamerican"):
        load_words(tmp_path / "missing")
    f.write_text("cat\ndog\n")
    with pytest.raises(ValueError, match="usable words"):
        load_words(f)


def test_tiny_babble_build_resumes_and_feeds_the_tokenizer(tmp_path: Path) -> None:
    from aqaa.train.tokenizer import clip_list

    cfg = BabbleConfig(out=tmp_path / "bb", hours=0.01, seed=3, workers=2)
    summary = build_babble(cfg, progress=False)
    assert summary["clips"] >= 5 and summary["failed"] == 0
    clips = clip_list(cfg.out)
    assert len(clips) == summary["clips"]
    for c in clips:
        assert c["voice"] not in RESERVED_VOICES | HELD_OUT_VOICES and c["voice"] != "piper:joe"
        assert c["phonemes"] and (cfg.out / c["path"]).exists()
    first = (cfg.out / clips[0]["path"]).stat().st_mtime_ns
    again = build_babble(cfg, progress=False)  # resumes: nothing re-rendered
    assert again["clips"] == summary["clips"]
    assert (cfg.out / clips[0]["path"]).stat().st_mtime_ns == first
    assert json.loads((cfg.out / "build.json").read_text())["kind"] == "babble"
    # tokenized, babble feeds the LM's answer-free pretraining tasks, and never SFT or DPO
    from aqaa.data.shards import tokenize_corpus
    from aqaa.lm.data import DPOSource, PretrainSource, SFTSource, answered, load_items
    from aqaa.lm.format import FormatConfig
    from aqaa.lm.vocab import train_vocab
    from aqaa.tokenizer import DualCodebookTokenizer

    counts = tokenize_corpus(cfg.out, DualCodebookTokenizer.load(), progress=False)
    items = [it for split in counts for it in load_items(cfg.out, split)]
    assert len(items) == summary["clips"] and answered(items) == []
    vocab = train_vocab([t.human_text for it in items for t in it.turns], 300)
    src = PretrainSource(items, vocab, FormatConfig(), 768)
    asr = src.task_example("asr", random.Random(0))
    assert asr.ctc_targets is not None and any(vocab.is_audio(i) for i in asr.ids)
    with pytest.raises(ValueError, match="no items"):
        SFTSource(items, vocab, FormatConfig(), 768)
    with pytest.raises(ValueError, match="with answers"):
        DPOSource(items, vocab, FormatConfig(), 768)


def test_spoken_questions_carry_text_answers_and_feed_sft(tmp_path: Path) -> None:
    from aqaa.data.schema import CONTENT_CATEGORIES
    from aqaa.data.shards import tokenize_corpus
    from aqaa.lm.data import SFTSource, answered, load_items
    from aqaa.lm.evaluate import correct
    from aqaa.lm.format import FormatConfig
    from aqaa.lm.vocab import train_vocab
    from aqaa.tokenizer import DualCodebookTokenizer

    with pytest.raises(ValueError, match="source"):
        BabbleConfig(out=tmp_path, source="poems")
    cfg = BabbleConfig(out=tmp_path / "q", hours=0.005, seed=4, workers=1, source="questions")
    summary = build_babble(cfg, progress=False)
    assert summary["kind"] == "questions" and summary["clips"] >= 3 and summary["failed"] == 0
    counts = tokenize_corpus(cfg.out, DualCodebookTokenizer.load(), progress=False)
    items = [it for split in counts for it in load_items(cfg.out, split)]
    assert len(items) == summary["clips"] and answered(items) == items
    for it in items:
        t = it.turns[0]
        assert it.category in CONTENT_CATEGORIES and it.id.split("-")[1].startswith("q")
        assert t.answer_clips == [] and len(t.human_codes) > 0
        assert correct(t.answer_text, t.accept)  # the judge accepts the corpus's own answer
    # SFT answers them in the text channel even when it drew the speech mode
    vocab = train_vocab(
        [s for it in items for t in it.turns for s in (t.human_text, t.answer_text)], 300
    )
    src = SFTSource(items, vocab, FormatConfig(), 768, text_answer_fraction=0.0)
    ex = src.example(0, 0)
    assert ex.task == "sft_text" and any(vocab.is_audio(i) for i in ex.ids)


def test_sentences_are_clean_and_come_from_the_text(tmp_path: Path) -> None:
    from aqaa.data.babble import load_sentences

    words = ["the", "cat", "sat", "on", "mat", "you've", "a", "dog", "ran", "far"]
    lines = ["The cat sat on the mat.", "You've a dog, the cat ran far!", "The cat ran 4 far.",
             "The Zorg sat on the mat.", "Cat sat.", "the cat sat on the mat."]  # fmt: skip
    passages = "\n%\n".join(" ".join(lines[i : i + 2]) for i in range(0, len(lines), 2))
    d = tmp_path / "fortunes"
    d.mkdir()
    (d / "jokes").write_text(passages * 60)
    (d / "jokes.dat").write_bytes(b"\x00\x01binary index")  # fortune's index files are skipped
    got = load_sentences(d, words, min_sentences=1)
    # digits, unknown words, too short and lower-case starts are all dropped; duplicates merged
    assert got == ["The cat sat on the mat.", "You've a dog, the cat ran far!"]
    with pytest.raises(ValueError, match="usable sentences"):
        load_sentences(d, words)
    with pytest.raises(FileNotFoundError, match="fortunes"):
        load_sentences(tmp_path / "missing", words)


def test_sentence_babble_with_warped_voices_feeds_the_sft_asr_replay(tmp_path: Path) -> None:
    from aqaa.data.babble import plan_babble
    from aqaa.data.shards import tokenize_corpus
    from aqaa.data.voices import VoiceBank
    from aqaa.lm.data import SFTSource, load_items
    from aqaa.lm.format import FormatConfig
    from aqaa.lm.vocab import train_vocab
    from aqaa.tokenizer import DualCodebookTokenizer

    with pytest.raises(ValueError, match="warp"):
        BabbleConfig(out=tmp_path, warp=1.5)
    text = tmp_path / "text.txt"
    sentences = [
        f"The {a} {b} sat on the mat."
        for a in ("big", "red", "old", "sad", "tall")
        for b in (
            "cat",
            "dog",
            "man",
            "hen",
            "fox",
            "bat",
            "cow",
            "pig",
            "rat",
            "ant",
            "owl",
            "elk",
            "yak",
            "ape",
            "eel",
            "emu",
            "gnu",
            "kid",
            "cub",
            "pup",
        )
    ]
    text.write_text(" ".join(sentences))  # fmt: skip
    cfg = BabbleConfig(out=tmp_path / "s", hours=0.004, seed=2, workers=1, source="sentences",
                       text=text, warp=1.0)  # fmt: skip
    bank = VoiceBank.discover()
    voices = {s: bank.voices(s) for s in ("train", "valid")}
    plans = [plan_babble(i, cfg, sentences, voices) for i in range(40)]
    warped = [p for p in plans if "warp" in p]
    assert warped and all(not p["voice"].startswith("espeak") for p in warped)
    assert all(p["voice"].startswith("espeak") for p in plans if "warp" not in p)
    for p in warped:
        formant, shift = p["warp"]
        assert 0.88 <= formant <= 1.22 and p["voice"].endswith(f"~w{formant:.2f}{shift:+.1f}")
    # held-out clips speak held-out sentences
    from aqaa.data.babble import sentence_split

    assert all(sentence_split(p["text"]) == p["split"] for p in plans)
    assert {sentence_split(s) for s in sentences} == {"train", "valid"}
    # the same (seed, index) plans the same clip; no warp leaves the plans of older builds alone
    assert plan_babble(7, cfg, sentences, voices) == plans[7]
    plain = BabbleConfig(out=tmp_path / "p", seed=2, source="sentences", text=text)
    assert all("warp" not in plan_babble(i, plain, sentences, voices) for i in range(40))

    summary = build_babble(cfg, progress=False)
    assert summary["kind"] == "sentences" and summary["clips"] >= 2 and summary["failed"] == 0
    counts = tokenize_corpus(cfg.out, DualCodebookTokenizer.load(), progress=False)
    spoken = [it for split in counts for it in load_items(cfg.out, split)]
    assert {t.human_text for it in spoken for t in it.turns} <= set(sentences)
    # SFT answers only answered items, but its ASR replay hears the sentences too
    q = BabbleConfig(out=tmp_path / "q", hours=0.003, seed=5, workers=1, source="questions")
    build_babble(q, progress=False)
    counts_q = tokenize_corpus(q.out, DualCodebookTokenizer.load(), progress=False)
    asked = [it for split in counts_q for it in load_items(q.out, split)]
    items = spoken + asked
    vocab = train_vocab(
        [s for it in items for t in it.turns for s in (t.human_text, t.answer_text) if s], 300
    )
    src = SFTSource(items, vocab, FormatConfig(), 768, asr_replay=0.9)
    assert len(src.items) == len(asked)
    heard = {vocab.decode([i for i in ex.ids if not vocab.is_audio(i)])
             for ex in (src.example(0, k) for k in range(60)) if ex.task == "asr"}  # fmt: skip
    assert any(s in h for h in heard for s in sentences)
    # pretraining can type them: plain English in a human turn, every word a target
    from aqaa.lm.data import KIND_CONTEXT, KIND_TEXT, Mixture, PretrainSource
    from aqaa.lm.format import header
    from aqaa.lm.vocab import EOT_ID

    only = Mixture(**{t: 0.0 for t in ("continuation", "asr", "tts", "interleaved", "text_qa",
                                        "generated_qa")}, sentences=1.0)  # fmt: skip
    ex = PretrainSource(items, vocab, FormatConfig(), 768, only).example(0, 3)
    head = header(vocab, "human")
    assert ex.task == "sentences" and ex.ids[: len(head)] == head and ex.ids[-1] == EOT_ID
    assert ex.kinds == [KIND_CONTEXT] * len(head) + [KIND_TEXT] * (len(ex.ids) - len(head))
    typed = vocab.decode(ex.ids[len(head) : -1])
    assert any(typed.startswith(s) for s in sentences), typed
    with pytest.raises(ValueError, match="source sentences"):
        PretrainSource(asked, vocab, FormatConfig(), 768, only)


def test_assistant_clips_hold_out_sentences_and_feed_the_vocoder_cache(tmp_path: Path) -> None:
    from aqaa.data.babble import plan_assistant, sentence_split
    from aqaa.data.corpus import read_manifest
    from aqaa.data.shards import tokenize_corpus
    from aqaa.data.voices import ASSISTANT_VOICE
    from aqaa.tokenizer import DualCodebookTokenizer
    from aqaa.train.vocoder import ClipSet, build_cache
    from aqaa.vocoder.model import VocoderConfig

    sentences = [
        f"The {a} {b} sat on the mat." for a in ("big", "red", "old") for b in ("cat", "dog")
    ]
    cfg = BabbleConfig(out=tmp_path / "v", hours=0.004, seed=1, workers=1, source="assistant",
                       sentence_share=0.5)  # fmt: skip
    plans = [plan_assistant(i, cfg, sentences, set()) for i in range(40)]
    assert all(sentence_split(p["text"]) == p["split"] for p in plans)
    assert {p["voice"] for p in plans} == {ASSISTANT_VOICE}
    assert any(p["text"] in sentences for p in plans) and any(
        p["style"] != "neutral" for p in plans
    )
    # excluded sentences are never spoken
    banned = {p["text"] for p in plans[:10]}
    again = [plan_assistant(i, cfg, sentences, banned) for i in range(40)]
    assert not banned & {p["text"] for p in again}
    only_text = BabbleConfig(out=cfg.out, source="assistant", sentence_share=1.0)
    with pytest.raises(ValueError, match="outside --exclude"):
        plan_assistant(0, only_text, sentences, set(sentences))

    summary = build_babble(cfg, progress=False)
    assert summary["kind"] == "assistant" and summary["failed"] == 0 and summary["clips"] >= 3
    records = read_manifest(cfg.out)
    for r in records:
        (turn,) = r["turns"]
        assert "human_audio" not in turn and len(turn["answer_audio"]) == 1
    from aqaa.data.stats import corpus_stats

    st = corpus_stats(cfg.out)
    assert st["turns"] == summary["clips"] and st["distinct_voices"] == 0
    assert st["hours_total"] == pytest.approx(summary["hours"], abs=2e-3)
    assert sum(v["human"] for v in st["hours"].values()) == 0.0
    counts = tokenize_corpus(cfg.out, DualCodebookTokenizer.load(), progress=False)
    shard = [json.loads(x) for x in (cfg.out / "tokens" / "train.jsonl").read_text().splitlines()]
    assert len(shard) == counts["train"]
    assert all(t["human_codes"] == [] and t["answer_clips"][0]["codes"] for d in shard
               for t in d["turns"])  # fmt: skip
    clips = ClipSet(build_cache(cfg.out, VocoderConfig.tiny().mel, progress=False), "train")
    assert len(clips) == counts["train"]
