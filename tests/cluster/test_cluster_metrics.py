"""Prometheus and Alertmanager run in the cluster as k8s/ deploys them, and the backend's RED series
(its request histogram and the gateway's span metrics) and the node's metrics, read by the agent pod
through its hostPath mounts, arrive there under the names the dashboards read."""

from __future__ import annotations

import requests

from devstack.cluster_network import NODE_NAME
from devstack.procs import poll_for, say

QUERIES = (
    'sum by (http_route) (http_server_request_duration_seconds_count{job="backend"}) > 0',
    'sum by (span_name) (traces_spanmetrics_calls_total{service="backend", span_kind="SPAN_KIND_SERVER"}) > 0',
    'sum(traces_spanmetrics_latency_bucket{service="backend"}) > 0',
    'count by (instance, k8s_node_name) (system_cpu_time_seconds_total{job="otel-agent"}) > 0',
)


def test_red_series_of_the_backend_reach_prometheus_in_the_cluster(stack, frontend_url):
    prometheus = stack.service_url("observability", "prometheus")
    alertmanager = stack.service_url("observability", "alertmanager")
    # Traffic of its own, so the series exist however the other tests ran.
    http = requests.Session()
    for _ in range(20):
        assert http.get(f"{frontend_url}/api/messages?limit=5", timeout=10).ok

    query = stack.prometheus_query

    # The backend exports every 15 s and the span metrics connector flushes every 15 s (k8s/ settings).
    for promql in QUERIES:
        result = poll_for(lambda: query(promql), 1, 120, f"{promql} in the cluster's Prometheus", interval=2)
        say(f"{promql}: {[(r['metric'], r['value'][1]) for r in result][:4]}")
    routes = {r["metric"].get("http_route") for r in query(QUERIES[0])}
    assert "/api/messages" in routes, routes
    nodes = {(r["metric"]["instance"], r["metric"]["k8s_node_name"]) for r in query(QUERIES[3])}
    assert nodes == {(NODE_NAME, NODE_NAME)}, nodes

    # Prometheus found its Alertmanager (file_sd in k8s/prometheus) and the Watchdog reaches it.
    active = poll_for(lambda: requests.get(f"{prometheus}/api/v1/alertmanagers", timeout=10)
                      .json()["data"]["activeAlertmanagers"], 1, 60, "an active Alertmanager")
    say(f"Prometheus sends alerts to {[a['url'] for a in active]}")
    alerts = poll_for(lambda: [a for a in requests.get(f"{alertmanager}/api/v2/alerts", timeout=10).json()
                               if a["labels"].get("alertname") == "Watchdog"], 1, 120, "the Watchdog in Alertmanager")
    assert alerts[0]["status"]["state"] == "active"
