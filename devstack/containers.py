"""The images from `make images`, run by podman with runc under exactly what their pod spec declares,
so that a manifest change that breaks its image fails in tests/test_images.py (images/README.md)."""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from . import kustomize
from .kustomize import quantity_bytes
from .procs import REPO, free_port, say

# slirp4netns maps this address to the host's 127.0.0.1 (allow_host_loopback).
HOST_ADDRESS = "198.18.70.2"
NETWORK = "slirp4netns:cidr=198.18.70.0/24,allow_host_loopback=true"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
STACK_CACHE = Path(os.environ.get("STACK_CACHE") or Path.home() / ".cache" / "otel-stack")


@functools.cache
def podman_env() -> dict[str, str]:
    """Builds the images (cached by podman's layers; seconds when nothing changed) and returns the
    podman settings images/build.sh used."""
    say("make images: otel-stack/{backend,frontend,collector}:dev with podman (cold: a few minutes)")
    out = subprocess.run(["bash", "images/build.sh"], cwd=REPO, check=True, stdout=subprocess.PIPE, text=True,
                         timeout=3600)
    return dict(pair.split("=", 1) for pair in out.stdout.strip().splitlines()[-1].split())


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", *args], env={**os.environ, **podman_env()}, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} ... failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _config_data(namespace: str, name: str, entry: str) -> dict[str, Any]:
    (found,) = [o for o in kustomize.render(entry) if o["kind"] in ("ConfigMap", "Secret")
                and o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace]
    if found["kind"] == "Secret":
        return {k: base64.b64decode(v).decode() for k, v in found.get("data", {}).items()}
    return found.get("data", {})


@dataclass
class PodIdentity:
    """What the downward API would say about the pod (fieldRef)."""
    name: str
    namespace: str
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    node: str = "node-1"
    service_account: str = "default"

    def field(self, path: str) -> str:
        return {"metadata.name": self.name, "metadata.namespace": self.namespace, "metadata.uid": self.uid,
                "spec.nodeName": self.node, "spec.serviceAccountName": self.service_account,
                "status.podIP": "198.18.70.100", "status.hostIP": HOST_ADDRESS}[path]


