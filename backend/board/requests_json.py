"""Reading and validating JSON request bodies: every client mistake becomes a 4xx, never a 500."""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from .errors import ApiError


def json_object() -> dict[str, Any]:
    if not request.content_length and not request.data:
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    try:
        body = request.get_json(force=True, silent=False)
    except RequestEntityTooLarge:
        raise
    except BadRequest:
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    return body


def string_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise ApiError(400, "validation_error", f"'{name}' must be a string")
    return value
