"""Fixtures: real MariaDB, Redis and gunicorn, an OTLP sink, and API clients."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

import secret_scan
from devstack import mariadb, redis_server
from devstack.backend import Backend, backend_env
from devstack.otlp_sink import OtlpSink

TEST_PASSWORD = "correct-horse-battery-staple"
# Every secret value the suite used (passwords, session ids it was handed, tokens it planted): when
# the tests are done, the far_end fixture looks for each in everything stored (secret_scan.py).
SECRETS: set[str] = {TEST_PASSWORD}


@pytest.fixture(scope="session")
def work_dir():
    path = Path(tempfile.mkdtemp(prefix="stack-tests-"))
    yield path
    if not os.environ.get("KEEP_TEST_DIRS"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def mysql(work_dir):
    db = mariadb.start(work_dir / "mariadb")
    yield db
    db.process.stop()


@pytest.fixture(scope="session")
def redis_srv(work_dir):
    srv = redis_server.start(work_dir / "redis")
    SECRETS.add(srv.password)
    yield srv
    srv.process.stop()


@pytest.fixture(scope="session")
def sink():
    s = OtlpSink().start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def backend(work_dir, mysql, redis_srv, sink):
    env = backend_env(mysql.env(), redis_srv.env(), sink.endpoint)
    b = Backend(work_dir / "logs", env).start()
    yield b
    b.stop()


class Api:
    """A requests session against one base URL, sending JSON the way the frontend does."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        return self._seen(self.http.get(self.base_url + path, timeout=15, **kw))

    def post(self, path: str, json=None, **kw) -> requests.Response:
        if json is not None:
            kw["json"] = json
        else:
            kw.setdefault("headers", {}).setdefault("Content-Type", "application/json")
        return self._seen(self.http.post(self.base_url + path, timeout=15, **kw))

    @staticmethod
    def _seen(resp: requests.Response) -> requests.Response:
        if "session" in resp.cookies:
            SECRETS.add(resp.cookies["session"])
        return resp

    def signup_and_login(self, username: str, password: str = TEST_PASSWORD) -> requests.Response:
        assert self.post("/api/auth/signup", {"username": username, "password": password}).status_code == 201
        resp = self.post("/api/auth/login", {"username": username, "password": password})
        assert resp.status_code == 200, resp.text
        return resp


def unique_name(prefix: str = "u") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def api(backend) -> Api:
    return Api(backend.url)


@pytest.fixture
def logged_in(api) -> Api:
    api.signup_and_login(unique_name())
    return api


# The observability pipeline: the gateway collector, and behind it the far end with its Loki and
# Tempo models where the cluster runs Tempo and Loki (devstack/far_end.py says why) -----------


@pytest.fixture(scope="session")
def kube_api(work_dir):
    """A real etcd and kube-apiserver holding k8s/ as `kubectl apply -k` leaves it; the collectors
    authenticate as their own ServiceAccounts (devstack/kube_apiserver.py)."""
    from devstack.kube_apiserver import start_with_manifests

    api = start_with_manifests(work_dir / "kube")
    yield api
    api.stop()


@pytest.fixture(scope="session")
def far_end(work_dir):
    from devstack.far_end import FarEnd

    end = FarEnd(work_dir / "far-end").start()
    yield end
    # Checks over all the session delivered, once the tests are done: a record Loki would have
    # refused fails the run even if no test queried its stream, and so does any secret stored.
    leaked = secret_scan.leaked(end, SECRETS)
    end.close()
    refused = end.loki.rejections()
    assert not refused, f"{len(refused)} records Loki would refuse reached the far end: {refused[:3]}"
    assert not leaked, f"secret values reached the far end: {leaked}"


@pytest.fixture(scope="session")
def tempo(far_end):
    """What Tempo would answer, from what reached the far end (devstack/tempo_model.py)."""
    return far_end.tempo


@pytest.fixture(scope="session")
def loki(far_end):
    """What Loki would store and answer, from what reached the far end (devstack/loki_model.py)."""
    return far_end.loki


@pytest.fixture(scope="session")
def slack():
    """Where Alertmanager's Slack notifications land (a stand-in: devstack/slack_webhook.py)."""
    from devstack.slack_webhook import SlackWebhook

    hook = SlackWebhook().start()
    yield hook
    hook.stop()


@pytest.fixture(scope="session")
def alertmanager(work_dir, slack):
    from devstack.alertmanager import Alertmanager

    am = Alertmanager(work_dir / "alertmanager", slack.url).start()
    yield am
    am.stop()


@pytest.fixture(scope="session")
def prometheus(work_dir, alertmanager):
    """A real Prometheus with k8s/prometheus/ as it ships, alerting to the real Alertmanager."""
    from devstack.prometheus import Prometheus

    prom = Prometheus(work_dir / "prometheus", alertmanager.address).start()
    yield prom
    prom.stop()


@pytest.fixture(scope="session")
def gateway(work_dir, kube_api, far_end, prometheus):
    from devstack import collector

    gw = collector.gateway(work_dir / "gateway", kube_api, far_end.tempo_otlp_grpc, far_end.loki_otlp_endpoint,
                           prometheus_otlp=prometheus.otlp_endpoint, CORS_ALLOWED_ORIGINS='["http://127.0.0.1"]').start()
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def stack_backend(work_dir, mysql, redis_srv, gateway):
    """The backend exporting to the gateway, as in the cluster (OTLP/HTTP to 4318)."""
    env = backend_env(mysql.env(), redis_srv.env(), gateway.otlp_http)
    b = Backend(work_dir / "logs", env, name="backend-stack").start()
    yield b
    b.stop()
