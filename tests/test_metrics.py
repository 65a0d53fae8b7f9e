"""Metrics and alerting: a real Prometheus and Alertmanager run the files that ship, and what the
backend, the gateway's span metrics, the collectors and the node agent send arrives there; alerts
reach Alertmanager, and its notifications reach Slack (a stand-in), resolved ones too."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import yaml

from conftest import Api, unique_name
from devstack import builds, collector
from devstack.alertmanager import CONFIG as ALERTMANAGER_CONFIG
from devstack.alertmanager import TEST_TIMERS, for_tests
from devstack.far_end import FarEnd
from devstack.otlp_payloads import PROTOBUF, browser_fetch_request, log_request, span_request
from devstack.procs import REPO, poll_for, with_private_mounts
from shipped_promql import SCRAPED_IN_A_CLUSTER, metric_names, shipped_promql, shipped_rules

PROMETHEUS_DIR = REPO / "k8s" / "prometheus"


# Where a pod finds its ServiceAccount's token and CA (the kubelet jobs of prometheus.yml read them).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _run(tool: str, *args: str, as_in_a_pod: bool = False) -> subprocess.CompletedProcess:
    """as_in_a_pod: with a ServiceAccount's files in place, made on a tmpfs of the tool's own mount
    namespace, so promtool's check that every file the config names exists can pass here."""
    argv = [builds.tool(tool), *args]
    if as_in_a_pod:
        argv = with_private_mounts(f"mount -t tmpfs tmpfs /run && mkdir -p {SERVICE_ACCOUNT_DIR} && "
                                   f"touch {SERVICE_ACCOUNT_DIR}/token {SERVICE_ACCOUNT_DIR}/ca.crt", argv)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO)
    print(f"{tool} {' '.join(args)}: {(result.stdout + result.stderr).strip().splitlines()[-1:]}")
    return result


