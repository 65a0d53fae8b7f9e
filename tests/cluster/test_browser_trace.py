"""A person uses the board in Chromium through the frontend's Service on the cluster. At the far end,
one trace runs from the click through a backend pod into MariaDB and Redis; the backend's spans and
logs carry that pod's Kubernetes identity; "View logs" on its span finds exactly that request's lines."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from board_ui import (db_system, descendants, describe, flush_telemetry, is_kind, open_app, poll, post_message,
                      service, sign_up, trace_id_of)
from conftest import unique_name
from devstack.grafana_links import view_logs_query
from devstack.procs import say


@pytest.mark.browser
def test_a_post_in_the_browser_is_one_trace_through_a_backend_pod(stack, site, browser_context, tempo, loki):
    backend_pods = {p["metadata"]["name"]: p for p in stack.pods("apps", "app.kubernetes.io/name=backend")}
    page = open_app(browser_context, site)
    username = unique_name("k8s")
    sign_up(page, username)
    body = f"posted on the cluster {uuid.uuid4().hex[:8]}"
    request = post_message(page, body)
    expect(page.get_by_test_id("message-body").first).to_have_text(body)
    trace_id = trace_id_of(request)
    say(f"posted through {site.url} in trace {trace_id}")
    flush_telemetry(page)

    def complete() -> dict:
        spans = tempo.spans(trace_id)
        shown = f"trace {trace_id}:\n{describe(spans)}"
        fetch = next((s for s in spans if service(s) == "frontend" and "fetch" in s["scope"]), None)
        assert fetch is not None, f"no browser fetch span; {shown}"
        click = next((s for s in spans if s["span_id"] == fetch["parent_span_id"]), None)
        assert click is not None and click["name"] in ("click", "submit"), f"fetch not under the click; {shown}"
        servers = [s for s in spans if service(s) == "backend" and is_kind(s, "SERVER")
                   and s["parent_span_id"] == fetch["span_id"]]
        assert len(servers) == 1, f"expected one backend SERVER span under the fetch; {shown}"
        below = descendants(spans, servers[0])
        assert any(is_kind(s, "CLIENT") and db_system(s) in ("mysql", "mariadb") for s in below), shown
        assert any(is_kind(s, "CLIENT") and db_system(s) == "redis" for s in below), shown
        return servers[0]

    server = poll(complete, 60, "click -> fetch -> backend pod -> MariaDB and Redis", nudge=lambda: flush_telemetry(page))
    resource = server["resource"]
    assert resource["k8s.namespace.name"] == "apps"
    assert resource["k8s.deployment.name"] == "backend"
    assert resource["k8s.pod.name"] in backend_pods, (resource["k8s.pod.name"], sorted(backend_pods))
    assert resource["k8s.pod.uid"] == backend_pods[resource["k8s.pod.name"]]["metadata"]["uid"]

    query = view_logs_query(server)
    entries = loki.wait_for(query)
    assert [e["line"] for e in entries] == ["message posted"], entries
    assert entries[0]["labels"]["k8s_pod_name"] == resource["k8s.pod.name"]
    say(f"View logs: {query} -> {[e['line'] for e in entries]} from pod {resource['k8s.pod.name']}")
