"""Crossover suites: is the LM's hearing gap on the suite the voices or the phrasing? (session 21)

Writes two suite JSONs for `aqaa eval hearing --suite FILE`:
- `phrasing.json`: the default suite's own questions, each turn re-voiced by a random training voice;
- `voices.json`: held-out questions of a spoken-question corpus (training templates, e.g. q13
  valid) spoken by the default suite's voices (reserved and held-out), with their corpus prosody.

    python scripts/crossover_suites.py --corpus /work/corpus/q13 --out /work/runs/xover
"""

from __future__ import annotations

import argparse
import copy
import json
import random
from pathlib import Path

from aqaa.data.voices import VoiceBank

SUITE = Path(__file__).resolve().parents[1] / "src/aqaa/eval/suites/default.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--corpus", type=Path, required=True, help="a `data babble --source questions` corpus"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=70, help="questions in voices.json")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = json.loads(SUITE.read_text())
    train_voices = sorted(v.id for v in VoiceBank.discover().voices("train"))
    rng = random.Random(0)

    phrasing = copy.deepcopy(base) | {"name": "xover_phrasing"}
    for item in phrasing["items"]:
        for turn in item["turns"]:
            turn["voice"] = rng.choice(train_voices)
    (args.out / "phrasing.json").write_text(json.dumps(phrasing, indent=1))

    suite_voices = sorted({t["voice"] for it in base["items"] for t in it["turns"]})
    rows = [json.loads(line) for line in (args.corpus / "manifest.jsonl").open()]
    rows = [r for r in rows if r["split"] == "valid"][: args.n]
    items = []
    for i, r in enumerate(rows):
        t0 = r["turns"][0]
        turn = copy.deepcopy(base["items"][0]["turns"][0])
        prosody = t0["human_audio"]["prosody"]
        turn.update(
            question=t0["human_text"],
            voice=suite_voices[i % len(suite_voices)],
            accept=t0["accept"],
            answer=t0["answer_text"],
            prosody={k: prosody[k] for k in ("rate", "pitch", "loudness")},
        )
        items.append(
            copy.deepcopy(base["items"][0])
            | {
                "id": f"xv-{i:02d}",
                "category": r["category"],
                "intent": r["intent"],
                "templates": [r["template"]],
                "turns": [turn],
            }
        )
    voices = copy.deepcopy(base) | {"name": "xover_voices", "items": items}
    (args.out / "voices.json").write_text(json.dumps(voices, indent=1))
    print(
        f"{len(train_voices)} training voices; {len(suite_voices)} suite voices; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
