"""The split-cluster setup: the public gateway demands a bearer token, and the apps side sends it."""

from __future__ import annotations

import os
import secrets

import pytest
import requests

from conftest import Api
from devstack import collector
from devstack.backend import Backend, backend_env
from devstack.otlp_payloads import span_request
from devstack.procs import REPO

GATEWAY_AUTH = REPO / "k8s" / "overlays" / "split-observability" / "gateway-auth.yaml"


@pytest.fixture(scope="module")
def token(work_dir):
    value = secrets.token_urlsafe(24)
    path = work_dir / "otlp-token"
    path.write_text(value)
    return value, path


@pytest.fixture(scope="module")
def auth_gateway(work_dir, kube_api, far_end, prometheus, token):
    gw = collector.gateway(work_dir / "gateway-auth", kube_api, far_end.tempo_otlp_grpc, far_end.loki_otlp_endpoint,
                           prometheus_otlp=prometheus.otlp_endpoint, name="gateway-auth", extra_configs=(GATEWAY_AUTH,),
                           OTLP_TOKEN_FILE=str(token[1])).start()
    yield gw
    gw.stop()


def test_requests_without_the_token_are_refused(auth_gateway):
    body = span_request("intruder", os.urandom(16).hex(), {})
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        resp = requests.post(auth_gateway.otlp_http + "/v1/traces", data=body, timeout=10,
                             headers={"Content-Type": "application/x-protobuf", **headers})
        assert resp.status_code == 401, (headers, resp.status_code)


def test_requests_with_the_token_are_accepted_and_delivered(auth_gateway, token, tempo):
    trace_id = os.urandom(16).hex()
    resp = requests.post(auth_gateway.otlp_http + "/v1/traces", data=span_request("apps-cluster", trace_id, {}),
                         timeout=10, headers={"Content-Type": "application/x-protobuf",
                                              "Authorization": f"Bearer {token[0]}"})
    assert resp.status_code == 200, resp.text
    tempo.wait_for_trace(trace_id)


def test_backend_configured_like_split_apps_sends_the_token(auth_gateway, token, mysql, redis_srv, tempo, work_dir):
    # split-apps gives the backend OTEL_EXPORTER_OTLP_HEADERS from the token Secret.
    env = backend_env(mysql.env(), redis_srv.env(), auth_gateway.otlp_http,
                      OTEL_EXPORTER_OTLP_HEADERS=f"Authorization=Bearer%20{token[0]}")
    backend = Backend(work_dir / "logs", env, name="backend-split").start()
    try:
        api = Api(backend.url)
        trace_id = api.get("/api/auth/me").json()["error"]["trace_id"]
        spans = tempo.wait_for_trace(trace_id)
        assert spans[0]["resource"]["service.name"] == "backend"
        assert token[0] not in repr(spans)
    finally:
        backend.stop()
