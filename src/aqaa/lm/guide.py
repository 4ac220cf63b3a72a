"""Guided attention: an auxiliary pretraining loss that points the decoder at the audio it reads.

Measured need (TRAINING.md, session 6): with the spelling CTC, the LM's hidden states at the
question's audio positions spell the words ("at is the samon sixstin and fortyn", spelling CER
27% on training clips), yet its transcript of the same clip is 90% wrong ("Tell me the words a
whisper."). The audio positions carry the content; the text decoder has not learnt *where* to look
for the next word, and a next-token loss alone teaches that slowly.

This loss (after Tachibana et al., 2018, "guided attention" for TTS) gives a few attention heads a
monotonic prior on the ASR task. Transcript token ``k`` is spoken at about the fraction ``f_k`` of the
clip (its character centre over the transcript's length; the corpus speaks at an even rate), so the
query that predicts it should put its attention near key ``a + f_k (e - a)`` of the audio span
``[a, e)``. With the Gaussian ``G(k, t) = exp(-((t - a)/(e - a) - f_k)^2 / (2 g^2))`` over the audio
keys (zero elsewhere), the loss of one query and head is ``1 - Σ_t A(k, t) G(k, t)``: zero when the
head looks at the spot being spoken, one when it looks elsewhere (the prompt, earlier text, far
audio). Only the guided heads are touched (by default the first head of each upper-half layer);
the others stay free. The model's output is unchanged: the attention still runs through SDPA, and
the guided heads' weights are recomputed beside it (one head per layer: cheap), so inference and
checkpoints are untouched.

Used by `aqaa train pretrain --guide-weight W` on ASR examples (`Example.guide_*`, set by
`aqaa.lm.data`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.models.llama.modeling_llama import repeat_kv

#: The attention implementation name registered with transformers while a guide is recording.
GUIDED_ATTENTION = "aqaa_guided"


def token_fractions(pieces: Sequence[str]) -> list[float]:
    """Where each text piece is spoken, as a fraction of the transcript: its character centre
    over the total length. Empty pieces (special tokens) sit at the end. ``["ab", "cd"] → [0.25,
    0.75]``."""
    total = sum(len(p) for p in pieces)
    out: list[float] = []
    seen = 0
    for p in pieces:
        out.append((seen + len(p) / 2) / total if p and total else 1.0)
        seen += len(p)
    return out


@dataclass
class _Recorder:
    layers: frozenset[int]
    heads: int
    #: layer index → attention weights of the guided heads, (B, heads, L, L)
    weights: dict[int, torch.Tensor] = field(default_factory=dict)


_ACTIVE: list[_Recorder] = []


def _guided_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: object,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """SDPA for the output; for a guided layer, also the softmax weights of the guided heads
    (causal; training batches carry no padding mask: padding sits at the end, after every loss
    position)."""
    out, _ = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    rec = _ACTIVE[-1] if _ACTIVE else None
    if rec is not None and module.layer_idx in rec.layers:
        k = repeat_kv(key, module.num_key_value_groups)[:, : rec.heads]
        q = query[:, : rec.heads]
        scores = (q @ k.transpose(-1, -2)).float() * float(kwargs.get("scaling") or module.scaling)
        n_q, n_k = scores.shape[-2:]
        future = torch.ones(n_q, n_k, dtype=torch.bool, device=scores.device).triu(n_k - n_q + 1)
        rec.weights[module.layer_idx] = scores.masked_fill(future, float("-inf")).softmax(-1)
    return out, None


AttentionInterface.register(GUIDED_ATTENTION, _guided_attention)


def default_layers(n_layers: int) -> list[int]:
    """The upper half of the stack: where a decoder gathers what it needs for the next token."""
    return list(range(n_layers // 2, n_layers))


@contextlib.contextmanager
def record_attention(lm: nn.Module, layers: Sequence[int], heads: int) -> Iterator[_Recorder]:
    """Within the block, `lm`'s forward records the attention weights of the first `heads`
    heads of `layers` (the output is the same as with SDPA)."""
    n_heads = lm.config.num_attention_heads
    if not 1 <= heads <= n_heads:
        raise ValueError(f"guide heads must be in 1..{n_heads}, got {heads}")
    bad = [i for i in layers if not 0 <= i < lm.config.num_hidden_layers]
    if bad:
        raise ValueError(f"guide layers {bad} are not in 0..{lm.config.num_hidden_layers - 1}")
    rec = _Recorder(frozenset(layers), heads)
    before = lm.config._attn_implementation
    lm.config._attn_implementation = GUIDED_ATTENTION
    _ACTIVE.append(rec)
    try:
        yield rec
    finally:
        _ACTIVE.remove(rec)
        lm.config._attn_implementation = before


def guide_loss(
    weights: Sequence[torch.Tensor],
    spans: Sequence[tuple[int, int] | None],
    queries: Sequence[Sequence[int]],
    fractions: Sequence[Sequence[float]],
    width: float,
) -> tuple[torch.Tensor, int]:
    """Summed guided-attention loss over the batch's guided queries (each averaged over the
    recorded layers and heads), and the number of queries.

    `weights` are (B, H, L, L) attention weights per recorded layer; example ``b`` contributes
    when ``spans[b]`` = ``(a, e)`` (its audio keys) and ``queries[b]`` / ``fractions[b]`` name the
    query positions and where in the audio their next token is spoken."""
    if not weights:
        raise ValueError("no attention weights were recorded")
    w = torch.stack(list(weights), 1)  # (B, layers, H, L, L)
    total = w.new_zeros(())
    n = 0
    for b, (span, qs, fs) in enumerate(zip(spans, queries, fractions, strict=True)):
        if span is None or not qs:
            continue
        a, e = span
        pos = (torch.arange(a, e, dtype=torch.float32) - a + 0.5) / (e - a)  # key centres in [0, 1]
        f = torch.tensor(fs, dtype=torch.float32)[:, None]
        gauss = torch.exp(-((pos[None] - f) ** 2) / (2 * width**2))  # (Q, T)
        att = w[b][:, :, list(qs), a:e]  # (layers, H, Q, T)
        on_target = (att * gauss).sum(-1).mean((0, 1))  # (Q,)
        total = total + (1 - on_target).sum()
        n += len(qs)
    return total, n
