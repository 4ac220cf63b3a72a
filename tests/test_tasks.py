"""Tests of the task generators (text only; fast)."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections import Counter, defaultdict
from importlib import resources

import pytest

from aqaa.data.schema import CATEGORIES, DialogueItem, parse_tagged
from aqaa.data.styles import EMOTION_STYLES, INSTRUCTION_STYLES, PERSONA_STYLES, STYLES
from aqaa.data.tasks import SPLITS, generate, generate_traced, template_split, templates
from aqaa.data.tasks import voice_understanding as vu
from aqaa.data.tasks.base import contains_phrase, intents, normalize, number_to_words
from aqaa.data.tasks.voice_instruction import HOW

N_PER_SPLIT = 200
HUMAN_OK = re.compile(r"[A-Za-z][A-Za-z ,.?!:;'\-]*[.?!]")
ANSWER_OK = re.compile(r"[A-Za-z][A-Za-z ,.?!:;'\-]*[.?!]")
#: Categories whose answer content is judged against `accept`.
CONTENT = {
    "knowledge",
    "reasoning",
    "language",
    "gaming",
    "voice_instruction",
    "emotion",
    "roleplay",
    "multi_turn",
}


# ---------------------------------------------------------------------------------------------
# An independent words -> number parser (British style, as spoken)

# fmt: off
_UNIT_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)
_TEN_WORDS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
# fmt: on
_UNITS = {w: i for i, w in enumerate(_UNIT_WORDS)}
_TENS = {w: 10 * i for i, w in enumerate(_TEN_WORDS, start=2)}
_BIG = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}


def words_to_number(text: str) -> int:
    tokens = text.replace("-", " ").split()
    sign = -1 if tokens[:1] == ["minus"] else 1
    total = current = 0
    for tok in tokens[1:] if sign < 0 else tokens:
        if tok == "and":
            continue
        if tok in _UNITS:
            current += _UNITS[tok]
        elif tok in _TENS:
            current += _TENS[tok]
        elif tok == "hundred":
            current *= 100
        elif tok in _BIG:
            total += current * _BIG[tok]
            current = 0
        else:
            raise ValueError(f"not a number word: {tok!r} in {text!r}")
    return sign * (total + current)


def expected_accept(n: int) -> list[str]:
    return [normalize(number_to_words(n)), str(n)]


# ---------------------------------------------------------------------------------------------
# Samples shared by the tests


@pytest.fixture(scope="module")
def samples() -> dict[tuple[str, str], list[tuple[DialogueItem, object]]]:
    out = {}
    for category in CATEGORIES:
        for split in SPLITS:
            out[(category, split)] = [
                generate_traced(category, random.Random(f"{category}:{split}:{seed}"), split)
                for seed in range(N_PER_SPLIT)
            ]
    return out


def all_items(samples, categories=CATEGORIES):
    for (category, _split), items in samples.items():
        if category in categories:
            yield from items


# ---------------------------------------------------------------------------------------------
# Number words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (20, "twenty"),
        (21, "twenty-one"),
        (99, "ninety-nine"),
        (100, "one hundred"),
        (105, "one hundred and five"),
        (110, "one hundred and ten"),
        (999, "nine hundred and ninety-nine"),
        (1000, "one thousand"),
        (1005, "one thousand and five"),
        (1200, "one thousand two hundred"),
        (12345, "twelve thousand three hundred and forty-five"),
        (100_000, "one hundred thousand"),
        (1_000_000, "one million"),
        (2_000_017, "two million and seventeen"),
        (-3, "minus three"),
    ],
)
def test_number_to_words_known_values(n: int, words: str) -> None:
    assert number_to_words(n) == words


def test_number_to_words_round_trips() -> None:
    rng = random.Random(0)
    numbers = [
        *range(0, 2100),
        *(rng.randint(0, 1_000_000) for _ in range(3000)),
        1_000_000,
        999_999_999,
    ]
    for n in numbers:
        words = number_to_words(n)
        assert re.fullmatch(r"[a-z -]+", words), words
        assert words_to_number(words) == n


def test_number_to_words_rejects_bad_input() -> None:
    with pytest.raises(TypeError):
        number_to_words(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        number_to_words(10**12)


# ---------------------------------------------------------------------------------------------
# Templates and splits


def test_template_counts_and_ids() -> None:
    t = templates()
    assert len(t) >= 500
    per_category = Counter(tid.split(".")[0] for tid in t)
    assert set(per_category) == set(CATEGORIES)
    assert all(count >= 35 for count in per_category.values()), per_category
    for tid in t:
        category, intent, n = tid.split(".")
        assert category in CATEGORIES and re.fullmatch(r"[a-z_0-9]+", intent) and n.isdigit()
        assert template_split(tid) in SPLITS


def test_every_intent_has_templates_in_every_split() -> None:
    for key, ids in intents().items():
        splits = Counter(template_split(tid) for tid in ids)
        assert splits["train"] >= 2, key
        assert splits["valid"] >= 1, key
        assert splits["test"] >= 1, key


def test_split_shares() -> None:
    shares = Counter(template_split(tid) for tid in templates())
    total = sum(shares.values())
    assert 0.65 <= shares["train"] / total <= 0.85
    assert 0.08 <= shares["test"] / total <= 0.2
    assert 0.04 <= shares["valid"] / total <= 0.15


def test_template_texts_are_unique() -> None:
    seen = {}
    for tid, text in templates().items():
        key = re.sub(r"\{[^{}]*\}", "{}", text.lower())
        assert key not in seen, (tid, seen.get(key))
        seen[key] = tid


def test_template_split_unknown_id() -> None:
    with pytest.raises(KeyError):
        template_split("knowledge.nothing.1")


def _fingerprint() -> dict:
    """Template splits and a few generated items: must not depend on the interpreter's hash seed."""
    items = {
        f"{c}:{s}": generate(c, random.Random(f"fp:{c}:{s}"), s).to_dict()
        for c in CATEGORIES
        for s in SPLITS
    }
    return {"splits": {k: template_split(k) for k in templates()}, "items": items}


