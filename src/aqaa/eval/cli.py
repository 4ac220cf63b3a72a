"""`aqaa eval run | compare | make-suite`: the end-to-end evaluation from the command line.

Registered on the `eval` group of `aqaa.cli` by `register(eval_app)`. Errors a user can fix (an
unknown suite, a missing model, bad options) print one line and exit with code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)  # an error stays on one line


def _fail(msg: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {msg}", highlight=False)
    return typer.Exit(code=2)


def run(
    out: Annotated[Path, typer.Option(help="Output directory (results.json, report.md, audio).")],
    model: Annotated[
        Path | None, typer.Option(help="Model directory (default: the shipped model).")
    ] = None,
    suite: Annotated[str, typer.Option(help="A shipped suite name or a suite JSON path.")] = (
        "default"
    ),
    system: Annotated[str, typer.Option(help="e2e, cascade or both.")] = "both",
    limit: Annotated[
        int | None, typer.Option(help="Only the first N items (interleaved over categories).")
    ] = None,
    max_new_tokens: Annotated[
        int, typer.Option(help="Cap on tokens per answer (600 ≈ 13 s of speech).")
    ] = 600,
    dnsmos: Annotated[bool, typer.Option(help="Score quality with DNSMOS (~1 s/answer).")] = True,
    cascade_styles: Annotated[
        bool, typer.Option(help="The cascade's TTS speaks (style) tags with their prosody.")
    ] = True,
    threads: Annotated[int | None, typer.Option(help="torch threads (default: torch's).")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed of the e2e audio channel.")] = 0,
    audio_temperature: Annotated[
        float, typer.Option(help="Temperature of the e2e audio channel (0 = greedy).")
    ] = 0.7,
    top_k: Annotated[int, typer.Option(help="Top-k of the e2e sampler (0 = off).")] = 50,
    top_p: Annotated[float, typer.Option(help="Top-p of the e2e sampler.")] = 0.95,
) -> None:
    """Run a suite through the end-to-end model and/or the cascade baseline, judge every answer
    with Whisper and acoustic measures, and write results.json and report.md."""
    from aqaa.engine import EngineError
    from aqaa.eval.judge import JudgeConfig, JudgeError, WhisperJudge
    from aqaa.eval.report import write_report
    from aqaa.eval.runner import EvalError, RunConfig, Workbench, run_suite
    from aqaa.eval.suite import SuiteError, load_suite

    systems = {"both": ["e2e", "cascade"], "e2e": ["e2e"], "cascade": ["cascade"]}.get(system)
    if systems is None:
        raise _fail(f"--system must be e2e, cascade or both, not {system!r}")
    if limit is not None and limit < 1:
        raise _fail("--limit must be at least 1")
    if max_new_tokens < 16:
        raise _fail("--max-new-tokens must be at least 16")
    if model is not None and not model.is_dir():
        raise _fail(f"--model {model} is not a directory")
    if threads is not None:
        if threads < 1:
            raise _fail("--threads must be at least 1")
        import torch

        torch.set_num_threads(threads)
    try:
        s = load_suite(suite)
    except SuiteError as e:
        raise _fail(str(e)) from None
    from aqaa.engine import SamplingConfig

    try:  # the sampler's own checks, before any model loads
        SamplingConfig(audio_temperature=audio_temperature, top_k=top_k, top_p=top_p)
    except ValueError as e:
        raise _fail(str(e)) from None
    cfg = RunConfig(
        max_new_tokens=max_new_tokens,
        seed=seed,
        audio_temperature=audio_temperature,
        top_k=top_k,
        top_p=top_p,
        dnsmos=dnsmos,
        cascade_styles=cascade_styles,
        judge=JudgeConfig(cpu_threads=threads or JudgeConfig().cpu_threads),
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
        bench = Workbench(out, judge=WhisperJudge(cfg.judge), model_dir=model)
        for name in systems:
            res = run_suite(model, s, out, name, limit, cfg, bench=bench)
            sm = res["summary"]
            console.print(
                f"{name}: content {_pct(sm['content_accuracy'])}, style "
                f"{_pct(sm['style_accuracy'])}, voice understanding "
                f"{_pct(sm['paralinguistic_accuracy'])}, first audio "
                f"{_num(sm['first_audio_s'])} s ({sm['turns']} turns, {sm['wall_s']} s)",
                highlight=False,
            )
        report = write_report(out)
    except (EngineError, EvalError, JudgeError, SuiteError, OSError) as e:
        raise _fail(str(e)) from None
    console.print(f"results: {out / 'results.json'}\nreport:  {report}", highlight=False)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def compare(
    a: Annotated[Path, typer.Argument(help="First results.json (or its run directory).")],
    b: Annotated[Path, typer.Argument(help="Second results.json (or its run directory).")],
) -> None:
    """Print every summary metric and per-category content accuracy of two runs, with B − A."""
    from aqaa.eval.report import compare as compare_results
    from aqaa.eval.runner import METRICS, load_results

    try:
        rows = compare_results(load_results(a), load_results(b))
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    lower_better = {m for m, doc in METRICS.items() if "(↓)" in doc}
    t = Table("system", "metric", "A", "B", "B − A", title=f"A = {a}   B = {b}")
    for system, metric, va, vb, d in rows:
        delta = "–"
        if d is not None:
            better = (d < 0) if metric in lower_better else (d > 0)
            colour = "green" if better else "red" if d != 0 else "white"
            delta = f"[{colour}]{d:+.3f}[/{colour}]"
        t.add_row(system, metric, _num3(va), _num3(vb), delta)
    console.print(t)


def table(
    runs: Annotated[
        list[Path], typer.Argument(help="results.json files or run directories, in column order.")
    ],
    names: Annotated[
        str | None,
        typer.Option(help="Comma-separated column names (default: the directory names)."),
    ] = None,
    system: Annotated[str, typer.Option(help="Which system's numbers: e2e or cascade.")] = "e2e",
) -> None:
    """Print the summary metrics of several runs as one markdown table (e.g. a stage ablation)."""
    from aqaa.eval.report import summary_table
    from aqaa.eval.runner import load_results

    labels = [n.strip() for n in names.split(",")] if names else [_run_name(p) for p in runs]
    if len(labels) != len(runs):
        raise _fail(f"{len(labels)} names for {len(runs)} runs")
    try:
        text = summary_table(
            [(n, load_results(p)) for n, p in zip(labels, runs, strict=True)], system
        )
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    typer.echo(text, nl=False)


def _run_name(p: Path) -> str:
    return p.parent.name if p.is_file() else p.name


def _num3(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def make_suite(
    name: Annotated[str, typer.Option(help="Suite name (the file is <name>.json).")] = "default",
    per_category: Annotated[int, typer.Option(help="Dialogues per category.")] = 7,
    seed: Annotated[int, typer.Option(help="Same seed and voices give the same suite.")] = 0,
    categories: Annotated[
        str | None, typer.Option(help="Comma-separated categories, in this order (default: all).")
    ] = None,
    reserved_share: Annotated[
        float, typer.Option(help="Share of dialogues spoken by the reserved test voices.")
    ] = 0.4,
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default: aqaa/eval/suites/<name>.json).")
    ] = None,
    description: Annotated[str, typer.Option(help="A line saying what the suite is for.")] = "",
) -> None:
    """Write a suite file from the test-split templates, spoken by test-split/reserved voices."""
    from aqaa.data.schema import CATEGORIES
    from aqaa.eval.suite import SUITES_DIR, SuiteError, save_suite
    from aqaa.eval.suite import make_suite as build

    cats = [c.strip() for c in categories.split(",") if c.strip()] if categories else CATEGORIES
    try:
        s = build(name, per_category, seed, list(cats), reserved_share, description)
        path = save_suite(s, out or SUITES_DIR / f"{name}.json")
    except (SuiteError, OSError) as e:
        raise _fail(str(e)) from None
    console.print(
        f"wrote {path}: {len(s.items)} dialogues, {s.n_turns} turns, "
        f"{len(s.categories)} categories",
        highlight=False,
    )


def hearing(
    out: Annotated[Path, typer.Option(help="Output directory (hearing.json; question cache).")],
    model: Annotated[
        Path | None, typer.Option(help="Model directory (default: the shipped model).")
    ] = None,
    suite: Annotated[str, typer.Option(help="A shipped suite name or a suite JSON path.")] = (
        "default"
    ),
    lm: Annotated[
        Path | None,
        typer.Option(help="An LM checkpoint to use instead of the model's (e.g. a training one)."),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads (default: torch's).")] = None,
) -> None:
    """The LM's own transcripts of the suite's questions: ASR WER by voice group (reserved,
    held-out, training), i.e. how well it hears voices it never trained on."""
    import json

    from aqaa.engine.engine import WEIGHTS_DIR
    from aqaa.eval.hearing import lm_transcriber, suite_hearing
    from aqaa.eval.runner import EvalError, Workbench
    from aqaa.eval.suite import load_suite

    model_dir = model or WEIGHTS_DIR
    lm_dir = lm or model_dir / "lm"
    if not (model_dir / "tokenizer").is_dir():
        raise _fail(f"{model_dir} has no tokenizer/ (a model directory from `aqaa train ship`)")
    if not (lm_dir / "config.json").is_file():
        raise _fail(f"{lm_dir} is not an LM checkpoint (no config.json)")
    if threads is not None and threads < 1:
        raise _fail("--threads must be at least 1")
    try:
        s = load_suite(suite)
        out.mkdir(parents=True, exist_ok=True)
        bench = Workbench(out, model_dir=model_dir)  # its judge stays unloaded: unused here
        rep = suite_hearing(s, bench.question, lm_transcriber(model_dir, lm_dir, threads))
    except (ValueError, EvalError, OSError) as e:  # SuiteError and tokenizer mismatches included
        raise _fail(str(e)) from None
    (out / "hearing.json").write_text(json.dumps(rep.to_dict(), indent=1) + "\n")
    t = Table("voices", "words", "WER", title=f"LM transcripts of suite `{s.name}` ({lm_dir})")
    for g, row in rep.groups.items():
        t.add_row(g, str(int(row["words"])), f"{100 * row['wer']:.1f}%")
    t.add_row("all", str(rep.words), f"{100 * rep.wer:.1f}%")
    console.print(t)
    console.print(f"written: {out / 'hearing.json'}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `run`, `compare`, `table`, `make-suite`, `vocoder`, `token-probe` and `hearing` to
    `aqaa eval`."""
    app.command("run")(run)
    app.command("compare")(compare)
    app.command("table")(table)
    app.command("make-suite")(make_suite)
    app.command("vocoder")(eval_vocoder)
    app.command("token-probe")(token_probe)
    app.command("hearing")(hearing)


