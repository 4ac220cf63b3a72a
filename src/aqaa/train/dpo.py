"""Stage 7 (design §2): DPO from SFT-1 with audio tokens masked out of the log-ratios.

The paper found that DPO over all tokens broke the alignment between text and audio, so the
sequence log-probabilities of policy and reference sum over the response's *text channel* only
(text ids, `<text_end>`, `<|EOT|>`; `dpo_mask`). Audio tokens and clip markers still sit in the
context, so the text is scored as it is written during speech.

    loss = −log σ(β · [(log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))])

Pairs come from corrupted answers (`aqaa.lm.data.DPOSource`: another item's answer, or the
right answer with wrong style tags). The reference is SFT-1, frozen.

Masking audio out of the log-ratios keeps DPO from pulling the audio tokens directly, but not
from dragging them along as the shared weights move: continued for 200 more steps, the shipped
model kept its planned style tags and lost the style of its speech (TRAINING.md, session 16).
`audio_sft_weight` adds the mean NLL of the *chosen* answers' audio tokens to the loss, an anchor
that keeps the audio channel on its SFT targets while the text channel is optimised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from aqaa.data.shards import shard_tokenizer
from aqaa.lm.data import DPOSource, Pair, load_items
from aqaa.lm.format import KIND_AUDIO, KIND_TEXT, FormatConfig
from aqaa.lm.model import check_audio_tokenizer, load_checkpoint
from aqaa.lm.notes import model_takes_notes
from aqaa.train.loop import (
    LoopConfig,
    TrainResult,
    config_dict,
    latest_checkpoint,
    setup_dist,
    train,
)
from aqaa.train.objectives import TargetLogprobs, pad_batch
from aqaa.train.stage import check_fresh, final_checkpoint, stage_dir


def dpo_mask(target_kinds: torch.Tensor) -> torch.Tensor:
    """Which target positions DPO scores: the response's text channel, never audio."""
    return target_kinds == KIND_TEXT


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Per-pair DPO loss from sequence log-probabilities."""
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -F.logsigmoid(beta * margin)


def sequence_logps(
    logits: torch.Tensor, ids: torch.Tensor, kinds: torch.Tensor, mask_audio: bool = True
) -> torch.Tensor:
    """Sum of log p(target) per row over the DPO positions, from full logits.

    `logits` (B, L-1, V) predict `ids[:, 1:]`; `kinds` (B, L) are the examples' token kinds.
    With `mask_audio=False` every response token counts (the paper's rejected variant).
    """
    tk = kinds[:, 1:]
    sel = dpo_mask(tk) if mask_audio else tk > 0
    lp = torch.log_softmax(logits.float(), -1).gather(-1, ids[:, 1:, None])[..., 0]
    return (lp * sel).sum(-1)


def dpo_loss_from_logits(
    policy_logits: torch.Tensor,
    ref_logits: torch.Tensor,
    ids: torch.Tensor,
    kinds: torch.Tensor,
    beta: float,
    mask_audio: bool = True,
) -> torch.Tensor:
    """Mean DPO loss of `n` pairs stacked as rows `[chosen_0 … chosen_n-1, rejected_0 …]`."""
    n = ids.shape[0] // 2
    pol = sequence_logps(policy_logits, ids, kinds, mask_audio)
    ref = sequence_logps(ref_logits, ids, kinds, mask_audio)
    return dpo_loss(pol[:n], pol[n:], ref[:n], ref[n:], beta).mean()


class DPOTask:
    """The DPO objective for the training loop (items are `Pair`s, each weighing 1)."""

    def __init__(
        self,
        source: DPOSource,
        reference: nn.Module,
        beta: float,
        seed: int,
        sft_weight: float = 0.0,
        eval_source: DPOSource | None = None,
        eval_size: int = 0,
        device: torch.device | str = "cpu",
        audio_sft_weight: float = 0.0,
    ) -> None:
        self.source = source
        self.audio_sft_weight = audio_sft_weight
        self.ref = TargetLogprobs(reference).eval()
        for p in self.ref.parameters():
            p.requires_grad_(False)
        self.beta = beta
        self.seed = seed
        self.sft_weight = sft_weight
        self.eval_source = eval_source
        self.eval_size = eval_size
        self.device = device

    def batch(self, step: int, size: int) -> list[Pair]:
        return [self.source.pair(self.seed, step * size + i) for i in range(size)]

    def weight(self, item: Pair) -> float:
        return 1.0

    def n_tokens(self, item: Pair) -> int:
        return len(item.chosen) + len(item.rejected)

    def loss(
        self, module: nn.Module, items: Sequence[Pair], denom: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        n = len(items)
        ids, kinds = pad_batch([p.chosen for p in items] + [p.rejected for p in items], self.device)
        sel = dpo_mask(kinds[:, 1:])
        # the policy also scores the chosen answers' audio when the audio anchor is on
        audio = torch.zeros_like(sel)
        if self.audio_sft_weight:
            audio[:n] = kinds[:n, 1:] == KIND_AUDIO
        scored = sel | audio
        logp = module(ids, scored)  # one entry per scored position, row-major
        rows = scored.nonzero()[:, 0]
        is_text = sel[scored]
        text_rows, text_lp = rows[is_text], logp[is_text]
        pol = torch.zeros(2 * n, dtype=logp.dtype, device=logp.device).index_add(
            0, text_rows, text_lp
        )
        with torch.no_grad():
            rlp = self.ref(ids, sel)
            ref = torch.zeros(2 * n, dtype=rlp.dtype, device=rlp.device).index_add(
                0, text_rows, rlp
            )
        losses = dpo_loss(pol[:n], pol[n:], ref[:n], ref[n:], self.beta)
        loss = losses.sum() / denom
        if self.sft_weight:  # + mean NLL per text token of each chosen answer
            per_token = pol[:n] / sel[:n].sum(-1).clamp(min=1)
            loss = loss - self.sft_weight * per_token.sum() / denom
        audio_nll = 0.0
        if self.audio_sft_weight:  # + mean NLL per audio token of each chosen answer
            a_lp = torch.zeros(n, dtype=logp.dtype, device=logp.device).index_add(
                0, rows[~is_text], logp[~is_text]
            )
            per_audio = a_lp / audio[:n].sum(-1).clamp(min=1)
            loss = loss - self.audio_sft_weight * per_audio.sum() / denom
            audio_nll = float(-per_audio.detach().sum())
        with torch.no_grad():
            margin = (pol[:n] - ref[:n]) - (pol[n:] - ref[n:])
        stats = {
            "dpo_sum": float(losses.detach().sum()),
            "pairs": float(n),
            "acc_sum": float((margin > 0).sum()),
            "margin_sum": float(margin.sum()),
            "audio_nll_sum": audio_nll,
        }
        return loss, stats

    def eval_items(self) -> list[Pair]:
        if self.eval_source is None or self.eval_size <= 0:
            return []
        return [self.eval_source.pair(self.seed + 1, i) for i in range(self.eval_size)]

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        n = sums.get("pairs", 0.0)
        if not n:
            return {}
        return {
            "dpo_loss": sums["dpo_sum"] / n,
            "reward_acc": sums["acc_sum"] / n,
            "margin": sums["margin_sum"] / n,
            **({"audio_nll": sums["audio_nll_sum"] / n} if self.audio_sft_weight else {}),
        }


def _dpo_loop() -> LoopConfig:
    return LoopConfig(lr=5e-6, warmup_steps=20, batch_size=8, micro_batch=4, weight_decay=0.0)


@dataclass
class DPOConfig:
    data: str
    out: str
    #: Policy initialisation (default: `sft1/final`).
    init: str | None = None
    #: Reference model (default: the same SFT-1 checkpoint).
    reference: str | None = None
    beta: float = 0.1
    style_fraction: float = 0.5
    sft_weight: float = 0.0
    #: Weight of the chosen answers' audio NLL (the audio anchor; 0 = the paper's plain DPO).
    audio_sft_weight: float = 0.0
    max_len: int = 1024
    eval_pairs: int = 32
    format: FormatConfig = field(default_factory=FormatConfig)
    loop: LoopConfig = field(default_factory=_dpo_loop)

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ValueError("beta must be positive")
        if self.sft_weight < 0 or self.audio_sft_weight < 0:
            raise ValueError("sft weights must be >= 0")


def run_dpo(
    cfg: DPOConfig,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> TrainResult:
    d = setup_dist()
    sdir = stage_dir(cfg.out, "dpo")
    check_fresh(sdir, resume)
    sft1 = None if (cfg.init and cfg.reference) else final_checkpoint(cfg.out, "sft1")
    cfg.init = cfg.init or str(sft1)
    cfg.reference = cfg.reference or str(sft1)
    ck = latest_checkpoint(sdir) if resume else cfg.init
    assert ck is not None
    model, vocab = load_checkpoint(ck)
    reference, ref_vocab = load_checkpoint(cfg.reference, device=str(d.device))
    if ref_vocab != vocab:
        raise ValueError("the reference model has a different tokenizer than the policy")
    data_tokenizer = shard_tokenizer(cfg.data)
    for m in (model, reference):
        check_audio_tokenizer(m, data_tokenizer, cfg.data)
    items = load_items(cfg.data, "train")
    notes = model_takes_notes(model)  # a note-taking policy sees its notes (aqaa.lm.notes)
    src = DPOSource(items, vocab, cfg.format, cfg.max_len, cfg.style_fraction, notes)
    try:
        valid = load_items(cfg.data, "valid")
        eval_src = DPOSource(valid, vocab, cfg.format, cfg.max_len, cfg.style_fraction, notes)
    except (FileNotFoundError, ValueError):
        eval_src = None
    task = DPOTask(
        src, reference, cfg.beta, cfg.loop.seed, cfg.sft_weight, eval_src, cfg.eval_pairs, d.device,
        audio_sft_weight=cfg.audio_sft_weight,
    )  # fmt: skip
    return train(
        stage_dir=sdir,
        model=model,
        vocab=vocab,
        task=task,
        cfg=cfg.loop,
        config=config_dict(cfg),
        resume=resume,
        dist_ctx=d,
        progress=progress,
        stop_after=stop_after,
    )
