"""Liveness (touches nothing) and readiness (checks MariaDB and Redis, says which failed)."""

from flask import Blueprint, current_app, jsonify

from . import db, redis_store

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks = {
        "mysql": db.ping(current_app.config["SETTINGS"]),
        "redis": redis_store.ping(redis_store.client()),
    }
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503
