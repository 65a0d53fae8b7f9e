"""The frontend end to end: headless chromium -> nginx (shipped template) -> the real backend, and
the browser's telemetry -> nginx /otlp/ -> the gateway collector -> the far end, found through the
Loki and Tempo models."""

from __future__ import annotations

import http.client
import json
import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from board_ui import (attr, db_system, descendants, describe, flush_telemetry, hide_page, is_kind, open_app, poll,
                      post_message, search_ids, service, sign_up, trace_id_of)
from conftest import TEST_PASSWORD, unique_name
from frontend_fixtures import browser_context, frontend_dist, pw, site  # noqa: F401 - fixtures
from devstack.procs import REPO, http_ok, say

MIB = 1024 * 1024


# a. click -> fetch -> backend -> MySQL/Redis in one trace -----------------------------------------


@pytest.mark.browser
def test_posting_a_message_is_one_trace_from_click_to_database(browser_context, site, tempo):  # noqa: F811
    started = time.time()
    page = open_app(browser_context, site)
    username = unique_name("e2e")
    sign_up(page, username)
    # Sign-up logs in already; log out and back in through the form to use both paths.
    page.get_by_test_id("logout-button").click()
    page.get_by_test_id("username-input").fill(username)
    page.get_by_test_id("password-input").fill(TEST_PASSWORD)
    page.get_by_test_id("login-button").click()
    expect(page.get_by_test_id("whoami")).to_have_text(username)

    body = f"hello from the browser {uuid.uuid4().hex[:8]}"
    request = post_message(page, body)
    expect(page.get_by_test_id("message-body").first).to_have_text(body)
    trace_id = trace_id_of(request)
    say(f"posted a message in trace {trace_id}; waiting for it in Tempo")
    flush_telemetry(page)

    def complete_trace() -> dict[str, dict]:
        spans = tempo.spans(trace_id)
        shown = f"trace {trace_id}:\n{describe(spans)}"
        submits = [s for s in spans if service(s) == "frontend" and s["name"] in ("submit", "click")
                   and "user-interaction" in s["scope"]]
        assert submits, f"no frontend click/submit span; {shown}"
        fetches = [s for s in spans if service(s) == "frontend" and "fetch" in s["scope"]
                   and str(attr(s, "http.url", "url.full") or "").endswith("/api/messages")
                   and attr(s, "http.method", "http.request.method") == "POST"]
        assert len(fetches) == 1, f"expected one POST /api/messages fetch span; {shown}"
        fetch = fetches[0]
        assert fetch["span_id"] == request.all_headers()["traceparent"].split("-")[2], "traceparent != fetch span"
        parent = next((s for s in submits if s["span_id"] == fetch["parent_span_id"]), None)
        assert parent is not None, f"fetch span's parent is not the click/submit span; {shown}"
        servers = [s for s in spans if service(s) == "backend" and is_kind(s, "SERVER")
                   and s["parent_span_id"] == fetch["span_id"]]
        assert len(servers) == 1, f"expected one backend SERVER span under the fetch span; {shown}"
        server = servers[0]
        below = descendants(spans, server)
        mysql = [s for s in below if is_kind(s, "CLIENT") and db_system(s) in ("mysql", "mariadb")]
        redis = [s for s in below if is_kind(s, "CLIENT") and db_system(s) == "redis"]
        assert mysql, f"no PyMySQL CLIENT span beneath the backend span; {shown}"
        assert redis, f"no Redis CLIENT span beneath the backend span; {shown}"
        return {"click": parent, "fetch": fetch, "server": server, "mysql": mysql[0], "redis": redis[0],
                "count": len(spans)}

    found = poll(complete_trace, 45, "complete click->fetch->backend trace in Tempo",
                 nudge=lambda: flush_telemetry(page))
    print(f"trace {trace_id}: {found['count']} spans; {found['click']['name']} > {found['fetch']['name']} > "
          f"{found['server']['name']} > mysql {found['mysql']['name']!r}, redis {found['redis']['name']!r}")
    # nginx's access log line of that request names the same trace (its traceparent map).
    logged = [line for line in site.access_log() if line["method"] == "POST" and line["uri"] == "/api/messages"
              and line["trace_id"] == trace_id]
    assert len(logged) == 1 and logged[0]["status"] == 201, logged

    # The trace is findable the way a person would look for it: TraceQL on the frontend service.
    traceql = '{resource.service.name="frontend" && name="submit"}'
    since = int(time.time() - started) + 5
    poll(lambda: _assert_in(trace_id.lstrip("0"), search_ids(tempo, traceql, since), traceql), 30,
         "the trace in Tempo's TraceQL search")


