"""`make cluster-test`: the stack as `kubectl apply -k` deploys it on a real single-node cluster, one
per session, with the far end on the node's address; the fixtures override the suite's `far_end`,
`tempo` and `loki`, so the models read what the cluster's gateway delivered."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

import pytest
import requests

from devstack.cluster import Cluster
from devstack.cluster_network import NODE_ADDRESS
from devstack.far_end import FarEnd
from devstack.procs import REPO, say

OVERLAY = REPO / "tests" / "cluster" / "overlay"


@dataclass
class Stack:
    cluster: Cluster
    far_end: FarEnd
    seconds_to_ready: float
    applied_at: float

    def service_url(self, namespace: str, name: str, port: str = "http") -> str:
        """http://<ClusterIP>:<port>: reached from this machine through kube-proxy's rules."""
        service = self.cluster.api.get("services", name, namespace)
        (number,) = [p["port"] for p in service["spec"]["ports"] if p["name"] == port]
        assert ipaddress.ip_address(service["spec"]["clusterIP"]) in ipaddress.ip_network("198.19.0.0/16")
        return f"http://{service['spec']['clusterIP']}:{number}"

    def pods(self, namespace: str, selector: str) -> list[dict]:
        return self.cluster.api.list("pods", namespace, selector)

    def prometheus_query(self, promql: str) -> list[dict]:
        """The cluster's Prometheus answers a query (through its Service): the result's series."""
        url = self.service_url("observability", "prometheus")
        body = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def ready_pods(self, namespace: str, selector: str) -> list[dict]:
        """Pods Ready and not being deleted."""
        return [p for p in self.pods(namespace, selector) if "deletionTimestamp" not in p["metadata"]
                and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


@pytest.fixture(scope="session")
def stack(work_dir):
    cluster = Cluster(work_dir / "cluster")
    end = None
    try:
        cluster.start()
        # After the node's bridge exists: the far end listens on its address.
        end = FarEnd(work_dir / "far-end", address=NODE_ADDRESS).start()
        applied_at = time.time()
        seconds = cluster.apply_stack(OVERLAY)
        say(f"kubectl apply -k {OVERLAY.relative_to(REPO)}: every workload ready {seconds:.0f} s after apply")
        yield Stack(cluster, end, seconds, applied_at)
    finally:
        cluster.stop()
        if end is not None:
            end.close()


@pytest.fixture(scope="session")
def far_end(stack):
    return stack.far_end


# Overridden here too, not only far_end: a session-scoped fixture is made once per definition, so in
# a pytest session that also runs tests/ the suite's loki and tempo would keep the first far end.
@pytest.fixture(scope="session")
def tempo(stack):
    return stack.far_end.tempo


@pytest.fixture(scope="session")
def loki(stack):
    return stack.far_end.loki


@pytest.fixture(scope="session")
def frontend_url(stack) -> str:
    url = stack.service_url("apps", "frontend")
    assert requests.get(f"{url}/", timeout=10).ok
    return url


@dataclass
class Site:
    """What tests/test_frontend_e2e.py's page helpers need of a site: its address."""
    url: str


@pytest.fixture(scope="session")
def site(frontend_url) -> Site:
    return Site(frontend_url)


@pytest.fixture
def browser_context(tmp_path):
    from devstack import browser

    with browser.playwright() as pw, browser.chromium(pw, tmp_path / "profile") as context:
        yield context
