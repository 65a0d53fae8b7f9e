"""OpenTelemetry for the backend: the SDK's providers with OTLP/HTTP exporters, and the maintained
Flask, PyMySQL, Redis and logging instrumentations. Started in each gunicorn worker after the fork:
batch processors own threads, which a fork does not copy."""

from __future__ import annotations

import os
import uuid

from flask import Flask, request
from opentelemetry import _logs, metrics, trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.instrumentation.pymysql import PyMySQLInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import DropAggregation, View
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span
from opentelemetry.util.http import sanitize_method
from pymysql.connections import Connection

from . import __version__

# Kubernetes polls the probes every few seconds; their spans would drown the real requests.
PROBES = "/healthz$,/readyz$"
# The request metrics the dashboards and alerts read, and no more: fewer series, less work per request.
METRIC_VIEWS = [
    View(instrument_name="http.server.active_requests", aggregation=DropAggregation(), attribute_keys=set()),
    View(instrument_name="http.server.request.duration",
         attribute_keys={"http.request.method", "http.route", "http.response.status_code", "error.type"}),
]


def enabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def build_resource() -> Resource:
    """Our defaults; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override them."""
    return Resource.create({
        "service.name": "backend",
        "service.version": __version__,
        "service.instance.id": str(uuid.uuid4()),  # per worker: this runs after the fork
    }).merge(OTELResourceDetector().detect())


def start(app: Flask) -> None:
    """Global providers once per process (unless `opentelemetry-instrument` or an earlier app made
    them), then the instrumentations. Endpoint, headers, compression, sampler, batch and export
    intervals come from the standard OTEL_* variables, which the SDK reads itself."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        resource = build_resource()
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(tracer_provider)
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
        _logs.set_logger_provider(logger_provider)
        if os.environ.get("OTEL_METRICS_EXPORTER", "otlp").strip().lower() != "none":
            reader = PeriodicExportingMetricReader(OTLPMetricExporter())
            metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader], views=METRIC_VIEWS))
    # The stable HTTP conventions unless the environment chooses (the one setting the
    # instrumentations read): http.route on SERVER spans, http.server.request.duration in seconds.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    # Every Redis client is traced, every log record goes out with its trace context; SQL: sql_connection.
    for instrumentor in (RedisInstrumentor(), LoggingInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
    if not FlaskInstrumentor().is_instrumented_by_opentelemetry:  # zero-code patches Flask itself
        FlaskInstrumentor.instrument_app(
            app,
            excluded_urls=os.environ.get("OTEL_PYTHON_FLASK_EXCLUDED_URLS", PROBES),
            request_hook=_name_unrouted_by_method,
            enable_commenter=False,  # no sqlcommenter here: nothing reads its context
        )


def sql_connection(connection: Connection) -> Connection:
    """The connection, traced by PyMySQL's instrumentation when the request's trace is kept. It
    builds a tracer and wrappers per connection, and the app opens one per request: an unsampled
    request would pay for them and record nothing (bench/README.md)."""
    if trace.get_current_span().is_recording() and not PyMySQLInstrumentor().is_instrumented_by_opentelemetry:
        return PyMySQLInstrumentor.instrument_connection(connection)
    return connection


def _name_unrouted_by_method(span: Span, _environ: dict) -> None:
    """A request no route matched is named by its method alone, as the HTTP conventions say: the
    path is client text, and a scan of random paths must not mint span names (nor span metrics)."""
    if request.url_rule is None and span.is_recording():
        method = sanitize_method(request.method)
        span.update_name("HTTP" if method == "_OTHER" else method)


def shutdown() -> None:
    """Flush what the batch processors hold; gunicorn calls this when a worker exits."""
    for provider in (trace.get_tracer_provider(), _logs.get_logger_provider(), metrics.get_meter_provider()):
        if isinstance(provider, (TracerProvider, LoggerProvider, MeterProvider)):
            provider.shutdown()
