"""Token shards → training examples for every stage.

A shard is `CORPUS/tokens/{train,valid,test}.jsonl` (written by `aqaa data tokenize`), one dialogue
per line with interleaved audio codes in `[0, 5120)` for each human turn and each answer clip.
Examples are drawn by index from a seeded generator, so the batch of step `s` depends only on
`(seed, s)`: that makes resume and multi-process runs reproducible without saving iterator state.

Tasks:
- pretraining: `continuation` (audio LM on any clip), `asr` (clip → its text), `tts` (text → clip),
  `interleaved` (text → the 10 : 15 text/audio response, i.e. speaking a text), `text_qa` (typed
  question → text answer);
- SFT: `sft_speech` (spoken question, history → text + audio answer) and `sft_text` (→ text answer);
- DPO: pairs of (chosen, rejected) with the same prompt; rejected = another item's answer (wrong
  content) or the right answer with wrong style tags.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aqaa.data.schema import CATEGORIES, Sentence, parse_tagged, tag_length, tag_sentence
from aqaa.data.shards import corpora
from aqaa.data.styles import STYLES
from aqaa.data.tasks import generate
from aqaa.lm.format import (
    KIND_AUDIO,
    KIND_CONTEXT,
    KIND_TEXT,
    ChatTurn,
    Example,
    FormatConfig,
    FormatError,
    Mode,
    audio_block,
    audio_span,
    build_example,
    build_prompt,
    header,
    response,
)
from aqaa.lm.guide import token_fractions, uniform_fractions
from aqaa.lm.spelling import spell_targets
from aqaa.lm.twin import NO_TWIN_CATEGORIES, text_twin
from aqaa.lm.vocab import AUDIO_START_ID, BOT_ID, EOT_ID, TEXT_END_ID, Vocab

SPLITS = ("train", "valid", "test")
PRETRAIN_TASKS = (
    "continuation", "asr", "tts", "interleaved", "text_qa", "generated_qa", "sentences"
)  # fmt: skip
#: Categories whose answer follows from the words alone (typed QA makes sense for them).
TEXT_QA_CATEGORIES = tuple(c for c in CATEGORIES if c != "voice_understanding")


@dataclass
class Clip:
    text: str
    style: str
    codes: np.ndarray

    @property
    def tagged(self) -> str:
        """The clip's sentence with its style tag, as the text channel writes it."""
        return tag_sentence(Sentence(self.text, self.style))


@dataclass
class TokenTurn:
    human_text: str
    human_style: str
    human_codes: np.ndarray
    answer_text: str
    answer_clips: list[Clip]
    accept: list[str] = field(default_factory=list)

    def chat(self, with_audio: bool = True) -> ChatTurn:
        return ChatTurn(
            human_codes=self.human_codes,
            answer_text=self.answer_text,
            answer_clips=[c.codes for c in self.answer_clips] if with_audio else [],
        )


@dataclass
class TokenItem:
    id: str
    split: str
    category: str
    intent: str
    template: str
    turns: list[TokenTurn]

    @classmethod
    def from_dict(cls, d: dict) -> TokenItem:
        turns = [
            TokenTurn(
                human_text=t["human_text"],
                human_style=t.get("human_style", "neutral"),
                human_codes=np.asarray(t["human_codes"], dtype=np.int16),
                answer_text=t.get("answer_text", ""),
                answer_clips=[
                    Clip(c["text"], c.get("style", "neutral"), np.asarray(c["codes"], np.int16))
                    for c in t["answer_clips"]
                ],
                accept=list(t.get("accept", [])),
            )
            for t in d["turns"]
        ]
        meta = (d["id"], d["split"], d["category"], d.get("intent", ""), d.get("template", ""))
        return cls(*meta, turns)


def answered(items: Sequence[TokenItem]) -> list[TokenItem]:
    """The items with an answer in every turn: SFT and DPO data. Babble corpora (speech without
    answers, `aqaa data babble`) serve only the pretraining tasks that need no answer."""
    return [it for it in items if all(t.answer_text for t in it.turns)]


def shard_path(corpus: str | Path, split: str) -> Path:
    return Path(corpus) / "tokens" / f"{split}.jsonl"


