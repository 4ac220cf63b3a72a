"""Knowledge: capitals (both ways), colours of things, animal sounds, young and legs, units
("how many days are in a week?"), sides of shapes and a table of simple science and world facts.
"""

from __future__ import annotations

from typing import Any

from aqaa.data.schema import DialogueItem
from aqaa.data.tasks.base import (
    QA,
    Ctx,
    a_an,
    item_from,
    load,
    normalize,
    num_accept,
    number_to_words,
    register,
    sentence,
)

CATEGORY = "knowledge"

TEMPLATES: dict[str, list[str]] = {
    "capital": [
        "What is the capital of {country}?",
        "What's the capital of {country}?",
        "Do you know {country_s} capital city?",
        "Tell me, which city is the capital of {country}?",
        "{country}. What is its capital?",
        "Which city is the capital of {country}?",
        "What is the capital city of {country}?",
        "Can you tell me the capital of {country}?",
        "I forgot the capital of {country}. What is it?",
        "Name the capital of {country}.",
        "What city is {country_s} capital?",
        "Where is the capital of {country}? Which city?",
        "Could you tell me what the capital of {country} is?",
        "I'm curious, what's the capital city of {country}?",
        "The capital of {country} is what?",
        "Which city does {country} have as its capital?",
        "Tell me the capital of {country}, please.",
        "Do you happen to know the capital of {country}?",
        "What do they call the capital of {country}?",
        "In {country}, which city is the capital?",
    ],
    "capital_country": [
        "{capital} is the capital of which country?",
        "Which country has {capital} as its capital?",
        "What country is {capital} the capital of?",
        "Do you know which country's capital is {capital}?",
        "{capital}. Which country is that the capital of?",
        "Tell me which country has the capital city {capital}.",
        "Of which country is {capital} the capital?",
        "I know the city {capital}. Which country is it the capital of?",
    ],
    "colour": [
        "What colour is {thing}?",
        "Which colour is {thing}?",
        "Do you know what colour {thing} is?",
        "Tell me the colour of {thing}.",
        "What is the colour of {thing}?",
        "{thing} is what colour?",
        "What colour do you think {thing} is?",
        "If you look at {thing}, what colour is it?",
        "What colour would {thing} be?",
        "Can you tell me what colour {thing} is?",
        "I forgot what colour {thing} is. Do you know?",
        "Think of {thing}. What colour is it?",
    ],
    "animal_sound": [
        "What sound does {a_animal} make?",
        "What does {a_animal} say?",
        "What noise does {a_animal} make?",
        "What do {animals} say?",
        "What sound do {animals} make?",
        "Which sound does the {animal} make?",
        "Can you tell me what sound {a_animal} makes?",
        "Do you know what noise {animals} make?",
        "If you hear {a_animal}, what does it say?",
        "{animals}. What sound do they make?",
        "Make the sound of {a_animal}.",
        "How does {a_animal} sound? What does it say?",
        "On Old MacDonald's farm there was {a_animal}. What did it say?",
    ],
    "animal_young": [
        "What is a baby {animal} called?",
        "What do you call a baby {animal}?",
        "What's the name for a baby {animal}?",
        "A baby {animal} is called what?",
        "What is the word for a young {animal}?",
        "Do you know what baby {animals} are called?",
        "What do we call a young {animal}?",
        "Tell me what a baby {animal} is called.",
        "When {a_animal} has a baby, what is the baby called?",
    ],
    "animal_legs": [
        "How many legs does {a_animal} have?",
        "How many legs has {a_animal} got?",
        "Count the legs on {a_animal}. How many are there?",
        "Do you know how many legs {animals} have?",
        "{a_animal} has how many legs?",
        "What is the number of legs on {a_animal}?",
        "How many legs do {animals} have?",
        "Tell me how many legs {a_animal} has.",
        "How many legs does {a_animal} walk on?",
    ],
    "fact": [
        "{q}",
        "Here is a question for you. {q}",
        "I have a science question. {q}",
        "Can you tell me something? {q}",
        "Test time! {q}",
        "Let me ask you this. {q}",
        "Do you happen to know this? {q}",
        "My teacher asked me this. {q}",
        "I was wondering about something. {q}",
        "Here's one for you. {q}",
        "Let's see if you know this one. {q}",
    ],
    "unit_count": [
        "How many {small} are there in {a_big}?",
        "How many {small} are in {a_big}?",
        "How many {small} make {a_big}?",
        "{a_big} has how many {small}?",
        "Do you know how many {small} there are in {a_big}?",
        "Tell me how many {small} are in {a_big}.",
        "How many {small} does {a_big} have?",
        "In {a_big}, how many {small} are there?",
        "Can you tell me the number of {small} in {a_big}?",
    ],
    "shape_sides": [
        "How many sides does {a_shape} have?",
        "How many sides has {a_shape} got?",
        "Tell me how many sides {a_shape} has.",
        "{a_shape} has how many sides?",
        "Do you know how many sides there are on {a_shape}?",
        "Count the sides of {a_shape}. How many are there?",
        "If I draw {a_shape}, how many sides will it have?",
    ],
}

