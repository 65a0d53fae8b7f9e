"""The message board API: an app factory wiring settings, telemetry, MariaDB, Redis and blueprints."""

from __future__ import annotations

__version__ = "0.1.0"

from flask import Flask, request  # noqa: E402
from werkzeug.middleware.proxy_fix import ProxyFix  # noqa: E402

from . import app_metrics, auth, body_drain, db, health, json_logs, messages, openapi, redis_store, telemetry  # noqa: E402
from .config import Settings  # noqa: E402
from .errors import ApiError, register_error_handlers  # noqa: E402

MAX_BODY_BYTES = 64 * 1024
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    json_logs.configure(str(telemetry.build_resource().attributes["service.name"]))

    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
    )
    # First, so that the request's span exists before any of our hooks can answer.
    if telemetry.enabled():
        telemetry.start(app)
    app.extensions["board"] = {
        "redis": redis_store.build_client(settings),
        "metrics": app_metrics.BoardMetrics.create(),
    }
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)
    app.wsgi_app = body_drain.DrainUnreadBody(app.wsgi_app)

    @app.before_request
    def require_json_for_writes():
        # With SameSite=Lax this closes the remaining CSRF door: a cross-site form always declares a
        # Content-Type, and never JSON. A write with neither body nor Content-Type (logout) carries
        # nothing to forge. An unknown route or method is answered as such (404, 405), not as 415.
        if request.routing_exception is not None or request.method not in _STATE_CHANGING:
            return
        if request.mimetype != "application/json" and (request.mimetype or body_drain.has_body(request.environ)):
            raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")

    db.init_app(app)
    register_error_handlers(app)
    for blueprint in (health.bp, auth.bp, messages.bp, openapi.bp):
        app.register_blueprint(blueprint)
    return app
