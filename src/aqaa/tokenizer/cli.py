"""Tokenizer commands: `aqaa tokenize`, `aqaa data tokenize`, `aqaa train tokenizer`, `aqaa eval tokenizer`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aqaa.audio import AudioError

console = Console()
TokDir = Annotated[
    Path | None, typer.Option("--tokenizer", help="Tokenizer directory (default: the shipped one).")
]


def _load(tokenizer: Path | None):
    from aqaa.tokenizer import DualCodebookTokenizer

    try:
        return DualCodebookTokenizer.load(tokenizer)
    except FileNotFoundError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None


def tokenize(
    file: Annotated[Path, typer.Argument(help="An audio file (WAV, FLAC, OGG, MP3).")],
    tokenizer: TokDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the codes as JSON.")] = False,
) -> None:
    """Print the audio tokens of FILE and their rates."""
    tok = _load(tokenizer)
    try:
        out = tok.encode(file)
    except (AudioError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        print(
            json.dumps(
                {
                    "linguistic": out.linguistic.tolist(),
                    "semantic": out.semantic.tolist(),
                    "codes": out.codes.tolist(),
                    "duration": out.duration,
                }
            )
        )
        return
    r = out.rates
    console.print(f"{file}: {out.duration:.2f} s")
    console.print(
        f"  linguistic {len(out.linguistic)} tokens ({r['linguistic_hz']:.2f} Hz): {out.linguistic[:20].tolist()} …"
    )
    console.print(
        f"  semantic   {len(out.semantic)} tokens ({r['semantic_hz']:.2f} Hz): {out.semantic[:20].tolist()} …"
    )
    console.print(f"  interleaved {len(out.codes)} codes ({r['interleaved_hz']:.2f} Hz)")


def data_tokenize(
    corpus: Annotated[Path, typer.Argument(help="A corpus made by `aqaa data build`.")],
    tokenizer: TokDir = None,
) -> None:
    """Tokenize a corpus once into token shards (CORPUS/tokens/<split>.jsonl)."""
    from aqaa.data.shards import tokenize_corpus

    tok = _load(tokenizer)
    try:
        counts = tokenize_corpus(corpus, tok)
    except FileNotFoundError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"wrote {corpus / 'tokens'}: {counts}")


def train_tokenizer(
    data: Annotated[
        str,
        typer.Option(help="Corpus dir(s) from `aqaa data build` / `data babble`, comma-separated."),
    ],
    out: Annotated[Path, typer.Option(help="Output directory for checkpoints and the tokenizer.")],
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 6000,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoint.pt.")] = False,
    dim: Annotated[int, typer.Option(help="Encoder width.")] = 192,
    layers: Annotated[int, typer.Option(help="Encoder layers.")] = 4,
    batch_seconds: Annotated[float, typer.Option(help="Seconds of padded audio per batch.")] = 40.0,
    augment: Annotated[
        bool, typer.Option(help="VTLP + SpecAugment on the linguistic input (speaker invariance).")
    ] = True,
    cmn_prior: Annotated[
        int,
        typer.Option(
            help="Online mean normalisation of the linguistic input (prior frames; 0 off)."
        ),
    ] = 10,
    init: Annotated[
        Path | None,
        typer.Option(help="Fine-tune this trained tokenizer (its shape, phonemes and statistics)."),
    ] = None,
    freeze_semantic: Annotated[
        bool, typer.Option(help="With --init: train only the linguistic encoder.")
    ] = False,
    keep_centroids: Annotated[
        bool, typer.Option(help="With --init: keep its k-means codebook (codes keep their place).")
    ] = False,
    commit_weight: Annotated[
        float, typer.Option(help="With --init: pull linguistic outputs to their nearest centroid.")
    ] = 0.0,
    tempo: Annotated[
        float,
        typer.Option(
            help="Tempo perturbation of the linguistic input: factors in [1/x, x]; 0 off."
        ),
    ] = 0.0,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    warmup: Annotated[int, typer.Option(help="Warm-up steps.")] = 300,
) -> None:
    """Train both tokenizers (CTC + reconstruction), then fit the k-means codebook."""
    from aqaa.train.tokenizer import TokenizerTrainConfig
    from aqaa.train.tokenizer import train_tokenizer as run

    for d in data.split(","):
        if not (Path(d.strip()) / "manifest.jsonl").exists():
            console.print(
                f"[red]error:[/red] {d} has no manifest.jsonl: build it with `aqaa data build`"
            )
            raise typer.Exit(2)
    if init is not None and not (init / "config.json").exists():
        console.print(f"[red]error:[/red] {init} holds no tokenizer (no config.json)")
        raise typer.Exit(2)
    if (freeze_semantic or keep_centroids or commit_weight > 0) and init is None:
        console.print(
            "[red]error:[/red] --freeze-semantic, --keep-centroids and --commit-weight need --init"
        )
        raise typer.Exit(2)
    cfg = TokenizerTrainConfig(
        init=str(init) if init else None,
        freeze_semantic=freeze_semantic,
        keep_centroids=keep_centroids,
        commit_weight=commit_weight,
        tempo=tempo,
        lr=lr,
        warmup=warmup,
        augment=augment,
        cmn_prior=cmn_prior,
        data=data,
        out=str(out),
        steps=steps,
        dim=dim,
        layers=layers,
        batch_seconds=batch_seconds,
    )
    path = run(cfg, resume=resume)
    console.print(f"tokenizer saved to {path}; curves in {path / 'train_curves.png'}")


def eval_tokenizer(
    tokenizer: TokDir = None,
    sentences: Annotated[int, typer.Option(help="Probe sentences per voice and style.")] = 10,
    out: Annotated[Path, typer.Option(help="Where to write the JSON report.")] = Path(
        "runs/eval_tokenizer.json"
    ),
    probe_cache: Annotated[
        Path | None, typer.Option(help="Keep the rendered probe set in this file and reuse it.")
    ] = None,
) -> None:
    """Rates, codebook usage, phone error rate, speaker invariance and a style probe on the reserved voices."""
    from aqaa.tokenizer.evaluate import evaluate_tokenizer, load_or_render_probe_set

    tok = _load(tokenizer)
    res = evaluate_tokenizer(tok, load_or_render_probe_set(sentences, probe_cache), out)
    t = Table("metric", "value", "target")
    t.add_row("linguistic rate (Hz)", f"{res['rates_hz']['linguistic']:.2f}", "16.67")
    t.add_row("semantic rate (Hz)", f"{res['rates_hz']['semantic']:.2f}", "25")
    t.add_row("linguistic codes used", f"{res['linguistic']['used']:.1%}", "≥ 70%")
    t.add_row("linguistic perplexity", f"{res['linguistic']['perplexity']:.0f}", "")
    t.add_row("semantic codes used", f"{res['semantic']['used']:.1%}", "≥ 50%")
    t.add_row("semantic perplexity", f"{res['semantic']['perplexity']:.0f}", "")
    t.add_row("phone error rate", f"{res['phone_error_rate']:.1%}", "≤ 20%")
    t.add_row("phone error rate (neutral)", f"{res['phone_error_rate_neutral']:.1%}", "")
    if res["phone_error_rate_assistant"] is not None:
        t.add_row(
            "phone error rate, assistant voice", f"{res['phone_error_rate_assistant']:.1%}", ""
        )
    t.add_row("speaker invariance", f"{res['speaker_invariance']:.1%}", "")
    t.add_row("style probe accuracy", f"{res['style_probe']['accuracy']:.1%}", "≥ 90%")
    console.print(t)
    console.print(f"per style: {res['style_probe']['per_style']}")
    per_voice = ", ".join(f"{v} {e:.1%}" for v, e in res["phone_error_rate_by_voice"].items())
    console.print(f"phone error rate per voice: {per_voice}")
    console.print(f"JSON: {out}")
