"""Conversation format, response grammar, parsing and the grammar logits processor (design §1.2).

A dialogue is

    <|BOT|>system\\n{prompt}<|EOT|><|BOT|>human\\n<audio_start>…<audio_end><|EOT|><|BOT|>assistant\\n{response}

and a response depends on its *mode*:

- `speech` (text + audio): T = answer text ids + `<text_end>`; A = over the clips (one per sentence,
  i.e. per style: *marker-preserving concatenation*) `<audio_start> codes <audio_end>`. The response is
  T[0:10] A[0:15] T[10:20] A[15:30] …; once T is used up the rest of A follows; then `<|EOT|>`. The audio
  must not run out while text remains (it never does for real speech: ~42 audio tokens/s against a few
  text tokens/s), and there is at least one clip.
- `text`: T then `<|EOT|>` (audio query → text answer, ASR, text QA; also assistant turns in history).
- `audio`: A then `<|EOT|>` (TTS).

Inside a clip the codes follow the `[l l s s s]` interleave of `aqaa.tokenizer.ids`: positions 0, 1
of every group are linguistic, 2–4 semantic, and a clip closes only at a group boundary. The grammar
(`Grammar`, `GrammarState`, `GrammarLogitsProcessor`) enforces all of this at decode time.

Every `Example` carries a per-token *kind*: 0 = context (no loss), 1 = response text channel (text ids,
`<text_end>`, `<|EOT|>`), 2 = response audio channel (audio ids and the clip markers). Kind `i`
describes token `i` as a prediction target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from aqaa.data.schema import Sentence, parse_tagged
from aqaa.lm.vocab import (
    AUDIO_END_ID,
    AUDIO_START_ID,
    BOT_ID,
    EOT_ID,
    PAD_ID,
    TEXT_END_ID,
    Vocab,
)
from aqaa.tokenizer.ids import GROUP

Mode = Literal["text", "speech", "audio"]
MODES: tuple[str, ...] = ("text", "speech", "audio")
KIND_CONTEXT, KIND_TEXT, KIND_AUDIO = 0, 1, 2
ROLES = ("system", "human", "assistant")


class FormatError(ValueError):
    """A dialogue cannot be written in the requested format."""


@dataclass
class FormatConfig:
    """Slot sizes, system prompts and history policy."""

    text_slot: int = 10
    audio_slot: int = 15
    #: Keep the assistant's audio tokens in the history of later turns (default: text only).
    keep_assistant_audio: bool = False
    system_speech: str = "You are a helpful voice assistant. Answer with text and speech."
    system_text: str = "You are a helpful voice assistant. Answer with text."
    system_asr: str = "Transcribe the speech."
    system_tts: str = "Read the text aloud."
    system_interleaved: str = "Say the text."

    def __post_init__(self) -> None:
        if self.text_slot < 1 or self.audio_slot < 1:
            raise ValueError("slot sizes must be positive")

    def system_for(self, mode: Mode) -> str:
        return {"speech": self.system_speech, "text": self.system_text, "audio": self.system_tts}[
            mode
        ]

    def fixed_texts(self) -> list[str]:
        """Strings the format itself writes (for training the text tokenizer)."""
        return [f"{r}\n" for r in ROLES] + [
            self.system_speech,
            self.system_text,
            self.system_asr,
            self.system_tts,
            self.system_interleaved,
        ]


@dataclass
class ChatTurn:
    """One exchange: the human speaks (`human_codes`) or types (`human_text`); the assistant
    answers with `answer_text` (style-tagged) and one code clip per sentence."""

    human_codes: Sequence[int] | np.ndarray | None = None
    human_text: str | None = None
    answer_text: str = ""
    answer_clips: list[Sequence[int] | np.ndarray] = field(default_factory=list)
    #: The listening note of a spoken turn (`aqaa.lm.notes`): text the model writes after the
    #: question's audio, inside the human turn, before `<|EOT|>`; None: no note.
    human_note: str | None = None


@dataclass
class Example:
    """A training sequence: token ids and, per token, its kind (see module doc)."""

    ids: list[int]
    kinds: list[int]
    task: str = ""
    #: Spelling CTC (`aqaa.lm.spelling`): positions ``[start, end)`` of the question's audio
    #: tokens and the transcript's character targets; unset for tasks without it.
    ctc_span: tuple[int, int] | None = None
    ctc_targets: list[int] = field(default_factory=list)
    #: Guided attention (`aqaa.lm.guide`): the keys the guided heads should read (positions, and
    #: their centres in 0–1), the queries, and where among the keys (0–1) each query's next token
    #: sits. ASR: transcript queries read the question's audio; `guide_speaks`: the queries that
    #: predict a clip's audio tokens read the text it says (TTS, interleaved, SFT answers).
    guide_keys: list[int] = field(default_factory=list)
    guide_key_fractions: list[float] = field(default_factory=list)
    guide_queries: list[int] = field(default_factory=list)
    guide_fractions: list[float] = field(default_factory=list)
    guide_speaks: bool = False
    #: The same dialogue and response with the human turns typed, not spoken (`aqaa.lm.twin`):
    #: the teacher of the text-twin alignment; None where unused or meaningless.
    twin: Example | None = None

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.kinds):
            raise ValueError("ids and kinds differ in length")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_loss(self) -> int:
        return sum(k != KIND_CONTEXT for k in self.kinds)


# ----- building ---------------------------------------------------------------------------


def header(vocab: Vocab, role: str) -> list[int]:
    """`<|BOT|>role\\n`."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return [BOT_ID, *vocab.encode(f"{role}\n")]


