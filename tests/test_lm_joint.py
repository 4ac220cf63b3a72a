"""Joint CTC/attention decoding: the prefix scorer against brute force over every alignment, and
the beam search against plain greedy decoding."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from aqaa.lm.data import load_items, write_synthetic_corpus
from aqaa.lm.format import ChatTurn, FormatConfig, build_prompt
from aqaa.lm.joint import CTCPrefixScorer, joint_transcribe, spelled
from aqaa.lm.model import build_model
from aqaa.lm.vocab import N_SPECIAL, TEXT_END_ID, train_vocab


def _brute(logp: np.ndarray) -> dict[str, float]:
    """P(labelling) for every labelling, by enumerating all T-step paths (classes: blank, a, b)."""
    out: dict[str, float] = {}
    for path in itertools.product(range(logp.shape[1]), repeat=logp.shape[0]):
        p = math.exp(sum(logp[t, c] for t, c in enumerate(path)))
        merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
        s = "".join("_ab"[c] for c in merged if c)
        out[s] = out.get(s, 0.0) + p
    return out


def test_prefix_scorer_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    logp = np.log(rng.dirichlet(np.ones(3), size=5))  # T=5, blank + a + b
    probs = _brute(logp)
    assert sum(probs.values()) == pytest.approx(1.0)
    ctc = CTCPrefixScorer(logp)
    for s in ["", "a", "b", "ab", "aa", "ba", "aba", "abb", "aab"]:
        assert math.exp(ctc.full(s)) == pytest.approx(probs.get(s, 0.0), abs=1e-12), s
        starts = sum(p for lab, p in probs.items() if lab.startswith(s))
        assert math.exp(ctc.prefix(s)) == pytest.approx(starts, rel=1e-9), s
    assert ctc.prefix("") == 0.0
    with pytest.raises(ValueError, match="T > 0"):
        CTCPrefixScorer(np.zeros((0, 3)))


def test_spelled_is_the_ctc_target_string() -> None:
    assert spelled("(happy) Hi, Bob!") == "hi bob"
    assert spelled("What is, twenty") == "what is twenty"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    corpus: Path = write_synthetic_corpus(tmp_path_factory.mktemp("c"), n_train=8, n_valid=2)
    items = load_items(corpus, "train")
    vocab = train_vocab([t.human_text for it in items for t in it.turns] * 2, 300)
    model = build_model("tiny", vocab.size, seed=0).eval()
    return model, vocab, items[0].turns[0].human_codes


def test_beam_of_one_without_ctc_is_greedy(setup) -> None:
    model, vocab, codes = setup
    fmt = FormatConfig()
    got = joint_transcribe(model, vocab, codes, fmt, ctc_weight=0.0, beam=1, candidates=1,
                           max_new_tokens=6)  # fmt: skip
    ids = build_prompt(vocab, [ChatTurn(human_codes=np.asarray(codes))], "text", fmt,
                       system=fmt.system_asr)  # fmt: skip
    out: list[int] = []
    with torch.no_grad():
        for _ in range(6):
            logits = model(input_ids=torch.tensor([ids + out])).logits[0, -1]
            allowed = torch.full_like(logits, -math.inf)
            allowed[N_SPECIAL : vocab.audio_base] = 0
            allowed[TEXT_END_ID] = 0
            tok = int((logits + allowed).argmax())
            if tok == TEXT_END_ID:
                break
            out.append(tok)
    assert got == vocab.decode(out)


def test_joint_search_runs_with_ctc_and_checks_its_weight(setup) -> None:
    model, vocab, codes = setup

    def run() -> str:
        return joint_transcribe(model, vocab, codes, FormatConfig(), ctc_weight=0.5, beam=3,
                                max_new_tokens=5)  # fmt: skip

    first = run()
    assert first == run() and len(vocab.encode(first)) <= 5
    with pytest.raises(ValueError, match="ctc_weight"):
        joint_transcribe(model, vocab, codes, FormatConfig(), ctc_weight=1.5)
    with pytest.raises(ValueError, match="no audio"):
        joint_transcribe(model, vocab, [], FormatConfig())
