"""Corpus statistics (`aqaa data stats DIR`): counts, hours and a duration-histogram plot."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from aqaa.data.corpus import read_manifest


def corpus_stats(corpus: Path | str) -> dict[str, Any]:
    """Counts per split, category, style and voice, and hours per split and side (a turn of an
    assistant-voice set, `aqaa data babble --source assistant`, has no human audio)."""
    records = read_manifest(corpus)
    hours: dict[str, dict[str, float]] = defaultdict(lambda: {"human": 0.0, "assistant": 0.0})
    per_cat: Counter[str] = Counter()
    per_split: Counter[str] = Counter()
    answer_styles: Counter[str] = Counter()
    human_styles: Counter[str] = Counter()
    voices: Counter[str] = Counter()
    engines: Counter[str] = Counter()
    templates: dict[str, set[str]] = defaultdict(set)
    durations: dict[str, list[float]] = {"human": [], "assistant": []}
    turns = 0
    for r in records:
        per_cat[r["category"]] += 1
        per_split[r["split"]] += 1
        if r.get("template"):
            templates[r["split"]].add(r["template"])
        for t in r["turns"]:
            turns += 1
            h = t.get("human_audio")
            if h is not None:
                hours[r["split"]]["human"] += h["duration"] / 3600
                durations["human"].append(h["duration"])
                voices[h["voice"]] += 1
                engines[h["voice"].split(":")[0]] += 1
                human_styles[t["human"]["style"]] += 1
            for c in t["answer_audio"]:
                hours[r["split"]]["assistant"] += c["duration"] / 3600
                durations["assistant"].append(c["duration"])
                answer_styles[c["style"]] += 1
    return {
        "items": len(records),
        "turns": turns,
        "per_split": dict(per_split),
        "per_category": dict(sorted(per_cat.items())),
        "answer_styles": dict(answer_styles.most_common()),
        "human_styles": dict(human_styles.most_common()),
        "engines": dict(engines.most_common()),
        "distinct_voices": len(voices),
        "top_voices": dict(voices.most_common(10)),
        "templates_per_split": {k: len(v) for k, v in sorted(templates.items())},
        "hours": {k: {s: round(x, 4) for s, x in v.items()} for k, v in sorted(hours.items())},
        "hours_total": round(sum(sum(v.values()) for v in hours.values()), 4),
        "durations": durations,
    }


def plot_durations(stats: dict[str, Any], path: Path) -> Path:
    """Histograms of human-turn and assistant-clip durations, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
    for ax, side in zip(axes, ("human", "assistant"), strict=True):
        d = stats["durations"][side]
        ax.hist(d, bins=30, color="#4477aa" if side == "human" else "#cc6677")
        ax.set_title(f"{side} clips (n={len(d)}, {sum(d) / 3600:.2f} h)")
        ax.set_xlabel("duration (s)")
        ax.set_ylabel("clips")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
