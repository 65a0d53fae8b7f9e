"""Standard-library log records to OTLP: a logging.Handler that puts them on the SDK's batch queue.

The maintained path (opentelemetry-instrumentation-logging's LoggingHandler, then the SDK's Logger
and BatchLogRecordProcessor) builds each record three times over: an API record, a writable SDK
record whose attributes are cleaned into a BoundedAttributes, and a shallow copy for the queue, and
looks the Logger up per record: with the maintained encoder, 100-115 us of CPU per record more
than the stdout JSON line alone (benchmark 3). This handler takes what the exporter needs of a
record into one flat tuple (QueuedLog), which otlp_encoding writes as an OTLP LogRecord, and queues
it on the SDK's own batch processor (its worker thread, queue limit, schedule, flush on shutdown
and fork handling stay the SDK's). In benchmark 3's loop (bench/log_cost.py, callgrind, every
thread) a logging call with this handler and the stdout one costs 230 k instructions, 140 k with
the stdout one alone; it was 266 k while this handler built the SDK's LogRecord and
ReadableLogRecord for the queue and each handler scanned the record for itself (log_fields).

What a record carries is what LoggingHandler gives it (tests/test_otlp_logs.py decodes both):
severity, body, `extra=` fields as attributes, exception.* for exc_info, the active span's
trace_id/span_id/flags, and the stdlib logger's name as instrumentation scope. Attribute values of
other types are written as str(), as the stdout JSON line writes them. Not applied: the SDK's
OTEL_ATTRIBUTE_COUNT_LIMIT / _VALUE_LENGTH_LIMIT, which no record of ours comes near (a few
`extra=` fields each).
"""

from __future__ import annotations

import logging
import traceback
from time import time_ns
from typing import Any, NamedTuple

from opentelemetry.instrumentation.log_utils import std_to_otel
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from .log_fields import record_fields

_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}
_IMMUTABLE = frozenset((str, int, float, bool, bytes, type(None)))


class QueuedLog(NamedTuple):
    """One record as the exporter reads it (otlp_encoding.Encoder.logs): nothing of the request's
    context lives on in the queue but its ids."""

    resource: Resource
    instrumentation_scope: InstrumentationScope
    time_unix_nano: int
    observed_time_unix_nano: int
    severity_number: int
    severity_text: str
    body: str
    attributes: dict[str, Any]
    trace_id: int
    span_id: int
    trace_flags: int
    event_name: str | None


def _attribute(value: Any) -> Any:
    if value.__class__ in _IMMUTABLE:
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_attribute(v) for v in value)  # a copy: the caller may change its list later
    if isinstance(value, dict):
        return {str(k): _attribute(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bytes)):  # subclasses (an IntEnum, a str enum) as their base
        return value
    return str(value)


class BatchQueue(BatchLogRecordProcessor):
    """The SDK's batch processor (OTEL_BLRP_* settings), fed QueuedLogs directly."""

    def enqueue(self, record: QueuedLog) -> None:
        self._batch_processor.emit(record)


class _Scopes(dict):
    """InstrumentationScope per logger name, made on first use."""

    def __missing__(self, logger_name: str) -> InstrumentationScope:
        scope = self[logger_name] = InstrumentationScope(logger_name)
        return scope


class _Severities(dict):
    """(OTLP severity number, severity text) per (level, level name), made on first use."""

    def __missing__(self, level: tuple[int, str]) -> tuple[int, str]:
        number, name = level
        severity = self[level] = (std_to_otel(number).value, _SEVERITY_TEXT.get(name, name))
        return severity


class OtlpLogHandler(logging.Handler):
    def __init__(self, provider: LoggerProvider, queue: BatchQueue, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._resource = provider.resource
        self._queue = queue
        self._scopes = _Scopes()
        self._severities = _Severities()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._queue.enqueue(self._translate(record))
        except Exception:  # logging's contract: a handler reports its own failure and carries on
            self.handleError(record)

    def _translate(self, record: logging.LogRecord) -> QueuedLog:
        extra, span = record_fields(record)
        attributes = {k: v if v.__class__ in _IMMUTABLE else _attribute(v) for k, v in extra.items()}
        event_name = None
        if "otel.event.name" in attributes or "event.name" in attributes:
            event_name = attributes.pop("otel.event.name", None)
            deprecated_event_name = attributes.pop("event.name", None)  # the older attribute, second
            if event_name is None:
                event_name = deprecated_event_name
        if record.exc_info and record.exc_info[0] is not None:
            kind, error, tb = record.exc_info
            attributes["exception.type"] = kind.__name__
            if error is not None and error.args:
                attributes["exception.message"] = str(error.args[0])
            attributes["exception.stacktrace"] = "".join(traceback.format_exception(kind, error, tb))
        severity_number, severity_text = self._severities[record.levelno, record.levelname]
        return QueuedLog(self._resource, self._scopes[record.name], int(record.created * 1e9), time_ns(),
                         severity_number, severity_text, record.getMessage(), attributes,
                         span.trace_id, span.span_id, span.trace_flags, event_name)


def otlp_log_handler(provider: LoggerProvider, exporter: LogRecordExporter) -> OtlpLogHandler:
    """A handler whose records the provider's shutdown flushes. `exporter` takes QueuedLogs
    (otlp_export.LogExporter)."""
    queue = BatchQueue(exporter)
    provider.add_log_record_processor(queue)
    return OtlpLogHandler(provider, queue)
