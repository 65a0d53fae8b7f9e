"""The test cluster's network on this machine (test address ranges on interfaces made here, nothing
routed beyond them), and putting the machine back as it was found (tests/README.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .kube_apiserver import SERVICE_CIDR
from .procs import say

NODE_NAME = "stack-node"
NODE_BRIDGE = "stk-node0"
NODE_ADDRESS = "192.0.2.10"
POD_BRIDGE = "stk-cni0"
POD_CIDR = "198.18.128.0/24"
KUBERNETES_SERVICE_IP = "198.19.0.1"
DNS_SERVICE_IP = "198.19.0.10"

# What the kubelet (overcommit, panic settings: protectKernelDefaults is off) and kube-proxy
# (bridge netfilter, forwarding, local routing) may set, and what pods need (forwarding).
SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops", "net.ipv4.ip_forward",
           "net.bridge.bridge-nf-call-iptables", "net.ipv4.conf.all.route_localnet",
           "net.netfilter.nf_conntrack_max")
# Directories the kubelet and the shipped DaemonSet's hostPath volumes create on the node.
HOST_DIRS = (Path("/var/log/pods"), Path("/var/log/containers"), Path("/var/lib/otelcol-agent"))
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _run(*argv: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True, input=stdin, timeout=60)


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


class NodeNetwork:
    def __init__(self) -> None:
        self._sysctls: dict[str, str] = {}
        # iptables and ip6tables (kube-proxy writes both where IPv6 is on): what iptables-save printed.
        self._rules: dict[str, str] = {}
        # ipsets that existed before (the policy agent adds its own).
        self._ipsets: set[str] = set()
        self._absent_dirs: list[Path] = []

    def setup(self) -> "NodeNetwork":
        say(f"node network: bridge {NODE_BRIDGE} with {NODE_ADDRESS}; pods on {POD_CIDR}, Services on {SERVICE_CIDR}")
        # A run that was killed before its teardown left these: take them away first.
        self._remove_links()
        for name in SYSCTLS:
            if _sysctl_path(name).exists():
                self._sysctls[name] = _sysctl_path(name).read_text().strip()
        for family in ("iptables", "ip6tables"):
            saved = _run(f"{family}-save", check=False)
            if saved.returncode == 0:
                self._rules[family] = saved.stdout
        self._ipsets = _ipsets()
        self._absent_dirs = [d for d in HOST_DIRS if not d.exists()]
        _run("ip", "link", "add", NODE_BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{NODE_ADDRESS}/24", "dev", NODE_BRIDGE)
        _run("ip", "link", "set", NODE_BRIDGE, "up")
        # Service addresses lead to the node's bridge, not out of the machine by its default route: a
        # connection made before kube-proxy has written a Service's rules (the API server's first
        # check of an aggregated API) fails here instead of reaching whatever answers outside, and
        # stays connected there after the rules exist. The route goes with the bridge.
        _run("ip", "route", "add", SERVICE_CIDR, "dev", NODE_BRIDGE)
        # Pod to Service to pod crosses the node's routing: forwarding on, bridged traffic through iptables.
        _sysctl_path("net.ipv4.ip_forward").write_text("1")
        _sysctl_path("net.bridge.bridge-nf-call-iptables").write_text("1")
        return self

    def teardown(self) -> None:
        say("node network: restoring iptables, sysctls and interfaces as they were")
        self._remove_links()
        for family, rules in self._rules.items():
            # The snapshot's tables come back exactly; tables that did not exist are emptied.
            _run(f"{family}-restore", stdin=rules, check=False)
            before = {line[1:] for line in rules.splitlines() if line.startswith("*")}
            for table in {"nat", "filter", "mangle", "raw"} - before:
                _run(family, "-t", table, "-F", check=False)
                _run(family, "-t", table, "-X", check=False)
        # Once no rule refers to them.
        for name in _ipsets() - self._ipsets:
            _run("ipset", "destroy", name, check=False)
        for name, value in self._sysctls.items():
            try:
                _sysctl_path(name).write_text(value)
            except OSError as exc:
                say(f"could not restore {name}={value}: {exc}")
        for directory in self._absent_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        remove_kubepods_cgroups()

    @staticmethod
    def _remove_links() -> None:
        for link in (POD_BRIDGE, NODE_BRIDGE):
            _run("ip", "link", "del", link, check=False)


def _ipsets() -> set[str]:
    if not shutil.which("ipset", path="/usr/sbin:/sbin:/usr/bin"):
        return set()
    return set(_run("ipset", "list", "-n", check=False).stdout.split())


def remove_kubepods_cgroups() -> None:
    """The kubelet's kubepods cgroups in every v1 hierarchy, deepest first (rmdir of empty cgroups)."""
    for hierarchy in CGROUP_ROOT.iterdir() if CGROUP_ROOT.exists() else ():
        top = hierarchy / "kubepods"
        if not top.is_dir():
            continue
        for cgroup in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                cgroup.rmdir()
            except OSError:
                pass
        try:
            top.rmdir()
        except OSError as exc:
            say(f"cgroup {top} left in place: {exc}")


def unmount_below(directory: Path) -> None:
    """Whatever is still mounted under `directory` (overlay root filesystems, shm, the kubelet's
    volumes), lazily unmounted, deepest first."""
    prefix = str(directory.resolve()) + "/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        _run("umount", "-l", mount, check=False)
