"""Benchmark 1, CPU per request: what telemetry costs the backend's own worker, whatever else shares
the machine.

Each variant is one gunicorn gthread worker (as shipped, only the OTel environment differs) pinned
to core 0; wrk and everything else (MariaDB, Redis, the gateway, the far end) run on core 1. The
worker's utime+stime from /proc over a wrk run, divided by the requests wrk completed, is the figure;
variants run interleaved in rounds and the median round counts.
"""

from __future__ import annotations

import os
from pathlib import Path

import wrk
from common import Row, deployed_export_delays, median, progress
from drop_sink import DropSink
from backend_deps import BackendDeps, backend_deps
from harness.backend import Backend, backend_env
from harness.proc_stats import children, cpu_seconds, voluntary_switches
from instrumentation_cost import workloads

ROUNDS = 3
SECONDS = 4
WORKER_CORE = {0}
LOAD_CORES = "1"
# CPU per request with telemetry on / off (issue 14's goals).
GOALS = {"GET /api/messages (cache hit)": 1.50, "POST /api/messages": 1.25, "POST /api/auth/login": 1.25}
SAMPLED_GOAL = 1.20
# What the metrics SDK adds on top of traces and logs (issue 13): "on" against "on, no metrics".
METRICS_GOAL = 1.05


def _pin(pid: int, cores: set[int]) -> None:
    """Every thread of pid (affinity is per thread; threads started later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), cores)


def _worker(backend: Backend) -> int:
    (worker,) = children(backend.process.pid)
    return worker


def _round(backend: Backend, load: dict) -> tuple[float, float, int]:
    """(CPU microseconds per completed request, the worker's voluntary context switches per request,
    failed requests) of one wrk run."""
    worker = _worker(backend)
    before, switches_before = cpu_seconds(worker), voluntary_switches(worker)
    result = wrk.run(seconds=SECONDS, connections=4, threads=1, cpus=LOAD_CORES, **load)
    done = max(result.requests, 1)
    return ((cpu_seconds(worker) - before) / done * 1e6, (voluntary_switches(worker) - switches_before) / done,
            result.errors)


def run(work_dir: Path) -> list[Row]:
    os.sched_setaffinity(0, {int(LOAD_CORES)})  # this process and all it starts from here on
    progress("benchmark 1 (CPU per request): MariaDB, Redis, the gateway, the far end on core 1")
    with backend_deps(work_dir) as deps, DropSink() as drop:
        return _measure(work_dir, deps, drop)


def _measure(work_dir: Path, deps: BackendDeps, drop: DropSink) -> list[Row]:
    base = backend_env(deps.mysql_env, deps.redis_url, deps.gateway_otlp_http, WEB_CONCURRENCY="1",
                       **deployed_export_delays())
    variants = {  # label: (process name, environment)
        "off": ("off", dict(base, OTEL_SDK_DISABLED="true")),
        "on": ("on", base),
        "on, no metrics": ("nometrics", dict(base, OTEL_METRICS_EXPORTER="none")),
        "on, export dropped": ("dropped", dict(base, OTEL_EXPORTER_OTLP_ENDPOINT=drop.endpoint)),
        "on, 10 % sampled": ("sampled", dict(base, OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                                             OTEL_TRACES_SAMPLER_ARG="0.1")),
    }
    backends = {label: Backend(work_dir, env, name=f"backend-{slug}") for label, (slug, env) in variants.items()}
    rows: list[Row] = []
    try:
        for b in backends.values():
            b.start()
            _pin(b.process.pid, WORKER_CORE)
            _pin(_worker(b), WORKER_CORE)
        # GET first: POST /api/messages empties the cache, so later GETs would miss.
        for workload, goal in GOALS.items():
            progress(f"benchmark 1 (CPU per request): {workload}, {len(backends)} variants x {ROUNDS} rounds x {SECONDS}s")
            loads = {name: workloads(b.url)[workload] for name, b in backends.items()}
            cpu: dict[str, list[float]] = {name: [] for name in backends}
            switches: dict[str, list[float]] = {name: [] for name in backends}
            failed = 0
            names = list(backends)
            for round_no in range(ROUNDS):
                for name in names if round_no % 2 == 0 else names[::-1]:
                    us, waits, errors = _round(backends[name], loads[name])
                    cpu[name].append(us)
                    switches[name].append(waits)
                    failed += errors
            off = median(cpu["off"])
            with_metrics, without = median(cpu["on"]), median(cpu["on, no metrics"])
            rows.append(Row("1 CPU per request", f"{workload} CPU/request on / on without metrics",
                            with_metrics / without, "x", f"<= {METRICS_GOAL}", with_metrics / without <= METRICS_GOAL,
                            f"{with_metrics:.0f} us vs {without:.0f} us per request: the metrics SDK "
                            f"(http.server.request.duration, the board's counters, an export "
                            f"every {int(base['OTEL_METRIC_EXPORT_INTERVAL']) // 1000} s) on top of traces and logs"))
            for name in names[1:]:
                ratio = median(cpu[name]) / off
                want = SAMPLED_GOAL if "sampled" in name else goal if name == "on" else None
                rows.append(Row("1 CPU per request", f"{workload} CPU/request {name} / off", ratio, "x",
                                f"<= {want}" if want else "", ratio <= want if want else None,
                                f"{median(cpu[name]):.0f} us vs {off:.0f} us per request; voluntary context "
                                f"switches per request {median(switches[name]):.1f} vs {median(switches['off']):.1f}"
                                + (f"; failed requests, all variants: {failed}" if failed and name == "on" else "")))
    finally:
        for b in backends.values():
            b.stop()
    return rows
