"""Benchmark 3's worker: N logger.info calls inside a span, with the backend's own handlers.

Run once per variant in a fresh process (logging and OTel providers are process-global):
  python bench/log_cost.py otlp|stdout|none N [PAUSE]
    -> prints {"cpu_seconds": ..., "seconds": ..., "voluntary_switches": ...}
PAUSE (seconds) blocks the thread after each call, as a request blocks on MariaDB and Redis between
its records; `none` makes no logging call, so the pauses' own CPU can be taken off.
stdout is sent to /dev/null by the caller, as a container runtime would absorb it. The cost is
the process's CPU time, every thread's, from the first call to the end of the final flush: the
export thread's encoding and sending is part of what a record costs. The queue holds all N records
(the caller sets OTEL_BLRP_MAX_QUEUE_SIZE), so none is dropped and left uncounted.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))

from opentelemetry import trace  # noqa: E402

from board import telemetry  # noqa: E402


def main(variant: str, count: int, pause: float = 0.0) -> None:
    if variant in ("stdout", "none"):
        os.environ["OTEL_SDK_DISABLED"] = "true"
        # A real tracer provider still gives the records a trace context to write out.
        from opentelemetry.sdk.trace import TracerProvider
        trace.set_tracer_provider(TracerProvider())
    state = telemetry.init_process_telemetry()
    log = logging.getLogger("bench")
    tracer = trace.get_tracer("bench")
    switches_before = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw  # every thread's
    started, cpu_started = time.perf_counter(), time.process_time()
    with tracer.start_as_current_span("bench"):
        for i in range(count):
            if variant != "none":
                log.info("message posted", extra={"message.id": i, "enduser.id": "bench"})
            if pause:
                time.sleep(pause)
    state.shutdown()
    print(json.dumps({"cpu_seconds": time.process_time() - cpu_started, "seconds": time.perf_counter() - started,
                      "voluntary_switches": resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - switches_before}),
          file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
