"""Grafana's "View logs" (Tempo trace-to-logs) and "View trace" (Loki derived field), rendered the way
Grafana fills their variables, answered by the Loki and Tempo models over what reached the far end."""

from __future__ import annotations

import re

from conftest import Api, unique_name
from devstack.grafana_links import provisioned, view_logs_query


def test_view_logs_on_a_span_opens_that_requests_log_lines(stack_backend, tempo, loki):
    api = Api(stack_backend.url)
    name = unique_name("grafana")
    api.post("/api/auth/signup", {"username": name, "password": "a-password-123"})
    trace_id = api.post("/api/auth/login", {"username": name, "password": "wrong-password"}).json()["error"]["trace_id"]
    spans = tempo.wait_for_trace(trace_id, min_spans=2)
    server = next(s for s in spans if s["kind"] == "SPAN_KIND_SERVER")

    query = view_logs_query(server)
    assert query == f'{{service_name="backend"}} | trace_id="{trace_id}"'
    entries = loki.wait_for(query)
    assert [e["line"] for e in entries] == ["login failed"]
    assert entries[0]["labels"]["enduser_id"] == name

    # Loki -> Tempo: the derived field matches the trace_id structured metadata and links to Tempo.
    field = provisioned("loki")["jsonData"]["derivedFields"][0]
    assert field["matcherType"] == "label" and field["datasourceUid"] == "tempo"
    value = entries[0]["labels"][field["matcherRegex"]]
    linked = field["url"].replace("${__value.raw}", value)
    assert re.fullmatch(r"[0-9a-f]{32}", linked)
    assert {s["span_id"] for s in tempo.spans(linked)} == {s["span_id"] for s in spans}
