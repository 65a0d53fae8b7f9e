"""The newest messages cached in Redis, invalidated on write by bumping a generation counter; Redis
being down is not an error here (the caller reads MariaDB). The counter and the list come back in
one MGET, so a cache hit is one round trip."""

from __future__ import annotations

import json
import logging

import redis

from . import redis_store

log = logging.getLogger(__name__)

GENERATION_KEY = "messages:generation"
LATEST_KEY = "messages:latest"
CACHED_COUNT = 100
TTL_S = 300


def lookup() -> tuple[str | None, list[dict] | None]:
    """(current generation, its cached list or None); (None, None) when Redis is unavailable. A list is
    taken only under the generation it was read under: a reader that loaded from MariaDB before a
    write stores a list of the old generation, which no reader accepts, so it never outlives the write."""
    try:
        generation, raw = redis_store.client().mget(GENERATION_KEY, LATEST_KEY)
    except redis.RedisError as exc:
        log.warning("message cache unavailable: %s", type(exc).__name__)
        return None, None
    generation = generation or "0"
    if raw is None:
        return generation, None
    cached = json.loads(raw)
    return generation, cached["messages"] if cached.get("generation") == generation else None


def put(generation: str, messages: list[dict]) -> None:
    try:
        redis_store.client().set(LATEST_KEY, json.dumps({"generation": generation, "messages": messages}), ex=TTL_S)
    except redis.RedisError as exc:
        log.warning("message cache write failed: %s", type(exc).__name__)


def invalidate() -> None:
    try:
        redis_store.client().incr(GENERATION_KEY)
    except redis.RedisError as exc:
        # The TTL bounds how long a stale list can be served if Redis comes back with the old counter.
        log.warning("message cache invalidation failed: %s", type(exc).__name__)
