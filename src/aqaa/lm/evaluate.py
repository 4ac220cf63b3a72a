"""Quick LM checks on held-out token shards (issue 5's acceptance numbers).

- **ASR**: the spoken question → its transcript (text mode, the `system_asr` prompt); word error
  rate against the question text, both normalised (`aqaa.data.tasks.base.normalize`, style tags
  removed).
- **QA**: a spoken question of the knowledge/reasoning categories → the text channel of the
  answer; correct when it contains one of the item's `accept` strings as whole words.
- **Read aloud** (`read_aloud`): held-out assistant sentences given as text, said by the LM; its
  codes go through a vocoder and Whisper (the caller's `hear`), scored beside the true codes.

Greedy decoding under the grammar with the lean KV-cached loop (or, for ASR, joint CTC/attention
beam search: `joint_ctc`). This is the LM alone on
tokenised audio, not the end-to-end evaluation of `aqaa eval`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from aqaa.data.schema import CONTENT_CATEGORIES
from aqaa.data.tasks import generate
from aqaa.data.tasks.base import contains_phrase, normalize
from aqaa.lm.data import TokenItem, asr_example
from aqaa.lm.decode import LeanDecoder, respond
from aqaa.lm.format import ChatTurn, FormatConfig, Mode, asr_prompt
from aqaa.lm.guide import head_alignment
from aqaa.lm.joint import joint_transcribe
from aqaa.lm.notes import model_takes_notes, take_note, with_note
from aqaa.lm.spelling import SPELL_CHARS, spell_columns, spell_greedy, spell_targets
from aqaa.lm.vocab import Vocab

QA_CATEGORIES: tuple[str, ...] = ("knowledge", "reasoning")
_TAG = re.compile(r"\((\w+)\)\s*")


def edit_distance(ref: Sequence[object], hyp: Sequence[object]) -> int:
    """Levenshtein distance between two sequences (words or characters)."""
    prev = list(range(len(hyp) + 1))
    for i, rw in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, hw in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[-1]


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(edit distance in words, reference words) after normalisation and tag removal."""
    r = normalize(_TAG.sub("", ref)).split()
    h = normalize(_TAG.sub("", hyp)).split()
    return edit_distance(r, h), len(r)


@dataclass
class LMEval:
    asr_wer: float | None = None
    #: WER of joint CTC/attention decoding (`aqaa.lm.joint`), when asked for
    asr_wer_joint: float | None = None
    asr_n: int = 0
    #: character error rate of what the output head spells at the question's audio positions
    #: (`aqaa.lm.spelling`; meaningful after training with `--ctc-weight`)
    spelling_cer: float | None = None
    #: per layer, the best head's on-target attention mass from the transcript to the audio
    #: (`aqaa.lm.guide.head_alignment`): whether the decoder looks where the next word is spoken
    alignment: list[float] = field(default_factory=list)
    qa_accuracy: float | None = None
    qa_n: int = 0
    qa_per_category: dict[str, float] = field(default_factory=dict)
    #: QA accuracy with the question given as text (the cascade's upper bound on this LM): the
    #: gap to `qa_accuracy` is what hearing costs, the gap to 1 what the model does not know
    qa_text_accuracy: float | None = None
    #: QA accuracy with the question given as the LM's *own transcript* of it (ASR prompt, then
    #: the text answerer): what answering through an inner transcript would reach
    qa_transcript_accuracy: float | None = None
    tokens_per_second: float = 0.0
    samples: list[dict[str, Any]] = field(default_factory=list)


@torch.no_grad()
def spelling(
    model: torch.nn.Module,
    vocab: Vocab,
    codes: Sequence[int],
    fmt: FormatConfig,
    columns: torch.Tensor | None = None,
) -> str:
    """What the LM's output head spells over a question's audio tokens (the ASR prompt);
    `columns`: `spell_columns(vocab)`, computed here when not given."""
    ids, span = asr_prompt(vocab, codes, fmt)
    if span is None:
        return ""
    hidden = model.model(torch.tensor([ids])).last_hidden_state[0, span[0] : span[1]]
    cols = torch.tensor(spell_columns(vocab)) if columns is None else columns
    return spell_greedy(hidden, model.lm_head.weight, cols)


def correct(answer: str, accept: Sequence[str]) -> bool:
    """Whether `answer` contains one of the accepted phrases (none accepted: never)."""
    return any(contains_phrase(answer, a) for a in accept)


