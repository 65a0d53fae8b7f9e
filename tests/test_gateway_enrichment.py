"""The gateway's k8s_attributes against the real API server with its own ServiceAccount's token:
telemetry naming only a backend pod's uid, or only its IP, arrives with the pod's namespace, name
and Deployment, and the shipped RBAC is what lets the gateway look."""

from __future__ import annotations

import os
import uuid

import pytest
import requests

from devstack import kustomize
from devstack.kube_objects import make_pod, make_replicaset
from devstack.otlp_payloads import PROTOBUF, log_request, span_request


@pytest.fixture(scope="module")
def backend_pod(kube_api):
    template = kustomize.workload("Deployment", "backend", "apps")["spec"]["template"]
    replicaset = f"backend-{uuid.uuid4().hex[:9]}"
    kube_api.add_replicaset(make_replicaset(replicaset, "apps", "backend"))
    # The template as shipped: namespace apps enforces PodSecurity "restricted".
    pod = make_pod(f"{replicaset}-{uuid.uuid4().hex[:5]}", "apps", ip="198.18.0.77",
                   labels=template["metadata"]["labels"], annotations=template["metadata"].get("annotations"),
                   replicaset=replicaset, spec=template["spec"])
    kube_api.add_pod(pod)
    return pod


def _post(gateway, path: str, body: bytes) -> None:
    resp = requests.post(f"{gateway.otlp_http}{path}", data=body, headers=PROTOBUF, timeout=10)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("association", ["k8s.pod.uid", "k8s.pod.ip"])
def test_telemetry_naming_a_pod_arrives_with_its_kubernetes_identity(backend_pod, gateway, tempo, loki, association):
    meta = backend_pod["metadata"]
    named_by = meta["uid"] if association == "k8s.pod.uid" else backend_pod["status"]["podIP"]
    # The backend's service name comes from its ConfigMap (OTEL_SERVICE_NAME=backend); the rest is the gateway's.
    trace_id = os.urandom(16).hex()
    _post(gateway, "/v1/traces", span_request("backend", trace_id, {}, resource_extra={association: named_by}))
    marker = f"enrichment by {association} {uuid.uuid4().hex[:8]}"
    _post(gateway, "/v1/logs", log_request("backend", trace_id, marker, {}, resource_extra={association: named_by}))

    (span,) = tempo.wait_for_trace(trace_id, timeout=30)
    expected = {"service.name": "backend", "k8s.namespace.name": "apps", "k8s.pod.name": meta["name"],
                "k8s.pod.uid": meta["uid"], "k8s.deployment.name": "backend", "k8s.node.name": "node-1"}
    assert {k: span["resource"].get(k) for k in expected} == expected, span["resource"]

    (entry,) = loki.wait_for(f'{{service_name="backend", k8s_namespace_name="apps"}} |= "{marker}"', timeout=30)
    labels = entry["labels"]
    assert labels["k8s_deployment_name"] == "backend" and labels["k8s_pod_name"] == meta["name"], labels
    print(f"{association}={named_by} -> pod {meta['name']} (deployment backend) on the span and the log line")
