"""The shipped NetworkPolicies, enforced by the test cluster's policy agent (kube-router): pods
without the backend's labels reach none of the stores, the gateway, Prometheus or
kube-state-metrics; a pod with the backend's name label reaches exactly what the backend needs."""

from __future__ import annotations

import json
import time
import uuid

from devstack.procs import say, wait_until

# Runs in each probe pod: every target at once, each a TCP connect with a short timeout. It waits
# first so the policy agent has seen the new pod (its address must be in the backend's ipset), and
# leaves its findings as the container's termination message.
PROBE = """
import json, socket, sys, time
from concurrent.futures import ThreadPoolExecutor
time.sleep(float(sys.argv[1]))
def probe(item):
    name, (host, port) = item
    try:
        socket.create_connection((host, port), timeout=3).close()
        return name, "connected"
    except socket.timeout:
        return name, "timed out"
    except OSError as exc:
        return name, exc.strerror or type(exc).__name__
targets = json.loads(sys.argv[2])
with ThreadPoolExecutor(len(targets)) as pool:
    results = json.dumps(dict(pool.map(probe, targets.items())))
with open("/dev/termination-log", "w") as f:
    f.write(results)
"""
SETTLE_S = 5
# What a pod labelled as the backend may open; everything else is refused or times out.
BACKEND_PATHS = {"redis", "mariadb", "gateway otlp-http"}


def _targets(api) -> dict[str, tuple[str, int]]:
    def service(namespace, name, port_name):
        svc = api.get("services", name, namespace)
        (port,) = [p["port"] for p in svc["spec"]["ports"] if p["name"] == port_name]
        return svc["spec"]["clusterIP"], port

    (sampler,) = [p for p in api.list("pods", "observability", "app.kubernetes.io/name=otel-sampler")
                  if p["metadata"]["name"].endswith("-0")]
    return {
        "redis": service("apps", "redis", "redis"),
        "mariadb": service("apps", "mariadb", "mysql"),
        "backend": service("apps", "backend", "http"),
        "gateway otlp-http": service("observability", "otel-gateway", "otlp-http"),
        "gateway otlp-grpc": service("observability", "otel-gateway", "otlp-grpc"),
        "sampler otlp-grpc": (sampler["status"]["podIP"], 4317),
        "prometheus": service("observability", "prometheus", "http"),
        "alertmanager": service("observability", "alertmanager", "http"),
        "kube-state-metrics": service("observability", "kube-state-metrics", "http-metrics"),
    }


def _probe_pod(name: str, namespace: str, labels: dict[str, str], image: str, targets: dict) -> dict:
    restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "probe", "image": image, "imagePullPolicy": "IfNotPresent",
                                     "command": ["python", "-c", PROBE, str(SETTLE_S), json.dumps(targets)],
                                     "securityContext": restricted}]}}


def test_only_the_backend_reaches_the_stores_and_no_stranger_reaches_the_pipeline(stack):
    api = stack.cluster.api
    targets = _targets(api)
    image = api.get("deployments", "backend", "apps")["spec"]["template"]["spec"]["containers"][0]["image"]
    suffix = uuid.uuid4().hex[:5]
    outside = f"np-probe-{suffix}"
    stranger = {"app.kubernetes.io/name": "np-probe"}
    # The backend's name but not the Deployment's selector (its ReplicaSet must not adopt it).
    look_alike = {"app.kubernetes.io/name": "backend", "app.kubernetes.io/component": "np-probe"}
    probes = {
        # In a namespace of its own, where no policy limits what it sends: only the targets' rules act.
        "other namespace": _probe_pod(f"probe-{suffix}", outside, stranger, image, targets),
        "apps, unlabelled": _probe_pod(f"probe-{suffix}", "apps", stranger, image, targets),
        "apps, backend's name": _probe_pod(f"probe-backend-{suffix}", "apps", look_alike, image, targets),
    }
    api.kubectl("create", "namespace", outside)
    try:
        for pod in probes.values():
            api.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
        t0 = time.monotonic()
        results = {}
        for who, pod in probes.items():
            meta = pod["metadata"]
            wait_until(lambda: api.get("pods", meta["name"], meta["namespace"])["status"].get("phase")
                       == "Succeeded", 90, f"probe pod {meta['namespace']}/{meta['name']} succeeded", interval=1)
            (status,) = api.get("pods", meta["name"], meta["namespace"])["status"]["containerStatuses"]
            results[who] = json.loads(status["state"]["terminated"]["message"])
        say(f"network policy probes done in {time.monotonic() - t0:.0f} s")
    finally:
        api.kubectl("delete", "namespace", outside, "--wait=false", check=False)
        for pod in probes.values():
            if pod["metadata"]["namespace"] == "apps":
                api.kubectl("delete", "pod", "-n", "apps", pod["metadata"]["name"], "--wait=false", check=False)

    expected = {who: {t: "connected" if who == "apps, backend's name" and t in BACKEND_PATHS else "blocked"
                      for t in targets} for who in probes}
    found = {who: {t: "connected" if outcome == "connected" else "blocked" for t, outcome in got.items()}
             for who, got in results.items()}
    print("\nTCP connects from probe pods (blocked = refused or timed out):")
    print(f"  {'target':<20}" + "".join(f"{who:>24}" for who in probes))
    for t, (host, port) in targets.items():
        print(f"  {t:<20}" + "".join(f"{results[who][t]:>24}" for who in probes) + f"   {host}:{port}")
    blocked = sum(v == "blocked" for row in found.values() for v in row.values())
    should = sum(v == "blocked" for row in expected.values() for v in row.values())
    print(f"  blocked {blocked} of the {should} connects the policies forbid; "
          f"connected {len(targets) * len(probes) - blocked} of the {len(targets) * len(probes) - should} they allow")
    assert found == expected
