"""Choosing the next token: temperature, top-k, top-p and a repetition penalty, per channel.

The text channel and the audio channel want different settings: text is best greedy (the answer
must be right), audio codes sound better sampled (greedy audio decoding loops on one code). So
`SamplingConfig` has one temperature per channel; top-k / top-p apply to both, and the repetition
penalty only to text tokens already written in this response (audio codes repeat naturally).
The audio default, 0.7, is the best of 0.4 / 0.7 / 1.0 on the default suite (text–speech
consistency WER 0.76 / 0.53 / 0.65 with the 2026-12-02 model: TRAINING.md, session 16).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class SamplingConfig:
    text_temperature: float = 0.0
    audio_temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    #: > 1 makes already-written text tokens less likely (CTRL-style: logits divided or multiplied).
    repetition_penalty: float = 1.1
    max_new_tokens: int = 1200
    seed: int = 0

    def __post_init__(self) -> None:
        if self.text_temperature < 0 or self.audio_temperature < 0:
            raise ValueError("temperatures must be >= 0 (0 = greedy)")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0 (0 = off)")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.repetition_penalty < 1:
            raise ValueError("repetition_penalty must be >= 1 (1 = off)")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")


def penalize(logits: torch.Tensor, seen: Iterable[int], penalty: float) -> torch.Tensor:
    """Make every token in `seen` less likely: positive logits / penalty, negative × penalty."""
    idx = torch.tensor(sorted(set(seen)), dtype=torch.long)
    if penalty == 1.0 or idx.numel() == 0:
        return logits
    out = logits.clone()
    v = out[idx]
    out[idx] = torch.where(v > 0, v / penalty, v * penalty)
    return out


def choose_rows(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float, gen: torch.Generator
) -> torch.Tensor:
    """One index per row of ``logits`` (N, V): temperature, then top-k, then top-p (nucleus);
    greedy when ``temperature`` is 0. Masked entries (-inf) must be outside every row's top-k."""
    if temperature <= 0:
        return logits.argmax(-1)
    k = min(top_k, logits.shape[-1]) if top_k > 0 else logits.shape[-1]
    vals, idx = (logits.float() / temperature).topk(max(k, 1), dim=-1)
    probs = F.softmax(vals, -1)
    if top_p < 1.0:
        probs = probs * (probs.cumsum(-1) - probs < top_p)  # the smallest prefix reaching top_p
    return idx.gather(-1, torch.multinomial(probs, 1, generator=gen)).squeeze(-1)


def choose(
    logits: torch.Tensor,
    temperature: float,
    top_k: int,
    top_p: float,
    gen: torch.Generator,
) -> int:
    """One token from 1-D `logits` (masked entries are -inf): greedy when `temperature` is 0."""
    finite = int(torch.isfinite(logits).sum())
    k = min(top_k, finite) if top_k > 0 else finite
    return int(choose_rows(logits[None], temperature, k, top_p, gen)[0])
