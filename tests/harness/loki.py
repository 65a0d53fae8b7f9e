"""Loki (built from its Go module) in monolithic mode with the config that ships in k8s/loki/."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

from .grafana_store import GrafanaStore
from .procs import REPO, free_port

CONFIG = REPO / "k8s" / "loki" / "loki.yaml"


class Loki(GrafanaStore):
    def __init__(self, base_dir: Path, name: str = "loki"):
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.data_dir = base_dir / f"{name}-data"
        self._launch("loki", CONFIG, base_dir, name, {
            "LOKI_HTTP_PORT": str(self.http_port),
            "LOKI_GRPC_PORT": str(self.grpc_port),
            "LOKI_DATA_DIR": str(self.data_dir),
            "LOKI_LISTEN_ADDR": "127.0.0.1",
            "LOKI_LOG_LEVEL": "warn",
        })

    @property
    def otlp_endpoint(self) -> str:
        """What an otlp_http exporter is given: it appends /v1/logs."""
        return f"{self.url}/otlp"

    def stop(self) -> None:
        self.process.stop()

    def _get(self, path: str, params: dict[str, str], timeout: float = 10) -> dict:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())

    def query(self, logql: str, since_s: int = 3600, limit: int = 1000, timeout: float = 10) -> list[dict]:
        """Entries of a LogQL log query: [{"labels": {...stream labels + structured metadata}, "line": ...}]."""
        now = time.time_ns()
        data = self._get("/loki/api/v1/query_range", {
            "query": logql, "start": str(now - since_s * 10**9), "end": str(now + 10**9),
            "limit": str(limit), "direction": "forward",
        }, timeout=timeout)
        entries = []
        for stream in data["data"]["result"]:
            for value in stream["values"]:
                labels = dict(stream["stream"])
                if len(value) > 2:  # categorised labels, when Loki sends them separately
                    for group in value[2].values():
                        labels.update(group)
                entries.append({"labels": labels, "ts": value[0], "line": value[1]})
        return entries

    def label_values(self, label: str) -> list[str]:
        return self._get(f"/loki/api/v1/label/{label}/values", {}).get("data", [])

    def wait_for(self, logql: str, count: int = 1, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        entries: list[dict] = []
        while time.monotonic() < deadline:
            entries = self.query(logql)
            if len(entries) >= count:
                return entries
            time.sleep(0.25)
        raise AssertionError(f"Loki returned {len(entries)} < {count} entries for {logql} within {timeout}s")
