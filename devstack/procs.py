"""A child process with its output in a log file, readiness polling and clean stop/kill/restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Sequence, TypeVar

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(message: str) -> None:
    """Progress for slow steps, visible even under pytest's capture."""
    print(f"[devstack] {message}", file=sys.__stderr__, flush=True)


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - any failure just means "not yet"
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s (last error: {last_error!r})")


def poll_for(fetch: Callable[[], list[T]], count: int, timeout: float, what: str, interval: float = 0.25) -> list[T]:
    """Calls fetch() until it returns at least `count` items; fails naming how many came."""
    deadline = time.monotonic() + timeout
    items: list[T] = []
    while time.monotonic() < deadline:
        items = fetch()
        if len(items) >= count:
            return items
        time.sleep(interval)
    raise AssertionError(f"{len(items)} < {count} {what} within {timeout}s")


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except urllib.error.HTTPError:
        return False


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def with_private_mounts(setup: str, argv: Sequence[str]) -> list[str]:
    """argv run in a mount namespace of its own, once the shell commands `setup` have mounted there
    what it should see: the machine's own mounts stay as they are."""
    return ["unshare", "--mount", "sh", "-c", f'{setup} && exec "$@"', "sh", *argv]


class LocalService:
    """A component run here as one Process: start and stop it, its URL on loopback, its output."""

    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop()

    def logs(self) -> str:
        return self.process.output()


class Process:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        ready: Callable[[], bool] | None = None,
        ready_timeout: float = 60.0,
    ):
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.log_path = Path(log_dir) / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Process":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        env = dict(os.environ if self.env is None else self.env)
        self.proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd, start_new_session=True
        )
        log.close()
        if self.ready is not None:
            try:
                wait_until(self._ready_or_died, self.ready_timeout, self.name, interval=0.2)
            except Exception:
                self.stop()
                raise RuntimeError(f"{self.name} did not become ready; last log lines:\n{self.tail()}") from None
        return self

    def _ready_or_died(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
        return bool(self.ready and self.ready())

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> "Process":
        self.stop()
        return self.start()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def json_lines(self) -> list[dict]:
        """The output lines that are JSON objects (structured logs), skipping everything else."""
        lines = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    pass
        return lines

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])
