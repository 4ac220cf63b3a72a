"""Shared machinery of the task generators.

* **Template registry.** Each category module registers its question templates as
  `{intent: [text, ...]}`; a template's id is `f"{category}.{intent}.{n}"` (n counts from 1 in
  list order, so appending a template never renames the others). Texts are `str.format`
  strings with named slots; a template's text must be unique in the whole registry (slot names
  aside), so that a held-out phrasing cannot leak into training through another category.
* **Split assignment.** Per intent, an md5 hash of the id puts ~10% of the templates in "test" and
  ~5% in "valid"; then every intent is fixed up to keep at least two train templates and at least
  one valid and one test template, so that each split can generate every intent.
* **Generation context** (`Ctx`): the rng, the split, and a trace of every template id used and
  of the facts behind each turn (operands, the country asked about...), for tests and debugging.
* **Text helpers**: number-to-words, accept-string normalisation, articles, sentence casing and
  the fillers that vary the human side ("um, ", "quick question: ", ", please").
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from aqaa.data.schema import CATEGORIES, DialogueItem, HumanSpec, Sentence, Turn

SPLITS: tuple[str, ...] = ("train", "valid", "test")

#: Target shares of held-out templates per intent (before the minimum-count fix-ups).
TEST_SHARE = 0.10
VALID_SHARE = 0.05

# ---------------------------------------------------------------------------------------------
# Numbers

# fmt: off
_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
# fmt: on
_SCALES = ((1_000_000_000, "billion"), (1_000_000, "million"), (1_000, "thousand"))


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = []
    if hundreds:
        parts.append(f"{_ONES[hundreds]} hundred")
    if rest or not hundreds:
        if rest < 20:
            tail = _ONES[rest]
        else:
            tens, ones = divmod(rest, 10)
            tail = _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
        parts.append(tail)
    return " and ".join(parts)


def number_to_words(n: int) -> str:
    """English words for an integer, British style: 105 -> "one hundred and five".

    Handles negative numbers ("minus three") and anything below a trillion; tens and units are
    joined by a hyphen ("twenty-one"), which `normalize` turns into a space.
    """
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"number_to_words needs an int, got {n!r}")
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= 1_000_000_000_000:
        raise ValueError(f"number too large to spell: {n}")
    if n < 1000:
        return _below_thousand(n)
    parts = []
    rest = n
    for value, name in _SCALES:
        count, rest = divmod(rest, value)
        if count:
            parts.append(f"{number_to_words(count)} {name}")
    if rest:
        # "one thousand and five", but "one thousand two hundred and five".
        parts.append(("and " if rest < 100 else "") + _below_thousand(rest))
    return " ".join(parts)


def num_accept(n: int) -> list[str]:
    """Accept strings for a numeric answer: the normalised word form and the digit form."""
    return [normalize(number_to_words(n)), str(n)]


# ---------------------------------------------------------------------------------------------
# Text helpers

_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalize(text: str) -> str:
    """Lowercase, drop apostrophes, every other non-alphanumeric run becomes one space."""
    text = text.lower().replace("'", "").replace("’", "")
    return _NON_WORD.sub(" ", text).strip()


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether normalised `phrase` occurs in normalised `text` as whole words."""
    t, p = f" {normalize(text)} ", f" {normalize(phrase)} "
    return p.strip() != "" and p in t


def a_an(phrase: str) -> str:
    """`phrase` with the indefinite article it takes ("an owl", "a unicorn", "an hour")."""
    first = phrase.split()[0].lower()
    vowel = first[0] in "aeiou" and not first.startswith(("uni", "use", "one", "eu"))
    vowel = vowel or first.startswith(("hour", "honest"))
    return f"{'an' if vowel else 'a'} {phrase}"


def cap(text: str) -> str:
    """Upper-case the first letter (leaving the rest alone)."""
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1 :]
    return text


_SENTENCE_START = re.compile(r"([.!?]\s+)([a-z])")


