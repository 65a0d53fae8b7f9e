"""Failed-login counting per username and client in Redis: 5 failures in a minute lock that pair out."""

from __future__ import annotations

import hashlib

from flask import request

from . import redis_store

MAX_FAILURES = 5
WINDOW_S = 60


def _key(username: str) -> str:
    client = request.remote_addr or "unknown"
    return "loginfail:" + hashlib.sha256(f"{username.lower()}|{client}".encode()).hexdigest()


def is_locked(username: str) -> bool:
    with redis_store.required() as r:
        count = r.get(_key(username))
    return count is not None and int(count) >= MAX_FAILURES


def record_failure(username: str) -> None:
    key = _key(username)
    with redis_store.required() as r:
        pipe = r.pipeline()
        pipe.incr(key)
        # NX: the window starts at the first failure, later failures do not extend it.
        pipe.expire(key, WINDOW_S, nx=True)
        pipe.execute()


def clear(username: str) -> None:
    with redis_store.required() as r:
        r.delete(_key(username))
