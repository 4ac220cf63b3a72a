"""Run a suite through a system, judge every answer, write `results.json`.

Systems:

- **e2e**: the end-to-end `Engine` (spoken question → text + speech). Multi-turn dialogues share
  one `Session`, so follow-ups hear the history the way a user's conversation would.
- **cascade**: the baseline of design §4. Whisper base transcribes the question → the *same* LM
  answers in text mode (`respond(..., mode="text")`, history as typed turns) → piper speaks the
  answer in the assistant voice (`piper:joe`). With `cascade_styles` (default) each sentence is
  spoken with the prosody preset of its `(style)` tag, exactly as the training targets were made:
  the strongest simple cascade. It cannot hear the asker's voice.

Latency: the e2e numbers are the engine's (`Timings`, from the end of the question; the question
is tokenized while it is heard). The cascade's time to first audio is ASR of the whole question +
the whole text answer + TTS of its first sentence (sentence-streaming TTS); its total adds the
rest of the TTS. RTF = total / seconds of speech produced.

Judging (every turn): Whisper transcribes the spoken answer; content accuracy (transcript holds an
accepted answer), text accuracy (the same on the text channel), text–speech consistency (WER of
the text channel against the transcript), voice understanding (the right label, none of the
other), style following (`aqaa.eval.acoustics.style_pass` against piper's neutral rendering of
the same words; for an answer whose sentences change style, each run of same-style sentences is
judged on its own stretch of audio), style tags (the text channel plans the expected styles),
DNSMOS, latency.

Outputs in `out/`: `results.json` (every system run into this directory, every number: per turn,
per item, per category, summary), `<system>/audio/` (the answers), `cache/` (rendered questions,
their transcripts and neutral references, shared between systems and runs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf

from aqaa.audio import AudioError, load_audio, save_audio
from aqaa.data.schema import Sentence
from aqaa.data.styles import STYLES, Prosody, style_prosody
from aqaa.eval.acoustics import Acoustics, dnsmos, measure, style_pass
from aqaa.eval.judge import (
    JudgeConfig,
    JudgeError,
    WhisperJudge,
    content_correct,
    word_error_counts,
)
from aqaa.eval.suite import QUESTION_RATE, Suite, SuiteItem, SuiteTurn, load_suite, render_question

log = logging.getLogger(__name__)

System = Literal["e2e", "cascade"]
SYSTEMS: tuple[str, ...] = ("e2e", "cascade")
RESULTS_FILE = "results.json"
RESULTS_VERSION = 1
ASSISTANT_RATE = 24000


@dataclass
class RunConfig:
    """How a suite is run (the model and suite are arguments of `run_suite`)."""

    #: Cap on generated tokens per answer (≈ 13 s of speech; the longest reference answer of the
    #: default suite is 9 s): bounds the time a model that never stops can take.
    max_new_tokens: int = 600
    seed: int = 0
    #: The e2e audio channel's sampler (text stays greedy); defaults as `SamplingConfig`'s.
    audio_temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    #: DNSMOS costs ~1 s per answer on 2 cores; off for quick runs.
    dnsmos: bool = True
    #: The cascade's TTS speaks each tagged sentence in its style preset (see module doc).
    cascade_styles: bool = True
    #: Keep every answer's audio under `out/<system>/audio/`.
    save_answers: bool = True
    progress: bool = True
    judge: JudgeConfig = field(default_factory=JudgeConfig)


@dataclass
class SystemAnswer:
    """One answer of either system, in the shape the judge reads."""

    text: str  # the text channel, style tags included
    sentences: list[Sentence]
    audio: np.ndarray
    sample_rate: int
    #: Sample offsets of the sentences' audio (len(sentences) + 1), when known.
    bounds: list[int] | None
    timings: dict[str, Any]
    #: What a note-taking e2e model wrote that it heard (`aqaa.lm.notes`); None otherwise.
    note: str | None = None

    @property
    def plain_text(self) -> str:
        return " ".join(s.text for s in self.sentences)


class EvalError(RuntimeError):
    """The evaluation cannot run (a voice of the suite is missing, an unwritable directory)."""


# ---- text helpers ---------------------------------------------------------------------------------

_TAG = re.compile(r"^\((\w+)\)\s*")


def split_sentences(text: str) -> list[Sentence]:
    """Tagged text → sentences with styles; unlike `parse_tagged`, a last sentence without final
    punctuation is kept (a model's text may stop anywhere) and unknown tags stay as text."""
    out = []
    for part in re.findall(r"[^.!?]+(?:[.!?]+|$)", text):
        p = part.strip()
        style = "neutral"
        m = _TAG.match(p)
        if m and m.group(1) in STYLES:
            style, p = m.group(1), p[m.end() :].strip()
        if p and re.search(r"\w", p):
            out.append(Sentence(p, style))
    return out


#: Longest text the judge has rendered as a neutral reference (a babbling model's text is cut).
MAX_REFERENCE_CHARS = 400


def speakable(text: str) -> str:
    """`text` without control or replacement characters, spaces collapsed ("" when nothing in
    it can be said): what a TTS engine may be given."""
    clean = "".join(ch if ch.isprintable() and ch != "\ufffd" else " " for ch in text)
    clean = " ".join(clean.split())
    return clean if re.search(r"[A-Za-z0-9]", clean) else ""


def style_runs(styles: list[str]) -> list[tuple[str, int, int]]:
    """Consecutive sentences of one style: [(style, first, end)]."""
    runs: list[tuple[str, int, int]] = []
    for i, s in enumerate(styles):
        if runs and runs[-1][0] == s:
            runs[-1] = (s, runs[-1][1], i + 1)
        else:
            runs.append((s, i, i + 1))
    return runs


def _hash(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    x, sr = sf.read(path, dtype="float32", always_2d=False)
    return np.asarray(x, np.float32).reshape(-1), int(sr)


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---- shared resources and caches ------------------------------------------------------------------


class Workbench:
    """What both systems share: the engine (LM for the cascade), the judge, the voice bank and
    the caches in `out/cache/` (questions, their transcripts, neutral references)."""

    def __init__(
        self,
        out: Path,
        engine: Any = None,
        judge: WhisperJudge | None = None,
        model_dir: Any = None,
    ) -> None:
        self.out = Path(out)
        self.cache = self.out / "cache"
        self._engine = engine
        self.model_dir = model_dir
        self.judge = judge or WhisperJudge()
        self._bank = None

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from aqaa.engine import Engine

            self._engine = Engine.load(self.model_dir)
        return self._engine

    @property
    def bank(self) -> Any:
        if self._bank is None:
            from aqaa.data.voices import VoiceBank

            self._bank = VoiceBank.discover()
        return self._bank

    # questions ------------------------------------------------------------------------------------

    def _question_path(self, item: SuiteItem, k: int, turn: SuiteTurn) -> Path:
        recorded = (turn.audio,) if turn.audio is not None else ()
        key = _hash(turn.question, turn.voice, turn.prosody, turn.target_f0, *recorded)
        return self.cache / "questions" / f"{item.id}_t{k}_{key}.wav"

    def question(self, item: SuiteItem, k: int, turn: SuiteTurn) -> np.ndarray:
        """The rendered question (16 kHz), from the cache or rendered now and cached; or the
        turn's recording (`audio`), resampled."""
        if turn.audio is not None:
            try:
                return load_audio(turn.audio, target_rate=QUESTION_RATE, normalize=False)
            except (AudioError, OSError) as e:
                raise EvalError(f"{item.id}: cannot use {turn.audio}: {e}") from None
        path = self._question_path(item, k, turn)
        if path.is_file():
            return _read_wav(path)[0]
        if turn.voice not in self.bank:
            raise EvalError(
                f"{item.id}: voice {turn.voice!r} is not installed here "
                "(apt-get install espeak-ng flite festival festvox-us-slt-hts; pip install "
                "'aqaa[data]')"
            )
        x = render_question(self.bank, turn)
        save_audio(path, x, QUESTION_RATE)
        return _read_wav(path)[0]  # exactly what a rerun will read

    def question_transcript(self, item: SuiteItem, k: int, turn: SuiteTurn) -> dict[str, Any]:
        """Whisper's transcript of the question and its wall time (cached with the audio)."""
        path = self._question_path(item, k, turn).with_suffix(".json")
        if path.is_file():
            return json.loads(path.read_text())
        t = self.judge.transcribe(self.question(item, k, turn), QUESTION_RATE)
        rec = {"text": t.text, "seconds": round(t.seconds, 4)}
        _write_json(path, rec)
        return rec

    def neutral_reference(self, text: str) -> tuple[np.ndarray, str]:
        """piper joe's neutral rendering of `text` at 24 kHz (the voice the vocoder learned) and
        Whisper's transcript of it: the rate of both clips is counted from a transcript, so the
        judge's misses cancel rather than bias the ratio."""
        from aqaa.data.voices import ASSISTANT_VOICE

        text = speakable(text)[:MAX_REFERENCE_CHARS]
        if not text:
            raise ValueError("nothing speakable in the text")
        path = self.cache / "neutral" / f"{_hash(text)}.wav"
        meta = path.with_suffix(".json")
        if not path.is_file():
            x = self.bank.render(text, ASSISTANT_VOICE, Prosody(), sample_rate=ASSISTANT_RATE)
            save_audio(path, x, ASSISTANT_RATE)
        x = _read_wav(path)[0]
        if meta.is_file():
            return x, json.loads(meta.read_text())["transcript"]
        transcript = self.judge.transcribe(x, ASSISTANT_RATE).text
        _write_json(meta, {"text": text, "transcript": transcript})
        return x, transcript


# ---- the two systems ---------------------------------------------------------------------------------


class E2ESystem:
    """The end-to-end engine; one `Session` per dialogue."""

    name = "e2e"

    def __init__(self, bench: Workbench, cfg: RunConfig) -> None:
        from aqaa.engine import SamplingConfig

        self.bench = bench
        self.sampling = SamplingConfig(
            audio_temperature=cfg.audio_temperature,
            top_k=cfg.top_k,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens,
            seed=cfg.seed,
        )
        self.session: Any = None

    def start_dialogue(self) -> None:
        from aqaa.engine import Session

        self.session = Session()

    def answer(self, item: SuiteItem, k: int, turn: SuiteTurn) -> SystemAnswer:
        q = self.bench.question(item, k, turn)
        a = self.bench.engine.answer(q, QUESTION_RATE, session=self.session, sampling=self.sampling)
        sentences = list(a.parsed.sentences) or split_sentences(a.text)
        bounds = None
        lens = [len(c) for c in a.parsed.clips]
        if len(a.audio) and lens and len(lens) == len(sentences) and sum(lens) > 0:
            # the vocoder's output is time-aligned with its codes: split in proportion
            cum = np.concatenate([[0], np.cumsum(lens)]) / sum(lens)
            bounds = [round(float(f) * len(a.audio)) for f in cum]
        return SystemAnswer(
            a.text, sentences, a.audio, a.sample_rate, bounds, a.timings.as_dict(), a.note
        )


class CascadeSystem:
    """Whisper → the same LM in text mode → piper (`piper:joe`)."""

    name = "cascade"

    def __init__(self, bench: Workbench, cfg: RunConfig) -> None:
        self.bench = bench
        self.cfg = cfg
        self.history: list[Any] = []

    def start_dialogue(self) -> None:
        self.history = []

    def _lm(self, transcript: str) -> tuple[str, float]:
        from aqaa.lm.decode import respond
        from aqaa.lm.format import ChatTurn

        eng = self.bench.engine
        while True:
            turns = [*self.history, ChatTurn(human_text=transcript)]
            try:
                parsed, res = respond(
                    eng.decoder, eng.vocab, turns, mode="text",
                    max_new_tokens=self.cfg.max_new_tokens, temperature=0.0, seed=self.cfg.seed,
                )  # fmt: skip
                break
            except ValueError:
                if not self.history:
                    raise
                self.history.pop(0)  # context full: drop the oldest exchange
        self.history.append(ChatTurn(human_text=transcript, answer_text=parsed.text))
        return parsed.text, res.seconds

    def answer(self, item: SuiteItem, k: int, turn: SuiteTurn) -> SystemAnswer:
        from aqaa.data.voices import ASSISTANT_VOICE
        from aqaa.data.voices import EngineError as TTSError

        asr = self.bench.question_transcript(item, k, turn)
        text, lm_s = self._lm(asr["text"]) if asr["text"].strip() else ("", 0.0)
        sentences = split_sentences(text)
        pieces: list[np.ndarray] = []
        tts_first = None
        t0 = time.perf_counter()
        spoken: list[Sentence] = []
        for s in sentences:
            p = style_prosody(s.style) if self.cfg.cascade_styles else Prosody()
            say = speakable(s.text)
            try:
                if not say:
                    raise TTSError("nothing speakable")
                x = self.bench.bank.render(say, ASSISTANT_VOICE, p, sample_rate=ASSISTANT_RATE)
            except (TTSError, ValueError) as e:  # a "sentence" of symbols piper cannot say
                log.info("cascade TTS skipped %r: %s", s.text, e)
                continue
            pieces.append(x)
            spoken.append(s)
            if tts_first is None:
                tts_first = time.perf_counter() - t0
        tts_s = time.perf_counter() - t0
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        bounds = [0, *np.cumsum([len(p) for p in pieces]).tolist()] if pieces else None
        audio_s = len(audio) / ASSISTANT_RATE
        pre = asr["seconds"] + lm_s
        total = pre + tts_s
        timings = {
            "asr_s": asr["seconds"],
            "lm_s": lm_s,
            "tts_s": tts_s,
            "first_audio_s": pre + tts_first if tts_first is not None else None,
            "total_s": total,
            "audio_s": audio_s,
            "rtf": total / audio_s if audio_s > 0 else None,
        }
        return SystemAnswer(text, spoken, audio, ASSISTANT_RATE, bounds, timings)


# ---- judging ------------------------------------------------------------------------------------------


def judge_turn(
    bench: Workbench, turn: SuiteTurn, ans: SystemAnswer, cfg: RunConfig
) -> dict[str, Any]:
    """Every metric of one answer (see the module docstring)."""
    judge = bench.judge
    tr = judge.transcribe(ans.audio, ans.sample_rate) if len(ans.audio) else None
    transcript = tr.text if tr else ""
    para = turn.paralinguistic
    reject = para.reject if para else None
    row: dict[str, Any] = {
        "question_note": ans.note,
        "answer_text": ans.text,
        "answer_transcript": transcript,
        "answer_styles": [s.style for s in ans.sentences],
        "audio_s": round(len(ans.audio) / ans.sample_rate, 3),
        "content_correct": content_correct(transcript, turn.accept, reject)
        if turn.accept
        else None,
        "text_correct": content_correct(ans.text, turn.accept, reject) if turn.accept else None,
        "paralinguistic_correct": (
            content_correct(transcript, para.accept, para.reject) if para else None
        ),
    }
    errors, n = word_error_counts(ans.plain_text, transcript)
    row["consistency"] = {"errors": errors, "words": n, "wer": errors / n if n else None}
    expected = [s for s, _, _ in style_runs(turn.styles)]
    got = [s for s, _, _ in style_runs([s.style for s in ans.sentences] or ["neutral"])]
    row["style_tags_correct"] = expected == got
    row["style"] = judge_style(bench, turn, ans, transcript)
    row["style_pass"] = row["style"]["passed"] if row["style"] else None
    row["dnsmos"] = dnsmos(ans.audio, ans.sample_rate) if cfg.dnsmos and len(ans.audio) else None
    row["timings"] = {
        k: (round(v, 4) if isinstance(v, float) else v) for k, v in ans.timings.items()
    }
    return row


def judge_style(
    bench: Workbench, turn: SuiteTurn, ans: SystemAnswer, transcript: str
) -> dict[str, Any] | None:
    """Style following of an answer whose expected styles are not all neutral (else None)."""
    from aqaa.data.voices import EngineError as TTSError

    runs = style_runs(turn.styles)
    if all(s == "neutral" for s, _, _ in runs):
        return None
    expected_sentences = split_sentences(turn.answer)
    if len(expected_sentences) != len(turn.styles):
        expected_sentences = [Sentence(turn.answer or "...", s) for s in turn.styles]
    segments: list[tuple[str, np.ndarray, str | None, str]] = []
    reason = None
    if not len(ans.audio):
        reason = "no audio"
    elif len(runs) == 1:
        segments.append((runs[0][0], ans.audio, transcript, ans.plain_text))
    elif ans.bounds is not None and len(ans.sentences) == len(turn.styles):
        for style, i0, i1 in runs:
            seg = ans.audio[ans.bounds[i0] : ans.bounds[i1]]
            text = " ".join(s.text for s in ans.sentences[i0:i1])
            segments.append((style, seg, None, text))
    else:
        reason = (
            f"{len(ans.sentences)} answer sentences for {len(turn.styles)} expected styles: "
            "cannot align the style changes"
        )
    if reason:
        return {"passed": False, "reason": reason, "runs": []}
    out_runs = []
    for j, (style, seg, seg_tr, text) in enumerate(segments):
        if style == "neutral":
            continue
        i0, i1 = runs[j][1], runs[j][2]
        ref_text = speakable(text) or " ".join(s.text for s in expected_sentences[i0:i1])
        if seg_tr is None:
            seg_tr = bench.judge.transcribe(seg, ans.sample_rate).text if len(seg) else ""
        m = measure(seg, ans.sample_rate, transcript=seg_tr)
        try:
            ref, ref_tr = bench.neutral_reference(ref_text)
        except (TTSError, ValueError):  # the model's text cannot be said: use the expected words
            ref_text = " ".join(s.text for s in expected_sentences[i0:i1])
            ref, ref_tr = bench.neutral_reference(ref_text)
        n: Acoustics = measure(ref, ASSISTANT_RATE, transcript=ref_tr)
        res = style_pass(m, n, style)
        out_runs.append(
            {
                "style": style,
                "text": ref_text,
                "transcript": seg_tr,
                "measured": m.to_dict(),
                "neutral": n.to_dict(),
                **res.to_dict(),
            }
        )
    return {"passed": all(r["passed"] for r in out_runs), "reason": None, "runs": out_runs}


# ---- aggregation ------------------------------------------------------------------------------------


def _mean(xs: list[Any]) -> float | None:
    v = [float(x) for x in xs if x is not None]
    return round(sum(v) / len(v), 4) if v else None


def _median(xs: list[Any]) -> float | None:
    v = [float(x) for x in xs if x is not None]
    return round(float(np.median(v)), 4) if v else None


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over turns (None where nothing was judged); WER pooled over words.

    `consistency_wer_capped` pools the same errors with each turn's count capped at its word count:
    one Whisper hallucination loop on a short clip ("17,000,000,000,…", 113 inserted words in
    session 19) can otherwise outweigh every other turn of the suite.
    """
    ok = [r for r in rows if not r.get("error")]
    words = sum(r["consistency"]["words"] for r in ok)
    errors = sum(r["consistency"]["errors"] for r in ok)
    capped = sum(min(r["consistency"]["errors"], r["consistency"]["words"]) for r in ok)

    def field_(name: str) -> list[Any]:
        return [r.get(name) for r in rows]

    dns = [r.get("dnsmos") or {} for r in ok]
    tim = [r.get("timings") or {} for r in ok]
    return {
        "turns": len(rows),
        "errors": len(rows) - len(ok),
        "content_accuracy": _mean(field_("content_correct")),
        "text_accuracy": _mean(field_("text_correct")),
        "consistency_wer": round(errors / words, 4) if words else None,
        "consistency_wer_capped": round(capped / words, 4) if words else None,
        "style_accuracy": _mean(field_("style_pass")),
        "style_tag_accuracy": _mean([r.get("style_tags_correct") for r in ok]),
        "paralinguistic_accuracy": _mean(field_("paralinguistic_correct")),
        "dnsmos_ovrl": _mean([d.get("ovrl") for d in dns]),
        "dnsmos_p808": _mean([d.get("p808") for d in dns]),
        "first_audio_s": _mean([t.get("first_audio_s") for t in tim]),
        "first_audio_median_s": _median([t.get("first_audio_s") for t in tim]),
        "rtf_median": _median([t.get("rtf") for t in tim]),
        "audio_s": _mean([r.get("audio_s") for r in ok]),
    }


#: Summary metrics, in report order, with how to read them.
METRICS: dict[str, str] = {
    "content_accuracy": "share of answers whose transcript holds an accepted answer (↑)",
    "text_accuracy": "the same on the text channel (↑)",
    "consistency_wer": "WER of the text channel against the transcript of the speech (↓)",
    "consistency_wer_capped": "the same with each turn's errors capped at its words (↓)",
    "style_accuracy": "styled answers whose prosody moved the right way by enough (↑)",
    "style_tag_accuracy": "answers whose text planned the expected styles (↑)",
    "paralinguistic_accuracy": "voice-understanding answers naming the right label (↑)",
    "dialogue_accuracy": "dialogues with every judged turn right (↑)",
    "dnsmos_ovrl": "DNSMOS P.835 overall quality, 1–5 (↑)",
    "dnsmos_p808": "DNSMOS P.808 quality, 1–5 (↑)",
    "first_audio_s": "mean seconds from the end of the question to the first audio (↓)",
    "first_audio_median_s": "median of the same (↓)",
    "rtf_median": "median generation time over speech duration (↓)",
}


# ---- running ------------------------------------------------------------------------------------------


def _system(name: str, bench: Workbench, cfg: RunConfig) -> E2ESystem | CascadeSystem:
    if name == "e2e":
        return E2ESystem(bench, cfg)
    if name == "cascade":
        return CascadeSystem(bench, cfg)
    raise ValueError(f"unknown system {name!r}: use one of {', '.join(SYSTEMS)}")


def run_suite(
    model_dir: str | Path | None,
    suite: Suite | str | Path,
    out: str | Path,
    system: System | str = "e2e",
    limit: int | None = None,
    config: RunConfig | None = None,
    bench: Workbench | None = None,
) -> dict[str, Any]:
    """Run `suite` (a `Suite`, a shipped name or a path) through `system`, judge every answer and
    merge the system's results into `out/results.json`. `limit` keeps the first N items
    (interleaved over categories). Returns the system's results. Pass a `Workbench` to share the
    loaded engine, judge and caches between calls."""
    from tqdm import tqdm

    cfg = config or RunConfig()
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    s = suite if isinstance(suite, Suite) else load_suite(suite)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bench = bench or Workbench(out, judge=WhisperJudge(cfg.judge), model_dir=model_dir)
    sysm = _system(str(system), bench, cfg)
    items = s.ordered(limit)
    bench.engine  # load now: a missing model fails before any work  # noqa: B018
    t0 = time.perf_counter()
    item_results = []
    n_turns = sum(len(i.turns) for i in items)
    with tqdm(total=n_turns, desc=f"{sysm.name:>7}", unit="turn", disable=not cfg.progress) as bar:
        for item in items:
            sysm.start_dialogue()
            rows = []
            for k, turn in enumerate(item.turns):
                bar.set_postfix_str(item.id, refresh=False)
                rows.append(_run_turn(bench, sysm, item, k, turn, cfg, out))
                bar.update(1)
            judged = [r["content_correct"] for r in rows if r.get("content_correct") is not None]
            item_results.append(
                {
                    "id": item.id,
                    "category": item.category,
                    "intent": item.intent,
                    "all_correct": all(judged) if judged else None,
                    "turns": rows,
                }
            )
    wall = time.perf_counter() - t0
    result = _summarise(s, sysm.name, item_results, cfg, limit, wall, model_dir)
    _merge_results(out / RESULTS_FILE, s, result)
    return result


def _run_turn(
    bench: Workbench,
    sysm: E2ESystem | CascadeSystem,
    item: SuiteItem,
    k: int,
    turn: SuiteTurn,
    cfg: RunConfig,
    out: Path,
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "item": item.id,
        "turn": k,
        "category": item.category,
        "question": turn.question,
        "voice": turn.voice,
        "human_style": turn.human_style,
        "expected_answer": turn.answer,
        "expected_styles": turn.styles,
        "accept": turn.accept,
        "paralinguistic": asdict(turn.paralinguistic) if turn.paralinguistic else None,
    }
    try:
        base["question_transcript"] = bench.question_transcript(item, k, turn)["text"]
        ans = sysm.answer(item, k, turn)
    except (EvalError, JudgeError):  # the run itself cannot go on
        raise
    except Exception as e:  # one failing answer must not end a 20-minute run
        log.warning("%s %s turn %d failed: %s", sysm.name, item.id, k, e)
        return {**base, "error": f"{type(e).__name__}: {e}", "content_correct": False}
    if cfg.save_answers and len(ans.audio):
        rel = Path(sysm.name) / "audio" / f"{item.id}_t{k}.wav"
        save_audio(out / rel, ans.audio, ans.sample_rate)
        base["audio_path"] = str(rel)
    return {**base, **judge_turn(bench, turn, ans, cfg), "error": None}


def _summarise(
    s: Suite,
    system: str,
    items: list[dict[str, Any]],
    cfg: RunConfig,
    limit: int | None,
    wall: float,
    model_dir: Any,
) -> dict[str, Any]:
    rows = [r for it in items for r in it["turns"]]
    per_cat: dict[str, Any] = {}
    for c in dict.fromkeys(r["category"] for r in rows):
        per_cat[c] = aggregate([r for r in rows if r["category"] == c])
        dl = [it["all_correct"] for it in items if it["category"] == c]
        per_cat[c]["dialogue_accuracy"] = _mean(dl)
    summary = aggregate(rows)
    summary["items"] = len(items)
    summary["dialogue_accuracy"] = _mean([it["all_correct"] for it in items])
    summary["wall_s"] = round(wall, 1)
    cfg_d = asdict(cfg)
    cfg_d["judge"]["model_dir"] = str(cfg.judge.model_dir) if cfg.judge.model_dir else None
    return {
        "system": system,
        "model": str(model_dir) if model_dir is not None else "shipped",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "limit": limit,
        "config": cfg_d,
        "summary": summary,
        "per_category": per_cat,
        "items": items,
    }


def _merge_results(path: Path, s: Suite, result: dict[str, Any]) -> None:
    """Add (or replace) one system's results in `path`; results of another suite are dropped."""
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            data = {}
    if data.get("version") != RESULTS_VERSION or data.get("suite", {}).get("name") != s.name:
        data = {}
    systems = dict(data.get("systems", {}))
    systems[result["system"]] = result
    data = {
        "version": RESULTS_VERSION,
        "suite": {"name": s.name, "items": len(s.items), "turns": s.n_turns},
        "systems": {k: systems[k] for k in SYSTEMS if k in systems},
    }
    _write_json(path, data)


def load_results(path: str | Path) -> dict[str, Any]:
    """A results file (or the `results.json` inside a run directory)."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no results at {p}: run `aqaa eval run --out DIR` first") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not a results file: {e}") from None
    if not isinstance(data, dict) or "systems" not in data:
        raise ValueError(f"{p} is not an aqaa eval results file")
    for result in data["systems"].values():
        _fill_new_metrics(result)
    return data


def _fill_new_metrics(result: dict[str, Any]) -> None:
    """Add summary metrics that a file written before they existed lacks, from its own turns."""
    summary = result.get("summary")
    items = result.get("items")
    if not isinstance(summary, dict) or not isinstance(items, list):
        return
    missing = [m for m in METRICS if m not in summary]
    if missing:
        fresh = aggregate([r for it in items for r in it.get("turns", [])])
        summary.update({m: fresh[m] for m in missing if m in fresh})
