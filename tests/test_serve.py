"""The server: the real `openai` client against a live uvicorn on loopback, error handling,
limits, metrics, and the realtime WebSocket (tiny random model: plumbing, not quality)."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import running_server

from aqaa.audio import load_audio
from aqaa.engine import Engine
from aqaa.serve.app import ServeConfig, create_app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
QUESTION = EXAMPLES / "question.wav"
QUESTION_B64 = base64.b64encode(QUESTION.read_bytes()).decode()
TRUNCATED_B64 = base64.b64encode(QUESTION.read_bytes()[:1000]).decode()
JUNK = base64.b64encode(b"RIFF junk" * 50).decode()


def audio_message(b64: str = QUESTION_B64, fmt: str = "wav") -> dict:
    return {"role": "user",
            "content": [{"type": "input_audio", "input_audio": {"data": b64, "format": fmt}}]}  # fmt: skip


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Engine:
    torch.set_num_threads(1)
    return Engine.load(tiny_model_dir)


@pytest.fixture(scope="module")
def server(engine: Engine):
    app = create_app(engine, ServeConfig(max_upload_bytes=2_000_000, max_queue=4, timeout=60))
    with running_server(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server[0]}/v1", api_key="not-needed")


def test_openai_client_non_streaming(client) -> None:
    r = client.chat.completions.create(
        model="aqaa", modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"},
        messages=[{"role": "system", "content": "Be brief."}, audio_message()],
        max_tokens=120, seed=1,
    )  # fmt: skip
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "stop"
    wav, sr = sf.read(io.BytesIO(base64.b64decode(msg.audio.data)))
    assert sr == 24000 and len(wav) % 2880 == 0  # whole 120 ms groups
    assert isinstance(msg.audio.transcript, str)
    assert r.usage.completion_tokens <= 120 and r.usage.prompt_tokens > 50

    # the next turn refers to that answer by its audio id (the server remembers the transcript)
    r2 = client.chat.completions.create(
        model="aqaa", modalities=["text", "audio"], audio={"voice": "alloy", "format": "pcm16"},
        messages=[audio_message(), {"role": "assistant", "audio": {"id": msg.audio.id}},
                  audio_message()],
        max_tokens=60,
    )  # fmt: skip
    pcm = base64.b64decode(r2.choices[0].message.audio.data)
    assert len(pcm) % (2 * 2880) == 0


def test_openai_client_streaming(client) -> None:
    stream = client.chat.completions.create(
        model="aqaa", modalities=["text", "audio"], audio={"voice": "alloy", "format": "pcm16"},
        messages=[audio_message()], max_tokens=150, seed=2, stream=True,
    )  # fmt: skip
    pcm, transcript, finish = b"", "", None
    for ch in stream:
        d = ch.choices[0].delta
        audio = getattr(d, "audio", None)
        if audio:
            audio = audio if isinstance(audio, dict) else audio.model_dump()
            if audio.get("data"):
                pcm += base64.b64decode(audio["data"])
            transcript += audio.get("transcript") or ""
        finish = ch.choices[0].finish_reason or finish
    assert finish == "stop"
    assert len(pcm) > 0 and len(pcm) % 2 == 0
    x = np.frombuffer(pcm, "<i2")
    assert np.abs(x).max() > 0  # it is a signal, not silence


def test_text_only_modality(client) -> None:
    r = client.chat.completions.create(
        model="aqaa", modalities=["text"], messages=[audio_message()], max_tokens=40
    )
    assert r.choices[0].message.audio is None and isinstance(r.choices[0].message.content, str)


def test_models_health_metrics(server) -> None:
    url, _ = server
    assert httpx.get(f"{url}/v1/models").json()["data"][0]["id"] == "aqaa"
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    text = httpx.get(f"{url}/metrics").text
    assert "aqaa_requests_total" in text and "aqaa_first_audio_seconds_count" in text
    assert "<html" in httpx.get(f"{url}/").text.lower()


@pytest.mark.parametrize(
    "body, status, needle",
    [
        (b"{not json", 400, "not valid json"),
        (json.dumps({"messages": []}).encode(), 400, "non-empty"),
        (
            json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(),
            400,
            "input_audio",
        ),
        (json.dumps({"messages": [audio_message("!!!notbase64")]}).encode(), 400, "base64"),
        (
            json.dumps(
                {"messages": [audio_message(base64.b64encode(b"RIFF junk" * 50).decode())]}
            ).encode(),
            400,
            "audio",
        ),
        (
            json.dumps({"messages": [audio_message()], "audio": {"format": "aac"}}).encode(),
            400,
            "audio.format",
        ),
        (
            json.dumps({"messages": [audio_message(TRUNCATED_B64)]}).encode(),
            400,
            "too short",
        ),
        (b"x" * 2_100_000, 413, "larger than"),
        (json.dumps({"messages": [audio_message()]}).encode(), 415, "content-type"),
    ],
    ids=["json", "empty", "text", "b64", "junk", "format", "truncated", "huge", "ctype"],
)
def test_bad_requests_get_clear_json_errors(server, body: bytes, status: int, needle: str) -> None:
    url, _ = server
    ctype = "text/plain" if status == 415 else "application/json"
    r = httpx.post(f"{url}/v1/chat/completions", content=body,
                   headers={"content-type": ctype}, timeout=30)  # fmt: skip
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert needle in err["message"].lower()
    assert "traceback" not in r.text.lower()
    assert httpx.get(f"{url}/health").json()["status"] == "ok"  # and the server keeps serving


def test_ten_minutes_of_audio_is_refused(engine: Engine) -> None:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(600 * 16000, np.int16), 16000, format="WAV", subtype="PCM_16")
    body = {"messages": [audio_message(base64.b64encode(buf.getvalue()).decode())]}
    app = create_app(engine, ServeConfig(max_upload_bytes=64 * 2**20, max_audio_seconds=30))
    with running_server(app) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
        assert r.status_code == 400, r.text
        assert "too long" in r.json()["error"]["message"]
        ok = httpx.post(f"{url}/v1/chat/completions", timeout=60,
                        json={"messages": [audio_message()], "max_tokens": 30})  # fmt: skip
        assert ok.status_code == 200


def test_silent_audio_is_a_400(server) -> None:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(16000, np.float32), 16000, format="WAV")
    body = {"messages": [audio_message(base64.b64encode(buf.getvalue()).decode())]}
    r = httpx.post(f"{server[0]}/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 400 and "silent" in r.json()["error"]["message"].lower()


def test_full_queue_is_a_429(engine: Engine) -> None:
    from fastapi.testclient import TestClient

    app = create_app(engine, ServeConfig(max_queue=0))
    with TestClient(app) as c:
        r = c.post("/v1/chat/completions", json={"messages": [audio_message()]})
    assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full"


def test_timeout_cancels_and_is_a_504(engine: Engine) -> None:
    from fastapi.testclient import TestClient

    app = create_app(engine, ServeConfig(timeout=0.05))
    with TestClient(app) as c:
        r = c.post("/v1/chat/completions", json={"messages": [audio_message()]})
    assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"


def _pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def test_realtime_websocket_vad_turn_and_explicit_end(engine: Engine) -> None:
    from fastapi.testclient import TestClient

    x = load_audio(QUESTION)
    speech = np.concatenate([np.zeros(8000, np.float32), x, np.zeros(16000, np.float32)])
    app = create_app(engine)
    with TestClient(app) as c, c.websocket_connect("/v1/realtime") as ws:
        assert ws.receive_json()["type"] == "session.created"
        for i in range(0, len(speech), 3200):  # 200 ms frames, as a microphone sends them
            ws.send_bytes(_pcm16(speech[i : i + 3200]))
        kinds, done = [], None
        while done is None:
            m = ws.receive_json()
            kinds.append(m["type"])
            assert m["type"] != "error", m
            if m["type"] == "response.done":
                done = m
        assert kinds[:2] == ["speech.started", "speech.stopped"]
        assert "response.audio.delta" in kinds and not done["cancelled"]
        # push-to-talk: audio, then an explicit end of turn
        ws.send_bytes(_pcm16(x[:16000]))
        ws.send_text(json.dumps({"type": "input.end"}))
        while (m := ws.receive_json())["type"] != "response.done":
            assert m["type"] != "error", m
        ws.send_text("not json")
        assert ws.receive_json()["type"] == "error"


def test_bounded_load_test_loses_nothing(engine: Engine) -> None:
    """Clients outnumber the queue: some get 429 and retry; every request ends in one outcome and
    the server's counters add up to what was sent."""
    from aqaa.serve.loadtest import ANSWERED, REJECTED, LoadConfig, loopback_server, run_load

    app = create_app(engine, ServeConfig(max_queue=1, timeout=60))
    cfg = LoadConfig(clients=4, seconds=4.0, max_tokens=60, backoff=0.2, request_timeout=60)
    with loopback_server(app) as url:
        result = run_load(url, QUESTION.read_bytes(), cfg, progress=False)
    s = result.summary()
    assert s["sent"] == len(result.records) > 0
    assert s["answered"] > 0 and s["rejected_429"] > 0
    assert s["errors"] == 0 and s["hung"] == 0 and s["lost"] == 0
    assert {r.outcome for r in result.records} <= {ANSWERED, REJECTED}
    assert any(r.stream for r in result.records) and any(not r.stream for r in result.records)
    assert all(
        r.first_audio is not None for r in result.records if r.stream and r.outcome == ANSWERED
    )
    assert s["latency_p50"] <= s["latency_p90"] <= s["latency_max"]
    assert len(result.rss) >= 3 and s["rss_peak_mb"] >= s["rss_start_mb"] > 0