def test_splits_and_items_do_not_depend_on_hash_seed() -> None:
    code = "import json, tests.test_tasks as t; print(json.dumps(t._fingerprint()))"
    here = json.loads(json.dumps(_fingerprint()))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(out.stdout) == here


# ---------------------------------------------------------------------------------------------
# Items


def test_unknown_category_and_split() -> None:
    with pytest.raises(ValueError, match="knowledge"):
        generate("astrology", random.Random(0))
    with pytest.raises(ValueError, match="split"):
        generate("knowledge", random.Random(0), "dev")


def test_items_are_valid(samples) -> None:
    for (category, split), items in samples.items():
        for item, trace in items:
            assert item.category == category
            assert item.template.startswith(f"{category}.")
            assert template_split(item.template) == split
            assert trace.templates and all(template_split(t) == split for t in trace.templates)
            assert item.template in trace.templates
            assert len(trace.facts) == len(item.turns)
            d = item.to_dict()
            assert DialogueItem.from_dict(json.loads(json.dumps(d))).to_dict() == d
            for turn in item.turns:
                assert HUMAN_OK.fullmatch(turn.human_text), turn.human_text
                assert not re.search(r"\d", turn.human_text)
                assert turn.human.style in STYLES
                for s in turn.answer:
                    assert s.style in STYLES
                    assert ANSWER_OK.fullmatch(s.text), s.text
                    assert "(" not in s.text and ")" not in s.text
                    assert 1 <= len(s.text.split()) <= 20, s.text
                    assert len(parse_tagged(s.text)) == 1, s.text
                parsed = parse_tagged(turn.answer_text)
                assert [(s.text, s.style) for s in parsed] == [
                    (s.text, s.style) for s in turn.answer
                ]
                for a in turn.accept:
                    assert a == normalize(a) and a, turn.accept


def test_items_use_only_their_split_templates(samples) -> None:
    used = defaultdict(set)
    for (_category, split), items in samples.items():
        for _item, trace in items:
            used[split].update(trace.templates)
    assert not used["train"] & used["test"]
    assert not used["train"] & used["valid"]
    assert not used["valid"] & used["test"]


def test_determinism() -> None:
    for category in CATEGORIES:
        for split in SPLITS:
            a = generate(category, random.Random(42), split).to_dict()
            b = generate(category, random.Random(42), split).to_dict()
            assert a == b


