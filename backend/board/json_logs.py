"""Logging for the backend: one JSON object per line on stdout, with the active trace_id/span_id,
for `kubectl logs` (the OTLP copy of each record is the logging instrumentation's, telemetry.py)."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone

from opentelemetry.trace import get_current_span

# LogRecord attributes that are not user-supplied `extra=` fields.
STANDARD_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# Loggers of the export path itself: their connection errors must not loop back into OTLP.
EXPORT_LOGGERS = ("opentelemetry.exporter", "opentelemetry.sdk", "urllib3")


class JsonFormatter(logging.Formatter):
    def __init__(self, service_name: str):
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "service.name": self.service_name,
        }
        span = get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        entry.update((k, v) for k, v in vars(record).items() if k not in STANDARD_RECORD_FIELDS)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class StdoutJsonHandler(logging.StreamHandler):
    def __init__(self, service_name: str):
        super().__init__(sys.stdout)
        self.setFormatter(JsonFormatter(service_name))


def configure(service_name: str) -> None:
    """The root logger at LOG_LEVEL with one stdout JSON handler (a second app in one process
    replaces the first one's handler rather than doubling every line)."""
    root = logging.getLogger()
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    for handler in [h for h in root.handlers if isinstance(h, StdoutJsonHandler)]:
        root.removeHandler(handler)
    root.addHandler(StdoutJsonHandler(service_name))
    for name in EXPORT_LOGGERS:
        logging.getLogger(name).propagate = False