def audio_block(vocab: Vocab, codes: Sequence[int] | np.ndarray) -> list[int]:
    """`<audio_start> codes <audio_end>` (codes in `[0, 5120)`, `[l l s s s]` interleaved)."""
    codes = np.asarray(codes, dtype=np.int64)
    if len(codes) == 0 or len(codes) % sum(GROUP):
        raise FormatError(
            f"a clip needs a positive multiple of {sum(GROUP)} codes, got {len(codes)}"
        )
    return [AUDIO_START_ID, *vocab.audio_ids(codes), AUDIO_END_ID]


def system_block(vocab: Vocab, prompt: str) -> list[int]:
    return [*header(vocab, "system"), *vocab.encode(prompt), EOT_ID]


def human_block(vocab: Vocab, turn: ChatTurn) -> list[int]:
    if turn.human_codes is not None and len(turn.human_codes):
        body = audio_block(vocab, turn.human_codes)
        if turn.human_note is not None:
            body += vocab.encode(turn.human_note)
    elif turn.human_text:
        body = vocab.encode(turn.human_text)
    else:
        raise FormatError("a human turn needs codes or text")
    return [*header(vocab, "human"), *body, EOT_ID]


def response(
    vocab: Vocab,
    text: str,
    clips: Sequence[Sequence[int] | np.ndarray],
    mode: Mode,
    cfg: FormatConfig | None = None,
) -> tuple[list[int], list[int]]:
    """Response ids (ending in `<|EOT|>`) and their kinds, in the grammar of `mode`."""
    cfg = cfg or FormatConfig()
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    t = [*vocab.encode(text), TEXT_END_ID] if mode != "audio" else []
    a: list[int] = []
    if mode != "text":
        if not clips:
            raise FormatError(f"a {mode} response needs at least one audio clip")
        for c in clips:
            a += audio_block(vocab, c)
    out: list[int] = []
    kinds: list[int] = []
    ti = ai = 0
    while ti < len(t):
        chunk = t[ti : ti + cfg.text_slot]
        ti += len(chunk)
        out += chunk
        kinds += [KIND_TEXT] * len(chunk)
        if mode == "text":
            continue
        slot = a[ai : ai + cfg.audio_slot]
        if ti < len(t) and len(slot) < cfg.audio_slot:
            raise FormatError("the audio runs out before the text (text too long for its speech)")
        ai += len(slot)
        out += slot
        kinds += [KIND_AUDIO] * len(slot)
    out += a[ai:]
    kinds += [KIND_AUDIO] * (len(a) - ai)
    out.append(EOT_ID)
    kinds.append(KIND_TEXT)
    return out, kinds


def _assistant_history(vocab: Vocab, turn: ChatTurn, mode: Mode, cfg: FormatConfig) -> list[int]:
    """An earlier assistant turn as context: text only, unless audio is kept."""
    if mode == "speech" and cfg.keep_assistant_audio and turn.answer_clips:
        try:
            return [
                *header(vocab, "assistant"),
                *response(vocab, turn.answer_text, turn.answer_clips, "speech", cfg)[0],
            ]
        except FormatError:
            pass
    return [*header(vocab, "assistant"), *response(vocab, turn.answer_text, [], "text", cfg)[0]]


def build_prompt(
    vocab: Vocab,
    turns: Sequence[ChatTurn],
    mode: Mode,
    cfg: FormatConfig | None = None,
    system: str | None = None,
) -> list[int]:
    """Everything up to and including `<|BOT|>assistant\\n` for answering `turns[-1]`.

    Earlier turns are history (human audio + assistant text); the last turn's answer is ignored.
    """
    cfg = cfg or FormatConfig()
    if not turns:
        raise FormatError("no turns")
    ids = history_ids(vocab, turns[:-1], mode, cfg, system)
    ids += human_block(vocab, turns[-1])
    ids += header(vocab, "assistant")
    return ids


