"""A real kube-apiserver over a real etcd, on loopback, so that k8s/ meets the authentication, RBAC
and admission a cluster enforces; no controller or kubelet runs (tests/README.md, "The harness")."""

from __future__ import annotations

import copy
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import requests

from . import builds, kustomize
from .containers import HOST_ADDRESS
from .etcd import Etcd
from .procs import Process, free_port, say

# Service addresses in the benchmarking range (RFC 2544), like the pods' 198.18.0.x: never routed.
SERVICE_CIDR = "198.19.0.0/16"
_NAMESPACED = {"pods": "/api/v1", "replicasets": "/apis/apps/v1", "serviceaccounts": "/api/v1", "services": "/api/v1",
               "secrets": "/api/v1",
               "persistentvolumeclaims": "/api/v1", "deployments": "/apis/apps/v1"}
_CLUSTER = {"namespaces": "/api/v1", "nodes": "/api/v1"}
# Written by the API server; an apply that names them is refused or ignored.
_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


FRONT_PROXY_CLIENT = "front-proxy-client"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def issue_certificate(directory: Path, name: str, subject: str, *extensions: str, ca: str | Path = "ca") -> None:
    """<name>.crt and <name>.key in `directory`, signed by <ca>.crt and <ca>.key (a path relative to
    `directory`, or absolute: the kubelet's CA is the API server's); extensions as `-addext` takes them."""
    addext = [arg for ext in extensions for arg in ("-addext", ext)]
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
             "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", *addext, "-keyout", f"{name}.key", "-out", f"{name}.crt",
             cwd=directory)


def make_pki(directory: Path, addresses: tuple[str, ...] = ()) -> None:
    """A CA, the serving certificate it signs for 127.0.0.1 (and `addresses`), the client certificate
    the API server shows kubelets, the front proxy's CA and client certificate (what it shows
    aggregated APIs such as metrics-server), and the ServiceAccount token signing key."""
    directory.mkdir(parents=True, exist_ok=True)
    for ca in ("ca", "front-proxy-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=stack-tests-{ca}",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.crt", cwd=directory)
    # HOST_ADDRESS: how containers (devstack/containers.py) reach the host's loopback.
    sans = ",".join(f"IP:{ip}" for ip in ("127.0.0.1", HOST_ADDRESS, *addresses))
    issue_certificate(directory, "apiserver", "/CN=kube-apiserver",
                      f"subjectAltName={sans},DNS:localhost,DNS:kubernetes.default.svc,"
                      "DNS:kubernetes.default.svc.cluster.local", "extendedKeyUsage=serverAuth")
    issue_certificate(directory, "kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client",
                      "extendedKeyUsage=clientAuth")
    issue_certificate(directory, "front-proxy-client", f"/CN={FRONT_PROXY_CLIENT}", "extendedKeyUsage=clientAuth",
                      ca="front-proxy-ca")
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)