def iter_records(corpus: str | Path, split: str) -> Iterator[dict]:
    """Raw JSON records of a token shard (of each corpus in turn, for `a,b`)."""
    paths = [shard_path(c, split) for c in corpora(corpus)]
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"no token shard {path}: run `aqaa data tokenize` first")
    for path in paths:
        with path.open() as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def load_items(corpus: str | Path, split: str, limit: int | None = None) -> list[TokenItem]:
    out = []
    for i, rec in enumerate(iter_records(corpus, split)):
        if limit is not None and i >= limit:
            break
        out.append(TokenItem.from_dict(rec))
    if not out:
        raise ValueError(f"token shard {shard_path(corpus, split)} is empty")
    return out


# ----- pretraining ------------------------------------------------------------------------


@dataclass
class Mixture:
    """Relative weights of the pretraining tasks."""

    continuation: float = 1.0
    asr: float = 1.0
    tts: float = 1.0
    interleaved: float = 1.0
    text_qa: float = 0.5
    generated_qa: float = 1.0
    #: Typed English sentences (`sentences_example`): off unless a run asks for it
    sentences: float = 0.0

    def weights(self) -> list[float]:
        w = [getattr(self, t) for t in PRETRAIN_TASKS]
        if min(w) < 0 or sum(w) <= 0:
            raise ValueError("mixture weights must be non-negative with a positive sum")
        return w


class ExampleSource:
    """Deterministic example sampler: `example(seed, index)` depends on nothing else."""

    def __init__(self, items: Sequence[TokenItem], vocab: Vocab, fmt: FormatConfig, max_len: int):
        if not items:
            raise ValueError("no items")
        self.items = list(items)
        self.vocab = vocab
        self.fmt = fmt
        self.max_len = max_len

    def draw(self, rng: random.Random) -> Example | None:
        raise NotImplementedError

    def example(self, seed: int, index: int, tries: int = 20) -> Example:
        """Example number `index` of the stream for `seed` (retrying unusable draws)."""
        rng = random.Random(f"{seed}:{index}")
        for _ in range(tries):
            try:
                ex = self.draw(rng)
            except FormatError:
                continue
            if ex is not None and 1 < len(ex) <= self.max_len and ex.n_loss:
                return ex
        raise ValueError(
            f"could not draw a usable example in {tries} tries (max_len {self.max_len} too short?)"
        )

    def _clip(
        self, rng: random.Random, items: Sequence[TokenItem] | None = None
    ) -> tuple[str, np.ndarray]:
        """A random (text, codes) pair of `items` (default: this source's): a human question or
        an assistant sentence."""
        item = rng.choice(items or self.items)
        turn = rng.choice(item.turns)
        if rng.random() < 0.5 or not turn.answer_clips:
            return turn.human_text, turn.human_codes
        c = rng.choice(turn.answer_clips)
        return c.tagged, c.codes


def asr_example(
    vocab: Vocab, fmt: FormatConfig, text: str, codes: Sequence[int] | np.ndarray
) -> Example:
    """The ASR task (audio → its transcript), with the spans of its auxiliary losses: spelling
    CTC (`aqaa.lm.spelling`) and guided attention (`aqaa.lm.guide`)."""
    turn = ChatTurn(human_codes=codes, answer_text=text)
    ex = build_example(vocab, [turn], "text", fmt, system=fmt.system_asr, task="asr")
    ex.ctc_span = audio_span(vocab, ex.ids)  # the question's one audio block
    if ex.ctc_span:
        ex.ctc_targets = spell_targets(text)
        said = response_text_positions(ex)
        a, e = ex.ctc_span
        ex.guide_keys, ex.guide_key_fractions = list(range(a, e)), uniform_fractions(e - a)
        ex.guide_queries = [i - 1 for i in said]
        ex.guide_fractions = token_fractions([vocab.decode([ex.ids[i]]) for i in said])
    return ex


