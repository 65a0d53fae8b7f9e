"""One JSON error shape for every failure, carrying the trace id a user can hand over."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from opentelemetry import trace
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class DependencyUnavailable(ApiError):
    """MariaDB or Redis cannot be reached; 503 with a code naming which."""

    def __init__(self, dependency: str):
        super().__init__(503, f"{dependency}_unavailable", f"{dependency} is unavailable, try again shortly")
        self.dependency = dependency


def current_trace_id() -> str:
    return format(trace.get_current_span().get_span_context().trace_id, "032x")


def error_response(status: int, code: str, message: str):
    body = {"error": {"code": code, "message": message, "trace_id": current_trace_id()}}
    return jsonify(body), status


# Werkzeug's names for the HTTP errors a client can cause, as stable snake_case codes.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        if err.status >= 500:
            log.warning("request failed: %s", err.code, extra={"error.code": err.code})
        return error_response(err.status, err.code, err.message)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        status = err.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        body, status = error_response(status, code, err.description or code.replace("_", " "))
        # The headers Werkzeug's own page would carry, such as the Allow of a 405 (RFC 9110).
        body.headers.extend((k, v) for k, v in err.get_headers() if k.lower() != "content-type")
        return body, status

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        # On the request's span (whose 500 marks it an error); the client gets no stack trace.
        trace.get_current_span().record_exception(err)
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error")
