"""containerd (Debian's) as the test node's container runtime, with runc and the CNI plugins, all under
the run's own directory; the images come from `make cluster-images`, so the kubelet never pulls."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from .cluster_network import POD_BRIDGE, POD_CIDR, unmount_below
from .procs import Process, say

CNI_BIN_DIR = "/usr/lib/cni"
SANDBOX_IMAGE = "localhost/stack-cluster/pause:dev"


class Containerd:
    def __init__(self, base_dir: Path):
        self.base_dir = Path(base_dir)
        self.socket = self.base_dir / "containerd.sock"
        self.cni_conf_dir = self.base_dir / "cni" / "net.d"
        config = self.base_dir / "config.toml"
        self._config = config
        self.process = Process("containerd", ["containerd", f"--config={config}"], self.base_dir,
                               ready=self._ready, ready_timeout=60)

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def _write_config(self) -> None:
        b = self.base_dir
        self._config.write_text(f"""\
version = 2
root = "{b / 'root'}"
state = "{b / 'state'}"

[grpc]
  address = "{self.socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{b / 'opt'}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  enable_unprivileged_ports = true
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{self.cni_conf_dir}"
""")
        self.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        # One bridge, host-local addresses; the node is the pods' gateway and nothing is masqueraded.
        (self.cni_conf_dir / "10-stack-pods.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": "stack-pods",
            "plugins": [
                {"type": "bridge", "bridge": POD_BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]],
                          "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(b / "cni" / "ipam")}},
                {"type": "loopback"},
            ],
        }, indent=2))

    def _ready(self) -> bool:
        return self.ctr("version", check=False).returncode == 0

    def ctr(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run(["ctr", f"--address={self.socket}", "--namespace=k8s.io", *args],
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def start(self) -> "Containerd":
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        say("starting containerd (Debian's, with runc and the CNI bridge)")
        self.process.start()
        return self

    def import_images(self, index: Path) -> list[str]:
        """Imports every archive `images/cluster.sh` listed, each under its reference."""
        refs = []
        for line in index.read_text().splitlines():
            ref, archive = line.split()
            self.ctr("images", "import", archive)
            refs.append(ref)
        present = set(self.ctr("images", "list", "--quiet").stdout.split())
        missing = [ref for ref in refs if ref not in present]
        if missing:
            raise RuntimeError(f"not in containerd after import: {missing}; present: {sorted(present)}")
        return refs

    def stop(self) -> None:
        """Stops containerd and whatever of its containers is still running (their shims outlive it)."""
        self.process.stop()
        for pid in self._shim_pids():
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        unmount_below(self.base_dir)

    def _shim_pids(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(b"containerd-shim-runc-v2") and str(self.socket).encode() in cmdline:
                pids.append(int(entry.name))
        return pids
