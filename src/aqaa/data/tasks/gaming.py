"""Gaming: counting up, down and in twos, what comes after or before a day, month, letter or
number, the number between two others, riddles, and "say a word that starts with B".
"""

from __future__ import annotations

import string
from collections.abc import Callable
from functools import cache
from typing import Any

from aqaa.data.schema import DialogueItem, Sentence
from aqaa.data.tasks.base import (
    QA,
    Ctx,
    cap,
    item_from,
    load,
    normalize,
    num_accept,
    number_to_words,
    register,
    sentence,
)

CATEGORY = "gaming"

TEMPLATES: dict[str, list[str]] = {
    "count": [
        "Count from {a} to {b}.",
        "Can you count from {a} to {b}?",
        "Please count from {a} up to {b}.",
        "Count up from {a} to {b} for me.",
        "Start at {a} and count to {b}.",
        "Let's count! From {a} to {b}, please.",
        "Could you count from {a} to {b}?",
        "I want to hear you count from {a} to {b}.",
        "Count to {b}, starting from {a}.",
        "Begin at {a} and count up to {b}.",
        "Say the numbers from {a} to {b}.",
        "What are the numbers from {a} to {b}?",
        "Let's play a counting game. Go from {a} to {b}.",
    ],
    "count_down": [
        "Count down from {a} to {b}.",
        "Count backwards from {a} to {b}.",
        "Can you count down from {a} to {b}?",
        "Start at {a} and count down to {b}.",
        "Do a countdown from {a} to {b}.",
        "Count back from {a} to {b}, please.",
        "Let's do a countdown. Start at {a} and stop at {b}.",
        "Could you count backwards from {a} down to {b}?",
    ],
    "count_twos": [
        "Count by twos from {a} to {b}.",
        "Count in twos from {a} up to {b}.",
        "Can you count in twos from {a} to {b}?",
        "Skip count by two from {a} to {b}.",
        "Count up in steps of two from {a} to {b}.",
        "Starting at {a}, count in twos until you reach {b}.",
    ],
    "after": [
        "What comes after {x}?",
        "What comes next after {x}?",
        "What {kind} comes after {x}?",
        "Which {kind} is after {x}?",
        "Tell me what comes after {x}.",
        "After {x}, what comes next?",
        "What is the next {kind} after {x}?",
        "{x}. What comes next?",
        "What's the {kind} after {x}?",
        "Which {kind} follows {x}?",
        "Let's play a game. What comes straight after {x}?",
    ],
    "before": [
        "What comes before {x}?",
        "What {kind} comes before {x}?",
        "Which {kind} is just before {x}?",
        "Tell me what comes before {x}.",
        "What comes right before {x}?",
        "What is the {kind} before {x}?",
        "Going backwards, what comes before {x}?",
        "What's the {kind} that comes before {x}?",
        "Which {kind} do you say just before {x}?",
        "Think backwards. What is before {x}?",
    ],
    "between": [
        "What number is between {a} and {b}?",
        "Which number comes between {a} and {b}?",
        "What's the number in the middle of {a} and {b}?",
        "Tell me the number that goes between {a} and {b}.",
        "{a}, something, {b}. What is the missing number?",
        "What number fits between {a} and {b}?",
        "Fill the gap: {a}, what, {b}?",
    ],
    "riddle": [
        "Here's a riddle. {q}",
        "Riddle time! {q}",
        "Can you solve this riddle? {q}",
        "I have a riddle for you. {q}",
        "Try this one. {q}",
        "Let's play a guessing game. {q}",
        "Guess what this is. {q}",
        "Here is a puzzle for you. {q}",
        "I bet you can't guess this. {q}",
    ],
    "starts_with": [
        "Say a word that starts with {letter}.",
        "Can you think of a word beginning with {letter}?",
        "Tell me a word that begins with the letter {letter}.",
        "Give me a word starting with {letter}.",
        "Name something that starts with the letter {letter}.",
        "What's a word that begins with {letter}?",
        "Let's play a game: say a word starting with the letter {letter}.",
        "Think of a word beginning with {letter} and say it.",
        "I spy something beginning with {letter}. Can you guess a word?",
        "Quick, a word that starts with the letter {letter}!",
    ],
}

