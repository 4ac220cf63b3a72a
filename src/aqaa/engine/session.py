"""A multi-turn conversation: what the model keeps of earlier turns, saved as JSON.

Design §1.2: the history holds each earlier question as its audio tokens and each earlier answer
as its text (the assistant's audio is not kept: it would cost ~42 tokens per second of speech and
add nothing the text does not say). A session file is plain JSON, so it can be inspected, edited
and versioned; writes are atomic, so a killed process never leaves half a file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aqaa.lm.format import ChatTurn

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


class SessionError(ValueError):
    """A session file that cannot be read."""


@dataclass
class Exchange:
    """One finished turn: the question (audio codes, or typed text when there are no codes) and
    the answer's text (style-tagged)."""

    question_codes: list[int]
    answer_text: str
    question_text: str | None = None
    #: the model's listening note of a spoken question (`aqaa.lm.notes`), kept in the history
    question_note: str | None = None

    def chat_turn(self) -> ChatTurn:
        if self.question_codes:
            return ChatTurn(human_codes=self.question_codes, answer_text=self.answer_text,
                            human_note=self.question_note)  # fmt: skip
        return ChatTurn(human_text=self.question_text or "", answer_text=self.answer_text)


@dataclass
class Session:
    """System prompt (None = the model's default persona) and the finished exchanges."""

    system: str | None = None
    exchanges: list[Exchange] = field(default_factory=list)

    def add(self, question_codes: list[int], answer_text: str, note: str | None = None) -> None:
        self.exchanges.append(
            Exchange([int(c) for c in question_codes], answer_text, question_note=note)
        )

    def chat_turns(self) -> list[ChatTurn]:
        return [e.chat_turn() for e in self.exchanges]

    def drop_oldest(self) -> Exchange:
        dropped = self.exchanges.pop(0)
        log.warning(
            "context full: dropped the oldest exchange from the history (answer was %r)",
            dropped.answer_text[:60],
        )
        return dropped

    # ---- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"version": FORMAT_VERSION, "system": self.system,
                "exchanges": [asdict(e) for e in self.exchanges]}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> Session:
        if not isinstance(d, dict) or d.get("version") != FORMAT_VERSION:
            raise SessionError(f"not an aqaa session (version {FORMAT_VERSION} expected)")
        try:
            ex = [Exchange([int(c) for c in e["question_codes"]], str(e["answer_text"]),
                           e.get("question_text"), e.get("question_note"))
                  for e in d.get("exchanges", [])]  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise SessionError(f"malformed exchange in session: {e}") from None
        system = d.get("system")
        return cls(system=None if system is None else str(system), exchanges=ex)

    def save(self, path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict()) + "\n")
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Session:
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise SessionError(f"{p} is not valid JSON: {e}") from None
        return cls.from_dict(d)

    @classmethod
    def load_or_new(cls, path: str | os.PathLike[str] | None, system: str | None = None) -> Session:
        """The session in `path` if it exists, else a new one (`system` overrides when given)."""
        s = cls.load(path) if path is not None and Path(path).exists() else cls()
        if system is not None:
            s.system = system
        return s
