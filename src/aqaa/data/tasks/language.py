"""Language: spelling (the answer spells the letters: "Cat is spelled C, A, T."), opposites,
rhymes, plurals, first and last letters of a word, and synonyms.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from functools import cache

from aqaa.data.schema import DialogueItem
from aqaa.data.tasks.base import QA, Ctx, item_from, load, normalize, register, sentence

CATEGORY = "language"

TEMPLATES: dict[str, list[str]] = {
    "spell": [
        "How do you spell {word}?",
        "Can you spell {word} for me?",
        "Spell the word {word}.",
        "Spell {word}, please.",
        "What's the spelling of {word}?",
        "How is {word} spelled?",
        "I need to write {word}. How do I spell it?",
        "Could you spell out {word}?",
        "Which letters spell {word}?",
        "Tell me how to spell {word}.",
        "{word}. How do you spell that?",
        "Spell {word} for me, letter by letter.",
        "What letters are in the word {word}?",
        "How would you spell the word {word}?",
    ],
    "opposite": [
        "What is the opposite of {word}?",
        "What's the opposite of {word}?",
        "Tell me the opposite of {word}.",
        "Can you give me the opposite of {word}?",
        "What word means the opposite of {word}?",
        "{word}. What's the opposite?",
        "Do you know the opposite of the word {word}?",
        "Give me a word that means the opposite of {word}.",
        "What would the opposite of {word} be?",
        "I need the opposite of {word}.",
        "What word is the opposite of {word}?",
        "Say the opposite of {word}.",
    ],
    "rhyme": [
        "What rhymes with {word}?",
        "Can you tell me a word that rhymes with {word}?",
        "Give me a rhyme for {word}.",
        "Say a word that rhymes with {word}.",
        "Which word rhymes with {word}?",
        "Think of a word that rhymes with {word}.",
        "I need a rhyme for {word}.",
        "What's a rhyme for the word {word}?",
        "Find me a word rhyming with {word}.",
        "Do you know a word that rhymes with {word}?",
    ],
    "plural": [
        "What is the plural of {word}?",
        "What's the plural of {word}?",
        "If there is more than one {word}, what do you call them?",
        "One {word}, two what?",
        "How do you say more than one {word}?",
        "Tell me the plural form of {word}.",
        "I have one {word}. What do I call more than one?",
        "What's the plural form of the word {word}?",
        "Give me the plural of {word}.",
        "I know the word {word}. What is the word for lots of them?",
    ],
    "first_letter": [
        "What is the first letter of {word}?",
        "What letter does {word} start with?",
        "Which letter does the word {word} begin with?",
        "What's the first letter in the word {word}?",
        "{word} starts with which letter?",
        "Tell me the first letter of {word}.",
        "Which letter comes first in {word}?",
        "What letter do you write first in {word}?",
    ],
    "last_letter": [
        "What is the last letter of {word}?",
        "What letter does {word} end with?",
        "Which letter comes at the end of {word}?",
        "Tell me the last letter in the word {word}.",
        "{word} ends with which letter?",
        "What's the final letter of the word {word}?",
    ],
    "synonym": [
        "What is another word for {word}?",
        "Give me a word that means the same as {word}.",
        "What's a synonym for {word}?",
        "Which word means the same thing as {word}?",
        "Tell me a different word for {word}.",
        "What word has the same meaning as {word}?",
        "What's another way to say {word}?",
        "Can you think of a word that means {word}?",
        "I need another word for {word}.",
    ],
}

ANSWERS: dict[str, list[str]] = {
    "spell": [
        "{word} is spelled {letters}.",
        "{letters}.",
        "You spell it {letters}.",
        "It's spelled {letters}.",
        "{word} is spelt {letters}.",
    ],
    "opposite": [
        "The opposite of {word} is {answer}.",
        "{answer} is the opposite of {word}.",
        "It's {answer}.",
        "{answer}.",
    ],
    "rhyme": [
        "{answer} rhymes with {word}.",
        "How about {answer}?",
        "{word} rhymes with {answer}.",
        "{answer}.",
    ],
    "plural": [
        "The plural of {word} is {answer}.",
        "One {word}, two {answer}.",
        "It's {answer}.",
        "More than one {word} are called {answer}.",
    ],
    "first_letter": [
        "{word} starts with the letter {letter}.",
        "The first letter of {word} is the letter {letter}.",
        "It begins with the letter {letter}.",
        "It's the letter {letter}.",
    ],
    "last_letter": [
        "{word} ends with the letter {letter}.",
        "The last letter of {word} is the letter {letter}.",
        "It ends with the letter {letter}.",
        "It's the letter {letter}.",
    ],
    "synonym": [
        "{answer} means the same as {word}.",
        "Another word for {word} is {answer}.",
        "You could say {answer}.",
        "{answer}.",
    ],
}

register(CATEGORY, TEMPLATES)

WEIGHTS = {
    "spell": 3.0,
    "opposite": 2.5,
    "rhyme": 1.5,
    "plural": 1.5,
    "first_letter": 1.0,
    "last_letter": 0.6,
    "synonym": 1.5,
}


def spelled(word: str) -> str:
    """ "cat" -> "C, A, T" (what the answer says)."""
    return ", ".join(ch.upper() for ch in word if ch.isalpha())


def spell_words() -> list[str]:
    return load("words")["spell"]


@cache
def _related(table: str) -> dict[str, list[str]]:
    """word -> the other words of every group/pair it belongs to (first group's first)."""
    out: dict[str, list[str]] = defaultdict(list)
    for group in load(table):
        for word in group:
            out[word].extend(x for x in group if x != word and x not in out[word])
    return dict(out)


def opposites() -> dict[str, list[str]]:
    return _related("opposites")


def _word_qa(ctx: Ctx, intent: str, word: str, answers: list[str], filler: bool = True) -> QA:
    tid, human = ctx.render(intent, {"word": word}, category=CATEGORY, filler=filler)
    text = ctx.choice(ANSWERS[intent]).format(word=word, answer=answers[0])
    accept = [normalize(a) for a in answers]
    return QA(
        intent, tid, human, [sentence(text)], accept, {"word": word, "answers": list(answers)}
    )


def spell(ctx: Ctx, word: str | None = None, filler: bool = True) -> QA:
    word = word or ctx.choice(spell_words())
    tid, human = ctx.render("spell", {"word": word}, category=CATEGORY, filler=filler)
    return QA(
        "spell",
        tid,
        human,
        [sentence(spell_answer(ctx, word))],
        [normalize(spelled(word))],
        {"word": word},
    )


def spell_answer(ctx: Ctx, word: str) -> str:
    return ctx.choice(ANSWERS["spell"]).format(word=word, letters=spelled(word))


def opposite(ctx: Ctx, word: str | None = None, filler: bool = True) -> QA:
    table = opposites()
    word = word or ctx.choice(sorted(table))
    return _word_qa(ctx, "opposite", word, table[word], filler)


def opposite_answer(ctx: Ctx, word: str) -> str:
    return ctx.choice(ANSWERS["opposite"]).format(word=word, answer=opposites()[word][0])


def rhyme(ctx: Ctx) -> QA:
    table = _related("rhymes")
    word = ctx.choice(sorted(table))
    others = list(table[word])
    ctx.rng.shuffle(others)  # say a random rhyme, accept them all
    return _word_qa(ctx, "rhyme", word, others)


def plural(ctx: Ctx) -> QA:
    word, plural_form = ctx.choice(load("plurals"))
    return _word_qa(ctx, "plural", word, [plural_form])


def synonym(ctx: Ctx) -> QA:
    table = _related("synonyms")
    word = ctx.choice(sorted(table))
    others = list(table[word])
    ctx.rng.shuffle(others)
    return _word_qa(ctx, "synonym", word, others)


def letter_of(ctx: Ctx, intent: str) -> QA:
    word = ctx.choice(spell_words())
    letter = (word[0] if intent == "first_letter" else word[-1]).upper()
    tid, human = ctx.render(intent, {"word": word}, category=CATEGORY)
    text = ctx.choice(ANSWERS[intent]).format(word=word, letter=letter)
    return QA(
        intent,
        tid,
        human,
        [sentence(text)],
        [f"letter {letter.lower()}"],
        {"word": word, "letter": letter},
    )


MAKERS: dict[str, Callable[[Ctx], QA]] = {
    "spell": spell,
    "opposite": opposite,
    "rhyme": rhyme,
    "plural": plural,
    "first_letter": lambda ctx: letter_of(ctx, "first_letter"),
    "last_letter": lambda ctx: letter_of(ctx, "last_letter"),
    "synonym": synonym,
}


def make(ctx: Ctx) -> DialogueItem:
    """One language item (intent drawn by `WEIGHTS`)."""
    return item_from(ctx, [MAKERS[ctx.weighted(WEIGHTS)](ctx)])
