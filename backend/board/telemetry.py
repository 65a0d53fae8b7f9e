"""OpenTelemetry for the backend: providers, exporters, instrumentation and log handlers.

Providers are built per process after gunicorn forks (the app factory runs in each worker,
never with --preload), because batch processors own threads that do not survive a fork.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask
from opentelemetry import _logs, metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.instrumentation.pymysql import PyMySQLInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from . import __version__
from .json_logs import build_stdout_handler
from .otlp_export import LogExporter, SpanExporter
from .otlp_logs import OtlpLogHandler, otlp_log_handler
from .redis_spans import TracedRedis
from .request_telemetry import RequestTelemetry

DEFAULT_SERVICE_NAME = "backend"


@dataclass
class Telemetry:
    service_name: str
    tracer_provider: TracerProvider | None
    logger_provider: LoggerProvider | None
    meter_provider: MeterProvider | None = None

    def traced_sql(self, connection: Any) -> Any:
        """The connection, wrapped so that its statements become CLIENT spans when the current
        request's trace is kept. The instrumentation builds its integration, a tracer included, per
        connection, and we open one per request (db.py): an unsampled POST paid about 0.45 M
        instructions (benchmark 1d's loop) for spans that were never recorded."""
        if self.tracer_provider is None or not trace.get_current_span().is_recording():
            return connection
        return PyMySQLInstrumentor.instrument_connection(connection, tracer_provider=self.tracer_provider)

    def redis_clients(self, client: redis.Redis) -> RedisClients:
        """The client, and a twin on its connection pool whose commands become CLIENT spans
        (redis_spans). Only a kept trace's commands go through the twin
        (RedisClients.for_current_span): an unsampled request pays nothing for spans it drops."""
        if self.tracer_provider is None:
            return RedisClients(client, client)
        return RedisClients(client, TracedRedis(client.connection_pool, self.tracer_provider))

    def shutdown(self) -> None:
        """Flush what is queued; called when a gunicorn worker exits."""
        for provider in (self.tracer_provider, self.logger_provider, self.meter_provider):
            if provider is not None:
                provider.shutdown()


@dataclass(frozen=True)
class RedisClients:
    plain: redis.Redis
    traced: redis.Redis

    def for_current_span(self) -> redis.Redis:
        return self.traced if trace.get_current_span().is_recording() else self.plain


def sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def build_resource() -> Resource:
    """Our defaults, overridden by OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME when set."""
    defaults = Resource.create(
        {
            "service.name": DEFAULT_SERVICE_NAME,
            "service.version": __version__,
            # Unique per gunicorn worker: this runs after the fork, once per process.
            "service.instance.id": str(uuid.uuid4()),
        }
    )
    return defaults.merge(OTELResourceDetector().detect())


def build_tracer_provider(resource: Resource) -> TracerProvider:
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(SpanExporter()))
    return provider


def build_log_export(resource: Resource) -> tuple[LoggerProvider, OtlpLogHandler]:
    provider = LoggerProvider(resource=resource)
    return provider, otlp_log_handler(provider, LogExporter())


def build_meter_provider(resource: Resource) -> MeterProvider | None:
    """Cumulative OTLP/HTTP metrics every OTEL_METRIC_EXPORT_INTERVAL ms (the SDK reads it; 60 s by
    default), with trace-based exemplars (OTEL_METRICS_EXEMPLAR_FILTER's default). None when
    OTEL_METRICS_EXPORTER=none."""
    if os.environ.get("OTEL_METRICS_EXPORTER", "otlp").strip().lower() == "none":
        return None
    return MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())])


def configure_logging(service_name: str, otlp_handler: logging.Handler | None) -> None:
    root = logging.getLogger()
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    for handler in list(root.handlers):
        if getattr(handler, "_board_handler", False):
            root.removeHandler(handler)
    handlers: list[logging.Handler] = [build_stdout_handler(service_name)]
    if otlp_handler is not None:
        handlers.append(otlp_handler)
    for handler in handlers:
        handler._board_handler = True  # so a second create_app in one process replaces, not duplicates
        root.addHandler(handler)
    # The exporters' own connection errors must not loop back into the OTLP pipeline they report on.
    for noisy in ("opentelemetry.exporter", "urllib3", "opentelemetry.sdk._shared_internal", "board.otlp_encoding",
                  "board.otlp_export"):
        logging.getLogger(noisy).propagate = False


def init_process_telemetry() -> Telemetry:
    """Install global providers once per process (OTel's API allows setting them only once)."""
    log_handler = None
    if sdk_disabled():
        telemetry = Telemetry(_service_name(), None, None)
    else:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            logger_provider = _logs.get_logger_provider()
            meter_provider = metrics.get_meter_provider()
            return Telemetry(
                str(current.resource.attributes["service.name"]),
                current,
                logger_provider if isinstance(logger_provider, LoggerProvider) else None,
                meter_provider if isinstance(meter_provider, MeterProvider) else None,
            )
        resource = build_resource()
        tracer_provider = build_tracer_provider(resource)
        logger_provider, log_handler = build_log_export(resource)
        meter_provider = build_meter_provider(resource)
        trace.set_tracer_provider(tracer_provider)
        _logs.set_logger_provider(logger_provider)
        if meter_provider is not None:
            metrics.set_meter_provider(meter_provider)
        # Redis and SQL spans come per client and per connection (Telemetry.redis_clients,
        # traced_sql), for kept traces only. Neither instrumentation records metrics here.
        telemetry = Telemetry(str(resource.attributes["service.name"]), tracer_provider, logger_provider,
                              meter_provider)
    configure_logging(telemetry.service_name, log_handler)
    return telemetry


def _service_name() -> str:
    return str(build_resource().attributes["service.name"])


def instrument_app(app: Flask, telemetry: Telemetry) -> None:
    if telemetry.tracer_provider is None:
        return
    # Probes are polled every few seconds by Kubernetes; tracing them would drown real requests.
    RequestTelemetry(app, telemetry.tracer_provider, telemetry.meter_provider, excluded_paths=("/healthz", "/readyz"))
