"""Render the bundled example questions (run once; the WAVs are committed).

    python examples/make_examples.py               # the WAVs, questions.json and suite.json
    python examples/make_examples.py --suite-only  # suite.json alone (the WAVs are kept)

The questions come from the *test* split of the task templates and are spoken by the reserved
test voices (festival `cmu_us_slt_arctic_hts`, flite `awb`), which no training run ever hears, so
the examples show how the model does on a voice and a phrasing it has not met.
`questions.json` keeps each transcript and its accepted answers (for checks and benchmarks);
`suite.json` is an evaluation suite that asks these very recordings, so that
`aqaa eval run --suite examples/suite.json --system e2e` judges the bundled answers (Whisper
consistency of each answer's speech with its text, content, style) in a minute.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from aqaa.audio import save_audio
from aqaa.data.tasks import generate
from aqaa.data.voices import VoiceBank
from aqaa.eval.suite import Suite, SuiteItem, SuiteTurn, paralinguistic_of, save_suite

HERE = Path(__file__).resolve().parent
#: (file stem, category, seed of the test-split generator, reserved voice)
EXAMPLES = [
    ("question", "knowledge", 3, "flite:awb"),
    ("reasoning", "reasoning", 3, "festival:cmu_us_slt_arctic_hts"),
    ("plural", "language", 5, "flite:awb"),
    ("word_game", "gaming", 2, "festival:cmu_us_slt_arctic_hts"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite-only", action="store_true", help="write suite.json only")
    suite_only = ap.parse_args().suite_only
    bank = None if suite_only else VoiceBank.discover()
    meta, items = [], []
    for stem, category, seed, voice in EXAMPLES:
        item = generate(category, random.Random(seed), "test")
        turn = item.turns[0]
        if bank is not None:
            x = bank.render(turn.human_text, voice, sample_rate=16000, purpose="eval")
            save_audio(HERE / f"{stem}.wav", x, 16000)
        styles = [s.style for s in turn.answer]
        suite_turn = SuiteTurn(turn.human_text, voice, list(turn.accept), turn.answer_text,
                               styles, paralinguistic=paralinguistic_of(turn),
                               audio=f"{stem}.wav")  # fmt: skip
        items.append(SuiteItem(stem, category, [suite_turn], item.intent))
        meta.append({"file": f"{stem}.wav", "category": category, "voice": voice,
                     "question": turn.human_text, "answer": turn.answer_text,
                     "accept": list(turn.accept)})  # fmt: skip
        print(f"{stem}.wav ({voice}): {turn.human_text} -> {turn.answer_text}")
    suite = Suite("examples", items, "The bundled example recordings (examples/*.wav).")
    save_suite(suite, HERE / "suite.json")
    if not suite_only:
        (HERE / "questions.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
