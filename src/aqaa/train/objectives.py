"""What the training loop optimises: the `Task` protocol and the language-model objective.

A task turns a step number into a global batch (deterministically), says how much each item
weighs in the step's normaliser (loss tokens for the LM loss, 1 per pair for DPO), and computes
the loss of a micro-batch as a *sum* divided by the global normaliser, so that any split of the
batch over processes and micro-batches adds up to the same gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from aqaa.lm.data import ExampleSource
from aqaa.lm.format import KIND_AUDIO, KIND_CONTEXT, KIND_TEXT, Example
from aqaa.lm.guide import default_layers, guide_loss, record_attention
from aqaa.lm.input_noise import InputNoise
from aqaa.lm.spelling import spell_columns, spelling_ctc
from aqaa.lm.twin import twin_alignment, twin_positions
from aqaa.lm.vocab import PAD_ID
from aqaa.tokenizer.ids import LINGUISTIC_CODES
from aqaa.train.distill import SpeechTeacher, kl_divergence, soft_cross_entropy


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


@dataclass
class Auxiliary:
    """The auxiliary losses of a micro-batch (`LMTask`): spelling CTC (`aqaa.lm.spelling`) at
    the question's audio positions, guided attention (`aqaa.lm.guide`) of the transcript's
    queries, text-twin alignment (`aqaa.lm.twin`) of the hidden states. Each is on when its part
    is set; the forward fills the sums and counts."""

    #: spelling CTC: class token ids, audio spans, character targets per example
    spell_columns: torch.Tensor | None = None
    spans: Sequence[tuple[int, int] | None] = ()
    spell_targets: Sequence[list[int]] = ()
    #: guided attention (on when `guide_queries` is set): layers (empty: the upper half of the
    #: stack) and heads to guide, keys and their centres, queries and their fractions, the weight
    #: of each example's guide, width
    guide_layers: Sequence[int] = ()
    guide_heads: int = 1
    guide_keys: Sequence[list[int]] = ()
    guide_key_fractions: Sequence[list[float]] = ()
    guide_queries: Sequence[list[int]] = ()
    guide_fractions: Sequence[list[float]] = ()
    guide_weights: Sequence[float] = ()
    guide_width: float = 0.15
    ctc: torch.Tensor | None = None
    ctc_n: int = 0
    #: the weighted guide loss, and per example its unweighted sum and query count (for the logs)
    guide: torch.Tensor | None = None
    guide_sums: Sequence[float] = ()
    guide_counts: Sequence[int] = ()
    #: text twins: hidden-state indices (0 = embeddings), the twins' hidden states there (one
    #: row per example with a twin, detached), each example's `twin_positions` or None
    twin_layers: Sequence[int] = ()
    twin_teacher: Sequence[torch.Tensor] = ()
    twin_spans: Sequence[tuple[int, int, int] | None] = ()
    twin: torch.Tensor | None = None
    twin_n: int = 0
    #: speech distillation (`aqaa.train.distill`): which of the loss positions are audio, the
    #: teacher's log-probs there (M, V); the forward fills the student's soft cross-entropy
    #: per row and the summed KL (for the logs)
    distill_rows: torch.Tensor | None = None
    teacher_logp: torch.Tensor | None = None
    soft_ce: torch.Tensor | None = None
    kl: float = 0.0


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
        aux: Auxiliary | None = None,
        targets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`ids` (B, L); `select` (B, L-1) bool over targets `ids[:, 1:]` → (N,) fp32 log-probs.

        `targets` (B, L), when the inputs are not the truth (`aqaa.lm.input_noise`): the
        log-probs are of `targets[:, 1:]`. With `aux`, also computes its auxiliary losses into it
        (sums and counts)."""
        recording: contextlib.AbstractContextManager = contextlib.nullcontext()
        if aux is not None and aux.guide_queries:
            layers = aux.guide_layers or default_layers(self.lm.config.num_hidden_layers)
            recording = record_attention(self.lm, layers, aux.guide_heads)
        twins = aux is not None and bool(aux.twin_teacher)
        with recording as rec:
            out = self.lm.model(input_ids=ids[:, :-1], output_hidden_states=twins)
        hidden = out.last_hidden_state
        if twins:
            student = [out.hidden_states[i] for i in aux.twin_layers]
            aux.twin, aux.twin_n = twin_alignment(student, aux.twin_teacher, aux.twin_spans)
        logits = self.lm.lm_head(hidden[select]).float()
        truth = ids if targets is None else targets
        logp = -F.cross_entropy(logits, truth[:, 1:][select], reduction="none")
        if aux is not None and aux.teacher_logp is not None:
            student = logits[aux.distill_rows]
            aux.soft_ce = soft_cross_entropy(aux.teacher_logp, student)
            aux.kl = float(kl_divergence(aux.teacher_logp, student.detach()).sum())
        if aux is not None and aux.spell_columns is not None:
            aux.ctc, aux.ctc_n = spelling_ctc(
                hidden, self.lm.lm_head.weight, aux.spell_columns, aux.spans, aux.spell_targets
            )
        if rec is not None:
            per, counts = guide_loss(
                [rec.weights[i] for i in sorted(rec.weights)],
                aux.guide_keys,
                aux.guide_key_fractions,
                aux.guide_queries,
                aux.guide_fractions,
                aux.guide_width,
            )
            aux.guide = (per * torch.tensor(list(aux.guide_weights), dtype=per.dtype)).sum()
            aux.guide_sums, aux.guide_counts = per.detach().tolist(), counts
        return logp


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
        guide_weight: float = 0.0,
        guide_layers: Sequence[int] = (),
        guide_heads: int = 1,
        guide_width: float = 0.15,
        speech_guide_weight: float = 0.0,
        input_noise: InputNoise | None = None,
        twin_weight: float = 0.0,
        teacher: SpeechTeacher | None = None,
    ) -> None:
        self.source = source
        #: soft targets for the audio positions (`aqaa.train.distill`), in train and eval
        self.teacher = teacher
        #: weight of the text-twin alignment (`aqaa.lm.twin`) on examples that carry a twin
        self.twin_weight = twin_weight
        #: swaps of audio codes in the inputs while training (`aqaa.lm.input_noise`), never in
        #: eval; the targets stay true
        self.input_noise = input_noise
        #: weight of guided attention (`aqaa.lm.guide`) on examples with `guide_queries`: ASR
        #: (`guide_weight`) and speaking (`speech_guide_weight`, `Example.guide_speaks`);
        #: no `guide_layers` means the upper half of the stack
        self.guide_weight = guide_weight
        self.speech_guide_weight = speech_guide_weight
        self.guide_layers = guide_layers
        self.guide_heads = guide_heads
        self.guide_width = guide_width
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
        inputs = ids
        if self.input_noise is not None and module.training:
            inputs = self.input_noise.batch(ids, kinds, [len(x) for x in items])
        tk = kinds[:, 1:]
        select = tk != KIND_CONTEXT
        spans = [x.ctc_span for x in items]
        # each example's guide weight: ASR (its transcript reads the audio) or speaking (its audio
        # reads the text); an example without a guide, or with its kind off, has no queries
        on = [(self.speech_guide_weight if x.guide_speaks else self.guide_weight)
              * bool(x.guide_queries) for x in items]  # fmt: skip
        twins = [x.twin for x in items] if self.twin_weight else []
        has_twin = any(t is not None for t in twins)
        is_audio = tk[select] == KIND_AUDIO
        distill = self.teacher is not None and bool(is_audio.any())
        aux = None
        if (self._columns is not None and any(spans)) or any(on) or has_twin or distill:
            aux = Auxiliary(
                spell_columns=self._columns if self._columns is not None and any(spans) else None,
                spans=spans,
            )
            aux.spell_targets = [x.ctc_targets for x in items]
            if any(on):
                aux.guide_layers = self.guide_layers
                aux.guide_heads, aux.guide_width = self.guide_heads, self.guide_width
                aux.guide_weights = on
                aux.guide_keys = [x.guide_keys for x in items]
                aux.guide_key_fractions = [x.guide_key_fractions for x in items]
                aux.guide_queries = [
                    x.guide_queries if w else [] for w, x in zip(on, items, strict=True)
                ]
                aux.guide_fractions = [x.guide_fractions for x in items]
            if has_twin:
                self._twin_teacher(module, items, aux)
            if distill:
                assert self.teacher is not None
                aux.distill_rows = is_audio
                aux.teacher_logp = self.teacher.log_probs(inputs, select & (tk == KIND_AUDIO))
        logp = module(inputs, select, aux) if inputs is ids else module(inputs, select, aux, ids)
        k = tk[select]
        w = torch.where(k == KIND_TEXT, self.text_weight, self.audio_weight).to(logp.dtype)
        target_nll = -logp
        if aux is not None and aux.soft_ce is not None:
            # audio positions: (1 − α) of the true code, α of the teacher's distribution
            a = self.teacher.alpha if self.teacher is not None else 0.0
            target_nll = target_nll.clone()
            target_nll[is_audio] = (1.0 - a) * target_nll[is_audio] + a * aux.soft_ce
        loss = (target_nll * w).sum() / denom
        nll = -logp.detach()
        is_t, is_a = k == KIND_TEXT, k == KIND_AUDIO
        # the audio channel by codebook: linguistic codes (what is said) and semantic codes
        code = ids[:, 1:][select] - self.source.vocab.audio_id(0)
        is_l = is_a & (code >= 0) & (code < LINGUISTIC_CODES)
        is_s = is_a & (code >= LINGUISTIC_CODES)
        stats = {
            "text_nll": float(nll[is_t].sum()),
            "text_n": float(is_t.sum()),
            "audio_nll": float(nll[is_a].sum()),
            "audio_n": float(is_a.sum()),
            "ling_nll": float(nll[is_l].sum()),
            "ling_n": float(is_l.sum()),
            "sem_nll": float(nll[is_s].sum()),
            "sem_n": float(is_s.sum()),
        }
        # every configured channel has its keys in every micro-batch: processes sum the same keys
        for ch, w in (("ctc", self.ctc_weight), ("guide", self.guide_weight),
                      ("speak", self.speech_guide_weight), ("twin", self.twin_weight),
                      ("kl", self.teacher is not None)):  # fmt: skip
            if w:
                stats[f"{ch}_nll"] = stats[f"{ch}_n"] = 0.0
        if aux is not None and aux.soft_ce is not None:
            stats["kl_nll"], stats["kl_n"] = aux.kl, float(is_audio.sum())
        if aux is not None and aux.ctc is not None:
            loss = loss + self.ctc_weight * aux.ctc / denom
            stats["ctc_nll"], stats["ctc_n"] = float(aux.ctc.detach()), float(aux.ctc_n)
        if aux is not None and aux.twin is not None:
            loss = loss + self.twin_weight * aux.twin / denom
            stats["twin_nll"], stats["twin_n"] = float(aux.twin.detach()), float(aux.twin_n)
        if aux is not None and aux.guide is not None:
            loss = loss + aux.guide / denom
            for x, g, n in zip(items, aux.guide_sums, aux.guide_counts, strict=True):
                ch = "speak" if x.guide_speaks else "guide"  # logged as speak_loss, guide_loss
                if n:
                    stats[f"{ch}_nll"] += g
                    stats[f"{ch}_n"] += n
        return loss, stats

    def _twin_teacher(self, module: nn.Module, items: Sequence[Example], aux: Auxiliary) -> None:
        """The twins' hidden states in the upper half of the stack, without gradient."""
        lm = getattr(module, "module", module).lm  # under DDP, the wrapped TargetLogprobs
        n = lm.config.num_hidden_layers
        aux.twin_layers = list(range(n // 2 + 1, n + 1))
        twins = [x.twin for x in items if x.twin is not None]
        aux.twin_spans = [None if x.twin is None else twin_positions(x, x.twin) for x in items]
        tids, _ = pad_batch(twins, self.device)
        with torch.no_grad():
            out = lm.model(input_ids=tids[:, :-1], output_hidden_states=True)
        aux.twin_teacher = [out.hidden_states[i].detach() for i in aux.twin_layers]

    def eval_items(self) -> list[Example]:
        if self.eval_source is None or self.eval_size <= 0:
            return []
        return [self.eval_source.example(self.seed + 1, i) for i in range(self.eval_size)]

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        n = sums.get("text_n", 0.0) + sums.get("audio_n", 0.0)
        if n:
            out["loss"] = (sums["text_nll"] + sums["audio_nll"]) / n
        for ch in ("text", "audio", "ling", "sem", "ctc", "guide", "speak", "twin", "kl"):
            if sums.get(f"{ch}_n"):
                out[f"{ch}_loss"] = sums[f"{ch}_nll"] / sums[f"{ch}_n"]
        return out
