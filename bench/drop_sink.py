"""An OTLP/HTTP endpoint that answers 200 at once and keeps nothing but counts (spans, log records):
a collector that costs the sender nothing beyond its own export."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class _Drop(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_CountingServer"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.endswith("/v1/traces"):
            request = ExportTraceServiceRequest.FromString(body)
            self.server.count("spans", sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans))
        elif self.path.endswith("/v1/logs"):
            request = ExportLogsServiceRequest.FromString(body)
            self.server.count("logs", sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs))
        # An empty Export*ServiceResponse: full success, in protobuf as the exporter sent it.
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Drop)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, what: str, n: int) -> None:
        with self._lock:
            self.counts[what] += n


class DropSink:
    def __init__(self):
        self.server = _CountingServer()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def spans(self) -> int:
        return self.server.counts["spans"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "DropSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
