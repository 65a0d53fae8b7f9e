"""The message board: newest first, cached in Redis, readable from MariaDB when Redis is down."""

from __future__ import annotations

import logging
from datetime import timezone

from flask import Blueprint, jsonify, request

from . import app_metrics, db, message_cache, sessions
from .errors import ApiError
from .requests_json import json_object, string_field

bp = Blueprint("messages", __name__, url_prefix="/api/messages")
log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = message_cache.CACHED_COUNT
MAX_BODY = 1000

_SELECT = """
    SELECT m.id, u.username AS author, m.body, m.created_at
    FROM messages m JOIN users u ON u.id = m.user_id
"""


def _as_json(row: dict) -> dict:
    created = row["created_at"].replace(tzinfo=timezone.utc)
    return {
        "id": row["id"],
        "author": row["author"],
        "body": row["body"],
        "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _latest_from_db(count: int) -> list[dict]:
    with db.cursor() as cur:
        cur.execute(_SELECT + " ORDER BY m.id DESC LIMIT %s", (count,))
        return [_as_json(row) for row in cur.fetchall()]


@bp.get("")
def list_messages():
    limit = _limit()
    generation, cached = message_cache.lookup()
    if cached is not None:
        return jsonify(messages=cached[:limit])
    latest = _latest_from_db(MAX_LIMIT)
    if generation is not None:
        message_cache.put(generation, latest)
    return jsonify(messages=latest[:limit])


@bp.post("")
def post_message():
    username = sessions.current_user()
    if username is None:
        raise ApiError(401, "unauthorized", "log in to post")
    # The length is the body as sent, as the OpenAPI schema's maxLength states; trimming comes after.
    sent = string_field(json_object(), "body")
    body = sent.strip()
    if not body or len(sent) > MAX_BODY:
        raise ApiError(400, "validation_error", f"body must be 1-{MAX_BODY} characters, not only whitespace")
    with db.cursor() as cur:
        # One round trip (MariaDB's RETURNING) where an INSERT and a SELECT of the new row took two:
        # on a traced request each statement is also a CLIENT span, about 0.45 M instructions.
        cur.execute(
            "INSERT INTO messages (user_id, body) SELECT id, %s FROM users WHERE username = %s"
            " RETURNING id, body, created_at",
            (body, username),
        )
        row = cur.fetchone()
    if row is None:  # the session outlived its account
        raise ApiError(401, "unauthorized", "log in to post")
    message_id = row["id"]
    message_cache.invalidate()
    log.info("message posted", extra={"message.id": message_id, "enduser.id": username})
    app_metrics.current().messages_posted.add(1)
    return jsonify(_as_json(dict(row, author=username))), 201
