"""The streaming engine, sessions, sampling and the `aqaa answer` / `chat` / `bench latency` CLI,
on a tiny model (shipped tokenizer, tiny LM, tiny vocoder: the behaviour, not the quality)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from aqaa.audio import load_audio
from aqaa.cli import app
from aqaa.engine import (
    AudioChunk,
    Engine,
    EngineError,
    Finished,
    SamplingConfig,
    Session,
    SessionError,
    TextDelta,
)
from aqaa.engine.sampling import choose, penalize
from aqaa.lm.format import Grammar
from aqaa.streaming import Stream

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
QUESTION = EXAMPLES / "question.wav"
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir: Path) -> Path:
    return tiny_model_dir


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Engine:
    return Engine.load(model_dir)  # tiny: a 1,024-token context


SHORT = SamplingConfig(max_new_tokens=120, seed=3)


def test_streams_share_one_protocol(engine: Engine) -> None:
    assert isinstance(engine.tokenizer.stream(), Stream)
    assert isinstance(engine.vocoder.stream_decoder(), Stream)


def test_answer_follows_the_grammar_and_adds_to_the_session(engine: Engine) -> None:
    session = Session()
    ans = engine.answer(QUESTION, session=session, sampling=SHORT)
    # the response ids obey the grammar: replay them through a fresh grammar state
    assert ans.timings.generated_tokens <= SHORT.max_new_tokens
    assert len(ans.question_codes) % 5 == 0 and len(ans.question_codes) > 50
    codes = ans.parsed.codes
    whole = len(codes) // 5 * 5
    assert len(ans.audio) == whole // 5 * 2880  # 120 ms of 24 kHz audio per group
    assert ans.sample_rate == 24000
    assert ans.timings.total > 0 and ans.timings.prefill_tokens > len(ans.question_codes)
    assert session.exchanges[-1].answer_text == ans.text
    assert session.exchanges[-1].question_codes == ans.question_codes


def test_events_add_up_to_the_answer(engine: Engine) -> None:
    events = list(engine.respond(engine.listen_file(QUESTION), SHORT))
    assert isinstance(events[-1], Finished)
    ans = events[-1].answer
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == ans.text
    chunks = [e.samples for e in events if isinstance(e, AudioChunk)]
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    np.testing.assert_array_equal(audio, ans.audio)
    times = [e.seconds for e in events if not isinstance(e, Finished)]
    assert times == sorted(times)
    if chunks:
        assert (
            ans.timings.first_audio
            == events[[isinstance(e, AudioChunk) for e in events].index(True)].seconds
        )


def test_live_input_equals_a_whole_file(engine: Engine) -> None:
    """Pushing the question in 100 ms pieces gives the same tokens and the same answer."""
    x = load_audio(QUESTION)
    whole = engine.answer(x, 16000, sampling=SHORT)
    turn = engine.listen(gain=1.0)
    for i in range(0, len(x), 1600):
        turn.push(x[i : i + 1600])
    live = next(e for e in engine.respond(turn, SHORT) if isinstance(e, Finished)).answer
    assert live.question_codes == whole.question_codes
    assert live.text == whole.text
    np.testing.assert_allclose(live.audio, whole.audio, atol=1e-5)


def test_same_seed_same_answer_other_seed_other_audio(engine: Engine) -> None:
    a = engine.answer(QUESTION, sampling=SHORT)
    b = engine.answer(QUESTION, sampling=SHORT)
    c = engine.answer(QUESTION, sampling=SamplingConfig(max_new_tokens=120, seed=4))
    assert a.text == b.text and np.array_equal(a.parsed.codes, b.parsed.codes)
    assert not np.array_equal(a.parsed.codes, c.parsed.codes)


def test_cancel_stops_the_answer_and_keeps_the_session(engine: Engine) -> None:
    session = Session()
    turn = engine.listen_file(QUESTION, session=session)
    ans = None
    for n, ev in enumerate(engine.respond(turn, SamplingConfig(max_new_tokens=400))):
        if n == 0:
            engine.cancel()  # barge-in after the first event
        if isinstance(ev, Finished):
            ans = ev.answer
    assert ans is not None and ans.cancelled
    assert ans.timings.generated_tokens < 40
    assert session.exchanges == []


def test_text_mode_answers_without_audio(model_dir: Path) -> None:
    eng = Engine.load(model_dir, mode="text")
    ans = eng.answer(QUESTION, sampling=SHORT)
    assert len(ans.audio) == 0 and ans.parsed.clips == []


def test_history_is_trimmed_oldest_first(engine: Engine, caplog) -> None:
    session = Session()
    for i in range(4):  # four old 8-second questions cannot all fit a 1,024-token context
        session.add(list(range(5 * 67)), f"answer {i}.")
    with caplog.at_level(logging.WARNING):
        engine.listen(session)
    assert 0 < len(session.exchanges) < 4
    assert session.exchanges[-1].answer_text == "answer 3."
    assert "dropped the oldest exchange" in caplog.text


def test_too_long_question_is_refused(engine: Engine) -> None:
    x = load_audio(QUESTION)
    turn = engine.listen(gain=1.0)
    with pytest.raises(EngineError, match="longer than 15 s"):
        for _ in range(10):
            turn.push(x)


def test_session_json_round_trip(tmp_path: Path) -> None:
    s = Session(system="Be brief.")
    s.add([1, 2, 3, 4, 5], "(happy) Hello there.")
    p = s.save(tmp_path / "s.json")
    back = Session.load(p)
    assert back == s
    assert back.chat_turns()[0].human_codes == [1, 2, 3, 4, 5]
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SessionError, match="not valid JSON"):
        Session.load(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(SessionError, match="not an aqaa session"):
        Session.load(tmp_path / "old.json")
    assert Session.load_or_new(tmp_path / "none.json", "Hi.").system == "Hi."


def test_sampling_known_values() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([1.0, 3.0, 2.0, float("-inf")])
    assert choose(logits, 0.0, 50, 1.0, g) == 1
    assert all(choose(logits, 1.0, 1, 1.0, g) == 1 for _ in range(20))  # top-k 1 = argmax
    assert all(choose(logits, 1.0, 0, 0.5, g) == 1 for _ in range(20))  # top-p below the max
    draws = {choose(logits, 5.0, 0, 1.0, g) for _ in range(200)}
    assert draws == {0, 1, 2}  # never the masked token
    pen = penalize(torch.tensor([2.0, -2.0, 1.0]), [0, 1], 2.0)
    torch.testing.assert_close(pen, torch.tensor([1.0, -4.0, 1.0]))
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0.0)


def test_grammar_masks_in_engine_match_format(engine: Engine) -> None:
    assert engine.grammar.masks.shape == Grammar(engine.vocab).masks.shape


# ---- CLI -------------------------------------------------------------------------------------


def test_answer_cli_writes_speech_and_session(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.wav"
    sess = tmp_path / "s.json"
    args = ["answer", str(QUESTION), "-o", str(out), "--model", str(model_dir),
            "--session", str(sess), "--json", "--threads", "1", "--max-tokens", "100"]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["output"] == str(out) and info["generated_tokens"] > 0
    assert len(Session.load(sess).exchanges) == 1
    if info["audio_s"]:
        x, sr = sf.read(out)
        assert sr == 24000 and abs(len(x) / sr - info["audio_s"]) < 1e-3
    r = runner.invoke(app, [*args[:3], str(tmp_path / "b.wav"), *args[4:], "--stream"])
    assert r.exit_code == 0, r.output
    assert len(Session.load(sess).exchanges) == 2
    assert (tmp_path / "b.wav").exists()


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "not found"),
        ("not_audio", "audio"),
        ("silent", "silent"),
        ("out_is_dir", "is a directory"),
        ("bad_suffix", "cannot tell the audio format"),
        ("no_model", "no model in"),
    ],
)
def test_answer_cli_errors_are_one_line_exit_2(
    case: str, message: str, model_dir: Path, tmp_path: Path
) -> None:
    q, out, model = QUESTION, tmp_path / "a.wav", model_dir
    if case == "missing":
        q = tmp_path / "nope.wav"
    elif case == "not_audio":
        q = tmp_path / "notes.wav"
        q.write_text("this is not audio at all " * 20)
    elif case == "silent":
        q = tmp_path / "silent.wav"
        sf.write(q, np.zeros(16000, np.float32), 16000)
    elif case == "out_is_dir":
        out = tmp_path
    elif case == "bad_suffix":
        out = tmp_path / "a.txt"
    elif case == "no_model":
        model = tmp_path / "empty"
        model.mkdir()
    r = runner.invoke(app, ["answer", str(q), "-o", str(out), "--model", str(model)])
    assert r.exit_code == 2, r.output
    assert message in r.output.lower()
    assert "Traceback" not in r.output


def test_chat_cli_keeps_history(model_dir: Path, tmp_path: Path) -> None:
    qs = [str(EXAMPLES / "question.wav"), str(EXAMPLES / "plural.wav")]
    args = ["chat", *qs, "--out", str(tmp_path), "--model", str(model_dir), "--max-tokens", "100"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "answer-01.wav").exists() and (tmp_path / "answer-02.wav").exists()
    assert len(Session.load(tmp_path / "session.json").exchanges) == 2


def test_bench_latency_prints_rows(model_dir: Path) -> None:
    r = runner.invoke(app, ["bench", "latency", str(QUESTION), "--model", str(model_dir),
                            "--repeat", "1", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert rows[0]["question"] == "question.wav" and rows[0]["total_s"] > 0


def test_lm_weight_format_is_chosen_and_checked(engine: Engine, model_dir: Path) -> None:
    from aqaa.lm.decode import packed_weights_supported

    assert engine.decoder.weights == ("fp16" if packed_weights_supported() else "dense")
    assert Engine.load(model_dir, lm_weights="dense").decoder.weights == "dense"
    r = runner.invoke(app, ["bench", "latency", str(QUESTION), "--model", str(model_dir),
                            "--lm-weights", "int4"])  # fmt: skip
    assert r.exit_code == 2 and "weight format must be one of" in r.output


def test_note_taking_model_writes_its_note_before_answering(model_dir: Path) -> None:
    """`aqaa.lm.notes` in the engine: the note goes into the prompt and the history, not the
    answer; the same greedy note as `take_note` writes offline."""
    from aqaa.engine.engine import EngineConfig
    from aqaa.lm.format import ChatTurn
    from aqaa.lm.notes import take_note

    plain = Engine.load(model_dir)
    assert plain.notes is False  # the tiny model was not trained to take notes
    base = EngineConfig.for_context(int(plain.model.config.max_position_embeddings))
    eng = Engine.load(model_dir, config=EngineConfig(**{**base.__dict__, "notes": True,
                                                        "max_note_tokens": 6}))  # fmt: skip
    session = Session()
    ans = eng.answer(QUESTION, session=session, sampling=SHORT)
    assert ans.note is not None and len(eng.vocab.encode(ans.note)) <= 6
    want = take_note(eng.decoder, eng.vocab, [ChatTurn(human_codes=ans.question_codes)],
                     "speech", max_new_tokens=6)  # fmt: skip
    assert ans.note == want
    assert session.exchanges[-1].question_note == ans.note
    assert session.chat_turns()[-1].human_note == ans.note
    assert Session.from_dict(session.to_dict()) == session
    assert plain.answer(QUESTION, sampling=SHORT).note is None


def test_engine_prompt_is_the_training_prompt(engine: Engine) -> None:
    """What the engine feeds the LM is exactly `build_prompt` of the same turns (sessions 1–19
    fed the question without its `<|BOT|>human` header: a prompt the LM never trained on)."""
    from aqaa.lm.format import ChatTurn, build_prompt, header
    from aqaa.lm.vocab import AUDIO_END_ID, EOT_ID

    vocab, fmt = engine.vocab, engine.config.format
    session = Session()
    for history in (False, True):
        if history:
            session.add(list(range(40)), "(happy) Hello there.")
        turn = engine.listen_file(QUESTION, session=session)
        prompt = [*turn.end(), AUDIO_END_ID, EOT_ID, *header(vocab, "assistant")]
        turns = [*session.chat_turns(), ChatTurn(human_codes=turn.codes)]
        assert prompt == build_prompt(vocab, turns, "speech", fmt)
