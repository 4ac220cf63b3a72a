"""Multi-turn: two- and three-turn dialogues whose follow-ups only make sense in context.

* capital / colour / opposite / spell: "What is the capital of Peru?" -> "And of Chile?"
* arithmetic: "What is seven plus eight?" -> "Add three to that." -> "Now double it."
* restyle: "Say hello." -> "Say that again, faster." -> "Now sounding sad." (answer styles follow)
* count_back: "Count from one to four." -> "Now count backwards."
* after: "What comes after Monday?" -> "And after that?"
* vu_again: "Is my voice high or low?" -> "And now?" (the label may change between turns)
* repeat: any question -> "Sorry, what was that?" (the same answer again)

First turns reuse the templates of the other categories (same ids, same split), so a held-out
phrasing stays held out; follow-ups have their own templates, split the same way. The item's
`template` is its first follow-up's template and its `intent` is the dialogue kind above.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aqaa.data.schema import DialogueItem, Sentence
from aqaa.data.tasks import emotion, gaming, knowledge, language, reasoning, voice_understanding
from aqaa.data.tasks.base import (
    QA,
    Ctx,
    item_from,
    load,
    normalize,
    num_accept,
    number_to_words,
    register,
    sentence,
)
from aqaa.data.tasks.voice_instruction import MORE, phrase_sentence

CATEGORY = "multi_turn"

TEMPLATES: dict[str, list[str]] = {
    # First turn of a restyle dialogue.
    "say": [
        "Say {phrase}.",
        "Can you say {phrase}?",
        "Please say {phrase}.",
        "Say the words {phrase}.",
        "Let me hear you say {phrase}.",
        "Repeat after me: {phrase}.",
        "Could you say {phrase} for me?",
        "Say {phrase} to me.",
    ],
    # Follow-ups.
    "and_next": [
        "What about {x}?",
        "How about {x}?",
        "And {x}?",
        "Okay, and {x}?",
        "And what about {x}?",
        "{x}?",
        "Same question for {x}.",
        "Now do {x}.",
        "Next one: {x}.",
        "And now {x}?",
    ],
    "capital_next": [
        "And of {country}?",
        "And the capital of {country}?",
        "What about the capital of {country}?",
        "And {country_s} capital?",
        "Which city is the capital of {country}, then?",
        "And what's the capital of {country}?",
    ],
    "colour_next": [
        "And what colour is {thing}?",
        "What colour is {thing}, then?",
        "And the colour of {thing}?",
        "Now tell me the colour of {thing}.",
        "What about the colour of {thing}?",
    ],
    "opposite_next": [
        "And the opposite of {word}?",
        "Now the opposite of {word}.",
        "Okay, what about the opposite of {word}?",
        "And what's the opposite of {word}?",
        "Do the same for {word}.",
    ],
    "spell_next": [
        "Now spell {word}.",
        "And how do you spell {word}?",
        "Can you spell {word} too?",
        "Next word to spell: {word}.",
        "Okay, now spell {word} for me.",
    ],
    "add_more": [
        "Add {n} to that.",
        "Now add {n}.",
        "Plus {n}?",
        "And if you add {n}?",
        "What if I add {n} more?",
        "Add another {n}.",
        "Then add {n}. What do you get?",
    ],
    "take_away": [
        "Now take away {n}.",
        "Subtract {n} from that.",
        "Minus {n}?",
        "Take {n} away from that.",
        "And if you take away {n}?",
        "What if you subtract {n}?",
        "Now take {n} off.",
    ],
    "double": [
        "Double it.",
        "Now double that.",
        "What is twice that?",
        "And if you double it?",
        "Double that number.",
        "What's that times two?",
    ],
    "again": [
        "Say that again, {how}.",
        "Again, but {how}.",
        "Now say it {how}.",
        "Repeat that {how}.",
        "Once more, {how}.",
        "Can you say it again {how}?",
        "Do it again, {how}.",
        "One more time, {how}, please.",
        "Try again, but {how}.",
        "And now {how}.",
        "Say it once more, but {how}.",
    ],
    "normal": [
        "Now say it normally.",
        "Say it again in your normal voice.",
        "Okay, now say it the normal way.",
        "Now just say it normally again.",
        "Back to your normal voice, please.",
    ],
    "count_back": [
        "Now count backwards.",
        "And now backwards, please.",
        "Can you count back down?",
        "Now do it in reverse.",
        "Count back down again.",
        "Now the other way.",
        "Now go backwards from {b} to {a}.",
    ],
    "after_that": [
        "And after that?",
        "What comes after that?",
        "And then?",
        "What's next after that one?",
        "And the one after that?",
        "Then what comes next?",
        "Keep going. What's next?",
    ],
    "vu_again": [
        "And now?",
        "What about now?",
        "How about now?",
        "And this time?",
        "Now what do you think?",
        "And what about this?",
        "Listen again. And now?",
    ],
    "repeat": [
        "Can you repeat that?",
        "Sorry, what was that?",
        "Pardon?",
        "I didn't catch that. Can you say it again?",
        "One more time?",
        "What did you say?",
        "Could you say that again, please?",
    ],
}

register(CATEGORY, TEMPLATES)

ARITH_ANSWERS = ["That makes {c}.", "{prev} {op} {n} is {c}.", "Now it's {c}.", "That gives {c}."]
DOUBLE_ANSWERS = ["Double {prev} is {c}.", "That makes {c}.", "Now it's {c}."]

WEIGHTS = {
    "capital": 1.5,
    "colour": 0.8,
    "opposite": 0.8,
    "spell": 0.8,
    "arithmetic": 2.0,
    "restyle": 2.0,
    "count_back": 1.0,
    "after": 1.0,
    "vu_again": 1.0,
    "repeat": 0.8,
}

w = number_to_words


class Dialogue:
    """Accumulates turns; the first follow-up's template becomes the item's template."""

    def __init__(self, ctx: Ctx, first: QA) -> None:
        self.ctx = ctx
        self.turns = [first]
        self.follow_template = ""

    def add(
        self,
        intent: str,
        slots: dict[str, Any],
        answer: list[Sentence],
        accept: list[str],
        **kw: Any,
    ) -> QA:
        tid, human = self.ctx.render(
            intent, slots, category=CATEGORY, filler=kw.pop("filler", True)
        )
        qa = QA(intent, tid, human, answer, accept, kw.pop("facts", {}), **kw)
        self.follow_template = self.follow_template or tid
        self.turns.append(qa)
        return qa

    def item(self, kind: str) -> DialogueItem:
        return item_from(self.ctx, self.turns, intent=kind, template=self.follow_template)


def _n_follow(ctx: Ctx) -> int:
    """One follow-up (70%) or two."""
    return 1 if ctx.rng.random() < 0.7 else 2


def _next_intent(ctx: Ctx, specific: str) -> str:
    return "and_next" if ctx.rng.random() < 0.5 else specific


def capital(ctx: Ctx) -> DialogueItem:
    countries = ctx.rng.sample(knowledge.countries(), 1 + _n_follow(ctx))
    d = Dialogue(ctx, knowledge.capital(ctx, countries[0]))
    for c in countries[1:]:
        slots = {
            "x": c["country"],
            "country": c["country"],
            "country_s": knowledge.possessive(c["country"]),
        }
        answer = [sentence(knowledge.capital_answer(ctx, c))]
        d.add(
            _next_intent(ctx, "capital_next"),
            slots,
            answer,
            [normalize(c["capital"])],
            facts=dict(c),
        )
    return d.item("capital")


def colour(ctx: Ctx) -> DialogueItem:
    things = ctx.rng.sample(knowledge.colour_things(), 1 + _n_follow(ctx))
    d = Dialogue(ctx, knowledge.colour(ctx, things[0]))
    for t in things[1:]:
        answer = [sentence(knowledge.colour_answer(ctx, t))]
        accept = [normalize(c) for c in t["colours"]]
        facts = {"thing": t["thing"], "colours": list(t["colours"])}
        d.add(
            _next_intent(ctx, "colour_next"),
            {"x": t["thing"], "thing": t["thing"]},
            answer,
            accept,
            facts=facts,
        )
    return d.item("colour")


def opposite(ctx: Ctx) -> DialogueItem:
    table = language.opposites()
    words = ctx.rng.sample(sorted(table), 1 + _n_follow(ctx))
    d = Dialogue(ctx, language.opposite(ctx, words[0]))
    for word in words[1:]:
        answer = [sentence(language.opposite_answer(ctx, word))]
        accept = [normalize(a) for a in table[word]]
        facts = {"word": word, "answers": list(table[word])}
        d.add(
            _next_intent(ctx, "opposite_next"),
            {"x": word, "word": word},
            answer,
            accept,
            facts=facts,
        )
    return d.item("opposite")


def spell(ctx: Ctx) -> DialogueItem:
    words = ctx.rng.sample(language.spell_words(), 1 + _n_follow(ctx))
    d = Dialogue(ctx, language.spell(ctx, words[0]))
    for word in words[1:]:
        answer = [sentence(language.spell_answer(ctx, word))]
        accept = [normalize(language.spelled(word))]
        d.add(
            _next_intent(ctx, "spell_next"),
            {"x": word, "word": word},
            answer,
            accept,
            facts={"word": word},
        )
    return d.item("spell")


def arithmetic(ctx: Ctx) -> DialogueItem:
    first = ctx.choice([reasoning.add, reasoning.subtract, reasoning.multiply])(ctx)
    d = Dialogue(ctx, first)
    value = first.facts["answer"]
    for _ in range(_n_follow(ctx)):
        ops = ["add_more", "take_away"] if value <= 50 else ["add_more", "take_away", "take_away"]
        if 0 < value <= 25:
            ops.append("double")
        op = ctx.choice(ops if value > 0 else ["add_more"])
        if op == "double":
            c = 2 * value
            text = ctx.choice(DOUBLE_ANSWERS).format(prev=w(value), c=w(c))
            facts = {"op": "*", "a": value, "b": 2, "answer": c}
            slots: dict[str, Any] = {}
        else:
            n = ctx.rng.randint(1, 10) if op == "add_more" else ctx.rng.randint(1, min(value, 10))
            c = value + n if op == "add_more" else value - n
            word = "plus" if op == "add_more" else "minus"
            text = ctx.choice(ARITH_ANSWERS).format(prev=w(value), op=word, n=w(n), c=w(c))
            facts = {"op": "+" if op == "add_more" else "-", "a": value, "b": n, "answer": c}
            slots = {"n": w(n)}
        d.add(op, slots, [sentence(text)], num_accept(c), facts=facts)
        value = c
    return d.item("arithmetic")


def _restyle_how(ctx: Ctx, style: str) -> str:
    if style in MORE:
        return ctx.choice(MORE[style])
    return "sounding " + ctx.choice(emotion.ADJ[style])


def restyle(ctx: Ctx) -> DialogueItem:
    phrase = ctx.choice(load("phrases")["say"])
    tid, human = ctx.render("say", {"phrase": phrase}, category=CATEGORY)
    accept = [normalize(phrase)]
    first = QA(
        "say",
        tid,
        human,
        [phrase_sentence(phrase, "neutral")],
        accept,
        {"phrase": phrase, "style": "neutral"},
    )
    d = Dialogue(ctx, first)
    styles = list(MORE) + list(emotion.EMOTIONS)
    chosen = ctx.rng.sample(styles, 2)
    for k in range(_n_follow(ctx)):
        style = chosen[k]
        if k == 1 and ctx.rng.random() < 0.3:
            d.add(
                "normal",
                {},
                [phrase_sentence(phrase, "neutral")],
                accept,
                facts={"style": "neutral"},
            )
            continue
        answer = [phrase_sentence(phrase, style)]
        d.add("again", {"how": _restyle_how(ctx, style)}, answer, accept, facts={"style": style})
    return d.item("restyle")


def count_back(ctx: Ctx) -> DialogueItem:
    first = gaming.count(ctx)
    start, end = first.facts["start"], first.facts["end"]
    d = Dialogue(ctx, first)
    text, accept = gaming.sequence(list(range(end, start - 1, -1)))
    facts = {"start": end, "end": start, "step": -1}
    d.add("count_back", {"a": w(start), "b": w(end)}, [Sentence(text)], accept, facts=facts)
    return d.item("count_back")


def after(ctx: Ctx) -> DialogueItem:
    kind = ctx.choice(gaming.KINDS)
    n_follow = _n_follow(ctx)
    top = {"day": 7, "month": 12, "letter": 26 - 1 - n_follow, "number": 100 - n_follow}[kind]
    first = gaming.step_qa(ctx, "after", kind, index=ctx.rng.randrange(top))
    d = Dialogue(ctx, first)
    i = first.facts["answer"]
    for _ in range(n_follow):
        j = gaming.wrap(kind, i + 1)
        text, accept = gaming.step_answer(ctx, "after", kind, i, j)
        d.add("after_that", {}, [sentence(text)], accept, facts={"kind": kind, "x": i, "answer": j})
        i = j
    return d.item("after")


def vu_again(ctx: Ctx) -> DialogueItem:
    intent = ctx.choice(["pitch", "speed", "whisper"])  # the voice (and so the gender) stays
    first = voice_understanding.ask(ctx, intent)
    d = Dialogue(ctx, first)
    label = first.facts["label"]
    for _ in range(_n_follow(ctx)):
        if ctx.rng.random() < 0.7:
            label = next(x for x in voice_understanding.labels(intent) if x != label)
        qa = voice_understanding.answer_qa(ctx, intent, "", "", label)
        d.add(
            "vu_again", {}, qa.answer, qa.accept, facts={"label": label}, spec=qa.spec, filler=False
        )
    return d.item("vu_again")


REPEATABLE: list[Callable[[Ctx], QA]] = [
    knowledge.capital,
    knowledge.colour,
    reasoning.add,
    reasoning.multiply,
    language.opposite,
    language.spell,
]


def repeat(ctx: Ctx) -> DialogueItem:
    first = ctx.choice(REPEATABLE)(ctx)
    d = Dialogue(ctx, first)
    lead = [Sentence("Sure.")] if ctx.rng.random() < 0.3 else []
    d.add("repeat", {}, lead + list(first.answer), list(first.accept), facts=dict(first.facts))
    return d.item("repeat")


MAKERS: dict[str, Callable[[Ctx], DialogueItem]] = {
    "capital": capital,
    "colour": colour,
    "opposite": opposite,
    "spell": spell,
    "arithmetic": arithmetic,
    "restyle": restyle,
    "count_back": count_back,
    "after": after,
    "vu_again": vu_again,
    "repeat": repeat,
}


def make(ctx: Ctx) -> DialogueItem:
    """One multi-turn dialogue (kind drawn by `WEIGHTS`)."""
    return MAKERS[ctx.weighted(WEIGHTS)](ctx)
