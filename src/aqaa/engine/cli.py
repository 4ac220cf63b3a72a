"""`aqaa answer`, `aqaa chat` and `aqaa bench latency`, registered by `aqaa.cli`.

Errors a user can fix (missing or non-audio file, silence, too long, unwritable output, bad
session file, missing model) print one line and exit with code 2.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"

ModelDir = Annotated[
    Path | None,
    typer.Option(
        "--model", help="Model directory with tokenizer/, lm/, vocoder/ (default: shipped)."
    ),
]
Seed = Annotated[int, typer.Option(help="Sampling seed (same seed, same answer).")]
Temp = Annotated[float, typer.Option(help="Temperature of audio tokens (text is greedy).")]
Threads = Annotated[int | None, typer.Option(help="Torch threads (default: all cores).")]
System = Annotated[str | None, typer.Option(help="System prompt (default: the model's persona).")]
Mode = Annotated[str, typer.Option(help="speech (text + audio) or text.")]
MaxTokens = Annotated[
    int, typer.Option(help="Longest answer, in tokens (~42 per second of speech).")
]


def _fail(msg: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {msg}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _user_errors() -> tuple[type[BaseException], ...]:
    from aqaa.audio import AudioError
    from aqaa.engine import EngineError, SessionError

    return (AudioError, EngineError, SessionError, FileNotFoundError, IsADirectoryError)


def check_writable(path: Path) -> None:
    """Fail now, before any work, if `path` cannot be written."""
    if path.is_dir():
        raise _fail(f"{path} is a directory; give a file name such as {path / 'answer.wav'}")
    if path.suffix.lower() not in (".wav", ".flac", ".ogg"):
        raise _fail(f"cannot tell the audio format of '{path.name}': use .wav, .flac or .ogg")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.parent / f".{path.name}.{os.getpid()}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise _fail(f"cannot write {path}: {e.strerror or e}") from None


def load_engine(
    model: Path | None, threads: int | None, mode: str = "speech", lm_weights: str | None = None
) -> Any:
    import torch

    from aqaa.engine import Engine

    if mode not in ("speech", "text"):
        raise _fail(f"--mode must be speech or text, got {mode!r}")
    if threads:
        torch.set_num_threads(threads)
    try:
        return Engine.load(model, mode=mode, lm_weights=lm_weights)  # type: ignore[arg-type]
    except (*_user_errors(), ValueError) as e:
        raise _fail(str(e)) from None


def _run_turn(engine: Any, question: Path, session: Any, sampling: Any, stream: bool,
              out: Path | None) -> Any:  # fmt: skip
    """Answer one question; with `stream`, print text as written and append audio as it comes."""
    from aqaa.engine import AudioChunk, Finished, TextDelta

    if not question.exists():
        raise FileNotFoundError(f"question file not found: {question}")
    turn = engine.listen_file(question, session=session)
    sink = None
    part = None
    if stream and out is not None:
        import soundfile as sf

        part = out.with_name(f".{out.name}.partial.wav")
        sink = sf.SoundFile(part, "w", samplerate=engine.vocoder.sample_rate, channels=1,
                            subtype="PCM_16")  # fmt: skip
    answer = None
    try:
        for ev in engine.respond(turn, sampling):
            if isinstance(ev, TextDelta) and stream:
                sys.stdout.write(ev.text)
                sys.stdout.flush()
            elif isinstance(ev, AudioChunk) and stream:
                if sink is not None:
                    sink.write(ev.samples)
                err.print(f"[dim]  audio chunk {len(ev.samples) / ev.sample_rate:.2f} s "
                          f"at {1000 * ev.seconds:.0f} ms[/dim]", highlight=False)  # fmt: skip
            elif isinstance(ev, Finished):
                answer = ev.answer
    finally:
        if sink is not None:
            sink.close()
    if stream:
        sys.stdout.write("\n")
    if part is not None and out is not None:
        os.replace(part, out)
    elif out is not None:
        from aqaa.audio import save_audio

        save_audio(out, answer.audio, answer.sample_rate)
    return answer


def _timing_line(t: Any) -> str:
    ms = lambda s: "n/a" if s is None else f"{1000 * s:.0f} ms"  # noqa: E731
    rtf = "n/a" if t.rtf is None else f"{t.rtf:.2f}"
    return (f"first text {ms(t.first_text)}, first audio {ms(t.first_audio)}, total "
            f"{t.total:.2f} s for {t.audio_seconds:.2f} s of speech (RTF {rtf}), "
            f"{t.tokens_per_second:.0f} tokens/s")  # fmt: skip


def answer(
    question: Annotated[Path, typer.Argument(help="The spoken question (wav, flac, mp3, …).")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where to write the answer.")
    ] = Path("answer.wav"),
    session: Annotated[
        Path | None, typer.Option(help="Session JSON: read the history, then add this turn.")
    ] = None,
    seed: Seed = 0,
    temperature: Temp = 0.7,
    stream: Annotated[bool, typer.Option(help="Print text and write audio as they come.")] = False,
    system: System = None,
    model: ModelDir = None,
    mode: Mode = "speech",
    max_tokens: MaxTokens = 1200,
    threads: Threads = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Answer a spoken question out loud: prints the answer text and writes its speech."""
    from aqaa.engine import SamplingConfig, Session

    if not question.exists():
        raise _fail(f"question file not found: {question}")
    check_writable(output)
    engine = load_engine(model, threads, mode)
    try:
        sess = Session.load_or_new(session, system)
        ans = _run_turn(engine, question, sess, SamplingConfig(audio_temperature=temperature,
                        seed=seed, max_new_tokens=max_tokens), stream, output)  # fmt: skip
        if session is not None:
            sess.save(session)
    except (*_user_errors(), OSError) as e:
        raise _fail(str(e)) from None
    if as_json:
        print(json.dumps({"text": ans.text, "styles": ans.styles, "output": str(output),
                          **ans.timings.as_dict()}, indent=2))  # fmt: skip
        return
    if not stream:
        console.print(ans.text, highlight=False)
    if not len(ans.audio):
        err.print("[yellow]warning:[/yellow] the answer has no speech")
    err.print(f"wrote {output}; {_timing_line(ans.timings)}", highlight=False)