ANSWERS: dict[str, list[str]] = {
    "after": [
        "After {x} comes {y}.",
        "{y} comes after {x}.",
        "The next {kind} is {y}.",
        "It's {y}.",
    ],
    "before": [
        "Before {x} comes {y}.",
        "{y} comes before {x}.",
        "The {kind} before {x} is {y}.",
        "It's {y}.",
    ],
    "between": ["{c} is between {a} and {b}.", "It's {c}.", "The missing number is {c}."],
    "riddle": ["It's {a}.", "The answer is {a}.", "{a}!", "I think it's {a}."],
    "starts_with": [
        "{word} starts with {letter}.",
        "How about {word}?",
        "{word}!",
        "{word} begins with the letter {letter}.",
    ],
}
LEADS = ["Okay.", "Sure.", "Here we go.", "Ready?", "Let's go."]

register(CATEGORY, TEMPLATES)

WEIGHTS = {
    "count": 2.5,
    "count_down": 1.2,
    "count_twos": 0.6,
    "after": 2.0,
    "before": 1.5,
    "between": 0.7,
    "riddle": 1.0,
    "starts_with": 1.0,
}

w = number_to_words


def sequence(numbers: list[int]) -> tuple[str, list[str]]:
    """ "One, two, three." and its accept strings (word and digit forms)."""
    words = [number_to_words(n) for n in numbers]
    text = cap(", ".join(words)) + "."
    return text, [normalize(" ".join(words)), " ".join(str(n) for n in numbers)]


def count_qa(ctx: Ctx, start: int, end: int, intent: str, step: int, filler: bool = True) -> QA:
    numbers = list(range(start, end + (1 if step > 0 else -1), step))
    tid, human = ctx.render(intent, {"a": w(start), "b": w(end)}, category=CATEGORY, filler=filler)
    text, accept = sequence(numbers)
    answer = [Sentence(text)]
    if ctx.rng.random() < 0.25:
        answer.insert(0, sentence(ctx.choice(LEADS)))
    return QA(intent, tid, human, answer, accept, {"start": start, "end": end, "step": step})


def count_range(ctx: Ctx) -> tuple[int, int]:
    """An ascending range of three to ten numbers."""
    start = ctx.rng.randint(0, 95 if ctx.rng.random() < 0.2 else 20)
    return start, start + ctx.rng.randint(2, 9)


def count(ctx: Ctx, filler: bool = True) -> QA:
    start, end = count_range(ctx)
    return count_qa(ctx, start, end, "count", 1, filler)


def count_down(ctx: Ctx) -> QA:
    start, end = count_range(ctx)
    return count_qa(ctx, end, start, "count_down", -1)


def count_twos(ctx: Ctx) -> QA:
    start = 2 * ctx.rng.randint(0, 10) + (1 if ctx.rng.random() < 0.3 else 0)
    return count_qa(ctx, start, start + 2 * ctx.rng.randint(2, 7), "count_twos", 2)


# ---------------------------------------------------------------------------------------------
# Sequences: days, months, letters, numbers


def _seq_item(kind: str, i: int) -> tuple[str, list[str]]:
    """Display text and accept strings of element `i` of a sequence kind."""
    if kind == "number":
        return w(i), num_accept(i)
    if kind == "letter":
        letter = string.ascii_uppercase[i]
        return f"the letter {letter}", [f"letter {letter.lower()}"]
    name = load("calendar")[kind + "s"][i % (7 if kind == "day" else 12)]
    return name, [name.lower()]


def neighbour(ctx: Ctx, kind: str, direction: int) -> tuple[int, int]:
    """Index of a random element of `kind` and of its neighbour (days and months wrap)."""
    if kind in ("day", "month"):
        n = 7 if kind == "day" else 12
        i = ctx.rng.randrange(n)
        return i, (i + direction) % n
    top = 26 if kind == "letter" else 101  # letters A..Z, numbers zero to one hundred
    i = ctx.rng.randrange(0, top - 1) if direction > 0 else ctx.rng.randrange(1, top)
    return i, i + direction


