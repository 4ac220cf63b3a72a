"""Evaluation suites: spoken test dialogues as data files.

A suite is a JSON file, `aqaa/eval/suites/<name>.json` (or any path), holding text metadata only;
the questions are rendered at run time (and cached in the run's output directory). New suites need
no code: write the JSON by hand or with `aqaa eval make-suite`.

    {"name": "default", "version": 1, "description": "...", "generator": {...},
     "items": [
       {"id": "voice_instruction-03", "category": "voice_instruction", "intent": "say",
        "templates": ["voice_instruction.say.7"],
        "turns": [
          {"question": "Say it is time for lunch, but say it very loudly.",
           "voice": "flite:awb",                      # the human's voice (test split or reserved)
           "prosody": {"rate": 1.04, "loudness": -2.1},  # `aqaa.data.styles.Prosody` fields
           "human_style": "neutral",
           "target_f0": null,                         # Hz: pitch-labelled questions are shifted to it
           "accept": ["it is time for lunch"],        # any one marks a right answer ([]: not judged)
           "answer": "(loud) It is time for lunch!",  # the reference answer, style-tagged
           "styles": ["loud"],                        # expected style of each answer sentence
           "paralinguistic": null}]}]}                # voice understanding: the expected label:
                                                      # {"attribute", "label", "accept", "reject"}

A turn may also name a recording, `"audio": "question.wav"` (relative to the suite file): it is
asked instead of a rendering of `question` (`examples/suite.json` asks the bundled examples so).

`make_suite` draws items from the *test* split of the task generators (phrasings never trained on)
and gives each dialogue a test-split or reserved voice (never trained on) with the same voice and
prosody planning as the corpus builder (`aqaa.data.corpus`), so a suite question sounds like a
test-split corpus question. Within a category, items are picked to spread over intents and answer
styles (fast, whisper, sad, robot, sing... and the four voice-understanding questions).
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aqaa.data.schema import CATEGORIES, DialogueItem
from aqaa.data.styles import STYLES, Prosody
from aqaa.data.tasks import generate_traced
from aqaa.data.tasks import voice_understanding as vu

SUITES_DIR = Path(__file__).resolve().parent / "suites"
SUITE_VERSION = 1
#: Share of dialogues spoken by the reserved test voices (festival slt HTS, flite awb).
DEFAULT_RESERVED_SHARE = 0.4
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SuiteError(ValueError):
    """A suite that cannot be found or does not validate."""


@dataclass
class Paralinguistic:
    """The expected answer to a voice-understanding question: `label` of `attribute` (pitch,
    speed, whisper or gender); right when the answer says an `accept` word and no `reject` word
    (the other label's words)."""

    attribute: str
    label: Any
    accept: list[str]
    reject: list[str]


@dataclass
class SuiteTurn:
    question: str
    voice: str
    accept: list[str]
    answer: str
    styles: list[str]
    prosody: dict[str, Any] = field(default_factory=dict)
    human_style: str = "neutral"
    target_f0: float | None = None
    paralinguistic: Paralinguistic | None = None
    audio: str | None = None  # a recording asked instead of rendering `question` (absolute path)

    @property
    def expected_style(self) -> str:
        """The first non-neutral expected style ("neutral" if none)."""
        return next((s for s in self.styles if s != "neutral"), "neutral")

    def prosody_obj(self) -> Prosody:
        return Prosody(**self.prosody)


@dataclass
class SuiteItem:
    id: str
    category: str
    turns: list[SuiteTurn]
    intent: str = ""
    templates: list[str] = field(default_factory=list)


@dataclass
class Suite:
    name: str
    items: list[SuiteItem]
    description: str = ""
    version: int = SUITE_VERSION
    generator: dict[str, Any] = field(default_factory=dict)

    @property
    def categories(self) -> list[str]:
        """Categories in order of first appearance."""
        return list(dict.fromkeys(i.category for i in self.items))

    @property
    def n_turns(self) -> int:
        return sum(len(i.turns) for i in self.items)

    def ordered(self, limit: int | None = None) -> list[SuiteItem]:
        """Items interleaved across categories (round robin), the first `limit` of them: a small
        limit still covers several categories."""
        per: dict[str, list[SuiteItem]] = {}
        for it in self.items:
            per.setdefault(it.category, []).append(it)
        out: list[SuiteItem] = []
        k = 0
        while len(out) < len(self.items):
            for c in per:
                if k < len(per[c]):
                    out.append(per[c][k])
            k += 1
        return out if limit is None else out[:limit]

    def to_dict(self) -> dict[str, Any]:
        def turn(t: SuiteTurn) -> dict[str, Any]:
            d = asdict(t)
            d["prosody"] = _compact_prosody(t.prosody)
            if d["audio"] is None:
                del d["audio"]
            return d

        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "generator": self.generator,
            "items": [
                {
                    "id": i.id,
                    "category": i.category,
                    "intent": i.intent,
                    "templates": i.templates,
                    "turns": [turn(t) for t in i.turns],
                }
                for i in self.items
            ],
        }


