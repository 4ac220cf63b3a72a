"""The token probe: phones readable from codes give a low PER, codes that carry nothing a high one."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aqaa.cli import app
from aqaa.eval.token_probe import ProbeConfig, load_utterances, run_probe
from aqaa.tokenizer.ids import interleave

PHONES = "aeioumnst"


def _corpus(root: Path, informative: bool, seed: int = 0) -> Path:
    """A fake tokenized corpus: each phone is spoken as two linguistic frames whose code is one of
    three variants of that phone (``informative``), or as random codes (not)."""
    rng = random.Random(seed)
    (root / "tokens").mkdir(parents=True)
    (root / "items").mkdir()
    for split, n in (("train", 240), ("valid", 40), ("test", 40)):
        with (root / "tokens" / f"{split}.jsonl").open("w") as f:
            for i in range(n):
                phones = [rng.randrange(len(PHONES)) for _ in range(rng.randint(3, 7))]
                if informative:
                    ling = [p * 10 + rng.randrange(3) for p in phones for _ in range(2)]
                else:
                    ling = [rng.randrange(1024) for _ in range(2 * len(phones))]
                sem = [rng.randrange(4096) for _ in range(3 * len(phones))]
                codes = interleave(np.array(ling), np.array(sem)).tolist()
                item_id = f"{split}-{i:04d}"
                ipa = " ".join(PHONES[p] for p in phones)
                f.write(json.dumps({"id": item_id, "turns": [{"human_codes": codes}]}) + "\n")
                item = {"turns": [{"human_audio": {"phonemes": ipa}}]}
                (root / "items" / f"{item_id}.json").write_text(json.dumps(item))
    return root


def test_load_utterances_splits_codes_and_encodes_phones(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "c", informative=True)
    utts, symbols = load_utterances(root, "train")
    assert len(utts) == 240 and symbols[0] == "<blank>" and set(symbols[1:]) == set(PHONES)
    u = utts[0]
    assert len(u.ling) == 2 * len(u.phones) and len(u.sem) == 3 * len(u.phones)
    assert all(
        PHONES.index(symbols[p]) == c // 10 for p, c in zip(u.phones, u.ling[::2], strict=True)
    )


def test_probe_reads_informative_codes_and_not_random_ones(tmp_path: Path) -> None:
    cfg = ProbeConfig(dim=32, epochs=25, batch=16, lr=1e-2, threads=1)
    good = run_probe(_corpus(tmp_path / "good", informative=True), cfg)
    bad = run_probe(_corpus(tmp_path / "bad", informative=False), cfg)
    assert set(good.per) == {"train", "valid", "test"}
    assert good.per["test"] < 0.15, good.per
    assert bad.per["test"] > 0.5, bad.per


def test_cli_errors_without_token_shards(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["eval", "token-probe", "--data", str(tmp_path)])
    assert r.exit_code == 2 and "aqaa data tokenize" in r.output
    r = CliRunner().invoke(app, ["eval", "token-probe", "--data", str(tmp_path), "--streams", "x"])
    assert r.exit_code == 2 and "--streams" in r.output


@pytest.mark.parametrize("streams", ["semantic", "both"])
def test_other_streams_run(tmp_path: Path, streams: str) -> None:
    res = run_probe(
        _corpus(tmp_path / "c", informative=True),
        ProbeConfig(streams=streams, dim=16, epochs=1, threads=1),  # type: ignore[arg-type]
        splits=("test",),
    )
    assert set(res.per) == {"train", "test"} and 0 <= res.per["test"] <= 1.5
