"""The HTTP and WebSocket server (FastAPI): OpenAI-compatible audio chat, live voice, a web page.

Endpoints
- `POST /v1/chat/completions`: OpenAI audio chat (see `openai_format`); `stream: true` sends
  server-sent events with transcript deltas and base64 PCM16 audio deltas as they are produced.
- `GET /v1/models`, `GET /health`, `GET /metrics` (Prometheus text).
- `WS /v1/realtime`: live voice (see `realtime`).
- `GET /`: the voice web page (served from the package, no CDN).

Limits: `max_upload_bytes` (413), `max_audio_seconds` (400), `timeout` per request (504, the
answer is cancelled), a bounded queue (429). Errors are JSON `{"error": {"message", "type",
"param", "code"}}`; no stack trace ever reaches a client (it goes to the server log).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse

from aqaa.audio import AudioError
from aqaa.engine import AudioChunk, EngineError, Finished, SamplingConfig, Session, TextDelta
from aqaa.engine.session import Exchange
from aqaa.serve.metrics import Metrics
from aqaa.serve.openai_format import (
    ChatRequest,
    RequestError,
    TranscriptMemory,
    chunk,
    completion,
    encode_audio,
    new_ids,
    parse_request,
)
from aqaa.serve.worker import EngineWorker, QueueFull

log = logging.getLogger(__name__)


@dataclass
class ServeConfig:
    model_name: str = "aqaa"
    max_upload_bytes: int = 16 * 1024 * 1024
    max_audio_seconds: float = 30.0
    timeout: float = 120.0
    max_queue: int = 8


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _error_response(e: BaseException) -> tuple[int, dict]:
    """Map an exception to (HTTP status, OpenAI-style error body)."""
    if isinstance(e, RequestError):
        return 400, error_body(str(e), "invalid_request_error", e.param)
    if isinstance(e, AudioError):
        return 400, error_body(str(e), "invalid_request_error", "messages", "bad_audio")
    if isinstance(e, EngineError):
        return 400, error_body(str(e), "invalid_request_error", "messages")
    if isinstance(e, QueueFull):
        return 429, error_body(str(e), "rate_limit_error", code="queue_full")
    if isinstance(e, TimeoutError):
        return 504, error_body(str(e), "timeout_error", code="timeout")
    log.error("internal error", exc_info=e)
    return 500, error_body("internal server error", "server_error")


async def _cancel_on_disconnect(request: Request, job: Any, every: float = 0.25) -> None:
    """Cancel `job` when the client disconnects, so an abandoned request frees the engine."""
    while not await request.is_disconnected():
        await asyncio.sleep(every)
    job.cancel()


def answer_job(req: ChatRequest, max_seconds: float) -> Any:
    """The engine work of one chat request (runs on the worker thread)."""

    def run(engine: Any, emit: Any) -> None:
        session = Session(system=req.system)
        for h in req.history:
            codes = (
                engine.tokenizer.encode(h.audio, max_duration=max_seconds).codes.tolist()
                if h.audio
                else []
            )
            session.exchanges.append(Exchange(codes, h.answer_text, h.text))
        mode = "speech" if req.audio_out else "text"
        turn = engine.listen_file(req.question, session=session, mode=mode)
        sampling = SamplingConfig(
            seed=req.seed or 0,
            audio_temperature=0.7 if req.temperature is None else req.temperature,
            max_new_tokens=req.max_tokens or 1200,
        )
        for ev in engine.respond(turn, sampling):
            emit(ev)

    return run


def create_app(engine: Any, config: ServeConfig | None = None) -> FastAPI:
    cfg = config or ServeConfig()
    worker = EngineWorker(engine, cfg.max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        yield
        worker.shutdown()

    app = FastAPI(title="aqaa", version="1", docs_url="/docs", lifespan=lifespan)
    metrics = Metrics()
    memory = TranscriptMemory()
    app.state.worker, app.state.metrics, app.state.config = worker, metrics, cfg
    started = int(time.time())

    def fail(endpoint: str, e: BaseException) -> JSONResponse:
        status, body = _error_response(e)
        metrics.request(endpoint, status)
        return JSONResponse(body, status_code=status)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return resources.files("aqaa.serve").joinpath("static/index.html").read_text()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": cfg.model_name, "queue": worker.pending}

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": cfg.model_name, "object": "model",
                                            "created": started, "owned_by": "aqaa"}]}  # fmt: skip

    @app.get("/metrics", response_class=PlainTextResponse)
    def prom() -> str:
        return metrics.render(worker.pending)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        ep = "chat"
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > cfg.max_upload_bytes:
            metrics.request(ep, 413)
            return JSONResponse(error_body(f"request larger than {cfg.max_upload_bytes} bytes",
                                           "invalid_request_error", code="too_large"), 413)  # fmt: skip
        ctype = request.headers.get("content-type", "application/json")
        if ctype.split(";")[0].strip().lower() != "application/json":
            metrics.request(ep, 415)
            return JSONResponse(error_body(f"content-type must be application/json, not {ctype!r}",
                                           "invalid_request_error", code="unsupported_media_type"),
                                415)  # fmt: skip
        raw = await request.body()
        if len(raw) > cfg.max_upload_bytes:
            metrics.request(ep, 413)
            return JSONResponse(error_body(f"request larger than {cfg.max_upload_bytes} bytes",
                                           "invalid_request_error", code="too_large"), 413)  # fmt: skip
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return fail(ep, RequestError("the request body is not valid JSON"))
        try:
            req = parse_request(body, memory)
            job = worker.submit(answer_job(req, cfg.max_audio_seconds))
        except (RequestError, QueueFull) as e:
            return fail(ep, e)
        cid, audio_id = new_ids()
        if req.stream:
            return StreamingResponse(
                _sse(req, job, cid, audio_id), media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )  # fmt: skip
        answer = None
        watcher = asyncio.create_task(_cancel_on_disconnect(request, job))
        try:
            async for ev in job.events(cfg.timeout):
                if isinstance(ev, Finished):
                    answer = ev.answer
        except Exception as e:
            return fail(ep, e)
        finally:
            watcher.cancel()
        if answer is None:  # the client went away and the job was cancelled
            metrics.request(ep, 499)
            return JSONResponse(error_body("client closed the request", "cancelled"), 499)
        _observe(answer)
        memory.put(audio_id, answer.text)
        b64 = None
        if req.audio_out:
            b64 = base64.b64encode(
                encode_audio(answer.audio, answer.sample_rate, req.output_format)
            ).decode()
        usage = {"prompt_tokens": answer.timings.prefill_tokens,
                 "completion_tokens": answer.timings.generated_tokens,
                 "total_tokens": answer.timings.prefill_tokens + answer.timings.generated_tokens}  # fmt: skip
        metrics.request(ep, 200)
        body = completion(req, cid, audio_id, answer.text, b64, usage)
        body["aqaa"] = {"timings": answer.timings.as_dict(), "styles": answer.styles}
        return JSONResponse(body)

    def _observe(answer: Any) -> None:
        metrics.observe("first_audio_seconds", answer.timings.first_audio)
        metrics.observe("rtf", answer.timings.rtf)
        metrics.observe("answer_seconds", answer.timings.total)

    async def _sse(req: ChatRequest, job: Any, cid: str, audio_id: str) -> Any:
        def event(obj: dict) -> str:
            return f"data: {json.dumps(obj)}\n\n"

        status = 200
        try:
            yield event(chunk(req, cid, {"role": "assistant", "content": ""}))
            async for ev in job.events(cfg.timeout):
                if isinstance(ev, TextDelta):
                    delta = ({"audio": {"id": audio_id, "transcript": ev.text}} if req.audio_out
                             else {"content": ev.text})  # fmt: skip
                    yield event(chunk(req, cid, delta))
                elif isinstance(ev, AudioChunk):
                    data = base64.b64encode(encode_audio(ev.samples, ev.sample_rate, "pcm16"))
                    yield event(chunk(req, cid, {"audio": {"id": audio_id, "data": data.decode()}}))
                elif isinstance(ev, Finished):
                    _observe(ev.answer)
                    memory.put(audio_id, ev.answer.text)
                    last = chunk(req, cid, {"audio": {"id": audio_id,
                                                      "expires_at": int(time.time()) + 3600}}
                                 if req.audio_out else {}, "stop")  # fmt: skip
                    last["aqaa"] = {"timings": ev.answer.timings.as_dict()}
                    yield event(last)
            yield "data: [DONE]\n\n"
        except Exception as e:
            status, body = _error_response(e)
            yield event(body)
        finally:
            job.cancel()  # no-op when finished; stops the engine if the client went away
            metrics.request("chat_stream", status)

    @app.websocket("/v1/realtime")
    async def realtime(ws: WebSocket) -> None:
        from aqaa.serve.realtime import RealtimeSession

        await RealtimeSession(ws, worker, cfg, metrics).run()

    return app


ENV_MODEL = "AQAA_MODEL_DIR"
ENV_CONFIG = "AQAA_SERVE_CONFIG"


def app_from_env() -> FastAPI:
    """The app factory `aqaa serve` hands to uvicorn (one engine per worker process); the model
    directory and the limits come from the environment the CLI sets."""
    import dataclasses
    import os

    from aqaa.engine import Engine

    engine = Engine.load(os.environ.get(ENV_MODEL) or None)
    raw = json.loads(os.environ.get(ENV_CONFIG) or "{}")
    known = {f.name for f in dataclasses.fields(ServeConfig)}
    return create_app(engine, ServeConfig(**{k: v for k, v in raw.items() if k in known}))