def _compact_prosody(p: dict[str, Any]) -> dict[str, Any]:
    """Prosody fields that differ from the default, floats rounded (small, readable JSON)."""
    default = asdict(Prosody())
    return {
        k: (round(v, 3) if isinstance(v, float) else v) for k, v in p.items() if default.get(k) != v
    }


# ---- loading and validation ----------------------------------------------------------------------


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.json"))


def resolve_suite(name_or_path: str | Path) -> Path:
    """A suite file: an existing path, or the name of a suite shipped in `aqaa/eval/suites/`."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    name = str(name_or_path)
    if _NAME.match(name) and (SUITES_DIR / f"{name}.json").is_file():
        return SUITES_DIR / f"{name}.json"
    raise SuiteError(
        f"no suite {name!r}: not a file, and not one of the shipped suites "
        f"({', '.join(available_suites()) or 'none'})"
    )


def _req(d: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise SuiteError(f"{where}: missing {key!r}")
    v = d[key]
    if not isinstance(v, typ):
        raise SuiteError(f"{where}: {key!r} must be {getattr(typ, '__name__', typ)}, got {v!r}")
    return v


def _str_list(v: Any, where: str, nonempty: bool = True) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise SuiteError(f"{where} must be a list of non-empty strings")
    if nonempty and not v:
        raise SuiteError(f"{where} must not be empty")
    return list(v)


def _parse_turn(d: Any, where: str, root: Path | None = None) -> SuiteTurn:
    if not isinstance(d, dict):
        raise SuiteError(f"{where} must be an object")
    question = _req(d, "question", str, where).strip()
    if not question:
        raise SuiteError(f"{where}: empty question")
    voice = _req(d, "voice", str, where)
    if ":" not in voice:
        raise SuiteError(f"{where}: voice {voice!r} is not of the form engine:name")
    styles = _str_list(_req(d, "styles", list, where), f"{where}.styles")
    for s in styles:
        if s not in STYLES:
            raise SuiteError(f"{where}: unknown answer style {s!r}")
    human_style = d.get("human_style", "neutral")
    if human_style not in STYLES:
        raise SuiteError(f"{where}: unknown human style {human_style!r}")
    prosody = d.get("prosody") or {}
    try:
        Prosody(**prosody)
    except (TypeError, ValueError) as e:
        raise SuiteError(f"{where}: bad prosody {prosody!r}: {e}") from None
    target = d.get("target_f0")
    if target is not None and not (isinstance(target, int | float) and 40 <= target <= 600):
        raise SuiteError(f"{where}: target_f0 must be null or a frequency in Hz (40-600)")
    para = d.get("paralinguistic")
    p_obj = None
    if para is not None:
        if not isinstance(para, dict):
            raise SuiteError(f"{where}.paralinguistic must be an object or null")
        p_obj = Paralinguistic(
            attribute=_req(para, "attribute", str, f"{where}.paralinguistic"),
            label=para.get("label"),
            accept=_str_list(para.get("accept"), f"{where}.paralinguistic.accept"),
            reject=_str_list(para.get("reject", []), f"{where}.paralinguistic.reject", False),
        )
    audio = d.get("audio")
    if audio is not None:
        if not isinstance(audio, str) or not audio:
            raise SuiteError(f"{where}: audio must be a file path or null")
        path = Path(audio) if root is None else root / audio
        if not path.is_file():
            raise SuiteError(f"{where}: no audio file {path}")
        audio = str(path.resolve())
    return SuiteTurn(
        question=question,
        voice=voice,
        accept=_str_list(_req(d, "accept", list, where), f"{where}.accept", nonempty=False),
        answer=str(d.get("answer", "")),
        styles=styles,
        prosody=dict(prosody),
        human_style=human_style,
        target_f0=None if target is None else float(target),
        paralinguistic=p_obj,
        audio=audio,
    )


def parse_suite(data: Any, source: str = "suite", root: Path | None = None) -> Suite:
    """Validate the JSON of a suite (raises `SuiteError` naming the first problem); turns'
    `audio` paths are relative to `root` (the suite file's folder)."""
    if not isinstance(data, dict):
        raise SuiteError(f"{source}: a suite is a JSON object")
    name = _req(data, "name", str, source)
    version = data.get("version", SUITE_VERSION)
    if version != SUITE_VERSION:
        raise SuiteError(f"{source}: suite version {version!r}, this aqaa reads {SUITE_VERSION}")
    raw = _req(data, "items", list, source)
    if not raw:
        raise SuiteError(f"{source}: no items")
    items, seen = [], set()
    for k, it in enumerate(raw):
        where = f"{source}: item {k}"
        if not isinstance(it, dict):
            raise SuiteError(f"{where} must be an object")
        iid = _req(it, "id", str, where)
        if iid in seen:
            raise SuiteError(f"{where}: duplicate id {iid!r}")
        if not _NAME.match(iid):
            raise SuiteError(f"{where}: id {iid!r} may hold letters, digits, _ . - only")
        seen.add(iid)
        cat = _req(it, "category", str, where)
        if cat not in CATEGORIES:
            raise SuiteError(f"{where}: unknown category {cat!r} ({', '.join(CATEGORIES)})")
        turns_raw = _req(it, "turns", list, where)
        if not turns_raw:
            raise SuiteError(f"{where}: no turns")
        turns = [_parse_turn(t, f"{where} ({iid}) turn {j}", root) for j, t in enumerate(turns_raw)]
        items.append(
            SuiteItem(iid, cat, turns, str(it.get("intent", "")), list(it.get("templates", [])))
        )
    return Suite(
        name=name,
        items=items,
        description=str(data.get("description", "")),
        version=SUITE_VERSION,
        generator=dict(data.get("generator") or {}),
    )


def load_suite(name_or_path: str | Path) -> Suite:
    """Load and validate a suite by shipped name (`default`, `smoke`) or path."""
    path = resolve_suite(name_or_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SuiteError(f"cannot read suite {path}: {e}") from None
    return parse_suite(data, str(path), path.parent)


def save_suite(suite: Suite, path: str | Path) -> Path:
    """Write a suite as indented JSON, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(suite.to_dict(), indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


# ---- generation -----------------------------------------------------------------------------------

_SPEC_FIELD = {"pitch": "pitch", "speed": "speed", "whisper": "whisper", "gender": "gender"}


def paralinguistic_of(turn: Any) -> Paralinguistic | None:
    """The voice-understanding label of a generated `aqaa.data.schema.Turn`, if it asks one:
    its accept words are a label's words and its human spec has that label."""
    for attribute, labels in vu.ACCEPT.items():
        for label, words in labels.items():
            if list(turn.accept) == list(words) and getattr(turn.human, attribute) == label:
                reject = sorted({w for lb, ws in labels.items() if lb != label for w in ws})
                return Paralinguistic(attribute, label, list(words), reject)
    return None


def _diversity_key(item: DialogueItem) -> tuple[str, ...]:
    styles = [s.style for t in item.turns for s in t.answer if s.style != "neutral"]
    return (item.intent, styles[0] if styles else "neutral")


def _pick_items(category: str, n: int, rng: random.Random, tries: int = 40) -> list[DialogueItem]:
    """`n` test-split items of `category`, spread over intents and answer styles: each pick is
    the first of up to `tries` candidates whose style, then intent, is least used so far."""
    chosen: list[DialogueItem] = []
    styles: Counter[str] = Counter()
    intents: Counter[str] = Counter()
    questions: set[str] = set()
    for _ in range(n):
        best, best_key = None, None
        for _ in range(tries):
            item, trace = generate_traced(category, rng, "test")
            item.templates, item.facts = trace.templates, trace.facts
            q = " / ".join(t.human_text for t in item.turns)
            if q in questions:
                continue
            intent, style = _diversity_key(item)
            key = (styles[style], intents[intent])
            if best_key is None or key < best_key:
                best, best_key = item, key
            if key == (0, 0):
                break
        if best is None:
            continue
        intent, style = _diversity_key(best)
        styles[style] += 1
        intents[intent] += 1
        questions.add(" / ".join(t.human_text for t in best.turns))
        chosen.append(best)
    return chosen


def make_suite(
    name: str,
    per_category: int,
    seed: int = 0,
    categories: list[str] | tuple[str, ...] = CATEGORIES,
    reserved_share: float = DEFAULT_RESERVED_SHARE,
    description: str = "",
) -> Suite:
    """A suite of `per_category` test-split dialogues per category, spoken by test-split and
    reserved voices (deterministic for a seed and an installed voice set)."""
    from aqaa.data import corpus
    from aqaa.data.voices import VoiceBank

    if per_category < 1:
        raise SuiteError("per_category must be at least 1")
    if not _NAME.match(name):
        raise SuiteError(f"suite name {name!r} may hold letters, digits, _ . - only")
    for c in categories:
        if c not in CATEGORIES:
            raise SuiteError(f"unknown category {c!r} ({', '.join(CATEGORIES)})")
    if not 0.0 <= reserved_share <= 1.0:
        raise SuiteError("reserved_share must be within [0, 1]")
    bank = VoiceBank.discover()
    pools = corpus._voice_pools(bank)
    if not pools[("test", None, False)] and not pools[("test", None, True)]:
        raise SuiteError(
            "no test-split voice is installed: apt-get install espeak-ng flite festival"
        )
    items: list[SuiteItem] = []
    for cat in categories:
        rng = random.Random(f"aqaa-suite:{seed}:{cat}")
        for k, item in enumerate(_pick_items(cat, per_category, rng)):
            voice = None
            turns = []
            for t in item.turns:
                # one speaker per dialogue, unless a turn needs a gender (as in the corpus plan)
                if voice is None or t.human.gender:
                    voice = corpus._pick_voice(pools, "test", t.human, rng, reserved_share)
                target = None
                if t.human.pitch is not None:
                    lo, hi = corpus._HIGH_F0 if t.human.pitch == "high" else corpus._LOW_F0
                    target = round(rng.uniform(lo, hi), 1)
                prosody = corpus._human_prosody(t.human, rng)
                turns.append(
                    SuiteTurn(
                        question=t.human_text,
                        voice=voice.id,
                        accept=list(t.accept),
                        answer=t.answer_text,
                        styles=[s.style for s in t.answer],
                        prosody=_compact_prosody(prosody.to_dict()),
                        human_style=t.human.style,
                        target_f0=target,
                        paralinguistic=paralinguistic_of(t),
                    )
                )
            items.append(SuiteItem(f"{cat}-{k:02d}", cat, turns, item.intent, item.templates))
    return Suite(
        name=name,
        items=items,
        description=description,
        generator={
            "per_category": per_category,
            "seed": seed,
            "categories": list(categories),
            "reserved_share": reserved_share,
            "split": "test",
        },
    )


# ---- rendering ---------------------------------------------------------------------------------------

QUESTION_RATE = 16000


def render_question(bank: Any, turn: SuiteTurn) -> np.ndarray:
    """The spoken question of `turn` (16 kHz float32), rendered like a test-split corpus turn
    (`purpose="eval"`, so the reserved voices are allowed)."""
    from aqaa.data import corpus

    pt = corpus.PlannedTurn(turn.voice, asdict(turn.prosody_obj()), turn.target_f0)
    return corpus._render_human(bank, turn.question, "test", pt)
