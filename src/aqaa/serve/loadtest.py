"""A bounded load test of the chat API on loopback (`aqaa bench load`).

`clients` coroutines each send `POST /v1/chat/completions` with one spoken question, one after the
other, until `seconds` have passed; half of them ask for a streamed (SSE) answer. A client that gets
429 (queue full) waits a little and tries again, as a polite client would. Every request has its own
time limit, so a hung request is counted as such rather than stalling the test, and after the
deadline the test waits for the requests still in flight (again bounded), so every request sent ends
in exactly one of: answered, rejected (429), error (other status or a broken stream) or hung.

The server runs in this process (uvicorn on a free 127.0.0.1 port, in a thread) unless a URL is
given; its resident memory is sampled once a second. Afterwards the server's own request counters
(`/metrics`) must add up to what the clients sent: no request lost.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Request outcomes.
ANSWERED, REJECTED, ERROR, HUNG = "answered", "rejected", "error", "hung"


@dataclass
class LoadConfig:
    clients: int = 20
    seconds: float = 60.0
    #: Share of requests that ask for a streamed (SSE) answer.
    stream_share: float = 0.5
    #: Per-request limit (s); a request past it counts as hung.
    request_timeout: float = 120.0
    #: Pause before retrying after a 429 (s, uniform in [0.5, 1.5] × this).
    backoff: float = 1.0
    #: Token limit per answer (None: the server's default).
    max_tokens: int | None = None
    seed: int = 0


@dataclass
class RequestRecord:
    client: int
    stream: bool
    start: float
    outcome: str
    status: int
    latency: float
    first_audio: float | None = None
    detail: str = ""


@dataclass
class LoadResult:
    config: LoadConfig
    wall_seconds: float
    records: list[RequestRecord] = field(default_factory=list)
    #: (seconds since start, resident set size in MB) of the server process.
    rss: list[tuple[float, float]] = field(default_factory=list)
    #: Requests the server counted on the chat endpoints during the test (None for a remote URL
    #: whose counters were not readable).
    server_counted: int | None = None

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.records)

    @property
    def lost(self) -> int | None:
        """Requests the clients sent that the server never counted."""
        if self.server_counted is None:
            return None
        return len(self.records) - self.count(HUNG) - self.server_counted

    def summary(self) -> dict[str, Any]:
        ok = [r for r in self.records if r.outcome == ANSWERED]
        lat = sorted(r.latency for r in ok)
        fa = sorted(r.first_audio for r in ok if r.first_audio is not None)
        rss = [m for _, m in self.rss]
        half = rss[len(rss) // 2 :] if rss else []
        return {
            "clients": self.config.clients,
            "seconds": round(self.wall_seconds, 1),
            "sent": len(self.records),
            "answered": len(ok),
            "rejected_429": self.count(REJECTED),
            "errors": self.count(ERROR),
            "hung": self.count(HUNG),
            "lost": self.lost,
            "answers_per_minute": round(60.0 * len(ok) / max(self.wall_seconds, 1e-9), 2),
            "latency_p50": _pct(lat, 50),
            "latency_p90": _pct(lat, 90),
            "latency_p99": _pct(lat, 99),
            "latency_max": round(lat[-1], 3) if lat else None,
            "stream_first_audio_p50": _pct(fa, 50),
            "stream_first_audio_p90": _pct(fa, 90),
            "rss_start_mb": round(rss[0], 1) if rss else None,
            "rss_peak_mb": round(max(rss), 1) if rss else None,
            "rss_end_mb": round(rss[-1], 1) if rss else None,
            # Growth over the second half of the run, when every buffer has been allocated once.
            "rss_second_half_growth_mb": round(half[-1] - half[0], 1) if len(half) > 1 else None,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "config": asdict(self.config),
            "rss": self.rss,
            "records": [asdict(r) for r in self.records],
        }


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    if len(xs) == 1:
        return round(xs[0], 3)
    return round(statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1], 3)


def chat_body(wav: bytes, stream: bool, max_tokens: int | None = None) -> dict[str, Any]:
    """An OpenAI audio-chat request body with one spoken question."""
    part = {"type": "input_audio",
            "input_audio": {"data": base64.b64encode(wav).decode(), "format": "wav"}}  # fmt: skip
    return {
        "model": "aqaa",
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "wav"},
        "messages": [{"role": "user", "content": [part]}],
        "stream": stream,
    } | ({"max_tokens": max_tokens} if max_tokens else {})


async def _one_request(
    client: Any, url: str, body: dict, cfg: LoadConfig, cid: int
) -> RequestRecord:
    import httpx

    stream = bool(body["stream"])
    t0 = time.perf_counter()

    def rec(
        outcome: str, status: int, first: float | None = None, detail: str = ""
    ) -> RequestRecord:
        return RequestRecord(
            cid, stream, t0, outcome, status, time.perf_counter() - t0, first, detail
        )

    try:
        async with asyncio.timeout(cfg.request_timeout):
            if not stream:
                r = await client.post(f"{url}/v1/chat/completions", json=body)
                if r.status_code == 429:
                    return rec(REJECTED, 429)
                if r.status_code != 200:
                    return rec(ERROR, r.status_code, detail=r.text[:200])
                audio = r.json()["choices"][0]["message"].get("audio") or {}
                if not audio.get("data"):
                    return rec(ERROR, 200, detail="no audio in the answer")
                return rec(ANSWERED, 200)
            async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
                if r.status_code == 429:
                    await r.aread()
                    return rec(REJECTED, 429)
                if r.status_code != 200:
                    return rec(ERROR, r.status_code, detail=(await r.aread())[:200].decode())
                first, done = None, False
                async for line in r.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    data = line[6:]
                    if data == "[DONE]":
                        done = True
                        break
                    ev = json.loads(data)
                    if "error" in ev:
                        return rec(ERROR, 200, first, ev["error"].get("message", "")[:200])
                    delta = ev["choices"][0]["delta"]
                    if first is None and (delta.get("audio") or {}).get("data"):
                        first = time.perf_counter() - t0
                if not done:
                    return rec(ERROR, 200, first, "stream ended without [DONE]")
                if first is None:
                    return rec(ERROR, 200, None, "no audio in the stream")
                return rec(ANSWERED, 200, first)
    except TimeoutError:
        return rec(HUNG, 0, detail=f"no answer within {cfg.request_timeout:.0f} s")
    except httpx.HTTPError as e:
        return rec(ERROR, 0, detail=f"{type(e).__name__}: {e}"[:200])


async def _client(cid: int, url: str, wav: bytes, cfg: LoadConfig, deadline: float,
                  out: list[RequestRecord]) -> None:  # fmt: skip
    import httpx

    rng = random.Random(f"{cfg.seed}:{cid}")
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(timeout=cfg.request_timeout + 5, limits=limits) as client:
        while time.perf_counter() < deadline:
            body = chat_body(wav, rng.random() < cfg.stream_share, cfg.max_tokens)
            r = await _one_request(client, url, body, cfg, cid)
            out.append(r)
            if r.outcome == REJECTED:
                await asyncio.sleep(cfg.backoff * rng.uniform(0.5, 1.5))


def _rss_mb() -> float:
    """Resident set size of this process (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _chat_requests_counted(url: str) -> int:
    """Sum of the server's request counters for the chat endpoints."""
    import httpx

    total = 0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("aqaa_requests_total{") and 'endpoint="chat' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def run_load(url: str, wav: bytes, cfg: LoadConfig, sample_rss: bool = True,
             progress: bool = True) -> LoadResult:  # fmt: skip
    """Drive `url` with `cfg.clients` clients for `cfg.seconds`; see the module docstring."""
    from tqdm import tqdm

    if cfg.clients < 1 or cfg.seconds <= 0:
        raise ValueError("need at least one client and a positive duration")
    before = _chat_requests_counted(url)
    records: list[RequestRecord] = []
    rss: list[tuple[float, float]] = []
    t0 = time.perf_counter()
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            if sample_rss:
                rss.append((round(time.perf_counter() - t0, 2), round(_rss_mb(), 1)))
            stop.wait(1.0)

    async def main() -> None:
        deadline = time.perf_counter() + cfg.seconds
        tasks = [asyncio.create_task(_client(i, url, wav, cfg, deadline, records))
                 for i in range(cfg.clients)]  # fmt: skip
        with tqdm(total=int(cfg.seconds), unit="s", disable=not progress, desc="load") as bar:
            while not all(t.done() for t in tasks):
                await asyncio.sleep(1.0)
                bar.n = min(int(time.perf_counter() - t0), int(cfg.seconds))
                bar.set_postfix(sent=len(records),
                                answered=sum(r.outcome == ANSWERED for r in records))  # fmt: skip
        await asyncio.gather(*tasks)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    try:
        asyncio.run(main())
    finally:
        stop.set()
        th.join(timeout=5)
    result = LoadResult(cfg, time.perf_counter() - t0, records, rss)
    result.server_counted = _chat_requests_counted(url) - before
    return result


@contextlib.contextmanager
def loopback_server(app: Any, startup_seconds: float = 30.0) -> Iterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    import httpx
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + startup_seconds
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > end or not th.is_alive():
            srv.should_exit = True
            raise RuntimeError(f"the server did not start within {startup_seconds:.0f} s")
        time.sleep(0.1)
    try:
        yield url
    finally:
        srv.should_exit = True
        th.join(timeout=10)
