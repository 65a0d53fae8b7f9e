"""`npm ci` for a directory of the repo with a package-lock.json, run only when node_modules is missing
or came from another lockfile, under a file lock, since other runs may install at the same time."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Iterator

from .procs import REPO, say

CACHE = Path(os.environ.get("STACK_CACHE", Path.home() / ".cache" / "otel-stack"))


def _slug(directory: Path) -> str:
    try:
        rel = directory.resolve().relative_to(REPO)
    except ValueError:
        rel = directory.resolve()
    return "-".join(part for part in rel.parts if part not in ("/", "")) or "root"


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def stamp(directory: Path) -> Path:
    """node_modules/.stamp-lock-<hash of package-lock.json>: present once `npm ci` of that lockfile
    succeeded."""
    digest = hashlib.sha256((Path(directory) / "package-lock.json").read_bytes()).hexdigest()[:16]
    return Path(directory) / "node_modules" / f".stamp-lock-{digest}"


def ensure_installed(directory: Path) -> Path:
    """Runs `npm ci --no-audit --no-fund` in `directory` unless node_modules was installed from this
    package-lock.json; returns the node_modules path. Raises RuntimeError with the log's tail when
    npm fails."""
    directory = Path(directory)
    slug = _slug(directory)
    with _lock(f"npm-{slug}"):
        marker = stamp(directory)
        if not marker.exists():
            say(f"{slug}: npm ci (node_modules missing or package-lock.json changed)")
            log_path = CACHE / f"npm-ci-{slug}.log"
            started = time.monotonic()
            with open(log_path, "w") as log:
                result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=directory,
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
                raise RuntimeError(f"{slug}: npm ci failed with exit code {result.returncode} "
                                   f"(log {log_path}):\n{tail}")
            marker.touch()
            say(f"{slug}: npm ci done in {time.monotonic() - started:.0f}s")
    return directory / "node_modules"
