"""MariaDB or Redis killed under a steady load and restarted, with no restart of gunicorn.

Every request of the load is counted by status; the counts are printed (run with -s to see them).
"""

from __future__ import annotations

import time

import pytest

from conftest import TEST_PASSWORD, Api, unique_name
from devstack import mariadb, redis_server
from devstack.backend import Backend, backend_env
from devstack.load import SteadyLoad

REQUEST_TIMEOUT_S = 10  # a request slower than this during an outage counts as a hang


@pytest.fixture(scope="module")
def own_stack(work_dir):
    """Dependencies this module may kill without disturbing the other tests."""
    base = work_dir / "outages"
    db = mariadb.start(base / "mariadb")
    cache = redis_server.start(base / "redis", persist=True)
    backend = Backend(base / "logs", backend_env(db.env(), cache.env(), None), name="backend-outages").start()
    yield db, cache, backend
    backend.stop()
    cache.process.stop()
    db.process.stop()


def first_success_after(call, deadline_s: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if call().status_code < 300:
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def test_mariadb_killed_under_load_gives_503_then_recovers_within_5s(own_stack):
    db, _, backend = own_stack
    api = Api(backend.url)
    api.signup_and_login(unique_name("m"))
    cookie = api.http.cookies["session"]

    def write(http):
        http.cookies.set("session", cookie)
        return http.post(backend.url + "/api/messages", json={"body": "load"}, timeout=REQUEST_TIMEOUT_S)

    with SteadyLoad(write, threads=2) as load:
        time.sleep(1.5)
        db.process.kill()
        time.sleep(3)
        during = api.post("/api/messages", {"body": "during the outage"})
        ready = api.get("/readyz")
        db.process.start()
        recovered_after = first_success_after(lambda: api.post("/api/messages", {"body": "after"}), 5.0)
        time.sleep(1)
    result = load.result
    print(f"\nmariadb outage under load: {result.summary()}; first success {recovered_after}s after restart")
    assert during.status_code == 503 and during.json()["error"]["code"] == "mysql_unavailable"
    assert ready.status_code == 503 and ready.json()["checks"]["mysql"].startswith("error")
    assert recovered_after is not None, "no success within 5 s of MariaDB's return"
    assert set(result.counts) <= {"201", "503"}, result.summary()
    assert set(result.codes) <= {"mysql_unavailable"}, result.summary()
    assert result.counts["201"] > 0 and result.counts["503"] > 0
    assert max(result.latencies_s) < REQUEST_TIMEOUT_S


def test_redis_killed_under_load_reads_keep_working_and_sessions_resume(own_stack):
    _, cache, backend = own_stack
    api = Api(backend.url)
    name = unique_name("r")
    api.signup_and_login(name)
    api.post("/api/messages", {"body": "before the redis outage"})
    time.sleep(1.5)  # the append-only file is fsynced every second: let the session reach the disk

    def read(http):
        return http.get(backend.url + "/api/messages?limit=5", timeout=REQUEST_TIMEOUT_S)

    with SteadyLoad(read, threads=2) as load:
        time.sleep(1)
        cache.process.kill()
        time.sleep(2)
        listed = api.get("/api/messages")
        login = api.post("/api/auth/login", {"username": name, "password": TEST_PASSWORD})
        ready = api.get("/readyz")
        cache.process.start()
        time.sleep(1)
    result = load.result
    print(f"\nredis outage under read load: {result.summary()}")
    assert result.counts == {"200": result.total}, result.summary()
    assert listed.status_code == 200 and listed.json()["messages"][0]["body"] == "before the redis outage"
    assert login.status_code == 503 and login.json()["error"]["code"] == "redis_unavailable"
    assert ready.status_code == 503
    # The session written before the kill was kept by Redis's append-only file: it works again.
    assert api.get("/api/auth/me").json() == {"username": name}
    assert api.post("/api/auth/login", {"username": name, "password": TEST_PASSWORD}).status_code == 200