def test_prometheus_config_and_rules_pass_promtool():
    checked = _run("promtool", "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"), as_in_a_pod=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = _run("promtool", "check", "rules", *map(str, sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    # Each alert fires on what should fire it, after its `for`, and not on healthy series.
    tested = _run("promtool", "test", "rules", "tests/prometheus/rules_test.yml",
                  "tests/prometheus/kubernetes_rules_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_alertmanager_config_passes_amtool_and_the_tests_change_only_timers_and_webhook(alertmanager):
    shipped = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    run = yaml.safe_load(alertmanager.config.read_text())
    assert run == for_tests(shipped, alertmanager.webhook_url_file)
    assert {k: v for k, v in run["route"].items() if shipped["route"].get(k) != v} == TEST_TIMERS
    assert {k: v for k, v in run.items() if k not in ("route", "receivers")} == \
        {k: v for k, v in shipped.items() if k not in ("route", "receivers")}
    checked = _run("amtool", "check-config", str(alertmanager.config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    slack = shipped["receivers"][0]["slack_configs"][0]
    assert slack["send_resolved"] is True and slack["api_url_file"] and "api_url" not in slack
    assert shipped["route"]["group_by"] == ["alertname", "service"]


def test_backend_metrics_reach_prometheus_with_exemplars_that_lead_to_traces(stack_backend, prometheus, tempo):
    api = Api(stack_backend.url)
    name = unique_name("prom")
    api.signup_and_login(name)
    assert api.post("/api/messages", {"body": "a metric"}).status_code == 201
    for _ in range(3):
        assert api.get("/api/messages").status_code == 200

    count = prometheus.wait_for('http_server_request_duration_seconds_count{job="backend", http_route="/api/messages",'
                                ' http_request_method="GET", http_response_status_code="200"}', timeout=60)
    labels = count[0]["metric"]
    # The request's labels the dashboards read, and none the backend's views leave out.
    assert not {"url_scheme", "network_protocol_version", "server_address"} & set(labels), labels
    exemplars = prometheus.exemplars('http_server_request_duration_seconds_bucket{job="backend", '
                                     'http_route="/api/messages"}')
    trace_ids = [e["labels"]["trace_id"] for series in exemplars for e in series["exemplars"]]
    assert trace_ids, exemplars
    assert tempo.wait_for_trace(trace_ids[-1], timeout=30), trace_ids[-1]
    assert prometheus.wait_for('board_logins_total{job="backend", outcome="succeeded"}', timeout=30)
    assert prometheus.wait_for('board_messages_posted_total{job="backend"}', timeout=30)
    print(f"Prometheus: {labels}; {len(trace_ids)} exemplar(s), trace {trace_ids[-1]} found in Tempo (model)")


def _total(prometheus, promql: str) -> float:
    result = prometheus.query(promql)
    return float(result[0]["value"][1]) if result else 0.0


def test_request_counts_per_route_and_status_are_exactly_what_was_sent(stack_backend, prometheus):
    """Counted by every worker on its own, summed by Prometheus: after N known requests, exactly N more."""
    ok = 'sum(http_server_request_duration_seconds_count{job="backend", http_route="/api/messages", ' \
         'http_request_method="GET", http_response_status_code="200"})'
    refused = 'sum(http_server_request_duration_seconds_count{job="backend", http_route="/api/auth/login", ' \
              'http_request_method="POST", http_response_status_code="401"})'
    api = Api(stack_backend.url)
    api.get("/api/messages")  # every worker's series exists before the baseline is read
    time.sleep(2.5)
    before_ok, before_refused = _total(prometheus, ok), _total(prometheus, refused)
    for _ in range(7):
        assert api.get("/api/messages").status_code == 200
    for _ in range(3):
        assert api.post("/api/auth/login", {"username": unique_name("nobody"), "password": "wrong-password"}).status_code == 401
    deadline = time.monotonic() + 30
    while (_total(prometheus, ok), _total(prometheus, refused)) != (before_ok + 7, before_refused + 3):
        assert time.monotonic() < deadline, (before_ok, _total(prometheus, ok), before_refused, _total(prometheus, refused))
        time.sleep(1)
    print(f"GET /api/messages 200: {before_ok:.0f} -> {before_ok + 7:.0f}; POST /api/auth/login 401: "
          f"{before_refused:.0f} -> {before_refused + 3:.0f}")


# Fetches from two browser sessions, as (method, path, HTTP status, seconds). The span metrics count
# them per span name (the method) and status, and bucket their durations.
FRONTEND_FETCHES = {
    "session-a": [("GET", "/api/messages?limit=20", 200, 0.020)] * 4 + [("POST", "/api/messages", 201, 0.300)]
    + [("POST", "/api/auth/login", 401, 1.500)] * 2,
    "session-b": [("GET", "/api/messages?limit=20", 200, 0.020)] * 3 + [("POST", "/api/messages", 201, 0.300)]
    + [("POST", "/api/auth/login", 401, 1.500)],
}
FRONTEND_CALLS = {("GET", "STATUS_CODE_UNSET"): 7, ("POST", "STATUS_CODE_UNSET"): 2, ("POST", "STATUS_CODE_ERROR"): 3}
# Cumulative buckets (seconds, as Tempo's) that the 20 ms, 300 ms and 1.5 s fetches fall in.
FRONTEND_BUCKETS = {("GET", "0.016"): 0, ("GET", "0.032"): 7, ("POST", "0.256"): 0, ("POST", "0.512"): 2,
                    ("POST", "1.02"): 2, ("POST", "2.05"): 5, ("POST", "+Inf"): 5}
FRONTEND_CLIENT = 'service="frontend", span_kind="SPAN_KIND_CLIENT"'


def _frontend_counts(prometheus, at: float | None = None) -> dict[tuple[str, str], float]:
    """Calls per (span name, status) and bucket counts per (span name, le) of the frontend's fetches."""
    at_ = f" @ {at:.3f}" if at else ""
    calls = prometheus.query(f"sum by (span_name, status_code) (traces_spanmetrics_calls_total{{{FRONTEND_CLIENT}}}{at_})")
    buckets = prometheus.query(f"sum by (span_name, le) (traces_spanmetrics_latency_bucket{{{FRONTEND_CLIENT}}}{at_})")
    return {**{(c["metric"]["span_name"], c["metric"]["status_code"]): float(c["value"][1]) for c in calls},
            **{(b["metric"]["span_name"], b["metric"]["le"]): float(b["value"][1]) for b in buckets}}


def _span_metrics_key_attributes() -> list[str]:
    """The resource attributes the span metrics connector counts per (sampler.yaml)."""
    connector = yaml.safe_load(collector.SAMPLER_CONFIG.read_text())["connectors"]["span_metrics"]
    return connector["resource_metrics_key_attributes"]


def test_span_metrics_keep_one_stream_per_prometheus_series():
    """What makes a series in Prometheus (job from service.namespace/name, instance from
    service.instance.id, the promoted attributes) is what the connector counts per, no more."""
    promoted = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["otlp"]["promote_resource_attributes"]
    assert _span_metrics_key_attributes() == ["service.namespace", "service.name", "service.instance.id", *promoted]


def _prometheus_label(attribute: str) -> str:
    """The label an OTLP resource attribute becomes (Prometheus 3's default underscore escaping)."""
    return {"service.namespace": "job", "service.name": "job", "service.instance.id": "instance"}.get(
        attribute, attribute.replace(".", "_"))


def test_prometheus_tells_apart_exactly_the_resources_the_span_metrics_connector_keeps_apart(gateway, prometheus):
    """Asked of the real Prometheus rather than of the two files: spans from resources that differ
    in one key attribute each land in series of their own there, and a resource that differs only
    in something else (a browser's session.id) adds to its twin's count instead of overwriting it.
    Summed over collector_instance_id: each sampling replica counts the traces routed to it."""
    keys = _span_metrics_key_attributes()
    run = uuid.uuid4().hex[:8]
    base = {key: f"{key.replace('.', '-')}-{run}" for key in keys}
    resources = [{**base, "session.id": "a"}, {**base, "session.id": "b"},
                 *({**base, key: f"{base[key]}-other", "session.id": "a"} for key in keys)]
    for resource in resources:
        body = span_request(resource["service.name"], uuid.uuid4().hex, {}, name=f"identity-{run}",
                            resource_extra={k: v for k, v in resource.items() if k != "service.name"})
        resp = requests.post(f"{gateway.otlp_http}/v1/traces", data=body, timeout=10, headers=PROTOBUF)
        assert resp.status_code == 200, resp.text

    calls = f'sum without (collector_instance_id) (traces_spanmetrics_calls_total{{span_name="identity-{run}"}})'

    def all_counted() -> list[dict]:
        series = prometheus.query(calls)
        return series if sum(float(s["value"][1]) for s in series) >= len(resources) else []

    series = poll_for(all_counted, 1, 60, f"{len(resources)} calls counted in {calls}", interval=1)
    counts = sorted(float(s["value"][1]) for s in series)
    assert counts == [1.0] * len(keys) + [2.0], [s["metric"] for s in series]
    # Every key attribute is one of the series' labels, and each variant differs from the twins in it.
    labels = {_prometheus_label(key) for key in keys}
    (twins,) = [s["metric"] for s in series if s["value"][1] == "2"]
    for key in keys:
        label = _prometheus_label(key)
        assert label in twins, (key, twins)
        assert any(s["metric"][label] != twins[label] for s in series if s["value"][1] == "1"), key
    print(f"{len(series)} series for {len(resources)} resources; labels from the key list: {sorted(labels)}")


def test_frontend_fetch_counts_per_span_name_and_status_are_exactly_what_browsers_sent(gateway, prometheus):
    """The browser's fetch spans, posted to the gateway as its OTLP exporter posts them (nginx's
    /otlp/ forwards there), from two sessions at once: PromQL returns exactly the calls sent per span
    name and status, their error ratio, and their durations in the right buckets."""
    before_at = time.time()
    before = _frontend_counts(prometheus, before_at)
    for session, fetches in FRONTEND_FETCHES.items():
        resp = requests.post(f"{gateway.otlp_http}/v1/traces", data=browser_fetch_request(session, fetches), timeout=10,
                             headers=PROTOBUF)
        assert resp.status_code == 200, resp.text
    expected = {**FRONTEND_CALLS, **FRONTEND_BUCKETS}

    def added() -> dict[tuple[str, str], float]:
        now = _frontend_counts(prometheus)
        return {key: now.get(key, 0) - before.get(key, 0) for key in expected}

    # The connector flushes every 15 s; a count above what was sent fails at once.
    deadline = time.monotonic() + 60
    while (counted := added()) != expected:
        assert time.monotonic() < deadline and all(counted[k] <= expected[k] for k in expected), (counted, expected)
        time.sleep(1)

    def since_before(matchers: str = "") -> str:
        calls = f"traces_spanmetrics_calls_total{{{FRONTEND_CLIENT}{matchers}}}"
        return f"(sum({calls}) - (sum({calls} @ {before_at:.3f}) or vector(0)))"

    errors = since_before(', status_code="STATUS_CODE_ERROR"')
    (ratio,) = prometheus.query(f"{errors} / {since_before()}")
    sent = sum(FRONTEND_CALLS.values())
    assert float(ratio["value"][1]) == FRONTEND_CALLS[("POST", "STATUS_CODE_ERROR")] / sent
    print(f"frontend: {sent} fetches from {len(FRONTEND_FETCHES)} sessions counted exactly: {counted}; "
          f"error ratio {float(ratio['value'][1]):.2f}")


def shipped_alert_expr(name: str) -> str:
    """An alert's expression as k8s/prometheus/rules/ ships it (its `for` is the rule unit tests' job)."""
    (expr,) = [rule["expr"] for _, rule in shipped_rules() if rule.get("alert") == name]
    return expr


def test_an_outage_shows_in_prometheus_as_a_stalled_export_and_a_rising_queue(kube_api, prometheus, tmp_path):
    """Tempo and Loki (the far end) down, and a metrics endpoint that refuses for good (404): the
    collectors' own metrics, pushed to the real Prometheus, make the shipped alert expressions true:
    the sampling tier's Tempo queue and the gateway's Loki queue stall, span metrics are given up."""
    far_end = FarEnd(tmp_path, name="far-end-outage").start()
    gateway = collector.gateway(tmp_path, kube_api, far_end.tempo_otlp_grpc, far_end.loki_otlp_endpoint,
                                prometheus_otlp=f"{prometheus.url}/api/v1/no-such-path", name="gateway-outage",
                                sampler_env={"OWN_METRICS_OTLP_ENDPOINT": f"{prometheus.otlp_endpoint}/v1/metrics"},
                                OWN_METRICS_OTLP_ENDPOINT=f"{prometheus.otlp_endpoint}/v1/metrics").start()
    try:
        far_end.stop()
        for _ in range(20):
            trace_id = uuid.uuid4().hex
            for path, body in (("/v1/traces", span_request("outage-probe", trace_id, {}, count=100)),
                               ("/v1/logs", log_request("outage-probe", trace_id, "during the outage", {}))):
                resp = requests.post(f"{gateway.otlp_http}{path}", data=body, timeout=10, headers=PROTOBUF)
                assert resp.status_code == 200
        # The collectors push their own metrics every 15 s; the sampler queues a trace once decided.
        queued = prometheus.wait_for('sum(otelcol_exporter_queue_size{job="otel-sampler", exporter="otlp_grpc/tempo"}) '
                                     '>= 1000', timeout=60)
        stalled = set()
        deadline = time.monotonic() + 60
        while stalled != {("otel-sampler", "otlp_grpc/tempo"), ("otel-gateway", "otlp_http/loki")}:
            assert time.monotonic() < deadline, stalled
            time.sleep(2)
            stalled = {(s["metric"]["job"], s["metric"]["exporter"])
                       for s in prometheus.query(shipped_alert_expr("GatewayExportStalled"))}
        # A 404 is not retried: the span metrics' points are given up at once, and counted.
        dropping = prometheus.wait_for(shipped_alert_expr("GatewayDroppingData"), timeout=90)
        assert {(s["metric"]["job"], s["metric"]["exporter"]) for s in dropping} == {
            ("otel-sampler", "otlp_http/prometheus")}, dropping
        print(f"outage: Tempo queues at {queued[0]['value'][1]} spans in Prometheus; GatewayExportStalled true for "
              f"{sorted(stalled)}; GatewayDroppingData true for the sampler's otlp_http/prometheus")
    finally:
        gateway.stop()
        far_end.close()


def test_span_metrics_come_out_under_the_names_grafanas_tempo_datasource_reads(stack_backend, prometheus, tempo):
    assert Api(stack_backend.url).get("/api/messages").status_code == 200
    # The connector flushes every 15 s.
    calls = prometheus.wait_for('traces_spanmetrics_calls_total{service="backend", span_kind="SPAN_KIND_SERVER",'
                                ' span_name="GET /api/messages"}', timeout=90)
    print(f"traces_spanmetrics_calls_total: {calls[0]['metric']}")
    buckets = prometheus.query('traces_spanmetrics_latency_bucket{service="backend", span_name="GET /api/messages"}')
    bounds = {b["metric"]["le"] for b in buckets}
    assert {"0.256", "1.02", "+Inf"} <= bounds, bounds  # seconds, Tempo's buckets
    assert not prometheus.series('{__name__=~"traces_spanmetrics_(duration|latency_seconds|latency_milliseconds).*"}')
    # rate() needs two flushes of the connector.
    p95 = prometheus.wait_for('histogram_quantile(0.95, sum by (service, le) '
                              '(rate(traces_spanmetrics_latency_bucket{service="backend"}[5m])))', timeout=60)
    exemplars = prometheus.exemplars('traces_spanmetrics_latency_bucket{service="backend"}')
    trace_ids = [e["labels"]["trace_id"] for series in exemplars for e in series["exemplars"]]
    assert trace_ids and tempo.wait_for_trace(trace_ids[-1], timeout=30)
    print(f"span metrics: buckets {sorted(bounds, key=lambda b: float(b))[:4]}..., p95 {p95[0]['value'][1]} s, "
          f"exemplar trace {trace_ids[-1]} in Tempo (model)")


def test_the_collectors_own_metrics_and_the_node_metrics_reach_prometheus(gateway, kube_api, prometheus, tmp_path):
    root = tmp_path / "pods"
    root.mkdir()
    agent = collector.agent(tmp_path / "agent", kube_api, gateway, str(root), name="agent-metrics").start()
    try:
        for name in ("otelcol_receiver_accepted_spans_total", "otelcol_exporter_sent_spans_total",
                     "otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity"):
            series = prometheus.wait_for(f'{name}{{job="otel-gateway"}}', timeout=60)
            print(f"{name}: {sorted({s['metric'].get('exporter', s['metric'].get('receiver', '')) for s in series})}")
        # The agent's go through the gateway's metrics pipeline, labelled with its node.
        agent_queue = prometheus.wait_for('otelcol_exporter_queue_capacity{job="otel-agent", k8s_node_name="node-1"}',
                                          timeout=60)
        assert agent_queue
        # And the node's own metrics (this machine's /proc stands for the node's).
        node = 'job="otel-agent", instance="node-1", k8s_node_name="node-1"'
        (cpus,) = prometheus.wait_for(f'max(system_cpu_logical_count{{{node}}})', timeout=60)
        assert float(cpus["value"][1]) == os.cpu_count()
        busy = prometheus.wait_for(f'sum by (state) (system_cpu_time_seconds_total{{{node}}})', timeout=60)
        assert {"user", "system", "idle"} <= {s["metric"]["state"] for s in busy}
        (used,) = prometheus.wait_for(f'sum(system_memory_usage_bytes{{{node}, state="used"}})', timeout=60)
        total = int(re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text()).group(1)) * 1024
        assert 0 < float(used["value"][1]) < total
        for name in ("system_cpu_load_average_1m", "system_disk_io_bytes_total"):
            assert prometheus.wait_for(f"{name}{{{node}}}", timeout=60), name
        print(f"node-1: {cpus['value'][1]} CPUs, {float(used['value'][1]) / 2**30:.1f} of {total / 2**30:.1f} GiB used")
    finally:
        agent.stop()


def test_prometheus_alerts_reach_alertmanager_and_notifications_reach_slack(prometheus, alertmanager, slack):
    # Watchdog always fires: evaluated every 15 s, sent to Alertmanager, routed to the heartbeat receiver.
    (watchdog,) = poll_for(lambda: [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "Watchdog"], 1, 90,
                           "Watchdog alerts at Alertmanager", interval=1)
    assert [r["name"] for r in watchdog["receivers"]] == ["heartbeat"]

    # An alert as Prometheus sends it goes to Slack, firing and then resolved.
    service = f"svc-{uuid.uuid4().hex[:6]}"
    alert = {"labels": {"alertname": "ServiceErrorRatioHigh", "service": service, "severity": "page"},
             "annotations": {"summary": f"{service}: 12% of requests fail", "runbook": "Open the RED dashboard."},
             "startsAt": datetime.now(timezone.utc).isoformat()}
    alertmanager.post_alerts([alert])
    firing = slack.wait_for_title(f"[FIRING] ServiceErrorRatioHigh ({service})")
    attachment = firing["attachments"][0]
    assert f"{service}: 12% of requests fail" in attachment["text"] and "Runbook: Open the RED dashboard." in attachment["text"]
    assert firing["channel"] == "#alerts"

    alertmanager.post_alerts([{**alert, "endsAt": (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()}])
    resolved = slack.wait_for_title(f"[RESOLVED] ServiceErrorRatioHigh ({service})")
    print(f"Slack: {attachment['title']!r}, then {resolved['attachments'][0]['title']!r}; Watchdog -> heartbeat")

    # An alert about one pod carries its logs' Explore path; the message makes it a link into Grafana.
    pod = f"crasher-{uuid.uuid4().hex[:6]}"
    logs = f"/explore?schemaVersion=1&orgId=1&panes=%7B%22pod%22%3A%22{pod}%22%7D"
    alertmanager.post_alerts([{"labels": {"alertname": "KubeContainerRestarting", "pod": pod, "severity": "page"},
                               "annotations": {"summary": f"apps/{pod} restarted", "runbook": "Open its logs.",
                                               "logs": logs},
                               "startsAt": datetime.now(timezone.utc).isoformat()}])
    text = poll_for(lambda: [m["attachments"][0]["text"] for m in slack.titled("[FIRING] KubeContainerRestarting")
                             if pod in m["attachments"][0]["text"]], 1, 60, "the pod alert at Slack")[0]
    assert f"Logs: http://localhost:3000{logs}" in text, text


@pytest.mark.parametrize("path", sorted((REPO / "grafana" / "dashboards").glob("*.json")), ids=lambda p: p.name)
def test_dashboards_promql_is_accepted_by_prometheus(path, prometheus):
    import json

    dashboard = json.loads(path.read_text())
    queries = [t["expr"] for p in dashboard.get("panels", []) for t in p.get("targets", [])
               if t.get("datasource", {}).get("uid") == "prometheus"]
    for expr in queries:
        # Grafana's variables, as Grafana fills them, then Prometheus's own parser decides.
        filled = (expr.replace("$__rate_interval", "1m").replace("$__range", "5m").replace("$__interval", "15s")
                  .replace("$service", "backend").replace("${service}", "backend").replace("$node", "node-1")
                  .replace("$namespace", "apps").replace("$pod", "backend-1"))
        prometheus.query(filled)
    print(f"{path.name}: {len(queries)} PromQL queries accepted")


def test_tempo_trace_to_metrics_queries_are_accepted_by_prometheus(prometheus):
    provisioned = yaml.safe_load((REPO / "grafana/provisioning/datasources/datasources.yaml").read_text())
    (tempo,) = [d for d in provisioned["datasources"] if d["uid"] == "tempo"]
    queries = tempo["jsonData"]["tracesToMetrics"]["queries"]
    for query in queries:
        # `$$` is provisioning's escape of `$`; Grafana fills $__tags from the span's tags.
        prometheus.query(query["query"].replace("$$", "$").replace("$__tags", 'service="backend"'))
    print(f"tracesToMetrics: {[q['name'] for q in queries]} accepted")


def test_every_metric_the_shipped_promql_names_was_produced(stack_backend, prometheus):
    """Runs after the tests above sent traffic: a name no series has is a typo or a metric renamed.
    What Prometheus scrapes from a cluster is checked there (tests/cluster/test_workload_health.py)."""
    shipped = shipped_promql()
    names = {name: where for name, where in metric_names(shipped).items() if not name.startswith(SCRAPED_IN_A_CLUSTER)}
    # Counted only when a batch is given up: at once for a permanent error (the outage test makes
    # one for metric points), after 30 minutes of retries for an unreachable Tempo or Loki.
    only_after_30_minutes = {"otelcol_exporter_send_failed_spans_total", "otelcol_exporter_send_failed_log_records_total"}
    missing = {name: sorted(where) for name, where in names.items() if name not in only_after_30_minutes
               and not prometheus.wait_for_series(name, timeout=60 if name.startswith("service:") else 5)}
    print(f"{len(names)} metric names in {len(shipped)} shipped expressions; missing: {sorted(missing)}")
    assert not missing, missing
