"""The report of an evaluation run, and the comparison of two runs.

`write_report(out)` reads `out/results.json` (plus any other results files given, e.g. a cascade
run made elsewhere) and writes `out/report.md` with PNG charts beside it (matplotlib, Agg):

- `accuracy_by_category.png`: content accuracy per category, one bar per system;
- `summary.png`: the accuracy-type summary metrics side by side;
- `latency.png`: time to first audio per system (box plot) and total generation time against
  the seconds of speech produced (the RTF = 1 line marks real time).

`compare(a, b)` lines up the summary and per-category numbers of two results files, for
`aqaa eval compare A B`; `summary_table(runs)` puts the summaries of any number of runs side by
side as one markdown table (an ablation: `aqaa eval table A B C …`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aqaa.eval.acoustics import style_table
from aqaa.eval.runner import METRICS, RESULTS_FILE, load_results

REPORT_FILE = "report.md"
COLORS = {"e2e": "#2b6cb0", "cascade": "#dd6b20"}
#: Summary metrics drawn in `summary.png` (all within [0, 1]).
RATE_METRICS = (
    "content_accuracy",
    "text_accuracy",
    "style_accuracy",
    "style_tag_accuracy",
    "paralinguistic_accuracy",
    "dialogue_accuracy",
)


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "✓" if v else "✗"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _cell(text: Any, limit: int = 90) -> str:
    """Table-safe text: no pipes, newlines, control or replacement characters; shortened."""
    s = str(text if text is not None else "")
    s = "".join(ch if ch.isprintable() and ch != "\ufffd" else " " for ch in s)
    s = " ".join(s.replace("|", "\\|").split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def gather_systems(
    results: dict[str, Any], extra: Sequence[dict[str, Any]] = ()
) -> dict[str, dict[str, Any]]:
    """System name -> its results, from one results file plus others (renamed on a clash)."""
    systems = dict(results.get("systems", {}))
    for k, other in enumerate(extra, start=2):
        for name, res in other.get("systems", {}).items():
            key = name if name not in systems else f"{name} ({k})"
            systems[key] = res
    return systems


# ---- charts ---------------------------------------------------------------------------------------


def _bar_chart(
    path: Path,
    groups: list[str],
    series: dict[str, list[float | None]],
    title: str,
    ylabel: str,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(groups) + 2), 4.0))
    n = max(len(series), 1)
    width = 0.8 / n
    for j, (name, vals) in enumerate(series.items()):
        xs = [i + (j - (n - 1) / 2) * width for i in range(len(groups))]
        ys = [v if v is not None else 0.0 for v in vals]
        bars = ax.bar(xs, ys, width, label=name, color=COLORS.get(name.split(" ")[0]))
        for b, v in zip(bars, vals, strict=True):
            label = "–" if v is None else f"{v:.2f}"
            ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 0.01, label,
                    ha="center", va="bottom", fontsize=7)  # fmt: skip
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _latency_chart(path: Path, systems: dict[str, dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    names, data = [], []
    top = 1.0
    for name, res in systems.items():
        rows = [r for it in res["items"] for r in it["turns"] if not r.get("error")]
        first = [r["timings"].get("first_audio_s") for r in rows]
        first = [v for v in first if v is not None]
        names.append(name if first else f"{name}\n(no audio)")
        data.append(first)
        pts = [
            (r["timings"].get("audio_s"), r["timings"].get("total_s"))
            for r in rows
            if r["timings"].get("audio_s") and r["timings"].get("total_s") is not None
        ]
        if pts:
            xs, ys = zip(*pts, strict=True)
            a2.scatter(xs, ys, s=14, label=name, color=COLORS.get(name.split(" ")[0]), alpha=0.8)
            top = max(top, *xs, *ys)
    a1.boxplot(data, showmeans=True)
    a1.set_xticks(range(1, len(names) + 1))
    a1.set_xticklabels(names)
    a1.set_ylabel("seconds")
    a1.set_title("time to first audio")
    a2.plot([0, top], [0, top], "k--", lw=0.8, label="real time (RTF 1)")
    a2.set_xlabel("seconds of speech")
    a2.set_ylabel("seconds to generate")
    a2.set_title("generation time vs speech")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- the report ------------------------------------------------------------------------------------


def _examples(res: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Up to `n` turns, alternating right and wrong answers, one category at a time."""
    rows = [r for it in res["items"] for r in it["turns"]]
    good = [r for r in rows if r.get("content_correct") or r.get("style_pass")]
    bad = [r for r in rows if r not in good]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for pool in _interleave(good, bad):
        if len(out) >= n:
            break
        if pool["category"] in seen and len(seen) < len({r["category"] for r in rows}):
            continue
        seen.add(pool["category"])
        out.append(pool)
    for r in rows:  # top up when categories ran out
        if len(out) >= n:
            break
        if r not in out:
            out.append(r)
    return out


