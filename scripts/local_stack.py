"""`make local`: the stack as local processes (devstack, as the tests run it), for a machine with no
cluster and no container engine, with a live view of what reaches the far end. Tempo, Loki and
Grafana run only in the cluster (`make up`); Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from scripts.far_end_view import FarEndView
from devstack import collector, mariadb, redis_server
from devstack.backend import Backend, backend_env
from devstack.kube_apiserver import start_with_manifests
from devstack.prometheus import Prometheus
from devstack.far_end import FarEnd
from devstack.nginx import Nginx, ensure_frontend_built
from devstack.procs import say


def main() -> None:
    base = Path(os.environ.get("LOCAL_STACK_DIR") or tempfile.mkdtemp(prefix="otel-stack-local-"))
    stopping: list = []
    try:
        say(f"data and logs in {base}")
        dist = ensure_frontend_built()
        db = mariadb.start(base / "mariadb")
        stopping.append(db.process)
        cache = redis_server.start(base / "redis", persist=True)
        stopping.append(cache.process)
        kube = start_with_manifests(base / "kube")
        stopping.append(kube)
        prometheus = Prometheus(base).start()
        stopping.append(prometheus)
        say("starting the far end (where Tempo and Loki stand in the cluster)")
        far_end = FarEnd(base).start()
        stopping.append(far_end.close)
        say("starting the gateway collector")
        gateway = collector.gateway(base, kube, far_end.tempo_otlp_grpc, far_end.loki_otlp_endpoint,
                                    prometheus_otlp=prometheus.otlp_endpoint).start()
        stopping.append(gateway)
        # The SDK's default export delays, as in the cluster (the test harness shortens them).
        env = backend_env(db.env(), cache.env(), gateway.otlp_http, OTEL_BSP_SCHEDULE_DELAY="5000",
                          OTEL_BLRP_SCHEDULE_DELAY="1000", PROXY_HOPS="1",
                          OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=local")
        backend = Backend(base, env).start()
        stopping.append(backend)
        site = Nginx(base, backend_url=backend.url, otlp_url=gateway.otlp_http, static_root=dist,
                     port=int(os.environ.get("LOCAL_PORT", "8080"))).start()
        stopping.append(site)
        print(f"""
What of the stack runs here runs as local processes (logs in {base}).

  App:  {site.url}   (sign up, log in, post a message)

Below, live: every trace that reaches the far end as a span tree with durations, with the query
Grafana's "View logs" runs in Loki for its SERVER span, and every log line with its trace id.
Tempo, Loki and Grafana themselves run in the cluster: `make up`.

Ctrl-C stops everything.
""", flush=True)
        view = FarEndView(far_end, sys.stdout).start()
        stopping.append(view.stop)
        done = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
    finally:
        say("stopping")
        for component in reversed(stopping):
            stop = component if callable(component) else getattr(component, "stop", None)
            if stop is not None:
                stop()


if __name__ == "__main__":
    main()
