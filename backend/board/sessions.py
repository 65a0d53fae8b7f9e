"""Server-side sessions in Redis. The cookie holds only a random id; Redis keys hold its hash,
so neither the id nor anything derived from it in reverse shows up in Redis command telemetry."""

from __future__ import annotations

import hashlib
import secrets

from flask import Response, current_app, request

from . import redis_store

COOKIE = "session"


def _key(session_id: str) -> str:
    return "session:" + hashlib.sha256(session_id.encode()).hexdigest()


def create(response: Response, username: str) -> None:
    settings = current_app.config["SETTINGS"]
    session_id = secrets.token_urlsafe(32)
    with redis_store.required() as r:
        r.set(_key(session_id), username, ex=settings.session_ttl_s)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=settings.session_ttl_s,
        httponly=True,
        samesite="Lax",
        secure=settings.session_cookie_secure,
        path="/",
    )


def current_user() -> str | None:
    session_id = request.cookies.get(COOKIE)
    if not session_id or len(session_id) > 128:
        return None
    with redis_store.required() as r:
        return r.get(_key(session_id))


def destroy(response: Response) -> None:
    session_id = request.cookies.get(COOKIE)
    if session_id and len(session_id) <= 128:
        with redis_store.required() as r:
            r.delete(_key(session_id))
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax")
