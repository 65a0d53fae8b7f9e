"""Benchmark 2's load, side by side for two backend trees: this one and another checkout's.

  git worktree add /tmp/old <commit> && cd bench && ../.venv/bin/python compare_backends.py /tmp/old/backend

Benchmark 2 divides p99 with a failing collector by p99 with a working one, so a change that makes
the working case cheaper raises its ratio without anything getting slower. This runs both trees'
backends with the gateway up, refusing and hanging, wrk's POST rounds interleaved over all six, and
prints each one's absolute figures. Both run in this venv: the other tree must import with its pins.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import instrumentation_cost
from backend_deps import backend_deps
from blackhole import Blackhole
from common import REPO, median, progress
from harness.backend import Backend, backend_env
from harness.procs import free_port


def main(other_backend: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-compare-backends-"))
    with backend_deps(work) as deps, Blackhole() as hole:
        base = backend_env(deps.mysql_env, deps.redis_url, deps.gateway_otlp_http,
                           **instrumentation_cost.DEPLOYED_DELAYS)
        collectors = {"up": {}, "refused": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}"},
                      "hanging": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{hole.port}"}}
        backends = {}
        for tree, directory in (("this", REPO / "backend"), ("other", other_backend)):
            for collector, env in collectors.items():
                backends[f"{tree}, {collector}"] = Backend(work, dict(base, **env), name=f"{tree}-{collector}",
                                                           directory=directory)
        try:
            for backend in backends.values():
                backend.start()
            progress(f"POST /api/messages, {instrumentation_cost.ROUNDS} interleaved rounds over {len(backends)} backends")
            results = instrumentation_cost.interleaved({k: b.url for k, b in backends.items()}, "POST /api/messages")
        finally:
            for backend in backends.values():
                backend.stop()
    print("| backend, collector | p99 (median of rounds) | p99 per round | p50 | req/s | failed |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        print(f"| {name} | {median([r.p99_ms for r in runs]):.1f} ms | {', '.join(f'{r.p99_ms:.0f}' for r in runs)} | "
              f"{median([r.p50_ms for r in runs]):.1f} ms | {median([r.rps for r in runs]):.0f} | "
              f"{sum(r.errors for r in runs)} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
