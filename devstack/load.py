"""A steady request load from a few threads, counting every request by outcome and keeping latencies."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import requests

Request = Callable[[requests.Session], requests.Response]


@dataclass
class LoadResult:
    counts: collections.Counter = field(default_factory=collections.Counter)
    latencies_s: list[float] = field(default_factory=list)
    codes: collections.Counter = field(default_factory=collections.Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        parts = ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        codes = ", ".join(f"{k}={v}" for k, v in sorted(self.codes.items()))
        worst = max(self.latencies_s, default=0.0)
        return f"{self.total} requests ({parts}); error codes: {codes or 'none'}; slowest {worst:.2f}s"


class SteadyLoad:
    """Each thread sends `request` in a loop, `interval_s` apart, until stopped (or `max_requests`)."""

    def __init__(self, request: Request, threads: int = 2, interval_s: float = 0.02, max_requests: int = 100_000):
        self.request = request
        self.threads = threads
        self.interval_s = interval_s
        self.max_requests = max_requests
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def _run(self) -> None:
        http = requests.Session()
        while not self._stop.is_set() and self.result.total < self.max_requests:
            started = time.monotonic()
            try:
                resp = self.request(http)
                outcome = str(resp.status_code)
                code = resp.json().get("error", {}).get("code") if resp.status_code >= 400 else None
            except requests.RequestException as exc:
                outcome, code = "transport_error", type(exc).__name__
            except ValueError:
                outcome, code = "non_json", None
            elapsed = time.monotonic() - started
            with self._lock:
                self.result.counts[outcome] += 1
                self.result.latencies_s.append(elapsed)
                if code:
                    self.result.codes[code] += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "SteadyLoad":
        for i in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True, name=f"load-{i}")
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)

    def snapshot(self) -> LoadResult:
        with self._lock:
            return LoadResult(collections.Counter(self.result.counts), list(self.result.latencies_s),
                              collections.Counter(self.result.codes))
