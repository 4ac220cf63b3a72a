"""Token shards (`aqaa data tokenize`): the corpus tokenized once, for LM and vocoder training.

`CORPUS/tokens/{train,valid,test}.jsonl`, one dialogue per line::

    {"id", "split", "category", "intent", "template", "facts",
     "turns": [{"human_text", "human_style", "human_voice", "accept",
                "human_codes": [...],                  # interleaved codes in [0, 5120)
                "answer_text": "(sad) I am sorry.",   # tagged text
                "answer_clips": [{"text", "style", "codes": [...], "audio": "audio/.../a0_0.flac"}]}]}

`tokens/tokenizer.json` names the tokenizer (`{"fingerprint", "directory"}`): LM and vocoder
training stamp it into what they write, and training, evaluation, ship and the engine refuse to mix
shards of different tokenizers or to pair a model with another tokenizer's codes.

A turn without human audio (the assistant-voice clips of `aqaa data babble --source assistant`)
gets empty `human_codes` and `human_voice`; such shards are vocoder data only.

Clips are tokenized in batches of similar length (the encoder's block mask makes padding harmless).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aqaa.audio import load_audio
from aqaa.data.corpus import read_manifest
from aqaa.tokenizer import DualCodebookTokenizer
from aqaa.tokenizer import ids as audio_ids
from aqaa.tokenizer.features import fbank

TOKENIZER_RECORD = "tokenizer.json"


def corpora(corpus: str | Path) -> list[Path]:
    """The corpus directories of a `--data` value: one path, or several joined by commas."""
    return [Path(c) for c in str(corpus).split(",") if c]


def shard_tokenizer(corpus: str | Path) -> str | None:
    """Fingerprint of the audio tokenizer that wrote the shards of `corpus` (for `a,b` all must
    agree); None when no shard records it (shards written before the record existed)."""
    seen: dict[str, str] = {}
    for c in corpora(corpus):
        rec = c / "tokens" / TOKENIZER_RECORD
        if rec.exists():
            seen[str(c)] = json.loads(rec.read_text())["fingerprint"]
    if len(set(seen.values())) > 1:
        pairs = ", ".join(f"{c}: {f}" for c, f in seen.items())
        raise ValueError(f"the corpora were tokenized by different tokenizers ({pairs})")
    return next(iter(seen.values()), None)


def _encode_many(
    tok: DualCodebookTokenizer, paths: list[Path], batch: int = 16, progress: bool = True
) -> list[np.ndarray]:
    from tqdm import tqdm

    feats = [
        fbank(load_audio(p)) for p in tqdm(paths, disable=not progress, desc="fbank", unit="clip")
    ]
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]))
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(feats)
    for s in tqdm(range(0, len(order), batch), disable=not progress, desc="tokenize", unit="batch"):
        idx = order[s : s + batch]
        lengths = torch.tensor([len(feats[i]) for i in idx])
        padded = torch.zeros(len(idx), int(lengths.max()), feats[idx[0]].shape[1])
        for j, i in enumerate(idx):
            padded[j, : len(feats[i])] = feats[i]
        ling, sem, l_len, s_len = tok.encode_features(padded, lengths)
        for j, i in enumerate(idx):
            out[i] = audio_ids.interleave(ling[j, : l_len[j]].numpy(), sem[j, : s_len[j]].numpy())
    return out


def tokenize_corpus(
    corpus: Path | str, tok: DualCodebookTokenizer | None = None, progress: bool = True
) -> dict[str, int]:
    """Write `tokens/<split>.jsonl`; returns the number of dialogues per split."""
    corpus = Path(corpus)
    tok = tok or DualCodebookTokenizer.load()
    records = read_manifest(corpus)
    paths: list[Path] = []
    for r in records:
        for t in r["turns"]:
            if "human_audio" in t:
                paths.append(corpus / t["human_audio"]["path"])
            paths += [corpus / c["path"] for c in t["answer_audio"]]
    codes = iter(_encode_many(tok, paths, progress=progress))
    shards: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        turns = []
        for t in r["turns"]:
            human = next(codes) if "human_audio" in t else np.zeros(0, np.int64)
            clips = [
                {
                    "text": c["text"],
                    "style": c["style"],
                    "codes": next(codes).tolist(),
                    "audio": c["path"],
                }
                for c in t["answer_audio"]
            ]
            turns.append(
                {
                    "human_text": t["human_text"],
                    "human_style": t["human"]["style"],
                    "human_voice": t.get("human_audio", {}).get("voice", ""),
                    "accept": t.get("accept", []),
                    "human_codes": human.tolist(),
                    "answer_text": t.get("answer_text", ""),
                    "answer_clips": clips,
                }
            )
        keys = ("id", "split", "category", "intent", "template")  # babble has no intent
        shards.setdefault(r["split"], []).append(
            {**{k: r.get(k, "") for k in keys}, "facts": r.get("facts", []), "turns": turns}
        )
    out_dir = corpus / "tokens"
    out_dir.mkdir(exist_ok=True)
    # the shards are replaced below: forget the old tokenizer first, so an interrupted run
    # leaves shards of unknown origin rather than a wrong record
    (out_dir / TOKENIZER_RECORD).unlink(missing_ok=True)
    for split, rows in shards.items():
        tmp = out_dir / f"{split}.jsonl.tmp"
        with tmp.open("w") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, out_dir / f"{split}.jsonl")
    record = {"fingerprint": tok.fingerprint(), "directory": str(tok.directory or "")}
    tmp = out_dir / f"{TOKENIZER_RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, out_dir / TOKENIZER_RECORD)
    return {k: len(v) for k, v in shards.items()}