class PodContainer:
    """One container of a workload's pod template, run as the kubelet would run it."""

    def __init__(self, base_dir: Path, manifest: dict[str, Any], container: str, *, entry: str = "default",
                 env: dict[str, str] | None = None, host_paths: dict[str, Path] | None = None,
                 kube=None, image: str | None = None):
        self.base_dir = Path(base_dir)
        self.manifest = manifest
        self.namespace = manifest["metadata"]["namespace"]
        self.pod_spec = manifest["spec"]["template"]["spec"]
        self.spec = next(c for c in self.pod_spec.get("initContainers", []) + self.pod_spec["containers"]
                         if c["name"] == container)
        self.entry = entry
        self.pod = PodIdentity(f"{manifest['metadata']['name']}-{uuid.uuid4().hex[:5]}", self.namespace,
                               service_account=self.pod_spec.get("serviceAccountName", "default"))
        self.env_overrides = dict(env or {})
        self.host_paths = dict(host_paths or {})
        self.kube = kube
        self.image = image or self.spec["image"]
        self.name = f"stack-tests-{self.pod.name}-{container}"
        self.ports = {p["containerPort"]: free_port() for p in self.spec.get("ports", [])}
        self.started = False

    # What the pod spec says, as podman flags ---------------------------------------------------------
    def security(self) -> dict[str, Any]:
        """The pod's securityContext overlaid with the container's, as the kubelet merges them."""
        return {**self.pod_spec.get("securityContext", {}), **self.spec.get("securityContext", {})}

    def _user_flags(self, sc: dict[str, Any]) -> list[str]:
        uid = sc.get("runAsUser")
        if uid is None:
            user = podman("image", "inspect", "--format", "{{.Config.User}}", self.image).stdout.strip()
            uid = int(user.split(":")[0]) if user.split(":")[0].isdigit() else None
            if sc.get("runAsNonRoot") and uid is None:
                raise RuntimeError(f"{self.image}: runAsNonRoot needs a numeric USER, the image has {user!r}")
        if sc.get("runAsNonRoot") and uid == 0:
            raise RuntimeError(f"{self.name}: runAsNonRoot, but the container would run as uid 0")
        flags = [] if uid is None else [f"--user={uid}:{sc.get('runAsGroup', uid)}"]
        if "fsGroup" in self.pod_spec.get("securityContext", {}):
            flags.append(f"--group-add={self.pod_spec['securityContext']['fsGroup']}")
        return flags

    def _security_flags(self) -> list[str]:
        sc = self.security()
        flags = self._user_flags(sc)
        if sc.get("readOnlyRootFilesystem"):
            flags += ["--read-only", "--read-only-tmpfs=false"]
        caps = sc.get("capabilities", {})
        flags += [f"--cap-drop={c}" for c in caps.get("drop", [])] + [f"--cap-add={c}" for c in caps.get("add", [])]
        if sc.get("allowPrivilegeEscalation") is False:
            flags.append("--security-opt=no-new-privileges")
        # No seccompProfile means Unconfined in Kubernetes; RuntimeDefault is the runtime's profile.
        if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            flags.append("--security-opt=seccomp=unconfined")
        limits = self.spec.get("resources", {}).get("limits", {})
        if "memory" in limits:
            flags.append(f"--memory={quantity_bytes(limits['memory'])}")
        if "cpu" in limits:
            cpu = limits["cpu"]
            flags.append(f"--cpus={int(cpu[:-1]) / 1000 if cpu.endswith('m') else float(cpu)}")
        return flags

    def _volume_flags(self) -> list[str]:
        volumes = {v["name"]: v for v in self.pod_spec.get("volumes", [])}
        # A StatefulSet's claim templates become the pod's claims of the same volume name.
        for template in self.manifest["spec"].get("volumeClaimTemplates", []):
            name = template["metadata"]["name"]
            volumes[name] = {"name": name, "persistentVolumeClaim": {"claimName": f"{name}-{self.pod.name}"}}
        flags = []
        for mount in self.spec.get("volumeMounts", []):
            volume, target = volumes[mount["name"]], mount["mountPath"]
            read_only = bool(mount.get("readOnly"))
            if "emptyDir" in volume:
                size = volume["emptyDir"].get("sizeLimit")
                if volume["emptyDir"].get("medium") == "Memory":
                    flags.append(f"--mount=type=tmpfs,destination={target},tmpfs-mode=1777"
                                 + (f",tmpfs-size={quantity_bytes(size)}" if size else ""))
                    continue
                source = self.base_dir / f"{self.name}-{mount['name']}"
                source.mkdir(parents=True, exist_ok=True)
                source.chmod(0o777)  # as the kubelet makes an emptyDir
            elif "configMap" in volume or "secret" in volume:
                ref = volume.get("configMap", {}).get("name") or volume["secret"]["secretName"]
                source = self.base_dir / f"{self.name}-{mount['name']}"
                source.mkdir(parents=True, exist_ok=True)
                for key, text in _config_data(self.namespace, ref, self.entry).items():
                    (source / key).write_text(text)
                read_only = True  # the kubelet mounts ConfigMaps and Secrets read-only
            elif "hostPath" in volume or "persistentVolumeClaim" in volume:
                source = self.host_paths[mount["name"]]
                group = self.pod_spec.get("securityContext", {}).get("fsGroup")
                if "persistentVolumeClaim" in volume and group is not None:
                    # fsGroup: the kubelet makes the volume the group's, setgid, group-writable.
                    os.chown(source, 0, group)
                    source.chmod(0o2775)
            else:
                raise RuntimeError(f"volume type of {mount['name']} not handled: {sorted(volume)}")
            flags.append(f"--volume={source}:{target}" + (":ro" if read_only else ""))
        if self.pod_spec.get("automountServiceAccountToken", True) and self.kube is not None:
            flags.append(f"--volume={self._service_account_dir()}:{SERVICE_ACCOUNT_DIR}:ro")
        return flags

    def _service_account_dir(self) -> Path:
        """What the kubelet projects: a token of the pod's ServiceAccount, the cluster CA, the namespace."""
        source = self.base_dir / f"{self.name}-serviceaccount"
        source.mkdir(parents=True, exist_ok=True)
        (source / "token").write_text(self.kube.service_account_token(f"{self.namespace}/{self.pod.service_account}"))
        (source / "ca.crt").write_text((self.kube.pki / "ca.crt").read_text())
        (source / "namespace").write_text(self.namespace)
        for f in source.iterdir():
            f.chmod(0o644)
        return source

    def environment(self) -> dict[str, str]:
        """The env the kubelet would give: envFrom, then env (fieldRef, ConfigMap and Secret keys,
        $(VAR) expansion), then the Service variables of the API server, then the test's overrides."""
        env: dict[str, str] = {}
        for source in self.spec.get("envFrom", []):
            ref = source.get("configMapRef") or source.get("secretRef")
            env.update(_config_data(self.namespace, ref["name"], self.entry))
        for var in self.spec.get("env", []):
            if "value" in var:
                env[var["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                                          lambda m: env.get(m.group(1), m.group(0)), var["value"])
                continue
            ref = var["valueFrom"]
            if "fieldRef" in ref:
                env[var["name"]] = self.pod.field(ref["fieldRef"]["fieldPath"])
            elif "configMapKeyRef" in ref or "secretKeyRef" in ref:
                key_ref = ref.get("configMapKeyRef") or ref["secretKeyRef"]
                env[var["name"]] = _config_data(self.namespace, key_ref["name"], self.entry)[key_ref["key"]]
            elif "resourceFieldRef" in ref:
                env[var["name"]] = str(quantity_bytes(self.spec["resources"]["limits"]["memory"]))
        if self.kube is not None:
            env.update(KUBERNETES_SERVICE_HOST=HOST_ADDRESS, KUBERNETES_SERVICE_PORT=str(self.kube.port))
        env.update(self.env_overrides)
        return env

    def argv(self) -> list[str]:
        argv = ["run", "--detach", f"--name={self.name}", f"--network={NETWORK}", "--pull=never",
                f"--hostname={self.pod.name}"]
        argv += [f"--publish=127.0.0.1:{host}:{port}" for port, host in self.ports.items()]
        argv += self._security_flags() + self._volume_flags()
        env_file = self.base_dir / f"{self.name}.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in self.environment().items()))
        argv.append(f"--env-file={env_file}")
        if "command" in self.spec:
            argv.append(f"--entrypoint={json.dumps(self.spec['command'])}")
        return argv + [self.image, *self.spec.get("args", [])]

    # Running it ------------------------------------------------------------------------------------
    def start(self, ready_timeout: float = 60, probe_kind: str = "readinessProbe") -> "PodContainer":
        """Runs it and waits for the manifest's probe (livenessProbe for a pod that cannot be ready)."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        podman(*self.argv())
        self.started = True
        probe = self.spec.get(probe_kind, {}).get("httpGet")
        if probe:
            deadline = time.monotonic() + ready_timeout
            while not self._probe_ok(probe):
                if time.monotonic() > deadline or not self.running():
                    raise RuntimeError(f"{self.name} not ready ({probe['path']}); logs:\n{self.logs()[-3000:]}")
                time.sleep(0.3)
        return self

    def _probe_ok(self, probe: dict[str, Any]) -> bool:
        port = probe["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in self.spec["ports"] if p.get("name") == port)
        try:
            return requests.get(f"http://127.0.0.1:{self.ports[port]}{probe['path']}", timeout=2).status_code < 400
        except requests.RequestException:
            return False

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def wait(self, timeout: float = 120) -> int:
        """For a container that runs to completion (an init container): its exit code."""
        return int(podman("wait", self.name, timeout=timeout).stdout.strip())

    def pid(self) -> int:
        return int(podman("inspect", "--format", "{{.State.Pid}}", self.name).stdout.strip())

    def process_status(self) -> dict[str, str]:
        """/proc/<pid>/status of the container's first process, as the kernel sees it."""
        lines = Path(f"/proc/{self.pid()}/status").read_text().splitlines()
        return {k: v.strip() for k, v in (line.split(":", 1) for line in lines)}

    def memory_limit_bytes(self) -> int:
        cgroup = next(line.split(":", 2)[2] for line in Path(f"/proc/{self.pid()}/cgroup").read_text().splitlines()
                      if line.split(":", 2)[1] in ("memory", ""))
        for candidate in (Path("/sys/fs/cgroup/memory") / cgroup.lstrip("/") / "memory.limit_in_bytes",
                          Path("/sys/fs/cgroup") / cgroup.lstrip("/") / "memory.max"):
            if candidate.exists():
                return int(candidate.read_text().strip())
        raise RuntimeError(f"no memory cgroup found for {self.name} ({cgroup})")

    def read_only_root(self) -> bool:
        return podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", self.name).stdout.strip() == "true"

    def exec(self, *argv: str) -> subprocess.CompletedProcess:
        return podman("exec", self.name, *argv, check=False)

    def logs(self) -> str:
        proc = podman("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def stop(self) -> None:
        if self.started:
            podman("rm", "--force", "--time=5", self.name, check=False)
            self.started = False

