"""Pods deleted under traffic through the frontend's Service, as a node drain or `kubectl delete pod`
would: the gateway's Deployment replaces its pod on the same queue volume and nothing it had
accepted is lost; with one of two backend pods gone, requests keep succeeding."""

from __future__ import annotations

import time

import requests

from faults.board_traffic import BoardTraffic
from faults.telemetry_counts import GatewayCounts, wait_for_drain, wait_for_far_end
from devstack.procs import say, wait_until

GATEWAY = "app.kubernetes.io/name=otel-gateway"
BACKEND = "app.kubernetes.io/name=backend"


class PodMetrics:
    """A collector pod's own metrics endpoint, as GatewayCounts reads a local collector's."""

    def __init__(self, pod: dict):
        self.name = pod["metadata"]["name"]
        self.url = f"http://{pod['status']['podIP']}:8888/metrics"

    def metrics(self) -> str:
        return requests.get(self.url, timeout=5).text


def _ready_pods(stack, selector: str, but: str = "") -> list[dict]:
    return [p for p in stack.pods("observability" if "gateway" in selector else "apps", selector)
            if p["metadata"]["name"] != but and "deletionTimestamp" not in p["metadata"]
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


def test_deleting_the_gateway_pod_loses_nothing_it_accepted(stack, frontend_url):
    api = stack.cluster.api
    claim_before = api.get("persistentvolumeclaims", "otel-gateway-queue", "observability")
    (old,) = _ready_pods(stack, GATEWAY)
    traffic = BoardTraffic.signed_up(frontend_url)
    # The pod's counters run since it started (earlier tests' telemetry too): only what it accepts
    # from here on is compared with what the far end takes from here on.
    base = GatewayCounts.read(PodMetrics(old))
    far_before = stack.far_end.accepted()
    with traffic.steady_load() as load:
        time.sleep(10)
        before = GatewayCounts.read(PodMetrics(old))
        deleted_at = time.monotonic()
        api.kubectl("delete", "pod", "-n", "observability", old["metadata"]["name"], "--wait=false")
        wait_until(lambda: len(_ready_pods(stack, GATEWAY, but=old["metadata"]["name"])) == 1, 120,
                   "a replacement gateway pod Ready", interval=0.5)
        ready_at = time.monotonic()
        say(f"gateway pod {old['metadata']['name']} deleted; replacement Ready after {ready_at - deleted_at:.1f} s")
        time.sleep(10)
    say(f"load stopped: {load.result.summary()}")
    (new,) = _ready_pods(stack, GATEWAY)
    after = wait_for_drain(PodMetrics(new), timeout=120)
    spans = before.accepted_spans - base.accepted_spans + after.accepted_spans
    records = before.accepted_logs - base.accepted_logs + after.accepted_logs
    far = wait_for_far_end(stack.far_end, far_before.spans + spans, far_before.log_records + records, timeout=120)
    print(f"\ngateway pod deleted under load: {traffic.summary()}; accepted by the old pod before the delete and "
          f"by the new one: {spans} spans, {records} log records; the far end took "
          f"{far.spans - far_before.spans} spans, {far.log_records - far_before.log_records} log records")

    assert set(load.result.counts) <= {"200", "201"}, load.result.summary()
    assert far.spans - far_before.spans >= spans, "spans the gateway accepted were lost"
    assert far.log_records - far_before.log_records >= records, "log records the gateway accepted were lost"
    assert after.drained(), str(after)
    claim_after = api.get("persistentvolumeclaims", "otel-gateway-queue", "observability")
    assert claim_after["metadata"]["uid"] == claim_before["metadata"]["uid"]
    assert claim_after["spec"]["volumeName"] == claim_before["spec"]["volumeName"]
    volumes = [v for v in new["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert [v["persistentVolumeClaim"]["claimName"] for v in volumes] == ["otel-gateway-queue"]


def test_deleting_a_backend_pod_keeps_requests_succeeding(stack, frontend_url):
    api = stack.cluster.api
    pods = _ready_pods(stack, BACKEND)
    assert len(pods) == 2
    victim = pods[0]["metadata"]["name"]
    traffic = BoardTraffic.signed_up(frontend_url)
    with traffic.steady_load() as load:
        time.sleep(3)
        api.kubectl("delete", "pod", "-n", "apps", victim, "--wait=false")
        wait_until(lambda: len(_ready_pods(stack, BACKEND, but=victim)) == 2, 180,
                   "two backend pods Ready again", interval=0.5)
        time.sleep(3)
    say(f"backend pod {victim} deleted under load: {load.result.summary()}")
    assert set(load.result.counts) <= {"200", "201"}, load.result.summary()
    assert sum(load.result.counts.values()) > 50
