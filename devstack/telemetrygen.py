"""telemetrygen (built from tools/telemetrygen) as a load source: start it, wait, count what it made.
Its rate is approximate (see `workers_for`): compare the generated count, not the requested rate."""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import builds
from .procs import Process

# The per-worker summary line each worker logs when it stops (zap console format).
_GENERATED = {
    "traces": re.compile(r"traces generated\s+\{[^}]*\"traces\": (\d+)"),
    "logs": re.compile(r"logs generated\s+\{[^}]*\"logs\": (\d+)"),
}


@dataclass
class Result:
    signal: str
    returncode: int
    items: int  # spans (traces x spans per trace) or log records, summed over workers
    workers_reported: int
    log_path: Path

    def ok(self, workers: int) -> bool:
        return self.returncode == 0 and self.workers_reported == workers


def workers_for(rate: float, per_worker: float = 1000.0) -> int:
    return max(1, math.ceil(rate / per_worker))


class TelemetryGen:
    """One telemetrygen run against an OTLP/gRPC endpoint (host:port), plaintext."""

    def __init__(self, signal: str, endpoint: str, log_dir: Path, *, rate_per_worker: float, workers: int,
                 duration_s: float, service: str, batch_size: int = 512, child_spans: int = 4,
                 name: str | None = None, extra_args: tuple[str, ...] = ()):
        if signal not in _GENERATED:
            raise ValueError(f"signal must be traces or logs, got {signal!r}")
        self.signal = signal
        self.workers = workers
        self.spans_per_item = 1 + max(1, child_spans) if signal == "traces" else 1
        argv = [
            builds.tool("telemetrygen"), signal, "--otlp-insecure", "--otlp-endpoint", endpoint,
            "--rate", f"{rate_per_worker:g}", "--workers", str(workers), "--duration", f"{duration_s:g}s",
            "--service", service, "--batch-size", str(batch_size),
            *(["--child-spans", str(child_spans)] if signal == "traces" else []),
            *extra_args,
        ]
        # The Go SDK's batch span processor drops spans silently once its queue (default 2048)
        # is full; a deep queue keeps generator-side drops out of the gateway's numbers.
        env = {"PATH": "/usr/bin:/bin", "OTEL_BSP_MAX_QUEUE_SIZE": "262144"}
        self.process = Process(name or f"telemetrygen-{signal}", argv, log_dir, env=env)

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> "TelemetryGen":
        # A fresh log per run: the summary lines are counted from it.
        self.process.log_path.unlink(missing_ok=True)
        self.process.start()
        return self

    def wait(self, timeout: float) -> Result:
        try:
            code = self.process.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = -9
        counts = [int(n) for n in _GENERATED[self.signal].findall(self.process.output())]
        return Result(self.signal, code, sum(counts) * self.spans_per_item, len(counts), self.process.log_path)