def evaluate_lm(
    model: torch.nn.Module,
    vocab: Vocab,
    items: Sequence[TokenItem],
    n_asr: int = 100,
    n_qa: int = 100,
    qa_mode: Mode = "text",
    categories: Sequence[str] = QA_CATEGORIES,
    fmt: FormatConfig | None = None,
    max_len: int = 2048,
    dtype: torch.dtype = torch.float32,
    joint_ctc: float = 0.0,
    notes: bool | None = None,
) -> LMEval:
    """ASR WER and QA accuracy of a checkpoint on `items` (first turns only). With `joint_ctc`
    λ > 0, transcripts also come from joint CTC/attention beam search (`aqaa.lm.joint`), scored
    beside the greedy ones. With `notes` (None: if the model was trained to), the model writes
    its listening note of each spoken question before it answers (`aqaa.lm.notes`)."""
    fmt = fmt or FormatConfig()
    notes = model_takes_notes(model) if notes is None else notes
    dec = LeanDecoder(model, max_len=max_len, dtype=dtype)
    out = LMEval()
    errs = words = c_errs = chars = j_errs = 0
    toks = secs = 0.0
    columns = torch.tensor(spell_columns(vocab))
    for it in items[:n_asr]:
        t = it.turns[0]
        p, r = respond(dec, vocab, [ChatTurn(human_codes=t.human_codes)], "text", fmt,
                       system=fmt.system_asr, max_new_tokens=128)  # fmt: skip
        e, n = word_errors(t.human_text, p.text)
        errs, words = errs + e, words + n
        sample = {"task": "asr", "ref": t.human_text, "hyp": p.text}
        if joint_ctc:
            sample["joint"] = joint_transcribe(model, vocab, t.human_codes, fmt, joint_ctc)
            j_errs += word_errors(t.human_text, sample["joint"])[0]
        spelled = spelling(model, vocab, t.human_codes, fmt, columns)
        ref = "".join(SPELL_CHARS[c - 1] for c in spell_targets(t.human_text))
        c_errs, chars = c_errs + edit_distance(list(ref), list(spelled)), chars + len(ref)
        toks, secs = toks + len(r.ids), secs + r.seconds
        out.asr_n += 1
        if len(out.samples) < 10:
            out.samples.append(sample | {"spelled": spelled})
    asr = [asr_example(vocab, fmt, it.turns[0].human_text, it.turns[0].human_codes)
           for it in items[:n_asr]]  # fmt: skip
    if any(ex.guide_queries for ex in asr):
        out.alignment = head_alignment(model, asr).max(-1).values.tolist()
    if words:
        out.asr_wer = errs / words
        out.asr_wer_joint = j_errs / words if joint_ctc else None
    if chars:
        out.spelling_cer = c_errs / chars
    per: dict[str, list[int]] = {}
    knows: list[int] = []
    via: list[int] = []
    qa = [it for it in items if it.category in categories][:n_qa]
    ask = text_answerer(dec, vocab, fmt, max_new_tokens=96)
    for it in qa:
        t = it.turns[0]
        turns = [ChatTurn(human_codes=t.human_codes)]
        note = take_note(dec, vocab, turns, qa_mode, fmt) if notes else None
        if note is not None:
            turns = with_note(turns, note)
        p, r = respond(dec, vocab, turns, qa_mode, fmt,
                       max_new_tokens=512 if qa_mode == "speech" else 96)  # fmt: skip
        per.setdefault(it.category, []).append(int(correct(p.text, t.accept)))
        toks, secs = toks + len(r.ids), secs + r.seconds
        # the same question as text: does the model know the answer, whether or not it hears it?
        from_text = ask(t.human_text)
        knows.append(int(correct(from_text, t.accept)))
        heard, _ = respond(dec, vocab, [ChatTurn(human_codes=t.human_codes)], "text", fmt,
                           system=fmt.system_asr, max_new_tokens=128)  # fmt: skip
        from_heard = ask(heard.text)
        via.append(int(correct(from_heard, t.accept)))
        if len(out.samples) < 20:
            out.samples.append(
                {
                    "task": "qa",
                    "q": t.human_text,
                    "answer": p.text,
                    "answer_from_text": from_text,
                    "heard": heard.text,
                    **({"note": note} if notes else {}),
                    "answer_from_heard": from_heard,
                    "accept": t.accept,
                    "ok": correct(p.text, t.accept),
                }
            )
    out.qa_n = sum(len(v) for v in per.values())
    if out.qa_n:
        out.qa_accuracy = sum(sum(v) for v in per.values()) / out.qa_n
        out.qa_per_category = {k: sum(v) / len(v) for k, v in per.items()}
        out.qa_text_accuracy = sum(knows) / len(knows)
        out.qa_transcript_accuracy = sum(via) / len(via)
    out.tokens_per_second = toks / secs if secs else 0.0
    return out


