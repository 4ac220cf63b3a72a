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
