"""The backend under gunicorn, started exactly as backend/Dockerfile starts it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from .procs import REPO, LocalService, Process, free_port, http_ok

BACKEND_DIR = REPO / "backend"
# The container's command, word for word (see backend/Dockerfile).
GUNICORN_ARGV = ["gunicorn", "-c", "gunicorn.conf.py", "board:create_app()"]


def gunicorn_argv() -> list[str]:
    return [str(Path(sys.executable).with_name("gunicorn")), *GUNICORN_ARGV[1:]]


def backend_env(mysql_env: dict[str, str], redis_env: dict[str, str], otlp_endpoint: str | None,
                **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MYSQL_", "REDIS_"))}
    env.update(mysql_env)
    env.update(redis_env)
    env.update(
        BIND_HOST="127.0.0.1",
        SECRET_KEY="test-secret-key",
        OTEL_SERVICE_NAME="backend",
        # Short export delays so tests see telemetry quickly; the SDK defaults are 5 s / 1 s.
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BLRP_SCHEDULE_DELAY="200",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        PYTHONUNBUFFERED="1",
    )
    if otlp_endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_endpoint
    else:
        env["OTEL_SDK_DISABLED"] = "true"
    env.update(extra)
    return env


class Backend(LocalService):
    def __init__(self, log_dir: Path, env: dict[str, str], name: str = "backend", port: int | None = None,
                 launcher: Sequence[str] = ()):
        """`launcher`: a command gunicorn runs under, e.g. `opentelemetry-instrument` (bench/)."""
        self.port = port or free_port()
        env = dict(env, PORT=str(self.port))
        self.process = Process(
            name, [*launcher, *gunicorn_argv()], log_dir, env=env, cwd=BACKEND_DIR,
            ready=lambda: http_ok(f"{self.url}/healthz"), ready_timeout=60,
        )

    def json_lines(self) -> list[dict]:
        """The JSON log lines the workers wrote to stdout (what `kubectl logs` shows)."""
        return self.process.json_lines()
