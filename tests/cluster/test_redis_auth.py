"""Redis in the cluster demands the password from its Secret: a client without it gets NOAUTH, with it
PONG; the backend, given it by the same Secret, serves logins (Redis holds the sessions), and the
password is in nothing the stack delivered."""

from __future__ import annotations

import base64

import pytest
import redis
import requests

import secret_scan
from faults.board_traffic import BoardTraffic


def test_redis_refuses_a_client_without_the_password(stack, frontend_url):
    api = stack.cluster.api
    (secret,) = [s for s in api.list("secrets", "apps") if s["metadata"]["name"].startswith("redis-credentials")]
    password = base64.b64decode(secret["data"]["REDIS_PASSWORD"]).decode()
    service = api.get("services", "redis", "apps")
    host, port = service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"]

    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=host, port=port, socket_timeout=5).get("session:x")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=host, port=port, password="wrong", socket_timeout=5).ping()
    assert redis.Redis(host=host, port=port, password=password, socket_timeout=5).ping()

    traffic = BoardTraffic.signed_up(frontend_url)  # a signup and its session live in Redis
    http = requests.Session()
    login = http.post(f"{frontend_url}/api/auth/login", timeout=10,
                      json={"username": traffic.username, "password": "correct-horse-battery-staple"})
    assert login.status_code == 200, login.text
    assert http.post(f"{frontend_url}/api/messages", json={"body": "behind an authenticated Redis"},
                     timeout=10).status_code == 201
    # Nothing the stack delivered so far holds the password (spans, logs, metrics).
    assert not secret_scan.leaked(stack.far_end, {password})
    print(f"Redis at {host}:{port}: NOAUTH without the password, refused with a wrong one, PONG with the "
          "Secret's; the backend logs in and posts through it")