def speech_guide(vocab: Vocab, ex: Example, sentences: Sequence[str]) -> Example:
    """Set `ex`'s speaking guide (`aqaa.lm.guide`): the queries that predict its response's audio
    tokens read the text being said. Clip ``i`` says ``sentences[i]`` (tagged, as written).

    The keys are the sentences' text tokens (the response's when it writes them, interleaved or
    SFT; else the prompt's, TTS) without the style tags, which are not said. Positions are
    fractions of the whole answer's audio: clip ``i`` spans its share of the audio tokens, audio
    token ``j`` of ``n`` sits at ``(j + 0.5) / n``, and a sentence's text tokens sit at their
    character centres within their clip's share. Unchanged when the clips and sentences do not
    pair up."""
    clips: list[list[int]] = []
    written: list[int] = []
    # the response starts after the last <|BOT|>; trained text before it is a listening note
    resp0 = max((p for p, t in enumerate(ex.ids) if t == BOT_ID), default=-1)
    for p, (t, k) in enumerate(zip(ex.ids, ex.kinds, strict=True)):
        if k == KIND_AUDIO and t == AUDIO_START_ID:
            clips.append([])
        elif k == KIND_AUDIO and vocab.is_audio(t) and clips:
            clips[-1].append(p)
        elif k == KIND_TEXT and t not in (TEXT_END_ID, EOT_ID) and p > resp0:
            written.append(p)
    text = " ".join(sentences)
    if not written and clips:  # the text is the prompt's: its last occurrence before the audio
        enc = vocab.encode(text)
        first = clips[0][0] if clips[0] else len(ex.ids)
        at = [s for s in range(first - len(enc), -1, -1) if ex.ids[s : s + len(enc)] == enc]
        written = list(range(at[0], at[0] + len(enc))) if at and enc else []
    n = sum(map(len, clips))
    if len(clips) != len(sentences) or not n:
        return ex
    pieces = [vocab.decode([ex.ids[p]]) for p in written]
    char_at = np.cumsum([0, *map(len, pieces)])[:-1]
    full = "".join(pieces)
    keys: list[int] = []
    centres: list[float] = []
    done = cursor = 0  # audio tokens of the clips before, characters of the sentences before
    for clip, sent in zip(clips, (s.strip() for s in sentences), strict=True):
        a = full.find(sent, cursor)
        if a < 0 or not clip:
            return ex
        e = cursor = a + len(sent)
        said = [i for i, c in enumerate(char_at) if a + tag_length(sent) <= c < e]
        fr = token_fractions([pieces[i] for i in said])
        keys += [written[i] for i in said]
        centres += [(done + f * len(clip)) / n for f in fr]
        done += len(clip)
    if not keys:
        return ex
    ex.guide_keys, ex.guide_key_fractions = keys, centres
    ex.guide_queries = [p - 1 for clip in clips for p in clip]
    ex.guide_fractions = uniform_fractions(n)
    ex.guide_speaks = True
    return ex


class PretrainSource(ExampleSource):
    """The pretraining task mixture."""

    def __init__(
        self,
        items: Sequence[TokenItem],
        vocab: Vocab,
        fmt: FormatConfig,
        max_len: int,
        mixture: Mixture | None = None,
    ) -> None:
        super().__init__(items, vocab, fmt, max_len)
        self.mixture = mixture or Mixture()
        self.typed_items = [it for it in self.items if it.category in TEXT_QA_CATEGORIES]
        if not self.typed_items:
            self.typed_items = self.items
        # TTS and interleaved examples speak in the assistant's voice, the only voice the LM
        # ever answers with: human clips would teach it voices it cannot choose from the text
        # (the targets' timbre is unpredictable, so the loss goes to guessing it). Corpora with no
        # answer audio (babble) fall back to the human clips.
        self.spoken = [
            (c.tagged, c.codes) for it in self.items for t in it.turns for c in t.answer_clips
        ]
        #: English sentences for the typed `sentences` task (spoken-sentence corpora)
        self.sentences = [
            t.human_text for it in self.items if it.category == "sentences" for t in it.turns
        ]
        if self.mixture.sentences > 0 and not self.sentences:
            raise ValueError(
                "the sentences task needs a corpus of `aqaa data babble --source sentences`"
            )

    def draw(self, rng: random.Random) -> Example | None:
        task = rng.choices(PRETRAIN_TASKS, weights=self.mixture.weights())[0]
        return self.task_example(task, rng)

    def task_example(self, task: str, rng: random.Random) -> Example | None:
        v, f = self.vocab, self.fmt
        if task == "continuation":
            _, codes = self._clip(rng)
            ids = audio_block(v, codes)[: self.max_len]
            return Example(ids, [KIND_CONTEXT] + [KIND_AUDIO] * (len(ids) - 1), task)
        if task == "asr":
            text, codes = self._clip(rng)
            return asr_example(v, f, text, codes)
        if task in ("tts", "interleaved"):
            text, codes = rng.choice(self.spoken) if self.spoken else self._clip(rng)
            turn = ChatTurn(human_text=text, answer_text=text, answer_clips=[codes])
            mode: Mode = "audio" if task == "tts" else "speech"
            system = f.system_tts if task == "tts" else f.system_interleaved
            ex = build_example(v, [turn], mode, f, system=system, task=task)
            return speech_guide(v, ex, [text])
        if task == "text_qa":
            item = rng.choice(self.typed_items)
            pairs = [(t.human_text, t.answer_text) for t in item.turns]
            return text_qa_example(v, f, pairs, rng, task)
        if task == "generated_qa":
            return generated_qa_example(v, f, rng)
        if task == "sentences":
            text = " ".join(rng.choice(self.sentences) for _ in range(rng.randint(1, 4)))
            return sentences_example(v, text, self.max_len)
        raise ValueError(f"unknown pretraining task {task!r}")


