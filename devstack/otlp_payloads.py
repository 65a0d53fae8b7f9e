"""Hand-built OTLP protobuf requests, for tests that play a sender the SDKs would not imitate."""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

# The header an OTLP/HTTP protobuf request carries; the requests built here are posted with it.
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def to_any_value(value: Any) -> AnyValue:
    """The OTLP value a decoded python value came from (otlp_sink.any_value, inverted)."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[to_any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=to_key_values(value)))
    if value is None:
        return AnyValue()
    return AnyValue(string_value=str(value))


def to_key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=to_any_value(v)) for k, v in attributes.items()]


def _kvs(attributes: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=str(v))) for k, v in attributes.items()]


def service_resource(service: str, extra: dict[str, str] | None) -> Resource:
    return Resource(attributes=_kvs({"service.name": service, **(extra or {})}))


def span_request(service: str, trace_id: str, attributes: dict[str, str], name: str = "test-span",
                 resource_extra: dict[str, str] | None = None, count: int = 1) -> bytes:
    now = time.time_ns()
    spans = [Span(trace_id=bytes.fromhex(trace_id), span_id=os.urandom(8), name=f"{name}", kind=Span.SPAN_KIND_SERVER,
                  start_time_unix_nano=now - 1_000_000, end_time_unix_nano=now, attributes=_kvs(attributes))
             for _ in range(count)]
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=service_resource(service, resource_extra), scope_spans=[ScopeSpans(spans=spans)])])
    return request.SerializeToString()


def log_request(service: str, trace_id: str, body: str, attributes: dict[str, str],
                resource_extra: dict[str, str] | None = None, count: int = 1,
                time_unix_nano: int | None = None, observed_time_unix_nano: int | None = None) -> bytes:
    """Records stamped now unless given times (0 = unset, as a sender that sets none)."""
    now = time.time_ns()
    stamp = now if time_unix_nano is None else time_unix_nano
    observed = now if observed_time_unix_nano is None else observed_time_unix_nano
    records = [LogRecord(time_unix_nano=stamp, observed_time_unix_nano=observed, severity_number=9, severity_text="INFO",
                         body=AnyValue(string_value=body if count == 1 else f"{body} {i}"),
                         attributes=_kvs(attributes), trace_id=bytes.fromhex(trace_id), span_id=os.urandom(8))
               for i in range(count)]
    request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=service_resource(service, resource_extra), scope_logs=[ScopeLogs(log_records=records)])])
    return request.SerializeToString()


def browser_fetch_request(session_id: str, fetches: list[tuple[str, str, int, float]],
                          origin: str = "http://127.0.0.1:8080") -> bytes:
    """What the frontend's OTLP exporter posts for (method, path, HTTP status, seconds) fetches: one
    CLIENT span each as @opentelemetry/instrumentation-fetch 0.223 makes it (named for the method,
    status ERROR from HTTP 400 on), under the browser's resource (frontend/src/telemetry.ts)."""
    now = time.time_ns()
    spans = []
    for method, path, status, seconds in fetches:
        attributes = {"http.request.method": method, "url.full": f"{origin}{path}", "http.response.status_code": status}
        if status >= 400:
            attributes["error.type"] = str(status)
        spans.append(Span(trace_id=os.urandom(16), span_id=os.urandom(8), name=method, kind=Span.SPAN_KIND_CLIENT,
                          start_time_unix_nano=now - int(seconds * 1e9), end_time_unix_nano=now,
                          attributes=to_key_values(attributes),
                          status=Status(code=Status.STATUS_CODE_ERROR if status >= 400 else Status.STATUS_CODE_UNSET)))
    resource = Resource(attributes=to_key_values({
        "service.name": "frontend", "service.version": "0.1.0", "session.id": session_id,
        "telemetry.sdk.language": "webjs", "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.version": "2.12.0"}))
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(
        scope=InstrumentationScope(name="@opentelemetry/instrumentation-fetch", version="0.223.0"), spans=spans)])])
    return request.SerializeToString()
