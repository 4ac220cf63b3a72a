"""`aqaa.lm.notes`: the listening note after a spoken question, in training and in decoding."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aqaa.cli import app
from aqaa.lm.data import SFTSource, load_items, write_synthetic_corpus
from aqaa.lm.format import KIND_CONTEXT, KIND_TEXT, ChatTurn, FormatConfig, build_example
from aqaa.lm.notes import note_mask, take_note, with_note
from aqaa.lm.vocab import AUDIO_END_ID, EOT_ID, train_vocab

QUESTION = "What is the capital of Peru?"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_corpus(tmp_path_factory.mktemp("corpus"), n_train=24, n_valid=4)


@pytest.fixture(scope="module")
def vocab(corpus: Path):
    items = load_items(corpus, "train")
    texts = [x for it in items for t in it.turns for x in (t.human_text, t.answer_text)]
    return train_vocab([*texts, QUESTION, *FormatConfig().fixed_texts()], 300)


def test_the_note_follows_the_audio_and_only_the_last_one_is_trained(vocab) -> None:
    codes = np.arange(30) % 5120
    first = ChatTurn(human_codes=codes, human_note="Hello there.", answer_text="Hi.")
    last = ChatTurn(human_codes=codes, human_note=QUESTION, answer_text="Lima.")
    ex = build_example(vocab, [first, last], "text")
    plain = build_example(vocab, [first, ChatTurn(human_codes=codes, answer_text="Lima.")], "text")
    note = vocab.encode(QUESTION)
    # the last question's audio, then its note, then its <|EOT|>
    at = max(i for i, t in enumerate(ex.ids) if t == AUDIO_END_ID) + 1
    assert ex.ids[at : at + len(note) + 1] == [*note, EOT_ID]
    assert ex.kinds[at : at + len(note) + 1] == [KIND_TEXT] * (len(note) + 1)
    # the earlier note is context; the response is what it was without notes
    first_at = ex.ids.index(AUDIO_END_ID) + 1
    assert ex.ids[first_at : first_at + 3] == vocab.encode("Hello there.")[:3]
    assert set(ex.kinds[: at - 1]) == {KIND_CONTEXT}
    n_resp = sum(k != KIND_CONTEXT for k in plain.kinds)
    assert ex.ids[-n_resp:] == plain.ids[-n_resp:] and ex.kinds[-n_resp:] == plain.kinds[-n_resp:]
    assert ex.n_loss == n_resp + len(note) + 1


def test_sft_source_writes_the_transcript_as_the_note(corpus: Path, vocab) -> None:
    items = load_items(corpus, "train")
    on = SFTSource(items, vocab, FormatConfig(), 1024, notes=True)
    off = SFTSource(items, vocab, FormatConfig(), 1024)
    guided = 0
    for i in range(20):
        a, b = on.draw(random.Random(i)), off.draw(random.Random(i))
        if a is None or not a.task.startswith("sft"):
            continue
        grown = len(a) - len(b)
        assert grown > 0 and a.n_loss - b.n_loss == grown + 1  # the note and its <|EOT|>
        # the speaking guide reads the response's text, not the note's
        assert [k - grown for k in a.guide_keys] == b.guide_keys
        guided += bool(a.guide_keys)
    assert guided


def test_take_note_writes_text_only_and_answers_after_it(tiny_model_dir: Path) -> None:
    from aqaa.lm.decode import LeanDecoder, respond
    from aqaa.lm.model import load_checkpoint

    model, vocab = load_checkpoint(tiny_model_dir / "lm")
    mask = note_mask(vocab)
    assert mask[EOT_ID] and not mask[AUDIO_END_ID] and not mask[vocab.audio_id(0)]
    assert mask[vocab.encode("a")[0]]
    dec = LeanDecoder(model, max_len=512)
    turns = [ChatTurn(human_codes=np.arange(40) % 5120)]
    note = take_note(dec, vocab, turns, "text", max_new_tokens=12)
    assert isinstance(note, str) and len(vocab.encode(note)) <= 12
    noted = with_note(turns, note)
    assert noted[-1].human_note == note and turns[-1].human_note is None
    p, _ = respond(dec, vocab, noted, "text", max_new_tokens=8)
    assert isinstance(p.text, str)
    with pytest.raises(ValueError, match="only a spoken turn"):
        take_note(dec, vocab, [ChatTurn(human_text=QUESTION)], "text")


def test_sft_and_evaluate_cli_with_notes(corpus: Path, tmp_path: Path) -> None:
    fast = ["--max-steps", "2", "--batch-size", "2", "--micro-batch", "2", "--threads", "1",
            "--no-bf16", "--no-progress"]  # fmt: skip
    run = [str(a) for a in ("--data", corpus, "--out", tmp_path / "run")]
    r = CliRunner().invoke(app, ["train", "pretrain", *run, "--preset", "tiny", "--text-vocab",
                                 "300", "--max-len", "512", *fast])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["train", "sft", *run, "--notes", *fast])
    assert r.exit_code == 0, r.output
    from aqaa.train.sft import SFTConfig
    from aqaa.train.stage import load_config

    assert load_config(SFTConfig, tmp_path / "run" / "sft1").notes is True
    ck = tmp_path / "run" / "sft1" / "final"
    r = CliRunner().invoke(app, ["train", "evaluate", "--checkpoint", str(ck), "--data",
                                 str(corpus), "-n", "3", "--notes", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert '"note"' in r.output


def test_dpo_pairs_of_a_note_taker_carry_the_note_as_context(corpus: Path, vocab) -> None:
    from aqaa.lm.data import DPOSource

    items = load_items(corpus, "train")
    on = DPOSource(items, vocab, FormatConfig(), 1024, notes=True).pair(0, 3)
    off = DPOSource(items, vocab, FormatConfig(), 1024).pair(0, 3)
    grown = len(on.chosen) - len(off.chosen)
    assert grown > 0 and len(on.rejected) - len(off.rejected) == grown
    # the note is prompt (not scored); the responses are the same as without notes
    assert on.chosen.n_loss == off.chosen.n_loss and on.rejected.n_loss == off.rejected.n_loss
    assert on.chosen.ids[grown:][-off.chosen.n_loss :] == off.chosen.ids[-off.chosen.n_loss :]
