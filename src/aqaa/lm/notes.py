"""Listening notes: the LM writes down what it heard before it answers.

Measured need (TRAINING.md, session 20): on held-out spoken questions of the training templates
(`aqaa train evaluate --data q13 --split valid -n 60`), the LM answers 0–3% from the audio, 35–38%
from the question typed, and 15–18% from *its own transcript* of the audio (the ASR prompt, then
the typed question). Its decoder reads audio well word by word (guided attention puts ~0.9 of a
head's mass on the word being transcribed) but cannot gather a whole question into one answer
position. Writing the question down first turns answering into reading.

Format (`aqaa.lm.format`, `ChatTurn.human_note`): a spoken human turn may carry, after its audio
block and before its `<|EOT|>`, the model's note of what was said:

    <|BOT|>human\\n<audio_start> … <audio_end>What is the capital of Peru?<|EOT|><|BOT|>assistant\\n…

The question's audio stays in the context, so whatever the note cannot carry (pitch, rate,
whisper, who is speaking) is still there for the answer. In training (`aqaa train sft --notes`)
the note is the transcript and is trained like text; at inference `take_note` writes it (text
tokens only, greedy, up to `<|EOT|>`), and the response follows under the usual grammar. This is
a deviation from the paper's format (design §1.2), taken only where measured to help; the audio
answer is still written by the same LM in one stream, with no separate ASR or TTS model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from aqaa.lm.decode import LeanDecoder
from aqaa.lm.format import ChatTurn, FormatConfig, Mode, history_ids, human_block
from aqaa.lm.vocab import AUDIO_END_ID, AUDIO_START_ID, BOT_ID, EOT_ID, PAD_ID, TEXT_END_ID, Vocab

#: The attribute of the HF model config that marks a note-taking LM: set by `aqaa train sft
#: --notes`, saved in `config.json`, carried by every later stage and by `aqaa train ship`.
NOTES_FLAG = "aqaa_notes"


def model_takes_notes(model: torch.nn.Module) -> bool:
    """Whether `model` was fine-tuned to write listening notes."""
    return bool(getattr(model.config, NOTES_FLAG, False))


def mark_note_taker(model: torch.nn.Module) -> None:
    """Record in `model`'s config that it writes listening notes."""
    setattr(model.config, NOTES_FLAG, True)


def note_mask(vocab: Vocab) -> torch.Tensor:
    """(V,) bool: what a note may contain — text tokens, and `<|EOT|>` to end it."""
    allowed = torch.zeros(vocab.size, dtype=torch.bool)
    allowed[: vocab.audio_base] = True
    allowed[[PAD_ID, BOT_ID, AUDIO_START_ID, AUDIO_END_ID, TEXT_END_ID]] = False
    return allowed


@torch.no_grad()
def take_note(
    decoder: LeanDecoder,
    vocab: Vocab,
    turns: Sequence[ChatTurn],
    mode: Mode,
    cfg: FormatConfig | None = None,
    system: str | None = None,
    max_new_tokens: int = 96,
) -> str:
    """The model's note of the spoken `turns[-1]` (earlier turns are history): greedy text after
    the question's audio, up to `<|EOT|>` or `max_new_tokens`."""
    cfg = cfg or FormatConfig()
    last = turns[-1]
    if last.human_codes is None or not len(last.human_codes):
        raise ValueError("only a spoken turn takes a note")
    block = human_block(vocab, replace(last, human_note=None))[:-1]  # without its <|EOT|>
    prompt = history_ids(vocab, turns[:-1], mode, cfg, system) + block
    room = min(max_new_tokens, decoder.max_len - len(prompt) - 1)
    if room < 1:
        raise ValueError(f"prompt of {len(prompt)} tokens leaves no room in {decoder.max_len}")
    decoder.reset()
    out = write_note(decoder, decoder.forward(prompt), note_mask(vocab), room)
    return vocab.decode(out).strip()


def write_note(
    decoder: LeanDecoder,
    logits: torch.Tensor,
    mask: torch.Tensor,
    max_tokens: int,
    stop: Callable[[], bool] = lambda: False,
) -> list[int]:
    """Greedy note tokens from the decoder's state (`logits`: the next token's), up to
    `<|EOT|>` (not returned and not fed), `max_tokens`, or `stop()` (the engine's cancel)."""
    out: list[int] = []
    for _ in range(max_tokens):
        tok = int(logits.masked_fill(~mask, float("-inf")).argmax())
        if tok == EOT_ID or stop():
            break
        out.append(tok)
        logits = decoder.forward([tok])
    return out


def with_note(turns: Sequence[ChatTurn], note: str) -> list[ChatTurn]:
    """`turns` with `note` as the last turn's listening note."""
    return [*turns[:-1], replace(turns[-1], human_note=note)]
