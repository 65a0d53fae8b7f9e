"""Workload health on the real kubelet: container series from its cAdvisor and kube-state-metrics reach
the in-cluster Prometheus for every container of the stack; a crash-looping and an OOM-killed
container fire their alerts into Alertmanager, with a link that opens exactly that pod's logs."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from devstack.procs import poll_for, say, wait_until
from shipped_promql import SCRAPED_IN_A_CLUSTER, metric_names, shipped_promql

MEMORY_CGROUPS = Path("/sys/fs/cgroup/memory/kubepods")
KSM = "system:serviceaccount:observability:kube-state-metrics"


def _containers(stack) -> list[tuple[str, str, str]]:
    return [(ns, p["metadata"]["name"], c["name"]) for ns in ("apps", "observability")
            for p in stack.pods(ns, "app.kubernetes.io/part-of=otel-stack") if p["status"].get("phase") == "Running"
            for c in p["spec"]["containers"]]


def _working_set_bytes(container_id: str) -> int:
    """What cAdvisor calls the working set, from the container's memory cgroup (v1) on this node:
    usage less the inactive page cache."""
    (cgroup,) = [d for d in MEMORY_CGROUPS.rglob(container_id) if d.is_dir()]
    usage = int((cgroup / "memory.usage_in_bytes").read_text())
    stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
    return max(0, usage - int(stat["total_inactive_file"]))


def test_every_container_of_the_stack_has_its_series_and_the_backends_memory_matches_its_cgroup(stack):
    containers = _containers(stack)

    wanted = ("container_memory_working_set_bytes", "container_cpu_usage_seconds_total",
              "kube_pod_container_status_restarts_total")

    def missing() -> list[str]:
        have = {(s["metric"]["namespace"], s["metric"]["pod"], s["metric"]["container"], s["metric"]["__name__"])
                for s in stack.prometheus_query(f'{{__name__=~"{"|".join(wanted)}", namespace=~"apps|observability"}}')}
        return [f"{ns}/{pod}/{c}: {name}" for ns, pod, c in containers for name in wanted
                if (ns, pod, c, name) not in have]

    t0 = time.monotonic()
    wait_until(lambda: not missing(), 120, "every container's series in Prometheus", interval=5)
    say(f"series of all {len(containers)} containers in Prometheus after {time.monotonic() - t0:.0f} s")

    (backend, *_) = stack.ready_pods("apps", "app.kubernetes.io/name=backend,app.kubernetes.io/component=api")
    pod = backend["metadata"]["name"]
    (status,) = backend["status"]["containerStatuses"]
    container_id = status["containerID"].split("://", 1)[1]
    # cAdvisor stamps each sample with when it read the cgroup: compare a sample read after ours.
    read_at, cgroup = time.time(), _working_set_bytes(container_id)
    # A range selector returns the samples with their own timestamps (an instant query's is its own).
    promql = f'container_memory_working_set_bytes{{namespace="apps", pod="{pod}", container="backend"}}[2m]'

    def fresh_sample() -> list[float]:
        return [float(v) for s in stack.prometheus_query(promql) if s["metric"]["id"].endswith(container_id)
                for t, v in s["values"] if float(t) > read_at][-1:]

    (scraped,) = poll_for(fresh_sample, 1, 90, "a working-set sample of the backend newer than the cgroup's reading")
    def count(promql: str) -> int:
        return int(float(stack.prometheus_query(f"count({promql})")[0]["value"][1]))

    cadvisor = '{job="kubelet-cadvisor", container!=""}'
    per_container = count(cadvisor) / count(f"count by (namespace, pod, container) ({cadvisor})")
    per_pod = sorted(int(s["value"][1])
                     for s in stack.prometheus_query('count by (pod) ({job="kube-state-metrics", pod!=""})'))
    not_per_pod = count('{job="kube-state-metrics", pod=""}')
    print(f"\n{len(containers)} containers of the stack, each with its CPU, memory and kube-state-metrics series. "
          f"Per container {per_container:.1f} cAdvisor series; per pod {per_pod[len(per_pod) // 2]} of "
          f"kube-state-metrics (median, {per_pod[0]}-{per_pod[-1]}); of workloads and its own {not_per_pod} in all")
    print(f"backend {pod}: working set {scraped / 2**20:.1f} MiB in Prometheus, {cgroup / 2**20:.1f} MiB in its "
          f"memory cgroup at the same time ({scraped / cgroup - 1:+.1%})")
    assert abs(scraped / cgroup - 1) <= 0.10


def _crashing_deployment(namespace: str, name: str, image: str, script: str, memory: str) -> dict:
    labels = {"app.kubernetes.io/name": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"automountServiceAccountToken": False, "containers": [{
                                      "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                                      "command": ["python", "-c", script],
                                      "resources": {"requests": {"cpu": "10m", "memory": memory},
                                                    "limits": {"memory": memory}}}]}}}}


def _pod_logs_query(alert: dict) -> str:
    """The LogQL of the alert's `logs` link (a Grafana Explore path)."""
    (panes,) = parse_qs(urlsplit(alert["annotations"]["logs"]).query)["panes"]
    ((query,),) = [pane["queries"] for pane in json.loads(panes).values()]
    return query["expr"]


