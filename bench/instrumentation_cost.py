"""Benchmarks 1 and 2: what telemetry costs a request, and that a dead collector costs nothing more
(benchmark 3, a log record, is log_record_cost.py).

Several gunicorn backends run side by side (as shipped, only the OTel environment differs) and
wrk loads them in interleaved rounds, the order alternating, so machine noise hits all alike.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import requests

import wrk
from blackhole import Blackhole
from common import BOARD_MESSAGES, deployed_export_delays, Row, median, progress, seed_board
from backend_deps import BackendDeps, backend_deps
from harness.backend import Backend, backend_env
from harness.procs import free_port

ROUNDS = 5
SECONDS = 4
PASSWORD = "bench-password-1"
# What the backend runs with in the cluster, not the harness's short test delays.
DEPLOYED_DELAYS = deployed_export_delays()


def _login(url: str) -> tuple[str, str]:
    http = requests.Session()
    name = "bench_" + uuid.uuid4().hex[:8]
    http.post(url + "/api/auth/signup", json={"username": name, "password": PASSWORD}, timeout=10)
    http.post(url + "/api/auth/login", json={"username": name, "password": PASSWORD}, timeout=10)
    return name, http.cookies["session"]


def _fill_board(url: str, cookie: str) -> None:
    have = len(requests.get(f"{url}/api/messages?limit={BOARD_MESSAGES}", timeout=10).json()["messages"])
    seed_board(have, lambda body: requests.post(url + "/api/messages", json=body, cookies={"session": cookie},
                                                timeout=10).raise_for_status())


def workloads(url: str) -> dict[str, dict]:
    name, cookie = _login(url)
    _fill_board(url, cookie)
    requests.get(url + "/api/messages", timeout=10)  # warm the cache
    return {
        "GET /api/messages (cache hit)": {"url": f"{url}/api/messages?limit={BOARD_MESSAGES}"},
        "POST /api/messages": {"url": url + "/api/messages", "method": "POST", "body": {"body": "bench"},
                               "cookie": cookie},
        "POST /api/auth/login": {"url": url + "/api/auth/login", "method": "POST",
                                 "body": {"username": name, "password": PASSWORD}},
    }


def interleaved(variants: dict[str, str], workload: str) -> dict[str, list[wrk.WrkResult]]:
    loads = {v: workloads(url)[workload] for v, url in variants.items()}
    results: dict[str, list[wrk.WrkResult]] = {v: [] for v in variants}
    names = list(variants)
    for round_no in range(ROUNDS):
        order = names if round_no % 2 == 0 else list(reversed(names))
        for variant in order:
            results[variant].append(wrk.run(seconds=SECONDS, **loads[variant]))
    return results


def run(work_dir: Path) -> list[Row]:
    progress("starting MariaDB, Redis, the far end, the gateway and four backends")
    with backend_deps(work_dir) as deps, Blackhole() as hole:
        return _measure(work_dir, deps, hole)


def _measure(work_dir: Path, deps: BackendDeps, hole: Blackhole) -> list[Row]:
    rows: list[Row] = []
    refused = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    base = backend_env(deps.mysql_env, deps.redis_url, deps.gateway_otlp_http, **DEPLOYED_DELAYS)
    backends = {
        "on": Backend(work_dir, base, name="backend-on"),
        "off": Backend(work_dir, dict(base, OTEL_SDK_DISABLED="true"), name="backend-off"),
        "refused": Backend(work_dir, dict(base, OTEL_EXPORTER_OTLP_ENDPOINT=refused), name="backend-refused"),
        "hanging": Backend(work_dir, dict(base, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{hole.port}"),
                           name="backend-hanging"),
    }
    try:
        for b in backends.values():
            b.start()
        urls = {k: b.url for k, b in backends.items()}

        # The GET rounds run first: POST /api/messages invalidates the cache, so later GETs would miss.
        goals = {"GET /api/messages (cache hit)": 1.25, "POST /api/messages": 1.15, "POST /api/auth/login": 1.15}
        for workload, p50_goal in goals.items():
            progress(f"benchmark 1: {workload}, telemetry on vs off, {ROUNDS} rounds x {SECONDS}s each")
            res = interleaved({"on": urls["on"], "off": urls["off"]}, workload)
            p50 = median([r.p50_ms for r in res["on"]]) / median([r.p50_ms for r in res["off"]])
            p99 = median([r.p99_ms for r in res["on"]]) / median([r.p99_ms for r in res["off"]])
            rps = median([r.rps for r in res["on"]]) / median([r.rps for r in res["off"]])
            errors = sum(r.errors for rs in res.values() for r in rs)
            detail = (f"on p50 {median([r.p50_ms for r in res['on']]):.2f} ms, off "
                      f"{median([r.p50_ms for r in res['off']]):.2f} ms; on {median([r.rps for r in res['on']]):.0f}"
                      f" req/s, off {median([r.rps for r in res['off']]):.0f}; p99 ratio {p99:.2f}; errors {errors}")
            rows.append(Row("1 instrumentation cost", f"{workload} p50 on/off", p50, "x", f"<= {p50_goal}",
                            p50 <= p50_goal, detail))
            rows.append(Row("1 instrumentation cost", f"{workload} throughput on/off", rps, "x", ">= 0.80",
                            rps >= 0.80))

        progress(f"benchmark 2: POST /api/messages with the gateway up, refusing, hanging; {ROUNDS} rounds")
        res = interleaved({k: urls[k] for k in ("on", "refused", "hanging")}, "POST /api/messages")
        p99_up = median([r.p99_ms for r in res["on"]])
        for variant, label in (("refused", "refusing connections"), ("hanging", "accepting TCP, never answering")):
            ratio = median([r.p99_ms for r in res[variant]]) / p99_up
            errors = sum(r.errors for r in res[variant])
            rows.append(Row("2 export never blocks", f"p99 with collector {label} / up", ratio, "x",
                            "<= 1.10, 0 failed", ratio <= 1.10 and errors == 0,
                            f"p99 {median([r.p99_ms for r in res[variant]]):.2f} ms vs {p99_up:.2f} ms; "
                            f"failed requests {errors} of {sum(r.requests for r in res[variant])}"))
        for name, b in backends.items():
            rss = _worker_rss_mib(b)
            rows.append(Row("2 export never blocks", f"backend-{name} worker RSS after load", rss, "MiB", "", None))
    finally:
        for b in backends.values():
            b.stop()
    return rows


def _worker_rss_mib(backend: Backend) -> float:
    """The largest RSS among the gunicorn master's children (the workers)."""
    import subprocess

    out = subprocess.run(["ps", "-o", "rss=", "--ppid", str(backend.process.pid)], capture_output=True, text=True)
    return max((int(x) for x in out.stdout.split()), default=0) / 1024
