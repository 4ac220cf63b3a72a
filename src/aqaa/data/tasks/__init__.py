"""Task generators: the text side of the synthetic spoken-dialogue corpus.

One module per category of `aqaa.data.schema.CATEGORIES` registers its question templates and
builds `DialogueItem`s from them and from the knowledge tables in `aqaa/data/knowledge/`.

    generate(category, rng, split)  one item, using only the templates of `split`
    templates()                     template id -> text, for all categories
    template_split(template_id)     "train" | "valid" | "test"

Template ids are `category.intent.n`; see `aqaa.data.tasks.base` for how splits are assigned.
"""

from __future__ import annotations

import random

from aqaa.data.schema import CATEGORIES, DialogueItem
from aqaa.data.tasks import (
    creativity,
    emotion,
    gaming,
    knowledge,
    language,
    multi_turn,
    reasoning,
    roleplay,
    voice_instruction,
    voice_understanding,
)
from aqaa.data.tasks.base import (
    SPLITS,
    Ctx,
    Maker,
    Trace,
    intents,
    normalize,
    number_to_words,
    template_split,
    templates,
)

__all__ = [
    "SPLITS",
    "Trace",
    "generate",
    "generate_traced",
    "intents",
    "normalize",
    "number_to_words",
    "template_split",
    "templates",
]

_MAKERS: dict[str, Maker] = {
    "knowledge": knowledge.make,
    "reasoning": reasoning.make,
    "language": language.make,
    "gaming": gaming.make,
    "voice_instruction": voice_instruction.make,
    "emotion": emotion.make,
    "roleplay": roleplay.make,
    "voice_understanding": voice_understanding.make,
    "creativity": creativity.make,
    "multi_turn": multi_turn.make,
}
assert tuple(_MAKERS) == CATEGORIES, "every category needs exactly one generator"


def generate_traced(
    category: str, rng: random.Random, split: str = "train"
) -> tuple[DialogueItem, Trace]:
    """Like `generate`, also returning every template id used and each turn's facts."""
    if category not in _MAKERS:
        raise ValueError(
            f"unknown category {category!r}; known categories: {', '.join(CATEGORIES)}"
        )
    ctx = Ctx(category, rng, split)
    return _MAKERS[category](ctx), ctx.trace


def generate(category: str, rng: random.Random, split: str = "train") -> DialogueItem:
    """One item of `category` from the templates of `split`; deterministic given the rng state."""
    return generate_traced(category, rng, split)[0]