def test_load_test_counts_a_hung_request(engine: Engine) -> None:
    from aqaa.serve.loadtest import HUNG, LoadConfig, loopback_server, run_load

    app = create_app(engine, ServeConfig(max_queue=50, timeout=60))
    cfg = LoadConfig(clients=1, seconds=0.5, max_tokens=1000, request_timeout=0.05)
    with loopback_server(app) as url:
        result = run_load(url, QUESTION.read_bytes(), cfg, progress=False)
        # Abandoned requests were cancelled on disconnect: the engine is free again at once.
        for _ in range(50):
            if httpx.get(f"{url}/health").json()["queue"] == 0:
                break
            time.sleep(0.1)
        assert httpx.get(f"{url}/health").json()["queue"] == 0
    assert result.records and all(r.outcome == HUNG for r in result.records)
    assert "no answer within" in result.records[0].detail


def test_shutdown_stops_and_waits_for_the_running_answer() -> None:
    """A cancel that lands while the engine resets its flag is not lost, and `shutdown` returns
    only when the engine is idle (an engine shared by two apps never runs two answers)."""
    import asyncio
    import threading

    from aqaa.serve.worker import EngineWorker

    class SlowEngine:
        def __init__(self) -> None:
            self._cancel = threading.Event()
            self.tokens = 0
            self.finished = threading.Event()

        def cancel(self) -> None:
            self._cancel.set()

    def answer(engine: SlowEngine, emit) -> None:
        time.sleep(0.2)
        engine._cancel.clear()  # as `Engine.listen` does, after the job was cancelled
        while not engine._cancel.is_set() and engine.tokens < 1000:
            engine.tokens += 1
            emit(engine.tokens)
            time.sleep(0.01)
        engine.finished.set()

    async def main() -> SlowEngine:
        eng = SlowEngine()
        worker = EngineWorker(eng)
        job = worker.submit(answer)
        await asyncio.sleep(0.05)
        job.cancel()
        await asyncio.to_thread(worker.shutdown)
        assert eng.finished.is_set()
        return eng

    eng = asyncio.run(main())
    assert eng.tokens < 5
