"""`python -m board`: the Kubernetes init step that creates the schema once MariaDB answers."""

from __future__ import annotations

import logging
import os
import sys
import time

from .config import ConfigError, Settings
from .db import connect
from .schema import ensure


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    # The init container may start before MariaDB is ready.
    deadline = time.monotonic() + float(os.environ.get("SCHEMA_WAIT_SECONDS", "120"))
    while True:
        try:
            conn = connect(settings)
            break
        except Exception as exc:  # noqa: BLE001 - any connect failure is retried until the deadline
            if time.monotonic() > deadline:
                print(f"mysql unreachable: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
            logging.info("waiting for mysql at %s:%s", settings.mysql_host, settings.mysql_port)
            time.sleep(2)
    try:
        ensure(conn)
    finally:
        conn.close()
    logging.info("schema ready in database %s", settings.mysql_database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
