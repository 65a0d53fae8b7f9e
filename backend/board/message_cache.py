"""The newest messages cached in Redis, invalidated on write by bumping a generation counter.

A reader that loaded from MariaDB before a write can only fill the old generation's key, which
nobody reads any more, so a stale list never outlives the write that made it stale. Redis being
down is not an error here: the caller reads MariaDB instead.
"""

from __future__ import annotations

import json
import logging

import redis

from . import redis_store

log = logging.getLogger(__name__)

GENERATION_KEY = "messages:generation"
CACHED_COUNT = 100
TTL_S = 300


def _list_key(generation: str) -> str:
    return f"messages:latest:{generation}"


def generation() -> str | None:
    try:
        return redis_store.client().get(GENERATION_KEY) or "0"
    except redis.RedisError as exc:
        log.warning("message cache unavailable: %s", type(exc).__name__)
        return None


def get(gen: str) -> list[dict] | None:
    try:
        raw = redis_store.client().get(_list_key(gen))
    except redis.RedisError as exc:
        log.warning("message cache read failed: %s", type(exc).__name__)
        return None
    return None if raw is None else json.loads(raw)


def put(gen: str, messages: list[dict]) -> None:
    try:
        redis_store.client().set(_list_key(gen), json.dumps(messages), ex=TTL_S)
    except redis.RedisError as exc:
        log.warning("message cache write failed: %s", type(exc).__name__)


def invalidate() -> None:
    try:
        redis_store.client().incr(GENERATION_KEY)
    except redis.RedisError as exc:
        # The TTL bounds how long a stale list can be served if Redis comes back with the old key.
        log.warning("message cache invalidation failed: %s", type(exc).__name__)