@dataclass
class ReadAloud:
    """How well the LM speaks given text (the interleaved task's prompt, "Say the text.")."""

    #: WER of the transcript of the LM's speech against the text it was asked to say
    wer: float
    #: the same for the true clip through the same ears: the vocoder-and-judge floor
    wer_true_codes: float
    #: WER of the LM's own text channel against the text (does it copy before it speaks?)
    text_wer: float
    #: seconds of the LM's speech over seconds of the true clip
    duration_ratio: float
    n: int
    samples: list[dict[str, Any]] = field(default_factory=list)


def read_aloud(
    decoder: LeanDecoder,
    vocab: Vocab,
    sentences: Sequence[tuple[str, Sequence[int]]],
    hear: Callable[[Sequence[int]], tuple[str, float]],
    fmt: FormatConfig | None = None,
    audio_temperature: float = 0.7,
    seed: int = 0,
) -> ReadAloud:
    """Ask the LM to say each `(text, true_codes)` sentence in speech mode (greedy text, sampled
    audio) and score what `hear(codes) -> (transcript, seconds)` (vocoder + Whisper) makes of its
    codes and of the true ones. The LM's speaking alone, apart from what it knows or hears."""
    if not sentences:
        raise ValueError("read_aloud needs at least one sentence")
    fmt = fmt or FormatConfig()
    errs = errs_true = errs_text = words = 0
    secs = secs_true = 0.0
    samples: list[dict[str, Any]] = []
    for i, (text, true_codes) in enumerate(sentences):
        p, _ = respond(decoder, vocab, [ChatTurn(human_text=text)], "speech", fmt,
                       system=fmt.system_interleaved, max_new_tokens=6 * len(text) + 64,
                       seed=seed + i, audio_temperature=audio_temperature)  # fmt: skip
        said, s = hear(p.codes) if len(p.codes) else ("", 0.0)
        said_true, s_true = hear(true_codes)
        e, n = word_errors(text, said)
        errs, words, secs = errs + e, words + n, secs + s
        errs_true, secs_true = errs_true + word_errors(text, said_true)[0], secs_true + s_true
        errs_text += word_errors(text, p.text)[0]
        if len(samples) < 10:
            samples.append({"text": text, "lm_text": p.text, "lm_said": said, "true_said": said_true,
                            "seconds": round(s, 2), "true_seconds": round(s_true, 2)})  # fmt: skip
    words = max(words, 1)
    return ReadAloud(
        wer=errs / words,
        wer_true_codes=errs_true / words,
        text_wer=errs_text / words,
        duration_ratio=secs / secs_true if secs_true else 0.0,
        n=len(sentences),
        samples=samples,
    )


def generated_qa_accuracy(
    answer: Callable[[str], str],
    n: int,
    split: str = "test",
    categories: Sequence[str] = CONTENT_CATEGORIES,
    seed: int = 7,
) -> dict[str, float]:
    """Accuracy of `answer(question_text)` on `n` freshly generated first turns of `split`'s
    templates (cycling over `categories`): what the text channel knows, with no audio and no
    corpus in the way. "train" templates measure recall of what was taught, "test" templates
    the paraphrases beyond them. Returns per-category accuracy and "all"."""
    rng = random.Random(seed)
    per: dict[str, list[bool]] = {}
    for i in range(n):
        cat = categories[i % len(categories)]
        t = generate(cat, rng, split).turns[0]
        per.setdefault(cat, []).append(correct(answer(t.human_text), t.accept))
    out = {k: sum(v) / len(v) for k, v in per.items()}
    out["all"] = sum(map(sum, per.values())) / max(1, n)
    return out


def text_answerer(
    model: torch.nn.Module | LeanDecoder,
    vocab: Vocab,
    fmt: FormatConfig | None = None,
    max_new_tokens: int = 64,
) -> Callable[[str], str]:
    """`question text → the model's text answer`, greedy under the grammar (for
    `generated_qa_accuracy`, and `evaluate_lm`'s question-as-text check)."""
    fmt = fmt or FormatConfig()
    dec = model if isinstance(model, LeanDecoder) else LeanDecoder(model, max_len=2048)

    def answer(question: str) -> str:
        p, _ = respond(dec, vocab, [ChatTurn(human_text=question)], "text", fmt,
                       max_new_tokens=max_new_tokens)  # fmt: skip
        return p.text

    return answer
