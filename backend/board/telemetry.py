"""OpenTelemetry for the backend: providers, exporters, instrumentation and log handlers.

Providers are built per process after gunicorn forks (the app factory runs in each worker,
never with --preload), because batch processors own threads that do not survive a fork.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass

from flask import Flask
from opentelemetry import _logs, trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.instrumentation.pymysql import PyMySQLInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from . import __version__
from .json_logs import build_stdout_handler

DEFAULT_SERVICE_NAME = "backend"


@dataclass
class Telemetry:
    service_name: str
    tracer_provider: TracerProvider | None
    logger_provider: LoggerProvider | None

    def shutdown(self) -> None:
        """Flush what is queued; called when a gunicorn worker exits."""
        for provider in (self.tracer_provider, self.logger_provider):
            if provider is not None:
                provider.shutdown()


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
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def build_logger_provider(resource: Resource) -> LoggerProvider:
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    return provider


def configure_logging(service_name: str, logger_provider: LoggerProvider | None) -> None:
    root = logging.getLogger()
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    for handler in list(root.handlers):
        if getattr(handler, "_board_handler", False):
            root.removeHandler(handler)
    handlers: list[logging.Handler] = [build_stdout_handler(service_name)]
    if logger_provider is not None:
        handlers.append(LoggingHandler(logger_provider=logger_provider))
    for handler in handlers:
        handler._board_handler = True  # so a second create_app in one process replaces, not duplicates
        root.addHandler(handler)
    # The exporters' own connection errors must not loop back into the OTLP pipeline they report on.
    for noisy in ("opentelemetry.exporter", "urllib3", "opentelemetry.sdk._shared_internal"):
        logging.getLogger(noisy).propagate = False


def init_process_telemetry() -> Telemetry:
    """Install global providers once per process (OTel's API allows setting them only once)."""
    if sdk_disabled():
        telemetry = Telemetry(_service_name(), None, None)
    else:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            logger_provider = _logs.get_logger_provider()
            return Telemetry(
                str(current.resource.attributes["service.name"]),
                current,
                logger_provider if isinstance(logger_provider, LoggerProvider) else None,
            )
        resource = build_resource()
        tracer_provider = build_tracer_provider(resource)
        logger_provider = build_logger_provider(resource)
        trace.set_tracer_provider(tracer_provider)
        _logs.set_logger_provider(logger_provider)
        PyMySQLInstrumentor().instrument(tracer_provider=tracer_provider)
        RedisInstrumentor().instrument(tracer_provider=tracer_provider)
        telemetry = Telemetry(str(resource.attributes["service.name"]), tracer_provider, logger_provider)
    configure_logging(telemetry.service_name, telemetry.logger_provider)
    return telemetry


def _service_name() -> str:
    return str(build_resource().attributes["service.name"])


def instrument_app(app: Flask, telemetry: Telemetry) -> None:
    if telemetry.tracer_provider is None:
        return
    # Probes are polled every few seconds by Kubernetes; tracing them would drown real requests.
    FlaskInstrumentor().instrument_app(
        app, tracer_provider=telemetry.tracer_provider, excluded_urls="healthz,readyz"
    )
