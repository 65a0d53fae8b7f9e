"""A throw-away Redis server (Debian's redis-server) on a free port, persisting nothing, with a
password as the cluster's Redis has one."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import redis

from . import system_packages
from .procs import Process, free_port


@dataclass
class Redis:
    process: Process
    port: int
    password: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def env(self) -> dict[str, str]:
        """The backend's settings for this server (REDIS_PASSWORD comes from a Secret in k8s)."""
        return {"REDIS_URL": self.url, "REDIS_PASSWORD": self.password}

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, password=self.password, decode_responses=True)


def start(base_dir: Path, port: int | None = None, persist: bool = False) -> Redis:
    """persist=True keeps an append-only file (fsync every second), so data survives a SIGKILL."""
    system_packages.ensure("redis-server")
    port = port or free_port()
    password = secrets.token_urlsafe(18)
    data = base_dir / "redis-data"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        system_packages.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
        "--dir", str(data), "--save", "", "--appendonly", "yes" if persist else "no",
        "--appendfsync", "everysec", "--protected-mode", "yes", "--requirepass", password,
    ]

    def ping() -> bool:
        return redis.Redis(port=port, password=password, socket_timeout=0.5).ping()

    return Redis(Process("redis", argv, base_dir, ready=ping, ready_timeout=30).start(), port, password)
