"""Reading the rest of a request body the app did not read, once the answer has been sent.

The app answers an oversized or refused body (413, 415, 401) without reading it. gunicorn then
drains at most 64 KiB before it closes the connection, and closing a socket with unread bytes
makes the kernel send RST: a client still sending its body gets a reset instead of the answer
already on its way. Reading the body to its end (bounded: nginx, in front in the cluster, refuses
anything over 1 MiB itself) lets the client finish sending and read the JSON error.
"""

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
