"""How much of the spoken content can be read from the audio *tokens* the LM sees.

`aqaa eval tokenizer` measures the phone error rate of the linguistic encoder's own CTC head, on its
continuous features. The LM never sees those: it sees k-means indices (linguistic) and FSQ codes
(semantic). This probe trains a small recogniser — token embeddings → 2-layer bidirectional GRU → CTC
over the espeak phone set, two outputs per token frame (fast speech has more phones than 16.67 Hz
frames) — on the human questions of a corpus's training split, and reports its greedy phone error
rate on the held-out splits (other voices, other phrasings). A high PER here bounds what any LM can
learn from the same tokens on the same data; a low one says the LM, not the tokenizer, is the gap.

Why a hand-written GRU and not a library model: it is 20 lines and has to read exactly our code
streams; nothing off the shelf takes 1,024 + 4,096 discrete codes.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aqaa.data.shards import corpora
from aqaa.lm.data import iter_records
from aqaa.tokenizer.evaluate import dedup, edit_distance
from aqaa.tokenizer.ids import GROUP, LINGUISTIC_CODES, SEMANTIC_CODES, split
from aqaa.tokenizer.phonemes import PhonemeVocab

Streams = Literal["linguistic", "semantic", "both"]


@dataclass
class ProbeConfig:
    streams: Streams = "linguistic"
    dim: int = 128
    epochs: int = 10
    batch: int = 32
    lr: float = 2e-3
    seed: int = 0
    threads: int = 2


@dataclass
class ProbeUtterance:
    ling: np.ndarray  # (T,) linguistic codes at 16.67 Hz
    sem: np.ndarray  # (1.5·T,) semantic codes at 25 Hz
    phones: list[int]


@dataclass
class ProbeResult:
    config: dict
    train_utterances: int
    phone_set: int
    per: dict[str, float]  # split → phone error rate
    seconds: float


def load_utterances(
    corpus: str | Path, split_name: str, vocab: PhonemeVocab | None = None
) -> tuple[list[ProbeUtterance], list[str]]:
    """Human turns of a split with their codes and espeak IPA (from `items/<id>.json`)."""
    utts: list[tuple[np.ndarray, str]] = []
    for root in corpora(corpus):
        for rec in iter_records(root, split_name):
            item = json.loads((root / "items" / f"{rec['id']}.json").read_text())
            for t_tok, t_item in zip(rec["turns"], item["turns"], strict=False):
                ipa = t_item.get("human_audio", {}).get("phonemes")
                codes = np.asarray(t_tok["human_codes"], dtype=np.int64)
                if ipa and len(codes):
                    utts.append((codes, ipa))
    ipas = [ipa for _, ipa in utts]
    vocab = vocab or PhonemeVocab.from_texts(ipas)
    out = []
    for codes, ipa in utts:
        ling, sem = split(codes)
        out.append(ProbeUtterance(ling, sem, vocab.encode(ipa)))
    return out, vocab.symbols


class TokenRecogniser(nn.Module):
    """Codes → per-half-frame phone logits (2 outputs per 16.67 Hz linguistic frame)."""

    def __init__(self, n_phones: int, streams: Streams, dim: int) -> None:
        super().__init__()
        self.ling = nn.Embedding(LINGUISTIC_CODES, dim) if streams != "semantic" else None
        # the 3 semantic codes of each 120 ms group (2 linguistic frames) → one vector per frame pair
        self.sem = nn.Embedding(SEMANTIC_CODES, dim) if streams != "linguistic" else None
        self.rnn = nn.GRU(dim, dim, num_layers=2, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * dim, 2 * n_phones)
        self.n_phones = n_phones

    def forward(self, ling: torch.Tensor, sem: torch.Tensor) -> torch.Tensor:
        """`ling` (B, T), `sem` (B, 1.5·T) → (B, 2T, n_phones) log-probs."""
        b, t = ling.shape
        x = 0
        if self.ling is not None:
            x = x + self.ling(ling)
        if self.sem is not None:  # 3 semantic vectors per 2 frames → mean per group, repeat twice
            g = self.sem(sem).reshape(b, t // GROUP[0], GROUP[1], -1).mean(2)
            x = x + g.repeat_interleave(GROUP[0], dim=1)
        h, _ = self.rnn(x)
        return self.out(h).reshape(b, 2 * t, self.n_phones).log_softmax(-1)


def _batch(utts: list[ProbeUtterance]) -> tuple[torch.Tensor, ...]:
    t = max(len(u.ling) for u in utts)
    ling = torch.zeros(len(utts), t, dtype=torch.long)
    sem = torch.zeros(len(utts), t * GROUP[1] // GROUP[0], dtype=torch.long)
    for i, u in enumerate(utts):
        ling[i, : len(u.ling)] = torch.from_numpy(u.ling)
        sem[i, : len(u.sem)] = torch.from_numpy(u.sem)
    lens = torch.tensor([2 * len(u.ling) for u in utts])
    return ling, sem, lens


@torch.no_grad()
def phone_error_rate(model: TokenRecogniser, utts: list[ProbeUtterance], batch: int = 64) -> float:
    model.eval()
    errors = total = 0
    for i in range(0, len(utts), batch):
        chunk = utts[i : i + batch]
        ling, sem, lens = _batch(chunk)
        best = model(ling, sem).argmax(-1)
        for u, row, n in zip(chunk, best, lens, strict=True):
            hyp = [p for p in dedup(row[: int(n)].tolist()) if p != 0]
            errors += edit_distance(hyp, u.phones)
            total += len(u.phones)
    model.train()
    return errors / max(total, 1)


def run_probe(
    corpus: str | Path,
    cfg: ProbeConfig | None = None,
    splits: tuple[str, ...] = ("valid", "test"),
    on_epoch: Callable[[int, float], None] | None = None,
) -> ProbeResult:
    """Train the probe on the corpus's training split; PER on `splits` (and on train)."""
    cfg = cfg or ProbeConfig()
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        train, symbols = load_utterances(corpus, "train")
        if not train:
            raise ValueError(f"{corpus} has no tokenized human turns with phonemes in 'train'")
        vocab = PhonemeVocab(symbols)
        held = {s: load_utterances(corpus, s, vocab)[0] for s in splits}
        model = TokenRecogniser(len(vocab), cfg.streams, cfg.dim)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
        rng = random.Random(cfg.seed)
        order = sorted(range(len(train)), key=lambda i: len(train[i].ling))
        batches = [order[i : i + cfg.batch] for i in range(0, len(order), cfg.batch)]
        for epoch in range(cfg.epochs):
            rng.shuffle(batches)
            total = 0.0
            for idx in batches:
                chunk = [train[i] for i in idx if train[i].phones]
                if not chunk:
                    continue
                ling, sem, lens = _batch(chunk)
                logp = model(ling, sem).transpose(0, 1)  # (2T, B, P) for ctc_loss
                targets = torch.cat([torch.tensor(u.phones) for u in chunk])
                tlens = torch.tensor([len(u.phones) for u in chunk])
                loss = F.ctc_loss(logp, targets, lens, tlens, zero_infinity=True)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                total += float(loss.detach())
            if on_epoch:
                on_epoch(epoch + 1, total / max(len(batches), 1))
        per = {"train": phone_error_rate(model, train[:500])}
        per.update({s: phone_error_rate(model, u) for s, u in held.items() if u})
    finally:
        torch.set_num_threads(threads)
    return ProbeResult(asdict(cfg), len(train), len(vocab), per, time.perf_counter() - t0)
