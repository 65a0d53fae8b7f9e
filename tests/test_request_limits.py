"""An oversized body gets its 413 JSON answer every time, never a reset connection: a server that
answers before reading the body and closes the socket makes the kernel send RST for the unread
bytes, and the client may lose the answer. Each case sends 100 requests as a plain client does."""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter

import pytest

from frontend_fixtures import frontend_dist, site  # noqa: F401  (fixtures)

TRIES = 100
JSON_CT = {"Content-Type": "application/json"}
CHUNK = 16 * 1024
TRACE_ID = "5b8efff798038103d269b633813fc60c"
# The browser's fetch: its trace id comes back in the error, whichever of nginx or the backend answers.
BROWSER = {**JSON_CT, "traceparent": f"00-{TRACE_ID}-eee19b7ec3c1b174-01"}


def _oversized(size: int) -> bytes:
    return b'{"username": "' + b"a" * size + b'", "password": "x"}'


def _trickled(body: bytes):
    # As a network delivers it: the body keeps arriving after the server has answered.
    for start in range(0, len(body), CHUNK):
        yield body[start:start + CHUNK]
        time.sleep(0.0005)


def _outcome(port: int, path: str, body: bytes, headers: dict[str, str]) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("POST", path, body=_trickled(body), headers={**headers, "Content-Length": str(len(body))})
        resp = conn.getresponse()
        data = resp.read()
    except (ConnectionError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()
    if resp.status != 413 or not resp.getheader("Content-Type", "").startswith("application/json"):
        return f"{resp.status} {resp.getheader('Content-Type')}"
    error = json.loads(data)["error"]
    trace_ok = error["trace_id"] == TRACE_ID if "traceparent" in headers else len(error["trace_id"]) == 32
    return "413 json" if error["code"] == "payload_too_large" and trace_ok else repr(error)


def _count(port: int, path: str, body: bytes, headers: dict[str, str] = JSON_CT) -> Counter:
    return Counter(_outcome(port, path, body, headers) for _ in range(TRIES))


@pytest.mark.parametrize("size", [100 * 1024, 1024 * 1024], ids=["100KiB", "1MiB"])
def test_straight_to_gunicorn_every_oversized_body_gets_the_413_json(backend, size):
    outcomes = _count(backend.port, "/api/auth/signup", _oversized(size))
    print(f"gunicorn, {size // 1024} KiB bodies x{TRIES}: {dict(outcomes)}")
    assert outcomes == {"413 json": TRIES}


# 100 KiB passes nginx (client_max_body_size 1m) and is refused by the backend; 2 MiB is refused
# by nginx itself, which must answer in the API's JSON shape too.
@pytest.mark.parametrize("size", [100 * 1024, 2 * 1024 * 1024], ids=["100KiB-backend", "2MiB-nginx"])
def test_through_nginx_every_oversized_body_gets_the_413_json(site, size):  # noqa: F811
    outcomes = _count(site.port, "/api/auth/signup", _oversized(size), BROWSER)
    print(f"nginx, {size // 1024} KiB bodies x{TRIES}: {dict(outcomes)}")
    assert outcomes == {"413 json": TRIES}
