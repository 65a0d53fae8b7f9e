"""`kubectl apply -k` of the test overlay: every workload rolls out, every container runs as its
manifest declares (read off the node's /proc, not off the API), and the schema step finishes before
a backend container starts."""

from __future__ import annotations

from datetime import datetime

from devstack.procs import say

NAMESPACES = ("apps", "observability")
# Declared uid 0 but powerless (k8s/otel-agent/daemonset.yaml says why); every other pod is non-root.
ROOT_BY_DESIGN = {"otel-agent"}


def _proc_status(pid: int) -> dict[str, str]:
    lines = open(f"/proc/{pid}/status").read().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _root_mount_options(pid: int) -> set[str]:
    for line in open(f"/proc/{pid}/mountinfo"):
        fields = line.split()
        if fields[4] == "/":
            return set(fields[5].split(","))
    raise AssertionError(f"no root mount for pid {pid}")


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_every_workload_rolled_out(stack):
    say(f"apply to all ready: {stack.seconds_to_ready:.0f} s")
    expected = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in stack.cluster.applied
                if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet")}
    assert {("apps", n) for n in ("backend", "frontend", "mariadb", "redis")} <= expected
    assert {("observability", n) for n in ("otel-gateway", "otel-agent", "prometheus", "alertmanager")} <= expected
    for namespace in NAMESPACES:
        for pod in stack.cluster.api.list("pods", namespace):
            statuses = pod["status"].get("containerStatuses", [])
            assert statuses and all(s["ready"] for s in statuses), (pod["metadata"]["name"], statuses)


def test_containers_run_as_declared_on_the_node(stack):
    tasks = {}
    for line in stack.cluster.containerd.ctr("tasks", "list").stdout.splitlines()[1:]:
        task_id, pid, status = line.split()
        tasks[task_id] = (int(pid), status)
    checked = []
    for namespace in NAMESPACES:
        for pod in stack.cluster.api.list("pods", namespace):
            spec, name = pod["spec"], pod["metadata"]["name"]
            declared = {c["name"]: c for c in spec["containers"]}
            for status in pod["status"]["containerStatuses"]:
                container = declared[status["name"]]
                pid, state = tasks[status["containerID"].removeprefix("containerd://")]
                assert state == "RUNNING", (name, status["name"], state)
                proc = _proc_status(pid)
                uid = int(proc["Uid"].split()[1])  # effective
                want_uid = container.get("securityContext", {}).get("runAsUser",
                                                                      spec["securityContext"].get("runAsUser"))
                assert uid == want_uid, f"{name}/{status['name']}: uid {uid}, declared {want_uid}"
                app = pod["metadata"]["labels"].get("app.kubernetes.io/name")
                assert uid != 0 or app in ROOT_BY_DESIGN, f"{name}/{status['name']} runs as root"
                assert int(proc["CapEff"], 16) == 0, f"{name}/{status['name']}: capabilities {proc['CapEff']}"
                assert proc["NoNewPrivs"] == "1", f"{name}/{status['name']} may gain privileges"
                assert proc["Seccomp"] == "2", f"{name}/{status['name']}: no seccomp filter"
                assert "ro" in _root_mount_options(pid), f"{name}/{status['name']}: root filesystem writable"
                checked.append(f"{name}/{status['name']}")
    say(f"checked on the node: {', '.join(checked)}")
    assert len(checked) >= 9


def test_the_schema_step_finishes_before_the_backend_starts(stack):
    pods = stack.pods("apps", "app.kubernetes.io/name=backend")
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    for pod in pods:
        (init,) = pod["status"]["initContainerStatuses"]
        done = init["state"]["terminated"]
        assert done["exitCode"] == 0, init
        (main,) = pod["status"]["containerStatuses"]
        assert _when(done["finishedAt"]) <= _when(main["state"]["running"]["startedAt"]), (init, main)