def _assert_in(item, collection, what) -> None:
    assert item in collection, f"{item} not among {len(collection)} results of {what}"


# b. page load -----------------------------------------------------------------------------------


@pytest.mark.browser
def test_page_load_gives_a_document_load_trace(browser_context, site, tempo):  # noqa: F811
    started = time.time()
    # A path of its own (nginx serves index.html for any path) tells this page load from others.
    path = f"/e2e-load-{uuid.uuid4().hex[:12]}"
    page = open_app(browser_context, site, path)
    flush_telemetry(page)
    traceql = f'{{resource.service.name="frontend" && name="documentLoad" && span.url.full="{site.url}{path}"}}'

    def document_load_trace() -> list[dict]:
        ids = search_ids(tempo, traceql, int(time.time() - started) + 5)
        assert len(ids) == 1, f"{len(ids)} documentLoad traces for {traceql}"
        spans = tempo.spans(ids.pop().rjust(32, "0"))
        names = {s["name"] for s in spans}
        assert {"documentLoad", "documentFetch", "resourceFetch"} <= names, sorted(names)
        return spans

    spans = poll(document_load_trace, 45, "documentLoad trace in Tempo", nudge=lambda: flush_telemetry(page))
    root = next(s for s in spans if s["name"] == "documentLoad")
    assert root["parent_span_id"] == "", "documentLoad is the root span"
    assert {service(s) for s in spans} == {"frontend"}
    for span in spans:
        if span["name"] in ("documentFetch", "resourceFetch"):
            assert span["parent_span_id"] == root["span_id"], describe(spans)
    resources = [str(attr(s, "http.url", "url.full")) for s in spans if s["name"] == "resourceFetch"]
    assert any("/assets/" in url for url in resources), resources
    print(f"documentLoad trace: {len(spans)} spans ({len(resources)} resourceFetch)")


# b2. Core Web Vitals of a page view --------------------------------------------------------------

VITALS = {"LCP", "INP", "CLS", "TTFB"}
RATINGS = {"good", "needs-improvement", "poor"}


def _dashboard_query(title: str) -> str:
    dashboard = json.loads((REPO / "grafana" / "dashboards" / "services.json").read_text())
    panel = next(p for p in dashboard["panels"] if p["title"] == title)
    return panel["targets"][0]["expr"]


@pytest.mark.browser
def test_a_page_view_reports_its_web_vitals_in_its_page_load_trace(browser_context, site, loki, tempo):  # noqa: F811
    started = time.time()
    path = f"/e2e-vitals-{uuid.uuid4().hex[:12]}"
    page = open_app(browser_context, site, path)
    page_url = f"{site.url}{path}"
    session_id = page.evaluate("sessionStorage.getItem('otel.session.id')")
    # A real click (INP needs an interaction; input makes LCP final), and the page hidden at once,
    # as by a click that opens a new tab: around the time Chromium times the click, where
    # web-vitals' own hidden-page INP report misses it (src/web-vitals.ts, inpWhenHidden).
    page.get_by_test_id("refresh-button").click()
    hide_page(page)
    say(f"page {path} hidden; waiting for its web vitals in Loki")

    logql = f'{{service_name="frontend"}} | url_full="{page_url}" | browser_web_vital_name!=""'

    def vitals() -> list[dict]:
        entries = loki.query(logql, since_s=900)
        names = sorted(e["labels"]["browser_web_vital_name"] for e in entries)
        assert set(names) == VITALS, f"vitals so far: {names}"
        return entries

    entries = poll(vitals, 45, "LCP, INP, CLS and TTFB records in Loki", nudge=lambda: flush_telemetry(page))
    names = sorted(e["labels"]["browser_web_vital_name"] for e in entries)
    assert names == sorted(VITALS), f"one record per vital and page view: {names}"

    traceql = f'{{resource.service.name="frontend" && name="documentLoad" && span.url.full="{page_url}"}}'
    ids = poll(lambda: _one(search_ids(tempo, traceql, int(time.time() - started) + 5), traceql), 30,
               "the page's documentLoad trace", nudge=lambda: flush_telemetry(page))
    load_span = next(s for s in tempo.spans(ids.pop().rjust(32, "0")) if s["name"] == "documentLoad")
    shown = []
    for entry in entries:
        labels = entry["labels"]
        assert labels["browser_web_vital_rating"] in RATINGS, labels
        assert float(labels["browser_web_vital_value"]) >= 0, labels
        assert labels["trace_id"] == load_span["trace_id"] and labels["span_id"] == load_span["span_id"], labels
        assert labels["session_id"] == session_id, labels
        shown.append(entry["line"])
    print(f"web vitals of {path}: {shown}; trace {load_span['trace_id']}, session {session_id}")

    # The dashboard's panel, as Grafana would send it for the service and a range covering the test.
    panel = _dashboard_query("Web vitals by page and rating")
    counts = loki.metric_query(panel.replace("$service", "frontend").replace("$__range", "15m"))
    mine = {key[1:]: n for key, n in counts.items() if key[0] == page_url}
    assert {name for name, _ in mine} == VITALS and set(mine.values()) == {1}, mine