def _question_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(
                f for f in p.iterdir() if f.suffix.lower() in (".wav", ".flac", ".mp3", ".ogg")
            )
        elif p.exists():
            files.append(p)
        else:
            raise _fail(f"question file not found: {p}")
    if not files:
        raise _fail("no question files (.wav, .flac, .mp3, .ogg) given")
    return files


def chat(
    questions: Annotated[
        list[Path], typer.Argument(help="Question files, or directories of them, in order.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for the answers and the session.")] = Path(
        "chat"
    ),
    session: Annotated[Path | None, typer.Option(help="Continue this session file.")] = None,
    seed: Seed = 0,
    temperature: Temp = 0.7,
    system: System = None,
    model: ModelDir = None,
    max_tokens: MaxTokens = 1200,
    threads: Threads = None,
) -> None:
    """A multi-turn conversation over several spoken questions (history kept between turns)."""
    from aqaa.engine import SamplingConfig, Session

    files = _question_files(questions)
    check_writable(out / "answer-01.wav")
    engine = load_engine(model, threads)
    sess_path = session or out / "session.json"
    try:
        sess = Session.load_or_new(sess_path, system)
        for i, q in enumerate(files, 1):
            wav = out / f"answer-{i:02d}.wav"
            ans = _run_turn(engine, q, sess, SamplingConfig(audio_temperature=temperature,
                            seed=seed + i, max_new_tokens=max_tokens), False, wav)  # fmt: skip
            sess.save(sess_path)
            console.print(f"[bold]{q.name}[/bold] → {ans.text}", highlight=False)
            err.print(f"  {wav}; {_timing_line(ans.timings)}", highlight=False)
    except (*_user_errors(), OSError) as e:
        raise _fail(str(e)) from None
    console.print(f"{len(files)} turns; session in {sess_path}")


def bench_latency(
    questions: Annotated[
        list[Path] | None,
        typer.Argument(help="Question files or directories (default: examples/)."),
    ] = None,
    model: ModelDir = None,
    threads: Threads = None,
    chunk_ms: Annotated[
        int, typer.Option(help="Microphone chunk size of the simulated live input.")
    ] = 100,
    repeat: Annotated[int, typer.Option(help="Runs per question (the first also warms up).")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    lm_weights: Annotated[
        str | None,
        typer.Option(help="LM matrix storage: dense, fp16 or int8 (default: the engine's, fp16)."),
    ] = None,
) -> None:
    """Latency table over a fixed set of questions, fed as live audio in `chunk_ms` pieces.

    Times count from the end of the question (the last chunk pushed): the question is tokenized
    and pre-filled while it is "spoken", as a server does."""
    from aqaa.audio import load_audio
    from aqaa.engine import Finished, SamplingConfig

    files = _question_files(questions or [EXAMPLES_DIR])
    engine = load_engine(model, threads, lm_weights=lm_weights)
    rows = []
    for q in files:
        try:
            x = load_audio(q)
        except _user_errors() as e:
            raise _fail(str(e)) from None
        step = 16 * chunk_ms
        runs = []
        for r in range(max(repeat, 1)):
            turn = engine.listen(gain=1.0)
            listen_cost = 0.0
            for i in range(0, len(x), step):
                t = time.perf_counter()
                turn.push(x[i : i + step])
                listen_cost = max(listen_cost, time.perf_counter() - t)
            ans = None
            for ev in engine.respond(turn, SamplingConfig(seed=r)):
                if isinstance(ev, Finished):
                    ans = ev.answer
            runs.append((ans.timings, listen_cost))
        t_best = runs[-1][0] if len(runs) == 1 else min((t for t, _ in runs[1:]),
                                                          key=lambda t: t.first_audio or 1e9)  # fmt: skip
        rows.append({"question": q.name, "question_s": len(x) / 16000,
                     "max_chunk_cost_s": max(c for _, c in runs), **t_best.as_dict()})  # fmt: skip
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("question", "q s", "chunk cost", "first text", "first audio", "total s",
                  "speech s", "RTF", "tok/s", title="aqaa latency (from the end of the question)")  # fmt: skip
    ms = lambda s: "-" if s is None else f"{1000 * s:.0f} ms"  # noqa: E731
    for r in rows:
        table.add_row(r["question"], f"{r['question_s']:.1f}", ms(r["max_chunk_cost_s"]),
                      ms(r["first_text_s"]), ms(r["first_audio_s"]), f"{r['total_s']:.2f}",
                      f"{r['audio_s']:.2f}", "-" if r["rtf"] is None else f"{r['rtf']:.2f}",
                      f"{r['tokens_per_s']:.0f}")  # fmt: skip
    fa = [r["first_audio_s"] for r in rows if r["first_audio_s"] is not None]
    rtfs = [r["rtf"] for r in rows if r["rtf"] is not None]
    console.print(table)
    if fa and rtfs:
        console.print(f"median first audio {1000 * statistics.median(fa):.0f} ms, "
                      f"median RTF {statistics.median(rtfs):.2f} ({len(rows)} questions, "
                      f"{torch_threads()} threads, LM weights {engine.decoder.weights})")  # fmt: skip


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


__all__ = ["answer", "bench_latency", "chat", "check_writable"]