def sentences_example(vocab: Vocab, text: str, max_len: int) -> Example:
    """The `sentences` task: a typed human turn of plain English, learnt word by word.

    Why: the LM's text side only ever saw the task templates, so it has no English to lean on
    when it hears a sentence phrased another way (session 21: open sentences are transcribed at
    88–99% WER). The sentences sit where the model writes its listening notes, in a human turn.
    """
    head = header(vocab, "human")
    ids = [*head, *vocab.encode(text), EOT_ID][:max_len]
    return Example(
        ids, [KIND_CONTEXT] * len(head) + [KIND_TEXT] * (len(ids) - len(head)), "sentences"
    )


def text_qa_example(
    vocab: Vocab, fmt: FormatConfig, pairs: Sequence[tuple[str, str]], rng: random.Random,
    task: str = "text_qa",
) -> Example:  # fmt: skip
    """A dialogue of (question, answer) texts, cut after a random turn, answered in text."""
    turns = [ChatTurn(human_text=q, answer_text=a) for q, a in pairs]
    k = rng.randrange(len(turns))
    return build_example(vocab, turns[: k + 1], "text", fmt, task=task)


def generated_qa_example(vocab: Vocab, fmt: FormatConfig, rng: random.Random) -> Example:
    """The `generated_qa` task: a fresh dialogue from the training templates, all as text."""
    gen = generate(rng.choice(TEXT_QA_CATEGORIES), rng, "train")
    pairs = [(t.human_text, t.answer_text) for t in gen.turns]
    return text_qa_example(vocab, fmt, pairs, rng, "generated_qa")


# ----- SFT --------------------------------------------------------------------------------


class SFTSource(ExampleSource):
    """Spoken question (with history) → text+audio answer, or → text answer.

    `categories` restricts the items (SFT-2's high-quality subset); `multi_style_boost` draws
    items whose answer has several styled clips (marker-preserving concatenation) that much more
    often; `replay` is the fraction of draws from all items regardless of the restriction;
    `asr_replay` the fraction of draws that are the pretraining ASR task (`asr_example`, with its
    spelling-CTC and guided-attention spans), so that fine-tuning keeps the reading it learnt;
    `qa_replay` the fraction that are the text-only `generated_qa` task, so that it keeps what
    its text channel knows; those ASR draws hear every item, answered or not (spoken sentences
    of `aqaa data babble --source sentences`). Items without answer audio (`aqaa data babble
    --source questions`) are answered in the text channel. `text_twins` gives each spoken-question example its typed
    twin (`aqaa.lm.twin`); `notes` has the model write what it heard after each spoken question
    (`aqaa.lm.notes`), trained on the last one.
    """

    def __init__(
        self,
        items: Sequence[TokenItem],
        vocab: Vocab,
        fmt: FormatConfig,
        max_len: int,
        text_answer_fraction: float = 0.3,
        categories: Sequence[str] | None = None,
        multi_style_boost: float = 1.0,
        replay: float = 0.0,
        asr_replay: float = 0.0,
        qa_replay: float = 0.0,
        text_twins: bool = False,
        notes: bool = False,
    ) -> None:
        super().__init__(answered(items), vocab, fmt, max_len)
        #: The ASR replay also hears items without answers (`aqaa data babble --source sentences`)
        self.asr_items = list(items)
        self.text_twins = text_twins
        self.notes = notes
        if min(asr_replay, qa_replay) < 0.0 or asr_replay + qa_replay >= 1.0:
            raise ValueError(
                f"asr_replay and qa_replay must be ≥ 0 with a sum below 1, "
                f"got {asr_replay} and {qa_replay}"
            )
        self.qa_replay = qa_replay
        self.text_answer_fraction = text_answer_fraction
        self.replay = replay
        self.asr_replay = asr_replay
        sub = [it for it in self.items if categories is None or it.category in categories]
        if not sub:
            raise ValueError(f"no items in categories {list(categories or [])}")
        self.subset = sub
        self.subset_w = [multi_style_boost if _multi_style(it) else 1.0 for it in sub]

    def draw(self, rng: random.Random) -> Example | None:
        if self.asr_replay or self.qa_replay:
            u = rng.random()
            if u < self.asr_replay:
                return asr_example(self.vocab, self.fmt, *self._clip(rng, self.asr_items))
            if u < self.asr_replay + self.qa_replay:
                return generated_qa_example(self.vocab, self.fmt, rng)
        if self.replay and rng.random() < self.replay:
            item = rng.choice(self.items)
        else:
            item = rng.choices(self.subset, weights=self.subset_w)[0]
        k = rng.randrange(len(item.turns))
        mode: Mode = "text" if rng.random() < self.text_answer_fraction else "speech"
        if not item.turns[k].answer_clips:  # spoken questions with text answers only
            mode = "text"
        turns = [t.chat(with_audio=True) for t in item.turns[: k + 1]]
        if self.notes:
            for chat, t in zip(turns, item.turns, strict=False):
                chat.human_note = t.human_text
        ex = build_example(self.vocab, turns, mode, self.fmt, task=f"sft_{mode}")
        if mode == "speech":
            speech_guide(self.vocab, ex, [c.tagged for c in item.turns[k].answer_clips])
        if self.text_twins and item.category not in NO_TWIN_CATEGORIES:
            texts = [t.human_text for t in item.turns[: k + 1]]
            ex.twin = text_twin(self.vocab, turns, texts, mode, self.fmt)
        return ex


