"""A throw-away MariaDB server (Debian's mariadb-server) on a free port with its own data dir."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import system_packages
from .procs import Process, free_port, port_open, say


@dataclass
class MariaDB:
    process: Process
    host: str
    port: int
    socket: Path
    user: str = "board"
    password: str = "board-test-pw"
    database: str = "board"

    def env(self) -> dict[str, str]:
        return {
            "MYSQL_HOST": self.host,
            "MYSQL_PORT": str(self.port),
            "MYSQL_USER": self.user,
            "MYSQL_PASSWORD": self.password,
            "MYSQL_DATABASE": self.database,
        }

    def sql(self, statement: str) -> str:
        out = subprocess.run(
            ["mariadb", f"--socket={self.socket}", "-uroot", "-N", "-e", statement],
            check=True, capture_output=True, text=True,
        )
        return out.stdout


def start(base_dir: Path) -> MariaDB:
    system_packages.ensure("mariadbd")
    data = base_dir / "mariadb-data"
    sock = base_dir / "mariadb.sock"
    port = free_port()
    if not data.exists():
        say("initialising a MariaDB data dir")
        subprocess.run(
            [system_packages.which("mariadb-install-db") or "mariadb-install-db", f"--datadir={data}", "--user=root",
             "--auth-root-authentication-method=socket", "--skip-test-db"],
            check=True, capture_output=True,
        )
    argv = [
        system_packages.which("mariadbd"), "--no-defaults", f"--datadir={data}", f"--socket={sock}",
        f"--port={port}", "--bind-address=127.0.0.1", "--user=root", f"--pid-file={base_dir / 'mariadb.pid'}",
        "--skip-log-bin", "--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=2",
        "--skip-name-resolve", "--max-connections=500",
    ]
    process = Process("mariadb", argv, base_dir, ready=lambda: port_open(port), ready_timeout=60).start()
    db = MariaDB(process, "127.0.0.1", port, sock)
    db.sql(
        f"CREATE DATABASE IF NOT EXISTS {db.database} CHARACTER SET utf8mb4;"
        f"CREATE USER IF NOT EXISTS '{db.user}'@'%' IDENTIFIED BY '{db.password}';"
        f"GRANT ALL ON {db.database}.* TO '{db.user}'@'%';"
    )
    return db