def test_a_crash_loop_and_an_oom_kill_fire_their_alerts_with_a_link_to_exactly_that_pods_logs(stack, loki):
    api = stack.cluster.api
    alertmanager = stack.service_url("observability", "alertmanager")
    image = api.get("deployments", "backend", "apps")["spec"]["template"]["spec"]["containers"][0]["image"]
    namespace = f"health-{uuid.uuid4().hex[:5]}"
    # Each prints a line first, so that its logs have something to find.
    crasher = _crashing_deployment(namespace, "crasher", image,
                                   "print('crasher: exiting with status 1', flush=True); raise SystemExit(1)", "64Mi")
    hog = _crashing_deployment(namespace, "memory-hog", image,
                               "print('memory-hog: allocating 256 MiB', flush=True); b = b'x' * (256 << 20)", "64Mi")
    api.kubectl("create", "namespace", namespace)
    created = time.monotonic()
    try:
        for deployment in (crasher, hog):
            api.kubectl("apply", "-f", "-", stdin=json.dumps(deployment))
        fired: dict[str, dict] = {}
        seen_at: dict[str, float] = {}
        expected = {"KubeContainerRestarting": "crasher", "KubeContainerOOMKilled": "memory-hog"}

        def all_at_alertmanager() -> bool:
            for alert in requests.get(f"{alertmanager}/api/v2/alerts", timeout=10).json():
                name, labels = alert["labels"]["alertname"], alert["labels"]
                if expected.get(name) == labels.get("container") and labels.get("namespace") == namespace:
                    fired.setdefault(name, alert)
                    seen_at.setdefault(name, time.monotonic() - created)
            return set(fired) == set(expected)

        wait_until(all_at_alertmanager, 300, "the restart and OOM alerts at Alertmanager", interval=2)
        for name, alert in fired.items():
            say(f"{name} for {alert['labels']['pod']} at Alertmanager {seen_at[name]:.0f} s after its Deployment")

        restarts = {s["metric"]["container"]: int(float(s["value"][1])) for s in
                    stack.prometheus_query(f'kube_pod_container_status_restarts_total{{namespace="{namespace}"}}')}
        lines = {}
        for name, alert in fired.items():
            query = _pod_logs_query(alert)
            found = poll_for(lambda: loki.query(query), 1, 60, f"the logs behind {name}'s link")
            lines[name] = sorted({e["line"] for e in found})
            assert {e["labels"].get("k8s_pod_name") for e in found} == {alert["labels"]["pod"]}, found[:3]
    finally:
        api.kubectl("delete", "namespace", namespace, "--wait=false", check=False)

    print(f"\nalerts at Alertmanager, seconds after the Deployments were created: "
          + ", ".join(f"{name} {seen_at[name]:.0f}" for name in expected) + f"; restarts then {restarts}")
    for name, alert in fired.items():
        print(f"  {name}: {alert['annotations']['summary']}; its logs link finds {lines[name]}")
    assert lines["KubeContainerRestarting"] == ["crasher: exiting with status 1"]
    assert lines["KubeContainerOOMKilled"] == ["memory-hog: allocating 256 MiB"]


def test_kube_state_metrics_may_list_and_watch_what_it_reads_and_nothing_more(stack):
    api = stack.cluster.api

    def can(verb: str, resource: str) -> bool:
        proc = api.kubectl("auth", "can-i", verb, resource, "--all-namespaces", f"--as={KSM}", check=False)
        return proc.stdout.strip() == "yes"

    reads = ["pods", "deployments.apps", "statefulsets.apps", "daemonsets.apps"]
    granted = {(verb, r) for r in reads + ["secrets", "configmaps", "nodes", "replicasets.apps"]
               for verb in ("get", "list", "watch", "create", "delete") if can(verb, r)}
    print(f"kube-state-metrics may: {sorted(granted)}")
    assert granted == {(verb, r) for r in reads for verb in ("list", "watch")}


def test_every_kubernetes_metric_the_shipped_promql_names_is_in_the_clusters_prometheus(stack):
    """After the crash test above (a terminated container's reason exists only after one ended). The
    kubelet measures volumes of the types that support it; the test cluster's hostPath volumes are
    not among them, so no kubelet_volume_stats series can appear here (the rule unit tests cover
    the alert)."""
    names = {n: w for n, w in metric_names(shipped_promql()).items()
             if n.startswith(SCRAPED_IN_A_CLUSTER) and not n.startswith("kubelet_volume_stats_")}
    missing = {n: sorted(w) for n, w in names.items() if not stack.prometheus_query(f"count({n})")}
    print(f"{len(names)} Kubernetes metric names in the shipped PromQL; missing: {sorted(missing)}")
    assert not missing, missing
