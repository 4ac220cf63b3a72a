"""Voice understanding: "Is my voice high or low?", "Am I speaking fast or slowly?", "Am I
whispering?", "Am I a man or a woman?" and their paraphrases.

The human text never depends on the label; the label is drawn at random and lives in
`Turn.human` (pitch, speed, whisper or gender), which the builder renders. The answer names the
label and `accept` holds its word(s); no answer ever contains a word of the other label.
"""

from __future__ import annotations

from typing import Any

from aqaa.data.schema import DialogueItem, HumanSpec
from aqaa.data.tasks.base import QA, Ctx, item_from, register, sentence

CATEGORY = "voice_understanding"

TEMPLATES: dict[str, list[str]] = {
    "pitch": [
        "Is my voice high or low?",
        "Would you say my voice is high or low?",
        "Do I have a high voice or a low voice?",
        "Is the pitch of my voice high or low?",
        "Listen to me. Is my voice high pitched or low pitched?",
        "Tell me, does my voice sound high or low?",
        "Is my voice low or high?",
        "What about my pitch, is it high or low?",
        "Am I speaking in a high voice or a low voice?",
        "Can you tell if my voice is high or low?",
        "Does my voice sound low to you, or high?",
        "High or low: how does my voice sound?",
        "Is this a high voice or a low one?",
        "How would you describe my pitch, high or low?",
        "Does my voice sound high pitched or low pitched to you?",
        "Is my voice on the high side or the low side?",
        "Be honest, is my voice high or low?",
        "I want to know if my voice is high or low.",
        "Listen to my voice. High or low?",
    ],
    "speed": [
        "Am I speaking fast or slowly?",
        "Am I talking fast or slow?",
        "Is my speech fast or slow?",
        "How fast am I talking, fast or slow?",
        "Do I speak quickly or slowly?",
        "Would you say I'm talking fast or slowly?",
        "Tell me, am I speaking fast or slow right now?",
        "Is my speaking speed fast or slow?",
        "Listen to my speed. Is it fast or slow?",
        "Do I sound fast or slow to you?",
        "Am I speaking slowly or quickly?",
        "Fast or slow: how am I talking?",
        "What do you think, is my talking fast or slow?",
        "Am I speaking too fast or too slowly?",
        "Is my speaking quick or slow?",
        "Listen. Am I talking fast or slow?",
        "How is my speed, fast or slow?",
        "Tell me if I am talking fast or slowly.",
    ],
    "whisper": [
        "Am I whispering?",
        "Am I whispering right now?",
        "Is this a whisper?",
        "Am I whispering or speaking normally?",
        "Can you tell if I'm whispering?",
        "Am I using a whisper or my normal voice?",
        "Listen. Am I whispering?",
        "Tell me, am I whispering?",
        "Would you say I'm whispering?",
        "Is my voice a whisper right now?",
        "Do you think I am whispering?",
        "Am I talking in a whisper?",
        "Whisper or normal voice: which one am I using?",
        "Am I whispering to you?",
        "Be honest, am I whispering?",
        "Is that a whisper I'm using?",
        "Am I speaking in a whisper?",
        "Tell me if I am whispering.",
    ],
    "gender": [
        "Am I a man or a woman?",
        "Do I sound like a man or a woman?",
        "Is this a male or a female voice?",
        "Can you tell if I am a man or a woman?",
        "Guess: am I a man or a woman?",
        "Does my voice sound male or female?",
        "Who is talking to you, a man or a woman?",
        "Would you say I am a man or a woman?",
        "Listen carefully. Am I male or female?",
        "Tell me, do I sound like a woman or a man?",
        "Is the person speaking a man or a woman?",
        "Am I a woman or a man?",
        "From my voice, am I a man or a woman?",
        "Do you think I'm a man or a woman?",
        "Is it a man or a woman speaking?",
        "What am I, a man or a woman?",
        "Can you guess if I'm a woman or a man?",
        "Does this voice belong to a man or a woman?",
    ],
}