def _multi_style(item: TokenItem) -> bool:
    return any(len({c.style for c in t.answer_clips}) > 1 for t in item.turns)


# ----- DPO --------------------------------------------------------------------------------


@dataclass
class Pair:
    """A preference pair: two full sequences sharing the prompt."""

    chosen: Example
    rejected: Example
    kind: str  # "content" or "style"


def restyle(answer_text: str, rng: random.Random) -> str | None:
    """The answer with its style tags changed (None if there is nothing to change sensibly).

    Styled sentences get another style or lose the tag; an all-neutral answer gets a tag.
    """
    sents = parse_tagged(answer_text)
    if not sents:
        return None
    names = sorted(STYLES)
    out = []
    styled = [s for s in sents if s.style != "neutral"]
    for s in sents:
        if styled and s.style != "neutral":
            new = rng.choice([n for n in names if n != s.style])
        elif not styled:
            new = rng.choice([n for n in names if n != "neutral"])
        else:
            new = s.style
        out.append(tag_sentence(Sentence(s.text, new)))
    new_text = " ".join(out)
    return None if new_text == answer_text else new_text


class DPOSource:
    """Pairs from corrupted answers: `content` (another item's answer) or `style` (wrong tags).

    Chosen and rejected are speech-mode responses to the same prompt; the rejected one keeps
    the audio of whichever answer its text came from (audio is masked out of DPO anyway). With
    `notes`, every spoken question carries its transcript as the listening note (`aqaa.lm.notes`),
    as a note-taking model's prompts do; the note is context here, not scored.
    """

    def __init__(
        self,
        items: Sequence[TokenItem],
        vocab: Vocab,
        fmt: FormatConfig,
        max_len: int,
        style_fraction: float = 0.5,
        notes: bool = False,
    ) -> None:
        items = answered(items)
        if len(items) < 2:
            raise ValueError("DPO needs at least two items with answers")
        self.notes = notes
        self.items = items
        self.vocab = vocab
        self.fmt = fmt
        self.max_len = max_len
        self.style_fraction = style_fraction

    def _pair(self, rng: random.Random) -> Pair | None:
        item = rng.choice(self.items)
        k = rng.randrange(len(item.turns))
        turns = [t.chat() for t in item.turns[: k + 1]]
        if self.notes:
            for chat, t in zip(turns, item.turns, strict=False):
                chat.human_note = t.human_text
        prompt = build_prompt(self.vocab, turns, "speech", self.fmt)
        good = turns[-1]
        kind = "style" if rng.random() < self.style_fraction else "content"
        if kind == "style":
            text = restyle(good.answer_text, rng)
            if text is None:
                return None
            bad_text, bad_clips = text, good.answer_clips
        else:
            other = rng.choice(self.items)
            bad = rng.choice(other.turns)
            if bad.answer_text == good.answer_text:
                return None
            bad_text, bad_clips = bad.answer_text, [c.codes for c in bad.answer_clips]
        exs = []
        for text, clips in ((good.answer_text, good.answer_clips), (bad_text, bad_clips)):
            ids, kinds = response(self.vocab, text, clips, "speech", self.fmt)
            exs.append(Example(prompt + ids, [KIND_CONTEXT] * len(prompt) + kinds, f"dpo_{kind}"))
        if max(len(e) for e in exs) > self.max_len:
            return None
        return Pair(exs[0], exs[1], kind)

    def pair(self, seed: int, index: int, tries: int = 20) -> Pair:
        rng = random.Random(f"{seed}:{index}")
        for _ in range(tries):
            try:
                p = self._pair(rng)
            except FormatError:
                continue
            if p is not None:
                return p
        raise ValueError(f"could not draw a usable DPO pair in {tries} tries")


