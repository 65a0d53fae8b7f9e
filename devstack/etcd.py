"""etcd, built from go.etcd.io/etcd/server/v3 (tools/etcd), as the API server's store, on loopback."""

from __future__ import annotations

from pathlib import Path

from . import builds
from .procs import LocalService, Process, free_port, http_ok


class Etcd(LocalService):
    def __init__(self, base_dir: Path):
        self.port = free_port()
        peer = f"http://127.0.0.1:{free_port()}"
        argv = [
            builds.tool("etcd"),
            "--name=test", f"--data-dir={base_dir / 'etcd-data'}",
            f"--listen-client-urls={self.client_url}", f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=test={peer}",
            # The suite's API server is its only client; frequent fsyncs are the slow part on this disk.
            "--unsafe-no-fsync", "--log-level=warn",
        ]
        self.process = Process("etcd", argv, base_dir, ready=lambda: http_ok(f"{self.client_url}/health"),
                               ready_timeout=60)

    @property
    def client_url(self) -> str:
        return self.url
