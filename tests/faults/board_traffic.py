"""The frontend's mix of requests (logins, message posts and reads) for SteadyLoad, recording each
served request with its completion time, so a test can count the telemetry it must have caused."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import requests

from devstack.load import SteadyLoad

PASSWORD = "correct-horse-battery-staple"
# One in ten requests a login, four posts, five reads. A load thread logs in first (its session
# needs the cookie to post), then walks this cycle.
MIX = ("login", "get", "post", "get", "post", "get", "post", "get", "post", "get")
# Log records the backend emits per successful request of each kind ("user signed up",
# "login succeeded", "message posted"); reads log nothing. Every request makes one SERVER span.
LOG_RECORDS = {"signup": 1, "login": 1, "post": 1, "get": 0}
REQUEST_TIMEOUT_S = 10


@dataclass(frozen=True)
class Served:
    done_at: float  # time.monotonic() when the response arrived
    kind: str
    status: int


class BoardTraffic:
    def __init__(self, base_url: str):
        self.base_url = base_url
        # Telemetry of this traffic is no older than this: where a count in Tempo or Loki starts.
        self.started_epoch = time.time()
        self.username = f"load_{uuid.uuid4().hex[:10]}"
        self._lock = threading.Lock()
        self._served: list[Served] = []

    def _send(self, http: requests.Session, kind: str) -> requests.Response:
        if kind == "signup":
            resp = http.post(self.base_url + "/api/auth/signup", timeout=REQUEST_TIMEOUT_S,
                             json={"username": self.username, "password": PASSWORD})
        elif kind == "login":
            resp = http.post(self.base_url + "/api/auth/login", timeout=REQUEST_TIMEOUT_S,
                             json={"username": self.username, "password": PASSWORD})
        elif kind == "post":
            resp = http.post(self.base_url + "/api/messages", json={"body": "steady load"}, timeout=REQUEST_TIMEOUT_S)
        else:
            resp = http.get(self.base_url + "/api/messages?limit=20", timeout=REQUEST_TIMEOUT_S)
        with self._lock:
            self._served.append(Served(time.monotonic(), kind, resp.status_code))
        return resp

    @classmethod
    def signed_up(cls, base_url: str) -> "BoardTraffic":
        traffic = cls(base_url)
        resp = traffic._send(requests.Session(), "signup")
        assert resp.status_code == 201, resp.text
        return traffic

    def steady_load(self, threads: int = 4, interval_s: float = 0.15, **kwargs) -> SteadyLoad:
        """The fault tests' load by default: about 20 requests/s from four threads."""
        return SteadyLoad(self, threads=threads, interval_s=interval_s, **kwargs)

    def __call__(self, http: requests.Session) -> requests.Response:
        """One request of the mix; `http` is the calling load thread's own session."""
        n = getattr(http, "board_requests", 0)
        http.board_requests = n + 1
        return self._send(http, MIX[n % len(MIX)])

    def served(self, start: float = float("-inf"), end: float = float("inf")) -> list[Served]:
        with self._lock:
            return [s for s in self._served if start <= s.done_at <= end]

    def server_spans(self, start: float = float("-inf"), end: float = float("inf")) -> int:
        """SERVER spans the backend made for requests answered between start and end."""
        return len(self.served(start, end))

    def log_records(self, start: float = float("-inf"), end: float = float("inf")) -> int:
        """Log records the backend emitted for successful requests answered between start and end."""
        return sum(LOG_RECORDS[s.kind] for s in self.served(start, end) if s.status < 300)

    def summary(self) -> str:
        served = self.served()
        kinds = {k: sum(1 for s in served if s.kind == k) for k in LOG_RECORDS}
        return f"{len(served)} requests served ({', '.join(f'{k}={v}' for k, v in kinds.items())})"