def response_text_positions(ex: Example) -> list[int]:
    """Positions of the response's text channel (what DPO scores)."""
    return [i for i, k in enumerate(ex.kinds) if k == KIND_TEXT]


def check_example(vocab: Vocab, ex: Example) -> None:
    """Sanity checks used by tests: ids in range, the response ends with `<|EOT|>`."""
    if any(not 0 <= i < vocab.size for i in ex.ids):
        raise ValueError("id out of range")
    if ex.task != "continuation" and ex.ids[-1] != EOT_ID:
        raise ValueError("a chat example must end with <|EOT|>")


# ----- synthetic shards (tests, benchmarks) -----------------------------------------------


def _fake_codes(rng: random.Random, n_words: int, codes_per_word: int) -> list[int]:
    from aqaa.tokenizer.ids import LINGUISTIC_CODES, SEMANTIC_CODES, interleave

    groups = max(1, n_words * codes_per_word // 5)
    ling = [rng.randrange(LINGUISTIC_CODES) for _ in range(2 * groups)]
    sem = [rng.randrange(SEMANTIC_CODES) for _ in range(3 * groups)]
    return interleave(np.asarray(ling), np.asarray(sem)).tolist()


def synthetic_records(
    n: int, seed: int = 0, split: str = "train", codes_per_word: int = 15
) -> list[dict]:
    """Token-shard records with real task texts and random `[l l s s s]` codes.

    The texts come from the task generators (so tags, categories and multi-turn structure are
    real); the codes are random, `codes_per_word` per word. For tests and benchmarks only.
    """
    from aqaa.data.schema import CATEGORIES
    from aqaa.data.tasks import generate

    rng = random.Random(seed)
    out = []
    for i in range(n):
        item = generate(CATEGORIES[i % len(CATEGORIES)], rng, split)
        turns = []
        for k, t in enumerate(item.turns):
            clips = [
                {
                    "text": s.text,
                    "style": s.style,
                    "codes": _fake_codes(rng, len(s.text.split()), codes_per_word),
                    "audio": f"audio/{split}/{i}/a{k}_{j}.flac",
                }
                for j, s in enumerate(t.answer)
            ]
            turns.append(
                {
                    "human_text": t.human_text,
                    "human_style": t.human.style,
                    "human_voice": "fake",
                    "accept": t.accept,
                    "human_codes": _fake_codes(rng, len(t.human_text.split()), codes_per_word),
                    "answer_text": t.answer_text,
                    "answer_clips": clips,
                }
            )
        out.append(
            {
                "id": f"{split}-{i:05d}",
                "split": split,
                "category": item.category,
                "intent": item.intent,
                "template": item.template,
                "turns": turns,
            }
        )
    return out


def write_synthetic_corpus(
    corpus: str | Path,
    n_train: int = 40,
    n_valid: int = 10,
    seed: int = 0,
    codes_per_word: int = 15,
) -> Path:
    """A corpus directory with `tokens/{train,valid}.jsonl` of synthetic records."""
    corpus = Path(corpus)
    (corpus / "tokens").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("valid", n_valid)):
        recs = synthetic_records(n, seed + (split == "valid"), split, codes_per_word)
        with shard_path(corpus, split).open("w") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")
    return corpus
