"""Benchmark 3, what a log record costs: N logger.info calls inside a span (log_cost.py, a fresh
process per run), OTLP + stdout JSON against stdout JSON alone, exporting to our gateway.

Four measures, each a ratio of the two variants:
- CPU time of the whole process, every thread, through the final flush, with the export schedule
  the backend ships with (k8s/backend): the goal's measure.
- The same with the export held back until the loop has ended. While the loop runs, the export
  thread waits for the GIL, and every stdout write releases and retakes it: CPython wakes the
  waiting thread each time, it finds the GIL taken again and sleeps (about one voluntary context
  switch per call, counted in each row's detail). A loop that never blocks is the worst case for
  this; a request waits on MariaDB and Redis, and the export thread runs then. The difference of
  the two rows is what that contention costs here.
- CPU time again, the thread blocking PAUSE_S after each call as a request does between its
  records, less the pauses' own CPU (a run of the pauses with no logging call): what a record costs
  in a thread that waits, with no GIL contention to speak of.
- Instructions (callgrind, every thread; FEW and MANY calls, the difference divided by MANY - FEW),
  which the machine's other load does not move.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from backend_deps import backend_deps
from common import HOUR_MS, Row, callgrind_per_item, deployed_export_delays, median, progress

LOG_CALLS = 50_000
ROUNDS = 3
FEW, MANY = 2_000, 6_000
PAUSED_CALLS, PAUSE_S = 20_000, 0.0002
GOAL = 2.0
SCRIPT = Path(__file__).with_name("log_cost.py")


def run(work_dir: Path) -> list[Row]:
    progress("benchmark 3 (cost of a log record): starting the gateway and what it needs")
    with backend_deps(work_dir) as deps:
        return measure(deps.gateway_otlp_http, work_dir)


def measure(otlp_endpoint: str, work_dir: Path) -> list[Row]:
    deployed = dict(os.environ, OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint, OTEL_BLRP_MAX_QUEUE_SIZE=str(LOG_CALLS),
                    **deployed_export_delays())
    variants = {
        "stdout": ("stdout", deployed),
        "otlp": ("otlp", deployed),
        # One batch of every record, sent when the final flush comes.
        "otlp, export after the loop": ("otlp", dict(deployed, OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=str(LOG_CALLS),
                                                     OTEL_BLRP_SCHEDULE_DELAY=HOUR_MS)),
    }
    cpu, switches = _interleaved(variants, LOG_CALLS)
    base = cpu["stdout"]
    rows = []
    for name, metric, goal in (("otlp", "OTLP+stdout / stdout alone, CPU", GOAL),
                               ("otlp, export after the loop", "the same, export after the loop, CPU", None)):
        ratio = cpu[name] / base
        rows.append(Row("3 cost of a log record", metric, ratio, "x", f"<= {goal}" if goal else "",
                        ratio <= goal if goal else None,
                        f"{cpu[name]:.1f} us vs {base:.1f} us CPU per call; voluntary context switches "
                        f"per call {switches[name]:.2f} vs {switches['stdout']:.2f}"))
    rows.append(_paused_row(deployed))
    progress(f"benchmark 3: instructions under callgrind, {FEW} and {MANY} calls per variant (minutes)")
    counted = {handler: _instructions_per_call(handler, deployed, work_dir) for handler in ("stdout", "otlp")}
    ratio = counted["otlp"] / counted["stdout"]
    rows.append(Row("3 cost of a log record", "OTLP+stdout / stdout alone, instructions", ratio, "x", f"<= {GOAL}",
                    ratio <= GOAL, f"{counted['otlp'] / 1e3:.0f} k vs {counted['stdout'] / 1e3:.0f} k instructions "
                                   f"per call, every thread"))
    return rows


def _paused_row(env: dict[str, str]) -> Row:
    cpu, switches = _interleaved({name: (name, env) for name in ("none", "stdout", "otlp")}, PAUSED_CALLS, PAUSE_S)
    pauses = cpu["none"]
    otlp, stdout = cpu["otlp"] - pauses, cpu["stdout"] - pauses
    return Row("3 cost of a log record", f"the same, a {PAUSE_S * 1e3:g} ms pause after each call, CPU less the "
               "pauses'", otlp / stdout, "x", "", None,
               f"{otlp:.1f} us vs {stdout:.1f} us CPU per call over the pauses' own {pauses:.1f} us; voluntary "
               f"context switches per call {switches['otlp']:.2f} vs {switches['stdout']:.2f} (the pause is one)")


def _interleaved(variants: dict[str, tuple[str, dict[str, str]]], calls: int,
                 pause: float = 0.0) -> tuple[dict[str, float], dict[str, float]]:
    """Each variant's (log_cost.py handler, environment) run `calls` times in ROUNDS rounds whose
    order alternates, so machine noise hits all alike: the medians of CPU microseconds and of
    voluntary context switches per call, by variant."""
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    switches: dict[str, list[float]] = {name: [] for name in variants}
    paused = f", a {pause * 1e3:g} ms pause after each" if pause else ""
    for round_no in range(ROUNDS):
        for name in (list(variants) if round_no % 2 == 0 else list(reversed(variants))):
            progress(f"benchmark 3: round {round_no + 1}/{ROUNDS}, {calls} calls{paused}, {name}")
            handler, env = variants[name]
            result = _log_calls(handler, calls, env, pause)
            cpu[name].append(result["cpu_seconds"] / calls * 1e6)
            switches[name].append(result["voluntary_switches"] / calls)
    return ({name: median(values) for name, values in cpu.items()},
            {name: median(values) for name, values in switches.items()})


def _log_calls(handler: str, count: int, env: dict[str, str], pause: float = 0.0) -> dict:
    # stdout to /dev/null, as a container runtime absorbs it; the figures come on stderr.
    out = subprocess.run([sys.executable, str(SCRIPT), handler, str(count), str(pause)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True, timeout=1800)
    return json.loads(out.stderr.strip().splitlines()[-1])


def _instructions_per_call(handler: str, env: dict[str, str], work_dir: Path) -> float:
    return callgrind_per_item(lambda count: [str(SCRIPT), handler, str(count)], (FEW, MANY), env,
                              work_dir / f"callgrind.log.{handler}")