def tidy(text: str) -> str:
    """Collapse spaces and capitalise the first letter of every sentence."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.!?:;])", r"\1", text)
    return cap(_SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text))


def decap(text: str) -> str:
    """Lower-case the first letter unless the first word is "I" (or "I'm"...) or a proper noun."""
    first = text.split()[0] if text.split() else ""
    bare = first.strip(string.punctuation)
    if bare in {"I", "I'm", "I'd", "I've", "I'll"} or bare in proper_nouns():
        return text
    return text[:1].lower() + text[1:]


def sentence(text: str, style: str = "neutral") -> Sentence:
    """An answer sentence: tidied and ending in . ! or ?"""
    text = tidy(text)
    if text[-1] not in ".!?":
        text += "."
    return Sentence(text, style)


def spoken_list(items: Sequence[str]) -> str:
    """ "a, b and c" """
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def restyle(sentences: Sequence[Sentence], style: str) -> list[Sentence]:
    return [Sentence(s.text, style) for s in sentences]


# ---------------------------------------------------------------------------------------------
# Knowledge tables


@cache
def load(name: str) -> Any:
    """A JSON table from `aqaa/data/knowledge/` (cached; treat the result as read-only)."""
    path = resources.files("aqaa.data").joinpath("knowledge", f"{name}.json")
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def proper_nouns() -> frozenset[str]:
    """Capitalised words that must stay capitalised mid-sentence (countries, days, names...)."""
    words: set[str] = set()
    for c in load("countries"):
        words.update(c["country"].split())
        words.update(c["capital"].split())
    cal = load("calendar")
    words.update(cal["days"])
    words.update(cal["months"])
    words.update(load("people")["names"])
    return frozenset(w for w in words if w[:1].isupper())


# ---------------------------------------------------------------------------------------------
# Template registry

_TEMPLATES: dict[str, str] = {}
_GROUPS: dict[str, list[str]] = {}  # "category.intent" -> template ids in order
_SPLIT: dict[str, str] = {}
_SEEN: dict[str, str] = {}  # normalised text -> id, for the uniqueness check
_SLOT = re.compile(r"\{[^{}]*\}")


def register(category: str, groups: dict[str, Sequence[str]]) -> None:
    """Register the question templates of `category` (called once by each category module)."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")
    for intent, texts in groups.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", intent):
            raise ValueError(f"bad intent name {intent!r}")
        key = f"{category}.{intent}"
        if key in _GROUPS:
            raise ValueError(f"intent {key} registered twice")
        if len(texts) < 4:
            raise ValueError(f"{key} needs at least 4 templates (2 train, 1 valid, 1 test)")
        ids = []
        for n, text in enumerate(texts, start=1):
            tid = f"{key}.{n}"
            if text.rstrip()[-1:] not in ".?!}":  # a final slot brings its own punctuation
                raise ValueError(f"template {tid} must end in . ? or !: {text!r}")
            norm = _SLOT.sub("{}", text.lower())
            if norm in _SEEN:
                raise ValueError(f"template {tid} repeats {_SEEN[norm]}: {text!r}")
            _SEEN[norm] = tid
            _TEMPLATES[tid] = text
            ids.append(tid)
        _GROUPS[key] = ids
        _SPLIT.update(_assign_splits(ids))


def _unit_hash(tid: str) -> float:
    return int(hashlib.md5(tid.encode("utf-8")).hexdigest()[:12], 16) / 16**12


def _assign_splits(ids: list[str]) -> dict[str, str]:
    h = {tid: _unit_hash(tid) for tid in ids}
    out = {
        tid: "test"
        if h[tid] < TEST_SHARE
        else "valid"
        if h[tid] < TEST_SHARE + VALID_SHARE
        else "train"
        for tid in ids
    }

    def members(split: str) -> list[str]:
        return sorted((t for t in ids if out[t] == split), key=h.__getitem__)

    for split in ("test", "valid"):
        if not members(split):
            out[members("train")[0]] = split  # the train template with the smallest hash
    while len(members("train")) < 2:
        # Give back the held-out template with the largest hash from the bigger held-out split.
        donor = max(("test", "valid"), key=lambda s: (len(members(s)), s == "valid"))
        out[members(donor)[-1]] = "train"
    return out


def templates() -> dict[str, str]:
    """Template id -> template text, for all categories."""
    return dict(_TEMPLATES)


def template_split(template_id: str) -> str:
    """The split ("train", "valid" or "test") a template belongs to."""
    try:
        return _SPLIT[template_id]
    except KeyError:
        raise KeyError(f"unknown template id {template_id!r}") from None


def intents() -> dict[str, list[str]]:
    """ "category.intent" -> its template ids (every template group, follow-ups included)."""
    return {k: list(v) for k, v in _GROUPS.items()}


