"""What the training loop optimises: the `Task` protocol and the language-model objective.

A task turns a step number into a global batch (deterministically), says how much each item
weighs in the step's normaliser (loss tokens for the LM loss, 1 per pair for DPO), and computes
the loss of a micro-batch as a *sum* divided by the global normaliser, so that any split of the
batch over processes and micro-batches adds up to the same gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from aqaa.lm.data import ExampleSource
from aqaa.lm.format import KIND_AUDIO, KIND_CONTEXT, KIND_TEXT, Example
from aqaa.lm.spelling import spell_columns, spelling_ctc
from aqaa.lm.vocab import PAD_ID


class Task(Protocol):
    """A training objective over a deterministic stream of items."""

    def batch(self, step: int, size: int) -> list[Any]: ...
    def weight(self, item: Any) -> float: ...
    def loss(
        self, module: nn.Module, items: Sequence[Any], denom: float
    ) -> tuple[torch.Tensor, dict[str, float]]: ...
    def eval_items(self) -> list[Any]: ...
    def summarize(self, sums: dict[str, float]) -> dict[str, float]: ...
    def n_tokens(self, item: Any) -> int: ...


class TargetLogprobs(nn.Module):
    """Wraps a causal LM: log-probabilities of the next tokens at selected positions only.

    The LM head runs only where `select` is true (the loss positions), which saves most of the
    head's FLOPs. This module is what DDP wraps, so the forward goes through DDP.
    """

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(
        self,
        ids: torch.Tensor,
        select: torch.Tensor,
        spelling: tuple[torch.Tensor, list, list] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, int]:
        """`ids` (B, L); `select` (B, L-1) bool over targets `ids[:, 1:]` → (N,) fp32 log-probs.

        With `spelling` = (columns, spans, targets) (`aqaa.lm.spelling`), also the summed
        spelling-CTC loss at the spans' hidden states and its number of characters."""
        hidden = self.lm.model(input_ids=ids[:, :-1]).last_hidden_state
        logits = self.lm.lm_head(hidden[select]).float()
        logp = -F.cross_entropy(logits, ids[:, 1:][select], reduction="none")
        if spelling is None:
            return logp
        columns, spans, targets = spelling
        ctc, n = spelling_ctc(hidden, self.lm.lm_head.weight, columns, spans, targets)
        return logp, ctc, n


def pad_batch(
    examples: Sequence[Example], device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and kinds (padding has kind 0, so it never counts in a loss)."""
    n = max(len(e) for e in examples)
    ids = torch.full((len(examples), n), PAD_ID, dtype=torch.long)
    kinds = torch.zeros((len(examples), n), dtype=torch.long)
    for i, e in enumerate(examples):
        ids[i, : len(e)] = torch.tensor(e.ids)
        kinds[i, : len(e)] = torch.tensor(e.kinds)
    return ids.to(device), kinds.to(device)


class LMTask:
    """Next-token cross-entropy on the response (kind > 0) tokens, text/audio weighted."""

    def __init__(
        self,
        source: ExampleSource,
        seed: int,
        text_weight: float = 1.0,
        audio_weight: float = 1.0,
        eval_source: ExampleSource | None = None,
        eval_size: int = 0,
        device: torch.device | str = "cpu",
        ctc_weight: float = 0.0,
    ) -> None:
        self.source = source
        #: weight of the spelling CTC (`aqaa.lm.spelling`) on examples that carry a `ctc_span`
        self.ctc_weight = ctc_weight
        self._columns = torch.tensor(spell_columns(source.vocab)) if ctc_weight else None
        self.seed = seed
        self.text_weight = text_weight
        self.audio_weight = audio_weight
        self.eval_source = eval_source
        self.eval_size = eval_size
        self.device = device

    def batch(self, step: int, size: int) -> list[Example]:
        return [self.source.example(self.seed, step * size + i) for i in range(size)]

    def weight(self, item: Example) -> float:
        nt = sum(k == KIND_TEXT for k in item.kinds)
        na = sum(k == KIND_AUDIO for k in item.kinds)
        return self.text_weight * nt + self.audio_weight * na

    def n_tokens(self, item: Example) -> int:
        return len(item)

    def loss(
        self, module: nn.Module, items: Sequence[Example], denom: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        ids, kinds = pad_batch(items, self.device)
        tk = kinds[:, 1:]
        select = tk != KIND_CONTEXT
        spans = [x.ctc_span for x in items]
        ctc = n_chars = None
        if self._columns is not None and any(spans):
            targets = [x.ctc_targets for x in items]
            logp, ctc, n_chars = module(ids, select, (self._columns, spans, targets))
        else:
            logp = module(ids, select)
        k = tk[select]
        w = torch.where(k == KIND_TEXT, self.text_weight, self.audio_weight).to(logp.dtype)
        loss = -(logp * w).sum() / denom
        nll = -logp.detach()
        is_t, is_a = k == KIND_TEXT, k == KIND_AUDIO
        stats = {
            "text_nll": float(nll[is_t].sum()),
            "text_n": float(is_t.sum()),
            "audio_nll": float(nll[is_a].sum()),
            "audio_n": float(is_a.sum()),
        }
        if ctc is not None:
            loss = loss + self.ctc_weight * ctc / denom
            stats["ctc_nll"], stats["ctc_n"] = float(ctc.detach()), float(n_chars)
        return loss, stats

    def eval_items(self) -> list[Example]:
        if self.eval_source is None or self.eval_size <= 0:
            return []
        return [self.eval_source.example(self.seed + 1, i) for i in range(self.eval_size)]

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        n = sums.get("text_n", 0.0) + sums.get("audio_n", 0.0)
        if n:
            out["loss"] = (sums["text_nll"] + sums["audio_nll"]) / n
        for ch in ("text", "audio", "ctc"):
            if sums.get(f"{ch}_n"):
                out[f"{ch}_loss"] = sums[f"{ch}_nll"] / sums[f"{ch}_n"]
        return out