def _interleave(a: list[Any], b: list[Any]) -> list[Any]:
    out = []
    for i in range(max(len(a), len(b))):
        out += [x[i] for x in (a, b) if i < len(x)]
    return out


def write_report(
    out: str | Path,
    results: dict[str, Any] | None = None,
    extra: Sequence[str | Path] = (),
    examples: int = 6,
) -> Path:
    """Write `out/report.md` and its charts from `out/results.json` (or `results`), adding the
    systems of the `extra` results files. Returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = results if results is not None else load_results(out / RESULTS_FILE)
    systems = gather_systems(res, [load_results(p) for p in extra])
    if not systems:
        raise ValueError(f"no system results in {out / RESULTS_FILE}")
    names = list(systems)
    cats = list(dict.fromkeys(c for s in systems.values() for c in s["per_category"]))
    suite = res.get("suite", {})
    lines = [
        f"# Evaluation: suite `{suite.get('name', '?')}`",
        "",
        f"Written {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}. "
        + "; ".join(
            f"**{n}**: model `{s['model']}`, {s['summary']['items']} items / "
            f"{s['summary']['turns']} turns"
            + (f" (limit {s['limit']})" if s.get("limit") else "")
            + f", {s['summary']['wall_s']} s"
            for n, s in systems.items()
        )
        + ".",
        "",
        "Judge: Whisper base (faster-whisper, int8, greedy) transcribes every spoken answer; "
        "style is measured against piper's neutral rendering of the same words.",
        "",
        "## Summary",
        "",
        "| metric | " + " | ".join(names) + " | meaning |",
        "|---|" + "---|" * len(names) + "---|",
    ]
    for m, meaning in METRICS.items():
        vals = [_fmt(systems[n]["summary"].get(m)) for n in names]
        lines.append(f"| {m} | " + " | ".join(vals) + f" | {meaning} |")
    lines += ["", "![summary](summary.png)", "", "## Per category", ""]
    per_metrics = ("content_accuracy", "style_accuracy", "paralinguistic_accuracy",
                   "consistency_wer", "first_audio_s")  # fmt: skip
    head = [f"{m.replace('_accuracy', '')} {n}" for m in per_metrics for n in names]
    lines += [
        "| category | turns | " + " | ".join(head) + " |",
        "|---|---|" + "---|" * len(head),
    ]
    for c in cats:
        turns = max(systems[n]["per_category"].get(c, {}).get("turns", 0) for n in names)
        vals = [
            _fmt(systems[n]["per_category"].get(c, {}).get(m), 2)
            for m in per_metrics
            for n in names
        ]
        lines.append(f"| {c} | {turns} | " + " | ".join(vals) + " |")
    lines += ["", "![accuracy by category](accuracy_by_category.png)", ""]
    lines += ["## Latency", "", "![latency](latency.png)", ""]
    lines += ["## Examples", ""]
    for n in names:
        lines += [
            f"### {n}",
            "",
            "| item | category | question transcript | answer text | answer transcript | "
            "content | style |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in _examples(systems[n], examples):
            lines.append(
                f"| {r['item']}.{r['turn']} | {r['category']} | "
                f"{_cell(r.get('question_transcript'))} | {_cell(r.get('answer_text'))} | "
                f"{_cell(r.get('answer_transcript') or r.get('error'))} | "
                f"{_fmt(r.get('content_correct'))} | {_fmt(r.get('style_pass'))} |"
            )
        lines.append("")
    lines += ["## Style expectations", "", "Measured against the neutral rendering:", ""]
    lines += ["| style | expectations |", "|---|---|"]
    lines += [f"| {s} | {', '.join(e) or '(not judged)'} |" for s, e in style_table().items()]
    lines.append("")

    by_cat = {
        n: [systems[n]["per_category"].get(c, {}).get("content_accuracy") for c in cats]
        for n in names
    }
    _bar_chart(
        out / "accuracy_by_category.png",
        cats,
        by_cat,
        "content accuracy per category",
        "share correct",
    )
    _bar_chart(
        out / "summary.png",
        [m.replace("_accuracy", "") for m in RATE_METRICS],
        {n: [systems[n]["summary"].get(m) for m in RATE_METRICS] for n in names},
        "summary",
        "share",
    )
    _latency_chart(out / "latency.png", systems)
    path = out / REPORT_FILE
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)
    return path


# ---- comparison -----------------------------------------------------------------------------------


def compare(
    a: dict[str, Any], b: dict[str, Any]
) -> list[tuple[str, str, float | None, float | None, float | None]]:
    """(system, metric, A, B, B − A) for every summary metric and per-category content accuracy,
    for the systems both files hold (or their only systems, if the names differ)."""
    sa, sb = a.get("systems", {}), b.get("systems", {})
    common = [s for s in sa if s in sb]
    pairs = [(s, s) for s in common]
    if not pairs and len(sa) == 1 and len(sb) == 1:
        pairs = [(next(iter(sa)), next(iter(sb)))]
    if not pairs:
        raise ValueError(
            f"nothing to compare: A has {sorted(sa)}, B has {sorted(sb)} (no common system)"
        )
    rows = []
    for x, y in pairs:
        label = x if x == y else f"{x} → {y}"
        ra, rb = sa[x], sb[y]
        for m in METRICS:
            rows.append((label, m, *_diff(ra["summary"].get(m), rb["summary"].get(m))))
        cats = list(dict.fromkeys([*ra["per_category"], *rb["per_category"]]))
        for c in cats:
            va = ra["per_category"].get(c, {}).get("content_accuracy")
            vb = rb["per_category"].get(c, {}).get("content_accuracy")
            rows.append((label, f"{c} content", *_diff(va, vb)))
    return rows


def _diff(va: Any, vb: Any) -> tuple[float | None, float | None, float | None]:
    fa = float(va) if isinstance(va, int | float) else None
    fb = float(vb) if isinstance(vb, int | float) else None
    return fa, fb, (fb - fa if fa is not None and fb is not None else None)


def summary_table(
    runs: Sequence[tuple[str, dict[str, Any]]], system: str = "e2e", digits: int = 3
) -> str:
    """A markdown table: one row per summary metric, one column per (name, results) run, for
    `system`; a run without that system is an error (a missing metric shows as "–")."""
    if not runs:
        raise ValueError("no runs to tabulate")
    for name, data in runs:
        if system not in data.get("systems", {}):
            have = sorted(data.get("systems", {}))
            raise ValueError(f"run {name!r} has no {system!r} results (it has {have})")
    lines = [
        "| metric | " + " | ".join(name for name, _ in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for m in METRICS:
        vals = [_fmt(d["systems"][system]["summary"].get(m), digits) for _, d in runs]
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"
