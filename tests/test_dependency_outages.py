"""MariaDB or Redis going away and coming back, with no restart of gunicorn."""

from __future__ import annotations

import time

import pytest

from conftest import Api, unique_name
from harness import mariadb, redis_server
from harness.backend import Backend, backend_env


@pytest.fixture(scope="module")
def own_stack(work_dir):
    """Dependencies this module may kill without disturbing the other tests."""
    base = work_dir / "outages"
    db = mariadb.start(base / "mariadb")
    cache = redis_server.start(base / "redis")
    backend = Backend(base / "logs", backend_env(db.env(), cache.url, None), name="backend-outages").start()
    yield db, cache, backend
    backend.stop()
    cache.process.stop()
    db.process.stop()


def wait_status(call, status: int, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        resp = call()
        if resp.status_code == status or time.monotonic() > deadline:
            return resp
        time.sleep(0.2)


def test_redis_down_reads_still_work_from_mariadb_and_sessions_resume(own_stack):
    _, cache, backend = own_stack
    api = Api(backend.url)
    api.signup_and_login(unique_name("r"))
    api.post("/api/messages", {"body": "before the redis outage"})
    cache.process.kill()
    try:
        listed = api.get("/api/messages")
        assert listed.status_code == 200
        assert listed.json()["messages"][0]["body"] == "before the redis outage"
        login = api.post("/api/auth/login", {"username": "whoever", "password": "whatever1"})
        assert login.status_code == 503 and login.json()["error"]["code"] == "redis_unavailable"
        assert api.get("/readyz").json()["checks"]["redis"].startswith("error")
    finally:
        cache.process.start()
    # Redis came back empty (it persists nothing here), so the old session is gone; a new login works.
    again = Api(backend.url)
    resp = wait_status(lambda: again.signup_and_login(unique_name("r2")) and again.get("/api/auth/me"), 200)
    assert resp.status_code == 200


def test_mariadb_down_gives_503_and_recovers_without_restart(own_stack):
    db, _, backend = own_stack
    api = Api(backend.url)
    api.signup_and_login(unique_name("m"))
    api.post("/api/messages", {"body": "cached before the outage"})
    db.process.kill()
    try:
        started = time.monotonic()
        write = api.post("/api/messages", {"body": "during the outage"})
        assert time.monotonic() - started < 10
        assert write.status_code == 503 and write.json()["error"]["code"] == "mysql_unavailable"
        assert api.get("/readyz").status_code == 503
    finally:
        db.process.start()
    resp = wait_status(lambda: api.post("/api/messages", {"body": "after the outage"}), 201, timeout=5)
    assert resp.status_code == 201
    assert api.get("/readyz").status_code == 200
