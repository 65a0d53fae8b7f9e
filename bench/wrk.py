"""Runs wrk (Debian's package) for a fixed time and parses its latency distribution and throughput."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}

# wrk's Lua hook: one fixed request, and a count of non-2xx answers printed at the end.
_SCRIPT = """
wrk.method = %(method)s
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
%(cookie)s
local bad = 0
response = function(status, headers, body) if status >= 300 then bad = bad + 1 end end
done = function(summary, latency, requests) io.write(string.format("NON2XX %%d\\n", bad)) end
"""


@dataclass
class WrkResult:
    p50_ms: float
    p99_ms: float
    rps: float
    requests: int
    errors: int


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * _UNITS[unit]


def run(url: str, method: str = "GET", body: dict | None = None, cookie: str | None = None,
        seconds: int = 5, connections: int = 8, threads: int = 2) -> WrkResult:
    script = _SCRIPT % {
        "method": json.dumps(method),
        "body": json.dumps(json.dumps(body)) if body is not None else "nil",
        "cookie": f'wrk.headers["Cookie"] = {json.dumps("session=" + cookie)}' if cookie else "",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as f:
        f.write(script)
        f.flush()
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
             "-s", f.name, url],
            capture_output=True, text=True, check=True,
        ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = int(re.search(r"NON2XX (\d+)", out).group(1))
    return WrkResult(
        p50_ms=_ms(latency["50"]), p99_ms=_ms(latency["99"]),
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        requests=requests, errors=socket_errors + non2xx,
    )
