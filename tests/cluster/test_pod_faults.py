"""A backend pod deleted under traffic through the frontend's Service, as a node drain or `kubectl
delete pod` would: with one of two backend pods gone, requests keep succeeding (the collector tiers'
restarts are test_collector_tiers.py's)."""

from __future__ import annotations

import time

from faults.board_traffic import BoardTraffic
from devstack.procs import say, wait_until

BACKEND = "app.kubernetes.io/name=backend"


def test_deleting_a_backend_pod_keeps_requests_succeeding(stack, frontend_url):
    api = stack.cluster.api
    pods = stack.ready_pods("apps", BACKEND)
    assert len(pods) == 2
    victim = pods[0]["metadata"]["name"]
    traffic = BoardTraffic.signed_up(frontend_url)
    with traffic.steady_load() as load:
        time.sleep(3)
        api.kubectl("delete", "pod", "-n", "apps", victim, "--wait=false")

        def two_others_ready() -> bool:
            return len([p for p in stack.ready_pods("apps", BACKEND) if p["metadata"]["name"] != victim]) == 2

        wait_until(two_others_ready, 180, "two backend pods Ready again", interval=0.5)
        time.sleep(3)
    say(f"backend pod {victim} deleted under load: {load.result.summary()}")
    assert set(load.result.counts) <= {"200", "201"}, load.result.summary()
    assert sum(load.result.counts.values()) > 50
