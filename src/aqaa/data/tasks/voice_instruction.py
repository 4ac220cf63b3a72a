"""Voice instructions: "Say good morning slowly / fast / loudly / quietly / in a high voice /
in a low voice / in a whisper", plus "Whisper ...", "Shout ..." and "Use a deep voice to say ...".

The answer is the phrase itself, one sentence carrying the instruction style (slow, fast, loud,
quiet, high, low, whisper); `accept` is the normalised phrase.
"""

from __future__ import annotations

from aqaa.data.schema import DialogueItem, Sentence
from aqaa.data.tasks.base import QA, Ctx, a_an, cap, item_from, load, normalize, register

CATEGORY = "voice_instruction"

#: Adverbial phrases naming each style ("say it {how}").
HOW: dict[str, list[str]] = {
    "slow": [
        "slowly",
        "very slowly",
        "nice and slowly",
        "at a slow pace",
        "really slowly",
        "in a slow voice",
    ],
    "fast": ["fast", "quickly", "very fast", "really quickly", "at a fast pace", "in a fast voice"],
    "loud": [
        "loudly",
        "very loudly",
        "in a loud voice",
        "nice and loud",
        "really loud",
        "in a big loud voice",
    ],
    "quiet": [
        "quietly",
        "softly",
        "in a quiet voice",
        "very quietly",
        "in a soft voice",
        "nice and quietly",
    ],
    "high": [
        "in a high voice",
        "in a high pitched voice",
        "with a high voice",
        "in a really high voice",
        "with a high pitch",
        "in a squeaky high voice",
    ],
    "low": [
        "in a low voice",
        "in a deep voice",
        "with a low pitch",
        "in a low pitched voice",
        "with a deep voice",
        "in a really low voice",
    ],
    "whisper": [
        "in a whisper",
        "in a whispering voice",
        "as a whisper",
        "like a whisper",
        "in a tiny whisper",
    ],
}

#: Comparative forms for follow-ups ("say that again, {how}").
MORE: dict[str, list[str]] = {
    "slow": ["more slowly", "slower", "much slower"],
    "fast": ["faster", "more quickly", "much faster"],
    "loud": ["louder", "more loudly", "much louder"],
    "quiet": ["more quietly", "softer", "more softly"],
    "high": ["in a higher voice", "with a higher pitch", "higher"],
    "low": ["in a lower voice", "in a deeper voice", "lower"],
    "whisper": ["in a whisper", "as a whisper", "whispering"],
}

#: Adjectives for "use a {adj} voice".
ADJ: dict[str, list[str]] = {
    "slow": ["slow", "slow and steady"],
    "fast": ["fast", "quick", "speedy"],
    "loud": ["loud", "big loud"],
    "quiet": ["quiet", "soft", "gentle"],
    "high": ["high", "squeaky", "high pitched"],
    "low": ["low", "deep", "low pitched"],
}

STYLES = tuple(HOW)

TEMPLATES: dict[str, list[str]] = {
    "say": [
        "Say {phrase} {how}.",
        "Can you say {phrase} {how}?",
        "Please say {phrase} {how}.",
        "Could you say {phrase} {how}?",
        "I want you to say {phrase} {how}.",
        "{how}, say {phrase}.",
        "Say the words {phrase}, {how}.",
        "Let me hear you say {phrase} {how}.",
        "Repeat after me, {how}: {phrase}.",
        "Say this {how}: {phrase}.",
        "Would you say {phrase} {how}?",
        "Try saying {phrase} {how}.",
        "Speak {how} and say {phrase}.",
        "{phrase}. Say that {how}.",
        "Go ahead and say {phrase} {how}.",
        "Say {phrase} to me {how}.",
        "Just say {phrase} {how}.",
        "Please repeat {phrase} {how}.",
        "Could you repeat {phrase} {how}, please?",
        "Say {phrase}, but say it {how}.",
        "Say {phrase}, and do it {how}.",
        "Now say {phrase} {how}.",
        "Your turn: say {phrase} {how}.",
        "Read this out {how}: {phrase}.",
        "Speak these words {how}: {phrase}.",
        "I'd like to hear {phrase}, said {how}.",
        "How would {phrase} sound if you said it {how}? Show me.",
        "Can I hear {phrase}, {how}?",
        "Say {phrase} for me {how}, please.",
        "Let's practise. Say {phrase} {how}.",
        "Here's a challenge: say {phrase} {how}.",
        "Without changing the words, say {phrase} {how}.",
        "{how}, please: {phrase}.",
        "Would you mind saying {phrase} {how}?",
        "Show me how you say {phrase} {how}.",
        "Do me a favour and say {phrase} {how}.",
    ],
    "whisper": [
        "Whisper {phrase}.",
        "Can you whisper {phrase}?",
        "Please whisper {phrase} to me.",
        "Whisper the words {phrase}.",
        "Could you whisper {phrase}, like a secret?",
        "Whisper this to me: {phrase}.",
        "Lean in and whisper {phrase}.",
    ],
    "shout": [
        "Shout {phrase}!",
        "Can you shout {phrase}?",
        "Shout out {phrase}.",
        "Yell {phrase}!",
        "Say {phrase} as loud as you can!",
        "Shout the words {phrase}.",
    ],
    "voice_adj": [
        "Use {a_adj} voice to say {phrase}.",
        "In {a_adj} voice, say {phrase}.",
        "Put on {a_adj} voice and say {phrase}.",
        "With {a_adj} voice, tell me {phrase}.",
        "Say {phrase} using {a_adj} voice.",
        "Make your voice really {adj} and say {phrase}.",
    ],
}

register(CATEGORY, TEMPLATES)

WEIGHTS = {"say": 6.0, "whisper": 0.6, "shout": 0.5, "voice_adj": 1.5}


def phrases() -> list[str]:
    return load("phrases")["say"]


def phrase_sentence(phrase: str, style: str) -> Sentence:
    """The phrase as an answer sentence in `style` (loud sentences end with "!")."""
    return Sentence(cap(phrase) + ("!" if style == "loud" else "."), style)


def instruction(ctx: Ctx, intent: str | None = None) -> QA:
    intent = intent or ctx.weighted(WEIGHTS)
    phrase = ctx.choice(phrases())
    if intent == "whisper":
        style, slots = "whisper", {}
    elif intent == "shout":
        style, slots = "loud", {}
    elif intent == "voice_adj":
        style = ctx.choice(sorted(ADJ))
        adj = ctx.choice(ADJ[style])
        slots = {"adj": adj, "a_adj": a_an(adj)}
    else:
        style = ctx.choice(STYLES)
        slots = {"how": ctx.choice(HOW[style])}
    tid, human = ctx.render(intent, slots | {"phrase": phrase}, category=CATEGORY)
    return QA(
        intent,
        tid,
        human,
        [phrase_sentence(phrase, style)],
        [normalize(phrase)],
        {"phrase": phrase, "style": style},
    )


def make(ctx: Ctx) -> DialogueItem:
    """One voice-instruction item (intent drawn by `WEIGHTS`, style uniform for "say")."""
    return item_from(ctx, [instruction(ctx)])