#: Label -> answer sentences; each contains one of the label's accept words and none of the other's.
ANSWERS: dict[str, dict[Any, list[str]]] = {
    "pitch": {
        "high": [
            "Your voice sounds high.",
            "You have a high voice.",
            "Your voice is high.",
            "It sounds quite high to me.",
            "That is a high voice.",
            "I would say your voice is high.",
        ],
        "low": [
            "Your voice sounds low.",
            "You have a low voice.",
            "Your voice is low.",
            "It sounds quite low to me.",
            "That is a low voice.",
            "I would say your voice is low.",
        ],
    },
    "speed": {
        "fast": [
            "You are speaking fast.",
            "You're talking quite fast.",
            "That was fast.",
            "You are talking fast.",
            "I'd say you are speaking fast.",
        ],
        "slow": [
            "You are speaking slowly.",
            "You're talking quite slowly.",
            "That was slow.",
            "You are talking slowly.",
            "I'd say you are speaking slowly.",
        ],
    },
    "whisper": {
        True: [
            "You are whispering.",
            "You're whispering.",
            "I can hear that you are whispering.",
            "That sounds like whispering to me.",
        ],
        False: [
            "You are speaking in a normal voice.",
            "That is your normal voice.",
            "You are using your normal voice.",
            "I can hear your normal voice.",
        ],
    },
    "gender": {
        "female": [
            "You sound like a woman.",
            "I think you are a woman.",
            "That sounds like a female voice.",
            "You have a female voice.",
        ],
        "male": [
            "You sound like a man.",
            "I think you are a man.",
            "That sounds like a male voice.",
            "You have a male voice.",
        ],
    },
}

ACCEPT: dict[str, dict[Any, list[str]]] = {
    "pitch": {"high": ["high"], "low": ["low"]},
    "speed": {"fast": ["fast"], "slow": ["slow", "slowly"]},
    "whisper": {True: ["whispering"], False: ["normal"]},
    "gender": {"female": ["woman", "female"], "male": ["man", "male"]},
}

#: Styles for a human who is *not* whispering (quiet speech is the hard negative).
NOT_WHISPER_STYLES = ("neutral", "neutral", "quiet", "loud", "calm", "happy")

register(CATEGORY, TEMPLATES)

INTENTS = tuple(TEMPLATES)


def labels(intent: str) -> list[Any]:
    return list(ACCEPT[intent])


def human_spec(ctx: Ctx, intent: str, label: Any) -> HumanSpec:
    """The rendering constraints that make `label` true."""
    if intent == "pitch":
        return HumanSpec(pitch=label)
    if intent == "speed":
        return HumanSpec(style=label, speed=label)
    if intent == "whisper":
        if label:
            return HumanSpec(style="whisper", whisper=True)
        return HumanSpec(style=ctx.choice(NOT_WHISPER_STYLES), whisper=False)
    return HumanSpec(gender=label)


def answer_qa(ctx: Ctx, intent: str, tid: str, human: str, label: Any) -> QA:
    """The turn for `label` of a question already rendered (same text whatever the label)."""
    return QA(
        intent,
        tid,
        human,
        [sentence(ctx.choice(ANSWERS[intent][label]))],
        list(ACCEPT[intent][label]),
        {"label": label},
        human_spec(ctx, intent, label),
    )


def ask(ctx: Ctx, intent: str, label: Any = None) -> QA:
    """A question of `intent` (no fillers: the text depends on the template alone)."""
    tid, human = ctx.render(intent, category=CATEGORY, filler=False)
    label = ctx.choice(labels(intent)) if label is None else label
    return answer_qa(ctx, intent, tid, human, label)


def make(ctx: Ctx) -> DialogueItem:
    """One voice-understanding item: intent and label uniform."""
    return item_from(ctx, [ask(ctx, ctx.choice(INTENTS))])