# ---------------------------------------------------------------------------------------------
# Fillers (applied to the template before its slots are filled)

_PREFIXES = (
    "Hey, ",
    "Um, ",
    "Uh, ",
    "So, ",
    "Okay, ",
    "Quick question: ",
    "Hi! ",
    "Hello. ",
    "Excuse me, ",
    "Hey there. ",
    "Right, ",
    "Well, ",
    "Oh, ",
    "Hmm, ",
    "Hey assistant, ",
    "Can you help me? ",
    "I have a question. ",
    "Okay, next one. ",
)
_SUFFIXES = (" Thanks!", " Thank you.", " Thanks a lot.")


def add_filler(template: str, rng: random.Random) -> str:
    """Maybe decorate a template with a filler, a please or a thanks (about one time in three)."""
    r = rng.random()
    if r < 0.18:
        if template.startswith("{"):  # the slot's case is unknown: only whole-sentence prefixes
            prefix = rng.choice([p for p in _PREFIXES if p.endswith((". ", "! ", "? "))])
        else:
            prefix = rng.choice(_PREFIXES)
        sentence_prefix = prefix.endswith((". ", "! ", "? "))
        return prefix + (template if sentence_prefix else decap(template))
    if len(template.split()) < 3:  # "Pardon?" takes a prefix at most
        return template
    if r < 0.28 and "please" not in template.lower() and template[-1] in ".?":
        return template[:-1] + ", please" + template[-1]
    if r < 0.33:
        return template + rng.choice(_SUFFIXES)
    return template


# ---------------------------------------------------------------------------------------------
# Generation context


@dataclass
class QA:
    """One generated question/answer turn before it becomes a `Turn`."""

    intent: str
    template: str
    human: str
    answer: list[Sentence]
    accept: list[str]
    facts: dict[str, Any] = field(default_factory=dict)
    spec: HumanSpec = field(default_factory=HumanSpec)

    def turn(self) -> Turn:
        return Turn(self.human, list(self.answer), self.spec, list(self.accept))


@dataclass
class Trace:
    """What a generated item was built from: every template id used and each turn's facts."""

    templates: list[str] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)


class Ctx:
    """The state of one `generate` call: rng, split and the trace."""

    def __init__(self, category: str, rng: random.Random, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
        self.category = category
        self.rng = rng
        self.split = split
        self.trace = Trace()

    def choice(self, seq: Sequence[Any]) -> Any:
        return seq[self.rng.randrange(len(seq))]

    def pick(self, intent: str, category: str | None = None, exclude: Sequence[str] = ()) -> str:
        """A template id of `category.intent` (default: this context's category) in this split."""
        key = f"{category or self.category}.{intent}"
        pool = [t for t in _GROUPS[key] if _SPLIT[t] == self.split and t not in exclude]
        if not pool:  # every template excluded: allow repeats
            pool = [t for t in _GROUPS[key] if _SPLIT[t] == self.split]
        tid = self.choice(pool)
        self.trace.templates.append(tid)
        return tid

    def render(
        self,
        intent: str,
        slots: dict[str, Any] | None = None,
        *,
        category: str | None = None,
        filler: bool = True,
        exclude: Sequence[str] = (),
    ) -> tuple[str, str]:
        """Pick a template, maybe add a filler, fill its slots: (template id, human text)."""
        tid = self.pick(intent, category, exclude)
        text = _TEMPLATES[tid]
        if filler:
            text = add_filler(text, self.rng)
        human = tidy(text.format(**(slots or {})))
        if human[-1] not in ".?!":
            raise ValueError(f"template {tid} rendered without final punctuation: {human!r}")
        return tid, human

    def weighted(self, weights: dict[str, float]) -> str:
        keys = list(weights)
        return self.rng.choices(keys, [weights[k] for k in keys])[0]


#: A category module's entry point: one item (its turns' facts go into `ctx.trace`).
Maker = Callable[[Ctx], DialogueItem]


def item_from(
    ctx: Ctx, qas: Sequence[QA], intent: str | None = None, template: str | None = None
) -> DialogueItem:
    """Wrap QA turns into a `DialogueItem`, recording their facts in the trace."""
    ctx.trace.facts.extend(dict(q.facts) for q in qas)
    return DialogueItem(
        category=ctx.category,
        intent=intent or qas[0].intent,
        template=template or qas[0].template,
        turns=[q.turn() for q in qas],
    )
