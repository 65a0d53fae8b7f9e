"""Prometheus, built from github.com/prometheus/prometheus (tools/prometheus), running the shipped config
and rules laid out as the pod mounts them, with the StatefulSet's flags."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import requests

from . import builds, kustomize
from .procs import REPO, LocalService, Process, free_port, http_ok, poll_for

CONFIG_DIR = REPO / "k8s" / "prometheus"


class Prometheus(LocalService):
    def __init__(self, base_dir: Path, alertmanager: str | None = None):
        self.port = free_port()
        self.conf_dir = base_dir / "prometheus-etc"
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CONFIG_DIR / "prometheus.yml", self.conf_dir / "prometheus.yml")
        shutil.copytree(CONFIG_DIR / "rules", self.conf_dir / "rules", dirs_exist_ok=True)
        targets = [alertmanager] if alertmanager else []
        (self.conf_dir / "alertmanagers.yml").write_text(f"- targets: {targets!r}\n".replace("'", '"'))
        argv = [builds.tool("prometheus"), *kustomize.local_args("StatefulSet", "prometheus", **{
            "--config.file": str(self.conf_dir / "prometheus.yml"),
            "--storage.tsdb.path": str(base_dir / "prometheus-data"),
            "--web.listen-address": f"127.0.0.1:{self.port}"})]
        self.process = Process("prometheus", argv, base_dir, ready=lambda: http_ok(f"{self.url}/-/ready"),
                               ready_timeout=60)

    @property
    def otlp_endpoint(self) -> str:
        """What an otlp_http exporter takes (it appends /v1/metrics)."""
        return f"{self.url}/api/v1/otlp"

    def _api(self, path: str, **params: Any) -> Any:
        resp = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = resp.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {resp.status_code} {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[dict]:
        """An instant query's result vector: [{"metric": {...labels}, "value": [ts, "v"]}, ...]."""
        return self._api("query", query=promql)["result"]

    def series(self, match: str) -> list[dict]:
        return self._api("series", **{"match[]": match})

    def exemplars(self, promql: str, since_s: float = 3600) -> list[dict]:
        now = time.time()
        return self._api("query_exemplars", query=promql, start=now - since_s, end=now)

    def wait_for_series(self, name: str, timeout: float = 5) -> bool:
        """Whether any series called `name` exists (waiting up to `timeout`, e.g. for a rule to run)."""
        deadline = time.monotonic() + timeout
        while not self.series(name):
            if time.monotonic() > deadline:
                return False
            time.sleep(1)
        return True

    def alerts(self) -> list[dict]:
        return self._api("alerts")["alerts"]

    def alerts_named(self, alertname: str, **labels: str) -> list[dict]:
        """Active alerts of that name whose labels include `labels`: state "pending" or "firing", activeAt."""
        return [a for a in self.alerts() if a["labels"].get("alertname") == alertname
                and all(a["labels"].get(k) == v for k, v in labels.items())]

    def wait_for(self, promql: str, timeout: float = 60, interval: float = 1) -> list[dict]:
        return poll_for(lambda: self.query(promql), 1, timeout, f"series for {promql} in Prometheus", interval)
