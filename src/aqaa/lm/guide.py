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

The same prior, mirrored, teaches the LM to *speak* (`--speech-guide-weight`): in a TTS or
interleaved example the query that predicts the clip's audio token ``j`` of ``n`` should look at the
text being said, the sentence's text token whose character centre is nearest ``(j + 0.5) / n``.
Measured need (TRAINING.md, session 10): after 200 pretraining steps of assistant-voice TTS the LM
copies the text but its speech does not follow it (read-aloud WER 126%, true codes 43%); finding
*where in the text* the voice is, is the alignment problem guided attention was made for.

An example names its guide as keys (positions) with their centres in ``[0, 1]``, and queries with
the fraction each query's next token sits at; `Example.guide_speaks` tells the two apart so that
each has its own weight. Used by `aqaa train pretrain --guide-weight W --speech-guide-weight V`
(`Example.guide_*`, set by `aqaa.lm.data`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.models.llama.modeling_llama import repeat_kv

from aqaa.lm.format import Example
from aqaa.lm.vocab import Vocab

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


def uniform_fractions(n: int) -> list[float]:
    """Centres of `n` evenly spaced keys in ``[0, 1]`` (audio tokens: the corpus speaks at an even
    rate). ``uniform_fractions(4) → [0.125, 0.375, 0.625, 0.875]``."""
    return [(t + 0.5) / n for t in range(n)]


def _on_target(
    att: torch.Tensor, keys: Sequence[int], centres: Sequence[float], fractions: Sequence[float],
    width: float,
) -> torch.Tensor:  # fmt: skip
    """Attention mass on the spot being said: ``Σ_t A(q, t) G(q, t)`` over the `keys` (positions,
    at `centres` in [0, 1]), for attention rows `att` (..., Q, L) of the queries whose next tokens
    sit at `fractions`."""
    pos = torch.tensor(list(centres), dtype=torch.float32)
    f = torch.tensor(list(fractions), dtype=torch.float32)[:, None]
    gauss = torch.exp(-((pos[None] - f) ** 2) / (2 * width**2))  # (Q, K)
    return (att[..., list(keys)] * gauss).sum(-1)


def guide_loss(
    weights: Sequence[torch.Tensor],
    keys: Sequence[Sequence[int]],
    centres: Sequence[Sequence[float]],
    queries: Sequence[Sequence[int]],
    fractions: Sequence[Sequence[float]],
    width: float,
) -> tuple[torch.Tensor, list[int]]:
    """Guided-attention loss per example (summed over its queries, each averaged over the recorded
    layers and heads), shape (B,), and the number of queries per example.

    `weights` are (B, H, L, L) attention weights per recorded layer; example ``b`` contributes
    when it has ``keys[b]`` (positions, at ``centres[b]``) and ``queries[b]`` / ``fractions[b]``
    (query positions, and where their next tokens sit)."""
    if not weights:
        raise ValueError("no attention weights were recorded")
    w = torch.stack(list(weights), 1)  # (B, layers, H, L, L)
    per = []
    counts = []
    for b, (ks, cs, qs, fs) in enumerate(zip(keys, centres, queries, fractions, strict=True)):
        if not ks or not qs:
            per.append(w.new_zeros(()))
            counts.append(0)
            continue
        on_target = _on_target(w[b][:, :, list(qs)], ks, cs, fs, width).mean((0, 1))  # (Q,)
        per.append((1 - on_target).sum())
        counts.append(len(qs))
    return torch.stack(per), counts


@torch.no_grad()
def head_alignment(lm: nn.Module, examples: Iterable[Example], width: float = 0.15) -> torch.Tensor:
    """How much each head of each layer already looks where its guide points: the mean on-target
    attention mass (1 − the guide loss) over the guided queries of `examples` (ASR: transcript →
    audio; TTS or interleaved: audio → text), teacher-forced, as a (layers, heads) tensor. A head
    that ignores the other channel scores ~0; one that follows it, near 1."""
    cfg = lm.config
    n_layers, n_heads = cfg.num_hidden_layers, cfg.num_attention_heads
    total, n = torch.zeros(n_layers, n_heads), 0
    for ex in examples:
        if not ex.guide_keys or not ex.guide_queries:
            continue
        with record_attention(lm, range(n_layers), n_heads) as rec:
            lm.model(input_ids=torch.tensor([ex.ids]))
        w = torch.stack([rec.weights[i][0] for i in range(n_layers)])  # (layers, H, L, L)
        att = w[:, :, ex.guide_queries]
        total += _on_target(att, ex.guide_keys, ex.guide_key_fractions, ex.guide_fractions,
                            width).sum(-1)  # fmt: skip
        n += len(ex.guide_queries)
    if not n:
        raise ValueError("no example with a guide to align")
    return total / n


@torch.no_grad()
def plot_alignment(
    lm: nn.Module, vocab: Vocab, ex: Example, layer: int, head: int, path: str | Path
) -> None:
    """Save the attention of one head from the transcript's queries (rows, labelled with the
    token each predicts) to the audio keys (columns), with the spoken spots the guide aims at."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if ex.ctc_span is None or not ex.guide_queries:
        raise ValueError("the example has no transcript to align")
    with record_attention(lm, [layer], head + 1) as rec:
        lm.model(input_ids=torch.tensor([ex.ids]))
    a, e = ex.ctc_span
    att = rec.weights[layer][0, head][ex.guide_queries, a:e].numpy()
    labels = [
        vocab.decode([ex.ids[q + 1]]) or vocab.token_str(ex.ids[q + 1]) for q in ex.guide_queries
    ]
    fig, ax = plt.subplots(figsize=(max(8, (e - a) / 25), max(3, len(labels) / 3)))
    ax.imshow(att, aspect="auto", origin="upper", cmap="viridis", interpolation="nearest")
    ax.plot([f * (e - a) - 0.5 for f in ex.guide_fractions], range(len(labels)), "w+", ms=6)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("audio token of the question")
    ax.set_title(f"layer {layer}, head {head}: transcript → audio attention (+: guide target)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