class KubeApiServer:
    """The API server over its own etcd (both stop together)."""

    def __init__(self, base_dir: Path, node_address: str | None = None, service_ip: str | None = None):
        """node_address: serve on that address's :6443 and publish it as the `kubernetes` Service's
        endpoint (whose ClusterIP is service_ip), so pods reach the API as in a cluster; else
        loopback only, on a free port."""
        self.base_dir = Path(base_dir)
        self.etcd = Etcd(self.base_dir / "etcd")
        self.pki = self.base_dir / "pki"
        self.address = node_address or "127.0.0.1"
        self.port = 6443 if node_address else free_port()
        self._sans = tuple(a for a in (node_address, service_ip) if a)
        self.admin_token = secrets.token_hex(16)
        # Users the other components authenticate as (user -> token), for component_kubeconfig().
        self._component_tokens: dict[str, tuple[str, str]] = {}
        self.http = requests.Session()
        # Else REQUESTS_CA_BUNDLE (set on this kind of machine) silently wins over `verify` below.
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Bearer {self.admin_token}"
        self.http.verify = str(self.pki / "ca.crt")
        tokens = self.base_dir / "tokens.csv"
        argv = [
            builds.tool("kube-apiserver"),
            f"--etcd-servers={self.etcd.client_url}",
            f"--bind-address={self.address}", f"--advertise-address={self.address}", f"--secure-port={self.port}",
            # The `kubernetes` Service's endpoints cannot be a loopback address; nothing here needs them.
            *([] if node_address else ["--endpoint-reconciler-type=none"]),
            f"--kubelet-client-certificate={self.pki / 'kubelet-client.crt'}",
            f"--kubelet-client-key={self.pki / 'kubelet-client.key'}",
            # Reach a kubelet (logs, exec, the node proxy) at its node's address, as kubeadm sets it:
            # the node's name is in no DNS here.
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--tls-cert-file={self.pki / 'apiserver.crt'}", f"--tls-private-key-file={self.pki / 'apiserver.key'}",
            f"--client-ca-file={self.pki / 'ca.crt'}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=Node,RBAC",
            # PodSecurity is on by default; NodeRestriction is what a cluster adds for its kubelets.
            "--enable-admission-plugins=NodeRestriction",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.pki / 'sa.pub'}",
            f"--service-account-signing-key-file={self.pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--cert-dir={self.base_dir / 'certs'}",
            # The aggregation layer, as kubeadm sets it up: the API server proxies aggregated APIs
            # (metrics.k8s.io) with the front proxy's client certificate and the caller in headers.
            f"--requestheader-client-ca-file={self.pki / 'front-proxy-ca.crt'}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={self.pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={self.pki / 'front-proxy-client.key'}",
            "--profiling=false", "--v=1",
        ]
        self._tokens_file = tokens
        # Usually ready in a few seconds; once seen taking 48 s on this kind of machine.
        self.process = Process("kube-apiserver", argv, self.base_dir, ready=self._ready, ready_timeout=120)

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.port}"

    def add_component_user(self, user: str, group: str = "") -> None:
        """A token for a control-plane component or kubelet (system:kube-scheduler, system:node:x in
        system:nodes, ...), so the RBAC roles and the Node authorizer built in for it apply. Before start()."""
        self._component_tokens[user] = (secrets.token_hex(16), group)

    def component_kubeconfig(self, user: str) -> Path:
        token, _ = self._component_tokens[user]
        return self._kubeconfig(self.base_dir / f"{user.replace(':', '-')}.kubeconfig", user, token)

    def start(self) -> "KubeApiServer":
        make_pki(self.pki, self._sans)
        lines = [f"{self.admin_token},stack-tests-admin,stack-tests-admin,system:masters"]
        lines += [f"{token},{user},{user}" + (f",{group}" if group else "")
                  for user, (token, group) in self._component_tokens.items()]
        self._tokens_file.write_text("\n".join(lines) + "\n")
        self._tokens_file.chmod(0o600)
        say("starting etcd and kube-apiserver (built from go.etcd.io/etcd and k8s.io/kubernetes)")
        self.etcd.start()
        self.process.start()
        self.admin_kubeconfig = self._kubeconfig(self.base_dir / "admin.kubeconfig", "admin", self.admin_token)
        return self

    def stop(self) -> None:
        # Once seen ignoring SIGTERM for over 20 s: Process.stop falls back to SIGKILL.
        self.process.stop(timeout=10)
        self.etcd.stop()

    def _ready(self) -> bool:
        try:
            return self.http.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # kubeconfigs and tokens ----------------------------------------------------------------------
    def _kubeconfig(self, path: Path, user: str, token: str) -> Path:
        # JSON is valid YAML; client-go and kubectl read either.
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "stack-tests",
            "clusters": [{"name": "stack-tests", "cluster": {
                "server": self.url, "certificate-authority": str(self.pki / "ca.crt")}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "stack-tests", "context": {"cluster": "stack-tests", "user": user}}],
        }, indent=2))
        path.chmod(0o600)
        return path

    def service_account_token(self, service_account: str, seconds: int = 86400) -> str:
        """A token for `namespace/name` from the TokenRequest API, as the kubelet mounts into pods."""
        namespace, name = service_account.split("/")
        resp = self.http.post(f"{self.url}/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", timeout=10,
                              json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                    "spec": {"expirationSeconds": seconds}})
        resp.raise_for_status()
        return resp.json()["status"]["token"]

    def write_kubeconfig(self, path: Path | str, service_account: str) -> Path:
        """A kubeconfig that authenticates as the ServiceAccount `namespace/name`, so its RBAC applies."""
        return self._kubeconfig(Path(path), service_account.replace("/", "-"),
                                self.service_account_token(service_account))

    # kubectl ---------------------------------------------------------------------------------------
    def kubectl(self, *args: str, stdin: str | None = None, kubeconfig: Path | None = None,
                check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """kubectl built from the same k8s.io/kubernetes module, as the admin unless told otherwise."""
        proc = subprocess.run([builds.tool("kubectl"), f"--kubeconfig={kubeconfig or self.admin_kubeconfig}", *args],
                              input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def apply_manifests(self, docs: list[dict[str, Any]], *extra: str, check: bool = True) -> subprocess.CompletedProcess:
        """`kubectl apply --server-side` of the given objects; extra flags such as --dry-run=server."""
        stream = "\n---\n".join(json.dumps(doc) for doc in docs)
        return self.kubectl("apply", "--server-side", "--field-manager=stack-tests", "-f", "-", *extra, stdin=stream,
                            check=check)

    def apply_entry(self, entry: str = "default", *extra: str) -> subprocess.CompletedProcess:
        """`kubectl apply -k` of k8s/ ("default") or an overlay ("overlays/kind"), server-side."""
        return self.apply_manifests(list(kustomize.render(entry)), *extra)

    # Objects, as the controllers and the kubelet would write them -----------------------------------
    def _path(self, plural: str, name: str, namespace: str = "") -> str:
        if plural in _CLUSTER:
            return f"{self.url}{_CLUSTER[plural]}/{plural}/{name}"
        return f"{self.url}{_NAMESPACED[plural]}/namespaces/{namespace}/{plural}/{name}"

    def _apply(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(obj)
        for field in _SERVER_FIELDS:
            body["metadata"].pop(field, None)
        body.pop("status", None)
        meta = body["metadata"]
        resp = self.http.patch(self._path(plural, meta["name"], meta.get("namespace", "")), data=json.dumps(body),
                               params={"fieldManager": "stack-tests", "force": "true"}, timeout=10,
                               headers={"Content-Type": "application/apply-patch+yaml"})
        if not resp.ok:
            raise RuntimeError(f"applying {plural}/{meta['name']}: {resp.status_code} {resp.text}")
        created = resp.json()
        # The server assigns uids: the caller's dict carries the real one from here on.
        obj["metadata"]["uid"] = created["metadata"]["uid"]
        return created

    def _set_status(self, plural: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        resp = self.http.patch(self._path(plural, meta["name"], meta.get("namespace", "")) + "/status", timeout=10,
                               data=json.dumps({"status": obj["status"]}),
                               headers={"Content-Type": "application/merge-patch+json"})
        if not resp.ok:
            raise RuntimeError(f"status of {plural}/{meta['name']}: {resp.status_code} {resp.text}")

    def get(self, plural: str, name: str, namespace: str = "") -> dict[str, Any]:
        resp = self.http.get(self._path(plural, name, namespace), timeout=10)
        resp.raise_for_status()
        return resp.json()

    def list(self, plural: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        """The objects of a namespace, filtered by a label selector ("app.kubernetes.io/name=backend")."""
        resp = self.http.get(f"{self.url}{_NAMESPACED[plural]}/namespaces/{namespace}/{plural}",
                             params={"labelSelector": selector} if selector else None, timeout=10)
        resp.raise_for_status()
        return resp.json()["items"]

    def add_namespace(self, namespace: dict[str, Any]) -> dict[str, Any]:
        created = self._apply("namespaces", namespace)
        self.add_default_service_account(namespace["metadata"]["name"])
        return created

    def add_default_service_account(self, namespace: str) -> None:
        # The controller manager's ServiceAccount controller would create it; pods need it to be admitted.
        self._apply("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                        "metadata": {"name": "default", "namespace": namespace}})

    def add_replicaset(self, replicaset: dict[str, Any]) -> dict[str, Any]:
        return self._apply("replicasets", replicaset)

    def add_node(self, node: dict[str, Any]) -> dict[str, Any]:
        return self._apply("nodes", node)

    def add_pod(self, pod: dict[str, Any]) -> dict[str, Any]:
        """Creates the pod bound to its node, then writes the running status the kubelet would."""
        meta = pod["metadata"]
        for owner in meta.get("ownerReferences", []):
            # k8s_attributes finds a pod's ReplicaSet by the owner's uid: it must be the real one.
            if owner["kind"] == "ReplicaSet":
                owner["uid"] = self.get("replicasets", owner["name"], meta["namespace"])["metadata"]["uid"]
        created = self._apply("pods", pod)
        self._set_status("pods", pod)
        return created

    def delete_pod(self, namespace: str, name: str) -> None:
        # Grace period 0: no kubelet will confirm the containers stopped.
        resp = self.http.delete(self._path("pods", name, namespace), params={"gracePeriodSeconds": "0"}, timeout=10)
        resp.raise_for_status()


def start_with_manifests(base_dir: Path) -> KubeApiServer:
    """etcd and the API server, holding k8s/ as `kubectl apply -k k8s/` leaves it. No controllers
    run, so there are no pods but those a test creates; the ServiceAccounts and RBAC are the shipped ones."""
    api = KubeApiServer(base_dir).start()
    try:
        api.applied_base = api.apply_entry("default")
        for namespace in kustomize.render("default"):
            if namespace["kind"] == "Namespace":
                api.add_default_service_account(namespace["metadata"]["name"])
    except BaseException:
        api.stop()
        raise
    return api
