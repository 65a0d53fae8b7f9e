"""Our log handler and encoder (backend/board/otlp_logs.py, otlp_encoding.py) against the maintained
path they replace (opentelemetry-instrumentation-logging's LoggingHandler, the SDK's records and
the maintained OTLP encoder): the same stdlib records give the same ExportLogsServiceRequest,
decoded with opentelemetry-proto's classes, field for field but for the observed time. That the
records reach the collector with the request's trace context is asserted by
test_backend_telemetry.py and test_pipeline_e2e.py."""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from board.otlp_encoding import Encoder
from board.otlp_logs import otlp_log_handler

RESOURCE = Resource.create({"service.name": "backend", "service.version": "1.2.3", "k8s.pod.uid": "abc"},
                           schema_url="https://opentelemetry.io/schemas/1.26.0")


class Opaque:
    def __str__(self) -> str:
        return "opaque value"


def log_the_same_records(log: logging.Logger) -> None:
    tracer = TracerProvider().get_tracer("t")
    log.warning("outside any span: %s of %d", "one", 2, extra={"enduser.id": "alice", "ok": True, "ratio": 0.5,
                                                                 "city": "zürich ✓", "long": "x" * 300})
    with tracer.start_as_current_span("kept"):
        log.info("message posted", extra={"message.id": 8, "tags": ["a", "b"], "object": Opaque(),
                                          "nested": {"k": [1, 2]}})
        try:
            raise RuntimeError("dependency down", 3)
        except RuntimeError:
            log.exception("request failed")
        log.error("no exception here", exc_info=False)
    unsampled = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(0))
    with trace.use_span(NonRecordingSpan(unsampled)):
        log.debug("unsampled request: ids kept, flags say so")
    for half_valid in (SpanContext(0x1234, 0, is_remote=True), SpanContext(0, 0x5678, is_remote=True)):
        with trace.use_span(NonRecordingSpan(half_valid)):
            log.info("an invalid context: whichever id it has")
    log.critical("alert", extra={"event.name": "board.alert"})
    log.critical("alert", extra={"event.name": "older", "otel.event.name": "board.alert"})
    log.log(5, "below DEBUG")
    log.log(60, "above CRITICAL")


def without_observed_times(request: ExportLogsServiceRequest) -> ExportLogsServiceRequest:
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                record.observed_time_unix_nano = 0
    return request


def test_our_handler_gives_the_records_the_maintained_one_gives():
    log = logging.getLogger("board.handler-test")
    log.propagate = False
    log.setLevel(1)
    maintained, ours = InMemoryLogRecordExporter(), InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(maintained))
    our_provider = LoggerProvider(resource=RESOURCE)
    handlers = [LoggingHandler(logger_provider=provider), otlp_log_handler(our_provider, ours)]
    for handler in handlers:
        log.addHandler(handler)
    try:
        log_the_same_records(log)
    finally:
        for handler in handlers:
            log.removeHandler(handler)
    assert our_provider.force_flush()
    expected, got = maintained.get_finished_logs(), ours.get_finished_logs()
    assert len(got) == len(expected) == 11
    encoded = ExportLogsServiceRequest.FromString(Encoder().logs(got))
    assert without_observed_times(encoded) == without_observed_times(encode_logs(expected))
    assert got[1].attributes["object"] == "opaque value" and got[1].attributes["tags"] == ("a", "b")
    our_provider.shutdown()


def test_a_list_logged_then_changed_is_exported_as_it_was_logged():
    log = logging.getLogger("board.handler-test-copy")
    log.propagate = False
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    handler = otlp_log_handler(provider, exporter)
    log.addHandler(handler)
    tags = ["a"]
    log.warning("tagged", extra={"tags": tags})
    tags.append("b")
    log.removeHandler(handler)
    provider.force_flush()
    assert exporter.get_finished_logs()[0].attributes["tags"] == ("a",)
    provider.shutdown()
