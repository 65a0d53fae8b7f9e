"""Metrics and alerting, at the far end: a real Prometheus and Alertmanager run the files that ship.

The backend's own metrics, the gateway's span metrics (under the names Grafana's Tempo datasource
reads) and the collectors' own metrics arrive in Prometheus over OTLP; exemplars lead to traces
Tempo holds; the rules pass promtool and their unit tests; Prometheus's alerts reach Alertmanager,
and Alertmanager's notifications reach Slack (a stand-in webhook), resolved ones too.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from conftest import Api, unique_name
from harness import builds, collector
from harness.alertmanager import CONFIG as ALERTMANAGER_CONFIG
from harness.alertmanager import TEST_TIMERS, for_tests
from harness.procs import REPO

PROMETHEUS_DIR = REPO / "k8s" / "prometheus"


def _run(tool: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([builds.tool(tool), *args], capture_output=True, text=True, timeout=120, cwd=REPO)
    print(f"{tool} {' '.join(args)}: {(result.stdout + result.stderr).strip().splitlines()[-1:]}")
    return result


def test_prometheus_config_and_rules_pass_promtool():
    checked = _run("promtool", "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = _run("promtool", "check", "rules", *map(str, sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    # Each alert fires on what should fire it, after its `for`, and not on healthy series.
    tested = _run("promtool", "test", "rules", "tests/prometheus/rules_test.yml")
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
                                ' http_request_method="GET"}', timeout=60)
    labels = count[0]["metric"]
    assert labels["http_response_status_code"] == "200", labels
    exemplars = prometheus.exemplars('http_server_request_duration_seconds_bucket{job="backend", '
                                     'http_route="/api/messages"}')
    trace_ids = [e["labels"]["trace_id"] for series in exemplars for e in series["exemplars"]]
    assert trace_ids, exemplars
    assert tempo.wait_for_trace(trace_ids[-1], timeout=30), trace_ids[-1]
    assert prometheus.wait_for('board_logins_total{job="backend", outcome="succeeded"}', timeout=30)
    assert prometheus.wait_for('board_messages_posted_total{job="backend"}', timeout=30)
    print(f"Prometheus: {labels}; {len(trace_ids)} exemplar(s), trace {trace_ids[-1]} found in Tempo (model)")


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


def test_the_collectors_own_metrics_reach_prometheus(gateway, kube_api, prometheus, tmp_path):
    root = tmp_path / "pods"
    root.mkdir()
    agent = collector.agent(tmp_path / "agent", kube_api, gateway, str(root / "*/*/*.log"), name="agent-metrics").start()
    try:
        for name in ("otelcol_receiver_accepted_spans_total", "otelcol_exporter_sent_spans_total",
                     "otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity"):
            series = prometheus.wait_for(f'{name}{{job="otel-gateway"}}', timeout=60)
            print(f"{name}: {sorted({s['metric'].get('exporter', s['metric'].get('receiver', '')) for s in series})}")
        # The agent's go through the gateway's metrics pipeline, labelled with its node.
        agent_queue = prometheus.wait_for('otelcol_exporter_queue_capacity{job="otel-agent", k8s_node_name="node-1"}',
                                          timeout=60)
        assert agent_queue
    finally:
        agent.stop()


def test_prometheus_alerts_reach_alertmanager_and_notifications_reach_slack(prometheus, alertmanager, slack):
    # Watchdog always fires: evaluated every 15 s, sent to Alertmanager, routed to the heartbeat receiver.
    deadline = time.monotonic() + 90
    while not any(a["labels"]["alertname"] == "Watchdog" for a in alertmanager.alerts()):
        assert time.monotonic() < deadline, "Watchdog never reached Alertmanager"
        time.sleep(1)
    (watchdog,) = [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "Watchdog"]
    assert [r["name"] for r in watchdog["receivers"]] == ["heartbeat"]

    # An alert as Prometheus sends it goes to Slack, firing and then resolved.
    service = f"svc-{uuid.uuid4().hex[:6]}"
    alert = {"labels": {"alertname": "ServiceErrorRatioHigh", "service": service, "severity": "page"},
             "annotations": {"summary": f"{service}: 12% of requests fail", "runbook": "Open the RED dashboard."},
             "startsAt": datetime.now(timezone.utc).isoformat()}
    alertmanager.post_alerts([alert])
    firing = slack.wait_for(lambda m: service in m["attachments"][0]["title"] and "FIRING" in m["attachments"][0]["title"])
    attachment = firing["attachments"][0]
    assert attachment["title"] == f"[FIRING] ServiceErrorRatioHigh ({service})"
    assert f"{service}: 12% of requests fail" in attachment["text"] and "Runbook: Open the RED dashboard." in attachment["text"]
    assert firing["channel"] == "#alerts"

    alertmanager.post_alerts([{**alert, "endsAt": (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()}])
    resolved = slack.wait_for(lambda m: service in m["attachments"][0]["title"] and "RESOLVED" in m["attachments"][0]["title"])
    print(f"Slack: {attachment['title']!r}, then {resolved['attachments'][0]['title']!r}; Watchdog -> heartbeat")


@pytest.mark.parametrize("path", sorted((REPO / "grafana" / "dashboards").glob("*.json")), ids=lambda p: p.name)
def test_dashboards_promql_is_accepted_by_prometheus(path, prometheus):
    import json

    dashboard = json.loads(path.read_text())
    queries = [t["expr"] for p in dashboard.get("panels", []) for t in p.get("targets", [])
               if t.get("datasource", {}).get("uid") == "prometheus"]
    for expr in queries:
        # Grafana's variables, as Grafana fills them, then Prometheus's own parser decides.
        filled = (expr.replace("$__rate_interval", "1m").replace("$__range", "5m").replace("$__interval", "15s")
                  .replace("$service", "backend").replace("${service}", "backend"))
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
