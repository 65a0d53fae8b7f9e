"""The API contract, each status code, against gunicorn with real MariaDB and Redis."""

from __future__ import annotations

import re

import pytest

from conftest import TEST_PASSWORD, Api, unique_name

TRACE_ID = re.compile(r"[0-9a-f]{32}")


def assert_error(resp, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    error = resp.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert TRACE_ID.fullmatch(error["trace_id"]) and error["trace_id"] != "0" * 32
    assert "Traceback" not in resp.text


def test_healthz(api):
    resp = api.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


def test_readyz_reports_each_dependency(api):
    resp = api.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ready", "checks": {"mysql": "ok", "redis": "ok"}}


def test_signup_returns_201_then_409_for_a_taken_name(api):
    name = unique_name()
    resp = api.post("/api/auth/signup", {"username": name, "password": TEST_PASSWORD})
    assert resp.status_code == 201 and resp.json() == {"username": name}
    assert_error(api.post("/api/auth/signup", {"username": name, "password": TEST_PASSWORD}), 409, "username_taken")


@pytest.mark.parametrize("body", [
    {"username": "ab", "password": TEST_PASSWORD},
    {"username": "x" * 33, "password": TEST_PASSWORD},
    {"username": "has space", "password": TEST_PASSWORD},
    {"username": "ümlaut", "password": TEST_PASSWORD},
    {"username": "okname", "password": "short"},
    {"username": "okname", "password": "p" * 129},
    {"username": 42, "password": TEST_PASSWORD},
    {"username": "okname", "password": None},
    {"username": "okname"},
])
def test_signup_rejects_invalid_credentials_with_400(api, body):
    assert_error(api.post("/api/auth/signup", body), 400, "validation_error")


def test_signup_accepts_the_boundaries(api):
    for name, password in ((unique_name("a")[:3], "p" * 8), ("b" + unique_name()[:31].ljust(31, "x"), "p" * 128)):
        assert api.post("/api/auth/signup", {"username": name, "password": password}).status_code == 201


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"a string"', b"", b"\xff\xfe"])
def test_malformed_json_is_a_400(api, raw):
    resp = api.post("/api/auth/signup", data=raw, headers={"Content-Type": "application/json"})
    assert_error(resp, 400, "invalid_json")


def test_body_over_64_kib_is_a_413(api):
    body = b'{"username": "' + b"a" * (65 * 1024) + b'"}'
    assert_error(api.post("/api/auth/signup", data=body, headers={"Content-Type": "application/json"}),
                 413, "payload_too_large")


def test_writes_without_json_content_type_are_refused(api):
    resp = api.post("/api/auth/login", data="username=a&password=b",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(resp, 415, "unsupported_media_type")


def test_unknown_route_and_wrong_method_are_json(api):
    assert_error(api.get("/nope"), 404, "not_found")
    assert_error(api.get("/api/auth/login"), 405, "method_not_allowed")


def test_login_sets_a_session_cookie_and_me_knows_the_user(api):
    name = unique_name()
    resp = api.signup_and_login(name)
    assert resp.json() == {"username": name}
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # SESSION_COOKIE_SECURE defaults to off for local http
    assert api.get("/api/auth/me").json() == {"username": name}


def test_each_login_gets_a_new_session_id(api):
    name = unique_name()
    first = api.signup_and_login(name).cookies["session"]
    second = api.post("/api/auth/login", {"username": name, "password": TEST_PASSWORD}).cookies["session"]
    assert first != second and len(first) >= 40


def test_wrong_password_and_unknown_user_are_401(api):
    name = unique_name()
    api.post("/api/auth/signup", {"username": name, "password": TEST_PASSWORD})
    assert_error(api.post("/api/auth/login", {"username": name, "password": "wrong-password"}), 401,
                 "invalid_credentials")
    assert_error(api.post("/api/auth/login", {"username": unique_name(), "password": TEST_PASSWORD}), 401,
                 "invalid_credentials")


def test_five_failures_in_a_minute_give_429_even_with_the_right_password(api):
    name = unique_name()
    api.post("/api/auth/signup", {"username": name, "password": TEST_PASSWORD})
    for _ in range(5):
        assert api.post("/api/auth/login", {"username": name, "password": "wrong-password"}).status_code == 401
    assert_error(api.post("/api/auth/login", {"username": name, "password": TEST_PASSWORD}), 429,
                 "too_many_attempts")


def test_me_without_session_is_401(api):
    assert_error(api.get("/api/auth/me"), 401, "unauthorized")
    api.http.cookies.set("session", "forged-session-id")
    assert_error(api.get("/api/auth/me"), 401, "unauthorized")


def test_logout_removes_the_session_server_side(logged_in, backend):
    session_id = logged_in.http.cookies["session"]
    resp = logged_in.post("/api/auth/logout")
    assert resp.status_code == 204 and resp.content == b""
    replay = Api(backend.url)
    replay.http.cookies.set("session", session_id)
    assert_error(replay.get("/api/auth/me"), 401, "unauthorized")


def test_post_and_list_messages_newest_first(logged_in):
    me = logged_in.get("/api/auth/me").json()["username"]
    first = logged_in.post("/api/messages", {"body": "  first  "})
    assert first.status_code == 201, first.text
    second = logged_in.post("/api/messages", {"body": "second"}).json()
    assert first.json()["body"] == "first" and first.json()["author"] == me
    assert set(second) == {"id", "author", "body", "created_at"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", second["created_at"])
    listed = logged_in.get("/api/messages?limit=2").json()["messages"]
    assert [m["id"] for m in listed] == [second["id"], first.json()["id"]]
    assert listed[0] == second  # the POST answers with the row as stored, not as sent


def test_message_list_limits(logged_in):
    for i in range(3):
        logged_in.post("/api/messages", {"body": f"m{i}"})
    assert len(logged_in.get("/api/messages?limit=1").json()["messages"]) == 1
    assert len(logged_in.get("/api/messages?limit=100").json()["messages"]) >= 3
    assert len(logged_in.get("/api/messages").json()["messages"]) <= 50
    for bad in ("0", "101", "-1", "abc", "1.5", ""):
        assert_error(logged_in.get(f"/api/messages?limit={bad}"), 400, "invalid_limit")


@pytest.mark.parametrize("body", [{"body": ""}, {"body": "   "}, {"body": "x" * 1001}, {"body": " " + "x" * 1000}, {"body": 5}, {}])
def test_post_message_validation(logged_in, body):
    assert_error(logged_in.post("/api/messages", body), 400, "validation_error")


def test_post_message_accepts_1000_chars_and_stores_them_trimmed(logged_in):
    response = logged_in.post("/api/messages", {"body": "  " + "y" * 996 + "  "})
    assert response.status_code == 201 and response.json()["body"] == "y" * 996


def test_post_message_requires_login(api):
    assert_error(api.post("/api/messages", {"body": "hello"}), 401, "unauthorized")


def test_a_session_that_outlived_its_account_cannot_post(logged_in, mysql):
    me = logged_in.get("/api/auth/me").json()["username"]
    mysql.sql(f"DELETE FROM {mysql.database}.users WHERE username = '{me}'")
    assert_error(logged_in.post("/api/messages", {"body": "orphan"}), 401, "unauthorized")
    assert mysql.sql(f"SELECT COUNT(*) FROM {mysql.database}.messages WHERE body = 'orphan'").strip() == "0"


def test_injection_strings_round_trip_as_text(logged_in):
    payloads = ["'; DROP TABLE messages; --", "<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
                "Robert'); DELETE FROM users WHERE ('1'='1", "emoji 🎉 and \\ backslash \" quote"]
    for payload in payloads:
        assert logged_in.post("/api/messages", {"body": payload}).json()["body"] == payload
    listed = [m["body"] for m in logged_in.get("/api/messages?limit=5").json()["messages"]]
    assert listed == list(reversed(payloads))


def test_new_message_invalidates_the_cache(logged_in, mysql):
    logged_in.get("/api/messages")  # fill the cache
    created = logged_in.post("/api/messages", {"body": "fresh"}).json()
    assert logged_in.get("/api/messages?limit=1").json()["messages"][0]["id"] == created["id"]


def test_a_list_cached_under_an_older_generation_is_never_served(logged_in, redis_srv):
    """The race the generation guards against: a reader loaded the list before a write and stores
    it after the write's invalidation. Its list is tagged with the old generation; readers pass it by."""
    import json

    logged_in.get("/api/messages")  # fill the cache under the current generation
    conn = redis_srv.client()
    stale_generation = conn.get("messages:generation") or "0"
    created = logged_in.post("/api/messages", {"body": "after the slow reader"}).json()
    stale = [{"id": 0, "author": "slow-reader", "body": "stale", "created_at": "2026-01-01T00:00:00.000Z"}]
    conn.set("messages:latest", json.dumps({"generation": stale_generation, "messages": stale}), ex=60)
    assert logged_in.get("/api/messages?limit=1").json()["messages"][0]["id"] == created["id"]
    # ...and the fresh list replaced it, tagged with the current generation.
    cached = json.loads(conn.get("messages:latest"))
    assert cached["generation"] == conn.get("messages:generation") and cached["messages"][0]["id"] == created["id"]


def test_redis_refuses_a_client_without_the_password_and_the_backend_sends_it(api, redis_srv):
    """Redis holds the sessions: a client that does not authenticate gets NOAUTH; the backend,
    given REDIS_PASSWORD, reads and writes."""
    import redis

    with pytest.raises(redis.AuthenticationError, match="(?i)auth"):
        redis.Redis(port=redis_srv.port, socket_timeout=2).get("messages:generation")
    assert api.get("/readyz").json()["checks"]["redis"] == "ok"
