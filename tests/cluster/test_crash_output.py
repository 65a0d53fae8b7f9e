"""What a failing backend prints outside its SDK reaches Loki under service_name="backend": a pod with
a bad setting exits at start-up with its `configuration error` line; a worker killed for hanging
leaves gunicorn's `WORKER TIMEOUT`; the app's own records still arrive once, over OTLP only."""

from __future__ import annotations

import copy
import json
import os
import signal
import time
import uuid
from pathlib import Path

import requests

from board_ui import poll
from devstack.procs import say

BACKEND = "app.kubernetes.io/name=backend"


def _backend_records(far_end, body_start: str, pod: str | None = None) -> list:
    return [r for r in far_end.log_sink.logs() if str(r.body).startswith(body_start)
            and r.resource.get("service.name") == "backend" and pod in (None, r.resource.get("k8s.pod.name"))]


def _some(found: list) -> list:
    assert found, "not yet"
    return found


def test_a_backend_that_exits_at_start_up_leaves_its_configuration_error_in_loki(stack, loki):
    api = stack.cluster.api
    template = copy.deepcopy(api.get("deployments", "backend", "apps")["spec"]["template"])
    name = f"backend-misconfigured-{uuid.uuid4().hex[:5]}"
    container = template["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "MYSQL_PORT"] + [
        {"name": "MYSQL_PORT", "value": "not-a-port"}]
    # Its own labels (not the Deployment's selector), the backend's name and annotation kept.
    labels = {"app.kubernetes.io/name": "backend", "app.kubernetes.io/component": "misconfigured"}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "apps", "labels": labels,
                        "annotations": template["metadata"].get("annotations", {})},
           "spec": {**template["spec"], "initContainers": [], "restartPolicy": "Never"}}
    created = time.monotonic()
    api.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    try:
        record = poll(lambda: _some(_backend_records(stack.far_end, "configuration error:", name)), 90,
                      "the misconfigured pod's configuration error at the far end")[0]
        seconds = time.monotonic() - created
    finally:
        api.kubectl("delete", "pod", "-n", "apps", name, "--wait=false")
    say(f"misconfigured backend pod: its configuration error at the far end {seconds:.1f} s after the pod was created")
    assert record.body == "configuration error: MYSQL_PORT must be an integer, got 'not-a-port'"
    assert loki.query(f'{{service_name="backend"}} |= "configuration error" | k8s_pod_name="{name}"')


def _worker_pids(pod_uid: str) -> list[int]:
    """The gunicorn workers of a pod's container on this node: processes in its cgroup whose parent
    is a gunicorn too (the master's parent is the runtime's shim)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            in_pod = f"pod{pod_uid}" in (entry / "cgroup").read_text()
            cmdline = (entry / "cmdline").read_bytes()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            parent_cmdline = Path(f"/proc/{parent}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if in_pod and b"gunicorn" in cmdline and b"gunicorn" in parent_cmdline:
            found.append(int(entry.name))
    return found


def test_a_hung_worker_leaves_worker_timeout_and_the_apps_records_arrive_once(stack, frontend_url):
    # The app logs: each post is one "message posted" record, over OTLP only.
    user = f"crash_{uuid.uuid4().hex[:8]}"
    http = requests.Session()
    http.post(frontend_url + "/api/auth/signup", json={"username": user, "password": "correct-horse-battery"}, timeout=10)
    assert http.post(frontend_url + "/api/auth/login", json={"username": user, "password": "correct-horse-battery"},
                     timeout=10).status_code == 200
    posted = sum(http.post(frontend_url + "/api/messages", json={"body": f"counted {i}"},
                           timeout=10).status_code == 201 for i in range(10))

    def records() -> list:
        return [r for r in stack.far_end.log_sink.logs()
                if r.body == "message posted" and r.attributes.get("enduser.id") == user]

    # Exported before a worker is stopped: a worker killed with records still in its batch loses them.
    poll(lambda: _some(records()[posted - 1:]), 30, "the posts' log records at the far end")
    (pod, *_) = [p for p in stack.pods("apps", BACKEND) if "deletionTimestamp" not in p["metadata"]]
    workers = _worker_pids(pod["metadata"]["uid"])
    assert workers, f"no gunicorn worker of {pod['metadata']['name']} found in /proc"
    # The pid gunicorn names: the worker's in its container's pid namespace (NSpid's last field).
    status = Path(f"/proc/{workers[0]}/status").read_text()
    in_container = next(line.split()[-1] for line in status.splitlines() if line.startswith("NSpid:"))
    os.kill(workers[0], signal.SIGSTOP)  # alive but silent: gunicorn's master kills it after `timeout`
    timeout = poll(lambda: _some([r for r in _backend_records(stack.far_end, "[", pod["metadata"]["name"])
                                  if f"WORKER TIMEOUT (pid:{in_container})" in str(r.body)]), 90,
                   "gunicorn's WORKER TIMEOUT at the far end")
    counted = records()
    from_files = [r for r in counted if "log.file.path" in r.attributes]
    say(f"hung worker: {timeout[0].body!r} ({timeout[0].severity_text}); {posted} posts, "
        f"{len(counted)} 'message posted' records at the far end, {len(from_files)} of them read from files")
    assert posted == 10 and len(counted) == posted and not from_files
    assert timeout[0].severity_text == "CRITICAL" and timeout[0].severity_number == 21
