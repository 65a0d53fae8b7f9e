"""A single-node Kubernetes on this machine, every part real and built from pinned sources, so that
`make cluster-test` runs the stack as `kubectl apply -k` deploys it. How it differs from a real
cluster: tests/README.md, "The test cluster"."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from . import kube_control_plane, kube_proxy, kube_router, kubelet, kustomize, system_packages
from .cluster_network import (KUBERNETES_SERVICE_IP, NODE_ADDRESS, NODE_NAME, NodeNetwork, remove_kubepods_cgroups,
                              unmount_below)
from .containerd import Containerd
from .kube_apiserver import KubeApiServer
from .kube_proxy import KubeProxy
from .kube_router import KubeRouter
from .kubelet import Kubelet
from .procs import REPO, say, wait_until

COREDNS = REPO / "tests" / "cluster" / "coredns.yaml"
METRICS_SERVER = REPO / "tests" / "cluster" / "metrics-server.yaml"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def cluster_images() -> Path:
    """`make cluster-images`: builds what is missing and returns the index of image archives."""
    say("make cluster-images: stand-ins, pause, CoreDNS and metrics-server for the test cluster (cold: several minutes)")
    out = subprocess.run(["bash", "images/cluster.sh"], cwd=REPO, check=True, stdout=subprocess.PIPE, text=True,
                         timeout=3600)
    return Path(out.stdout.strip().splitlines()[-1])


class Cluster:
    def __init__(self, base_dir: Path):
        self.base_dir = Path(base_dir)
        self.network = NodeNetwork()
        self.api = KubeApiServer(self.base_dir / "control-plane", node_address=NODE_ADDRESS,
                                 service_ip=KUBERNETES_SERVICE_IP)
        self.api.add_component_user(kube_control_plane.CONTROLLER_MANAGER_USER)
        self.api.add_component_user(kube_control_plane.SCHEDULER_USER)
        self.api.add_component_user(kube_proxy.USER)
        self.api.add_component_user(kube_router.USER)
        self.api.add_component_user(kubelet.USER, "system:nodes")
        self.containerd = Containerd(self.base_dir / "containerd")
        self.volumes_dir = self.base_dir / "volumes"
        self._started: list[Any] = []
        self.applied: list[dict[str, Any]] = []

    # Start ------------------------------------------------------------------------------------------
    def start(self) -> "Cluster":
        t0 = time.monotonic()
        try:
            system_packages.ensure(*system_packages.CLUSTER_PACKAGES, packages_of=system_packages.CLUSTER_PACKAGES)
            index = cluster_images()
            self._started.append(self.network.setup())
            self._started.append(self.api.start())
            say("starting kube-controller-manager and kube-scheduler")
            self._started.append(kube_control_plane.controller_manager(self.base_dir / "control-plane", self.api).start())
            self._started.append(kube_control_plane.scheduler(self.base_dir / "control-plane", self.api).start())
            self._started.append(self.containerd.start())
            self.containerd.import_images(index)
            self._started.append(Kubelet(self.base_dir / "kubelet", self.api, self.containerd).start())
            self._started.append(KubeProxy(self.base_dir / "kube-proxy", self.api).start())
            wait_until(self._node_ready, 120, f"node {NODE_NAME} Ready", interval=1)
            self._started.append(KubeRouter(self.base_dir / "kube-router", self.api).start())
            self.api.kubectl("apply", "--server-side", "-f", str(COREDNS), "-f", str(METRICS_SERVER))
            # metrics-server becomes ready while the stack rolls out; only the autoscaler test needs it.
            self.wait_for_rollout("Deployment", "coredns", "kube-system", timeout=120)
        except BaseException:
            self.stop()
            raise
        say(f"test cluster up in {time.monotonic() - t0:.0f} s")
        return self

    def _node_ready(self) -> bool:
        node = self.api.get("nodes", NODE_NAME)
        return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))

    # The stack ----------------------------------------------------------------------------------------
    def apply_stack(self, directory: Path, timeout: float = 600) -> float:
        """`kubectl apply -k directory` (server-side), then waits for every workload's rollout.
        Returns the seconds from apply to all ready."""
        docs = list(kustomize.render_directory(directory))
        self.prepare_volumes(docs)
        t0 = time.monotonic()
        self.api.kubectl("apply", "--server-side", "--field-manager=stack-tests", "-k", str(directory), timeout=120)
        self.applied = docs
        for doc in docs:
            if doc["kind"] in WORKLOAD_KINDS:
                meta = doc["metadata"]
                self.wait_for_rollout(doc["kind"], meta["name"], meta["namespace"],
                                      timeout=max(30.0, timeout - (time.monotonic() - t0)))
        return time.monotonic() - t0

    def wait_for_rollout(self, kind: str, name: str, namespace: str, timeout: float) -> None:
        proc = self.api.kubectl("rollout", "status", f"{kind.lower()}/{name}", "-n", namespace,
                                f"--timeout={int(timeout)}s", check=False, timeout=timeout + 30)
        if proc.returncode != 0:
            raise AssertionError(f"{kind} {namespace}/{name} did not roll out: {proc.stderr.strip()}\n"
                                 + self.describe_pods(namespace))

    def describe_pods(self, namespace: str) -> str:
        """What a person would look at first when a rollout hangs: pod phases, events, last logs."""
        pods = self.api.kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
        events = self.api.kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False).stdout
        return f"pods:\n{pods}\nevents (last 40):\n" + "\n".join(events.splitlines()[-40:])

    def prepare_volumes(self, docs: list[dict[str, Any]]) -> None:
        """A hostPath PersistentVolume for each claim the stack will make, pre-bound to it by claimRef."""
        volumes = []
        for claim, owner in _claims(docs):
            namespace, name = claim["metadata"]["namespace"], claim["metadata"]["name"]
            path = self.volumes_dir / f"{namespace}-{name}"
            path.mkdir(parents=True, exist_ok=True)
            shutil.chown(path, *owner)
            path.chmod(0o770)
            volumes.append({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": f"{namespace}-{name}"},
                "spec": {
                    "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
                    "accessModes": claim["spec"]["accessModes"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "claimRef": {"namespace": namespace, "name": name},
                    "hostPath": {"path": str(path), "type": "Directory"},
                },
            })
        self.api.apply_manifests(volumes)

    # Stop ---------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Deletes what was applied (so the kubelet stops every pod and CNI releases its address),
        then stops each component in reverse order and puts the machine back."""
        if any(isinstance(c, Kubelet) for c in self._started):
            self._delete_pods()
        for component in reversed(self._started):
            try:
                if isinstance(component, NodeNetwork):
                    component.teardown()
                else:
                    component.stop()
            except Exception as exc:  # noqa: BLE001 - the rest must still be stopped
                say(f"stopping {type(component).__name__}: {exc}")
        self._started.clear()
        unmount_below(self.base_dir)
        remove_kubepods_cgroups()

    def _delete_pods(self) -> None:
        try:
            namespaces = {d["metadata"].get("namespace") for d in self.applied} - {None}
            for namespace in sorted(namespaces | {"kube-system"}):
                for kind in WORKLOAD_KINDS:
                    self.api.kubectl("delete", kind.lower(), "--all", "-n", namespace, "--wait=false", check=False)
            wait_until(lambda: not json.loads(self.api.kubectl("get", "pods", "-A", "-o", "json").stdout)["items"],
                       120, "every pod deleted", interval=1)
        except Exception as exc:  # noqa: BLE001 - stopping goes on; containerd's shims are killed after
            say(f"deleting the pods: {exc}")


def _claims(docs: list[dict[str, Any]]):
    """(claim, (uid, gid)) for every PersistentVolumeClaim the rendered stack creates or will create:
    its own claims and its StatefulSets' volumeClaimTemplates, with the user of the pod mounting it."""
    by_name = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d
               for d in docs if d["kind"] == "PersistentVolumeClaim"}
    for doc in docs:
        if doc["kind"] not in WORKLOAD_KINDS:
            continue
        pod = doc["spec"]["template"]["spec"]
        context = pod.get("securityContext", {})
        owner = (context.get("runAsUser", 0), context.get("fsGroup", context.get("runAsGroup", 0)))
        namespace = doc["metadata"]["namespace"]
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                yield by_name[(namespace, volume["persistentVolumeClaim"]["claimName"])], owner
        for template in doc["spec"].get("volumeClaimTemplates", []):
            for ordinal in range(doc["spec"].get("replicas", 1)):
                claim = json.loads(json.dumps(template))
                claim["metadata"] = {"namespace": namespace,
                                     "name": f"{template['metadata']['name']}-{doc['metadata']['name']}-{ordinal}"}
                yield claim, owner