def audio_span(vocab: Vocab, ids: Sequence[int]) -> tuple[int, int] | None:
    """``[start, end)`` of the audio tokens in `ids` that hold one audio block (a question's
    prompt), or None when there are none."""
    audio = [i for i, t in enumerate(ids) if vocab.is_audio(t)]
    return (audio[0], audio[-1] + 1) if audio else None


def asr_prompt(
    vocab: Vocab, codes: Sequence[int] | np.ndarray, cfg: FormatConfig
) -> tuple[list[int], tuple[int, int] | None]:
    """The ASR task's prompt for a question's audio codes, and its audio span."""
    ids = build_prompt(vocab, [ChatTurn(human_codes=np.asarray(codes))], "text", cfg,
                       system=cfg.system_asr)  # fmt: skip
    return ids, audio_span(vocab, ids)


def history_ids(
    vocab: Vocab,
    turns: Sequence[ChatTurn],
    mode: Mode,
    cfg: FormatConfig | None = None,
    system: str | None = None,
) -> list[int]:
    """The system block and the complete exchanges `turns` (human audio + assistant text): the
    part of a prompt that is known before the next question is heard."""
    cfg = cfg or FormatConfig()
    ids = system_block(vocab, cfg.system_for(mode) if system is None else system)
    for t in turns:
        ids += human_block(vocab, t)
        ids += _assistant_history(vocab, t, mode, cfg)
    return ids


def build_example(
    vocab: Vocab,
    turns: Sequence[ChatTurn],
    mode: Mode,
    cfg: FormatConfig | None = None,
    system: str | None = None,
    task: str = "",
) -> Example:
    """A training sequence whose loss covers the response to `turns[-1]` only, and the listening
    note of `turns[-1]` with its `<|EOT|>` when it has one (`aqaa.lm.notes`)."""
    cfg = cfg or FormatConfig()
    prompt = build_prompt(vocab, turns, mode, cfg, system)
    last = turns[-1]
    resp, kinds = response(vocab, last.answer_text, last.answer_clips, mode, cfg)
    prompt_kinds = [KIND_CONTEXT] * len(prompt)
    if last.human_note is not None and last.human_codes is not None and len(last.human_codes):
        end = len(prompt) - len(header(vocab, "assistant"))  # one past the turn's <|EOT|>
        n = len(vocab.encode(last.human_note)) + 1
        prompt_kinds[end - n : end] = [KIND_TEXT] * n
    return Example(prompt + resp, prompt_kinds + kinds, task)


# ----- parsing ----------------------------------------------------------------------------


@dataclass
class ParsedResponse:
    """A generated response, split back into its channels."""

    text: str
    sentences: list[Sentence]
    clips: list[np.ndarray]
    complete: bool

    @property
    def styles(self) -> list[str]:
        return [s.style for s in self.sentences]

    @property
    def codes(self) -> np.ndarray:
        """All clips' codes, concatenated (what the vocoder reads)."""
        return np.concatenate(self.clips) if self.clips else np.zeros(0, np.int64)


def parse_response(vocab: Vocab, ids: Sequence[int]) -> ParsedResponse:
    """Inverse of `response`. Takes response ids, or a whole sequence (the part after the last
    `<|BOT|>assistant\\n` is parsed). Tolerates truncation (`complete` is then False)."""
    ids = [int(i) for i in ids]
    head = header(vocab, "assistant")
    for start in range(len(ids) - len(head), -1, -1):
        if ids[start : start + len(head)] == head:
            ids = ids[start + len(head) :]
            break
    text: list[int] = []
    clips: list[np.ndarray] = []
    cur: list[int] | None = None
    text_done = ended = False
    for i in ids:
        if i == EOT_ID:
            ended = True
            break
        if i == TEXT_END_ID:
            text_done = True
        elif vocab.is_text(i) and not text_done:
            text.append(i)
        elif i == AUDIO_START_ID:
            cur = []
        elif i == AUDIO_END_ID and cur is not None:
            clips.append(np.asarray(cur, np.int64))
            cur = None
        elif vocab.is_audio(i) and cur is not None:
            cur.append(vocab.audio_code(i))
    if cur:
        clips.append(np.asarray(cur, np.int64))
    s = vocab.decode(text)
    return ParsedResponse(s, parse_tagged(s) if s.strip() else [], clips, ended and cur is None)


# ----- grammar ----------------------------------------------------------------------------


class GrammarError(ValueError):
    """A token the grammar does not allow at this point."""


# Categories of allowed sets; each maps to one precomputed mask.
_TEXT, _START, _START_OR_EOT, _LING_FIRST, _LING_OR_END, _LING, _SEM, _EOT, _DONE = range(9)


