"""The maintained OTLP/HTTP span and log exporters with our encoder (otlp_encoding) in place of theirs.

Everything but the encoding stays theirs: endpoint, headers, timeout and compression from the
standard OTEL_EXPORTER_OTLP_* variables, retries with backoff, the request size limit, their
optional self-metrics. Their export() calls the encoder inline, with no seam to pass another one,
so export() is theirs rewritten around ours: it reads `_client`, `_metrics`, `_shutdown` and
`_max_request_size`, which is why the exporter packages' pins (requirements.txt) move only with
tests/test_otlp_encoding.py and the pipeline tests passing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

from .otlp_encoding import Encoder
from .otlp_logs import QueuedLog

_logger = logging.getLogger(__name__)

Result = TypeVar("Result", SpanExportResult, LogRecordExportResult)


def _export(exporter: Any, items: Sequence[Any], encode: Callable[[Sequence[Any]], bytes],
            success: Result, failure: Result) -> Result:
    if exporter._shutdown:
        _logger.warning("exporter already shut down, batch of %d dropped", len(items))
        return failure
    with exporter._metrics.export_operation(len(items)) as result:
        try:
            data = encode(items)
        except Exception as error:  # an encoding bug must cost this batch, never the worker thread
            _logger.error("batch of %d not encoded: %s", len(items), error)
            result.error = error
            return failure
        if _is_request_too_large(data, exporter._max_request_size):
            message = f"batch of {len(items)} dropped: {len(data)} bytes is over the request limit"
            _logger.warning("%s (%d bytes)", message, exporter._max_request_size)
            result.error = RequestPayloadTooLargeError(message)
            return failure
        outcome = exporter._client.export(data)
        if not outcome.success:
            result.error = outcome.error
            if outcome.status_code is not None:
                result.error_attrs = {HTTP_RESPONSE_STATUS_CODE: outcome.status_code}
            return failure
    return success


class SpanExporter(OTLPSpanExporter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._encoder = Encoder()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return _export(self, spans, self._encoder.spans, SpanExportResult.SUCCESS, SpanExportResult.FAILURE)


class LogExporter(OTLPLogExporter):
    """Exports what otlp_logs.OtlpLogHandler queues (QueuedLogs), not the SDK's log records."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._encoder = Encoder()

    def export(self, batch: Sequence[QueuedLog]) -> LogRecordExportResult:
        return _export(self, batch, self._encoder.logs, LogRecordExportResult.SUCCESS, LogRecordExportResult.FAILURE)
