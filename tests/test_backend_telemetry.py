"""What the backend exports: span trees, log records with trace context, stdout JSON, and no secrets."""

from __future__ import annotations

import secrets
import time

import requests

from conftest import TEST_PASSWORD, Api, unique_name
from devstack.backend import Backend, backend_env
from devstack.procs import free_port

SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind


def trace_id_of(resp) -> str:
    # The backend echoes its trace id only in error bodies; for success we find the SERVER span by route.
    return resp.headers.get("traceresponse", "")


def server_span(sink, method: str, route: str, after: float):
    def find(s):
        for span in s.spans():
            if (span.kind == SERVER and span.attributes.get("http.route") == route
                    and span.attributes.get("http.request.method", span.attributes.get("http.method")) == method
                    and span.trace_id not in after):
                return span
        return None
    return find


def test_a_session_gives_one_trace_per_request_with_mysql_and_redis_children(backend, sink):
    seen = {s.trace_id for s in sink.spans()}
    api = Api(backend.url)
    name = unique_name("tele")
    api.signup_and_login(name)
    assert api.post("/api/messages", {"body": "traced message"}).status_code == 201
    assert api.get("/api/messages").status_code == 200

    for method, route in (("POST", "/api/auth/signup"), ("POST", "/api/auth/login"),
                          ("POST", "/api/messages"), ("GET", "/api/messages")):
        root = sink.wait_for(server_span(sink, method, route, seen), what=f"{method} {route} span")
        seen.add(root.trace_id)
        tree = sink.wait_for(
            lambda s: [sp for sp in s.spans() if sp.trace_id == root.trace_id and sp.kind == CLIENT] or None,
            what="client spans")
        assert root.parent_span_id == ""
        assert root.resource["service.name"] == "backend"
        assert root.resource["service.version"]
        assert root.resource["service.instance.id"]
        # Every CLIENT span is a direct child of the one SERVER span of this trace.
        assert all(sp.parent_span_id == root.span_id for sp in tree)
        systems = {sp.attributes.get("db.system.name", sp.attributes.get("db.system")) for sp in tree}
        if route != "/api/messages" or method == "POST":
            assert "mysql" in systems, (route, systems)
        assert "redis" in systems or route == "/api/auth/signup", (route, systems)
        servers = [sp for sp in sink.spans() if sp.trace_id == root.trace_id and sp.kind == SERVER]
        assert len(servers) == 1


def test_cache_hit_touches_no_sql(logged_in, sink):
    logged_in.get("/api/messages")  # fill
    before = {s.trace_id for s in sink.spans()}
    assert logged_in.get("/api/messages?limit=3").status_code == 200
    root = sink.wait_for(server_span(sink, "GET", "/api/messages", before), what="cache-hit span")
    time.sleep(0.6)  # let the batch processor deliver the children
    children = [s for s in sink.spans() if s.trace_id == root.trace_id and s.kind == CLIENT]
    systems = [s.attributes.get("db.system.name", s.attributes.get("db.system")) for s in children]
    assert systems and set(systems) == {"redis"}, systems


def test_log_records_carry_the_request_trace_and_match_stdout_json(backend, sink):
    api = Api(backend.url)
    name = unique_name("logs")
    api.signup_and_login(name)
    record = sink.wait_for(
        lambda s: next((r for r in s.logs() if r.body == "login succeeded" and r.attributes.get("enduser.id") == name),
                       None), what="login log record")
    assert record.resource["service.name"] == "backend"
    assert len(record.trace_id) == 32 and record.trace_id != "0" * 32
    assert record.severity_text == "INFO" and record.severity_number == 9
    # Spans and log records are exported by separate batch processors: the span may come later.
    span = sink.wait_for(lambda s: next((sp for sp in s.spans() if sp.span_id == record.span_id), None),
                         what="the log record's span")
    assert span.trace_id == record.trace_id and span.kind == SERVER

    def stdout_line():
        return next((line for line in backend.json_lines()
                     if line.get("message") == "login succeeded" and line.get("enduser.id") == name), None)
    deadline = time.monotonic() + 5
    while stdout_line() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    line = stdout_line()
    assert line is not None
    assert line["trace_id"] == record.trace_id and line["span_id"] == record.span_id
    assert line["level"] == "info" and line["service.name"] == "backend"


def test_errors_are_recorded_on_the_span(backend, sink):
    api = Api(backend.url)
    resp = api.get("/api/auth/me")
    trace_id = resp.json()["error"]["trace_id"]
    root = sink.wait_for(lambda s: next((sp for sp in s.spans() if sp.trace_id == trace_id), None),
                         what="401 span")
    assert root.attributes.get("http.response.status_code", root.attributes.get("http.status_code")) == 401


