"""The per-process Redis client and the mapping of its failures to a 503 naming Redis."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import redis
from flask import current_app

from .errors import DependencyUnavailable

log = logging.getLogger(__name__)


def build_client(settings) -> redis.Redis:
    # redis-py reconnects on the next command after a failure, so no restart is needed when Redis returns.
    return redis.Redis.from_url(
        settings.redis_url,
        password=settings.redis_password or None,
        socket_connect_timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        health_check_interval=30,
        decode_responses=True,
    )


def client() -> redis.Redis:
    return current_app.extensions["board"]["redis"]


@contextmanager
def required() -> Iterator[redis.Redis]:
    """For operations that cannot go on without Redis (sessions, rate limits)."""
    try:
        yield client()
    except redis.RedisError as exc:
        log.warning("redis unavailable: %s", type(exc).__name__)
        raise DependencyUnavailable("redis") from exc


def ping(conn: redis.Redis) -> str:
    try:
        conn.ping()
        return "ok"
    except redis.RedisError as exc:
        return f"error: {type(exc).__name__}: {exc}"[:200]
