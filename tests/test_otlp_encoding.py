"""Our OTLP encoder (backend/board/otlp_encoding.py) against the maintained one: the same spans, from
the real SDK, decoded with opentelemetry-proto's classes, give equal messages (log records: through
our handler, in test_otlp_logs.py).
What reaches the collector through it is asserted by the pipeline tests (test_pipeline_e2e.py)."""

from __future__ import annotations

import pytest
from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from board import otlp_encoding
from board.otlp_encoding import Encoder

RESOURCE = Resource.create({"service.name": "backend", "service.version": "1.2.3", "k8s.pod.uid": "abc"},
                           schema_url="https://opentelemetry.io/schemas/1.26.0")
# Every type an attribute may have, and the edges of the wire format: negative ints take ten bytes,
# long strings a multi-byte length, empty sequences an empty array.
ATTRIBUTES = {
    "http.request.method": "GET", "http.route": "/api/messages", "server.port": 8000, "neg": -5,
    "int64.min": -(1 << 63), "int64.max": (1 << 63) - 1, "ratio": 0.25, "nan.free": -1e300, "flag": True,
    "off": False, "zero": 0, "empty": "", "unicode": "zürich ✓ 日本", "long": "x" * 300,
    "strings": ("a", "b"), "ints": (1, -2, 3), "floats": (1.5,), "bools": (True, False), "none.yet": (),
}


def spans_from_the_sdk():
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE, span_limits=SpanLimits(max_events=2, max_links=1,
                                                                         max_span_attributes=40))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    server = provider.get_tracer("board.request_telemetry", "0.1.0", schema_url="https://opentelemetry.io/schemas/1.30.0",
                                 attributes={"scope.attr": "s"})
    client = provider.get_tracer("opentelemetry.instrumentation.redis")
    remote = SpanContext(0x0af7651916cd43dd8448eb211c80319c, 0xb7ad6b7169203331, is_remote=True,
                         trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "x1"), ("other", "y")]))
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(remote)))
    try:
        with server.start_as_current_span("GET /api/messages", kind=SpanKind.SERVER, attributes=ATTRIBUTES) as span:
            with client.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={"db.system.name": "redis"}):
                pass
            with client.start_as_current_span("SET", kind=SpanKind.CLIENT,
                                              links=[Link(remote, {"link.attr": 1}), Link(remote)]) as failing:
                failing.record_exception(ValueError("boom"))
                failing.set_status(Status(StatusCode.ERROR, "connection refused"))
            for i in range(3):
                span.add_event(f"event {i}", {"i": i, "http.route": "/api/messages"})
            span.set_status(StatusCode.OK)
    finally:
        context.detach(token)
    with server.start_as_current_span("root, local", kind=SpanKind.INTERNAL):
        pass
    for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER):
        with client.start_as_current_span(kind.name, kind=kind):
            pass
    return memory.get_finished_spans()


def test_spans_encode_as_the_maintained_encoder_does():
    spans = spans_from_the_sdk()
    assert any(s.dropped_events for s in spans) and any(s.dropped_links for s in spans)
    ours = ExportTraceServiceRequest.FromString(Encoder().spans(spans))
    assert ours == encode_spans(spans)


def test_a_cached_attribute_is_the_same_bytes_in_every_place_it_appears():
    encoder = Encoder()
    spans = spans_from_the_sdk()
    first = encoder.spans(spans)
    assert encoder.spans(spans) == first  # second time from the cache
    assert ExportTraceServiceRequest.FromString(first) == encode_spans(spans)


def test_the_attribute_cache_stays_bounded(monkeypatch):
    monkeypatch.setattr(otlp_encoding, "CACHE_ENTRIES", 50)
    encoder = Encoder()
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(200):
        with provider.get_tracer("t").start_as_current_span("s", attributes={"url.path": f"/api/messages/{i}"}):
            pass
    spans = memory.get_finished_spans()
    assert ExportTraceServiceRequest.FromString(encoder.spans(spans)) == encode_spans(spans)
    assert len(encoder._attributes) <= 50


@pytest.mark.parametrize("bad", [object(), 1 << 64, [object()]], ids=["object", "int-over-int64", "list-of-object"])
def test_an_attribute_that_cannot_be_encoded_is_left_out_and_the_rest_kept(bad):
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span._attributes._dict["bad"] = bad  # past the SDK's own checks, as a buggy instrumentation might
        span.set_attribute("good", "kept")
    decoded = ExportTraceServiceRequest.FromString(Encoder().spans(memory.get_finished_spans()))
    [encoded] = decoded.resource_spans[0].scope_spans[0].spans
    assert [kv.key for kv in encoded.attributes] == ["good"]


def test_a_lone_surrogate_costs_one_character_not_the_batch():
    """JSON's "\\ud800" decodes to a lone surrogate, which UTF-8 cannot carry: the maintained encoder
    fails the whole batch on it (512 records by default). Ours writes "?" in its place."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("s\ud800", attributes={"user": "a\udc00b"}):
        pass
    with provider.get_tracer("t").start_as_current_span("next"):
        pass
    spans = memory.get_finished_spans()
    with pytest.raises(Exception):
        encode_spans(spans).SerializeToString()
    decoded = ExportTraceServiceRequest.FromString(Encoder().spans(spans))
    encoded = decoded.resource_spans[0].scope_spans[0].spans
    assert [s.name for s in encoded] == ["s?", "next"]
    assert encoded[0].attributes[0].value.string_value == "a?b"
