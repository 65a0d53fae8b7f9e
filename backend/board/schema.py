"""The schema, created idempotently: `python -m board` (the Kubernetes init step) or on first connection."""

from __future__ import annotations

import logging
import os
import sys
import time

STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS users (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        username VARCHAR(32) NOT NULL,
        password_hash VARCHAR(255) NOT NULL,
        created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        UNIQUE KEY users_username (username)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
    """,
    """
    CREATE TABLE IF NOT EXISTS messages (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        user_id BIGINT UNSIGNED NOT NULL,
        body VARCHAR(1000) NOT NULL,
        created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        CONSTRAINT messages_user FOREIGN KEY (user_id) REFERENCES users (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
    """,
)


def ensure(conn) -> None:
    with conn.cursor() as cur:
        for statement in STATEMENTS:
            cur.execute(statement)
    conn.commit()


def main() -> int:
    from .config import ConfigError, Settings
    from .db import connect

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    # In Kubernetes this runs as an init container that may start before MariaDB is ready.
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