def test_server_spans_follow_the_http_conventions_and_continue_the_callers_trace(backend, sink):
    parent_trace, parent_span = secrets.token_hex(16), secrets.token_hex(8)
    resp = requests.get(f"{backend.url}/api/messages?limit=3&token=query-secret", timeout=10, headers={
        "traceparent": f"00-{parent_trace}-{parent_span}-01", "User-Agent": "conventions-test/1.0"})
    assert resp.status_code == 200
    span = sink.wait_for(lambda s: next((sp for sp in s.spans() if sp.trace_id == parent_trace and sp.kind == SERVER),
                                        None), what="SERVER span of the caller's trace")
    assert span.parent_span_id == parent_span and span.name == "GET /api/messages"
    assert {k: span.attributes.get(k) for k in ("http.request.method", "http.route", "http.response.status_code",
                                                "url.path", "url.scheme", "user_agent.original")} == {
        "http.request.method": "GET", "http.route": "/api/messages", "http.response.status_code": 200,
        "url.path": "/api/messages", "url.scheme": "http", "user_agent.original": "conventions-test/1.0"}
    assert span.attributes["client.address"] == "127.0.0.1" and span.attributes["server.port"] == backend.port
    # The instrumentation records the query string; the gateway removes it (test_pipeline_e2e.py).
    assert span.attributes["url.query"] == "limit=3&token=query-secret"


def test_unmatched_paths_and_probes_mint_no_span_names(backend, sink):
    missing = f"/api/{unique_name('nope')}"
    trace_id = requests.get(backend.url + missing, timeout=10).json()["error"]["trace_id"]
    assert requests.get(backend.url + "/healthz", timeout=10).status_code == 200
    span = sink.wait_for(lambda s: next((sp for sp in s.spans() if sp.trace_id == trace_id), None), what="404 span")
    # Named by method alone: a scan of random paths cannot grow span names (or span metrics' series).
    assert span.name == "GET" and "http.route" not in span.attributes, span
    assert span.attributes["http.response.status_code"] == 404 and span.attributes["url.path"] == missing
    assert span.status_code == 0, "a client's 404 is not the server's error"
    assert not [sp for sp in sink.spans() if sp.attributes.get("url.path") in ("/healthz", "/readyz")]


def test_a_5xx_marks_the_span_and_the_duration_point_as_errors(work_dir, mysql, redis_srv, sink):
    # MariaDB's port closed: signup answers 503 at once, the deterministic server-side failure.
    env = backend_env(dict(mysql.env(), MYSQL_PORT=str(free_port())), redis_srv.env(), sink.endpoint,
                      SCHEMA_AUTO_CREATE="false")
    broken = Backend(work_dir / "logs-5xx", env, name="backend-5xx").start()
    try:
        resp = requests.post(f"{broken.url}/api/auth/signup", json={"username": unique_name(), "password": "x" * 12},
                             timeout=30)
        assert resp.status_code == 503, resp.text
        trace_id = resp.json()["error"]["trace_id"]
        span = sink.wait_for(lambda s: next((sp for sp in s.spans() if sp.trace_id == trace_id and sp.kind == SERVER),
                                            None), what="503 span")
        assert span.name == "POST /api/auth/signup" and span.status_code == 2  # STATUS_CODE_ERROR
        assert span.attributes["error.type"] == "503" and span.attributes["http.response.status_code"] == 503
        point = sink.wait_for(lambda s: next((p for p in s.metric_points("http.server.request.duration")
                                              if p["attributes"].get("http.response.status_code") == 503), None),
                              what="503 duration point")
        assert point["attributes"]["error.type"] == "503" and point["attributes"]["http.route"] == "/api/auth/signup"
    finally:
        broken.stop()


def test_sampling_is_parent_based_and_an_unsampled_request_still_logs_with_its_trace_id(work_dir, mysql, redis_srv,
                                                                                         sink):
    # Nothing sampled at the root (ratio 0): what a sampled deployment does to 100 % of some requests.
    env = backend_env(mysql.env(), redis_srv.env(), sink.endpoint, OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                      OTEL_TRACES_SAMPLER_ARG="0")
    sampled = Backend(work_dir / "logs-unsampled", env, name="backend-unsampled").start()
    try:
        api, name = Api(sampled.url), unique_name("unsampled")
        api.post("/api/auth/signup", {"username": name, "password": TEST_PASSWORD})
        refused = api.post("/api/auth/login", {"username": name, "password": "wrong-" + TEST_PASSWORD})
        assert refused.status_code == 401
        error_trace_id = refused.json()["error"]["trace_id"]
        record = sink.wait_for(lambda s: next((r for r in s.logs() if r.body == "login failed"
                                               and r.attributes.get("enduser.id") == name), None), what="login log")
        # The log keeps the request's ids (its lines stay together in Loki, the error body's trace id
        # finds them) and says in its flags that the trace was not kept.
        assert record.trace_id == error_trace_id and record.span_id != "0" * 16 and record.flags & 1 == 0
        # A caller's sampled decision carries through: the browser decides for the whole trace.
        parent_trace = secrets.token_hex(16)
        requests.get(f"{sampled.url}/api/messages", headers={"traceparent": f"00-{parent_trace}-{'ab' * 8}-01"},
                     timeout=10).raise_for_status()
        sink.wait_for(lambda s: any(sp.trace_id == parent_trace for sp in s.spans()), what="the caller's sampled trace")
        assert not [sp for sp in sink.spans() if sp.trace_id == error_trace_id], "an unsampled request was exported"
    finally:
        sampled.stop()