ANSWERS: dict[str, list[str]] = {
    "capital": [
        "The capital of {country} is {capital}.",
        "{capital} is the capital of {country}.",
        "It's {capital}.",
        "That would be {capital}.",
        "The capital city is {capital}.",
        "{capital}.",
    ],
    "capital_country": [
        "{capital} is the capital of {country}.",
        "That's {country}.",
        "It's the capital of {country}.",
        "{country}.",
    ],
    "colour": [
        "{thing} is {colour}.",
        "It's {colour}.",
        "{thing} is usually {colour}.",
        "The colour of {thing} is {colour}.",
        "{colour}.",
    ],
    "animal_sound": [
        "{a_animal} says {sound}.",
        "{animals} go {sound}.",
        "The {animal} goes {sound}.",
        "{sound}, that's what {a_animal} says.",
        "It says {sound}.",
    ],
    "animal_young": [
        "A baby {animal} is called {a_young}.",
        "It's called {a_young}.",
        "We call it {a_young}.",
        "A young {animal} is {a_young}.",
    ],
    "animal_legs": [
        "{a_animal} has {n} legs.",
        "{animals} have {n} legs.",
        "It has {n} legs.",
        "{n} legs.",
    ],
    "unit_count": [
        "There are {n} {small} in {a_big}.",
        "{a_big} has {n} {small}.",
        "{n} {small}.",
        "The answer is {n}.",
    ],
    "shape_sides": [
        "{a_shape} has {n} sides.",
        "It has {n} sides.",
        "{n} sides.",
    ],
}

register(CATEGORY, TEMPLATES)

WEIGHTS = {
    "capital": 3.0,
    "capital_country": 1.0,
    "colour": 2.0,
    "animal_sound": 1.5,
    "animal_young": 1.0,
    "animal_legs": 1.0,
    "fact": 2.5,
    "unit_count": 1.0,
    "shape_sides": 0.7,
}


def possessive(name: str) -> str:
    return name + ("'" if name.endswith("s") else "'s")


def _answer(ctx: Ctx, intent: str, slots: dict[str, Any]) -> str:
    return ctx.choice(ANSWERS[intent]).format(**slots)


def countries() -> list[dict[str, str]]:
    return load("countries")


def capital(ctx: Ctx, country: dict[str, str] | None = None, filler: bool = True) -> QA:
    c = country or ctx.choice(countries())
    slots = {
        "country": c["country"],
        "country_s": possessive(c["country"]),
        "capital": c["capital"],
    }
    tid, human = ctx.render("capital", slots, category=CATEGORY, filler=filler)
    return QA(
        "capital",
        tid,
        human,
        [sentence(_answer(ctx, "capital", slots))],
        [normalize(c["capital"])],
        {"country": c["country"], "capital": c["capital"]},
    )


def capital_answer(ctx: Ctx, c: dict[str, str]) -> str:
    """An answer sentence naming the capital of country `c` (for follow-up turns)."""
    return _answer(ctx, "capital", {"country": c["country"], "capital": c["capital"]})


def capital_country(ctx: Ctx) -> QA:
    c = ctx.choice(countries())
    slots = {"country": c["country"], "capital": c["capital"]}
    tid, human = ctx.render("capital_country", slots, category=CATEGORY)
    return QA(
        "capital_country",
        tid,
        human,
        [sentence(_answer(ctx, "capital_country", slots))],
        [normalize(c["country"].removeprefix("the "))],
        {"country": c["country"], "capital": c["capital"]},
    )


def colour_things() -> list[dict[str, Any]]:
    return load("colours")


