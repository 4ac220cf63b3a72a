"""Babble: phonetically diverse speech for the tokenizer (`aqaa data babble --out DIR --hours H`).

The dialogue corpus speaks ~1,500 distinct words from templates, so a tokenizer trained on it alone
learns word sequences rather than phones: in session 5 the shipped tokenizer's phone error rate on
*training* voices speaking unseen sentences was 27–39%, and 47–55% on the reserved voices. Babble
utterances are 4–12 words drawn from the system word list (Debian `wamerican`, ~100k words) mixed
with common function words, spoken by the training split's human voices (never the reserved or
held-out ones, `VoiceBank.voices("train")`) with the corpus's prosody jitter and, for a third of
them, an instruction style (fast, slow, high, low, loud, quiet, whisper).

The output has the corpus layout that `aqaa train tokenizer` reads (manifest.jsonl with one human
turn per record, no answers; category "babble"), so `--data c3,babble` trains on both. It is not a
dialogue corpus: the LM and vocoder stages do not use it. Items depend only on (seed, index), so a
killed build resumes and a larger `--hours` extends a smaller one.

**Spoken questions** (`aqaa data babble --source questions`): the same voices and prosody, but
each clip is the first turn of a freshly generated content question (knowledge, reasoning,
language, gaming; training templates only) and its record keeps the text answer and the judge's
accept list. The dialogue corpus hears ~1,000 such questions; the facts the text channel learns
from the unlimited `generated_qa` task (hundreds of countries, animals, numbers) mostly never
reach the LM as audio. These clips let SFT pair each fact with its sound: audio question → text
answer (`SFTSource` answers items without answer audio in the text channel). No answer audio is
rendered, so a clip costs a question's ~2 s of speech.

**Sentences** (`aqaa data babble --source sentences`): real English sentences of 4–14 words from
a text collection (default: Debian `fortunes`, ~8,000 usable sentences over ~8,500 words), for the
LM's ASR task. Session 21 measured that the LM hears the suite's *phrasing* badly even from
training voices (WER 72% on the suite's questions re-voiced by training voices, 46% on training
templates): it transcribes only the sentences its templates make. Random words (`--source
words`) taught it pseudo-words in session 6; sentences keep English word order.

**Voice warps** (`--warp P`): with chance P, a clip of a flite or festival voice is spoken by a
new speaker made from it: formants scaled by α ∈ [0.88, 1.22] and F0 shifted with α (up to ten
semitones, plus jitter), by the same WORLD edit that makes the `~f` voices. Two-thirds of the
corpus comes from those engines' four speakers; the reserved test voices (an HTS woman and a
Scottish man) sound like neither, and the LM hears them at 77–83% WER. Espeak voices are left
alone (610 variants already). The voice id records the warp (`flite:rms~w1.12+4.3`).

**The assistant's voice** (`aqaa data babble --source assistant`): answer sentences spoken by the
assistant voice in their styles, for the vocoder only (`aqaa train vocoder --data c4,voice`).
Session 25 measured that the vocoder's token encoder memorises the dialogue corpus's ~52 minutes of
assistant speech (held-out prior loss 0.165 against 0.092 on training clips, 0.201 on half the
clips), and that the whole intelligibility gap of resynthesis is in the spectral envelope the
encoder predicts. Here the speech costs only the answers: no questions are rendered. Each clip is
one answer sentence of a freshly generated dialogue (every category, training templates) with its
style, or, for `sentence_share` of them, a real sentence from `--text` in such a style (a wider
vocabulary). Sentences split by `sentence_split`, and `--exclude CORPUS` keeps every answer
sentence of that corpus's valid and test splits out, so the vocoder's held-out evaluation never
hears a sentence it trained on. The records have answer clips and no human audio.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aqaa.audio import save_audio
from aqaa.data.corpus import (
    ASSISTANT_RATE,
    HUMAN_RATE,
    _worker_bank,
    _write_json_atomic,
    _write_manifest,
    phonemize,
    read_manifest,
)
from aqaa.data.schema import CATEGORIES, CONTENT_CATEGORIES
from aqaa.data.styles import INSTRUCTION_STYLES, Prosody, style_prosody
from aqaa.data.tasks import generate
from aqaa.data.voices import ASSISTANT_VOICE, VoiceBank

WORD_LIST = Path("/usr/share/dict/words")
TEXT_SOURCE = Path("/usr/share/games/fortunes")
SOURCES = ("words", "questions", "sentences", "assistant")
_WORDS_PER_SECOND = 2.4
_FUNCTION_WORDS = (
    "the a an of and to in is it that for on with as was at by be this from or are not but "
    "have he she they we you i my your his her their our what which who when where how why can "
    "will would should could do does did all some any no one two three more most very so than "
    "then there here up down out over under after before about into just only also"
)
FUNCTION_WORDS = _FUNCTION_WORDS.split()
_WORD_RE = re.compile(r"^[a-z]{2,12}$")


@dataclass
class BabbleConfig:
    out: Path
    hours: float = 1.0
    seed: int = 0
    workers: int = 2
    valid_share: float = 0.03
    words: Path = WORD_LIST
    #: "words": random word strings (tokenizer data); "questions": generated content questions
    #: with their text answers (LM data); "sentences": real sentences from `text` (LM ASR data);
    #: "assistant": answer sentences in the assistant's voice (vocoder data)
    source: str = "words"
    #: Text collection of the "sentences" source: a directory of fortune files or a text file
    text: Path = TEXT_SOURCE
    #: Chance that a flite/festival clip is spoken by a warped speaker (formants and F0)
    warp: float = 0.0
    #: "assistant": share of clips that speak a sentence of `text` instead of a generated answer
    sentence_share: float = 0.3
    #: "assistant": corpora whose valid and test answer sentences are never spoken
    exclude: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if not 0.0 <= self.warp <= 1.0:
            raise ValueError(f"warp must be a chance in [0, 1], got {self.warp}")
        if not 0.0 <= self.sentence_share <= 1.0:
            raise ValueError(f"sentence_share must be in [0, 1], got {self.sentence_share}")


def load_words(path: Path = WORD_LIST) -> list[str]:
    """Lower-case alphabetic words of 2–12 letters (no names, no possessives)."""
    if not path.exists():
        raise FileNotFoundError(
            f"no word list at {path}: install it with `apt-get install wamerican` "
            "(scripts/install.sh does) or pass --words FILE"
        )
    words = sorted({w for w in path.read_text(errors="ignore").split() if _WORD_RE.match(w)})
    if len(words) < 100:
        raise ValueError(f"{path} has only {len(words)} usable words; need at least 100")
    return words


_SENTENCE_RE = re.compile(r"[A-Z][A-Za-z ,']*[a-z][.!?]")


def load_sentences(
    path: Path = TEXT_SOURCE, words: list[str] | None = None, min_sentences: int = 100
) -> list[str]:
    """Clean sentences of 4–14 words from a fortune directory (entries split by `%` lines) or a
    text file: letters, spaces, commas and apostrophes only, every word in the word list (no
    names, no jargon), deduplicated and sorted so that a seed picks the same ones."""
    if not path.exists():
        raise FileNotFoundError(
            f"no text at {path}: install it with `apt-get install fortunes` "
            "(scripts/install.sh does) or pass --text FILE"
        )
    files = (
        sorted(f for f in path.iterdir() if f.is_file() and not f.suffix)
        if path.is_dir()
        else [path]
    )
    known = set(words if words is not None else load_all_words(WORD_LIST))
    out: set[str] = set()
    for f in files:
        for passage in re.split(r"\n%\n", f.read_text(errors="ignore")):
            for s in re.split(r"(?<=[.!?])\s+", " ".join(passage.split())):
                ws = re.findall(r"[A-Za-z']+", s)
                if (
                    _SENTENCE_RE.fullmatch(s)
                    and 4 <= len(ws) <= 14
                    and all(w.lower() in known or w == "I" for w in ws)
                ):
                    out.add(s)
    if len(out) < min_sentences:
        raise ValueError(
            f"{path} has only {len(out)} usable sentences; need at least {min_sentences}"
        )
    return sorted(out)


def sentence_split(sentence: str) -> str:
    """Every sentence belongs to one split by a stable hash (1 in 20 is "valid"), so that
    held-out clips test sentences never heard in training. (Corpus s15 of session 21 was built
    before this rule: its valid clips may repeat training sentences.)"""
    return "valid" if int(hashlib.md5(sentence.encode()).hexdigest()[:8], 16) % 20 == 0 else "train"


def load_all_words(path: Path) -> list[str]:
    """Every lower-case word of the list (the sentence filter's vocabulary, apostrophes kept)."""
    return sorted({w for w in path.read_text(errors="ignore").split() if w.islower()})


def babble_sentence(rng: random.Random, words: list[str]) -> str:
    n = rng.randint(4, 12)
    out = [
        rng.choice(FUNCTION_WORDS) if rng.random() < 0.35 else rng.choice(words) for _ in range(n)
    ]
    return " ".join(out).capitalize() + "."


def plan_babble(index: int, cfg: BabbleConfig, words: list[str], voices: dict) -> dict[str, Any]:
    """Item `index`: text, split, voice and prosody, from (seed, index) alone."""
    rng = random.Random(f"babble/{cfg.seed}/{index}")
    split = "valid" if rng.random() < cfg.valid_share else "train"
    pool = voices[split]
    engine = rng.choice(sorted({v.engine for v in pool}))  # engines first, as the corpus does
    voice = rng.choice(sorted((v for v in pool if v.engine == engine), key=lambda v: v.id))
    style = rng.choice(sorted(INSTRUCTION_STYLES)) if rng.random() < 0.33 else "neutral"
    jitter = Prosody(
        rate=1.0 if style in ("fast", "slow") else rng.uniform(0.88, 1.12),
        pitch=rng.uniform(-2.0, 2.0) if rng.random() < 0.3 else 0.0,
        loudness=rng.uniform(-6.0, 6.0),
    )
    prosody = jitter.combine(INSTRUCTION_STYLES[style])
    warp = None
    if cfg.warp > 0.0 and voice.engine != "espeak" and rng.random() < cfg.warp:
        formant = rng.uniform(0.88, 1.22)
        warp = [round(formant, 2), round(max(-4.0, 45.0 * (formant - 1.0)) + rng.uniform(-2, 2), 1)]
        voice = voice.warped(*warp)
    plan = {
        "id": f"{split}-b{index:07d}",
        "index": index,
        "split": split,
        "category": "babble",
        "voice": voice.id,
        "style": style,
        "prosody": prosody.to_dict(),
    }
    if warp is not None:
        plan["warp"] = warp
    if cfg.source == "words":
        return plan | {"text": babble_sentence(rng, words)}
    if cfg.source == "sentences":
        text = rng.choice(words)
        while sentence_split(text) != split:  # valid clips speak held-out sentences only
            text = rng.choice(words)
        return plan | {"id": f"{split}-s{index:07d}", "category": "sentences", "text": text}
    item = generate(rng.choice(CONTENT_CATEGORIES), rng, "train")
    t = item.turns[0]
    return plan | {
        "id": f"{split}-q{index:07d}",
        "category": item.category,
        "intent": item.intent,
        "template": item.template,
        "text": t.human_text,
        "answer_text": t.answer_text,
        "accept": t.accept,
    }


def held_out_answers(corpora: tuple[Path, ...]) -> set[str]:
    """Every answer sentence of the valid and test splits of `corpora` (`--exclude`)."""
    out: set[str] = set()
    for c in corpora:
        for split in ("valid", "test"):
            for r in read_manifest(c, split):
                out.update(a["text"] for t in r["turns"] for a in t.get("answer_audio", []))
    return out


def plan_assistant(
    index: int, cfg: BabbleConfig, sentences: list[str], excluded: set[str]
) -> dict[str, Any]:
    """Assistant item `index`: one answer sentence (or a `text` sentence) and its style."""
    rng = random.Random(f"assistant/{cfg.seed}/{index}")
    split = "valid" if rng.random() < cfg.valid_share else "train"
    for _ in range(10_000):
        item = generate(rng.choice(CATEGORIES), rng, "train")
        sent = rng.choice([s for t in item.turns for s in t.answer])
        text = rng.choice(sentences) if rng.random() < cfg.sentence_share else sent.text
        if sentence_split(text) == split and text not in excluded:
            break
    else:
        raise ValueError(f"no {split} sentence outside --exclude found for item {index}")
    return {
        "id": f"{split}-v{index:07d}",
        "index": index,
        "split": split,
        "category": "assistant",
        "voice": ASSISTANT_VOICE,
        "style": sent.style,
        "prosody": style_prosody(sent.style).to_dict(),
        "text": text,
    }


def _render_assistant(p: dict[str, Any], out: Path) -> dict[str, Any]:
    x = _worker_bank().render(
        p["text"], p["voice"], Prosody(**p["prosody"]), sample_rate=ASSISTANT_RATE
    )
    rel = Path("audio") / p["split"] / f"{p['id']}.flac"
    save_audio(out / rel, x, ASSISTANT_RATE)
    clip = {
        "text": p["text"],
        "style": p["style"],
        "path": str(rel),
        "duration": round(len(x) / ASSISTANT_RATE, 3),
        "phonemes": phonemize(p["text"]),
    }
    turn = {"human_text": "", "human": {"style": "neutral"}, "answer_text": p["text"]}
    keys = ("id", "index", "split", "category")
    return {**{k: p[k] for k in keys}, "turns": [turn | {"answer_audio": [clip]}]}


def clip_seconds(record: dict[str, Any]) -> float:
    """Seconds of speech in a babble record: its question, or its answer clips."""
    t = record["turns"][0]
    if "human_audio" in t:
        return t["human_audio"]["duration"]
    return sum(c["duration"] for c in t["answer_audio"])


def render_babble(args: tuple[dict[str, Any], str]) -> tuple[dict | None, str | None]:
    """Render one planned item (or reuse it); returns (record or None, error or None)."""
    p, out_s = args
    out = Path(out_s)
    record_path = out / "items" / f"{p['id']}.json"
    if record_path.exists():
        return json.loads(record_path.read_text()), None
    try:
        if p["category"] == "assistant":
            record = _render_assistant(p, out)
            _write_json_atomic(record_path, record)
            return record, None
        bank = _worker_bank()
        voice = p["voice"]
        if "warp" in p:
            voice = bank.get(voice.split("~")[0]).warped(*p["warp"])
        x = bank.render(p["text"], voice, Prosody(**p["prosody"]), sample_rate=HUMAN_RATE)
        rel = Path("audio") / p["split"] / f"{p['id']}.flac"
        save_audio(out / rel, x, HUMAN_RATE)
        answer = {k: p[k] for k in ("answer_text", "accept") if k in p}
        record = {
            "id": p["id"],
            "index": p["index"],
            "split": p["split"],
            "category": p["category"],
            **{k: p[k] for k in ("intent", "template") if k in p},
            "turns": [
                {
                    **answer,
                    "human_text": p["text"],
                    "human": {"style": p["style"]},
                    "human_audio": {
                        "path": str(rel),
                        "voice": p["voice"],
                        "prosody": p["prosody"],
                        "duration": round(len(x) / HUMAN_RATE, 3),
                        "phonemes": phonemize(p["text"]),
                    },
                    "answer_audio": [],
                }
            ],
        }
    except Exception as e:  # one bad item must not stop a long build
        return None, f"{p['id']}: {type(e).__name__}: {e}"
    _write_json_atomic(record_path, record)
    return record, None


def _voice(record: dict[str, Any]) -> str:
    t = record["turns"][0]
    return t["human_audio"]["voice"] if "human_audio" in t else ASSISTANT_VOICE


def _text(record: dict[str, Any]) -> str:
    t = record["turns"][0]
    return t["human_text"] or t["answer_text"]


def build_babble(cfg: BabbleConfig, progress: bool = True) -> dict[str, Any]:
    """Render (or extend) a babble set of about `cfg.hours` hours; returns its summary."""
    import multiprocessing as mp

    from tqdm import tqdm

    if cfg.source == "words":
        words = load_words(cfg.words)
    elif cfg.source in ("sentences", "assistant"):
        # the plan draws sentences where it would draw words
        words = load_sentences(cfg.text, load_all_words(cfg.words))
        if {sentence_split(t) for t in words} != {"train", "valid"}:
            raise ValueError(f"{cfg.text}: too few sentences to hold some out for validation")
    else:
        words = []
    bank = VoiceBank.discover()
    voices = {s: bank.voices(s) for s in ("train", "valid")}
    if not voices["train"] or not voices["valid"]:
        raise RuntimeError("no training or validation voices are installed (see aqaa.data.voices)")
    out = Path(cfg.out)
    (out / "items").mkdir(parents=True, exist_ok=True)
    excluded = held_out_answers(cfg.exclude)
    plan, seconds = [], 0.0
    while seconds < cfg.hours * 3600:
        if cfg.source == "assistant":
            p = plan_assistant(len(plan), cfg, words, excluded)
        else:
            p = plan_babble(len(plan), cfg, words, voices)
        plan.append(p)
        seconds += len(p["text"].split()) / _WORDS_PER_SECOND / p["prosody"]["rate"] + 0.4
    records, errors = [], []
    jobs = [(p, str(out)) for p in plan]
    with mp.get_context("fork").Pool(cfg.workers) as pool:
        for rec, err in tqdm(
            pool.imap(render_babble, jobs, chunksize=4),
            total=len(jobs),
            disable=not progress,
            desc="babble",
            unit="clip",
        ):
            if rec is not None:
                records.append(rec)
            else:
                errors.append(err)
    _write_manifest(out, records)
    hours = sum(clip_seconds(r) for r in records) / 3600
    summary = {
        "config": {
            **cfg.__dict__,
            "out": str(cfg.out),
            "words": str(cfg.words),
            "text": str(cfg.text),
            "exclude": [str(c) for c in cfg.exclude],
        },
        "kind": {"words": "babble"}.get(cfg.source, cfg.source),
        "clips": len(records),
        "failed": len(errors),
        "hours": round(hours, 3),
        "voices": len({_voice(r) for r in records}),
        "distinct_words": len({w for r in records for w in _text(r).lower().strip(".").split()}),
    }
    _write_json_atomic(out / "build.json", summary)
    if errors:
        (out / "errors.txt").write_text("\n".join(errors) + "\n")
    return summary
