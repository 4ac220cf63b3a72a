"""Render the bundled example questions (run once; the WAVs are committed).

    python examples/make_examples.py

The questions come from the *test* split of the task templates and are spoken by the reserved
test voices (festival `cmu_us_slt_arctic_hts`, flite `awb`), which no training run ever hears, so
the examples show how the model does on a voice and a phrasing it has not met.
`questions.json` keeps each transcript and its accepted answers (for checks and benchmarks).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from aqaa.audio import save_audio
from aqaa.data.tasks import generate
from aqaa.data.voices import VoiceBank

HERE = Path(__file__).resolve().parent
#: (file stem, category, seed of the test-split generator, reserved voice)
EXAMPLES = [
    ("question", "knowledge", 3, "flite:awb"),
    ("reasoning", "reasoning", 3, "festival:cmu_us_slt_arctic_hts"),
    ("plural", "language", 5, "flite:awb"),
    ("word_game", "gaming", 2, "festival:cmu_us_slt_arctic_hts"),
]


def main() -> None:
    bank = VoiceBank.discover()
    meta = []
    for stem, category, seed, voice in EXAMPLES:
        item = generate(category, random.Random(seed), "test")
        turn = item.turns[0]
        x = bank.render(turn.human_text, voice, sample_rate=16000, purpose="eval")
        save_audio(HERE / f"{stem}.wav", x, 16000)
        meta.append({"file": f"{stem}.wav", "category": category, "voice": voice,
                     "question": turn.human_text, "answer": turn.answer_text,
                     "accept": list(turn.accept)})  # fmt: skip
        print(f"{stem}.wav ({voice}): {turn.human_text} -> {turn.answer_text}")
    (HERE / "questions.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
