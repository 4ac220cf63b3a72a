"""`aqaa serve`: run the HTTP/WebSocket server (registered by `aqaa.cli`)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Processes, each with its own engine.")] = 1,
    model: Annotated[
        Path | None, typer.Option(help="Model directory (default: the shipped model).")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="Torch threads per worker.")] = None,
    max_queue: Annotated[int, typer.Option(help="Requests waiting per worker before 429.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds per request before 504.")] = 120.0,
    max_upload_mb: Annotated[float, typer.Option(help="Largest request body (MB).")] = 16.0,
    max_audio_seconds: Annotated[float, typer.Option(help="Longest question (s).")] = 30.0,
) -> None:
    """Serve aqaa: OpenAI-compatible /v1/chat/completions, /v1/realtime (WebSocket), a web page."""
    import uvicorn

    from aqaa.engine import Engine, EngineError
    from aqaa.serve.app import ENV_CONFIG, ENV_MODEL, ServeConfig

    if workers < 1:
        console.print("[red]error:[/red] --workers must be at least 1")
        raise typer.Exit(2)
    try:  # fail now, with one line, if the model is missing
        Engine.load(model)
    except (EngineError, FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    cfg = ServeConfig(max_queue=max_queue, timeout=timeout,
                      max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                      max_audio_seconds=max_audio_seconds)  # fmt: skip
    os.environ[ENV_MODEL] = str(model) if model else ""
    os.environ[ENV_CONFIG] = json.dumps(dataclasses.asdict(cfg))
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    console.print(f"aqaa serving on http://{host}:{port}/ ({workers} worker(s))")
    uvicorn.run("aqaa.serve.app:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level="info")  # fmt: skip


def bench_load(
    url: Annotated[
        str | None, typer.Option(help="A running server (default: start one on loopback here).")
    ] = None,
    clients: Annotated[int, typer.Option(help="Concurrent clients.")] = 20,
    seconds: Annotated[float, typer.Option(help="How long clients keep sending.")] = 60.0,
    question: Annotated[
        Path | None, typer.Option(help="Question WAV (default: examples/question.wav).")
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="Model directory (default: the shipped model).")
    ] = None,
    max_queue: Annotated[int, typer.Option(help="Server queue before 429.")] = 8,
    request_timeout: Annotated[
        float, typer.Option(help="Seconds before a request is hung.")
    ] = 120.0,
    out: Annotated[
        Path | None, typer.Option(help="Write load.json and load.png (latency, memory) here.")
    ] = None,
) -> None:
    """Bounded load test: `clients` clients send spoken questions for `seconds` on loopback;
    prints throughput, latency percentiles, 429s, errors, hung and lost requests, and memory."""
    from rich.table import Table

    from aqaa.engine import Engine, EngineError
    from aqaa.engine.cli import EXAMPLES_DIR
    from aqaa.serve.app import ServeConfig, create_app
    from aqaa.serve.loadtest import LoadConfig, loopback_server, run_load

    q = question or EXAMPLES_DIR / "question.wav"
    if not q.is_file():
        console.print(f"[red]error:[/red] no such question file: {q}", highlight=False)
        raise typer.Exit(2)
    if clients < 1 or seconds <= 0:
        console.print("[red]error:[/red] --clients must be ≥ 1 and --seconds > 0")
        raise typer.Exit(2)
    cfg = LoadConfig(clients=clients, seconds=seconds, request_timeout=request_timeout)
    wav = q.read_bytes()
    if url:
        result = run_load(url.rstrip("/"), wav, cfg, sample_rss=False)
    else:
        try:
            engine = Engine.load(model)
        except (EngineError, FileNotFoundError, ValueError) as e:
            console.print(f"[red]error:[/red] {e}", highlight=False)
            raise typer.Exit(2) from None
        app = create_app(engine, ServeConfig(max_queue=max_queue, timeout=request_timeout))
        with loopback_server(app) as base:
            run_load(base, wav, LoadConfig(clients=1, seconds=0.1), sample_rss=False,
                     progress=False)  # warm-up: first-call allocations are not a leak  # fmt: skip
            result = run_load(base, wav, cfg)
    s = result.summary()
    table = Table("measure", "value", title=f"aqaa load test: {clients} clients × {seconds:.0f} s")
    for k, v in s.items():
        table.add_row(k, "-" if v is None else str(v))
    Console().print(table)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "load.json").write_text(json.dumps(result.to_json(), indent=2))
        _plot_load(result, out / "load.png")
        console.print(f"wrote {out / 'load.json'} and {out / 'load.png'}")
    if s["errors"] or s["hung"] or (s["lost"] or 0) > 0:
        raise typer.Exit(1)


def _plot_load(result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = result.records
    t0 = min((r.start for r in recs), default=0.0)
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for outcome, colour in (("answered", "tab:blue"), ("rejected", "tab:orange"),
                            ("error", "tab:red"), ("hung", "black")):  # fmt: skip
        xs = [r.start - t0 + r.latency for r in recs if r.outcome == outcome]
        ys = [r.latency for r in recs if r.outcome == outcome]
        if xs:
            a.scatter(xs, ys, s=10, c=colour, label=f"{outcome} ({len(xs)})")
    a.set_ylabel("latency (s)")
    a.legend(loc="upper left")
    a.set_title(f"{result.config.clients} clients, {result.config.seconds:.0f} s")
    if result.rss:
        b.plot([t for t, _ in result.rss], [m for _, m in result.rss])
    b.set_ylabel("server RSS (MB)")
    b.set_xlabel("time since start (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
