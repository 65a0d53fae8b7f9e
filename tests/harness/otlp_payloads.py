"""Hand-built OTLP protobuf requests, for tests that play a sender the SDKs would not imitate."""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span


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


def _resource(service: str, extra: dict[str, str] | None) -> Resource:
    return Resource(attributes=_kvs({"service.name": service, **(extra or {})}))


def span_request(service: str, trace_id: str, attributes: dict[str, str], name: str = "test-span",
                 resource_extra: dict[str, str] | None = None, count: int = 1) -> bytes:
    now = time.time_ns()
    spans = [Span(trace_id=bytes.fromhex(trace_id), span_id=os.urandom(8), name=f"{name}", kind=Span.SPAN_KIND_SERVER,
                  start_time_unix_nano=now - 1_000_000, end_time_unix_nano=now, attributes=_kvs(attributes))
             for _ in range(count)]
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=_resource(service, resource_extra), scope_spans=[ScopeSpans(spans=spans)])])
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
        resource=_resource(service, resource_extra), scope_logs=[ScopeLogs(log_records=records)])])
    return request.SerializeToString()
