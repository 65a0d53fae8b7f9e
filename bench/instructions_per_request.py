"""Benchmark 1d, instructions per request: what telemetry costs a request, counted by callgrind.

Wall and CPU time move with whatever else the machine runs; the number of instructions a request
executes does not. bench/request_loop.py runs one workload in process against the real MariaDB and
Redis, under `valgrind --tool=callgrind`, twice (FEW and MANY requests); the difference divided by
MANY - FEW is one request, its share of the final flush of spans, records and metrics included.
Telemetry exports to bench/drop_sink.py; the batch and metric intervals are set long so that every
export happens in that flush, whatever valgrind's slowdown does to the timers (an export's cost is
per item, so batching it differently moves the count little). The board holds 20 messages, what the
GET returns (`request_loop.py seed`, once, before any count). The 10 % sampled figure is the mix of
the "on" and "unsampled" counts, not a run with a ratio sampler, whose draw would move it.

The floor rows say how low "on" could go while every statement and command keeps its span:
"server span only" is the request with its SQL and Redis CLIENT spans left out (its SERVER span,
metric and log records kept), bench/span_loop.py counts one bare CLIENT span through the app's own
SDK pipeline with no instrumentation around it, and the floor is the first plus that span times the
request's client spans (CLIENT_SPANS).

"On, no metrics" runs with OTEL_METRICS_EXPORTER=none: on / that is the metrics SDK's share of a
kept request (issue 13's goal), which benchmark 1c's three rounds of 4 s cannot resolve at 5 %.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import HOUR_MS, REPO, Row, callgrind_per_item, progress
from drop_sink import DropSink
from harness import mariadb, redis_server
from harness.backend import backend_env

# workload: (FEW, MANY). A login runs scrypt, millions of instructions of its own: fewer of them.
COUNTS = {"get": (20, 120), "post": (20, 120), "login": (2, 7)}
LABELS = {"get": "GET /api/messages (cache hit)", "post": "POST /api/messages", "login": "POST /api/auth/login"}
# On / off, as benchmark 1c's goals (issue 14); 10 % sampled against its own goal.
GOALS = {"get": 1.50, "post": 1.25, "login": 1.25}
SAMPLED_GOAL = 1.20
SAMPLED_SHARE = 0.10
# A kept request's CLIENT spans: the cache-hit GET's MGET; the POST's session GET, its INSERT and
# the cache generation's INCRBY. A login is scrypt's, whatever its spans cost: no floor row.
CLIENT_SPANS = {"get": 1, "post": 3}
SPAN_COUNTS = (200, 1200)
METRICS_GOAL = 1.05
# What a request records: every one its duration histogram point, a POST the messages counter too.
METRIC_POINTS = {"get": "its duration point", "post": "its duration point and board.messages.posted"}


def per_request(env: dict[str, str], workload: str, work_dir: Path, variant: str, *flags: str) -> float:
    progress(f"benchmark 1d: {LABELS[workload]}, {variant}")
    script = str(REPO / "bench" / "request_loop.py")
    name = variant.replace(",", "").replace(" ", "-")
    return callgrind_per_item(lambda n: [script, workload, str(n), *flags], COUNTS[workload], env,
                              work_dir / f"callgrind.{name}.{workload}", cwd=REPO / "backend")


def metrics_row(workload: str, counted: dict[str, float]) -> Row:
    ratio = counted["on"] / counted["on, no metrics"]
    return Row("1d instructions/request", f"{LABELS[workload]} instructions, on / on without metrics", ratio, "x",
               f"<= {METRICS_GOAL}", ratio <= METRICS_GOAL,
               f"{(counted['on'] - counted['on, no metrics']) / 1e3:.0f} k of {counted['on'] / 1e6:.2f} M per request: "
               f"{METRIC_POINTS[workload]}")


def floor_rows(workload: str, counted: dict[str, float], span: float) -> list[Row]:
    label, off = LABELS[workload], counted["off"]
    floor = counted["server span only"] + CLIENT_SPANS[workload] * span
    return [
        Row("1d instructions/request", f"{label} instructions, server span only / off", counted["server span only"] / off,
            "x", "", None, f"{counted['server span only'] / 1e6:.2f} M: its SERVER span, metric and log records, "
                           "no CLIENT spans"),
        Row("1d instructions/request", f"{label} instructions, floor / off", floor / off, "x", "", None,
            f"{floor / 1e6:.2f} M: server span only + {CLIENT_SPANS[workload]} bare CLIENT span(s); "
            f"'on' is {counted['on'] / 1e6:.2f} M"),
    ]


def run(work_dir: Path) -> list[Row]:
    subprocess.run(["valgrind", "--version"], check=True, capture_output=True)
    progress("benchmark 1d (instructions per request): MariaDB, Redis, a drop sink; valgrind is slow (minutes)")
    db = mariadb.start(work_dir / "mariadb")
    cache = redis_server.start(work_dir / "redis")
    try:
        with DropSink() as drop:
            base = backend_env(db.env(), cache.url, drop.endpoint, OTEL_BSP_SCHEDULE_DELAY=HOUR_MS,
                               OTEL_BLRP_SCHEDULE_DELAY=HOUR_MS, OTEL_METRIC_EXPORT_INTERVAL=HOUR_MS)
            variants = {
                "off": dict(base, OTEL_SDK_DISABLED="true"),
                "on": base,
                # Parent-based, ratio 0: every request as a sampler that drops it would leave it.
                "unsampled": dict(base, OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG="0"),
            }
            subprocess.run([sys.executable, str(REPO / "bench" / "request_loop.py"), "seed", "0"], env=variants["off"],
                           check=True, capture_output=True, cwd=REPO / "backend", timeout=300)
            progress("benchmark 1d: one bare CLIENT span, the SDK alone")
            span_loop = str(REPO / "bench" / "span_loop.py")
            span = callgrind_per_item(lambda n: [span_loop, str(n)], SPAN_COUNTS, base, work_dir / "callgrind.span",
                                      cwd=REPO / "backend")
            rows = [Row("1d instructions/request", "one bare CLIENT span (SDK, batch, encode, export)", span / 1e3,
                        "k", "", None, "bench/span_loop.py: no instrumentation, six attributes")]
            for workload in COUNTS:
                counted = {}
                for name, env in variants.items():
                    counted[name] = per_request(env, workload, work_dir, name)
                if workload in CLIENT_SPANS:  # a login is scrypt's: metrics and spans alike vanish in it
                    counted["on, no metrics"] = per_request(dict(base, OTEL_METRICS_EXPORTER="none"), workload,
                                                            work_dir, "on, no metrics")
                    counted["server span only"] = per_request(base, workload, work_dir, "server span only",
                                                              "--server-span-only")
                # A 10 % ratio sampler run itself would keep 10 +- 3 of the 100 counted requests (a
                # binomial draw per run); the same mix computed from the two counts repeats exactly.
                counted["10 % sampled"] = SAMPLED_SHARE * counted["on"] + (1 - SAMPLED_SHARE) * counted["unsampled"]
                for name in ("on", "10 % sampled", "unsampled"):
                    ratio = counted[name] / counted["off"]
                    goal = {"on": GOALS[workload], "10 % sampled": SAMPLED_GOAL}.get(name)
                    detail = f"{counted[name] / 1e6:.2f} M vs {counted['off'] / 1e6:.2f} M instructions per request"
                    if name == "10 % sampled":
                        detail += f" ({SAMPLED_SHARE:.0%} of 'on' + {1 - SAMPLED_SHARE:.0%} of 'unsampled')"
                    rows.append(Row("1d instructions/request", f"{LABELS[workload]} instructions {name} / off",
                                    ratio, "x", f"<= {goal}" if goal else "", ratio <= goal if goal else None, detail))
                if workload in CLIENT_SPANS:
                    rows.append(metrics_row(workload, counted))
                    rows.extend(floor_rows(workload, counted, span))
            return rows
    finally:
        cache.process.stop()
        db.process.stop()
