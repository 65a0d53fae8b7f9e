"""The node agent on a fabricated /var/log/pods tree -> the real gateway -> the far end and its Loki model."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from devstack import collector
from devstack.kube_objects import make_namespace, make_pod, make_replicaset
from devstack.pod_logs import PodLogs, cri, docker

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def pods(kube_api, tmp_path_factory):
    namespace = f"agent-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("node") / "var" / "log" / "pods"
    kube_api.add_namespace(make_namespace(namespace))
    kube_api.add_namespace(make_namespace("observability"))
    kube_api.add_replicaset(make_replicaset("web-5d8f7c9b6", namespace, "web"))
    web = make_pod("web-5d8f7c9b6-abcde", namespace, labels={"app.kubernetes.io/name": "webshop"},
                   replicaset="web-5d8f7c9b6", containers=("web",))
    legacy = make_pod("legacy-0", namespace, containers=("legacy",))
    pushes_otlp = make_pod("backend-7c9d-x1", namespace, labels={"app.kubernetes.io/name": "backend"},
                           annotations={"observability.stack/logs": "otlp"}, containers=("backend",))
    own = make_pod("otel-agent-q2w3e", "observability", labels={"app.kubernetes.io/name": "otel-agent"},
                   containers=("otel-collector",))
    for pod in (web, legacy, pushes_otlp, own):
        kube_api.add_pod(pod)
    return {
        "namespace": namespace, "root": root,
        "web": PodLogs(root, web, "web"), "legacy": PodLogs(root, legacy, "legacy"),
        "otlp": PodLogs(root, pushes_otlp, "backend"), "own": PodLogs(root, own, "otel-collector"),
    }


def test_agent_collects_pod_logs_once_with_metadata_and_trace_context(pods, kube_api, gateway, loki, work_dir):
    ns = pods["namespace"]
    pods["web"].write(
        cri("stdout", "F", "plain cri line"),
        cri("stdout", "P", "first half of a long line, "),
        cri("stdout", "F", "second half"),
        cri("stderr", "F", json.dumps({"level": "warn", "message": "json app line",
                                       "trace_id": TRACE_ID, "span_id": SPAN_ID, "user": "x"})),
    )
    pods["legacy"].write(docker("docker format line"))
    pods["otlp"].write(cri("stdout", "F", json.dumps({"level": "info", "message": "already shipped over otlp"})))
    pods["own"].write(cri("stderr", "F", "collector's own log line"))

    agent = collector.agent(work_dir / "agent", kube_api, gateway, str(pods["root"] / "*/*/*.log"))
    agent.start()
    try:
        entries = loki.wait_for(f'{{k8s_namespace_name="{ns}"}}', count=4, timeout=60)
        by_line = {e["line"]: e["labels"] for e in entries}
        assert set(by_line) == {"plain cri line", "first half of a long line, second half", "json app line",
                                "docker format line"}, sorted(by_line)

        web = by_line["plain cri line"]
        assert web["service_name"] == "webshop"
        assert web["k8s_pod_name"] == "web-5d8f7c9b6-abcde"
        assert web["k8s_container_name"] == "web"
        assert web["k8s_deployment_name"] == "web"
        assert by_line["docker format line"]["service_name"] == "legacy"  # no app label: the container name

        app = by_line["json app line"]
        assert app["trace_id"] == TRACE_ID and app["span_id"] == SPAN_ID
        assert app.get("detected_level", app.get("severity_text", "")).lower().startswith("warn")

        # The rotated file is not read again; the new 0.log is.
        pods["web"].rotate()
        pods["web"].write(cri("stdout", "F", "after rotation"))
        loki.wait_for(f'{{k8s_namespace_name="{ns}"}} |= "after rotation"', timeout=30)

        # A restart resumes from the checkpoints.
        agent.process.restart()
        pods["web"].write(cri("stdout", "F", "after restart"))
        loki.wait_for(f'{{k8s_namespace_name="{ns}"}} |= "after restart"', timeout=30)
        time.sleep(3)
        lines = [e["line"] for e in loki.query(f'{{k8s_namespace_name="{ns}"}}')]
        print(f"\nagent: {len(lines)} lines in Loki for namespace {ns}")
        assert len(lines) == len(set(lines)) == 6, sorted(lines)
        assert not loki.query('{k8s_namespace_name="observability"} |= "collector\'s own log line"')
    finally:
        agent.stop()
