"""Emotion: "Tell me it is raining, but sound sad" for happy, sad, angry, calm and excited; the
answer's sentences carry that style (sometimes with a short second sentence in the same mood).

About a fifth of the items ask for two styles in a row ("Say hello happily and then sadly"); their
answers have two sentences of different styles, exercising marker-preserving concatenation.
"""

from __future__ import annotations

from aqaa.data.schema import DialogueItem, Sentence
from aqaa.data.tasks.base import QA, Ctx, a_an, cap, item_from, load, normalize, register

CATEGORY = "emotion"

EMOTIONS = ("happy", "sad", "angry", "calm", "excited")

ADJ: dict[str, list[str]] = {
    "happy": ["happy", "cheerful", "joyful"],
    "sad": ["sad", "unhappy", "gloomy"],
    "angry": ["angry", "cross", "furious"],
    "calm": ["calm", "relaxed", "peaceful"],
    "excited": ["excited", "thrilled"],
}
ADV: dict[str, list[str]] = {
    "happy": ["happily", "cheerfully"],
    "sad": ["sadly", "in a sad way"],
    "angry": ["angrily", "crossly"],
    "calm": ["calmly", "in a calm way"],
    "excited": ["excitedly", "with excitement"],
}
#: Short second sentences that fit the mood (any statement).
TAGS: dict[str, list[str]] = {
    "happy": ["How lovely!", "I'm so glad.", "What good news!"],
    "sad": ["Oh dear.", "That is such a shame.", "I feel a bit down."],
    "angry": ["This is not fair!", "I can't believe it!", "How annoying!"],
    "calm": ["That's perfectly fine.", "There's no need to worry.", "Everything is okay."],
    "excited": ["Wow!", "This is amazing!", "I can hardly wait!"],
}

TEMPLATES: dict[str, list[str]] = {
    "tell": [
        "Tell me that {s}, but sound {adj}.",
        "Tell me {s}, and sound {adj}.",
        "Say that {s} in {a_adj} voice.",
        "Can you tell me that {s} {adv}?",
        "{adv}, tell me that {s}.",
        "Sound {adj} and tell me that {s}.",
        "Use {a_adj} voice to tell me {s}.",
        "Pretend you are {adj} and say that {s}.",
        "Say {s}, but make it sound {adj}.",
        "I want to hear you say that {s} {adv}.",
        "Tell me that {s}. Say it {adv}.",
        "In {a_adj} voice, tell me that {s}.",
        "Could you say that {s}, sounding {adj}?",
        "Say that {s} like you are {adj}.",
        "Act {adj} and tell me {s}.",
        "Give me the news that {s}, and sound {adj}.",
        "Announce that {s}, {adv}.",
        "Let me hear you tell me {s} in {a_adj} way.",
        "Tell me, {adv}, that {s}.",
        "Sounding {adj}, tell me {s}.",
        "How would you say {s} if you were {adj}?",
        "Show me your {adj} voice and tell me {s}.",
        "Say {s} with {a_adj} tone.",
        "Make your voice sound {adj} and tell me {s}.",
        "Imagine you feel {adj}. Now tell me that {s}.",
        "Can you sound {adj} when you tell me {s}?",
        "Tell me the news, {s}, in {a_adj} voice.",
    ],
    "two_styles": [
        "Say {phrase} {adv1} and then {adv2}.",
        "Say {phrase} {adv1}, then say it {adv2}.",
        "First say {phrase} {adv1}, and then {adv2}.",
        "Say {phrase} twice: first sounding {adj1}, then sounding {adj2}.",
        "Can you say {phrase} {adv1} and then again {adv2}?",
        "I want to hear {phrase} said {adv1} and then {adv2}.",
        "Say {phrase} {adv1}. Then say it again {adv2}.",
        "Tell me {phrase} two times, {adv1} and then {adv2}.",
        "Sound {adj1} and say {phrase}, then sound {adj2} and say it again.",
        "Start {adj1}, then switch to {adj2}: say {phrase} twice.",
    ],
}

register(CATEGORY, TEMPLATES)

TWO_STYLE_SHARE = 0.2


def _mood_words(ctx: Ctx, emotion: str, suffix: str = "") -> dict[str, str]:
    adj = ctx.choice(ADJ[emotion])
    return {
        "adj" + suffix: adj,
        "a_adj" + suffix: a_an(adj),
        "adv" + suffix: ctx.choice(ADV[emotion]),
    }


def tell(ctx: Ctx) -> QA:
    emotion = ctx.choice(EMOTIONS)
    s = ctx.choice(load("phrases")["statements"])
    tid, human = ctx.render("tell", _mood_words(ctx, emotion) | {"s": s}, category=CATEGORY)
    answer = [Sentence(cap(s) + ("!" if emotion in ("excited", "angry") else "."), emotion)]
    if ctx.rng.random() < 0.3:
        answer.append(Sentence(ctx.choice(TAGS[emotion]), emotion))
    return QA("tell", tid, human, answer, [normalize(s)], {"statement": s, "styles": [emotion]})


def two_styles(ctx: Ctx) -> QA:
    first, second = ctx.rng.sample(EMOTIONS, 2)
    phrase = ctx.choice(load("phrases")["say"])
    slots = _mood_words(ctx, first, "1") | _mood_words(ctx, second, "2") | {"phrase": phrase}
    tid, human = ctx.render("two_styles", slots, category=CATEGORY)
    answer = [
        Sentence(cap(phrase) + ("!" if style in ("excited", "angry") else "."), style)
        for style in (first, second)
    ]
    return QA(
        "two_styles",
        tid,
        human,
        answer,
        [normalize(phrase)],
        {"phrase": phrase, "styles": [first, second]},
    )


def make(ctx: Ctx) -> DialogueItem:
    """One emotion item: one style (80%) or two styles in a row (20%)."""
    qa = two_styles(ctx) if ctx.rng.random() < TWO_STYLE_SHARE else tell(ctx)
    return item_from(ctx, [qa])
