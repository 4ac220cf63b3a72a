"""Text twins: hearing a question should leave the LM in the state that reading it does.

Measured need (TRAINING.md, session 19): on held-out spoken questions of the training templates
the LM transcribed two words in three (ASR WER 34%) and answered 38–44% of them when they were
given as *text*, yet answered 0 of 34 from the audio; 600 more SFT steps over the same spoken
questions did not change that. The text path generalises (it trains on unlimited generated
questions); the audio path memorises the few thousand spoken items it sees. Cross-entropy on the
gold answer does not tell the audio path to reuse what the text path computes.

This auxiliary loss does. An SFT example built from a spoken question gets a *twin*: the same
dialogue and the same response with every human turn typed as text (`text_twin`). The twin runs
through the same LM without gradient (the teacher); at every position the two share — from the
question's closing `<|EOT|>` through the response — the student's hidden states in the upper half
of the stack are pulled toward the teacher's by cosine distance (`twin_alignment`). The answer is
then computed from what the question *means*, whichever way it came in. Items whose answer
depends on the voice itself (`voice_understanding`) get no twin: text cannot carry the pitch.
Used in `aqaa train sft --twin-weight W`; inference is unchanged. In the spirit of DiVA-style
cross-modal distillation (Held et al., 2024), but on hidden states and with one shared model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from aqaa.lm.format import ChatTurn, Example, FormatConfig, Mode, build_example
from aqaa.lm.vocab import Vocab

#: Categories whose answers depend on how the question sounds, not what it says.
NO_TWIN_CATEGORIES: frozenset[str] = frozenset({"voice_understanding"})


def common_suffix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common suffix of two id sequences."""
    n = 0
    while n < min(len(a), len(b)) and a[len(a) - 1 - n] == b[len(b) - 1 - n]:
        n += 1
    return n


def text_twin(
    vocab: Vocab,
    turns: Sequence[ChatTurn],
    human_texts: Sequence[str],
    mode: Mode,
    fmt: FormatConfig,
    system: str | None = None,
) -> Example:
    """The example of `turns` with every human turn typed (`human_texts`) instead of spoken."""
    if len(turns) != len(human_texts):
        raise ValueError(f"{len(turns)} turns but {len(human_texts)} human texts")
    typed = [
        ChatTurn(human_text=h, answer_text=t.answer_text, answer_clips=list(t.answer_clips))
        for t, h in zip(turns, human_texts, strict=True)
    ]
    return build_example(vocab, typed, mode, fmt, system=system, task="twin")


def twin_positions(student: Example, twin: Example) -> tuple[int, int, int]:
    """(student start, twin start, count) of the input positions the two share: the common
    suffix of their ids, less its last token (which is never an input)."""
    n = common_suffix(student.ids, twin.ids) - 1
    if n < 1:
        raise ValueError("the example and its text twin share no response")
    return len(student) - 1 - n, len(twin) - 1 - n, n


def twin_alignment(
    student: Sequence[torch.Tensor],
    teacher: Sequence[torch.Tensor],
    spans: Sequence[tuple[int, int, int] | None],
) -> tuple[torch.Tensor, int]:
    """Summed cosine distance (averaged over layers) and the number of aligned positions.

    `student[l]` (B, L, D) are the batch's hidden states at some layers and `teacher[l]` (B', L',
    D) its twins' at the same layers, one row per example that has a twin, in batch order.
    `spans[b]` is `twin_positions` of example ``b`` (student start, twin start, count), or None
    for an example without a twin. The teacher is used as given: pass it detached."""
    if len(student) != len(teacher) or not student:
        raise ValueError("student and teacher need the same, non-empty list of layers")
    total = student[0].new_zeros((), dtype=torch.float32)
    count, row = 0, 0
    for b, span in enumerate(spans):
        if span is None:
            continue
        s0, t0, n = span
        for hs, ht in zip(student, teacher, strict=True):
            cos = F.cosine_similarity(
                hs[b, s0 : s0 + n].float(), ht[row, t0 : t0 + n].float(), dim=-1
            )
            total = total + (1.0 - cos).sum() / len(student)
        count += n
        row += 1
    return total, count
