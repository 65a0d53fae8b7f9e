"""What a backend under benchmark talks to: MariaDB, Redis, and the gateway with its far end,
Prometheus and the API server it enriches from, all started with the test harness."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from harness import collector, mariadb, redis_server
from harness.far_end import FarEnd
from harness.kube_apiserver import start_with_manifests
from harness.prometheus import Prometheus


@dataclass
class BackendDeps:
    mysql_env: dict[str, str]
    redis_url: str
    gateway_otlp_http: str


@contextmanager
def backend_deps(work_dir: Path) -> Iterator[BackendDeps]:
    db = mariadb.start(work_dir / "mariadb")
    cache = redis_server.start(work_dir / "redis")
    kube = start_with_manifests(work_dir / "kube")
    prometheus = Prometheus(work_dir).start()
    far_end = FarEnd(work_dir).start()
    gateway = collector.gateway(work_dir, kube, far_end.tempo_otlp_grpc, far_end.loki_otlp_endpoint,
                                prometheus_otlp=prometheus.otlp_endpoint).start()
    try:
        yield BackendDeps(db.env(), cache.url, gateway.otlp_http)
    finally:
        gateway.stop()
        far_end.close()
        prometheus.stop()
        kube.stop()
        cache.process.stop()
        db.process.stop()
