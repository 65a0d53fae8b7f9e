"""Installs the Debian packages the harness runs, when a binary is missing (fresh CI machines)."""

from __future__ import annotations

import os
import shutil
import subprocess

from .procs import say

# binary -> Debian package
PACKAGES = {
    "mariadbd": "mariadb-server",
    "redis-server": "redis-server",
    "nginx": "nginx",
    "chromium": "chromium",
    "envsubst": "gettext-base",  # frontend/render-nginx-conf.sh
    "wrk": "wrk",  # benchmarks' load generator
}

# What the test cluster's node runs (devstack/cluster.py); the CNI plugins are found by path.
CLUSTER_PACKAGES = {
    "containerd": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "ipset": "ipset",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
}

_SEARCH_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def which(binary: str) -> str | None:
    return shutil.which(binary, path=_SEARCH_PATH)


def ensure(*binaries: str, packages_of: dict[str, str] = PACKAGES) -> None:
    missing = [b for b in binaries if which(b) is None]
    if not missing:
        return
    packages = sorted({packages_of[b] for b in missing})
    say(f"installing Debian packages {' '.join(packages)} (missing: {' '.join(missing)})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True, env=env)
    still = [b for b in binaries if which(b) is None]
    if still:
        raise RuntimeError(f"installed {packages} but {still} still not on PATH")


if __name__ == "__main__":
    ensure(*PACKAGES)
