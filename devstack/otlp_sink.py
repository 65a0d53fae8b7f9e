"""An OTLP/HTTP receiver that decodes the real protobuf and keeps what it got: a telemetry backend where
none runs, answering as a real receiver does; the Loki and Tempo models read what it kept."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

TRACE_PATHS = ("/v1/traces",)
LOG_PATHS = ("/v1/logs", "/otlp/v1/logs")
METRIC_PATHS = ("/v1/metrics",)


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(kvs) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    status_code: int
    resource: dict[str, Any]
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    scope: str
    # Defaults keep Spans built by hand (and older callers) working; decode_traces fills them.
    start_time_unix_nano: int = 0
    end_time_unix_nano: int = 0
    status_message: str = ""
    scope_version: str = ""
    trace_state: str = ""


@dataclass
class LogRecord:
    trace_id: str
    span_id: str
    body: Any  # the decoded python value: str, int, float, bool, bytes, list, dict or None (unset)
    severity_text: str
    severity_number: int
    resource: dict[str, Any]
    attributes: dict[str, Any]
    path: str
    # What a backend derives stored fields from (Loki: timestamp, flags, scope_* metadata);
    # defaults keep hand-built records working.
    time_unix_nano: int = 0
    observed_time_unix_nano: int = 0
    flags: int = 0
    scope_name: str = ""
    scope_version: str = ""
    scope_attributes: dict[str, Any] = field(default_factory=dict)
    dropped_attributes_count: int = 0
    # When the sink decoded it: a backend stamps a record without timestamps with its arrival and
    # judges "too old"/"too new" against it. 0 = unknown (a record built in a test).
    received_unix_nano: int = 0


@dataclass
class Received:
    spans: list[Span] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    raw_bodies: list[bytes] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def decode_traces(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest.FromString(body)
    spans = []
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(Span(
                    trace_id=s.trace_id.hex(), span_id=s.span_id.hex(), parent_span_id=s.parent_span_id.hex(),
                    name=s.name, kind=s.kind, status_code=s.status.code, resource=resource,
                    attributes=attributes(s.attributes),
                    events=[{"name": e.name, "attributes": attributes(e.attributes)} for e in s.events],
                    scope=ss.scope.name, start_time_unix_nano=s.start_time_unix_nano,
                    end_time_unix_nano=s.end_time_unix_nano, status_message=s.status.message,
                    scope_version=ss.scope.version, trace_state=s.trace_state,
                ))
    return spans


def decode_logs(body: bytes, path: str) -> list[LogRecord]:
    return log_records(ExportLogsServiceRequest.FromString(body), path, time.time_ns())


def log_records(request: ExportLogsServiceRequest, path: str, received: int) -> list[LogRecord]:
    records = []
    for rl in request.resource_logs:
        resource = attributes(rl.resource.attributes)
        for sl in rl.scope_logs:
            scope_attributes = attributes(sl.scope.attributes)
            for r in sl.log_records:
                records.append(LogRecord(
                    trace_id=r.trace_id.hex(), span_id=r.span_id.hex(), body=any_value(r.body),
                    severity_text=r.severity_text, severity_number=r.severity_number, resource=resource,
                    attributes=attributes(r.attributes), path=path,
                    time_unix_nano=r.time_unix_nano, observed_time_unix_nano=r.observed_time_unix_nano,
                    flags=r.flags, scope_name=sl.scope.name, scope_version=sl.scope.version,
                    scope_attributes=scope_attributes, dropped_attributes_count=r.dropped_attributes_count,
                    received_unix_nano=received,
                ))
    return records


class OtlpSink:
    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        self.host = host
        self.port = port
        self.received = Received()
        # While True the receiver refuses every request with 503, as a backend that is up but
        # overloaded or not ready does: senders keep the data and retry instead of dropping it.
        self.refusing = False
        self._lock = threading.Lock()
        self._unread_logs: list[tuple[ExportLogsServiceRequest, str, int]] = []
        self.metric_requests: list[ExportMetricsServiceRequest] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "OtlpSink":
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                    body = gzip.decompress(body)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload = sink._accept(self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True, name="otlp-sink").start()
        return self

    def stop(self) -> None:
        """Close the listening socket: senders now get 'connection refused', as from a dead collector."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _accept(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if self.refusing:
            # OTLP/HTTP: 503 is retryable; an empty body is a valid (empty) google.rpc.Status.
            return 503, b""
        content_type = headers.get("content-type", "").split(";")[0].strip()
        if content_type != "application/x-protobuf":
            return 415, b""
        received = time.time_ns()
        try:
            if path in TRACE_PATHS:
                spans, logs, response = decode_traces(body), None, ExportTraceServiceResponse()
            elif path in LOG_PATHS:
                # Parsed now (a malformed body gets its 400), turned into LogRecords when read: the
                # parse is C code, the Python objects are what costs, and a far end that decoded
                # everything on arrival would fall behind a flood and hold up the senders.
                spans, logs, response = [], ExportLogsServiceRequest.FromString(body), ExportLogsServiceResponse()
            elif path in METRIC_PATHS:
                spans, logs, response = [], None, ExportMetricsServiceResponse()
                metrics = ExportMetricsServiceRequest.FromString(body)
            else:
                return 404, b""
        except DecodeError:
            return 400, b""
        with self._lock:
            self.received.spans.extend(spans)
            if path in METRIC_PATHS:
                self.metric_requests.append(metrics)
            if logs is not None:
                self._unread_logs.append((logs, path, received))
            self.received.raw_bodies.append(body)
            self.received.requests.append((path, headers))
        return 200, response.SerializeToString()

    # Queries used by tests -------------------------------------------------------------------
    def spans(self) -> list[Span]:
        with self._lock:
            return list(self.received.spans)

    def logs(self) -> list[LogRecord]:
        with self._lock:
            for request, path, received in self._unread_logs:
                self.received.logs.extend(log_records(request, path, received))
            self._unread_logs.clear()
            return list(self.received.logs)

    def metric_points(self, name: str) -> list[dict[str, Any]]:
        """Every data point of the metric `name` received, newest last, with its resource, unit,
        temporality and exemplars' trace ids (sums and histograms)."""
        points = []
        with self._lock:
            requests = list(self.metric_requests)
        for request in requests:
            for rm in request.resource_metrics:
                resource = attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if metric.name != name:
                            continue
                        kind = metric.WhichOneof("data")
                        data = getattr(metric, kind)
                        for p in data.data_points:
                            points.append({
                                "resource": resource, "attributes": attributes(p.attributes), "unit": metric.unit,
                                "kind": kind, "temporality": getattr(data, "aggregation_temporality", 0),
                                "value": p.count if kind == "histogram" else (p.as_int or p.as_double),
                                "exemplar_trace_ids": [e.trace_id.hex() for e in p.exemplars if e.trace_id],
                            })
        return points

    def wait_for(self, predicate: Callable[["OtlpSink"], Any], timeout: float = 15.0, what: str = "telemetry") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate(self)
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"{what} did not arrive within {timeout}s "
                             f"({len(self.spans())} spans, {len(self.logs())} logs received)")
