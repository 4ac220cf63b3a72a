"""Reasoning: addition, subtraction and multiplication of small numbers, doubling and halving,
comparisons ("which is bigger, twelve or twenty-one?"), odd or even, and one-step word problems.

Every turn's facts hold `op`, the operands and `answer`, so tests can recompute the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aqaa.data.schema import DialogueItem
from aqaa.data.tasks.base import (
    QA,
    Ctx,
    item_from,
    load,
    num_accept,
    number_to_words,
    register,
    sentence,
)

CATEGORY = "reasoning"

TEMPLATES: dict[str, list[str]] = {
    "add": [
        "What is {a} plus {b}?",
        "What's {a} plus {b}?",
        "How much is {a} plus {b}?",
        "Can you add {a} and {b}?",
        "Add {a} and {b}.",
        "What do you get if you add {a} to {b}?",
        "{a} plus {b}. What does that make?",
        "If I have {a} and add {b}, what do I get?",
        "Please work out {a} plus {b}.",
        "What is the sum of {a} and {b}?",
        "Tell me what {a} and {b} add up to.",
        "Quick maths: {a} plus {b}?",
        "{a} and {b} together make what?",
        "Do you know what {a} plus {b} is?",
        "What does {a} plus {b} equal?",
        "Could you add up {a} and {b} for me?",
        "I need help with my homework. What is {a} plus {b}?",
    ],
    "subtract": [
        "What is {a} minus {b}?",
        "What's {a} take away {b}?",
        "Take {b} away from {a}.",
        "Subtract {b} from {a}.",
        "How much is {a} minus {b}?",
        "What do you get when you take {b} from {a}?",
        "{a} minus {b}. What is left?",
        "What is the difference between {a} and {b}?",
        "Can you work out {a} minus {b}?",
        "What does {a} minus {b} equal?",
        "If you start with {a} and take away {b}, what's left?",
        "Tell me what {a} take away {b} is.",
        "Quick sum for you: {a} minus {b}?",
    ],
    "multiply": [
        "What is {a} times {b}?",
        "What's {a} multiplied by {b}?",
        "Multiply {a} by {b}.",
        "How much is {a} times {b}?",
        "What do you get if you multiply {a} and {b}?",
        "{a} times {b}. What's the answer?",
        "What are {a} lots of {b}?",
        "What is the product of {a} and {b}?",
        "Can you tell me {a} times {b}?",
        "How much are {a} groups of {b}?",
        "Times tables! What is {a} times {b}?",
        "Could you multiply {a} by {b} for me?",
    ],
    "double": [
        "What is double {n}?",
        "What's twice {n}?",
        "Double {n}. What do you get?",
        "If you double {n}, what do you get?",
        "How much is {n} doubled?",
        "Can you double {n} for me?",
        "Tell me what twice {n} is.",
    ],
    "half": [
        "What is half of {n}?",
        "What's half of {n}?",
        "Halve {n}. What do you get?",
        "If you cut {n} in half, how much is each half?",
        "Tell me half of {n}.",
        "How much is half of {n}?",
    ],
    "bigger": [
        "Which is bigger, {a} or {b}?",
        "Which number is larger, {a} or {b}?",
        "Which is more, {a} or {b}?",
        "{a} or {b}: which one is bigger?",
        "Tell me which is bigger: {a} or {b}.",
        "Is {a} or {b} the bigger number?",
        "Out of {a} and {b}, which is larger?",
        "What's bigger, {a} or {b}?",
        "Between {a} and {b}, which number is greater?",
        "Pick the bigger number: {a} or {b}.",
        "Which is the higher number, {a} or {b}?",
    ],
    "smaller": [
        "Which is smaller, {a} or {b}?",
        "Which number is less, {a} or {b}?",
        "{a} or {b}: which one is smaller?",
        "Tell me the smaller number, {a} or {b}.",
        "Between {a} and {b}, which is lower?",
        "Which is the smaller of {a} and {b}?",
        "Pick the smaller one: {a} or {b}.",
        "What's less, {a} or {b}?",
    ],
    "odd_even": [
        "Is {n} odd or even?",
        "Is {n} an even number or an odd number?",
        "Tell me if {n} is odd or even.",
        "Odd or even: {n}?",
        "Would you say {n} is even or odd?",
        "{n}. Is that odd or even?",
        "Is the number {n} even or odd?",
        "Can you tell me whether {n} is odd or even?",
        "I'm thinking of {n}. Is it odd or even?",
    ],
    "word_add": [
        "{name} has {a} {things}. {pronoun} gets {b} more. How many {things} does {name} have now?",
        "{name} had {a} {things} and found {b} more. How many {things} does {name} have?",
        "There are {a} {things} on the table and {name} puts {b} more there. "
        "How many {things} are on the table now?",
        "{name} collected {a} {things} in the morning and {b} in the afternoon. "
        "How many did {name} collect in all?",
        "If you have {a} {things} and a friend gives you {b} more, how many do you have?",
        "{name} bought {a} {things}, then bought {b} more. How many {things} did {name} buy altogether?",
    ],
    "word_sub": [
        "{name} has {a} {things} and gives {b} away. How many {things} are left?",
        "{name} had {a} {things} but lost {b}. How many does {name} have now?",
        "There were {a} {things} in a box. {name} took out {b}. How many are still in the box?",
        "If you have {a} {things} and you give {b} to a friend, how many do you have left?",
        "{name} needs {a} {things} and already has {b}. How many more does {name} need?",
        "A shop had {a} {things} and sold {b} of them. How many {things} does the shop have now?",
    ],
    "word_mul": [
        "There are {a} {containers} with {b} {things} in each. How many {things} are there in total?",
        "{name} has {a} {containers}, and each one holds {b} {things}. "
        "How many {things} is that altogether?",
        "Each of {a} children has {b} {things}. How many {things} do they have together?",
        "If one {container} holds {b} {things}, how many {things} do {a} {containers} hold?",
        "{name} buys {a} {containers} of {things} with {b} in each. How many {things} does {name} have?",
    ],
}

ANSWERS: dict[str, list[str]] = {
    "add": [
        "{a} plus {b} is {c}.",
        "{a} plus {b} equals {c}.",
        "That makes {c}.",
        "The answer is {c}.",
        "It's {c}.",
    ],
    "subtract": [
        "{a} minus {b} is {c}.",
        "{a} take away {b} leaves {c}.",
        "That leaves {c}.",
        "The answer is {c}.",
        "It's {c}.",
    ],
    "multiply": [
        "{a} times {b} is {c}.",
        "{a} multiplied by {b} equals {c}.",
        "That makes {c}.",
        "The answer is {c}.",
        "It's {c}.",
    ],
    "double": ["Double {n} is {c}.", "Twice {n} is {c}.", "That's {c}.", "It's {c}."],
    "half": ["Half of {n} is {c}.", "That's {c}.", "Each half is {c}.", "It's {c}."],
    "bigger": ["{c} is bigger.", "{c} is the bigger number.", "The bigger one is {c}.", "{c}."],
    "smaller": ["{c} is smaller.", "{c} is the smaller number.", "The smaller one is {c}.", "{c}."],
    "odd_even": ["{n} is {parity}.", "It's an {parity} number.", "{n} is an {parity} number."],
    "word_add": ["That makes {c} {things}.", "The answer is {c}.", "{c} {things} altogether."],
    "word_sub": ["The answer is {c}.", "That leaves {c} {things}.", "It's {c} {things}."],
    "word_mul": ["That makes {c} {things}.", "The answer is {c}.", "{c} {things} in total."],
}

register(CATEGORY, TEMPLATES)

WEIGHTS = {
    "add": 3.0,
    "subtract": 2.5,
    "multiply": 2.0,
    "double": 0.7,
    "half": 0.7,
    "bigger": 1.5,
    "smaller": 1.0,
    "odd_even": 1.2,
    "word_add": 0.8,
    "word_sub": 0.8,
    "word_mul": 0.6,
}

OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "max": max,
    "min": min,
    "//": lambda a, b: a // b,
}


def w(n: int) -> str:
    return number_to_words(n)


def _arith(ctx: Ctx, intent: str, op: str, a: int, b: int, filler: bool = True) -> QA:
    c = OPS[op](a, b)
    tid, human = ctx.render(intent, {"a": w(a), "b": w(b)}, category=CATEGORY, filler=filler)
    answer = ctx.choice(ANSWERS[intent]).format(a=w(a), b=w(b), c=w(c))
    return QA(
        intent,
        tid,
        human,
        [sentence(answer)],
        num_accept(c),
        {"op": op, "a": a, "b": b, "answer": c},
    )


def operands(ctx: Ctx, op: str) -> tuple[int, int]:
    """Small operands for `op` ("+", "-" or "*"); subtraction never goes below zero."""
    rng = ctx.rng
    if op == "+":
        hi = 50 if rng.random() < 0.15 else 20
        return rng.randint(0, hi), rng.randint(1, hi)
    if op == "-":
        a = rng.randint(2, 40 if rng.random() < 0.2 else 20)
        return a, rng.randint(1, a)
    return rng.randint(0 if rng.random() < 0.05 else 1, 12), rng.randint(1, 10)


def add(ctx: Ctx, filler: bool = True) -> QA:
    return _arith(ctx, "add", "+", *operands(ctx, "+"), filler=filler)


def subtract(ctx: Ctx, filler: bool = True) -> QA:
    return _arith(ctx, "subtract", "-", *operands(ctx, "-"), filler=filler)


def multiply(ctx: Ctx, filler: bool = True) -> QA:
    return _arith(ctx, "multiply", "*", *operands(ctx, "*"), filler=filler)


def _scale(ctx: Ctx, intent: str) -> QA:
    if intent == "double":
        n = ctx.rng.randint(1, 50)
        c, facts = 2 * n, {"op": "*", "a": n, "b": 2}
    else:
        n = 2 * ctx.rng.randint(1, 50)
        c, facts = n // 2, {"op": "//", "a": n, "b": 2}
    tid, human = ctx.render(intent, {"n": w(n)}, category=CATEGORY)
    answer = ctx.choice(ANSWERS[intent]).format(n=w(n), c=w(c))
    return QA(intent, tid, human, [sentence(answer)], num_accept(c), facts | {"answer": c})


def _pair(ctx: Ctx) -> tuple[int, int]:
    rng = ctx.rng
    if rng.random() < 0.4:  # digits swapped: twelve or twenty-one
        x, y = rng.sample(range(1, 10), 2)
        a, b = 10 * x + y, 10 * y + x
    else:
        a, b = rng.sample(range(0, 101 if rng.random() < 0.5 else 21), 2)
    return (a, b) if rng.random() < 0.5 else (b, a)


def compare(ctx: Ctx, intent: str) -> QA:
    a, b = _pair(ctx)
    op = "max" if intent == "bigger" else "min"
    c = OPS[op](a, b)
    tid, human = ctx.render(intent, {"a": w(a), "b": w(b)}, category=CATEGORY)
    answer = ctx.choice(ANSWERS[intent]).format(c=w(c))
    return QA(
        intent,
        tid,
        human,
        [sentence(answer)],
        num_accept(c),
        {"op": op, "a": a, "b": b, "answer": c},
    )


def odd_even(ctx: Ctx) -> QA:
    n = ctx.rng.randint(0, 100)
    parity = "even" if n % 2 == 0 else "odd"
    tid, human = ctx.render("odd_even", {"n": w(n)}, category=CATEGORY)
    answer = ctx.choice(ANSWERS["odd_even"]).format(n=w(n), parity=parity)
    return QA(
        "odd_even",
        tid,
        human,
        [sentence(answer)],
        [parity],
        {"op": "parity", "a": n, "answer": parity},
    )


def word_problem(ctx: Ctx, intent: str) -> QA:
    rng = ctx.rng
    people = load("people")
    name = ctx.choice(people["names"])
    _thing, things = ctx.choice(people["things"])
    container, containers = ctx.choice(people["containers"])
    if intent == "word_add":
        op, a, b = "+", rng.randint(2, 15), rng.randint(2, 15)
    elif intent == "word_sub":
        a = rng.randint(6, 20)
        op, b = "-", rng.randint(2, a - 2)
    else:
        op, a, b = "*", rng.randint(2, 6), rng.randint(2, 10)
    c = OPS[op](a, b)
    slots: dict[str, Any] = {
        "name": name,
        "pronoun": "she" if name in people["female"] else "he",
        "a": w(a),
        "b": w(b),
        "things": things,
        "container": container,
        "containers": containers,
    }
    tid, human = ctx.render(intent, slots, category=CATEGORY)
    answer = ctx.choice(ANSWERS[intent]).format(c=w(c), things=things)
    return QA(
        intent,
        tid,
        human,
        [sentence(answer)],
        num_accept(c),
        {"op": op, "a": a, "b": b, "answer": c},
    )


MAKERS: dict[str, Callable[[Ctx], QA]] = {
    "add": add,
    "subtract": subtract,
    "multiply": multiply,
    "double": lambda ctx: _scale(ctx, "double"),
    "half": lambda ctx: _scale(ctx, "half"),
    "bigger": lambda ctx: compare(ctx, "bigger"),
    "smaller": lambda ctx: compare(ctx, "smaller"),
    "odd_even": odd_even,
    "word_add": lambda ctx: word_problem(ctx, "word_add"),
    "word_sub": lambda ctx: word_problem(ctx, "word_sub"),
    "word_mul": lambda ctx: word_problem(ctx, "word_mul"),
}


def make(ctx: Ctx) -> DialogueItem:
    """One reasoning item (intent drawn by `WEIGHTS`)."""
    return item_from(ctx, [MAKERS[ctx.weighted(WEIGHTS)](ctx)])
