"""Debian's nginx serving the built frontend with the shipped template, rendered by the image's own
entrypoint, and the helper that builds the frontend when its sources changed."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

from . import npm, system_packages
from .procs import REPO, LocalService, Process, free_port, http_ok, say

FRONTEND = REPO / "frontend"
DIST = FRONTEND / "dist"
RENDER_SCRIPT = FRONTEND / "render-nginx-conf.sh"
CACHE = Path(os.environ.get("STACK_CACHE", Path.home() / ".cache" / "otel-stack"))

# What `npm run build` reads; a change to any of them makes dist/ stale.
BUILD_INPUTS = ("src", "public", "scripts", "index.html", "vite.config.ts", "package.json", "package-lock.json",
                "tsconfig.json", "tsconfig.app.json", "tsconfig.node.json")


# The frontend build ----------------------------------------------------------------------------


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """Other test runs on this machine may build at the same time; npm ci deletes node_modules."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "frontend-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run_logged(argv: list[str], what: str, log_name: str, env: dict[str, str] | None = None) -> str:
    log_path = CACHE / log_name
    started = time.monotonic()
    with open(log_path, "w") as log:
        result = subprocess.run(argv, cwd=FRONTEND, stdout=log, stderr=subprocess.STDOUT, env=env)
    output = log_path.read_text(errors="replace")
    if result.returncode != 0:
        tail = "\n".join(output.splitlines()[-40:])
        raise RuntimeError(f"{what} failed with exit code {result.returncode} (log {log_path}):\n{tail}")
    say(f"{what} done in {time.monotonic() - started:.0f}s")
    return output


def _newest_input_mtime() -> float:
    newest = 0.0
    for name in BUILD_INPUTS:
        path = FRONTEND / name
        if path.is_dir():
            for child in path.rglob("*"):
                # Unit tests are not part of the bundle.
                if child.is_file() and "__tests__" not in child.parts:
                    newest = max(newest, child.stat().st_mtime)
        elif path.exists():
            newest = max(newest, path.stat().st_mtime)
    return newest


def _dist_has_telemetry() -> bool:
    """A `VITE_TELEMETRY=off` build (benchmarks) lands in the same dist/ but sends no telemetry."""
    return any(b"/otlp/v1/traces" in js.read_bytes() for js in (DIST / "assets").glob("*.js"))


def _dist_is_fresh() -> bool:
    index = DIST / "index.html"
    return index.exists() and index.stat().st_mtime >= _newest_input_mtime() and _dist_has_telemetry()


def ensure_frontend_built() -> Path:
    """`npm ci` when node_modules is missing or package-lock.json changed, `npm run build` when a
    source is newer than dist/ (the build includes the type check and the bundle check)."""
    with _build_lock():
        npm.ensure_installed(FRONTEND)
        if not _dist_is_fresh():
            say("frontend: npm run build (sources newer than dist/)")
            env = {k: v for k, v in os.environ.items() if k != "VITE_TELEMETRY"}
            try:
                _run_logged(["npm", "run", "build"], "frontend: npm run build", "frontend-build.log", env=env)
            except RuntimeError:
                # A failed bundle check leaves a fresh-looking dist/ behind: make the next run rebuild.
                (DIST / "index.html").unlink(missing_ok=True)
                raise
    return DIST


# nginx -----------------------------------------------------------------------------------------


def render_config(runtime_dir: Path, **variables: str) -> Path:
    """Renders frontend/nginx.conf with the given template variables; returns the rendered file."""
    system_packages.ensure("envsubst")
    env = {"PATH": "/usr/sbin:/usr/bin:/bin", "NGINX_RUNTIME_DIR": str(runtime_dir), **variables}
    result = subprocess.run(["sh", str(RENDER_SCRIPT), "--print-path"], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"render-nginx-conf.sh failed ({result.returncode}): {result.stderr.strip()}")
    return Path(result.stdout.strip().splitlines()[-1])


def nginx_argv(conf: Path, test_only: bool = False) -> list[str]:
    """The flags render-nginx-conf.sh execs nginx with. As root, nginx would run its workers as
    `nobody`, who cannot enter a private temp dir; the image runs as one unprivileged user, so
    here workers keep the master's user too."""
    system_packages.ensure("nginx")
    globals_ = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    argv = [system_packages.which("nginx"), "-e", "stderr", "-c", str(conf), "-g", globals_]
    return argv + ["-t"] if test_only else argv


class Nginx(LocalService):
    def __init__(self, base_dir: Path, backend_url: str, otlp_url: str, static_root: Path = DIST,
                 name: str = "nginx", port: int | None = None, **variables: str):
        self.port = port or free_port()
        self.base_dir = Path(base_dir)
        self.runtime_dir = self.base_dir / f"{name}-runtime"
        self.variables = {
            "LISTEN_PORT": str(self.port),
            "STATIC_ROOT": str(static_root),
            "BACKEND_URL": backend_url,
            "OTLP_URL": otlp_url,
            "FRONTEND_SERVICE_NAME": "frontend",
            **variables,
        }
        self.name = name
        self.conf: Path | None = None
        self.process: Process | None = None

    def start(self) -> "Nginx":
        self.conf = render_config(self.runtime_dir, **self.variables)
        self.process = Process(self.name, nginx_argv(self.conf), self.base_dir,
                               env={"PATH": "/usr/sbin:/usr/bin:/bin"},
                               ready=lambda: http_ok(f"{self.url}/healthz"), ready_timeout=20).start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGQUIT: nginx's graceful shutdown (finish open requests, remove the pid file)."""
        if self.process is None or not self.process.alive():
            return
        self.process.signal(signal.SIGQUIT)
        try:
            self.process.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.stop()

    def access_log(self) -> list[dict]:
        """The JSON access log lines (the template logs to stdout)."""
        return self.process.json_lines() if self.process else []


if __name__ == "__main__":
    print(ensure_frontend_built())