def test_variety(samples) -> None:
    for (category, split), items in samples.items():
        questions = {item.turns[0].human_text for item, _ in items}
        answers = {item.turns[0].answer_text for item, _ in items}
        minimum = 100
        if category == "voice_understanding":  # few templates, no slots
            minimum = 30 if split == "train" else 4
        assert len(questions) >= minimum, (category, split, len(questions))
        assert len(answers) >= (8 if category == "voice_understanding" else 30), (category, split)


def test_fillers_are_used(samples) -> None:
    texts = [t.human_text for item, _ in all_items(samples) for t in item.turns]
    assert sum(t.startswith(("Um, ", "Hey, ", "Quick question: ", "So, ")) for t in texts) > 50
    assert sum(", please" in t for t in texts) > 50
    # An inline filler lower-cases the next word ("Um, what's ...", never "Um, What's ...").
    common = {
        "What",
        "What's",
        "How",
        "Can",
        "Could",
        "Tell",
        "Say",
        "Which",
        "Do",
        "Is",
        "A",
        "The",
    }
    for t in texts:
        m = re.match(
            r"(?:Um|Uh|So|Hey|Okay|Well|Oh|Hmm|Right|Excuse me|Quick question)[,:] (\S+)", t
        )
        assert not (m and m.group(1) in common), t


# ---------------------------------------------------------------------------------------------
# Answer content


def test_accept_appears_in_answer(samples) -> None:
    for item, _ in all_items(samples, CONTENT):
        for turn in item.turns:
            assert turn.accept, (item.template, turn.human_text)
            assert any(contains_phrase(turn.answer_plain, a) for a in turn.accept), (
                turn.answer_plain,
                turn.accept,
            )
            digits = [a for a in turn.accept if a.replace(" ", "").isdigit()]
            if digits:  # numeric answers carry the word form and the digit form, and say the words
                assert len(turn.accept) == 2 and contains_phrase(turn.answer_plain, turn.accept[0])
                assert not re.search(r"\d", turn.answer_plain)


def _check_op(facts: dict, accept: list[str]) -> None:
    a, b = facts["a"], facts.get("b")
    expected = {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "//": lambda: a // b,
        "max": lambda: max(a, b),
        "min": lambda: min(a, b),
        "parity": lambda: "even" if a % 2 == 0 else "odd",
    }[facts["op"]]()
    assert facts["answer"] == expected
    if isinstance(expected, int):
        assert accept == expected_accept(expected)
        assert words_to_number(accept[0]) == expected
    else:
        assert accept == [expected]


def test_arithmetic_and_comparisons(samples) -> None:
    checked = Counter()
    for item, trace in all_items(samples, {"reasoning", "multi_turn"}):
        for k, (turn, facts) in enumerate(zip(item.turns, trace.facts, strict=True)):
            if "op" not in facts:
                continue
            _check_op(facts, turn.accept)
            checked[facts["op"]] += 1
            if item.category == "reasoning":
                assert contains_phrase(turn.human_text, number_to_words(facts["a"]))
                if "b" in facts and item.intent not in ("double", "half"):
                    assert contains_phrase(turn.human_text, number_to_words(facts["b"]))
            elif k > 0 and item.intent == "arithmetic":  # a follow-up works on the last result
                assert facts["a"] == trace.facts[k - 1]["answer"]
    assert all(checked[op] > 10 for op in ("+", "-", "*", "max", "min", "parity")), checked


def test_roleplay_inner_arithmetic(samples) -> None:
    n = 0
    for item, trace in all_items(samples, {"roleplay"}):
        inner = trace.facts[0].get("inner", {})
        if "op" in inner:
            _check_op(inner, item.turns[0].accept)
            n += 1
    assert n > 20


def test_capitals(samples) -> None:
    path = resources.files("aqaa.data").joinpath("knowledge", "countries.json")
    table = {c["country"]: c["capital"] for c in json.loads(path.read_text())}
    assert len(table) >= 60
    n = 0
    for item, trace in all_items(samples, {"knowledge", "multi_turn"}):
        if item.intent not in ("capital", "capital_country"):
            continue
        for turn, facts in zip(item.turns, trace.facts, strict=True):
            assert table[facts["country"]] == facts["capital"]
            asked = facts["capital"] if item.intent == "capital_country" else facts["country"]
            name = asked.removeprefix("the ")
            said = contains_phrase(turn.human_text, name) or contains_phrase(
                turn.human_text, name + "s"
            )
            assert said, turn.human_text  # (a possessive "Peru's" normalises to "perus")
            if item.intent == "capital":
                assert turn.accept == [normalize(facts["capital"])]
            n += 1
    assert n > 50


