"""Creativity: short stories composed from data-file pieces (a character, a place, an event, maybe a
middle, an ending: two to four sentences), two-line poems, jokes, and singing the scale ("Sing do
re mi", answered by one sentence "Do re mi fa so la ti do." in the "sing" style).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aqaa.data.schema import DialogueItem, Sentence
from aqaa.data.tasks.base import QA, Ctx, a_an, cap, item_from, load, normalize, register, sentence

CATEGORY = "creativity"

SCALE = "Do re mi fa so la ti do."

TEMPLATES: dict[str, list[str]] = {
    "story": [
        "Tell me a short story about {a_kind}.",
        "Can you tell me a story about {a_kind}?",
        "I'd love a short story about {a_kind}.",
        "Make up a little story about {a_kind}.",
        "Tell me a bedtime story about {a_kind}.",
        "Please tell me a tiny story with {a_kind} in it.",
        "Story time! Tell me about {a_kind}.",
        "Could you make up a story about {a_kind}?",
        "Invent a quick story about {a_kind}.",
        "Tell me a story about {a_kind} who lived {place}.",
        "Tell me a story set {place}, with {a_kind} in it.",
        "I can't sleep. Can you tell me a story about {a_kind}?",
        "Do you know any stories about {a_kind}?",
        "Give me a really short story about {a_kind}.",
    ],
    "poem": [
        "Say a short poem about {topic}.",
        "Can you make up a rhyme about {topic}?",
        "Tell me a little poem about {topic}.",
        "I'd like a poem about {topic}.",
        "Make up a tiny poem about {topic}.",
        "Do you know a poem about {topic}?",
        "Recite a short rhyme about {topic}.",
        "Make a rhyme about {topic}.",
        "Give me a two line poem about {topic}.",
        "Could you say a rhyming poem about {topic}?",
    ],
    "joke": [
        "Tell me a joke.",
        "Do you know any jokes?",
        "Make me laugh.",
        "Can you tell me a funny joke?",
        "I need a good joke.",
        "Tell me something funny.",
        "Got any jokes for me?",
        "I'm bored. Tell me a joke!",
        "What's your best joke?",
        "Can you cheer me up with a joke?",
    ],
    "sing": [
        "Sing do re mi.",
        "Sing the scale.",
        "Can you sing the musical scale?",
        "Please sing do, re, mi.",
        "Sing the notes from do up to do.",
        "Sing me the scale.",
        "Let me hear you sing do re mi.",
        "Can you sing up the scale?",
        "Sing a scale for me.",
        "Go up the scale: sing do re mi.",
        "Sing the do re mi song.",
    ],
}

register(CATEGORY, TEMPLATES)

WEIGHTS = {"story": 3.0, "poem": 1.5, "joke": 1.5, "sing": 1.5}


def story(ctx: Ctx) -> QA:
    pieces = load("stories")
    char = ctx.choice(pieces["characters"])
    name = ctx.choice(char["names"])
    place = ctx.choice(pieces["places"])
    slots: dict[str, Any] = {
        "kind": char["kind"],
        "a_kind": a_an(char["kind"]),
        "name": name,
        "place": place,
    }
    slots["Name"] = name  # story pieces start sentences with {Name}
    tid, human = ctx.render("story", slots, category=CATEGORY)
    parts = [ctx.choice(pieces["intros"]), ctx.choice(pieces["events"])]
    if ctx.rng.random() < 0.4:
        parts.append(ctx.choice(pieces["middles"]))
    if ctx.rng.random() < 0.75:
        parts.append(ctx.choice(pieces["endings"]))
    answer = [sentence(p.format(**slots)) for p in parts]
    return QA(
        "story", tid, human, answer, [normalize(char["kind"])], {"kind": char["kind"], "name": name}
    )


def poem(ctx: Ctx) -> QA:
    poems = load("poems")
    topic = ctx.choice(sorted(poems))
    lines = ctx.choice(poems[topic])
    tid, human = ctx.render("poem", {"topic": topic}, category=CATEGORY)
    accept = [normalize(topic.removeprefix("the ").removeprefix("a "))]
    return QA("poem", tid, human, [sentence(line) for line in lines], accept, {"topic": topic})


def joke(ctx: Ctx) -> QA:
    setup, punchline = ctx.choice(load("jokes"))
    tid, human = ctx.render("joke", category=CATEGORY)
    answer = [Sentence(cap(setup)), Sentence(cap(punchline))]
    if ctx.rng.random() < 0.3:
        answer.insert(0, sentence(ctx.choice(["Okay, here's one.", "Sure!", "Here's a good one."])))
    return QA("joke", tid, human, answer, [], {"setup": setup})


def sing(ctx: Ctx) -> QA:
    tid, human = ctx.render("sing", category=CATEGORY)
    return QA("sing", tid, human, [Sentence(SCALE, "sing")], ["do re mi"], {})


MAKERS: dict[str, Callable[[Ctx], QA]] = {"story": story, "poem": poem, "joke": joke, "sing": sing}


def make(ctx: Ctx) -> DialogueItem:
    """One creativity item (intent drawn by `WEIGHTS`)."""
    return item_from(ctx, [MAKERS[ctx.weighted(WEIGHTS)](ctx)])
