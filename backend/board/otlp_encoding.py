"""OTLP/protobuf request bodies for spans and log records, written straight in the wire format.

The maintained encoder (opentelemetry-exporter-otlp-proto-common) builds a protobuf object for every
span, attribute and value before serialising them: about 0.33 M instructions (70-130 us) for a span
of 13 attributes here, the largest single cost a kept request's telemetry had left (issue 14). The
same bytes written directly cost about a quarter of that, and an attribute already seen (the method,
the route, db.system, the peer's address: most of any span's) is one dict lookup.

tests/test_otlp_encoding.py holds this to the maintained encoder: the same spans and records,
decoded with opentelemetry-proto's classes, must give equal messages. Field numbers are those of
opentelemetry-proto's trace.proto, logs.proto and common.proto.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_logger = logging.getLogger(__name__)

_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
_ONE_BYTE = [bytes((i,)) for i in range(0x80)]
_TAG_FIXED64 = struct.Struct("<BQ").pack
_TAG_FIXED32 = struct.Struct("<BI").pack
# trace_id (16 bytes, big-endian, as two halves) and span_id (8), each after its tag and length.
_IDS = struct.Struct(">BBQQBBQ").pack
_LOW64 = (1 << 64) - 1
_INT64_MIN, _INT64_END = -(1 << 63), 1 << 63

# Span.flags / Link.flags: the parent (or linked) context's is_remote is known, and whether it is set.
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200

# Cached attributes, per encoder; past this many distinct ones the cache starts over, so that
# values unique to each span (paths with ids, statements) cannot grow it without bound.
CACHE_ENTRIES = 4096


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _text(value: str) -> bytes:
    """UTF-8, as protobuf strings must be; a lone surrogate (JSON's "\\ud800" decodes to one) becomes
    "?" rather than failing the batch it is in, which is what the maintained encoder would do."""
    try:
        return value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace")


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    n = len(payload)
    return tag + (_ONE_BYTE[n] if n < 0x80 else _varint(n)) + payload


def _any_value(value: Any) -> bytes:
    """common.v1.AnyValue; the maintained encoder's types, in its order (bool before int)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", _text(value))
    if isinstance(value, int):
        if not _INT64_MIN <= value < _INT64_END:
            raise ValueError(f"{value} is out of range for an int64")
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> bytes:
    return _field(b"\x0a", _text(key)) + _field(b"\x12", _any_value(value))


_CACHEABLE = (str, int, bool, float)


class Encoder:
    """Encodes batches into ExportTraceServiceRequest / ExportLogsServiceRequest bytes. One per
    exporter: its attribute cache is used from the exporter's one worker thread."""

    def __init__(self) -> None:
        self._attributes: dict[tuple[bytes, str, type, Any], bytes] = {}
        self._severities: dict[tuple[int, str], bytes] = {}

    def spans(self, spans: Iterable[Any]) -> bytes:
        """ExportTraceServiceRequest for SDK ReadableSpans."""
        return self._by_resource_and_scope(((s.resource, s.instrumentation_scope, self._span(s)) for s in spans))

    def logs(self, records: Iterable[Any]) -> bytes:
        """ExportLogsServiceRequest for otlp_logs.QueuedLogs."""
        return self._by_resource_and_scope(((r.resource, r.instrumentation_scope, self._log_record(r)) for r in records))

    def _by_resource_and_scope(self, items: Iterable[tuple[Any, Any, bytes]]) -> bytes:
        # Resources by identity (a provider has one; hashing one serialises its attributes to JSON),
        # scopes by value (an instrumentation may make a new, equal scope per tracer it asks for).
        resources: dict[int, tuple[Any, dict[Any, list[bytes]]]] = {}
        for resource, scope, encoded in items:
            entry = resources.get(id(resource))
            if entry is None:
                entry = resources[id(resource)] = (resource, {})
            entry[1].setdefault(scope or None, []).append(encoded)
        out = []
        for resource, scopes in resources.values():
            # Resource{attributes=1}; Resource*{resource=1, scope_*=2, schema_url=3};
            # Scope*{scope=1, spans|log_records=2, schema_url=3}: the same numbers for traces and logs.
            parts = [_field(b"\x0a", self._attrs(b"\x0a", resource.attributes))]
            for scope, encoded_items in scopes.items():
                scoped = [_field(b"\x0a", self._scope(scope))]
                scoped += [_field(b"\x12", e) for e in encoded_items]
                if scope is not None and scope.schema_url:
                    scoped.append(_field(b"\x1a", _text(scope.schema_url)))
                parts.append(_field(b"\x12", b"".join(scoped)))
            if resource.schema_url:
                parts.append(_field(b"\x1a", _text(resource.schema_url)))
            out.append(_field(b"\x0a", b"".join(parts)))
        return b"".join(out)

    def _scope(self, scope: Any) -> bytes:
        """common.v1.InstrumentationScope{name=1, version=2, attributes=3}."""
        if scope is None:
            return b""
        out = _field(b"\x0a", _text(scope.name)) if scope.name else b""
        if scope.version:
            out += _field(b"\x12", _text(scope.version))
        return out + self._attrs(b"\x1a", scope.attributes)

    def _attrs(self, tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
        """Repeated KeyValue under `tag`. An attribute that cannot be encoded is left out, and logged,
        as the maintained encoder does."""
        if not attributes:
            return b""
        cache = self._attributes
        out = []
        for key, value in attributes.items():
            cacheable = value.__class__ in _CACHEABLE
            if cacheable:
                encoded = cache.get((tag, key, value.__class__, value))
                if encoded is not None:
                    out.append(encoded)
                    continue
            try:
                encoded = _field(tag, _key_value(key, value))
            except (TypeError, ValueError) as error:
                _logger.warning("attribute %r left out of the export: %s", key, error)
                continue
            if cacheable:
                if len(cache) >= CACHE_ENTRIES:
                    cache.clear()
                cache[(tag, key, value.__class__, value)] = encoded
            out.append(encoded)
        return b"".join(out)

    def _span(self, span: Any) -> bytes:
        """trace.v1.Span."""
        context = span.get_span_context()
        parent = span.parent
        parts = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"), b"\x12\x08", context.span_id.to_bytes(8, "big")]
        if context.trace_state:
            parts.append(_field(b"\x1a", ",".join(f"{k}={v}" for k, v in context.trace_state.items()).encode()))
        if parent is not None:
            parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
        # SDK SpanKind counts from INTERNAL = 0; the proto's from SPAN_KIND_UNSPECIFIED = 0.
        parts += (_field(b"\x2a", _text(span.name)), b"\x30", _ONE_BYTE[span.kind.value + 1],
                  b"\x39", _FIXED64(span.start_time), b"\x41", _FIXED64(span.end_time),
                  self._attrs(b"\x4a", span.attributes))
        if span.dropped_attributes:
            parts += (b"\x50", _varint(span.dropped_attributes))
        for event in span.events:
            # Event{time_unix_nano=1, name=2, attributes=3, dropped_attributes_count=4}
            encoded = b"\x09" + _FIXED64(event.timestamp) + _field(b"\x12", _text(event.name))
            encoded += self._attrs(b"\x1a", event.attributes)
            if event.dropped_attributes:
                encoded += b"\x20" + _varint(event.dropped_attributes)
            parts.append(_field(b"\x5a", encoded))
        if span.dropped_events:
            parts += (b"\x60", _varint(span.dropped_events))
        for link in span.links:
            # Link{trace_id=1, span_id=2, attributes=4, dropped_attributes_count=5, flags=6}
            encoded = (b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big")
                       + b"\x12\x08" + link.context.span_id.to_bytes(8, "big") + self._attrs(b"\x22", link.attributes))
            if link.dropped_attributes:
                encoded += b"\x28" + _varint(link.dropped_attributes)
            encoded += b"\x35" + _FIXED32(_HAS_IS_REMOTE | (_IS_REMOTE if link.context.is_remote else 0))
            parts.append(_field(b"\x6a", encoded))
        if span.dropped_links:
            parts += (b"\x70", _varint(span.dropped_links))
        # Status{message=2, code=3}, present even when unset, as the maintained encoder writes it.
        status = span.status
        encoded = _field(b"\x12", _text(status.description)) if status.description else b""
        if status.status_code.value:
            encoded += b"\x18" + _ONE_BYTE[status.status_code.value]
        parts.append(_field(b"\x7a", encoded))
        # flags=16 (fixed32): tag 133 as a varint.
        parts += (b"\x85\x01", _FIXED32(_HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)))
        return b"".join(parts)

    def _log_record(self, record: Any) -> bytes:
        """logs.v1.LogRecord{time_unix_nano=1, severity_number=2, severity_text=3, body=5,
        attributes=6, flags=8, trace_id=9, span_id=10, observed_time_unix_nano=11, event_name=12}.
        Our handler drops no attributes, so dropped_attributes_count=7 is never written."""
        severity = self._severities.get((record.severity_number, record.severity_text))
        if severity is None:
            severity = self._severity(record.severity_number, record.severity_text)
        body = _text(record.body)
        n = len(body)
        # body=5 is an AnyValue{string_value=1}: two lengths, one byte each for a body under 126 bytes.
        body = (b"\x2a" + _ONE_BYTE[n + 2] + b"\x0a" + _ONE_BYTE[n] + body if n < 0x7E
                else _field(b"\x2a", _field(b"\x0a", body)))
        parts = [_TAG_FIXED64(0x09, record.time_unix_nano), severity, body, self._attrs(b"\x32", record.attributes)]
        if record.trace_flags:
            parts.append(_TAG_FIXED32(0x45, record.trace_flags))
        if record.trace_id and record.span_id:
            parts.append(_IDS(0x4a, 0x10, record.trace_id >> 64, record.trace_id & _LOW64,
                              0x52, 0x08, record.span_id))
        elif record.trace_id or record.span_id:  # an invalid context, as a propagator may hand one over
            if record.trace_id:
                parts.append(b"\x4a\x10" + record.trace_id.to_bytes(16, "big"))
            if record.span_id:
                parts.append(b"\x52\x08" + record.span_id.to_bytes(8, "big"))
        parts.append(_TAG_FIXED64(0x59, record.observed_time_unix_nano))
        if record.event_name:
            parts.append(_field(b"\x62", _text(record.event_name)))
        return b"".join(parts)

    def _severity(self, number: int, text: str) -> bytes:
        """severity_number=2 and severity_text=3, as one cached piece."""
        encoded = (b"\x10" + _varint(number) if number else b"") + (_field(b"\x1a", _text(text)) if text else b"")
        if len(self._severities) < CACHE_ENTRIES:
            self._severities[(number, text)] = encoded
        return encoded
