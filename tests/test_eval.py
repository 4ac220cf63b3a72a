"""The end-to-end evaluation: metrics on constructed audio with known answers, the Whisper judge,
suite files, both systems on the smoke suite (tiny random model: the plumbing, not the score),
the report, `compare` and the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import typer
from typer.testing import CliRunner

from aqaa.audio import load_audio
from aqaa.eval import cli as eval_cli
from aqaa.eval.acoustics import (
    WHISPER_MAX_VOICING,
    Acoustics,
    dnsmos,
    measure,
    style_expectations,
    style_pass,
)
from aqaa.eval.judge import (
    JudgeConfig,
    WhisperJudge,
    content_correct,
    count_words,
    normalize_text,
    wer,
    whisper_model_dir,
)
from aqaa.eval.report import compare, summary_table, write_report
from aqaa.eval.runner import (
    METRICS,
    CascadeSystem,
    E2ESystem,
    EvalError,
    RunConfig,
    Workbench,
    aggregate,
    judge_turn,
    load_results,
    run_suite,
    speakable,
    split_sentences,
    style_runs,
)
from aqaa.eval.suite import SuiteError, SuiteTurn, load_suite, make_suite, parse_suite

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
QUESTION = EXAMPLES / "question.wav"
QUESTION_TEXT = "What country is Lima the capital of?"
SR = 16000
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def judge() -> WhisperJudge:
    return WhisperJudge(JudgeConfig(cpu_threads=1))


@pytest.fixture(scope="module")
def question() -> np.ndarray:
    return load_audio(QUESTION)


def _app() -> typer.Typer:
    app = typer.Typer()
    eval_cli.register(app)
    return app


# ---- acoustic measures on constructed audio -------------------------------------------------------


@pytest.mark.parametrize("f0", [110.0, 180.0, 260.0])
def test_sine_measures_its_f0(f0: float) -> None:
    t = np.arange(SR) / SR
    x = (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
    m = measure(x, SR)
    assert m.f0_hz == pytest.approx(f0, rel=0.02)
    assert m.voicing is not None and m.voicing > 0.9
    assert m.f0_spread_st is not None and m.f0_spread_st < 0.3


def test_f0_of_a_24k_sine_and_a_rising_glide() -> None:
    t = np.arange(24000) / 24000
    x = (0.3 * np.sin(2 * np.pi * 150.0 * t)).astype(np.float32)
    assert measure(x, 24000).f0_hz == pytest.approx(150.0, rel=0.02)
    # an exponential chirp rising two octaves in 1 s: ~16 semitones between its outer thirds
    f = 120.0 * 2 ** (t * 2)
    phase = 2 * np.pi * np.cumsum(f) / 24000
    m = measure((0.3 * np.sin(phase)).astype(np.float32), 24000)
    assert m.f0_rise_st is not None and m.f0_rise_st > 12


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_time_stretched_speech_measures_the_rate(question: np.ndarray, rate: float) -> None:
    ref = measure(question, SR, transcript=QUESTION_TEXT)
    fast = measure(librosa.effects.time_stretch(question, rate=rate), SR, transcript=QUESTION_TEXT)
    assert ref.words == 7 and ref.rate_wps is not None and fast.rate_wps is not None
    assert fast.rate_wps / ref.rate_wps == pytest.approx(rate, rel=0.10)


@pytest.mark.parametrize("gain", [0.25, 0.5, 2.0])
def test_scaled_signal_shifts_rms_by_its_gain(question: np.ndarray, gain: float) -> None:
    a = measure(question, SR, with_f0=False)
    b = measure(question * gain, SR, with_f0=False)
    assert a.rms_db is not None and b.rms_db is not None
    assert b.rms_db - a.rms_db == pytest.approx(20 * np.log10(gain), abs=0.01)
    assert b.speech_s == a.speech_s  # activity is relative to the loudest frame


def test_silence_and_noise_measure_without_crashing() -> None:
    silent = measure(np.zeros(SR, np.float32), SR, transcript="")
    assert silent.rms_db is None and silent.f0_hz is None and silent.speech_s == 0.0
    # pink (1/f) noise, breath-like, passes the whisper rule (pyin finds spurious periodicity
    # at its 50 Hz floor in up to ~20% of the frames of noise)
    spec = np.fft.rfft(np.random.default_rng(0).normal(0, 1, 2 * SR))
    spec[1:] /= np.sqrt(np.arange(1, len(spec)))
    noise = (np.fft.irfft(spec)[:SR] * 0.05).astype(np.float32)
    m = measure(noise, SR)
    assert m.voicing is not None and m.voicing <= WHISPER_MAX_VOICING
    speech = measure(load_audio(QUESTION), SR)
    assert m.cpp_db is not None and speech.cpp_db is not None
    assert m.cpp_db < 0.5 * speech.cpp_db  # no harmonics: a low cepstral peak
    assert measure(np.zeros(0, np.float32), SR).duration_s == 0.0


def test_dnsmos_scores_speech_and_skips_silence(question: np.ndarray) -> None:
    assert dnsmos(np.zeros(SR, np.float32), SR) is None
    assert dnsmos(question[:1000], SR) is None  # too short to score
    d = dnsmos(question, SR)
    assert d is not None and set(d) == {"ovrl", "sig", "bak", "p808"}
    assert all(1.0 <= v <= 5.0 for v in d.values())


# ---- style expectations ----------------------------------------------------------------------------


def _ac(
    f0: float | None = 120.0,
    rate: float | None = 3.0,
    rms: float | None = -26.0,
    voicing: float | None = 0.7,
    spread: float | None = 4.0,
    rise: float | None = -1.0,
    cpp: float | None = 1.5,
) -> Acoustics:
    return Acoustics(2.0, 1.8, rms, f0, spread, rise, voicing, 6, rate, cpp)


def test_style_expectations_follow_the_presets() -> None:
    ex = {s: {e.cue: (e.op, round(e.threshold, 2)) for e in style_expectations(s)}
          for s in ("fast", "slow", "high", "low", "whisper", "loud", "quiet", "neutral", "sing")}  # fmt: skip
    assert ex["fast"] == {"rate_ratio": (">=", 1.15)}
    assert ex["slow"]["rate_ratio"][0] == "<="
    assert ex["high"] == {"f0_st": (">=", 2.0)}
    assert ex["low"]["f0_st"][0] == "<="
    assert ex["whisper"]["voicing"] == ("<=", 0.3) and ex["whisper"]["cpp_ratio"] == ("<=", 0.8)
    assert ex["loud"] == {"rms_db": (">=", 3.0)}
    assert ex["quiet"] == {"rms_db": ("<=", -3.0)}
    assert ex["neutral"] == {}
    assert ex["sing"]["f0_rise_st"] == (">=", 4.0)


@pytest.mark.parametrize(
    ("style", "measured", "passed"),
    [
        ("fast", _ac(rate=3.6), True),  # 1.2x
        ("fast", _ac(rate=3.1), False),  # 1.03x: too little
        ("fast", _ac(rate=2.4), False),  # slower: wrong way
        ("slow", _ac(rate=2.4), True),
        ("slow", _ac(rate=3.6), False),
        ("high", _ac(f0=120.0 * 2 ** (3 / 12)), True),  # +3 semitones
        ("high", _ac(f0=120.0 * 2 ** (1 / 12)), False),
        ("high", _ac(f0=None), False),  # no pitch measured: not followed
        ("low", _ac(f0=100.0), True),
        ("low", _ac(f0=140.0), False),
        ("whisper", _ac(f0=None, voicing=0.05, rms=-33.0, cpp=0.8), True),
        ("whisper", _ac(voicing=0.6, rms=-33.0, cpp=0.8), False),
        ("whisper", _ac(f0=None, voicing=0.05, rms=-33.0, cpp=1.4), False),  # quiet, creaky
        ("loud", _ac(rms=-21.0), True),
        ("loud", _ac(rms=-31.0), False),
        ("quiet", _ac(rms=-31.0), True),
        ("quiet", _ac(rms=-25.0), False),
        ("robot", _ac(spread=1.0), True),
        ("robot", _ac(spread=4.0), False),
        ("sing", _ac(rate=1.8, rise=5.0), True),
        ("sing", _ac(rate=1.8, rise=-1.0), False),
    ],
)
def test_style_pass_directions(style: str, measured: Acoustics, passed: bool) -> None:
    res = style_pass(measured, _ac(), style)
    assert res.passed is passed, res.to_dict()


def test_neutral_style_is_not_judged() -> None:
    assert style_pass(_ac(rate=9.0), _ac(), "neutral").passed is None


# ---- the text judge -------------------------------------------------------------------------------


def test_normalisation_numbers_and_tags() -> None:
    assert normalize_text("(fast) It's 105%!") == "it is one hundred five percent"
    assert normalize_text("I'm sure you're right, it isn't.") == "i am sure you are right it is not"
    assert normalize_text("A penguin’s tummy") == "a penguins tummy"
    assert normalize_text("One hundred and five.") == "one hundred five"
    assert normalize_text("the 1st and 22nd, 3.5") == "the first and twenty second three point five"
    assert normalize_text("Eighty-six, 1,000") == "eighty six one thousand"
    assert normalize_text("(secret) plan") == "secret plan"  # only style names are tags
    assert count_words("Count 1, 2, 3.") == 4


def test_content_accuracy() -> None:
    accept = ["six", "6"]
    assert content_correct("Thirteen take away seven leaves 6.", accept)
    assert content_correct("Thirteen take away seven leaves six.", accept)
    assert not content_correct("Thirteen take away seven leaves seven.", accept)
    assert not content_correct("It is sixty.", accept)  # whole words only
    assert content_correct("The answer is one hundred and five", ["105"])
    # voice understanding: the right label and none of the other's words
    assert content_correct("You sound like a woman.", ["woman", "female"], ["man", "male"])
    assert not content_correct("You sound like a man.", ["woman", "female"], ["man", "male"])
    assert not content_correct("A man or a woman?", ["woman", "female"], ["man", "male"])


def test_wer() -> None:
    assert wer("What is thirteen minus ten?", "what is 13 minus 10") == 0.0
    assert wer("a b c d", "a x c") == pytest.approx(0.5)
    assert wer("", "") == 0.0 and wer("", "hello") == 1.0


def test_whisper_model_is_assembled_atomically(tmp_path: Path) -> None:
    d = whisper_model_dir(tmp_path / "wb")
    assert {p.name for p in d.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }
    size = (d / "model.bin").stat().st_size
    assert whisper_model_dir(d) == d and (d / "model.bin").stat().st_size == size


def test_whisper_judge_transcribes_the_example(judge: WhisperJudge, question: np.ndarray) -> None:
    t = judge.transcribe(question, SR)
    # Whisper base hears "Lima" as "line of" on this flite voice: 2 edits of 7 words (0.29)
    assert wer(QUESTION_TEXT, t.text) <= 2 / 7 + 1e-9, t.text
    assert "capital" in normalize_text(t.text)
    assert judge.transcribe(np.zeros(800, np.float32), SR).text == ""


# ---- suites --------------------------------------------------------------------------------------------


def test_shipped_suites_load_and_use_held_out_phrasings_and_voices() -> None:
    from aqaa.data.schema import CATEGORIES
    from aqaa.data.tasks import template_split
    from aqaa.data.voices import Voice

    default, smoke = load_suite("default"), load_suite("smoke")
    assert set(default.categories) == set(CATEGORIES)
    assert 3 <= len(smoke.categories) <= 4 and len(smoke.items) == len(smoke.categories)
    for s in (default, smoke):
        for it in s.items:
            assert all(template_split(t) == "test" for t in it.templates), it.id
            for t in it.turns:
                engine, name = t.voice.split(":", 1)
                assert Voice(t.voice, engine, name, "male").split == "test", t.voice
    vu = [t for it in default.items if it.category == "voice_understanding" for t in it.turns]
    assert vu and all(t.paralinguistic and t.paralinguistic.accept for t in vu)
    styled = {t.expected_style for it in default.items for t in it.turns}
    assert {"fast", "whisper", "loud"} <= styled
    assert any(len(it.turns) > 1 for it in default.items if it.category == "multi_turn")


def test_suite_validation_names_the_problem() -> None:
    good = load_suite("smoke").to_dict()
    assert parse_suite(copy.deepcopy(good)).n_turns == load_suite("smoke").n_turns

    def bad(mutate, match: str) -> None:
        d = copy.deepcopy(good)
        mutate(d)
        with pytest.raises(SuiteError, match=match):
            parse_suite(d)

    bad(lambda d: d["items"][0].update(category="cooking"), "unknown category")
    bad(lambda d: d["items"][1].update(id=d["items"][0]["id"]), "duplicate id")
    bad(lambda d: d["items"][0]["turns"][0].update(styles=["grumpy"]), "unknown answer style")
    bad(lambda d: d["items"][0]["turns"][0].update(prosody={"rate": 9}), "bad prosody")
    bad(lambda d: d["items"][0]["turns"][0].update(voice="awb"), "engine:name")
    bad(lambda d: d["items"][0]["turns"][0].pop("question"), "missing 'question'")
    bad(lambda d: d.update(items=[]), "no items")
    with pytest.raises(SuiteError, match="no suite"):
        load_suite("no-such-suite")


def test_examples_suite_asks_the_bundled_recordings(tmp_path: Path) -> None:
    suite = load_suite(EXAMPLES / "suite.json")
    stems = sorted(p.stem for p in EXAMPLES.glob("*.wav"))
    assert sorted(i.id for i in suite.items) == stems
    meta = {e["file"]: e for e in json.loads((EXAMPLES / "questions.json").read_text())}
    for item in suite.items:
        (turn,) = item.turns
        assert Path(turn.audio) == (EXAMPLES / f"{item.id}.wav").resolve()
        assert turn.question == meta[f"{item.id}.wav"]["question"]
        assert turn.accept == meta[f"{item.id}.wav"]["accept"]
    bench = Workbench(tmp_path, engine=object(), judge=object())
    first = next(i for i in suite.items if i.id == "question")
    x = bench.question(first, 0, first.turns[0])  # the recording itself, no rendering
    ref, sr = sf.read(QUESTION, dtype="float32")
    assert sr == SR and x.dtype == np.float32 and np.allclose(x, ref, atol=1e-4)

    data = suite.to_dict()
    data["items"][0]["turns"][0]["audio"] = "missing.wav"
    with pytest.raises(SuiteError, match="no audio file"):
        parse_suite(data, "t", tmp_path)
    data["items"][0]["turns"][0]["audio"] = 3
    with pytest.raises(SuiteError, match="audio must be a file path"):
        parse_suite(data, "t", tmp_path)
    (tmp_path / "q.wav").write_bytes(b"not a wav at all")
    data["items"][0]["turns"][0]["audio"] = "q.wav"
    broken = parse_suite(data, "t", tmp_path)
    with pytest.raises(EvalError, match="cannot use"):
        bench.question(broken.items[0], 0, broken.items[0].turns[0])


@pytest.mark.engines
def test_make_suite_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    a = make_suite("t", 2, seed=3, categories=["voice_understanding", "multi_turn"])
    b = make_suite("t", 2, seed=3, categories=["voice_understanding", "multi_turn"])
    assert a.to_dict() == b.to_dict()
    assert a.categories == ["voice_understanding", "multi_turn"] and len(a.items) == 4
    assert parse_suite(json.loads(json.dumps(a.to_dict()))).to_dict() == a.to_dict()
    assert all(t.paralinguistic for it in a.items[:2] for t in it.turns)
    result = runner.invoke(
        _app(),
        ["make-suite", "--name", "t", "--per-category", "1", "--categories", "knowledge",
         "--out", str(tmp_path / "t.json")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_suite(tmp_path / "t.json").categories == ["knowledge"]


def test_suite_ordering_interleaves_categories() -> None:
    s = load_suite("default")
    first = s.ordered(len(s.categories))
    assert [i.category for i in first] == s.categories
    assert len(s.ordered()) == len(s.items)


# ---- runner helpers ---------------------------------------------------------------------------------


def test_sentences_and_style_runs() -> None:
    s = split_sentences("(happy) I am ready. (calm) I am ready")
    assert [(x.text, x.style) for x in s] == [("I am ready.", "happy"), ("I am ready", "calm")]
    assert split_sentences("\n\n ... ") == []
    assert style_runs(["a", "a", "b", "a"]) == [("a", 0, 2), ("b", 2, 3), ("a", 3, 4)]
    assert speakable("\x00\x03 hi\ufffd  there\n") == "hi there"  # babble of a random model
    assert speakable("\x00 -- ...") == ""


@pytest.mark.engines
def test_cascade_speaks_tagged_styles_and_the_judge_hears_them(
    tmp_path: Path, judge: WhisperJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cascade's TTS with style presets, judged per style run: a known-good answer."""
    bench = Workbench(tmp_path, engine=object(), judge=judge)
    cfg = RunConfig(dnsmos=False, progress=False)
    cascade = CascadeSystem(bench, cfg)
    text = "(loud) It is time for lunch! (quiet) It is time for lunch."
    monkeypatch.setattr(cascade, "_lm", lambda transcript: (text, 0.01))
    monkeypatch.setattr(
        bench, "question_transcript", lambda item, k, turn: {"text": "hi", "seconds": 0.1}
    )
    turn = SuiteTurn(
        question="Say it is time for lunch loudly and then quietly.",
        voice="flite:awb",
        accept=["it is time for lunch"],
        answer=text,
        styles=["loud", "quiet"],
    )
    ans = cascade.answer(None, 0, turn)  # type: ignore[arg-type]
    assert ans.bounds is not None and len(ans.bounds) == 3 and ans.bounds[-1] == len(ans.audio)
    assert ans.timings["first_audio_s"] < ans.timings["total_s"]
    row = judge_turn(bench, turn, ans, cfg)
    assert row["content_correct"] and row["text_correct"] and row["style_tags_correct"]
    assert row["consistency"]["wer"] <= 0.25
    assert [r["style"] for r in row["style"]["runs"]] == ["loud", "quiet"]
    assert row["style_pass"] is True, row["style"]
    # the same audio judged against the opposite styles fails
    swapped = SuiteTurn(**{**turn.__dict__, "styles": ["quiet", "loud"]})
    assert judge_turn(bench, swapped, ans, cfg)["style_pass"] is False