KINDS = ("day", "day", "month", "month", "letter", "number", "number")


def step_qa(
    ctx: Ctx, intent: str, kind: str | None = None, filler: bool = True, index: int | None = None
) -> QA:
    """What comes after/before an element of `kind` (random kind and element by default)."""
    kind = kind or ctx.choice(KINDS)
    direction = 1 if intent == "after" else -1
    if index is None:
        i, j = neighbour(ctx, kind, direction)
    else:
        i, j = index, wrap(kind, index + direction)
    x, _ = _seq_item(kind, i)
    y, accept = _seq_item(kind, j)
    tid, human = ctx.render(intent, {"x": x, "kind": kind}, category=CATEGORY, filler=filler)
    text = ctx.choice(ANSWERS[intent]).format(x=x, y=y, kind=kind)
    return QA(intent, tid, human, [sentence(text)], accept, {"kind": kind, "x": i, "answer": j})


def step_answer(ctx: Ctx, intent: str, kind: str, i: int, j: int) -> tuple[str, list[str]]:
    x, _ = _seq_item(kind, i)
    y, accept = _seq_item(kind, j)
    return ctx.choice(ANSWERS[intent]).format(x=x, y=y, kind=kind), accept


def wrap(kind: str, i: int) -> int:
    return i % 7 if kind == "day" else i % 12 if kind == "month" else i


def between(ctx: Ctx) -> QA:
    a = ctx.rng.randint(0, 98)
    slots = {"a": w(a), "b": w(a + 2), "c": w(a + 1)}
    tid, human = ctx.render("between", slots, category=CATEGORY)
    text = ctx.choice(ANSWERS["between"]).format(**slots)
    return QA(
        "between",
        tid,
        human,
        [sentence(text)],
        num_accept(a + 1),
        {"a": a, "b": a + 2, "answer": a + 1},
    )


def riddle(ctx: Ctx) -> QA:
    r = ctx.choice(load("riddles"))
    tid, human = ctx.render("riddle", {"q": r["q"]}, category=CATEGORY)
    text = ctx.choice(ANSWERS["riddle"]).format(a=r["a"])
    return QA(
        "riddle", tid, human, [sentence(text)], [normalize(a) for a in r["accept"]], {"q": r["q"]}
    )


@cache
def words_by_letter() -> dict[str, list[str]]:
    """Letter -> known simple words starting with it (letters with at least two words)."""
    pool: list[str] = list(load("words")["spell"])
    pool += [a["animal"] for a in load("animals")]
    pool += [x for pair in load("opposites") for x in pair]
    pool += [x for group in load("rhymes") for x in group]
    out: dict[str, list[str]] = {}
    for word in pool:
        words = out.setdefault(word[0].upper(), [])
        if word not in words:
            words.append(word)
    return {k: v for k, v in sorted(out.items()) if len(v) >= 2}


def starts_with(ctx: Ctx) -> QA:
    table = words_by_letter()
    letter = ctx.choice(sorted(table))
    words = table[letter]
    word = ctx.choice(words)
    tid, human = ctx.render("starts_with", {"letter": letter}, category=CATEGORY)
    text = ctx.choice(ANSWERS["starts_with"]).format(word=word, letter=letter)
    facts: dict[str, Any] = {"letter": letter, "word": word}
    return QA("starts_with", tid, human, [sentence(text)], [normalize(x) for x in words], facts)


MAKERS: dict[str, Callable[[Ctx], QA]] = {
    "count": count,
    "count_down": count_down,
    "count_twos": count_twos,
    "after": lambda ctx: step_qa(ctx, "after"),
    "before": lambda ctx: step_qa(ctx, "before"),
    "between": between,
    "riddle": riddle,
    "starts_with": starts_with,
}


def make(ctx: Ctx) -> DialogueItem:
    """One gaming item (intent drawn by `WEIGHTS`)."""
    return item_from(ctx, [MAKERS[ctx.weighted(WEIGHTS)](ctx)])
