"""k8s/ against a real kube-apiserver: what `kubectl apply -k` meets before any pod runs (server-side
apply of the base and every overlay, PodSecurity admission, each collector ServiceAccount's RBAC)."""

from __future__ import annotations

import copy
import re

import pytest

from devstack import kustomize
from devstack.kustomize import ENTRY_POINTS

OVERLAYS = [entry for entry in ENTRY_POINTS if entry != "default"]
COLLECTORS = ("observability/otel-gateway", "observability/otel-agent")
# What k8s_attributes lists and watches (pods, namespaces, and ReplicaSets for the deployment name).
READS = [("pods", ""), ("namespaces", ""), ("replicasets", "apps")]


def test_the_base_applies_with_no_warning(kube_api):
    applied = kube_api.applied_base  # the session's `kubectl apply -k k8s/`, server-side
    print(applied.stdout.strip().replace("\n", "; ")[:2000])
    assert applied.returncode == 0
    assert "Warning" not in applied.stderr, applied.stderr
    objs = kustomize.render("default")
    assert len(applied.stdout.strip().splitlines()) == len(objs)


@pytest.mark.parametrize("entry", OVERLAYS)
def test_every_overlay_applies_server_side_with_no_warning(kube_api, entry):
    # Dry run: the session's API server keeps holding the base that the other tests rely on.
    result = kube_api.apply_entry(entry, "--dry-run=server")
    print(f"{entry}: {len(result.stdout.strip().splitlines())} objects accepted (dry run)")
    assert "Warning" not in result.stderr, result.stderr


def _pods_from_templates(namespace: str) -> list[dict]:
    pods = []
    for workload in kustomize.render("default"):
        meta = workload["metadata"]
        if meta.get("namespace") != namespace or "template" not in workload.get("spec", {}):
            continue
        template = copy.deepcopy(workload["spec"]["template"])
        # As the StatefulSet controller does: each claim template becomes the pod's claim.
        for claim in workload["spec"].get("volumeClaimTemplates", []):
            name = claim["metadata"]["name"]
            template["spec"].setdefault("volumes", []).append(
                {"name": name, "persistentVolumeClaim": {"claimName": f"{name}-{meta['name']}-0"}})
        pods.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"{meta['name']}-probe", "namespace": namespace,
                                  "labels": template["metadata"].get("labels", {})},
                     "spec": template["spec"]})
    return pods


def test_pod_security_admits_every_app_pod_and_refuses_one_that_breaks_restricted(kube_api):
    namespace = kube_api.get("namespaces", "apps")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = _pods_from_templates("apps")
    assert {p["metadata"]["name"] for p in pods} >= {"backend-probe", "frontend-probe"}, pods
    for pod in pods:
        result = kube_api.apply_manifests([pod], "--dry-run=server")
        assert "Warning" not in result.stderr, (pod["metadata"]["name"], result.stderr)

    broken = copy.deepcopy(next(p for p in pods if p["metadata"]["name"] == "backend-probe"))
    container = broken["spec"]["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    container["securityContext"]["capabilities"] = {"add": ["NET_RAW"]}
    refused = kube_api.apply_manifests([broken], "--dry-run=server", check=False)
    print(refused.stderr.strip())
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr
    assert "allowPrivilegeEscalation != false" in refused.stderr and "NET_RAW" in refused.stderr


def _can_i(kube_api, service_account: str, verb: str, resource: str, namespace: str = "apps") -> bool:
    namespace_sa, name = service_account.split("/")
    result = kube_api.kubectl("auth", "can-i", verb, resource, f"--namespace={namespace}",
                              f"--as=system:serviceaccount:{namespace_sa}:{name}", check=False)
    assert result.stdout.strip() in ("yes", "no"), result.stdout + result.stderr
    return result.stdout.strip() == "yes"


def _granted(kube_api, service_account: str) -> dict[str, set[str]]:
    """`kubectl auth can-i --list` as the ServiceAccount: resource -> verbs, beyond what every
    authenticated user gets (self reviews, discovery)."""
    namespace_sa, name = service_account.split("/")
    listing = kube_api.kubectl("auth", "can-i", "--list", "--namespace=apps",
                               f"--as=system:serviceaccount:{namespace_sa}:{name}").stdout
    granted: dict[str, set[str]] = {}
    for line in listing.splitlines()[1:]:
        resource, rest = line.split(None, 1)
        verbs = set(re.findall(r"\[([^\]]*)\]\s*$", rest)[0].split())
        if resource.startswith("self") or resource.startswith("["):  # reviews; non-resource URLs
            continue
        granted[resource] = granted.get(resource, set()) | verbs
    return granted


@pytest.mark.parametrize("service_account", COLLECTORS)
def test_collector_service_accounts_read_what_k8s_attributes_needs_and_nothing_more(kube_api, service_account):
    for resource, group in READS:
        qualified = f"{resource}.{group}" if group else resource
        for verb in ("get", "list", "watch"):
            assert _can_i(kube_api, service_account, verb, qualified), (service_account, verb, qualified)
    for verb, resource in (("get", "secrets"), ("list", "secrets"), ("list", "configmaps"), ("create", "pods"),
                           ("delete", "pods"), ("patch", "namespaces"), ("create", "pods/exec"),
                           ("update", "replicasets.apps"), ("create", "serviceaccounts/token")):
        assert not _can_i(kube_api, service_account, verb, resource), (service_account, verb, resource)

    granted = _granted(kube_api, service_account)
    print(f"{service_account}: {dict(sorted((r, sorted(v)) for r, v in granted.items()))}")
    assert granted == {"pods": {"get", "list", "watch"}, "namespaces": {"get", "list", "watch"},
                       "replicasets.apps": {"get", "list", "watch"}}, granted


def test_the_sampling_tier_calls_no_api_and_is_granted_nothing(kube_api):
    """The gateway finds the sampling replicas through DNS (the headless Service), so the sampler
    mounts no token and its ServiceAccount (the namespace's default) may read nothing."""
    pod = kustomize.workload("StatefulSet", "otel-sampler", "observability")["spec"]["template"]["spec"]
    assert pod.get("automountServiceAccountToken") is False and "serviceAccountName" not in pod
    granted = _granted(kube_api, "observability/default")
    print(f"observability/default: {granted}")
    assert granted == {}, granted
    assert not _can_i(kube_api, "observability/default", "list", "endpointslices.discovery.k8s.io", "observability")