def test_counting(samples) -> None:
    n = 0
    for item, trace in all_items(samples, {"gaming", "multi_turn"}):
        for turn, facts in zip(item.turns, trace.facts, strict=True):
            if "step" not in facts:
                continue
            start, end, step = facts["start"], facts["end"], facts["step"]
            expected = list(range(start, end + (1 if step > 0 else -1), step))
            said = [
                words_to_number(x) for x in turn.answer[-1].text.rstrip(".").lower().split(", ")
            ]
            assert said == expected
            assert turn.accept == [
                normalize(" ".join(number_to_words(x) for x in expected)),
                " ".join(map(str, expected)),
            ]
            n += 1
    assert n > 50


def test_after_and_before(samples) -> None:
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    n = 0
    for item, trace in all_items(samples, {"gaming", "multi_turn"}):
        for turn, facts in zip(item.turns, trace.facts, strict=True):
            if "kind" not in facts:
                continue
            step = 1 if item.intent == "after" else -1
            x, y = facts["x"], facts["answer"]
            if facts["kind"] == "day":
                assert (x + step) % 7 == y and turn.accept == [days[y]]
            elif facts["kind"] == "number":
                assert x + step == y and turn.accept == expected_accept(y)
            elif facts["kind"] == "letter":
                assert x + step == y and turn.accept == [f"letter {chr(97 + y)}"]
            n += 1
    assert n > 50


def test_spelling_and_letters(samples) -> None:
    for item, trace in all_items(samples, {"language"}):
        facts, turn = trace.facts[0], item.turns[0]
        if item.intent == "spell":
            assert turn.accept == [" ".join(facts["word"])]
            assert contains_phrase(turn.human_text, facts["word"])
        elif item.intent in ("first_letter", "last_letter"):
            letter = facts["word"][0 if item.intent == "first_letter" else -1]
            assert turn.accept == [f"letter {letter}"]


# ---------------------------------------------------------------------------------------------
# Styles


def test_voice_instruction_styles(samples) -> None:
    seen = Counter()
    for item, trace in all_items(samples, {"voice_instruction"}):
        style = trace.facts[0]["style"]
        assert style in INSTRUCTION_STYLES and style != "neutral"
        assert [s.style for s in item.turns[0].answer] == [style]
        assert contains_phrase(item.turns[0].human_text, trace.facts[0]["phrase"])
        if item.intent == "say":
            assert any(contains_phrase(item.turns[0].human_text, how) for how in HOW[style])
        seen[style] += 1
    assert set(seen) == set(INSTRUCTION_STYLES) - {"neutral"}


def test_emotion_styles(samples) -> None:
    two = 0
    items = list(all_items(samples, {"emotion"}))
    for item, trace in items:
        styles = [s.style for s in item.turns[0].answer]
        assert all(s in EMOTION_STYLES for s in styles)
        if item.intent == "two_styles":
            two += 1
            assert (
                len(styles) == 2 and styles[0] != styles[1] and styles == trace.facts[0]["styles"]
            )
        else:
            assert len(set(styles)) == 1 and styles[0] == trace.facts[0]["styles"][0]
    assert 0.12 <= two / len(items) <= 0.28


def test_roleplay_styles(samples) -> None:
    for item, trace in all_items(samples, {"roleplay"}):
        styles = {s.style for s in item.turns[0].answer}
        assert styles == {trace.facts[0]["persona"]} and styles <= set(PERSONA_STYLES)


def test_singing(samples) -> None:
    n = 0
    for item, _ in all_items(samples, {"creativity"}):
        if item.intent == "sing":
            assert [(s.text, s.style) for s in item.turns[0].answer] == [
                ("Do re mi fa so la ti do.", "sing")
            ]
            n += 1
        elif item.intent == "story":
            assert 2 <= len(item.turns[0].answer) <= 4
        if item.intent in ("story", "poem"):
            assert any(contains_phrase(item.turns[0].answer_plain, a) for a in item.turns[0].accept)
        if item.intent != "sing":
            assert all(s.style == "neutral" for s in item.turns[0].answer)
    assert n > 10


