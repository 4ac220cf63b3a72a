"""One engine per server process, fed from a bounded queue.

An `Engine` holds one KV cache and is used by one request at a time, so requests run one after
another on a single worker thread. The queue is bounded: when `max_queue` requests are already
waiting or running, `submit` raises `QueueFull` (HTTP 429) at once instead of letting latency grow
without bound. Each job streams its events back to the event loop; `Job.cancel()` stops a running
answer at its next token (barge-in, client gone, timeout) or drops a job that has not started.
Scale out with `aqaa serve --workers N` (N processes, N engines).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

_DONE = object()


class QueueFull(RuntimeError):
    """The server is busy: too many requests waiting."""


class Job:
    """A unit of work on the engine; iterate `events()` on the event loop."""

    def __init__(
        self, worker: EngineWorker, fn: Callable[[Any, Callable[[Any], None]], Any]
    ) -> None:
        self.worker = worker
        self.fn = fn
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = threading.Event()
        self.running = False

    def _emit(self, item: Any) -> None:
        if self.cancelled.is_set():  # a cancel that raced the engine's own reset: assert it again
            self.worker.engine.cancel()
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def _run(self) -> None:
        try:
            if self.cancelled.is_set():
                return
            self.running = True
            self.worker.engine._cancel.clear()  # a fresh answer (listen() also clears it)
            if self.cancelled.is_set():
                return
            self.fn(self.worker.engine, self._emit)
        except BaseException as e:  # delivered to the awaiting request
            self._emit(e)
        finally:
            self.running = False
            self.worker._release(self)
            self._emit(_DONE)

    def cancel(self) -> None:
        self.cancelled.set()
        if self.running:
            self.worker.engine.cancel()

    async def events(self, timeout: float | None = None) -> AsyncIterator[Any]:
        """The job's events in order; raises the job's exception, or `TimeoutError` (after
        cancelling the job) when `timeout` seconds pass without the job finishing."""
        deadline = None if timeout is None else self.loop.time() + timeout
        while True:
            left = None if deadline is None else deadline - self.loop.time()
            if left is not None and left <= 0:
                self.cancel()
                raise TimeoutError("the answer took too long")
            try:
                item = await asyncio.wait_for(self.queue.get(), left)
            except TimeoutError:
                self.cancel()
                raise TimeoutError("the answer took too long") from None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class EngineWorker:
    def __init__(self, engine: Any, max_queue: int = 8) -> None:
        self.engine = engine
        self.max_queue = max_queue
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aqaa-engine")
        self._lock = threading.Lock()
        self.pending = 0
        self._jobs: set[Job] = set()

    def submit(self, fn: Callable[[Any, Callable[[Any], None]], Any]) -> Job:
        """Queue `fn(engine, emit)`; raises `QueueFull` when the queue is full."""
        job = Job(self, fn)
        with self._lock:
            if self.pending >= self.max_queue:
                raise QueueFull(f"{self.pending} requests are already waiting; try again shortly")
            self.pending += 1
            self._jobs.add(job)
        self._pool.submit(job._run)
        return job

    def _release(self, job: Job) -> None:
        with self._lock:
            self.pending -= 1
            self._jobs.discard(job)

    def shutdown(self) -> None:
        """Drop queued jobs, stop the running answer at its next token and wait for it, so the
        engine is idle when this returns (it may be shared with another app, e.g. a restart)."""
        for job in list(self._jobs):
            job.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
