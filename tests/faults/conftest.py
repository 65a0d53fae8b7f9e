"""Fault tests: each test gets a far end and a gateway of its own, which it may kill, and a backend
whose unique service name lets the models count exactly its telemetry; MariaDB, Redis and the
Kubernetes API server are the session's, and nothing here kills them."""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass

import pytest

from devstack import collector
from devstack.backend import Backend, backend_env
from devstack.far_end import FarEnd
from devstack.procs import say


@dataclass
class Pipeline:
    far_end: FarEnd
    gateway: collector.Collector


@dataclass
class TracedBackend:
    backend: Backend
    service: str

    @property
    def url(self) -> str:
        return self.backend.url


def _test_dir(work_dir, request):
    return work_dir / "faults" / re.sub(r"[^\w.-]", "_", request.node.name)


@pytest.fixture
def pipeline(work_dir, kube_api, prometheus, request):
    base = _test_dir(work_dir, request)
    say(f"{request.node.name}: starting its own far end and gateway")
    with contextlib.ExitStack() as stack:
        far_end = FarEnd(base).start()
        stack.callback(far_end.close)
        gateway = collector.gateway(base, kube_api, far_end.tempo_otlp_grpc, far_end.loki_otlp_endpoint,
                                    prometheus_otlp=prometheus.otlp_endpoint).start()
        stack.callback(gateway.stop)
        yield Pipeline(far_end, gateway)


@pytest.fixture
def backend_redis(redis_srv):
    """The Redis of the test's backend: the session's, unless a test that stops Redis brings its own."""
    return redis_srv


@pytest.fixture
def traced_backend(pipeline, mysql, backend_redis, work_dir, request):
    """gunicorn exporting OTLP/HTTP to this test's gateway, as in the cluster, under its own name."""
    service = f"faults-{uuid.uuid4().hex[:10]}"
    env = backend_env(mysql.env(), backend_redis.env(), pipeline.gateway.otlp_http, OTEL_SERVICE_NAME=service)
    backend = Backend(_test_dir(work_dir, request), env, name=f"backend-{service}").start()
    yield TracedBackend(backend, service)
    backend.stop()
