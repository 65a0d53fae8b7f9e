"""The kubelet of the test cluster's one node: it runs pods through containerd's CRI and writes their
logs to /var/log/pods as on any node, where the agent DaemonSet reads them."""

from __future__ import annotations

import json
from pathlib import Path

from . import builds
from .cluster_network import DNS_SERVICE_IP, NODE_ADDRESS, NODE_NAME, unmount_below
from .containerd import Containerd
from .kube_apiserver import KubeApiServer, issue_certificate
from .procs import Process, free_port, http_ok, say

USER = f"system:node:{NODE_NAME}"


class Kubelet:
    def __init__(self, base_dir: Path, api: KubeApiServer, containerd: Containerd):
        self.base_dir = Path(base_dir)
        self.root_dir = self.base_dir / "root"
        self.api = api
        self.containerd = containerd
        self.healthz_port = free_port()
        self.config = self.base_dir / "kubelet-config.json"
        self.process = Process("kubelet", self._argv(), self.base_dir, ready_timeout=120,
                               ready=lambda: http_ok(f"http://127.0.0.1:{self.healthz_port}/healthz"))

    def _argv(self) -> list[str]:
        return [
            builds.tool("kubelet"),
            f"--config={self.config}",
            f"--kubeconfig={self.api.component_kubeconfig(USER)}",
            f"--root-dir={self.root_dir}",
            f"--cert-dir={self.base_dir / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_ADDRESS}",
            # Its cAdvisor labels a container's series with its pod, namespace and container name by
            # asking containerd, by default at /run/containerd: this run's is elsewhere. (The flag is
            # deprecated in favour of stats from the CRI, but is what cAdvisor still reads.)
            f"--containerd={self.containerd.socket}",
            "--v=1",
        ]

    def _write_config(self) -> None:
        # Pods' resolv.conf: the cluster DNS only; nothing of the machine's own resolvers or domains.
        resolv = self.base_dir / "resolv.conf"
        resolv.write_text("")
        self.config.write_text(json.dumps({
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": NODE_ADDRESS, "port": 10250, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": self.healthz_port,
            # As kubeadm sets it: the API server's client certificate, or a bearer token (metrics-server's)
            # that the API server reviews, with the caller's RBAC deciding (nodes/metrics, nodes/proxy).
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(self.api.pki / "ca.crt")}},
            "authorization": {"mode": "Webhook"},
            # Served with a certificate from the cluster's CA (what pods find in their ServiceAccount's
            # ca.crt), so metrics-server verifies the kubelet instead of skipping TLS verification.
            "tlsCertFile": str(self.base_dir / "pki" / "kubelet.crt"),
            "tlsPrivateKeyFile": str(self.base_dir / "pki" / "kubelet.key"),
            "containerRuntimeEndpoint": self.containerd.endpoint,
            "clusterDNS": [DNS_SERVICE_IP], "clusterDomain": "cluster.local", "resolvConf": str(resolv),
            "cgroupDriver": "cgroupfs", "failCgroupV1": False, "failSwapOn": False, "oomScoreAdj": 0,
            "protectKernelDefaults": False,
            "staticPodPath": "", "serializeImagePulls": False,
            # The machine's disk is shared with everything else: no image GC or eviction on its fill.
            "imageGCHighThresholdPercent": 100, "evictionHard": {"memory.available": "100Mi"},
            "syncFrequency": "10s", "fileCheckFrequency": "10s",
        }, indent=2))

    def start(self) -> "Kubelet":
        (self.base_dir / "pki").mkdir(parents=True, exist_ok=True)
        issue_certificate(self.base_dir / "pki", "kubelet", f"/CN={NODE_NAME}",
                          f"subjectAltName=IP:{NODE_ADDRESS},DNS:{NODE_NAME}", "extendedKeyUsage=serverAuth",
                          ca=self.api.pki / "ca")
        self._write_config()
        say(f"starting the kubelet of node {NODE_NAME} ({NODE_ADDRESS})")
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop(timeout=20)
        unmount_below(self.root_dir)
