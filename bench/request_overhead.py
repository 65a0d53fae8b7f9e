"""What telemetry costs a request: off, zero-code (`opentelemetry-instrument`) and ours, at 100 % and
10 % sampled, by worker CPU and by callgrind's instructions; and that an unreachable collector costs
no request: `make bench ONLY=request_overhead` (bench/README.md says how it measures)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import opentelemetry.instrumentation.auto_instrumentation as zero_code

from bench import wrk
from bench.blackhole import Blackhole
from bench.common import BOARD_MESSAGES, HOUR_MS, REPO, Row, callgrind_per_item, deployed_export_delays, median, progress
from bench.drop_sink import DropSink
from devstack import mariadb, redis_server
from devstack.backend import Backend, backend_env
from devstack.proc_stats import children, cpu_seconds
from devstack.procs import free_port

NAME = "request overhead"
WORKLOADS = {"get": "GET /api/messages (cache hit)", "post": "POST /api/messages", "login": "POST /api/auth/login"}
# callgrind's two runs per count: a login is scrypt's millions of instructions, so fewer of them.
COUNTS = {"get": (20, 120), "post": (20, 120), "login": (3, 13)}
CPU_ROUNDS, CPU_SECONDS = 5, 5
EXPORT_WAIT_S = 2.5  # past the shipped batch schedule (1 s) and one export
WORKER_CORE, LOAD_CORES = {0}, "1"
SAMPLED = 0.10
RATIO_SAMPLER = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}
# Goals: ours adds no more than zero-code at 100 %, at most 0.75x at 10 %; the metrics SDK <= 5 %.
GOAL_KEPT, GOAL_SAMPLED, GOAL_METRICS = 1.00, 0.75, 1.05
# Export never blocks: p99 of a POST with the collector refusing or hanging, against it answering.
BLOCK_ROUNDS, BLOCK_GOAL = 5, 1.10
PASSWORD = "bench-password-1"


def variants(shipped: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each variant's environment. Zero-code keeps only what it needs to run here: the endpoint, the
    service name and OTLP/HTTP (its default is gRPC, whose exporter is not installed)."""
    plain = {k: v for k, v in shipped.items()
             if k not in ("OTEL_BSP_SCHEDULE_DELAY", "OTEL_BLRP_SCHEDULE_DELAY", "OTEL_METRIC_EXPORT_INTERVAL")}
    zero = dict(plain, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf")
    return {
        "off": dict(shipped, OTEL_SDK_DISABLED="true"),
        "zero-code": zero,
        "zero-code 10 %": dict(zero, **RATIO_SAMPLER, OTEL_TRACES_SAMPLER_ARG=str(SAMPLED)),
        "ours": shipped,
        "ours 10 %": dict(shipped, **RATIO_SAMPLER, OTEL_TRACES_SAMPLER_ARG=str(SAMPLED)),
        "ours, no metrics": dict(shipped, OTEL_METRICS_EXPORTER="none"),
    }


def is_zero_code(variant: str) -> bool:
    return variant.startswith("zero-code")


def run(work_dir: Path) -> list[Row]:
    subprocess.run(["valgrind", "--version"], check=True, capture_output=True)
    db = mariadb.start(work_dir / "mariadb")
    cache = redis_server.start(work_dir / "redis")
    try:
        with DropSink() as drop:
            shipped = backend_env(db.env(), cache.env(), drop.endpoint, **deployed_export_delays())
            rows = cpu_per_request(work_dir, shipped)
            rows += instructions_per_request(work_dir, shipped, drop.endpoint)
            rows += export_never_blocks(work_dir, shipped)
        return rows
    finally:
        cache.process.stop()
        db.process.stop()


# CPU per request -----------------------------------------------------------------------------------


def _pin(pid: int, cores: set[int]) -> None:
    """Every thread of pid (affinity is per thread; threads started later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), cores)


def _login(url: str) -> tuple[str, str]:
    import requests

    http = requests.Session()
    name = f"bench_{free_port()}"
    http.post(url + "/api/auth/signup", json={"username": name, "password": PASSWORD}, timeout=10)
    http.post(url + "/api/auth/login", json={"username": name, "password": PASSWORD}, timeout=10)
    have = len(http.get(f"{url}/api/messages?limit={BOARD_MESSAGES}", timeout=10).json()["messages"])
    for i in range(have, BOARD_MESSAGES):
        http.post(url + "/api/messages", json={"body": f"seeded message {i}: a sentence of ordinary length"},
                  timeout=10).raise_for_status()
    http.get(f"{url}/api/messages?limit={BOARD_MESSAGES}", timeout=10)  # warm the cache
    return name, http.cookies["session"]


def _loads(url: str) -> dict[str, dict]:
    name, cookie = _login(url)
    return {
        "get": {"url": f"{url}/api/messages?limit={BOARD_MESSAGES}"},
        "post": {"url": url + "/api/messages", "method": "POST", "body": {"body": "bench"}, "cookie": cookie},
        "login": {"url": url + "/api/auth/login", "method": "POST", "body": {"username": name, "password": PASSWORD}},
    }


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label).strip("-")


def cpu_per_request(work_dir: Path, shipped: dict[str, str]) -> list[Row]:
    os.sched_setaffinity(0, {int(LOAD_CORES)})  # this process and all it starts from here on
    launcher = [str(Path(sys.executable).with_name("opentelemetry-instrument"))]
    sinks = {label: DropSink() for label in variants(shipped)}
    backends = {label: Backend(work_dir, dict(env, WEB_CONCURRENCY="1", OTEL_EXPORTER_OTLP_ENDPOINT=sinks[label].endpoint),
                               name=f"backend-{_slug(label)}", launcher=launcher if is_zero_code(label) else ())
                for label, env in variants(shipped).items()}
    cpu = {(workload, label): [] for workload in WORKLOADS for label in backends}
    spans_per_request = {}
    try:
        workers = {}
        for label, backend in backends.items():
            backend.start()
            _pin(backend.process.pid, WORKER_CORE)
            (workers[label],) = children(backend.process.pid)
            _pin(workers[label], WORKER_CORE)
        loads = {label: _loads(b.url) for label, b in backends.items()}
        # GET first: a POST empties the message cache, and later GETs would miss.
        for workload, title in WORKLOADS.items():
            progress(f"{NAME}: CPU per request, {title}, {len(backends)} variants x {CPU_ROUNDS} rounds x {CPU_SECONDS} s")
            time.sleep(EXPORT_WAIT_S)  # what came before is exported: count this workload's spans alone
            spans_before, requests = sinks["ours"].spans, 0
            names = list(backends)
            for round_no in range(CPU_ROUNDS):
                for label in names if round_no % 2 == 0 else names[::-1]:
                    before = cpu_seconds(workers[label])
                    result = wrk.run(seconds=CPU_SECONDS, connections=4, threads=1, cpus=LOAD_CORES,
                                     **loads[label][workload])
                    assert result.errors == 0, f"{label}: {result.errors} failed {title} requests"
                    cpu[workload, label].append((cpu_seconds(workers[label]) - before) / result.requests * 1e6)
                    requests += result.requests if label == "ours" else 0
            time.sleep(EXPORT_WAIT_S)
            spans_per_request[workload] = (sinks["ours"].spans - spans_before) / requests
    finally:
        for backend in backends.values():
            backend.stop()
        for sink in sinks.values():
            sink.close()
    rows = []
    for workload, title in WORKLOADS.items():
        us = {label: median(cpu[workload, label]) for label in backends}
        spans = spans_per_request[workload]
        for label in backends:
            added = us[label] - us["off"]
            detail = "" if label == "off" else f"+{added:.0f} us over off"
            if label == "ours":
                detail += f"; {spans:.2f} spans per request (counted at the sink): +{added / spans:.0f} us per span"
            spread = f"rounds {min(cpu[workload, label]):.0f}-{max(cpu[workload, label]):.0f} us"
            rows.append(Row(NAME, f"{title}: CPU per request, {label}", us[label], "us", "", None,
                            f"{detail}; {spread}" if detail else spread))
        if workload != "login":  # scrypt's CPU varies by more from round to round than telemetry adds
            rows.append(_added_ratio_row("CPU", title, us, "ours", "zero-code", None))
            rows.append(_added_ratio_row("CPU", title, us, "ours 10 %", "zero-code 10 %", None))
    return rows


def _added_ratio_row(measure: str, title: str, values: dict[str, float], ours: str, zero: str,
                     goal: float | None) -> Row:
    added_ours, added_zero = values[ours] - values["off"], values[zero] - values["off"]
    ratio = added_ours / added_zero
    unit = "us" if measure == "CPU" else "M instructions"
    scale = 1 if measure == "CPU" else 1e-6
    return Row(NAME, f"{title}: {measure} added, {ours} / {zero}", ratio, "x",
               f"<= {goal}" if goal is not None else "", ratio <= goal if goal is not None else None,
               f"{added_ours * scale:.2f} vs {added_zero * scale:.2f} {unit} over off")


# Instructions per request --------------------------------------------------------------------------


def instructions_per_request(work_dir: Path, shipped: dict[str, str], sink: str) -> list[Row]:
    """callgrind of request_loop.py; the export schedule is set past the loop's end, so every export
    happens in its final flush, whatever valgrind's slowdown does to timers. The 10 % figures mix
    the counts of kept and unsampled requests (a ratio sampler's own draw would move them)."""
    loop = ["-m", "bench.request_loop"]
    backend = str(REPO / "backend")
    late = {"OTEL_BSP_SCHEDULE_DELAY": HOUR_MS, "OTEL_BLRP_SCHEDULE_DELAY": HOUR_MS,
            "OTEL_METRIC_EXPORT_INTERVAL": HOUR_MS, "OTEL_EXPORTER_OTLP_ENDPOINT": sink}
    unsampled = dict(RATIO_SAMPLER, OTEL_TRACES_SAMPLER_ARG="0")
    every = variants(shipped)
    envs = {
        "off": every["off"],
        "zero-code": every["zero-code"],
        "zero-code unsampled": dict(every["zero-code"], **unsampled),
        "ours": every["ours"],
        "ours unsampled": dict(every["ours"], **unsampled),
        "ours, no metrics": every["ours, no metrics"],
    }
    for label, env in envs.items():
        # `opentelemetry-instrument` puts its sitecustomize first on PYTHONPATH; valgrind must see no exec.
        paths = [os.path.dirname(zero_code.__file__)] if is_zero_code(label) else []
        envs[label] = dict(env, **late, PYTHONPATH=os.pathsep.join([*paths, backend]))
    subprocess.run([sys.executable, *loop, "seed", "0"], env=envs["off"], check=True, capture_output=True,
                   cwd=REPO, timeout=300)
    rows = []
    for workload, title in WORKLOADS.items():
        counted = {}
        for label, env in envs.items():
            progress(f"{NAME}: instructions per request (callgrind), {title}, {label}")
            counted[label] = callgrind_per_item(lambda n: [*loop, workload, str(n)], COUNTS[workload], env,
                                                work_dir / f"callgrind.{workload}.{_slug(label)}", cwd=REPO)
        for kind in ("zero-code", "ours"):
            counted[f"{kind} 10 %"] = SAMPLED * counted[kind] + (1 - SAMPLED) * counted[f"{kind} unsampled"]
        for label, value in counted.items():
            rows.append(Row(NAME, f"{title}: instructions per request, {label}", value / 1e6, "M", "", None,
                            "" if label == "off" else f"+{(value - counted['off']) / 1e6:.2f} M over off"))
        rows.append(_added_ratio_row("instructions", title, counted, "ours", "zero-code", GOAL_KEPT))
        rows.append(_added_ratio_row("instructions", title, counted, "ours 10 %", "zero-code 10 %", GOAL_SAMPLED))
        metrics = counted["ours"] / counted["ours, no metrics"]
        rows.append(Row(NAME, f"{title}: instructions, ours / ours without metrics", metrics, "x",
                        f"<= {GOAL_METRICS}", metrics <= GOAL_METRICS,
                        f"the metrics SDK: {(counted['ours'] - counted['ours, no metrics']) / 1e3:.0f} k per request"))
    return rows


# Export never blocks -------------------------------------------------------------------------------


def export_never_blocks(work_dir: Path, shipped: dict[str, str]) -> list[Row]:
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    with Blackhole() as hole:
        endpoints = {"up": shipped["OTEL_EXPORTER_OTLP_ENDPOINT"], "refusing connections": f"http://127.0.0.1:{free_port()}",
                     "accepting TCP, never answering": f"http://127.0.0.1:{hole.port}"}
        backends = {label: Backend(work_dir, dict(shipped, OTEL_EXPORTER_OTLP_ENDPOINT=url),
                                   name=f"backend-collector-{_slug(label)}")
                    for label, url in endpoints.items()}
        try:
            for backend in backends.values():
                backend.start()
            loads = {label: _loads(b.url)["post"] for label, b in backends.items()}
            progress(f"{NAME}: POST /api/messages with the collector up, refusing, hanging; {BLOCK_ROUNDS} rounds")
            p99 = {label: [] for label in backends}
            failed = {label: 0 for label in backends}
            names = list(backends)
            for round_no in range(BLOCK_ROUNDS):
                for label in names if round_no % 2 == 0 else names[::-1]:
                    result = wrk.run(seconds=CPU_SECONDS, **loads[label])
                    p99[label].append(result.p99_ms)
                    failed[label] += result.errors
        finally:
            for backend in backends.values():
                backend.stop()
    up = median(p99["up"])
    rows = []
    for label in names[1:]:
        ratio = median(p99[label]) / up
        rows.append(Row(NAME, f"POST /api/messages p99, collector {label} / up", ratio, "x",
                        f"<= {BLOCK_GOAL}, 0 failed", ratio <= BLOCK_GOAL and failed[label] == 0,
                        f"p99 {median(p99[label]):.2f} ms vs {up:.2f} ms; failed requests {failed[label]}"))
    return rows
