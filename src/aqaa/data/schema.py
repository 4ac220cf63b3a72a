"""The dialogue item: what a task generator yields and what the corpus builder renders.

A `DialogueItem` holds text and rendering instructions only; the builder turns it into audio.
Everything is plain dataclasses that round-trip through JSON (`to_dict` / `from_dict`), because
the manifest is JSONL.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aqaa.data.styles import STYLES

CATEGORIES: tuple[str, ...] = (
    "knowledge",
    "reasoning",
    "language",
    "gaming",
    "voice_instruction",
    "emotion",
    "roleplay",
    "voice_understanding",
    "creativity",
    "multi_turn",
)
#: the categories judged on answer content alone (issue 9's content accuracy): their answers do
#: not depend on how the question is spoken
CONTENT_CATEGORIES: tuple[str, ...] = ("knowledge", "reasoning", "language", "gaming")

Gender = Literal["male", "female"]
Level = Literal["high", "low"]
Speed = Literal["fast", "slow"]


@dataclass
class HumanSpec:
    """How the human's question must sound.

    `style` is a named style from `aqaa.data.styles`. The attribute constraints below are for
    voice-understanding items, whose answer depends on the audio alone: the builder picks a voice
    and prosody that make them true (`pitch="high"` means a clearly high absolute F0, whatever
    the voice's natural pitch).
    """

    style: str = "neutral"
    gender: Gender | None = None
    pitch: Level | None = None
    speed: Speed | None = None
    whisper: bool | None = None

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"unknown human style {self.style!r}")


@dataclass
class Sentence:
    """One sentence of an answer with the style it is spoken in (one audio clip each)."""

    text: str
    style: str = "neutral"

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"unknown answer style {self.style!r}")
        if not self.text.strip():
            raise ValueError("an answer sentence must have text")


@dataclass
class Turn:
    """One human question and the assistant's answer."""

    human_text: str
    answer: list[Sentence]
    human: HumanSpec = field(default_factory=HumanSpec)
    #: Normalised strings any one of which marks a correct answer (for the judge).
    accept: list[str] = field(default_factory=list)

    @property
    def answer_text(self) -> str:
        """The answer as the LM writes it: non-neutral sentences carry a `(style)` tag."""
        return " ".join(tag_sentence(s) for s in self.answer)

    @property
    def answer_plain(self) -> str:
        return " ".join(s.text for s in self.answer)


@dataclass
class DialogueItem:
    """A whole (possibly multi-turn) dialogue, generated from one template of one intent."""

    category: str
    intent: str
    template: str
    turns: list[Turn]
    id: str = ""
    #: Every template id the item was built from (multi-turn items use several).
    templates: list[str] = field(default_factory=list)
    #: Per turn, the facts behind the answer (operands, country, label, ...), for judging.
    facts: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")
        if not self.turns:
            raise ValueError("a dialogue needs at least one turn")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DialogueItem:
        turns = [
            Turn(
                human_text=t["human_text"],
                answer=[Sentence(**s) for s in t["answer"]],
                human=HumanSpec(**t["human"]),
                accept=list(t.get("accept", [])),
            )
            for t in d["turns"]
        ]
        return cls(
            category=d["category"],
            intent=d["intent"],
            template=d["template"],
            turns=turns,
            id=d.get("id", ""),
            templates=list(d.get("templates", [])),
            facts=list(d.get("facts", [])),
        )


_TAG = re.compile(r"^\((\w+)\)\s*")


def tag_sentence(s: Sentence) -> str:
    return s.text if s.style == "neutral" else f"({s.style}) {s.text}"


def tag_length(text: str) -> int:
    """Characters of `text`'s leading style tag (``"(happy) Hi." → 8``), 0 when it has none."""
    m = _TAG.match(text)
    return m.end() if m and m.group(1) in STYLES else 0


def parse_tagged(text: str) -> list[Sentence]:
    """Inverse of `Turn.answer_text` for text whose sentences end in . ! or ?"""
    parts = re.findall(r"[^.!?]+[.!?]+", text) or [text]
    out = []
    for p in (p.strip() for p in parts):
        m = _TAG.match(p)
        if m and m.group(1) in STYLES:
            out.append(Sentence(p[m.end() :], m.group(1)))
        elif p:
            out.append(Sentence(p))
    return out
