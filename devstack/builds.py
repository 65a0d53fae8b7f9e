"""Paths of the Go binaries the tests run, built once into the cache by the repo's own scripts."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from .procs import REPO, say


def _build(script: list[str], what: str) -> str:
    say(f"ensuring {what} is built (cold: several minutes; cached afterwards)")
    out = subprocess.run(script, cwd=REPO, check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout.strip().splitlines()[-1]


@functools.cache
def collector() -> str:
    return _build(["bash", "collector/build.sh"], "the otelcol-stack collector")


def collector_dir() -> Path:
    """The cache directory of the built collector: the binary and the go.mod it was resolved with."""
    return Path(collector()).parent


@functools.cache
def tool(name: str) -> str:
    return _build(["bash", "tools/build.sh", name], name)
