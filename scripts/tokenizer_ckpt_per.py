"""Phone error rate of tokenizer checkpoints by voice group, and how far their codes moved.

    python scripts/tokenizer_ckpt_per.py --base src/aqaa/weights/tokenizer \
        --probe-cache runs/probe10.pkl runs/tok6/checkpoint.pt runs/tok6b/checkpoint.pt

Each argument is a training checkpoint (`checkpoint.pt` of `aqaa train tokenizer`, read into
`--base`'s architecture and codebook) or a saved tokenizer directory. For each it prints the
linguistic CTC head's phone error rate on the probe set of `aqaa eval tokenizer` (reserved voices,
the assistant's voice, the training voices) and the share of linguistic codes equal to `--base`'s
codes on the same clips: near 100% means an LM and a vocoder trained on `--base`'s codes still
read them. A quick look at a run in progress; `aqaa eval tokenizer` is the full report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from aqaa.data.voices import ASSISTANT_VOICE, RESERVED_VOICES
from aqaa.tokenizer.dual import DualCodebookTokenizer
from aqaa.tokenizer.evaluate import load_or_render_probe_set, phone_error_rate


def load(base: Path, what: Path) -> DualCodebookTokenizer:
    if what.is_dir():
        return DualCodebookTokenizer.load(what)
    tok = DualCodebookTokenizer.load(base)
    state = torch.load(what, weights_only=False, map_location="cpu")
    tok.linguistic.load_state_dict(state["linguistic"])
    tok.semantic.load_state_dict(state["semantic"])
    return tok


@torch.no_grad()
def code_agreement(a: DualCodebookTokenizer, b: DualCodebookTokenizer, clips: list) -> float:
    same = total = 0
    for c in clips:
        x, y = a.encode_waveform(c.audio).linguistic, b.encode_waveform(c.audio).linguistic
        n = min(len(x), len(y))
        same += int((x[:n] == y[:n]).sum())
        total += n
    return same / max(total, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--probe-cache", type=Path, required=True)
    ap.add_argument("--sentences", type=int, default=10)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    clips = load_or_render_probe_set(args.sentences, args.probe_cache)
    groups = {
        "reserved": [c for c in clips if c.voice in RESERVED_VOICES],
        **{
            v.split(":")[1][:12]: [c for c in clips if c.voice == v]
            for v in sorted(RESERVED_VOICES)
        },
        "assistant": [c for c in clips if c.voice == ASSISTANT_VOICE],
        "training voices": [
            c for c in clips if c.voice not in RESERVED_VOICES and c.voice != ASSISTANT_VOICE
        ],
    }
    base = DualCodebookTokenizer.load(args.base)
    table = Table("tokenizer", *[f"PER {g}" for g in groups], "codes = base's")
    for path in [args.base, *args.checkpoints]:
        tok = load(args.base, path)
        pers = [f"{phone_error_rate(tok, g):.1%}" if g else "—" for g in groups.values()]
        agree = code_agreement(base, tok, clips[::4])
        table.add_row(str(path), *pers, f"{agree:.1%}")
    Console().print(table)


if __name__ == "__main__":
    main()
