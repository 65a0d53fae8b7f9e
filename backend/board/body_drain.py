"""Reads the rest of a body the app refused unread (413, 415, 401) after answering: gunicorn drains only
64 KiB, and a socket closed with unread bytes sends RST, so a client still sending would get a reset
instead of the answer. Bounded (nginx in front refuses over 1 MiB itself)."""

from __future__ import annotations

from werkzeug.wsgi import ClosingIterator

DRAIN_MAX_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024


def has_body(environ: dict) -> bool:
    return (environ.get("CONTENT_LENGTH") or "0") != "0" or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


class DrainUnreadBody:
    def __init__(self, app, max_bytes: int = DRAIN_MAX_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        response = self.app(environ, start_response)
        if not has_body(environ):
            return response
        # ClosingIterator runs the drain after the server has written the response.
        return ClosingIterator(response, lambda: self._drain(environ["wsgi.input"]))

    def _drain(self, stream) -> None:
        left = self.max_bytes
        try:
            while left > 0 and (chunk := stream.read(min(_CHUNK, left))):
                left -= len(chunk)
        except OSError:
            pass  # the client went away: nothing left to protect
