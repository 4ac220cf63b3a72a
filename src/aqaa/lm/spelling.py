"""Spelling CTC: an auxiliary pretraining loss that teaches the LM to read its audio tokens.

Measured need (TRAINING.md, 2026-11-30): after ~3 epochs of ASR-only pretraining the `base` LM
transcribed even *training* questions with 79% WER — it memorised the transcripts instead of
reading the audio — while a 2-layer GRU reading the same linguistic tokens with CTC reached 2.8%
phone error on them (`aqaa eval token-probe`). The tokens carry the content; a causal decoder
just gets no direct signal about *where* in the audio each word is, only a next-token loss at the
end of the clip.

This loss gives it that signal. At every audio token of the question, the LM's own output head
(no new parameters, nothing to save or ship) scores the blank (the pad token's row) and the
single-character text tokens ``a``–``z``, space and apostrophe; a CTC loss over the clip's
positions asks those scores to spell the transcript. The hidden states at the audio positions
thus learn to carry the letters being spoken, in the same head the LM writes text with. Used in
`aqaa train pretrain --ctc-weight W` on the ASR task; inference is unchanged.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from aqaa.lm.vocab import PAD_ID, Vocab

#: The spelled alphabet; index ``i + 1`` in a CTC target is ``SPELL_CHARS[i]`` (0 is the blank).
SPELL_CHARS = "abcdefghijklmnopqrstuvwxyz '"
_TAG = re.compile(r"\([^)]*\)")


def spell_targets(text: str) -> list[int]:
    """CTC targets of a transcript: style tags dropped, lower case, other characters removed,
    runs of spaces collapsed. ``"(happy) Hi, Bob!" → [8, 9, 27, 2, 15, 2]``."""
    kept = "".join(c if c in SPELL_CHARS else " " for c in _TAG.sub(" ", text).lower())
    return [SPELL_CHARS.index(c) + 1 for c in " ".join(kept.split())]


def spell_columns(vocab: Vocab) -> list[int]:
    """Token ids of the CTC classes: the blank (pad) and each character of `SPELL_CHARS`."""
    cols = [PAD_ID]
    for c in SPELL_CHARS:
        ids = vocab.encode(c)
        if len(ids) != 1:
            raise ValueError(f"the text vocabulary spells {c!r} with {len(ids)} tokens, not one")
        cols.append(ids[0])
    return cols


def spelling_ctc(
    hidden: torch.Tensor,
    head_weight: torch.Tensor,
    columns: torch.Tensor,
    spans: list[tuple[int, int] | None],
    targets: list[list[int]],
) -> tuple[torch.Tensor, int]:
    """Summed CTC loss (nats) and the number of target characters over a batch.

    `hidden` (B, L, D) are the LM's final hidden states, `head_weight` its output head (V, D),
    `columns` the class token ids (`spell_columns`). Example ``b`` contributes when ``spans[b]``
    is ``(start, end)`` (positions of its question's audio tokens) and ``targets[b]`` is not
    empty; a clip too short to spell its transcript adds zero (``zero_infinity``).
    """
    w = head_weight[columns]  # (C, D)
    total = hidden.new_zeros((), dtype=torch.float32)
    n_chars = 0
    for b, (span, tgt) in enumerate(zip(spans, targets, strict=True)):
        if span is None or not tgt:
            continue
        a, e = span
        logp = F.linear(hidden[b, a:e].float(), w.float()).log_softmax(-1)  # (T, C)
        total = total + F.ctc_loss(
            logp[:, None],
            torch.tensor(tgt)[None],
            torch.tensor([e - a]),
            torch.tensor([len(tgt)]),
            reduction="sum",
            zero_infinity=True,
        )
        n_chars += len(tgt)
    return total, n_chars


def spell_greedy(hidden: torch.Tensor, head_weight: torch.Tensor, columns: torch.Tensor) -> str:
    """What the output head spells at these positions (`hidden` (T, D)): best class per
    position, repeats merged, blanks dropped. `aqaa train evaluate` reports its character error
    rate: whether the LM's audio positions carry the words, apart from whether its decoder
    finds them."""
    best = F.linear(hidden.float(), head_weight[columns].float()).argmax(-1).tolist()
    out = [c for i, c in enumerate(best) if c != 0 and (i == 0 or c != best[i - 1])]
    return "".join(SPELL_CHARS[c - 1] for c in out)
