"""What Loki and Tempo share here: a binary built from its pinned Go module, run with the config that
ships in k8s/, whose ${VAR:-default} placeholders the test's environment fills in."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from . import builds
from .procs import Process, http_ok


class GrafanaStore:
    http_port: int  # set by the subclass before it calls _launch

    def _launch(self, tool: str, config: Path, base_dir: Path, name: str, env: dict[str, str]) -> None:
        argv = [builds.tool(tool), f"-config.file={config}", "-config.expand-env=true"]
        self.process = Process(name, argv, base_dir, env={"PATH": "/usr/bin:/bin", **env},
                               ready=lambda: http_ok(f"{self.url}/ready"), ready_timeout=120)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> Self:
        self.process.start()
        return self