class Grammar:
    """Precomputed masks over the vocabulary for each state of the response grammar."""

    def __init__(self, vocab: Vocab, cfg: FormatConfig | None = None) -> None:
        self.vocab = vocab
        self.cfg = cfg or FormatConfig()
        m = vocab.masks()
        n = vocab.size

        def only(*ids: int) -> np.ndarray:
            x = np.zeros(n, dtype=bool)
            x[list(ids)] = True
            return x

        sets = {
            _TEXT: m["text"] | only(TEXT_END_ID),
            _START: only(AUDIO_START_ID),
            _START_OR_EOT: only(AUDIO_START_ID, EOT_ID),
            _LING_FIRST: m["linguistic"],
            _LING_OR_END: m["linguistic"] | only(AUDIO_END_ID),
            _LING: m["linguistic"],
            _SEM: m["semantic"],
            _EOT: only(EOT_ID),
            _DONE: only(PAD_ID, EOT_ID),
        }
        self.masks = torch.from_numpy(np.stack([sets[k] for k in range(len(sets))]))
        self._np = {k: v for k, v in sets.items()}

    def start(self, mode: Mode) -> GrammarState:
        return GrammarState(self, mode)

    def mask(self, category: int) -> torch.Tensor:
        return self.masks[category]


class GrammarState:
    """Where a response is in the grammar; `allowed()` then `advance(token)` per step."""

    def __init__(self, grammar: Grammar, mode: Mode) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.g = grammar
        self.mode: Mode = mode
        self.text_done = mode == "audio"
        self.in_text = mode != "audio"  # phase: text slot or audio slot
        self.slot = 0  # tokens emitted in the current slot
        self.in_clip = False
        self.clip_pos = 0  # codes emitted in the current clip
        self.n_clips = 0
        self.finished = False

    def category(self) -> int:
        if self.finished:
            return _DONE
        if self.in_text:
            return _TEXT
        if self.mode == "text":  # text ended: only the end of turn
            return _EOT
        if not self.in_clip:
            return _START_OR_EOT if self.text_done and self.n_clips else _START
        r = self.clip_pos % sum(GROUP)
        if r < GROUP[0]:
            if r == 0:
                return _LING_OR_END if self.clip_pos else _LING_FIRST
            return _LING
        return _SEM

    def allowed(self) -> torch.Tensor:
        """Boolean mask over the vocabulary of the tokens allowed next."""
        return self.g.masks[self.category()]

    def is_allowed(self, token: int) -> bool:
        return bool(self.g._np[self.category()][token])

    def advance(self, token: int) -> None:
        token = int(token)
        if not self.is_allowed(token):
            raise GrammarError(f"token {token} not allowed in state {self!r}")
        if self.finished:
            return
        if token == EOT_ID:
            self.finished = True
            return
        cfg = self.g.cfg
        if self.in_text:
            self.slot += 1
            if token == TEXT_END_ID:
                self.text_done = True
            if self.mode != "text" and (token == TEXT_END_ID or self.slot == cfg.text_slot):
                self.in_text, self.slot = False, 0
            elif self.mode == "text" and token == TEXT_END_ID:
                self.in_text = False
            return
        if token == AUDIO_START_ID:
            self.in_clip, self.clip_pos = True, 0
        elif token == AUDIO_END_ID:
            self.in_clip = False
            self.n_clips += 1
        else:
            self.clip_pos += 1
        self.slot += 1
        if self.slot == cfg.audio_slot and not self.text_done:
            self.in_text, self.slot = True, 0

    def __repr__(self) -> str:
        return (
            f"GrammarState(mode={self.mode}, in_text={self.in_text}, slot={self.slot}, "
            f"text_done={self.text_done}, in_clip={self.in_clip}, clip_pos={self.clip_pos}, "
            f"n_clips={self.n_clips}, finished={self.finished})"
        )


def _logits_processor_base() -> type:
    try:
        from transformers import LogitsProcessor

        return LogitsProcessor
    except ImportError:  # pragma: no cover - transformers is a train/serve dependency
        return object


class GrammarLogitsProcessor(_logits_processor_base()):  # type: ignore[misc]
    """Masks disallowed tokens to -inf.

    Works as a transformers `LogitsProcessor` (pass `prompt_len` = the prompt's length; greedy
    or sampling, not beam search) and in a lean loop (call it with the ids so far and the logits).
    Every row of the batch is a response in the same `mode`.
    """

    def __init__(self, grammar: Grammar, mode: Mode, prompt_len: int) -> None:
        self.grammar = grammar
        self.mode: Mode = mode
        self.prompt_len = prompt_len
        self.states: list[GrammarState] | None = None
        self.seen = prompt_len

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.states is None:
            self.states = [self.grammar.start(self.mode) for _ in range(input_ids.shape[0])]
        for row, st in enumerate(self.states):
            for tok in input_ids[row, self.seen :].tolist():
                st.advance(tok)
        self.seen = input_ids.shape[1]
        allowed = torch.stack([st.allowed() for st in self.states]).to(scores.device)
        return scores.masked_fill(~allowed, float("-inf"))