def test_no_secret_reaches_any_span_or_log(backend, sink):
    api = Api(backend.url)
    password = "Secret-Pa55word-" + unique_name()
    name = unique_name("sec")
    api.post("/api/auth/signup", {"username": name, "password": password})
    api.post("/api/auth/login", {"username": name, "password": "wrong-" + password})
    login = api.post("/api/auth/login", {"username": name, "password": password})
    session_id = login.cookies["session"]
    api.post("/api/messages", {"body": "hello"})
    api.get("/api/auth/me", headers={"Authorization": "Bearer tok-" + session_id})
    api.post("/api/auth/logout")
    sink.wait_for(lambda s: any(r.body == "login succeeded" and r.attributes.get("enduser.id") == name
                                for r in s.logs()), what="login log")
    time.sleep(1.0)
    everything = b"".join(sink.received.raw_bodies)
    assert everything, "nothing was exported"
    for secret in (password, session_id, TEST_PASSWORD):
        assert secret.encode() not in everything, f"secret leaked: {secret[:6]}..."
    for line in backend.process.output().splitlines():
        assert password not in line and session_id not in line


def test_requests_succeed_while_the_collector_is_down(backend, sink):
    api = Api(backend.url)
    api.signup_and_login(unique_name("down"))
    sink.stop()
    try:
        started = time.monotonic()
        statuses = [api.post("/api/messages", {"body": f"while down {i}"}).status_code for i in range(20)]
        statuses += [api.get("/api/messages").status_code for _ in range(20)]
        elapsed = time.monotonic() - started
    finally:
        sink.start()
    assert statuses == [201] * 20 + [200] * 20
    assert elapsed < 10, f"40 requests took {elapsed:.1f}s with the collector down"


CUMULATIVE = 2  # opentelemetry.proto.metrics.v1.AggregationTemporality


def _counter_total(sink, name: str, **attrs: str) -> float:
    """A cumulative counter's total over the workers: each gunicorn worker counts on its own."""
    latest: dict[str, float] = {}
    for p in sink.metric_points(name):
        if all(p["attributes"].get(k) == v for k, v in attrs.items()):
            latest[p["resource"].get("service.instance.id", "")] = p["value"]
    return sum(latest.values())


def test_metrics_http_duration_by_route_with_exemplars_and_board_counters(backend, sink):
    api = Api(backend.url)
    before = {outcome: _counter_total(sink, "board.logins", outcome=outcome) for outcome in ("succeeded", "failed")}
    posted_before = _counter_total(sink, "board.messages.posted")
    name = unique_name("metrics")
    api.signup_and_login(name)
    assert api.post("/api/auth/login", {"username": name, "password": "wrong-password"}).status_code == 401
    assert api.post("/api/messages", {"body": "counted message"}).status_code == 201
    assert api.get("/api/messages").status_code == 200

    def listed(s):
        return [p for p in s.metric_points("http.server.request.duration")
                if p["attributes"].get("http.route") == "/api/messages" and p["exemplar_trace_ids"]]
    points = sink.wait_for(listed, timeout=20, what="http.server.request.duration for /api/messages")
    point = points[-1]
    assert point["kind"] == "histogram" and point["unit"] == "s" and point["temporality"] == CUMULATIVE, point
    assert point["resource"]["service.name"] == "backend"
    assert {"http.request.method", "http.response.status_code"} <= set(point["attributes"]), point["attributes"]
    # An exemplar leads to a request's trace: its SERVER span is in the sink.
    traced = {s.trace_id for s in sink.spans() if s.kind == SERVER}
    assert set(point["exemplar_trace_ids"]) & traced, point["exemplar_trace_ids"]

    sink.wait_for(lambda s: _counter_total(s, "board.messages.posted") >= posted_before + 1, timeout=20,
                  what="board.messages.posted")
    for outcome in ("succeeded", "failed"):
        sink.wait_for(lambda s, o=outcome: _counter_total(s, "board.logins", outcome=o) >= before[o] + 1, timeout=20,
                      what=f"board.logins{{outcome={outcome}}}")
    print(f"metrics: {len(sink.metric_points('http.server.request.duration'))} duration points, "
          f"exemplar traces {point['exemplar_trace_ids'][:2]}, logins {before} -> now counted")
