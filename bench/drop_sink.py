"""An OTLP/HTTP endpoint that reads every request and answers 200 at once, keeping nothing: a collector
that costs the sender nothing beyond its own export, so what the co-located pipeline costs shows
as the difference to exporting to the real gateway."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Drop(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        # An empty Export*ServiceResponse: full success, in protobuf as the exporter sent it.
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class DropSink:
    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Drop)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "DropSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
