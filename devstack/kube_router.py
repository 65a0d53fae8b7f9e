"""kube-router's NetworkPolicy controller on the test node, and nothing else of kube-router (the bridge
CNI routes, kube-proxy serves Services): the stack's NetworkPolicies are enforced with iptables and
ipsets. A test-cluster component only: v2.1.0 has reported security flaws (tests/README.md)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from . import builds
from .cluster_network import NODE_NAME
from .kube_apiserver import SERVICE_CIDR, KubeApiServer
from .procs import REPO, Process, say

USER = "stack-tests:kube-router"
# Read-only access to what it enforces from (namespaces, pods, policies, nodes, Services).
RBAC = REPO / "tests" / "cluster" / "kube-router.yaml"


class KubeRouter:
    def __init__(self, base_dir: Path, api: KubeApiServer):
        self.base_dir = Path(base_dir)
        self.api = api
        argv = [builds.tool("kube-router"), f"--kubeconfig={api.component_kubeconfig(USER)}",
                f"--hostname-override={NODE_NAME}", f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--run-firewall=true", "--run-router=false", "--run-service-proxy=false", "--enable-cni=false",
                "--health-port=0", "--v=1"]
        # Ready once its first full sync has written the chain every forwarded packet passes.
        self.process = Process("kube-router", argv, self.base_dir, ready=_forward_chain_written, ready_timeout=120)

    def start(self) -> "KubeRouter":
        self.api.kubectl("apply", "--server-side", "-f", str(RBAC))
        say("starting kube-router (its NetworkPolicy controller only; built from github.com/cloudnativelabs/kube-router)")
        self.process.start()
        return self

    def stop(self) -> None:
        # Not `kube-router --cleanup-config`: it also deletes every IPVS service of the machine (and
        # v2.1.0 then crashes). The node network's teardown restores iptables and drops its ipsets.
        self.process.stop()


def _forward_chain_written() -> bool:
    listed = subprocess.run(["iptables", "-t", "filter", "-S", "KUBE-ROUTER-FORWARD"], capture_output=True, text=True)
    return listed.returncode == 0 and len(listed.stdout.splitlines()) > 1
