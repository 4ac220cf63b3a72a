"""Speech distillation: keep how a model speaks while other skills train.

Every training run that improved the LM's hearing so far moved its speech away from its text
(TRAINING.md, session 22: 150 ASR-only steps took the shipped model's text–speech consistency WER
from 0.54 to 0.69; replaying the TTS and interleaved tasks on the corpus's own codes held it only
to 0.61). Replay pulls the audio channel toward the corpus, not toward where the starting model's
training (SFT, then audio-masked DPO) left it.

With a *speech teacher* (by default the checkpoint the run starts from, frozen), the target of
every audio position of a response becomes a mixture: `(1 − α)` of the true code and `α` of the
teacher's whole distribution over the vocabulary at that position, given the same inputs:

    loss_audio = (1 − α) · CE(truth, student) + α · CE(p_teacher, student)

`CE(p_teacher, student) = KL(p_teacher ‖ p_student) + H(p_teacher)`, so at α = 1 the audio
channel is pulled to the teacher's predictions and nothing else; text positions keep their
plain cross-entropy. The denominators of the loss do not change, so `α` is the only new knob.
The teacher costs one forward pass without gradient per micro-batch (~⅓ of a training step).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from aqaa.lm.vocab import Vocab


class SpeechTeacher:
    """A frozen LM whose next-token distributions are the soft targets of audio positions."""

    def __init__(self, model: nn.Module, vocab: Vocab, alpha: float) -> None:
        _check_alpha(alpha)
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.vocab = vocab
        self.alpha = alpha

    @classmethod
    def for_run(
        cls,
        alpha: float,
        checkpoint: str | Path | None,
        student_vocab: Vocab,
        device: torch.device | str = "cpu",
    ) -> SpeechTeacher | None:
        """The teacher of a training stage: None when `alpha` is 0 (off)."""
        if alpha == 0.0:
            return None
        if checkpoint is None:
            raise ValueError(
                "--speech-distill needs a teacher: --speech-teacher CKPT, or --init (the model "
                "the run starts from teaches by default)"
            )
        return cls.load(checkpoint, student_vocab, alpha, device)

    @classmethod
    def load(
        cls,
        checkpoint: str | Path,
        student_vocab: Vocab,
        alpha: float,
        device: torch.device | str = "cpu",
    ) -> SpeechTeacher:
        """Load the teacher and check it writes the same ids as the student."""
        from aqaa.lm.model import load_checkpoint

        _check_alpha(alpha)  # before the load: a bad flag fails fast
        model, vocab = load_checkpoint(checkpoint, device=str(device))
        if (vocab.size, vocab.audio_base) != (student_vocab.size, student_vocab.audio_base):
            raise ValueError(
                f"speech teacher {checkpoint} has another vocabulary ({vocab.size} ids, audio at "
                f"{vocab.audio_base}) than the model it teaches ({student_vocab.size}, "
                f"{student_vocab.audio_base})"
            )
        return cls(model, vocab, alpha)

    @torch.no_grad()
    def log_probs(self, inputs: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """`inputs` (B, L) ids; `rows` (B, L-1) bool: the positions to predict (their next
        token) → (M, V) fp32 log-probabilities of the teacher there."""
        hidden = self.model.model(input_ids=inputs[:, :-1]).last_hidden_state
        return torch.log_softmax(self.model.lm_head(hidden[rows]).float(), dim=-1)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"--speech-distill must be in (0, 1], got {alpha}")


def soft_cross_entropy(teacher_logp: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Per row, `−Σ_v p_teacher(v) · log p_student(v)` (nats), rows of (M, V) logits."""
    return -(teacher_logp.exp() * torch.log_softmax(student_logits.float(), dim=-1)).sum(-1)


def kl_divergence(teacher_logp: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Per row, `KL(p_teacher ‖ p_student)` (nats): how far the student's speech has moved."""
    p = teacher_logp.exp()
    return (p * (teacher_logp - torch.log_softmax(student_logits.float(), dim=-1))).sum(-1)
