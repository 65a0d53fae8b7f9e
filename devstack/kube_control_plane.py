"""The test cluster's kube-controller-manager and kube-scheduler (built from k8s.io/kubernetes,
tools/kubernetes), each authenticated as the user the built-in RBAC roles are for."""

from __future__ import annotations

from pathlib import Path

from . import builds
from .kube_apiserver import KubeApiServer
from .procs import Process, free_port

CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SCHEDULER_USER = "system:kube-scheduler"


def _component(binary: str, user: str, base_dir: Path, api: KubeApiServer, *flags: str) -> Process:
    kubeconfig = api.component_kubeconfig(user)
    return Process(binary, [
        builds.tool(binary),
        f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        # One of each: no leader election; their own HTTPS endpoints on loopback, on free ports.
        "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
        *flags, "--v=1",
    ], base_dir)


def controller_manager(base_dir: Path, api: KubeApiServer) -> Process:
    return _component(
        "kube-controller-manager", CONTROLLER_MANAGER_USER, base_dir, api,
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={api.pki / 'sa.key'}", f"--root-ca-file={api.pki / 'ca.crt'}",
        # The node's pod range is the CNI config's; nothing allocates CIDRs to nodes.
        "--allocate-node-cidrs=false",
        # One node that cannot be replaced: never evict its pods for a slow heartbeat.
        "--node-monitor-grace-period=120s",
    )


def scheduler(base_dir: Path, api: KubeApiServer) -> Process:
    return _component("kube-scheduler", SCHEDULER_USER, base_dir, api)