def _one(ids: set[str], what: str) -> set[str]:
    assert len(ids) == 1, f"{len(ids)} results for {what}"
    return ids


# c. the deliberate error -> a log record in Loki, joined to its trace --------------------------


@pytest.mark.browser
def test_ui_error_reaches_loki_with_its_trace_id(browser_context, site, loki, tempo):  # noqa: F811
    page = open_app(browser_context, site)
    page_errors: list[str] = []
    page.on("pageerror", lambda err: page_errors.append(str(err)))
    # The button fetches first (a traced request in the click's trace), then throws.
    with page.expect_request(lambda r: "/api/messages?limit=1" in r.url) as listed:
        page.get_by_test_id("trigger-error").click()
    trace_id = trace_id_of(listed.value)
    flush_telemetry(page)
    say(f"UI error in trace {trace_id}; waiting for its log record in Loki")

    logql = f'{{service_name="frontend"}} | trace_id="{trace_id}"'
    entries = poll(lambda: _loki_entries(loki, logql), 45, "frontend error record in Loki",
                   nudge=lambda: flush_telemetry(page))
    errors = [e for e in entries if "test error triggered from the UI" in e["line"]]
    assert len(errors) == 1, entries
    labels = errors[0]["labels"]
    assert labels.get("trace_id") == trace_id and re.fullmatch(r"[0-9a-f]{16}", labels.get("span_id", "")), labels
    print(f"Loki: {logql} -> {len(entries)} record(s); metadata keys {sorted(labels)}")

    # Without the trace filter, the record is among the service's logs, trace id attached.
    all_frontend = _loki_entries(loki, '{service_name="frontend"}')
    assert any(e["labels"].get("trace_id") == trace_id for e in all_frontend)
    assert any("test error triggered from the UI" in e for e in page_errors), page_errors

    # The record's trace is the click's: Tempo holds that click span.
    spans = poll(lambda: _with_span(tempo, trace_id, "click"), 30, "the error's click span in Tempo",
                 nudge=lambda: flush_telemetry(page))
    assert {service(s) for s in spans} >= {"frontend"}


def _loki_entries(loki, logql: str) -> list[dict]:
    entries = loki.query(logql, since_s=900)
    assert entries, f"no entries for {logql}"
    return entries


def _with_span(tempo, trace_id: str, name: str) -> list[dict]:
    spans = tempo.spans(trace_id)
    assert any(s["name"] == name and service(s) == "frontend" for s in spans), describe(spans)
    return spans


# d. message bodies are text -----------------------------------------------------------------------

XSS_PAYLOADS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=2">',
]


@pytest.mark.browser
def test_message_html_is_shown_as_text_and_runs_nothing(browser_context, site):  # noqa: F811
    page = open_app(browser_context, site)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    username = unique_name("xss")
    sign_up(page, username)
    for payload in XSS_PAYLOADS:
        post_message(page, payload)

    mine = page.get_by_test_id("message-item").filter(has=page.get_by_test_id("message-author").get_by_text(
        username, exact=True))
    expect(mine).to_have_count(len(XSS_PAYLOADS))
    shown = [item.get_by_test_id("message-body").text_content() for item in mine.all()]
    assert sorted(shown) == sorted(XSS_PAYLOADS)
    page.wait_for_timeout(1000)  # room for an onerror handler to fire, had an <img> been created
    assert page.evaluate("window.__xss") is None
    assert page.locator("[data-testid=message-list] img, [data-testid=message-list] script").count() == 0
    assert dialogs == []
    print(f"XSS payloads shown as text: {shown}")


