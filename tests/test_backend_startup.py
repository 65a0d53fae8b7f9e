"""Start-up behaviour: malformed settings fail naming the setting; missing dependencies do not."""

from __future__ import annotations

import re
import subprocess

import pytest
import requests

from devstack.backend import BACKEND_DIR, GUNICORN_ARGV, Backend, backend_env, gunicorn_argv
from devstack.procs import REPO, free_port


def test_the_harness_starts_gunicorn_with_the_containers_command():
    dockerfile = (REPO / "backend" / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)
    assert eval(cmd) == GUNICORN_ARGV  # noqa: S307 - a JSON-array literal from our own file


@pytest.mark.parametrize("name,value", [
    ("PORT", "eighty"),
    ("MYSQL_PORT", "33o6"),
    ("REDIS_URL", "http//not-a-url"),
    ("REDIS_URL", "redis://localhost:notaport/0"),
    ("SESSION_COOKIE_SECURE", "maybe"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"),
])
def test_a_malformed_setting_fails_at_start_naming_it(name, value):
    env = backend_env({}, {"REDIS_URL": "redis://127.0.0.1:1/0"}, None, **{name: value, "PORT": str(free_port())})
    if name == "PORT":
        env["PORT"] = value
    out = subprocess.run(gunicorn_argv(), cwd=BACKEND_DIR, env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert f"configuration error: {name}" in out.stderr


def test_unreachable_dependencies_do_not_stop_start_up(work_dir):
    dead = {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(free_port()), "MYSQL_USER": "x",
            "MYSQL_PASSWORD": "x", "MYSQL_DATABASE": "x"}
    backend = Backend(work_dir / "logs", backend_env(dead, {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, None),
                      name="backend-no-deps").start()
    try:
        resp = requests.get(backend.url + "/readyz", timeout=10)
        assert resp.status_code == 503
        body = resp.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["mysql"].startswith("error") and body["checks"]["redis"].startswith("error")
        assert requests.get(backend.url + "/healthz", timeout=5).status_code == 200
        err = requests.get(backend.url + "/api/messages", timeout=10)
        assert err.status_code == 503 and err.json()["error"]["code"] == "mysql_unavailable"
        login = requests.post(backend.url + "/api/auth/login", json={"username": "someone", "password": "x" * 8},
                              timeout=10)
        assert login.status_code == 503 and login.json()["error"]["code"] == "redis_unavailable"
    finally:
        backend.stop()
