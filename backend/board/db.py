"""MariaDB access: one PyMySQL connection per request, opened lazily (a cache hit opens none) and
closed at teardown. No long-lived pool, so the API recovers by itself when MariaDB returns: there is
no stale connection to notice."""

from __future__ import annotations

import functools
import logging
import ssl
from contextlib import contextmanager
from typing import Any, Iterator

import pymysql
import pymysql.cursors
from flask import Flask, current_app, g

from . import schema, telemetry
from .errors import DependencyUnavailable

log = logging.getLogger(__name__)

# Errors that mean "the server is not there or went away", as opposed to a bug in our SQL.
_UNAVAILABLE = (pymysql.err.OperationalError, pymysql.err.InterfaceError, ConnectionError, TimeoutError, OSError)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Built once per process: PyMySQL's default builds one per connection, loading the system CA
    # store each time (about 45 ms, more than the rest of a request).
    return ssl.create_default_context()


def connect(settings) -> pymysql.connections.Connection:
    # TLS is either required (with a verified server certificate) or off; PyMySQL's default
    # "preferred" mode encrypts without verifying whom it talks to, and pays the cost above.
    tls = {"ssl": _tls_context()} if settings.mysql_tls else {"ssl_disabled": True}
    return pymysql.connect(
        host=settings.mysql_host,
        port=settings.mysql_port,
        user=settings.mysql_user,
        password=settings.mysql_password,
        database=settings.mysql_database,
        connect_timeout=settings.mysql_timeout_s,
        read_timeout=settings.mysql_timeout_s * 2,
        write_timeout=settings.mysql_timeout_s * 2,
        charset="utf8mb4",
        cursorclass=pymysql.cursors.DictCursor,
        autocommit=True,
        **tls,
    )


def get_connection() -> pymysql.connections.Connection:
    if "db" not in g:
        settings = current_app.config["SETTINGS"]
        state = current_app.extensions["board"]
        try:
            conn = telemetry.sql_connection(connect(settings))
        except _UNAVAILABLE as exc:
            log.warning("mysql connect failed: %s", type(exc).__name__)
            raise DependencyUnavailable("mysql") from exc
        if settings.schema_auto_create and not state.get("schema_ready"):
            schema.ensure(conn)
            state["schema_ready"] = True
        g.db = conn
    return g.db


@contextmanager
def cursor() -> Iterator[Any]:
    conn = get_connection()
    try:
        with conn.cursor() as cur:
            yield cur
    except _UNAVAILABLE as exc:
        g.pop("db", None)
        log.warning("mysql query failed: %s", type(exc).__name__)
        raise DependencyUnavailable("mysql") from exc


def close_connection(_exc: BaseException | None = None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        try:
            conn.close()
        except Exception:  # a connection that already broke has nothing left to close
            pass


def ping(settings) -> str:
    try:
        conn = connect(settings)
    except _UNAVAILABLE as exc:
        return f"error: {type(exc).__name__}: {exc.args[-1] if exc.args else ''}"[:200]
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        return "ok"
    except _UNAVAILABLE as exc:
        return f"error: {type(exc).__name__}"
    finally:
        conn.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_connection)
