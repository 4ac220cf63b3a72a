"""Build the synthetic spoken-dialogue corpus (`aqaa data build`).

Two phases, both deterministic for a seed:

1. **Plan** (`plan_corpus`): draw dialogue items from the task generators, a split for each, and for
   every human turn a voice and a prosody, until the estimated speech reaches the requested hours.
   Item `i` depends only on `(seed, i)`, so a plan for 0.1 h is the first part of a plan for 10 h.
   The plan is written to `plan.jsonl`; a rerun with the same seed reuses it.
2. **Render** (`build_corpus`): each item is rendered by a worker process into FLAC files (human turns at
   16 kHz for the tokenizers, assistant clips at 24 kHz for the vocoder), with espeak-ng IPA phonemes
   of every transcript, and recorded in `items/<id>.json`. An interrupted build resumes by skipping
   items whose record exists; an item whose engine fails is logged to `errors.jsonl` and skipped.
   Finally `manifest.jsonl` (all splits, in plan order) and `build.json` (config and throughput)
   are written.

Splits hold out both phrasings (each template belongs to one split, see `aqaa.data.tasks`) and
voices (see `aqaa.data.voices`); the reserved test voices appear only in the test split.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import random
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aqaa.audio import save_audio
from aqaa.data import prosody as prosody_mod
from aqaa.data.schema import CATEGORIES, DialogueItem, HumanSpec
from aqaa.data.styles import (
    CREATIVE_STYLES,
    EMOTION_STYLES,
    INSTRUCTION_STYLES,
    PERSONA_STYLES,
    Prosody,
    style_prosody,
)
from aqaa.data.tasks import generate_traced
from aqaa.data.voices import ASSISTANT_VOICE, Voice, VoiceBank

log = logging.getLogger(__name__)

HUMAN_RATE = 16000
ASSISTANT_RATE = 24000
#: Speech rate used to estimate durations while planning (TTS voices speak ~2.7 words/s).
_WORDS_PER_SECOND = 2.7
#: Absolute median-F0 targets (Hz) for "is my voice high or low?" items.
_HIGH_F0 = (230.0, 300.0)
_LOW_F0 = (80.0, 110.0)


@dataclass
class BuildConfig:
    out: Path
    hours: float = 0.05
    seed: int = 0
    workers: int = 2
    split_weights: dict[str, float] = field(
        default_factory=lambda: {"train": 0.85, "valid": 0.05, "test": 0.10}
    )
    #: Share of test-split human turns spoken by the reserved evaluation voices.
    reserved_share: float = 0.3
    category_weights: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(CATEGORIES, 1.0)
    )

    def plan_key(self) -> dict[str, Any]:
        """What the plan depends on (workers and output dir do not change it)."""
        d = asdict(self)
        d.pop("out")
        d.pop("workers")
        d.pop("hours")
        return json.loads(json.dumps(d))


@dataclass
class PlannedTurn:
    voice: str
    prosody: dict[str, Any]
    #: For pitch-labelled items: the absolute median F0 (Hz) the rendering must have.
    target_f0: float | None = None


@dataclass
class PlannedItem:
    index: int
    split: str
    item: dict[str, Any]
    turns: list[PlannedTurn]

    @property
    def id(self) -> str:
        return f"{self.split}-{self.index:07d}"


def _estimate_seconds(item: DialogueItem) -> float:
    words = sum(len(t.human_text.split()) + len(t.answer_plain.split()) for t in item.turns)
    return words / _WORDS_PER_SECOND + 0.5 * len(item.turns)


def _human_prosody(spec: HumanSpec, rng: random.Random) -> Prosody:
    """Random variety for an ordinary speaker plus the style the item asks for.

    Jitter never crosses a label: speed items keep their preset rate, pitch items get their F0
    from `target_f0`, whisper stays the only unvoiced style.
    """
    jitter = Prosody(
        rate=1.0 if spec.speed else rng.uniform(0.88, 1.12),
        pitch=rng.uniform(-2.0, 2.0) if spec.pitch is None and rng.random() < 0.3 else 0.0,
        loudness=rng.uniform(-6.0, 6.0),
    )
    return jitter.combine(style_prosody(spec.style))


def _pick_voice(
    pools: dict[tuple[str, str | None, bool], list[Voice]],
    split: str,
    spec: HumanSpec,
    rng: random.Random,
    reserved_share: float,
) -> Voice:
    """An engine first (uniformly), then one of its voices: espeak's hundreds of variants would
    otherwise drown the few flite and festival voices."""
    use_reserved = split == "test" and rng.random() < reserved_share
    pool = pools[(split, spec.gender, use_reserved)] or pools[(split, spec.gender, False)]
    if not pool:
        raise RuntimeError(f"no {spec.gender or ''} voice for the {split} split is installed")
    engine = rng.choice(sorted({v.engine for v in pool}))
    return rng.choice([v for v in pool if v.engine == engine])


def _voice_pools(bank: VoiceBank) -> dict[tuple[str, str | None, bool], list[Voice]]:
    pools: dict[tuple[str, str | None, bool], list[Voice]] = {}
    for split in ("train", "valid", "test"):
        for gender in (None, "male", "female"):
            all_v = bank.voices(
                split, purpose="eval" if split == "test" else "train", gender=gender
            )
            pools[(split, gender, True)] = sorted((v for v in all_v if v.reserved), key=_vid)
            pools[(split, gender, False)] = sorted((v for v in all_v if not v.reserved), key=_vid)
    return pools


def _vid(v: Voice) -> str:
    return v.id


#: Which category speaks each non-neutral answer style (for the coverage schedule).
_STYLE_CATEGORY: dict[str, str] = {
    **{s: "voice_instruction" for s in INSTRUCTION_STYLES if s != "neutral"},
    **{s: "emotion" for s in EMOTION_STYLES},
    **{s: "roleplay" for s in PERSONA_STYLES},
    **{s: "creativity" for s in CREATIVE_STYLES},
}


def coverage_schedule(categories: list[str]) -> list[tuple[str, str | None]]:
    """The first items of every plan: each answer style once, then each remaining category.

    So even a tiny corpus (a few minutes) holds every category and every style preset.
    """
    slots: list[tuple[str, str | None]] = [
        (c, s) for s, c in _STYLE_CATEGORY.items() if c in categories
    ]
    covered = {c for c, _ in slots}
    return slots + [(c, None) for c in categories if c not in covered]


def plan_item(index: int, cfg: BuildConfig, pools: dict) -> PlannedItem:
    """Item `index` of the plan: a function of (config, index) alone."""
    rng = random.Random(f"aqaa-corpus:{cfg.seed}:{index}")
    splits, sw = zip(*cfg.split_weights.items(), strict=True)
    cats, cw = zip(*cfg.category_weights.items(), strict=True)
    schedule = coverage_schedule([c for c, w in cfg.category_weights.items() if w > 0])
    style: str | None = None
    if index < len(schedule):
        # Coverage items are training items: the held-out splits get theirs from the sampler.
        category, style = schedule[index]
        split = "train"
    else:
        split = rng.choices(splits, sw)[0]
        category = rng.choices(cats, cw)[0]
    for _ in range(500):  # rejection-sample until the scheduled style is spoken
        item, trace = generate_traced(category, rng, split)
        if style is None or any(s.style == style for t in item.turns for s in t.answer):
            break
    else:
        raise RuntimeError(f"the {category} generator never produced the style {style!r}")
    item.id = f"{split}-{index:07d}"
    item.templates, item.facts = trace.templates, trace.facts
    # One speaker per dialogue: later turns keep the first turn's voice.
    voice: Voice | None = None
    turns = []
    for turn in item.turns:
        voice = voice if voice and not turn.human.gender else None
        voice = voice or _pick_voice(pools, split, turn.human, rng, cfg.reserved_share)
        target = None
        if turn.human.pitch is not None:
            target = rng.uniform(*(_HIGH_F0 if turn.human.pitch == "high" else _LOW_F0))
        p = _human_prosody(turn.human, rng)
        turns.append(PlannedTurn(voice.id, p.to_dict(), target))
    return PlannedItem(index, split, item.to_dict(), turns)


def plan_corpus(cfg: BuildConfig, bank: VoiceBank) -> list[PlannedItem]:
    pools = _voice_pools(bank)
    budget = cfg.hours * 3600.0
    plan: list[PlannedItem] = []
    total = 0.0
    while total < budget:
        p = plan_item(len(plan), cfg, pools)
        total += _estimate_seconds(DialogueItem.from_dict(p.item))
        plan.append(p)
    return plan


# ---------------------------------------------------------------------------------------------
# rendering


def phonemize(text: str) -> str:
    """espeak-ng IPA (en-us) of a transcript, words separated by spaces."""
    out = subprocess.run(
        ["espeak-ng", "-q", "--ipa", "-v", "en-us", "--stdin"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"espeak-ng phonemizer failed: {out.stderr.strip()[:200]}")
    return " ".join(out.stdout.split())


def _render_human(bank: VoiceBank, text: str, split: str, pt: PlannedTurn) -> np.ndarray:
    purpose = "eval" if split == "test" else "train"
    p = Prosody(**pt.prosody)
    x = bank.render(text, pt.voice, p, sample_rate=HUMAN_RATE, purpose=purpose)
    if pt.target_f0 is not None:
        f0 = prosody_mod.median_f0(x, HUMAN_RATE)
        if f0 > 0:
            shift = 12.0 * np.log2(pt.target_f0 / f0)
            x = prosody_mod.world_edit(x, HUMAN_RATE, pitch=float(shift))
            x = prosody_mod.set_level(x, HUMAN_RATE, p.loudness)
    return x


_BANK: VoiceBank | None = None


def _worker_bank() -> VoiceBank:
    global _BANK
    if _BANK is None:
        _BANK = VoiceBank.discover()
    return _BANK


def render_item(args: tuple[PlannedItem, str]) -> tuple[str, dict | None, str | None]:
    """Render one planned item into `out`; returns (id, record or None, error or None)."""
    p, out_s = args
    out = Path(out_s)
    record_path = out / "items" / f"{p.id}.json"
    if record_path.exists():
        return p.id, json.loads(record_path.read_text()), None
    bank = _worker_bank()
    try:
        item = DialogueItem.from_dict(p.item)
        rel = Path("audio") / p.split / p.id
        turns = []
        for k, (turn, pt) in enumerate(zip(item.turns, p.turns, strict=True)):
            h = _render_human(bank, turn.human_text, p.split, pt)
            save_audio(out / rel / f"h{k}.flac", h, HUMAN_RATE)
            clips = []
            for j, sent in enumerate(turn.answer):
                a = bank.render(
                    sent.text,
                    ASSISTANT_VOICE,
                    style_prosody(sent.style),
                    sample_rate=ASSISTANT_RATE,
                )
                save_audio(out / rel / f"a{k}_{j}.flac", a, ASSISTANT_RATE)
                clips.append(
                    {
                        "text": sent.text,
                        "style": sent.style,
                        "path": str(rel / f"a{k}_{j}.flac"),
                        "duration": round(len(a) / ASSISTANT_RATE, 3),
                        "phonemes": phonemize(sent.text),
                    }
                )
            turns.append(
                {
                    "human_text": turn.human_text,
                    "human": asdict(turn.human),
                    "accept": turn.accept,
                    "answer_text": turn.answer_text,
                    "human_audio": {
                        "path": str(rel / f"h{k}.flac"),
                        "voice": pt.voice,
                        "prosody": pt.prosody,
                        "target_f0": pt.target_f0,
                        "duration": round(len(h) / HUMAN_RATE, 3),
                        "phonemes": phonemize(turn.human_text),
                    },
                    "answer_audio": clips,
                }
            )
        record = {
            "id": p.id,
            "index": p.index,
            "split": p.split,
            "category": item.category,
            "intent": item.intent,
            "template": item.template,
            "templates": item.templates,
            "facts": item.facts,
            "turns": turns,
        }
    except Exception as e:  # one bad item must not stop a long build
        return p.id, None, f"{type(e).__name__}: {e}"
    _write_json_atomic(record_path, record)
    return p.id, record, None


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, ensure_ascii=False))
    os.replace(tmp, path)


def _load_or_write_plan(cfg: BuildConfig, bank: VoiceBank) -> list[PlannedItem]:
    """Reuse the plan of an earlier (interrupted) build, or plan anew.

    Item i depends on (config, i) only, so a new `--hours` extends or shortens the same plan and
    every item already rendered stays valid. A directory built with another seed or mixture is
    refused rather than silently mixed.
    """
    plan_path = cfg.out / "plan.jsonl"
    key_path = cfg.out / "plan_key.json"
    key = cfg.plan_key()
    if key_path.exists():
        old = json.loads(key_path.read_text())
        if old != key:
            raise ValueError(
                f"{cfg.out} holds a corpus built with another configuration ({old}); "
                "use a new --out directory"
            )
        rows = [json.loads(line) for line in plan_path.read_text().splitlines() if line]
        if len(rows) and rows[-1].get("hours") == cfg.hours:
            return [
                PlannedItem(
                    r["index"], r["split"], r["item"], [PlannedTurn(**t) for t in r["turns"]]
                )
                for r in rows
            ]
    plan = plan_corpus(cfg, bank)
    cfg.out.mkdir(parents=True, exist_ok=True)
    tmp = plan_path.with_suffix(".tmp")
    with tmp.open("w") as f:
        for p in plan:
            f.write(json.dumps({**asdict(p), "hours": cfg.hours}, ensure_ascii=False) + "\n")
    os.replace(tmp, plan_path)
    _write_json_atomic(key_path, key)
    return plan


def build_corpus(cfg: BuildConfig, progress: bool = True) -> dict[str, Any]:
    """Plan (or reload the plan) and render every item not rendered yet. Returns the summary."""
    from tqdm import tqdm

    bank = VoiceBank.discover()
    if ASSISTANT_VOICE not in bank:
        raise RuntimeError(
            "the assistant voice (piper joe) is not installed: pip install 'aqaa[data]'"
        )
    cfg.out.mkdir(parents=True, exist_ok=True)
    plan = _load_or_write_plan(cfg, bank)
    todo = [p for p in plan if not (cfg.out / "items" / f"{p.id}.json").exists()]
    log.info("plan: %d items, %d already rendered", len(plan), len(plan) - len(todo))

    t0 = time.time()
    errors = 0
    rendered_seconds = 0.0
    jobs = [(p, str(cfg.out)) for p in todo]
    ctx = mp.get_context("fork")
    with (
        ctx.Pool(cfg.workers) if cfg.workers > 1 else _InlinePool() as pool,
        (cfg.out / "errors.jsonl").open("a") as errf,
        tqdm(
            total=len(plan), initial=len(plan) - len(todo), disable=not progress, unit="item"
        ) as bar,
    ):
        for item_id, record, err in pool.imap_unordered(render_item, jobs, chunksize=1):
            if err:
                errors += 1
                errf.write(json.dumps({"id": item_id, "error": err}) + "\n")
                errf.flush()
                log.warning("skipped %s: %s", item_id, err)
            elif record:
                rendered_seconds += _record_seconds(record)
            bar.update(1)
    wall = time.time() - t0
    records = [
        json.loads(path.read_text())
        for p in plan
        if (path := cfg.out / "items" / f"{p.id}.json").exists()
    ]
    _write_manifest(cfg.out, records)
    summary = {
        "config": {**asdict(cfg), "out": str(cfg.out)},
        "items_planned": len(plan),
        "items_ok": len(records),
        "items_failed_this_run": errors,
        "hours_total": round(sum(map(_record_seconds, records)) / 3600, 4),
        "rendered_this_run_seconds": round(rendered_seconds, 3),
        "wall_seconds_this_run": round(wall, 1),
        "audio_hours_per_wall_hour": round(rendered_seconds / wall, 2) if wall > 0 else None,
        "bytes_on_disk": _dir_size(cfg.out / "audio"),
    }
    _write_json_atomic(cfg.out / "build.json", summary)
    return summary


class _InlinePool:
    """`workers=1`: same interface as a Pool, no processes (easier to debug and to test)."""

    def __enter__(self) -> _InlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap_unordered(self, fn, jobs, chunksize: int = 1):
        return map(fn, jobs)


def _record_seconds(r: dict) -> float:
    return sum(
        t["human_audio"]["duration"] + sum(c["duration"] for c in t["answer_audio"])
        for t in r["turns"]
    )


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _write_manifest(out: Path, records: list[dict]) -> None:
    tmp = out / "manifest.jsonl.tmp"
    with tmp.open("w") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, out / "manifest.jsonl")


def read_manifest(corpus: Path | str, split: str | None = None) -> list[dict]:
    """Records of a built corpus, optionally of one split."""
    path = Path(corpus) / "manifest.jsonl"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: is {corpus} a corpus built by `aqaa data build`?"
        )
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if split is None or r["split"] == split]