def eval_vocoder(
    data: Annotated[Path, typer.Option(help="Corpus with a token shard (aqaa data tokenize).")],
    vocoder: Annotated[Path | None, typer.Option(help="Vocoder dir (default: shipped).")] = None,
    split: Annotated[str, typer.Option(help="Token shard to draw clips from.")] = "test",
    n: Annotated[int, typer.Option("-n", help="Clips (every style at least once).")] = 40,
    out: Annotated[Path | None, typer.Option(help="Write vocoder_eval.json here.")] = None,
    decompose: Annotated[
        bool,
        typer.Option(
            "--decompose",
            help="Also hear the flow's mel with the recording's spectral envelope, and with its "
            "pitch harmonics: which part of the flow's mel costs the words.",
        ),
    ] = False,
) -> None:
    """Vocoder quality on held-out assistant clips: Whisper WER, DNSMOS, chunk seams, style kept."""
    from aqaa.eval.vocoder import evaluate_vocoder, write_report

    if not (data / "tokens" / f"{split}.jsonl").is_file():
        raise _fail(f"no token shard {data}/tokens/{split}.jsonl: run `aqaa data tokenize {data}`")
    try:
        result = evaluate_vocoder(data, vocoder, split, n, decompose=decompose)
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    table = Table("measure", "value", title="aqaa vocoder (tokens → speech, held-out clips)")
    for k, v in result["summary"].items():
        table.add_row(k, "-" if v is None else str(v))
    console.print(table)
    for style, s in sorted(result["style"].get("per_style", {}).items()):
        r = s.get("retained")
        console.print(f"  {style:10s} pairs {s['pairs']:2d}  retained "
                      f"{'-' if r is None else f'{r:.2f}'}  {s['ratios']}", highlight=False)  # fmt: skip
    if out:
        write_report(result, out)
        console.print(f"wrote {out / 'vocoder_eval.json'}")


