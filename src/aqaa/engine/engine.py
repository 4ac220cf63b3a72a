"""The streaming engine: spoken question in, text and spoken answer out, in one process.

    engine = Engine.load()                       # the default model shipped in the package
    answer = engine.answer("question.wav")        # whole answer: text, audio, timings
    for event in engine.respond(engine.listen_file("question.wav")):
        ...                                       # TextDelta / AudioChunk / Finished as they come

Live input (a server): `turn = engine.listen(session)`, then `turn.push(samples_16k)` while the
user speaks and `engine.respond(turn)` when the turn ends. While listening, the question is
tokenized chunk by chunk and its codes are pre-filled into the LM's KV cache, so the work left
after the end of the question is a few hundred ms of audio: the tokenizer's last chunk, the
prompt's tail, the first text slot and audio slot, and one vocoder chunk.

The chain, each stage a `aqaa.streaming.Stream`: `TokenizerStream` (samples → codes) → the LM
(`LeanDecoder`: prefill, then grammar-constrained decoding with a KV cache) → `StreamDecoder`
(codes → 24 kHz chunks). Audio codes go to the vocoder as each 5-token group completes.
`cancel()` (from any thread) stops the answer at the next token (barge-in).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aqaa.audio import SAMPLE_RATE, load_audio
from aqaa.engine.sampling import SamplingConfig, choose, penalize
from aqaa.engine.session import Session
from aqaa.lm.decode import LeanDecoder, WeightFormat
from aqaa.lm.format import (
    FormatConfig,
    Grammar,
    Mode,
    ParsedResponse,
    header,
    history_ids,
    parse_response,
)
from aqaa.lm.notes import model_takes_notes, note_mask, write_note
from aqaa.lm.vocab import AUDIO_END_ID, AUDIO_START_ID, EOT_ID, TEXT_END_ID, Vocab
from aqaa.tokenizer.dual import DualCodebookTokenizer, TokenizerStream
from aqaa.tokenizer.ids import GROUP_SIZE, TOKENS_PER_SECOND
from aqaa.vocoder.model import Vocoder

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


class EngineError(RuntimeError):
    """The engine cannot answer (missing weights, no room in the context)."""


# ---- events ------------------------------------------------------------------------------------


@dataclass
class TextDelta:
    """New text of the answer (style tags included, e.g. "(whisper) ")."""

    text: str
    seconds: float  # since the end of the question


@dataclass
class AudioChunk:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    seconds: float  # since the end of the question


@dataclass
class Timings:
    """Seconds measured from the end of the question (the moment `respond` starts)."""

    first_text: float | None = None
    first_audio: float | None = None
    total: float = 0.0
    prefill_tokens: int = 0
    generated_tokens: int = 0
    audio_seconds: float = 0.0

    @property
    def rtf(self) -> float | None:
        """Generation time over the duration of the speech it produced (< 1: faster than real time)."""
        return self.total / self.audio_seconds if self.audio_seconds > 0 else None

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.total if self.total > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "first_text_s": self.first_text,
            "first_audio_s": self.first_audio,
            "total_s": self.total,
            "audio_s": self.audio_seconds,
            "rtf": self.rtf,
            "tokens_per_s": self.tokens_per_second,
            "prefill_tokens": self.prefill_tokens,
            "generated_tokens": self.generated_tokens,
        }


@dataclass
class Answer:
    text: str  # the text channel, style tags included
    parsed: ParsedResponse
    audio: np.ndarray
    sample_rate: int
    timings: Timings
    question_codes: list[int] = field(default_factory=list)
    cancelled: bool = False
    #: what the model noted it heard, for a note-taking model (`aqaa.lm.notes`), else None
    note: str | None = None

    @property
    def plain_text(self) -> str:
        """The words only (no style tags): what the speech should say."""
        return " ".join(s.text for s in self.parsed.sentences) or self.text

    @property
    def styles(self) -> list[str]:
        return self.parsed.styles


@dataclass
class Finished:
    answer: Answer


Event = TextDelta | AudioChunk | Finished


# ---- listening ---------------------------------------------------------------------------------


class Turn:
    """A question being heard: 16 kHz samples in, codes pre-filled into the LM as they come."""

    def __init__(self, engine: Engine, session: Session, mode: Mode, gain: float | None) -> None:
        self.engine = engine
        self.session = session
        self.mode: Mode = mode
        self.codes: list[int] = []
        self._stream: TokenizerStream = engine.tokenizer.stream(gain=gain)
        self._samples = 0
        self._prefix = engine._history_prefix(session, mode)
        #: the question's turn opens as in training (`aqaa.lm.format.human_block`)
        self._opening = [*header(engine.vocab, "human"), AUDIO_START_ID]
        engine.decoder.reset()
        engine.decoder.forward([*self._prefix, *self._opening])
        self.finished = False

    @property
    def seconds(self) -> float:
        return self._samples / SAMPLE_RATE

    def push(self, samples: np.ndarray) -> list[int]:
        """Add 16 kHz float samples of the question; returns the codes that became final."""
        if self.finished:
            raise RuntimeError("this turn has ended")
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._samples += len(samples)
        limit = self.engine.config.max_question_seconds
        if self.seconds > limit:
            raise EngineError(f"the question is longer than {limit:g} s; ask a shorter one")
        new = self._stream.push(samples).tolist()
        self._feed(new)
        return new

    def _feed(self, codes: list[int]) -> None:
        if codes:
            self.codes += codes
            self.engine.decoder.forward(self.engine.vocab.audio_ids(codes))

    def end(self) -> list[int]:
        """The end of the question: flush the tokenizer and write the prompt's tail.

        Returns the prompt ids (as the model saw them)."""
        if not self.finished:
            self._feed(self._stream.flush().tolist())
            self.finished = True
        if not self.codes:
            raise EngineError("the question is too short to hear (no audio tokens)")
        eng = self.engine
        question = [*self._opening, *eng.vocab.audio_ids(self.codes)]
        limit = eng.decoder.max_len - eng.config.answer_room
        if len(self._prefix) + len(question) > limit:
            # a longer question than the history was trimmed for: drop more turns, prefill again
            while self.session.exchanges and len(self._prefix) + len(question) > limit:
                self.session.drop_oldest()
                self._prefix = eng._history_prefix(self.session, self.mode)
            if len(self._prefix) + len(question) > limit:
                raise EngineError(
                    f"the question ({len(question)} tokens) leaves no room to answer in the "
                    f"{eng.decoder.max_len}-token context; ask a shorter one"
                )
            eng.decoder.reset()
            eng.decoder.forward(self._prefix + question)
        return self._prefix + question


# ---- the engine ----------------------------------------------------------------------------------


@dataclass
class EngineConfig:
    mode: Mode = "speech"
    format: FormatConfig = field(default_factory=FormatConfig)
    #: Tokens kept free for the answer when the history is trimmed to fit the context.
    answer_room: int = 700
    #: The history is trimmed when listening starts so that a question this long fits...
    expected_question_seconds: float = 10.0
    #: ...and a longer one (up to this) makes `Turn.end` drop more turns and prefill again.
    max_question_seconds: float = 30.0
    vocoder_steps: int | None = None  # Euler steps of the flow (None: the vocoder's default)
    #: How the LM decoder stores its matrices (`aqaa.lm.decode`): fp16 packed for fbgemm decodes
    #: ~1.2× faster than dense fp32 on the 2-core AVX2 host at a ~2e-4 relative error.
    lm_weights: WeightFormat = "fp16"
    #: Write a listening note after the question before answering (`aqaa.lm.notes`); None: as
    #: the model was trained (`model_takes_notes`).
    notes: bool | None = None
    #: The longest note, in tokens.
    max_note_tokens: int = 96

    @classmethod
    def for_context(cls, max_len: int, mode: Mode = "speech") -> EngineConfig:
        """Defaults scaled to the model's context (2,048 tokens: 700 for the answer, history
        trimmed for a 10 s question, questions up to 30 s)."""
        k = max_len / 2048
        return cls(mode=mode, answer_room=int(700 * k), expected_question_seconds=10 * k,
                   max_question_seconds=max(5.0, min(30.0, 30 * k)))  # fmt: skip


class Engine:
    def __init__(
        self,
        tokenizer: DualCodebookTokenizer,
        model: torch.nn.Module,
        vocab: Vocab,
        vocoder: Vocoder,
        config: EngineConfig | None = None,
        decode_dtype: torch.dtype = torch.float32,
        mode: Mode = "speech",
        lm_weights: WeightFormat | None = None,
    ) -> None:
        """`lm_weights` overrides the config's storage of the LM matrices."""
        self.tokenizer = tokenizer
        self.model = model
        self.vocab = vocab
        self.vocoder = vocoder
        max_len = int(model.config.max_position_embeddings)
        self.config = config or EngineConfig.for_context(max_len, mode)
        if lm_weights is not None:
            self.config = dataclasses.replace(self.config, lm_weights=lm_weights)
        self.grammar = Grammar(vocab, self.config.format)
        self.notes = model_takes_notes(model) if self.config.notes is None else self.config.notes
        self._note_mask = note_mask(vocab)
        self.decoder = LeanDecoder(
            model, max_len=max_len, dtype=decode_dtype, weights=self.config.lm_weights
        )
        self._cancel = threading.Event()
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model_dir: str | Path | None = None,
        config: EngineConfig | None = None,
        mode: Mode = "speech",
        lm_weights: WeightFormat | None = None,
    ) -> Engine:
        """Load `model_dir/{tokenizer,lm,vocoder}` (default: the weights shipped in the package);
        `lm_weights` overrides the config's storage of the LM matrices."""
        from aqaa.lm.model import check_audio_tokenizer, load_checkpoint

        root = Path(model_dir) if model_dir is not None else WEIGHTS_DIR
        parts = {p: root / p for p in ("tokenizer", "lm", "vocoder")}
        missing = [str(d) for d in parts.values() if not (d / "config.json").is_file()]
        if missing:
            raise EngineError(
                f"no model in {root}: missing {', '.join(missing)} (each needs config.json; "
                "train with `aqaa train …` or pass --model)"
            )
        tok = DualCodebookTokenizer.load(parts["tokenizer"])
        model, vocab = load_checkpoint(parts["lm"])
        voc = Vocoder.load(parts["vocoder"])
        fingerprint, what = tok.fingerprint(), f"the tokenizer in {parts['tokenizer']}"
        try:
            check_audio_tokenizer(model, fingerprint, what)
            voc.check_tokenizer(fingerprint, what)
        except ValueError as e:
            raise EngineError(str(e)) from None
        return cls(tok, model, vocab, voc, config, mode=mode, lm_weights=lm_weights)

    # ---- prompts --------------------------------------------------------------------------------

    def _history_prefix(self, session: Session, mode: Mode) -> list[int]:
        """System + history, trimmed (oldest first) so a long question and an answer still fit."""
        c = self.config
        room = c.answer_room + int(c.expected_question_seconds * TOKENS_PER_SECOND) + 8
        while True:
            ids = history_ids(
                self.vocab, session.chat_turns(), mode, self.config.format, session.system
            )
            if len(ids) + room <= self.decoder.max_len or not session.exchanges:
                break
            session.drop_oldest()
        if len(ids) + room > self.decoder.max_len:
            raise EngineError(
                f"the system prompt ({len(ids)} tokens) leaves no room in the "
                f"{self.decoder.max_len}-token context"
            )
        return ids

    # ---- listening --------------------------------------------------------------------------------

    def listen(
        self, session: Session | None = None, mode: Mode | None = None, gain: float | None = None
    ) -> Turn:
        """Start hearing a question (prefills the system prompt and history now)."""
        self._cancel.clear()
        return Turn(self, session or Session(), mode or self.config.mode, gain)

    def listen_file(
        self, audio: Any, sample_rate: int | None = None, session: Session | None = None,
        mode: Mode | None = None,
    ) -> Turn:  # fmt: skip
        """A whole question from a file/bytes/array (checked and normalised by `load_audio`)."""
        x = load_audio(audio, sample_rate, max_duration=self.config.max_question_seconds)
        turn = self.listen(session, mode, gain=1.0)
        turn.push(x)
        return turn

    def cancel(self) -> None:
        """Stop the answer being generated at its next token (safe from any thread)."""
        self._cancel.set()

    # ---- answering ----------------------------------------------------------------------------------

    def respond(self, turn: Turn, sampling: SamplingConfig | None = None) -> Iterator[Event]:
        """Answer the question heard by `turn`: yields text deltas and audio chunks as they are
        ready, then `Finished` (the session gets the new exchange unless cancelled)."""
        s = sampling or SamplingConfig()
        with self._lock:
            yield from self._respond(turn, s)

    def _respond(self, turn: Turn, s: SamplingConfig) -> Iterator[Event]:
        t0 = time.perf_counter()
        dec, vocab = self.decoder, self.vocab
        prompt = turn.end()
        note_ids: list[int] = []
        if self.notes:  # write down what was heard, then answer (aqaa.lm.notes)
            n = min(self.config.max_note_tokens, dec.max_len - len(prompt) - 32)
            note_ids = write_note(dec, dec.forward([AUDIO_END_ID]), self._note_mask, n,
                                  self._cancel.is_set)  # fmt: skip
            tail = [EOT_ID, *header(vocab, "assistant")]
            prompt = [*prompt, AUDIO_END_ID, *note_ids]
        else:
            tail = [AUDIO_END_ID, EOT_ID, *header(vocab, "assistant")]
        room = dec.max_len - len(prompt) - len(tail)
        if room < 16:
            raise EngineError(f"no room to answer in the {dec.max_len}-token context")
        logits = dec.forward(tail)
        note = vocab.decode(note_ids).strip() if self.notes else None
        state = self.grammar.start(turn.mode)
        gen = torch.Generator().manual_seed(s.seed)
        stream = self.vocoder.stream_decoder(seed=s.seed, n_steps=self.config.vocoder_steps)
        timings = Timings(prefill_tokens=len(prompt) + len(tail))
        out: list[int] = []
        text_ids: list[int] = []
        shown = ""
        pending: list[int] = []  # audio codes not yet sent to the vocoder
        audio: list[np.ndarray] = []
        cancelled = False

        def since() -> float:
            return time.perf_counter() - t0

        def chunks(new: list[np.ndarray]) -> Iterator[AudioChunk]:
            for c in new:
                t = since()
                if timings.first_audio is None:
                    timings.first_audio = t
                audio.append(c)
                yield AudioChunk(c, self.vocoder.sample_rate, t)

        for _ in range(min(s.max_new_tokens, room)):
            if self._cancel.is_set():
                cancelled = True
                break
            logits = logits.masked_fill(~state.allowed(), float("-inf"))
            if state.in_text:
                logits = penalize(logits, text_ids, s.repetition_penalty)
                tok = choose(logits, s.text_temperature, s.top_k, s.top_p, gen)
            else:
                tok = choose(logits, s.audio_temperature, s.top_k, s.top_p, gen)
            was_text = state.in_text
            state.advance(tok)
            out.append(tok)
            if was_text and vocab.is_text(tok) and tok != TEXT_END_ID:
                text_ids.append(tok)
                # byte-level BPE: hold back a trailing partial UTF-8 character ("\ufffd")
                text = vocab.decode(text_ids).rstrip("\ufffd")
                if text.startswith(shown) and len(text) > len(shown):
                    t = since()
                    if timings.first_text is None:
                        timings.first_text = t
                    yield TextDelta(text[len(shown) :], t)
                    shown = text
            elif vocab.is_audio(tok):
                pending.append(vocab.audio_code(tok))
            # a 5-token group is done (or the slot/clip/answer ended): send its codes on; the
            # vocoder decodes once it has a chunk plus look-ahead, so early groups save latency
            if pending and (
                state.in_text or len(pending) >= GROUP_SIZE
                or tok in (AUDIO_END_ID, EOT_ID)
            ):  # fmt: skip
                yield from chunks(stream.push(pending))
                pending = []
            if tok == EOT_ID:
                break
            logits = dec.forward([tok])
        if pending and not cancelled:
            yield from chunks(stream.push(pending))
        if not cancelled:
            yield from chunks(stream.flush())
        final_text = vocab.decode(text_ids)
        if final_text.startswith(shown) and len(final_text) > len(shown):
            yield TextDelta(final_text[len(shown) :], since())
        timings.total = since()
        timings.generated_tokens = len(out)
        wav = np.concatenate(audio) if audio else np.zeros(0, np.float32)
        timings.audio_seconds = len(wav) / self.vocoder.sample_rate
        parsed = parse_response(vocab, out)
        answer = Answer(
            final_text, parsed, wav, self.vocoder.sample_rate, timings,
            list(turn.codes), cancelled, note,
        )  # fmt: skip
        if not cancelled:
            turn.session.add(turn.codes, answer.text, note)
        yield Finished(answer)

    def answer(
        self,
        audio: Any,
        sample_rate: int | None = None,
        session: Session | None = None,
        sampling: SamplingConfig | None = None,
        mode: Mode | None = None,
    ) -> Answer:
        """The whole answer to one question (a path, bytes or an array with `sample_rate`)."""
        turn = self.listen_file(audio, sample_rate, session, mode)
        for ev in self.respond(turn, sampling):
            if isinstance(ev, Finished):
                return ev.answer
        raise AssertionError("respond() ended without Finished")
