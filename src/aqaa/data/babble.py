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
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aqaa.audio import save_audio
from aqaa.data.corpus import (
    HUMAN_RATE,
    _worker_bank,
    _write_json_atomic,
    _write_manifest,
    phonemize,
)
from aqaa.data.schema import CONTENT_CATEGORIES
from aqaa.data.styles import INSTRUCTION_STYLES, Prosody
from aqaa.data.tasks import generate
from aqaa.data.voices import VoiceBank

WORD_LIST = Path("/usr/share/dict/words")
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
    #: with their text answers (LM data)
    source: str = "words"

    def __post_init__(self) -> None:
        if self.source not in ("words", "questions"):
            raise ValueError(f"source must be 'words' or 'questions', got {self.source!r}")


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
    plan = {
        "id": f"{split}-b{index:07d}",
        "index": index,
        "split": split,
        "category": "babble",
        "voice": voice.id,
        "style": style,
        "prosody": prosody.to_dict(),
    }
    if cfg.source == "words":
        return plan | {"text": babble_sentence(rng, words)}
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


def render_babble(args: tuple[dict[str, Any], str]) -> tuple[dict | None, str | None]:
    """Render one planned item (or reuse it); returns (record or None, error or None)."""
    p, out_s = args
    out = Path(out_s)
    record_path = out / "items" / f"{p['id']}.json"
    if record_path.exists():
        return json.loads(record_path.read_text()), None
    try:
        x = _worker_bank().render(
            p["text"], p["voice"], Prosody(**p["prosody"]), sample_rate=HUMAN_RATE
        )
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


def build_babble(cfg: BabbleConfig, progress: bool = True) -> dict[str, Any]:
    """Render (or extend) a babble set of about `cfg.hours` hours; returns its summary."""
    import multiprocessing as mp

    from tqdm import tqdm

    words = load_words(cfg.words) if cfg.source == "words" else []
    bank = VoiceBank.discover()
    voices = {s: bank.voices(s) for s in ("train", "valid")}
    if not voices["train"] or not voices["valid"]:
        raise RuntimeError("no training or validation voices are installed (see aqaa.data.voices)")
    out = Path(cfg.out)
    (out / "items").mkdir(parents=True, exist_ok=True)
    plan, seconds = [], 0.0
    while seconds < cfg.hours * 3600:
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
    hours = sum(r["turns"][0]["human_audio"]["duration"] for r in records) / 3600
    summary = {
        "config": {**cfg.__dict__, "out": str(cfg.out), "words": str(cfg.words)},
        "kind": "babble" if cfg.source == "words" else "questions",
        "clips": len(records),
        "failed": len(errors),
        "hours": round(hours, 3),
        "voices": len({r["turns"][0]["human_audio"]["voice"] for r in records}),
        "distinct_words": len(
            {w for r in records for w in r["turns"][0]["human_text"].lower().strip(".").split()}
        ),
    }
    _write_json_atomic(out / "build.json", summary)
    if errors:
        (out / "errors.txt").write_text("\n".join(errors) + "\n")
    return summary
