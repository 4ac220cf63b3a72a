"""Role-play: "Answer like a robot / a small child / a giant: what is two plus two?".

The embedded question is drawn from the knowledge, reasoning, language and gaming templates of
the same split (so held-out phrasings stay held out); the answer has the correct content, spoken
in the persona style (robot, child, giant), sometimes after an in-character opener. Also greetings
("Say hello like a giant.") and phrases ("Say good night like a robot.").
"""

from __future__ import annotations

from collections.abc import Callable

from aqaa.data.schema import DialogueItem, Sentence
from aqaa.data.tasks import gaming, knowledge, language, reasoning
from aqaa.data.tasks.base import QA, Ctx, a_an, cap, decap, item_from, load, normalize, register

CATEGORY = "roleplay"

PERSONAS: dict[str, list[str]] = {
    "robot": ["robot", "friendly robot", "computer robot", "clever robot", "toy robot"],
    "child": [
        "small child",
        "little kid",
        "five year old",
        "young child",
        "little boy",
        "little girl",
    ],
    "giant": ["giant", "big giant", "huge giant", "friendly giant", "giant from a fairy tale"],
}
VOICES: dict[str, list[str]] = {
    "robot": ["robot voice", "robotic voice", "computer voice"],
    "child": ["little kid voice", "child's voice", "tiny child's voice"],
    "giant": ["giant voice", "big booming giant voice", "huge giant voice"],
}
OPENERS: dict[str, list[str]] = {
    "robot": [
        "Beep boop.",
        "Processing.",
        "Computing answer.",
        "Beep.",
        "Affirmative.",
        "Calculating.",
    ],
    "child": ["Ooh, I know!", "I know this one!", "That's easy!", "Yay!", "Me, me, I know!"],
    "giant": [
        "Fee fi fo fum!",
        "Ho ho ho!",
        "Hmm, let me think, little one.",
        "Listen, tiny human.",
    ],
}
#: In-character greetings, each a list of sentences.
GREETINGS: dict[str, list[list[str]]] = {
    "robot": [["Hello, human."], ["Greetings, human."], ["Hello.", "I am a robot."]],
    "child": [
        ["Hi!", "I'm five years old!"],
        ["Hello!", "Do you want to play?"],
        ["Hi!", "I like ice cream!"],
    ],
    "giant": [["Hello, tiny friend."], ["Greetings, little one."], ["Hello!", "I am a big giant."]],
}

TEMPLATES: dict[str, list[str]] = {
    "question": [
        "Answer like {a_persona}: {q}",
        "Pretend you are {a_persona}. {Q}",
        "You are {a_persona} now. {Q}",
        "Be {a_persona} for a moment. {Q}",
        "In the voice of {a_persona}, {q}",
        "Speaking as {a_persona}, {q}",
        "Act like {a_persona} and answer this: {q}",
        "Let's play pretend. You're {a_persona}. {Q}",
        "Use your {voice}. {Q}",
        "Can you answer like {a_persona}? {Q}",
        "Imagine you are {a_persona}. {Q}",
        "Pretend to be {a_persona} and answer: {q}",
        "I want {a_persona} to answer this. {Q}",
        "Reply as if you were {a_persona}. {Q}",
        "{Q} Answer like {a_persona}.",
        "{Q} Say it like {a_persona}, please.",
        "{Q} And answer in your {voice}.",
        "Talk like {a_persona}. {Q}",
        "Put on your {voice} and tell me: {q}",
        "Okay {persona}, here's a question. {Q}",
        "Answer in {a_voice}: {q}",
        "You're {a_persona}. Answer me this. {Q}",
        "Give me an answer like {a_persona} would. {Q}",
    ],
    "greet": [
        "Pretend you are {a_persona} and say hello.",
        "Say hello like {a_persona}.",
        "Greet me like {a_persona}.",
        "Talk like {a_persona} and say hi.",
        "Can you say hello in your {voice}?",
        "Be {a_persona} and greet me.",
        "Say hi to me like {a_persona} would.",
        "How does {a_persona} say hello?",
        "Let's play pretend. You're {a_persona}. Say hello!",
    ],
    "say": [
        "Say {phrase} like {a_persona}.",
        "Say {phrase} in your {voice}.",
        "Pretend you are {a_persona} and say {phrase}.",
        "How would {a_persona} say {phrase}?",
        "Be {a_persona} and tell me {phrase}.",
        "Use {a_voice} to say {phrase}.",
        "Can you say {phrase}, talking like {a_persona}?",
        "Talk like {a_persona}: say {phrase}.",
    ],
}

register(CATEGORY, TEMPLATES)

WEIGHTS = {"question": 6.0, "greet": 1.0, "say": 1.5}

#: Inner questions: (category module maker) pairs drawn uniformly.
INNER: list[Callable[..., QA]] = [
    reasoning.add,
    reasoning.subtract,
    reasoning.multiply,
    knowledge.capital,
    knowledge.colour,
    knowledge.animal_sound,
    language.opposite,
    language.spell,
    gaming.count,
    lambda ctx, filler: gaming.step_qa(ctx, "after", filler=filler),
]


def _persona_slots(ctx: Ctx, persona: str) -> dict[str, str]:
    name = ctx.choice(PERSONAS[persona])
    voice = ctx.choice(VOICES[persona])
    return {"persona": name, "a_persona": a_an(name), "voice": voice, "a_voice": a_an(voice)}


def _with_opener(ctx: Ctx, persona: str, sentences: list[Sentence]) -> list[Sentence]:
    out = [Sentence(s.text, persona) for s in sentences]
    if ctx.rng.random() < 0.5:
        out.insert(0, Sentence(ctx.choice(OPENERS[persona]), persona))
    return out


def question(ctx: Ctx) -> QA:
    persona = ctx.choice(sorted(PERSONAS))
    inner = ctx.choice(INNER)(ctx, filler=False)
    q = decap(inner.human)
    slots = _persona_slots(ctx, persona) | {"q": q, "Q": cap(q)}
    tid, human = ctx.render("question", slots, category=CATEGORY)
    facts = {"persona": persona, "inner_template": inner.template, "inner": inner.facts}
    return QA("question", tid, human, _with_opener(ctx, persona, inner.answer), inner.accept, facts)


def greet(ctx: Ctx) -> QA:
    persona = ctx.choice(sorted(PERSONAS))
    tid, human = ctx.render("greet", _persona_slots(ctx, persona), category=CATEGORY)
    answer = [Sentence(text, persona) for text in ctx.choice(GREETINGS[persona])]
    accept = ["hello", "hi", "greetings"]
    return QA("greet", tid, human, answer, accept, {"persona": persona})


def say(ctx: Ctx) -> QA:
    persona = ctx.choice(sorted(PERSONAS))
    phrase = ctx.choice(load("phrases")["say"])
    tid, human = ctx.render(
        "say", _persona_slots(ctx, persona) | {"phrase": phrase}, category=CATEGORY
    )
    answer = _with_opener(ctx, persona, [Sentence(cap(phrase) + ".")])
    return QA(
        "say", tid, human, answer, [normalize(phrase)], {"persona": persona, "phrase": phrase}
    )


MAKERS: dict[str, Callable[[Ctx], QA]] = {"question": question, "greet": greet, "say": say}


def make(ctx: Ctx) -> DialogueItem:
    """One role-play item (intent drawn by `WEIGHTS`, persona uniform)."""
    return item_from(ctx, [MAKERS[ctx.weighted(WEIGHTS)](ctx)])
