"""Runs wrk (Debian's package) for a fixed time and parses its latency distribution and throughput."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass

# wrk's Lua hook: one fixed request; at the end, its own summary (errors.status counts 4xx/5xx
# answers; a per-thread counter would not reach done(), which runs in the main Lua state).
_SCRIPT = """
wrk.method = %(method)s
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
%(cookie)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", latency:percentile(50), latency:percentile(99),
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout + e.status))
end
"""


@dataclass
class WrkResult:
    p50_ms: float
    p99_ms: float
    rps: float
    requests: int
    errors: int


def run(url: str, method: str = "GET", body: dict | None = None, cookie: str | None = None,
        seconds: int = 5, connections: int = 8, threads: int = 2, cpus: str | None = None) -> WrkResult:
    """cpus: a taskset CPU list for wrk, so the load generator stays off the cores it measures."""
    script = _SCRIPT % {
        "method": json.dumps(method),
        "body": json.dumps(json.dumps(body)) if body is not None else "nil",
        "cookie": f'wrk.headers["Cookie"] = {json.dumps("session=" + cookie)}' if cookie else "",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as f:
        f.write(script)
        f.flush()
        out = subprocess.run(
            [*(["taskset", "-c", cpus] if cpus else []), "wrk", f"-t{threads}", f"-c{connections}",
             f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", f.name, url],
            capture_output=True, text=True, check=True,
        ).stdout
    # Microseconds, from wrk's own summary (its text table rounds and changes units).
    p50_us, p99_us, requests, duration_us, errors = map(int, re.search(r"^RESULT (.+)$", out, re.M).group(1).split())
    return WrkResult(p50_ms=p50_us / 1000, p99_ms=p99_us / 1000, rps=requests / (duration_us / 1e6),
                     requests=requests, errors=errors)
