"""kube-proxy in iptables mode on the test node, so that Service ClusterIPs reach their pods from pods
and from the node itself (the browser test opens the frontend's Service from here)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from . import builds
from .cluster_network import NODE_ADDRESS, NODE_NAME, POD_CIDR
from .kube_apiserver import KubeApiServer
from .procs import Process, free_port, http_ok, say

USER = "system:kube-proxy"


class KubeProxy:
    def __init__(self, base_dir: Path, api: KubeApiServer):
        self.base_dir = Path(base_dir)
        self.healthz_port = free_port()
        self.config = self.base_dir / "kube-proxy-config.json"
        self.config_doc = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(api.component_kubeconfig(USER))},
            "mode": "iptables", "clusterCIDR": POD_CIDR, "hostnameOverride": NODE_NAME,
            "bindAddress": NODE_ADDRESS,
            "healthzBindAddress": f"127.0.0.1:{self.healthz_port}", "metricsBindAddress": f"127.0.0.1:{free_port()}",
            "nodePortAddresses": [f"{NODE_ADDRESS}/32"],
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        }
        self.process = Process("kube-proxy", [builds.tool("kube-proxy"), f"--config={self.config}", "--v=1"],
                               self.base_dir, ready=lambda: http_ok(f"http://127.0.0.1:{self.healthz_port}/healthz"))

    def start(self) -> "KubeProxy":
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(json.dumps(self.config_doc, indent=2))
        say("starting kube-proxy (iptables mode)")
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop()
        subprocess.run([builds.tool("kube-proxy"), f"--config={self.config}", "--cleanup"],
                       capture_output=True, timeout=60)