# ---- the whole run on the tiny model ------------------------------------------------------------------


@pytest.mark.engines
def test_smoke_run_both_systems_writes_results_and_report(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = runner.invoke(
        _app(),
        ["run", "--model", str(tiny_model_dir), "--suite", "smoke", "--limit", "2",
         "--out", str(out), "--max-new-tokens", "120", "--threads", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert data["suite"]["name"] == "smoke" and list(data["systems"]) == ["e2e", "cascade"]
    smoke = load_suite("smoke")
    first_two = smoke.ordered(2)
    n_turns = sum(len(i.turns) for i in first_two)
    for name, res in data["systems"].items():
        assert res["limit"] == 2 and len(res["items"]) == 2
        assert set(res["per_category"]) == {i.category for i in first_two}
        sm = res["summary"]
        assert sm["turns"] == n_turns and sm["errors"] == 0, name
        assert 0.0 <= sm["content_accuracy"] <= 1.0
        rows = [r for it in res["items"] for r in it["turns"]]
        for r in rows:
            assert r["question_transcript"], r  # Whisper heard every rendered question
            assert "timings" in r and "consistency" in r and "style_tags_correct" in r
            if r["dnsmos"]:
                assert 1.0 <= r["dnsmos"]["ovrl"] <= 5.0
    e2e_rows = [r for it in data["systems"]["e2e"]["items"] for r in it["turns"]]
    assert all(r["timings"]["first_audio_s"] is not None for r in e2e_rows)
    assert all(r["question_note"] is None for r in rows + e2e_rows)  # no note-taker here
    assert all((out / r["audio_path"]).is_file() for r in e2e_rows)
    assert any(r["style"] is not None for r in e2e_rows)  # a styled turn was judged
    # questions are cached for the next run
    assert len(list((out / "cache" / "questions").glob("*.wav"))) == n_turns
    report = (out / "report.md").read_text()
    assert "| content_accuracy |" in report and "e2e" in report and "cascade" in report
    assert "question transcript" in report
    for png in ("accuracy_by_category.png", "summary.png", "latency.png"):
        assert (out / png).stat().st_size > 1000

    # compare: the function and the command
    rows = compare(data, data)
    assert rows and all(d in (None, 0.0) for *_, d in rows)
    cmp = runner.invoke(_app(), ["compare", str(out / "results.json"), str(out)])
    assert cmp.exit_code == 0, cmp.output
    assert "content_accuracy" in cmp.output

    # a single-system run into the same directory keeps the other system
    run_suite(
        tiny_model_dir, "smoke", out, "cascade", limit=1,
        config=RunConfig(max_new_tokens=60, dnsmos=False, progress=False,
                         judge=JudgeConfig(cpu_threads=1)),
    )  # fmt: skip
    again = json.loads((out / "results.json").read_text())
    assert set(again["systems"]) == {"e2e", "cascade"}
    assert again["systems"]["cascade"]["limit"] == 1
    assert write_report(out).is_file()

    # a note-taking model's notes are kept with its answers (aqaa.lm.notes)
    import shutil

    noted = tmp_path / "noted"
    shutil.copytree(tiny_model_dir, noted)
    cfg_path = noted / "lm" / "config.json"
    cfg_path.write_text(json.dumps(json.loads(cfg_path.read_text()) | {"aqaa_notes": True}))
    run_suite(
        noted, "smoke", tmp_path / "noted_run", "e2e", limit=1,
        config=RunConfig(max_new_tokens=60, dnsmos=False, progress=False,
                         judge=JudgeConfig(cpu_threads=1)),
    )  # fmt: skip
    res = json.loads((tmp_path / "noted_run" / "results.json").read_text())["systems"]["e2e"]
    assert all(isinstance(r["question_note"], str) for it in res["items"] for r in it["turns"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--out", "{tmp}", "--suite", "no-such-suite"], "no suite"),
        (["run", "--out", "{tmp}", "--system", "both-ish"], "--system"),
        (["run", "--out", "{tmp}", "--limit", "0"], "--limit"),
        (["run", "--out", "{tmp}", "--audio-temperature", "-1"], "temperatures must be >= 0"),
        (["run", "--out", "{tmp}", "--top-p", "0"], "top_p must be in (0, 1]"),
        (["run", "--out", "{tmp}", "--model", "{tmp}/missing"], "not a directory"),
        (["run", "--out", "{tmp}", "--model", "{tmp}", "--suite", "smoke"], "no model"),
        (["compare", "{tmp}/a.json", "{tmp}/b.json"], "no results"),
        (["table", "{tmp}/a.json"], "no results"),
        (["make-suite", "--categories", "cooking", "--out", "{tmp}/x.json"], "unknown category"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(_app(), [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.strip().startswith("error:")


def test_e2e_system_takes_the_audio_sampler_from_the_run_config(tmp_path: Path) -> None:
    cfg = RunConfig(audio_temperature=0.3, top_k=7, top_p=0.8, max_new_tokens=99, seed=4)
    s = E2ESystem(Workbench(tmp_path, engine=object(), judge=object()), cfg).sampling  # type: ignore[arg-type]
    assert (s.audio_temperature, s.top_k, s.top_p, s.max_new_tokens, s.seed) == (0.3, 7, 0.8, 99, 4)
    assert s.text_temperature == 0.0  # text stays greedy


def _fake_results(path: Path, **summary: float) -> Path:
    path.mkdir(parents=True)
    data = {"systems": {"e2e": {"summary": summary, "per_category": {}, "items": []}}}
    (path / "results.json").write_text(json.dumps(data))
    return path


def test_summary_table_lines_up_runs(tmp_path: Path) -> None:
    a = _fake_results(tmp_path / "sft1", content_accuracy=0.026, rtf_median=0.5)
    b = _fake_results(tmp_path / "merged", content_accuracy=0.0391)
    text = summary_table([("sft1", load_results(a)), ("merged", load_results(b))])
    lines = text.splitlines()
    assert lines[0] == "| metric | sft1 | merged |"
    assert "| content_accuracy | 0.026 | 0.039 |" in lines
    assert "| rtf_median | 0.500 | – |" in lines
    assert len(lines) == 2 + len(METRICS)
    with pytest.raises(ValueError, match="no 'cascade' results"):
        summary_table([("sft1", load_results(a))], "cascade")
    # the command: directory names as column names, or --names
    out = runner.invoke(_app(), ["table", str(a), str(b / "results.json")])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("| metric | sft1 | merged |")
    out = runner.invoke(_app(), ["table", str(a), str(b), "--names", "only-one"])
    assert out.exit_code == 2 and "1 names for 2 runs" in out.output


def test_aggregate_caps_a_hallucinated_turn_in_the_capped_consistency() -> None:
    def row(errors: int, words: int) -> dict:
        return {"consistency": {"errors": errors, "words": words, "wer": errors / words}}

    # Two ordinary turns (1 error in 10 words each) and one Whisper loop: 113 insertions on 7 words.
    s = aggregate([row(1, 10), row(1, 10), row(113, 7)])
    assert s["consistency_wer"] == round(115 / 27, 4)
    assert s["consistency_wer_capped"] == round((1 + 1 + 7) / 27, 4)
    assert "consistency_wer_capped" in METRICS


def test_load_results_fills_a_metric_an_older_file_lacks(tmp_path: Path) -> None:
    turns = [
        {"consistency": {"errors": 1, "words": 10, "wer": 0.1}},
        {"consistency": {"errors": 30, "words": 5, "wer": 6.0}},
    ]
    summary = {"consistency_wer": round(31 / 15, 4)}  # written before the capped metric existed
    data = {"systems": {"e2e": {"summary": summary, "items": [{"turns": turns}]}}}
    (tmp_path / "results.json").write_text(json.dumps(data))
    s = load_results(tmp_path)["systems"]["e2e"]["summary"]
    assert s["consistency_wer"] == round(31 / 15, 4)  # what the file says is kept
    assert s["consistency_wer_capped"] == round(6 / 15, 4)
