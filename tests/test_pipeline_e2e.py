"""backend (gunicorn) -> gateway collector -> the far end, asserted where a user looks: what the Tempo
and Loki models answer for the queries a user (and Grafana) would run."""

from __future__ import annotations

import os
import re
import time

import requests

import conftest
from conftest import Api, unique_name

CLIENT = "SPAN_KIND_CLIENT"
SERVER = "SPAN_KIND_SERVER"
# A token in a URL's query string, which the Flask instrumentation records and the gateway removes.
QUERY_SECRET = "query-secret-10"
# Secrets the tests below plant, which the session's secret scan (conftest) looks for too.
PLANTED = {QUERY_SECRET, *(f"query-secret-{n}" for n in range(11, 15)),
           *(f"{kind}-secret-{n}" for n, kind in enumerate(("cookie", "auth", "cookie", "password", "password", "token",
                                                              "auth", "session"), start=1))}
conftest.SECRETS.update(PLANTED)


def find_trace(tempo, traceql: str, predicate, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for hit in tempo.search_traceql(traceql):
            if predicate(hit):
                return hit["traceID"]
        time.sleep(0.5)
    raise AssertionError(f"no trace for {traceql} within {timeout}s")


def error_trace_id(resp) -> str:
    return resp.json()["error"]["trace_id"]


def test_backend_traces_reach_tempo_and_logs_reach_loki_with_the_same_trace(stack_backend, tempo, loki):
    api = Api(stack_backend.url)
    name = unique_name("e2e")
    api.signup_and_login(name)
    assert api.post("/api/messages", {"body": "through the whole pipeline"}).status_code == 201
    assert api.get("/api/messages").status_code == 200
    # An error body hands over its trace id: the way a user reports a request.
    bad = api.post("/api/messages", {"body": ""})
    trace_id = error_trace_id(bad)

    # The login's trace id, from its log line (the user is unique to this test).
    login = loki.wait_for(f'{{service_name="backend"}} | enduser_id="{name}" |= "login succeeded"')
    login_trace = login[0]["labels"]["trace_id"]

    # TraceQL by service name and route finds that trace; it holds our SERVER span, PyMySQL's and Redis's.
    find_trace(tempo, '{resource.service.name="backend" && span.http.route="/api/auth/login"}',
               lambda hit: hit["traceID"].rjust(32, "0") == login_trace)
    spans = tempo.wait_for_trace(login_trace, min_spans=3)
    servers = [s for s in spans if s["kind"] == SERVER]
    assert len(servers) == 1 and servers[0]["resource"]["service.name"] == "backend"
    scopes = {s["scope"] for s in spans}
    assert servers[0]["scope"] == "opentelemetry.instrumentation.flask", servers[0]
    assert any("pymysql" in scope or "dbapi" in scope for scope in scopes), scopes
    assert any("redis" in scope for scope in scopes), scopes
    assert all(s["parent_span_id"] == servers[0]["span_id"] for s in spans if s["kind"] == CLIENT)

    # The tag search (what Grafana's search form sends) finds backend traces too, including the error's.
    tagged = {hit["traceID"].rjust(32, "0") for hit in tempo.search_tags("service.name=backend")}
    assert login_trace in tagged, "tag search did not find the login trace"
    tempo.wait_for_trace(trace_id)

    # Loki: that request's log lines, by service_name label and trace_id structured metadata.
    entries = loki.wait_for(f'{{service_name="backend"}} | trace_id="{login_trace}"')
    lines = [e["line"] for e in entries]
    assert "login succeeded" in lines, lines
    assert all(e["labels"].get("trace_id") == login_trace for e in entries)
    assert "backend" in loki.label_values("service_name")


def test_a_query_string_never_reaches_tempo(stack_backend, tempo):
    trace_id = os.urandom(16).hex()
    resp = requests.get(f"{stack_backend.url}/api/messages?limit=3&token={QUERY_SECRET}", timeout=10,
                        headers={"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"})
    assert resp.status_code == 200, resp.text
    (server,) = [s for s in tempo.wait_for_trace(trace_id) if s["kind"] == SERVER]
    assert server["attributes"]["url.path"] == "/api/messages" and server["name"] == "GET /api/messages"
    assert "url.query" not in server["attributes"] and QUERY_SECRET not in repr(server), server


def test_gateway_removes_secrets_whatever_the_sender_did(gateway, tempo, loki):
    """A sender that puts cookies, Authorization and passwords on spans and logs: none of it arrives."""
    from devstack.otlp_payloads import log_request, span_request

    trace_id = unique_name("t").encode().hex()[:32].ljust(32, "0")
    secrets = {
        "http.request.header.cookie": "session=cookie-secret-1",
        "http.request.header.authorization": "Bearer auth-secret-2",
        "http.response.header.set-cookie": "session=cookie-secret-3",
        "user.password": "password-secret-4",
        "db.password": "password-secret-5",
        "api_token": "token-secret-6",
        "Authorization": "Basic auth-secret-7",
        "session_id": "session-secret-8",
    }
    keep = {"http.route": "/kept", "enduser.id": "kept-user", "session.id": "browser-tab-session"}
    # The query string of a URL, in each attribute an HTTP instrumentation puts it in.
    urls = {"url.query": "q=query-secret-11", "url.full": "https://x.example/kept?q=query-secret-12#f",
            "http.target": "/kept?q=query-secret-13", "http.url": "https://x.example/kept?q=query-secret-14"}
    headers = {"Content-Type": "application/x-protobuf"}
    service = unique_name("redact")
    resp = requests.post(gateway.otlp_http + "/v1/traces", headers=headers, timeout=10,
                         data=span_request(service, trace_id, {**secrets, **keep, **urls}, resource_extra=secrets))
    assert resp.status_code == 200, resp.text
    resp = requests.post(gateway.otlp_http + "/v1/logs", headers=headers, timeout=10,
                         data=log_request(service, trace_id, "a log with secrets", {**secrets, **keep},
                                          resource_extra=secrets))
    assert resp.status_code == 200, resp.text

    spans = tempo.wait_for_trace(trace_id)
    entries = loki.wait_for(f'{{service_name="{service}"}}')
    span = spans[0]
    assert span["attributes"]["http.route"] == "/kept"
    assert span["attributes"]["session.id"] == "browser-tab-session"  # semconv browser session: kept
    assert "url.query" not in span["attributes"]
    assert [span["attributes"][k] for k in ("url.full", "http.target", "http.url")] == [
        "https://x.example/kept", "/kept", "https://x.example/kept"]
    assert entries[0]["labels"].get("enduser_id") == "kept-user"
    shown = repr(spans) + repr(entries)
    assert all(value in PLANTED for value in re.findall(r"[a-z]+-secret-\d+", repr([secrets, urls])))
    for value in [*secrets.values(), *PLANTED]:
        assert value not in shown, f"{value} reached Tempo or Loki"