def colour(ctx: Ctx, thing: dict[str, Any] | None = None, filler: bool = True) -> QA:
    t = thing or ctx.choice(colour_things())
    slots = {"thing": t["thing"], "colour": t["colours"][0]}
    tid, human = ctx.render("colour", slots, category=CATEGORY, filler=filler)
    return QA(
        "colour",
        tid,
        human,
        [sentence(colour_answer(ctx, t))],
        [normalize(c) for c in t["colours"]],
        {"thing": t["thing"], "colours": list(t["colours"])},
    )


def colour_answer(ctx: Ctx, t: dict[str, Any]) -> str:
    return _answer(ctx, "colour", {"thing": t["thing"], "colour": t["colours"][0]})


def _animal_slots(a: dict[str, Any]) -> dict[str, str]:
    return {"animal": a["animal"], "a_animal": a_an(a["animal"]), "animals": a["plural"]}


def animal_sound(ctx: Ctx, filler: bool = True) -> QA:
    a = ctx.choice([a for a in load("animals") if a["sounds"]])
    slots = _animal_slots(a) | {"sound": a["sounds"][0]}
    tid, human = ctx.render("animal_sound", slots, category=CATEGORY, filler=filler)
    return QA(
        "animal_sound",
        tid,
        human,
        [sentence(_answer(ctx, "animal_sound", slots))],
        [normalize(s) for s in a["sounds"]],
        {"animal": a["animal"], "sounds": list(a["sounds"])},
    )


def animal_young(ctx: Ctx) -> QA:
    a = ctx.choice([a for a in load("animals") if a["young"]])
    slots = _animal_slots(a) | {"a_young": a_an(a["young"][0])}
    tid, human = ctx.render("animal_young", slots, category=CATEGORY)
    return QA(
        "animal_young",
        tid,
        human,
        [sentence(_answer(ctx, "animal_young", slots))],
        [normalize(y) for y in a["young"]],
        {"animal": a["animal"], "young": list(a["young"])},
    )


def animal_legs(ctx: Ctx) -> QA:
    a = ctx.choice([a for a in load("animals") if a["legs"]])
    slots = _animal_slots(a) | {"n": number_to_words(a["legs"])}
    tid, human = ctx.render("animal_legs", slots, category=CATEGORY)
    return QA(
        "animal_legs",
        tid,
        human,
        [sentence(_answer(ctx, "animal_legs", slots))],
        num_accept(a["legs"]),
        {"animal": a["animal"], "answer": a["legs"]},
    )


def fact(ctx: Ctx) -> QA:
    f = ctx.choice(load("facts"))
    tid, human = ctx.render("fact", {"q": f["q"]}, category=CATEGORY)
    text = ctx.choice(f["a"])
    if "n" in f:
        text = text.format(n=number_to_words(f["n"]))
        accept = num_accept(f["n"])
    else:
        accept = [normalize(a) for a in f["accept"]]
    return QA("fact", tid, human, [sentence(text)], accept, {"q": f["q"], "answer": f.get("n")})


def unit_count(ctx: Ctx) -> QA:
    u = ctx.choice(load("measures")["units"])
    slots = {"small": u["small"], "a_big": a_an(u["big"]), "n": number_to_words(u["n"])}
    tid, human = ctx.render("unit_count", slots, category=CATEGORY)
    return QA(
        "unit_count",
        tid,
        human,
        [sentence(_answer(ctx, "unit_count", slots))],
        num_accept(u["n"]),
        {"small": u["small"], "big": u["big"], "answer": u["n"]},
    )


def shape_sides(ctx: Ctx) -> QA:
    s = ctx.choice(load("measures")["shapes"])
    slots = {"a_shape": a_an(s["shape"]), "n": number_to_words(s["sides"])}
    tid, human = ctx.render("shape_sides", slots, category=CATEGORY)
    return QA(
        "shape_sides",
        tid,
        human,
        [sentence(_answer(ctx, "shape_sides", slots))],
        num_accept(s["sides"]),
        {"shape": s["shape"], "answer": s["sides"]},
    )


MAKERS = {
    "capital": capital,
    "capital_country": capital_country,
    "colour": colour,
    "animal_sound": animal_sound,
    "animal_young": animal_young,
    "animal_legs": animal_legs,
    "fact": fact,
    "unit_count": unit_count,
    "shape_sides": shape_sides,
}


def make(ctx: Ctx) -> DialogueItem:
    """One knowledge item (intent drawn by `WEIGHTS`)."""
    return item_from(ctx, [MAKERS[ctx.weighted(WEIGHTS)](ctx)])
