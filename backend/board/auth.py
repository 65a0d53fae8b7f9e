"""Sign-up, login, logout and who-am-I. Passwords never reach a log, a span or a response."""

from __future__ import annotations

import logging
import re

import pymysql
from flask import Blueprint, jsonify, make_response
from werkzeug.security import check_password_hash, generate_password_hash

from . import app_metrics, db, login_limiter, sessions
from .errors import ApiError
from .requests_json import json_object, string_field

bp = Blueprint("auth", __name__, url_prefix="/api/auth")
log = logging.getLogger(__name__)

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")
# A real hash of a throw-away password: checking against it when the user does not exist keeps
# the response time of "no such user" equal to "wrong password".
_DUMMY_HASH = generate_password_hash("not-a-real-password-0")


def _credentials() -> tuple[str, str]:
    body = json_object()
    username = string_field(body, "username")
    password = string_field(body, "password")
    if not USERNAME.fullmatch(username):
        raise ApiError(400, "validation_error", "username must be 3-32 characters of letters, digits, '_', '.', '-'")
    if not 8 <= len(password) <= 128:
        raise ApiError(400, "validation_error", "password must be 8-128 characters")
    return username, password


@bp.post("/signup")
def signup():
    username, password = _credentials()
    password_hash = generate_password_hash(password)
    try:
        with db.cursor() as cur:
            cur.execute("INSERT INTO users (username, password_hash) VALUES (%s, %s)", (username, password_hash))
    except pymysql.err.IntegrityError:
        raise ApiError(409, "username_taken", "that username is taken") from None
    log.info("user signed up", extra={"enduser.id": username})
    return jsonify(username=username), 201


@bp.post("/login")
def login():
    username, password = _credentials()
    if login_limiter.is_locked(username):
        log.warning("login rate limited", extra={"enduser.id": username})
        app_metrics.current().logins.add(1, {"outcome": "rate_limited"})
        raise ApiError(429, "too_many_attempts", "too many failed logins, try again in a minute")
    with db.cursor() as cur:
        cur.execute("SELECT password_hash FROM users WHERE username = %s", (username,))
        row = cur.fetchone()
    if not check_password_hash(row["password_hash"] if row else _DUMMY_HASH, password) or row is None:
        login_limiter.record_failure(username)
        log.info("login failed", extra={"enduser.id": username})
        app_metrics.current().logins.add(1, {"outcome": "failed"})
        raise ApiError(401, "invalid_credentials", "wrong username or password")
    login_limiter.clear(username)
    response = make_response(jsonify(username=username), 200)
    sessions.create(response, username)
    log.info("login succeeded", extra={"enduser.id": username})
    app_metrics.current().logins.add(1, {"outcome": "succeeded"})
    return response


@bp.post("/logout")
def logout():
    response = make_response("", 204)
    sessions.destroy(response)
    return response


@bp.get("/me")
def me():
    username = sessions.current_user()
    if username is None:
        raise ApiError(401, "unauthorized", "not logged in")
    return jsonify(username=username)
