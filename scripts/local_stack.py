"""`make local`: the whole stack as local processes, for a machine with no cluster and no container
engine. The same harness the tests use starts MariaDB, Redis, Tempo, Loki, the gateway collector
(its k8s_attributes talks to the stand-in API server), the backend under gunicorn and nginx with the
built frontend; Ctrl-C stops everything. Grafana only ships as an image, so it is not started.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness import collector, mariadb, redis_server  # noqa: E402
from harness.backend import Backend, backend_env  # noqa: E402
from harness.fake_kube_apiserver import FakeKubeApiServer  # noqa: E402
from harness.loki import Loki  # noqa: E402
from harness.nginx import Nginx, ensure_frontend_built  # noqa: E402
from harness.procs import say  # noqa: E402
from harness.tempo import Tempo  # noqa: E402


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
        kube = FakeKubeApiServer().start()
        stopping.append(kube)
        say("starting Tempo and Loki")
        tempo, loki = Tempo(base).start(), Loki(base).start()
        stopping += [tempo, loki]
        say("starting the gateway collector")
        gateway = collector.gateway(base, kube, tempo.otlp_grpc, loki.otlp_endpoint).start()
        stopping.append(gateway)
        # The SDK's default export delays, as in the cluster (the test harness shortens them).
        env = backend_env(db.env(), cache.url, gateway.otlp_http, OTEL_BSP_SCHEDULE_DELAY="5000",
                          OTEL_BLRP_SCHEDULE_DELAY="1000", PROXY_HOPS="1",
                          OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=local")
        backend = Backend(base, env).start()
        stopping.append(backend)
        site = Nginx(base, backend_url=backend.url, otlp_url=gateway.otlp_http, static_root=dist,
                     port=int(os.environ.get("LOCAL_PORT", "8080"))).start()
        stopping.append(site)
        q = urllib.parse.quote
        print(f"""
The stack runs as local processes (logs in {base}).

  App:    {site.url}   (sign up, log in, post a message)

  Tempo:  {tempo.url}
    traces of the backend (TraceQL):
      curl -s '{tempo.url}/api/search?q={q('{resource.service.name="backend"}')}' | python3 -m json.tool
    one trace:
      curl -s -H 'Accept: application/json' '{tempo.url}/api/traces/<trace_id>'
  Loki:   {loki.url}
    the logs of that trace (what Grafana's "View logs" runs):
      curl -sG '{loki.url}/loki/api/v1/query_range' --data-urlencode 'query={{service_name="backend"}} | trace_id="<trace_id>"'
    browser errors:
      curl -sG '{loki.url}/loki/api/v1/query_range' --data-urlencode 'query={{service_name="frontend"}}'

Ctrl-C stops everything.""", flush=True)
        done = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
    finally:
        say("stopping")
        for component in reversed(stopping):
            stop = getattr(component, "stop", None)
            if stop is not None:
                stop()


if __name__ == "__main__":
    main()