# e. nginx's limits on the telemetry proxy ----------------------------------------------------------
# Each check comes from its own loopback address: nginx rate-limits per client address, and the
# browser tests send their telemetry from 127.0.0.1.


class Client:
    def __init__(self, site, source: str):
        self.port = site.port
        self.source = source
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15,
                                                       source_address=(self.source, 0))
            try:
                headers = {"Content-Type": content_type} if method == "POST" else {}
                self.conn.request(method, path, body=body if method == "POST" else None, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, dict(resp.getheaders()), data
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _export_request(trace_id: bytes, span_id: bytes) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    now = time.time_ns()
    span = Span(trace_id=trace_id, span_id=span_id, name="nginx-limits-probe", kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=now - 1_000_000, end_time_unix_nano=now)
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="nginx-limits-probe"))])
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource,
                                                                      scope_spans=[ScopeSpans(spans=[span])])])
    return request.SerializeToString()


def test_nginx_limits_the_telemetry_proxy(site, gateway, tempo):  # noqa: F811
    client = Client(site, "127.0.0.3")
    counts: dict[str, int] = {}

    # Bodies over client_max_body_size (1 MiB): refused by nginx before the collector sees them.
    for path in ("/otlp/v1/traces", "/otlp/v1/logs"):
        status, _, _ = client.request("POST", path, b"\0" * (MIB + 1), "application/x-protobuf")
        assert status == 413, (path, status)
        counts["413"] = counts.get("413", 0) + 1
    client.close()

    # Only the two signals the browser sends are proxied.
    for method, path in (("POST", "/otlp/v1/metrics"), ("POST", "/otlp/foo"), ("GET", "/otlp/foo"),
                         ("POST", "/otlp/v1/traces/extra"), ("POST", "/otlp/")):
        status, _, _ = client.request(method, path, b"{}")
        assert status == 404, (method, path, status)
        counts["404"] = counts.get("404", 0) + 1
    status, headers, _ = client.request("GET", "/otlp/v1/traces")
    assert status == 405 and headers.get("Allow") == "POST", (status, headers)

    # A malformed protobuf body passes nginx and is refused by the collector ...
    status, _, body = client.request("POST", "/otlp/v1/traces", b"\xff\xff\xff\xffnot protobuf",
                                     "application/x-protobuf")
    assert status == 400, (status, body[:200])
    counts["400"] = 1
    # ... which keeps serving: a valid export right after it is accepted and reaches Tempo.
    trace_id, span_id = uuid.uuid4().bytes, uuid.uuid4().bytes[:8]
    status, _, body = client.request("POST", "/otlp/v1/traces", _export_request(trace_id, span_id),
                                     "application/x-protobuf")
    assert status == 200, (status, body[:200])
    assert gateway.process.alive() and http_ok(f"http://127.0.0.1:{gateway.health_port}/")
    tempo.wait_for_trace(trace_id.hex(), timeout=30)
    client.close()

    # A flood from one address: the first requests fit the burst (40), the rest get 429.
    flood = Client(site, "127.0.0.2")
    statuses: dict[int, int] = {}
    started = time.monotonic()
    for _ in range(150):
        status, _, _ = flood.request("POST", "/otlp/v1/traces", b'{"resourceSpans":[]}')
        statuses[status] = statuses.get(status, 0) + 1
    elapsed = time.monotonic() - started
    flood.close()
    print(f"flood: 150 POSTs in {elapsed:.2f}s -> {dict(sorted(statuses.items()))}")
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.get(429, 0) > 0, statuses
    assert statuses.get(200, 0) >= 40, statuses  # the burst went through
    print(f"limits: {counts['413']}x 413 (over 1 MiB), {counts['404']}x 404 (other /otlp/ paths), "
          f"1x 405, {counts['400']}x 400 (malformed protobuf, from the collector), then 200 and the span in Tempo")

    # The browser's own address was not throttled by any of this.
    status, _, _ = Client(site, "127.0.0.1").request("POST", "/otlp/v1/traces", b'{"resourceSpans":[]}')
    assert status == 200
