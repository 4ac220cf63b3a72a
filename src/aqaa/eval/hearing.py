"""How well the LM hears the suite's voices: ASR WER of its transcripts of the suite's questions.

Why a separate measure: content accuracy on the suite mixes hearing and knowing, and with a few
turns right per category it moves by whole turns. The LM's own transcript of each question (the
ASR prompt of pretraining, greedy) over the suite's ~600 words is a finer reading of the first
half: what the LM hears from voices it never trained on. Rows by voice group: `reserved` (the
test voices of design §3), `held-out` (test-split voices: same speaker as a reserved one, or
hashed into the test split) and `training` (voices of the training split, with the suite's own
prosody and phrasing).

The questions are the suite's renderings, cached like `aqaa eval run`'s (`OUT/cache/questions`),
tokenized offline (the streaming tokenizer gives the same codes, `tests/test_tokenizer.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aqaa.eval.suite import Suite
from aqaa.lm.evaluate import word_errors


@dataclass
class HearingRow:
    item: str
    turn: int
    voice: str
    group: str
    question: str
    transcript: str
    errors: int
    words: int


@dataclass
class HearingReport:
    wer: float
    words: int
    #: WER and words per voice group
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    rows: list[HearingRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def voice_group(voice_id: str) -> str:
    """`reserved`, `held-out` or `training`: the split the voice belongs to (`aqaa.data.voices`)."""
    from aqaa.data.voices import HELD_OUT_VOICES, RESERVED_VOICES, Voice

    if voice_id in RESERVED_VOICES:
        return "reserved"
    if voice_id in HELD_OUT_VOICES:
        return "held-out"
    engine, _, name = voice_id.partition(":")
    split = Voice(voice_id, engine, name, "male").split
    return "training" if split == "train" else "held-out"


def summarize(rows: list[HearingRow]) -> HearingReport:
    """Word-weighted WER overall and per voice group."""
    words = sum(r.words for r in rows)
    report = HearingReport(wer=sum(r.errors for r in rows) / max(words, 1), words=words, rows=rows)
    for g in sorted({r.group for r in rows}):
        mine = [r for r in rows if r.group == g]
        n = sum(r.words for r in mine)
        report.groups[g] = {"wer": sum(r.errors for r in mine) / max(n, 1), "words": n}
    return report


def suite_hearing(
    suite: Suite,
    question_audio: Callable[[Any, int, Any], Any],
    transcribe: Callable[[Any], str],
    progress: bool = True,
) -> HearingReport:
    """Transcribe every turn's question (`question_audio(item, k, turn)` → 16 kHz audio;
    `transcribe(audio)` → the LM's transcript) and score it against the turn's question."""
    from tqdm import tqdm

    turns = [(it, k, t) for it in suite.items for k, t in enumerate(it.turns)]
    rows = []
    for it, k, t in tqdm(turns, desc="hearing", unit="turn", disable=not progress):
        hyp = transcribe(question_audio(it, k, t))
        e, n = word_errors(t.question, hyp)
        rows.append(HearingRow(it.id, k, t.voice, voice_group(t.voice), t.question, hyp, e, n))
    return summarize(rows)


def lm_transcriber(
    model_dir: Path, lm_dir: Path | None = None, threads: int | None = None
) -> Callable[[Any], str]:
    """The model's tokenizer + LM (or the checkpoint `lm_dir`) as a transcriber: the greedy ASR
    prompt of pretraining. The LM must read this tokenizer's codes."""
    import torch

    from aqaa.lm.decode import LeanDecoder, respond
    from aqaa.lm.format import ChatTurn, FormatConfig
    from aqaa.lm.model import check_audio_tokenizer, load_checkpoint
    from aqaa.tokenizer.dual import DualCodebookTokenizer

    if threads:
        torch.set_num_threads(threads)
    tok = DualCodebookTokenizer.load(model_dir / "tokenizer")
    model, vocab = load_checkpoint(lm_dir or model_dir / "lm")
    check_audio_tokenizer(model, tok.fingerprint(), str(model_dir / "tokenizer"))
    model.eval()
    dec = LeanDecoder(model)
    fmt = FormatConfig()

    def transcribe(audio: Any) -> str:
        codes = tok.encode(audio, 16000).codes
        turn = ChatTurn(human_codes=codes.tolist())
        parsed, _ = respond(
            dec, vocab, [turn], "text", fmt, system=fmt.system_asr, max_new_tokens=128
        )
        return parsed.text

    return transcribe