def token_probe(
    data: Annotated[Path, typer.Option(help="Corpus with token shards (aqaa data tokenize).")],
    streams: Annotated[str, typer.Option(help="linguistic, semantic or both.")] = "linguistic",
    epochs: Annotated[int, typer.Option(help="Training epochs over the train split.")] = 10,
    threads: Annotated[int, typer.Option(help="Torch threads.")] = 2,
    out: Annotated[Path | None, typer.Option(help="Write token_probe.json here.")] = None,
) -> None:
    """Phone error rate a small recogniser reaches from the audio tokens alone (what the LM sees)."""
    from aqaa.eval.token_probe import ProbeConfig, run_probe

    if streams not in ("linguistic", "semantic", "both"):
        raise _fail(f"--streams must be linguistic, semantic or both, not {streams!r}")
    if not (data / "tokens" / "train.jsonl").is_file():
        raise _fail(f"no token shard {data}/tokens/train.jsonl: run `aqaa data tokenize {data}`")
    cfg = ProbeConfig(streams=streams, epochs=epochs, threads=threads)  # type: ignore[arg-type]
    try:
        res = run_probe(
            data, cfg, on_epoch=lambda e, loss: console.print(f"epoch {e}: CTC {loss:.3f}")
        )
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    table = Table(
        "split", "phone error rate", title=f"token probe ({streams}, {res.seconds:.0f} s)"
    )
    for k, v in res.per.items():
        table.add_row(k, f"{v:.1%}")
    console.print(table)
    if out:
        from dataclasses import asdict

        out.mkdir(parents=True, exist_ok=True)
        (out / "token_probe.json").write_text(json.dumps(asdict(res), indent=2))
        console.print(f"wrote {out / 'token_probe.json'}")
