"""The `aqaa` command line. Every command listed by `aqaa --help` works.

Errors a user can fix (bad paths, bad audio, bad options) print one line and exit with code 2.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aqaa import __version__
from aqaa.engine import cli as engine_cli
from aqaa.serve import cli as serve_cli
from aqaa.tokenizer import cli as tok_cli
from aqaa.train.cli import train_app
from aqaa.vocoder import cli as voc_cli

app = typer.Typer(
    help="aqaa: ask out loud, get a spoken answer (end-to-end AQAA).", no_args_is_help=True
)
data_app = typer.Typer(
    help="Build and inspect the synthetic spoken-dialogue corpus.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
eval_app = typer.Typer(help="Evaluate the model's parts and the whole.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
from aqaa.eval import cli as eval_cli  # noqa: E402

eval_cli.register(eval_app)
app.command("tokenize")(tok_cli.tokenize)
data_app.command("tokenize")(tok_cli.data_tokenize)
train_app.command("tokenizer")(tok_cli.train_tokenizer)
eval_app.command("tokenizer")(tok_cli.eval_tokenizer)
app.command("vocode")(voc_cli.vocode)
app.command("resynth")(voc_cli.resynth)
train_app.command("vocoder")(voc_cli.train_vocoder)
train_app.command("vocoder-join")(voc_cli.join_vocoders)
app.command("answer")(engine_cli.answer)
app.command("chat")(engine_cli.chat)
app.command("serve")(serve_cli.serve)
bench_app = typer.Typer(help="Measure speed on this machine.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
bench_app.command("latency")(engine_cli.bench_latency)
bench_app.command("load")(serve_cli.bench_load)
console = Console()


def _fail(msg: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {msg}", highlight=False)
    return typer.Exit(code=2)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@app.command()
def version() -> None:
    """Print the aqaa version."""
    console.print(f"aqaa {__version__}")


@app.command()
def voices(
    split: Annotated[str | None, typer.Option(help="Only voices of this split.")] = None,
    eval_voices: Annotated[
        bool, typer.Option("--eval", help="Include the reserved test voices.")
    ] = False,
) -> None:
    """List the TTS voices installed here, per engine, gender and split."""
    from aqaa.data.voices import VoiceBank

    bank = VoiceBank.discover()
    vs = bank.voices(split, purpose="eval" if eval_voices else "train", include_assistant=True)  # type: ignore[arg-type]
    table = Table("engine", "voices", "male", "female", "train", "valid", "test", "reserved")
    for eng in sorted({v.engine for v in vs}):
        e = [v for v in vs if v.engine == eng]
        table.add_row(
            eng,
            str(len(e)),
            *(str(sum(v.gender == g for v in e)) for g in ("male", "female")),
            *(str(sum(v.split == s for v in e)) for s in ("train", "valid", "test")),
            str(sum(v.reserved for v in e)),
        )
    console.print(table)
    if not vs:
        raise _fail("no TTS engine found: apt-get install -y espeak-ng flite festival")


def _check_render_args(hours: float, workers: int) -> None:
    if hours <= 0:
        raise _fail("--hours must be positive")
    if workers < 1:
        raise _fail("--workers must be at least 1")


@data_app.command("build")
def data_build(
    out: Annotated[Path, typer.Option(help="Output directory.")],
    hours: Annotated[float, typer.Option(help="Hours of speech to render (both sides).")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same corpus.")] = 0,
    workers: Annotated[int, typer.Option(help="Rendering processes.")] = 2,
) -> None:
    """Render a corpus: human and assistant audio, transcripts, phonemes, manifest, splits.

    Interrupt it at any time: running it again with the same options resumes.
    """
    from aqaa.data.corpus import BuildConfig, build_corpus

    _check_render_args(hours, workers)
    try:
        summary = build_corpus(BuildConfig(out=out, hours=hours, seed=seed, workers=workers))
    except (ValueError, RuntimeError, OSError) as e:
        raise _fail(str(e)) from None
    console.print(
        f"built {summary['items_ok']}/{summary['items_planned']} items, "
        f"{summary['hours_total']:.3f} h of audio in {out} "
        f"({summary['audio_hours_per_wall_hour']} audio h per wall h this run, "
        f"{summary['bytes_on_disk'] / 1e6:.1f} MB)"
    )
    if summary["items_failed_this_run"]:
        console.print(
            f"[yellow]{summary['items_failed_this_run']} items failed: see {out}/errors.jsonl"
        )


@data_app.command("babble")
def data_babble(
    out: Annotated[Path, typer.Option(help="Output directory.")],
    hours: Annotated[float, typer.Option(help="Hours of speech to render.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same clips.")] = 0,
    workers: Annotated[int, typer.Option(help="Rendering processes.")] = 2,
    words: Annotated[Path, typer.Option(help="Word list, one word per line.")] = Path(
        "/usr/share/dict/words"
    ),
    source: Annotated[
        str,
        typer.Option(
            help="words: random word strings (tokenizer data); questions: generated content "
            "questions with text answers (LM SFT data); sentences: real sentences from --text "
            "(LM ASR data); assistant: answer sentences in the assistant's voice (vocoder data)."
        ),
    ] = "words",
    text: Annotated[
        Path, typer.Option(help="Sentence source: a fortune directory or a text file.")
    ] = Path("/usr/share/games/fortunes"),
    warp: Annotated[
        float,
        typer.Option(
            help="Chance that a flite/festival clip gets a new speaker (formant+F0 warp)."
        ),
    ] = 0.0,
    sentence_share: Annotated[
        float, typer.Option(help="assistant: share of clips that speak a --text sentence.")
    ] = 0.3,
    exclude: Annotated[
        list[Path] | None,
        typer.Option(help="assistant: never speak an answer of this corpus's valid/test splits."),
    ] = None,
) -> None:
    """Render random-word speech by the training voices, for tokenizer training (`--data c,babble`),
    or (`--source questions`) spoken content questions with text answers, for the LM, or
    (`--source sentences`) spoken English sentences for the LM's ASR task, or (`--source
    assistant`) the assistant's answers alone, for the vocoder (`aqaa train vocoder --data c,v`).

    Interrupt it at any time: running it again with the same options resumes.
    """
    from aqaa.data.babble import BabbleConfig, build_babble

    _check_render_args(hours, workers)
    try:
        s = build_babble(
            BabbleConfig(
                out=out,
                hours=hours,
                seed=seed,
                workers=workers,
                words=words,
                source=source,
                text=text,
                warp=warp,
                sentence_share=sentence_share,
                exclude=tuple(exclude or ()),
            )
        )
    except (ValueError, RuntimeError, OSError) as e:
        raise _fail(str(e)) from None
    console.print(
        f"babble: {s['clips']} clips, {s['hours']:.3f} h, {s['voices']} voices, "
        f"{s['distinct_words']} distinct words in {out}"
        + (f"; [yellow]{s['failed']} failed: see {out}/errors.txt" if s["failed"] else "")
    )


@data_app.command("stats")
def data_stats(
    corpus: Annotated[Path, typer.Argument(help="A directory made by `aqaa data build`.")],
    plot: Annotated[
        Path | None, typer.Option(help="Where to write the duration histograms.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Counts per category, style and voice, hours per split, and a duration plot."""
    from aqaa.data.stats import corpus_stats, plot_durations

    try:
        st = corpus_stats(corpus)
    except FileNotFoundError as e:
        raise _fail(str(e)) from None
    png = plot_durations(st, plot or corpus / "durations.png")
    if as_json:
        print(json.dumps({k: v for k, v in st.items() if k != "durations"}, indent=2))
        return
    t = Table("split", "items", "human h", "assistant h", "templates")
    for split, h in st["hours"].items():
        t.add_row(
            split,
            str(st["per_split"].get(split, 0)),
            f"{h['human']:.3f}",
            f"{h['assistant']:.3f}",
            str(st["templates_per_split"].get(split, 0)),
        )
    console.print(t)
    for title, key in (
        ("category", "per_category"),
        ("answer style", "answer_styles"),
        ("human style", "human_styles"),
        ("engine", "engines"),
    ):
        tt = Table(title, "count")
        for k, v in st[key].items():
            tt.add_row(k, str(v))
        console.print(tt)
    console.print(
        f"{st['items']} items, {st['turns']} turns, {st['distinct_voices']} human voices, "
        f"{st['hours_total']:.3f} h in all; duration histograms: {png}"
    )


@data_app.command("sample")
def data_sample(
    category: Annotated[str, typer.Argument(help="A task category, or 'all'.")] = "all",
    n: Annotated[int, typer.Option("-n", help="Items per category.")] = 3,
    split: Annotated[str, typer.Option(help="train, valid or test phrasings.")] = "train",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Print generated dialogue items (text only, nothing rendered)."""
    from aqaa.data.schema import CATEGORIES
    from aqaa.data.tasks import generate

    cats = CATEGORIES if category == "all" else (category,)
    rng = random.Random(seed)
    for c in cats:
        for _ in range(n):
            try:
                item = generate(c, rng, split)
            except ValueError as e:
                raise _fail(str(e)) from None
            for t in item.turns:
                spec = {k: v for k, v in vars(t.human).items() if v not in (None, "neutral")}
                console.print(
                    f"[bold]{c}[/bold] {item.template} human{spec or ''}: {t.human_text}",
                    highlight=False,
                )
                console.print(
                    f"    assistant: {t.answer_text}   accept={t.accept}", highlight=False
                )


if __name__ == "__main__":
    app()
