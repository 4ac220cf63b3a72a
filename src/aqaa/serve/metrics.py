"""Prometheus-style counters and summaries, written by hand: a handful of numbers does not need
the `prometheus_client` dependency, and the text format is simple (version 0.0.4)."""

from __future__ import annotations

import threading
from collections import defaultdict


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.last: dict[str, float] = {}

    def request(self, endpoint: str, status: int) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1

    def observe(self, name: str, value: float | None) -> None:
        if value is None:
            return
        with self._lock:
            self.sums[name] += value
            self.counts[name] += 1
            self.last[name] = value

    def render(self, queue_depth: int) -> str:
        with self._lock:
            lines = [
                "# HELP aqaa_requests_total Requests by endpoint and HTTP status.",
                "# TYPE aqaa_requests_total counter",
            ]
            for (ep, st), n in sorted(self.requests.items()):
                lines.append(f'aqaa_requests_total{{endpoint="{ep}",status="{st}"}} {n}')
            errors = sum(n for (_, st), n in self.requests.items() if st >= 400)
            lines += [
                "# HELP aqaa_errors_total Requests answered with a 4xx or 5xx status.",
                "# TYPE aqaa_errors_total counter",
                f"aqaa_errors_total {errors}",
                "# HELP aqaa_queue_depth Requests waiting for or using the engine.",
                "# TYPE aqaa_queue_depth gauge",
                f"aqaa_queue_depth {queue_depth}",
            ]
            helps = {
                "first_audio_seconds": "Time from the end of the question to the first audio.",
                "rtf": "Generation time over the duration of the generated speech.",
                "answer_seconds": "Time to generate a whole answer.",
            }
            for name, text in helps.items():
                m = f"aqaa_{name}"
                lines += [f"# HELP {m} {text}", f"# TYPE {m} summary",
                          f"{m}_sum {self.sums.get(name, 0.0):.6f}",
                          f"{m}_count {self.counts.get(name, 0)}"]  # fmt: skip
            return "\n".join(lines) + "\n"
