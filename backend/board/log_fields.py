"""What both log handlers (stdout JSON, OTLP) read of a record besides the stdlib's own fields: its
`extra=` fields and the active span's context, taken once per record and kept on it, so that the
second handler does not scan the record and look the span up again."""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.trace import SpanContext, get_current_span

# LogRecord attributes that are not user-supplied `extra=` fields.
STANDARD_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}

_KEPT_AS = "_board_fields"  # a leading underscore: not an `extra=` field itself


def record_fields(record: logging.LogRecord) -> tuple[dict[str, Any], SpanContext]:
    """The record's `extra=` fields and the span context active where it was logged. Handlers run in
    the logging call's thread, so the first to ask sees the caller's span."""
    fields = record.__dict__.get(_KEPT_AS)
    if fields is None:
        extra = {k: v for k, v in record.__dict__.items() if k not in STANDARD_RECORD_FIELDS and k[0] != "_"}
        fields = record.__dict__[_KEPT_AS] = (extra, get_current_span().get_span_context())
    return fields
