"""Each request's SERVER span and its http.server.request.duration point.

This is the part of the OpenTelemetry Flask instrumentation that the API uses, in place of
FlaskInstrumentor, which cost a cache-hit GET about 0.8 M instructions even when its span was not
kept (it gathers the request's attributes twice, matches the excluded URLs three times and keeps an
active-requests counter nothing reads): benchmark 1d, the README has the numbers before and after.
Names and attributes follow the stable HTTP semantic conventions, which the dashboards,
alerts and tests read: span `{method} {route}` (just `{method}` when no route matched, so a scan
of random paths cannot mint span names), `http.route`, `http.response.status_code`, `error.type`
for a 5xx; the histogram in seconds with the conventions' buckets, by method, scheme, route and
status, with the request's trace as its exemplar. Attributes are gathered only for a span that
is kept; the query string is never recorded (it is client text and may carry a token).
"""

from __future__ import annotations

from timeit import default_timer
from typing import Callable, Iterable

from flask import Flask, request
from opentelemetry import context, propagate, trace
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.propagators.textmap import Getter
from opentelemetry.semconv.attributes.client_attributes import CLIENT_ADDRESS
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_REQUEST_METHOD_ORIGINAL,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.url_attributes import URL_PATH, URL_SCHEME
from opentelemetry.semconv.attributes.user_agent_attributes import USER_AGENT_ORIGINAL
from opentelemetry.semconv.metrics.http_metrics import HTTP_SERVER_REQUEST_DURATION
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from . import __version__

# The semantic conventions' advice for http.server.request.duration, in seconds.
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})
_ROUTE_KEY = "board.http_route"


class _EnvironGetter(Getter[dict]):
    """W3C trace context headers from a WSGI environ (`traceparent` arrives as HTTP_TRACEPARENT)."""

    def get(self, carrier: dict, key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return None if value is None else [value]

    def keys(self, carrier: dict) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


_GETTER = _EnvironGetter()


class RequestTelemetry:
    """WSGI middleware around a Flask app's own wsgi_app, plus a before_request hook that notes the
    matched route (routing happens inside Flask, after the span has started)."""

    def __init__(self, app: Flask, tracer_provider: TracerProvider, meter_provider: MeterProvider | None,
                 excluded_paths: Iterable[str] = ()):
        self._app = app.wsgi_app
        self._excluded = frozenset(excluded_paths)
        self._tracer = tracer_provider.get_tracer(__name__, __version__)
        meter = (meter_provider or NoOpMeterProvider()).get_meter(__name__, __version__)
        self._duration = meter.create_histogram(
            HTTP_SERVER_REQUEST_DURATION, unit="s", description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )
        app.wsgi_app = self
        # First of the app's hooks, so that a hook which refuses the request still leaves the route.
        app.before_request_funcs.setdefault(None, []).insert(0, _note_route)

    def __call__(self, environ: dict, start_response: Callable):
        if environ.get("PATH_INFO") in self._excluded:
            return self._app(environ, start_response)
        started = default_timer()
        method = environ.get("REQUEST_METHOD", "")
        if method not in _KNOWN_METHODS:
            method = "_OTHER"
        span = self._tracer.start_span(method, context=propagate.extract(environ, getter=_GETTER),
                                       kind=SpanKind.SERVER)
        if span.is_recording():
            span.set_attributes(_request_attributes(environ, method))
        status_code = 500  # what the client gets if the app raises before it starts a response

        def _start_response(status: str, headers, exc_info=None):
            nonlocal status_code
            status_code = int(status[:3])
            return start_response(status, headers, exc_info)

        span_context = trace.set_span_in_context(span)
        token = context.attach(span_context)
        try:
            return self._app(environ, _start_response)
        except Exception as exc:
            span.record_exception(exc)
            raise
        finally:
            context.detach(token)
            self._finish(span, span_context, environ, method, status_code, default_timer() - started)

    def _finish(self, span: trace.Span, span_context: context.Context, environ: dict, method: str, status_code: int,
                duration_s: float) -> None:
        route = environ.get(_ROUTE_KEY)
        error_type = str(status_code) if status_code >= 500 else None
        if span.is_recording():
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute(HTTP_ROUTE, route)
            span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status_code)
            if error_type:
                span.set_attribute(ERROR_TYPE, error_type)
                span.set_status(Status(StatusCode.ERROR))
        span.end()
        attributes = {HTTP_REQUEST_METHOD: method, URL_SCHEME: environ.get("wsgi.url_scheme", "http"),
                      HTTP_RESPONSE_STATUS_CODE: status_code}
        if route:
            attributes[HTTP_ROUTE] = route
        if error_type:
            attributes[ERROR_TYPE] = error_type
        # The span's context, so that a kept trace's duration carries it as an exemplar.
        self._duration.record(duration_s, attributes, context=span_context)


def _note_route() -> None:
    if request.url_rule is not None:
        request.environ[_ROUTE_KEY] = request.url_rule.rule


def _request_attributes(environ: dict, method: str) -> dict:
    attributes = {
        HTTP_REQUEST_METHOD: method,
        URL_SCHEME: environ.get("wsgi.url_scheme", "http"),
        URL_PATH: environ.get("PATH_INFO") or "/",
    }
    if method == "_OTHER":
        attributes[HTTP_REQUEST_METHOD_ORIGINAL] = environ.get("REQUEST_METHOD", "")
    host, port = _host_and_port(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""))
    if host:
        attributes[SERVER_ADDRESS] = host
    if port is not None:
        attributes[SERVER_PORT] = port
    if environ.get("REMOTE_ADDR"):
        attributes[CLIENT_ADDRESS] = environ["REMOTE_ADDR"]
    if environ.get("HTTP_USER_AGENT"):
        attributes[USER_AGENT_ORIGINAL] = environ["HTTP_USER_AGENT"]
    return attributes


def _host_and_port(value: str) -> tuple[str, int | None]:
    """`example.org:8080` -> (example.org, 8080); an IPv6 literal keeps its brackets: `[::1]:80`."""
    host, sep, port = value.rpartition(":")
    if not sep or value.endswith("]") or not port.isdigit():
        return value, None
    return host, int(port)
