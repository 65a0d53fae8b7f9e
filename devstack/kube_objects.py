"""Kubernetes objects (pods, namespaces, ReplicaSets, nodes) as a controller or the kubelet would have
written them, for tests that run the API server without either."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime, timezone
from typing import Any


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_pod(
    name: str,
    namespace: str,
    *,
    ip: str = "198.18.0.10",  # pods in the benchmarking test range (RFC 2544), never routed
    node: str = "node-1",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    containers: list[str] | tuple[str, ...] = ("app",),
    replicaset: str | None = None,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A running Pod as the API returns it; `replicaset` sets the owner, as a Deployment's pods have.
    `spec` is a workload's pod template spec (its containers win over `containers`), for pods that
    must pass the namespace's PodSecurity profile. The uid here is a placeholder until the API
    server assigns the real one."""
    pod_spec = {"containers": [{"name": c, "image": f"example.test/{c}:1.0"} for c in containers],
                **copy.deepcopy(spec or {}), "nodeName": node}
    containers = [c["name"] for c in pod_spec["containers"]]
    meta: dict[str, Any] = {
        "name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
        "labels": dict(labels or {}), "annotations": dict(annotations or {}),
        "creationTimestamp": now_rfc3339(),
    }
    if replicaset:
        # A Deployment's pods carry their ReplicaSet's hash; k8s_attributes derives the deployment from it.
        meta["labels"].setdefault("pod-template-hash", replicaset.rsplit("-", 1)[-1])
        meta["ownerReferences"] = [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replicaset,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"rs/{namespace}/{replicaset}")),
            "controller": True, "blockOwnerDeletion": True,
        }]
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": pod_spec,
        "status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.0.2.1",
            "startTime": meta["creationTimestamp"],
            "containerStatuses": [{
                "name": c, "ready": True, "restartCount": 0, "image": f"example.test/{c}:1.0",
                "imageID": f"example.test/{c}@sha256:{'0' * 64}",
                "containerID": f"containerd://{uuid.uuid5(uuid.NAMESPACE_URL, name + c).hex}",
                "state": {"running": {"startedAt": meta["creationTimestamp"]}},
            } for c in containers],
        },
    }


def make_namespace(name: str, labels: dict[str, str] | None = None,
                   annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "uid": str(uuid.uuid4()), "labels": dict(labels or {}),
                     "annotations": dict(annotations or {}), "creationTimestamp": now_rfc3339()},
        "status": {"phase": "Active"},
    }


def make_replicaset(name: str, namespace: str, deployment: str) -> dict[str, Any]:
    template_hash = name.rsplit("-", 1)[-1]
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": name, "namespace": namespace,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"rs/{namespace}/{name}")),
            "creationTimestamp": now_rfc3339(),
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"deploy/{namespace}/{deployment}")),
                "controller": True, "blockOwnerDeletion": True,
            }],
        },
        # No controller runs in the test API server: the template is there to be valid, never to make pods.
        "spec": {"replicas": 1, "selector": {"matchLabels": {"pod-template-hash": template_hash}},
                 "template": {"metadata": {"labels": {"pod-template-hash": template_hash}},
                              "spec": {"containers": [{"name": "app", "image": "example.test/app:1.0"}]}}},
        "status": {"replicas": 1},
    }