# ---------------------------------------------------------------------------------------------
# Voice understanding


def _label(intent: str, spec) -> object:
    return {
        "pitch": spec.pitch,
        "speed": spec.speed,
        "whisper": spec.whisper,
        "gender": spec.gender,
    }[intent]


def test_voice_understanding_labels(samples) -> None:
    by_template = defaultdict(set)
    labels_by_template = defaultdict(set)
    label_counts = Counter()
    for item, trace in all_items(samples, {"voice_understanding"}):
        turn, intent = item.turns[0], item.intent
        spec, label = turn.human, trace.facts[0]["label"]
        by_template[item.template].add(turn.human_text)
        labels_by_template[item.template].add(label)
        label_counts[(intent, label)] += 1
        assert _label(intent, spec) == label
        others = {"pitch", "speed", "whisper", "gender"} - {intent}
        assert all(_label(o, spec) is None for o in others)
        if intent == "pitch":
            assert spec.style == "neutral"
        elif intent == "speed":
            assert spec.style == label
        elif intent == "whisper":
            assert (spec.style == "whisper") == label
        assert turn.accept == vu.ACCEPT[intent][label]
        assert any(contains_phrase(turn.answer_plain, a) for a in turn.accept)
        other_labels = [x for x in vu.ACCEPT[intent] if x != label]
        for other in other_labels:
            assert not any(
                contains_phrase(turn.answer_plain, a) for a in vu.ACCEPT[intent][other]
            ), turn.answer_plain
    # The human text depends on the template alone, and templates are asked with either label.
    assert all(len(texts) == 1 for texts in by_template.values())
    assert sum(len(labels) == 2 for labels in labels_by_template.values()) >= 0.5 * len(
        labels_by_template
    )
    for intent in vu.INTENTS:
        assert all(label_counts[(intent, label)] > 10 for label in vu.labels(intent))


def test_voice_understanding_text_independent_of_label() -> None:
    """Same template, both labels: same human text, different answers."""
    from aqaa.data.tasks.base import Ctx

    for tid in (t for t in templates() if t.startswith("voice_understanding.")):
        intent = tid.split(".")[1]
        split = template_split(tid)
        texts, answers = set(), set()
        for label in vu.labels(intent):
            ctx = Ctx("voice_understanding", random.Random(0), split)
            qa = vu.answer_qa(ctx, intent, tid, templates()[tid], label)
            texts.add(qa.human)
            answers.add(tuple(qa.accept))
        assert len(texts) == 1 and len(answers) == 2


def test_multi_turn_voice_understanding(samples) -> None:
    texts = defaultdict(set)
    for item, trace in all_items(samples, {"multi_turn"}):
        if item.intent != "vu_again":
            continue
        intent = trace.templates[0].split(".")[1]
        for k, turn in enumerate(item.turns):
            assert _label(intent, turn.human) == trace.facts[k]["label"]
            assert turn.human.gender is None
            if k:
                texts[trace.templates[k]].add(turn.human_text)
    assert texts and all(len(v) == 1 for v in texts.values())


# ---------------------------------------------------------------------------------------------
# Multi-turn


def test_multi_turn_structure(samples) -> None:
    kinds = Counter()
    for item, trace in all_items(samples, {"multi_turn"}):
        assert 2 <= len(item.turns) <= 3
        kinds[item.intent] += 1
        # The item's template is its first follow-up's; the first turn may reuse another category's.
        assert item.template == trace.templates[-len(item.turns) + 1]
        if item.intent == "restyle":
            for turn, facts in zip(item.turns, trace.facts, strict=True):
                assert [s.style for s in turn.answer] == [facts["style"]]
            assert item.turns[0].answer[0].style == "neutral"
            assert len({t.answer_plain.rstrip(".!") for t in item.turns}) == 1
        if item.intent == "count_back":
            first, second = trace.facts
            assert (second["start"], second["end"]) == (first["end"], first["start"])
        if item.intent in ("capital", "colour", "opposite", "spell"):
            asked = [json.dumps(f, sort_keys=True) for f in trace.facts]
            assert len(set(asked)) == len(asked)
        if item.intent == "repeat":
            assert item.turns[1].answer_plain.endswith(item.turns[0].answer_plain)
    assert len(kinds) == 10
