"""A small, faithful stand-in for the Kubernetes API server, for collectors run outside a cluster.

The k8s_attributes processor cannot start without an API server: its client-go informers LIST and
then WATCH pods (and namespaces, nodes, replicasets when configured). This server answers those
requests the way the real one does (JSON lists with resourceVersions, chunked watch streams of
ADDED/MODIFIED/DELETED events, watch-list initial events ending in a bookmark, field and label
selectors, `/version` and discovery), from objects the test gives as plain dicts.

    api = FakeKubeApiServer().start()
    api.add_pod(make_pod("backend-7d9f8c6b5-x2x4z", "apps", ip="198.18.0.7", labels={...}))
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    # run the collector with K8S_AUTH_TYPE=kubeConfig KUBECONFIG=<kubeconfig>
    api.stop()
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Kind:
    group_version: str  # "v1" or "apps/v1"
    plural: str
    kind: str
    namespaced: bool

    @property
    def prefix(self) -> str:
        return "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"


KINDS = {
    k.plural: k
    for k in (
        Kind("v1", "pods", "Pod", True),
        Kind("v1", "namespaces", "Namespace", False),
        Kind("v1", "nodes", "Node", False),
        Kind("apps/v1", "replicasets", "ReplicaSet", True),
        Kind("apps/v1", "deployments", "Deployment", True),
    )
}
VERSION = {
    "major": "1", "minor": "34", "gitVersion": "v1.34.0", "gitCommit": "fake", "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64",
}
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_pod(
    name: str,
    namespace: str,
    *,
    uid: str | None = None,
    ip: str = "198.18.0.10",  # pods in the benchmarking test range (RFC 2544), never routed
    node: str = "node-1",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    containers: list[str] | tuple[str, ...] = ("app",),
    replicaset: str | None = None,
) -> dict[str, Any]:
    """A running Pod as the API returns it; `replicaset` sets the owner, as a Deployment's pods have."""
    meta: dict[str, Any] = {
        "name": name, "namespace": namespace, "uid": uid or str(uuid.uuid4()),
        "labels": dict(labels or {}), "annotations": dict(annotations or {}),
        "creationTimestamp": now_rfc3339(),
    }
    if replicaset:
        # A Deployment's pods carry their ReplicaSet's hash; k8s_attributes derives the deployment from it.
        meta["labels"].setdefault("pod-template-hash", replicaset.rsplit("-", 1)[-1])
        meta["ownerReferences"] = [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replicaset,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"rs/{namespace}/{replicaset}")),
            "controller": True, "blockOwnerDeletion": True,
        }]
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"nodeName": node, "containers": [{"name": c, "image": f"example.test/{c}:1.0"} for c in containers]},
        "status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.0.2.1",
            "startTime": meta["creationTimestamp"],
            "containerStatuses": [{
                "name": c, "ready": True, "restartCount": 0, "image": f"example.test/{c}:1.0",
                "imageID": f"example.test/{c}@sha256:{'0' * 64}",
                "containerID": f"containerd://{uuid.uuid5(uuid.NAMESPACE_URL, name + c).hex}",
                "state": {"running": {"startedAt": meta["creationTimestamp"]}},
            } for c in containers],
        },
    }


def make_namespace(name: str, labels: dict[str, str] | None = None,
                   annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "uid": str(uuid.uuid4()), "labels": dict(labels or {}),
                     "annotations": dict(annotations or {}), "creationTimestamp": now_rfc3339()},
        "status": {"phase": "Active"},
    }


def make_replicaset(name: str, namespace: str, deployment: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": name, "namespace": namespace,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"rs/{namespace}/{name}")),
            "creationTimestamp": now_rfc3339(),
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"deploy/{namespace}/{deployment}")),
                "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "spec": {"replicas": 1, "selector": {"matchLabels": {}}},
        "status": {"replicas": 1},
    }


def make_node(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": str(uuid.uuid4()), "labels": dict(labels or {}),
                     "creationTimestamp": now_rfc3339()},
        "status": {},
    }


def _field(obj: dict[str, Any], dotted: str) -> str:
    value: Any = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def _selector_terms(selector: str) -> list[tuple[str, str, str]]:
    """Equality terms of a field or label selector: `a=b`, `a==b`, `a!=b`; `a` / `!a` for labels."""
    terms = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            terms.append((key.strip(), "!=", value.strip()))
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            terms.append((key.strip(), "=", value.strip()))
        elif term.startswith("!"):
            terms.append((term[1:].strip(), "absent", ""))
        else:
            terms.append((term, "exists", ""))
    return terms


def _matches(obj: dict[str, Any], field_selector: str, label_selector: str) -> bool:
    for key, op, value in _selector_terms(field_selector):
        actual = _field(obj, key)
        if (op == "=" and actual != value) or (op == "!=" and actual == value):
            return False
    labels = obj.get("metadata", {}).get("labels") or {}
    for key, op, value in _selector_terms(label_selector):
        ok = {
            "=": labels.get(key) == value, "!=": labels.get(key) != value,
            "exists": key in labels, "absent": key not in labels,
        }[op]
        if not ok:
            return False
    return True


class FakeKubeApiServer:
    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        self.host = host
        self.port = port
        # Every request as (method, path with query), so tests can see what a client asked for.
        self.requests: list[tuple[str, str]] = []
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {plural: {} for plural in KINDS}
        self._events: list[tuple[int, str, str, dict[str, Any]]] = []  # (rv, plural, type, object)
        self._rv = 1
        self._changed = threading.Condition()
        self._stopping = False
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # Objects -----------------------------------------------------------------------------------
    def put(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object; watchers get ADDED or MODIFIED."""
        kind = KINDS[plural]
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        key = (meta.get("namespace", "") if kind.namespaced else "", meta["name"])
        with self._changed:
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            event = "MODIFIED" if key in self._objects[plural] else "ADDED"
            self._objects[plural][key] = obj
            self._events.append((self._rv, plural, event, json.loads(json.dumps(obj))))
            self._changed.notify_all()
        return obj

    def delete(self, plural: str, name: str, namespace: str = "") -> None:
        with self._changed:
            obj = self._objects[plural].pop((namespace if KINDS[plural].namespaced else "", name))
            self._rv += 1
            obj["metadata"]["resourceVersion"] = str(self._rv)
            self._events.append((self._rv, plural, "DELETED", obj))
            self._changed.notify_all()

    def add_pod(self, pod: dict[str, Any]) -> dict[str, Any]:
        return self.put("pods", pod)

    def add_namespace(self, namespace: dict[str, Any]) -> dict[str, Any]:
        return self.put("namespaces", namespace)

    def add_replicaset(self, replicaset: dict[str, Any]) -> dict[str, Any]:
        return self.put("replicasets", replicaset)

    def add_node(self, node: dict[str, Any]) -> dict[str, Any]:
        return self.put("nodes", node)

    def delete_pod(self, namespace: str, name: str) -> None:
        self.delete("pods", name, namespace)

    def paths_requested(self) -> list[str]:
        return [path.split("?")[0] for _, path in self.requests]

    def write_kubeconfig(self, path: Path | str, token: str = "fake-token") -> Path:
        """A kubeconfig whose current context points at this server (JSON is valid YAML)."""
        path = Path(path)
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }, indent=2))
        return path

    # Server --------------------------------------------------------------------------------------
    def start(self) -> "FakeKubeApiServer":
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet; see api.requests instead
                pass

            def do_GET(self):
                api.requests.append(("GET", self.path))
                api._handle_get(self)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-kube-apiserver").start()
        return self

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeKubeApiServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Request handling ------------------------------------------------------------------------------
    def _handle_get(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        if url.path == "/version":
            return self._send(h, 200, VERSION)
        if url.path == "/api":
            return self._send(h, 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}]})
        if url.path == "/apis":
            return self._send(h, 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
                "name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]})
        if url.path in ("/api/v1", "/apis/apps/v1"):
            gv = "v1" if url.path == "/api/v1" else "apps/v1"
            return self._send(h, 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
                {"name": k.plural, "singularName": k.kind.lower(), "namespaced": k.namespaced, "kind": k.kind,
                 "verbs": ["get", "list", "watch"]} for k in KINDS.values() if k.group_version == gv]})

        # /api/v1/<plural>[/<name>], /api/v1/namespaces/<ns>/<plural>[/<name>], same under /apis/apps/v1
        base = 2 if parts[:1] == ["api"] else 3
        rest, namespace = parts[base:], ""
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in KINDS:
            namespace, rest = rest[1], rest[2:]
        kind = KINDS.get(rest[0]) if rest else None
        if kind is None or "/".join(parts[:base]) != kind.prefix.strip("/") or len(rest) > 2:
            return self._status(h, 404, "NotFound", f"the server could not find the requested resource ({url.path})")
        if len(rest) == 2:
            obj = self._objects[kind.plural].get((namespace, rest[1]))
            if obj is None:
                return self._status(h, 404, "NotFound", f'{kind.plural} "{rest[1]}" not found')
            return self._send(h, 200, obj)
        if query.get("watch") in ("true", "1"):
            return self._watch(h, kind, namespace, query)
        return self._list(h, kind, namespace, query)

    def _selected(self, kind: Kind, namespace: str, query: dict[str, str]) -> list[dict[str, Any]]:
        return [o for (ns, _), o in sorted(self._objects[kind.plural].items())
                if (not namespace or ns == namespace)
                and _matches(o, query.get("fieldSelector", ""), query.get("labelSelector", ""))]

    def _list(self, h: BaseHTTPRequestHandler, kind: Kind, namespace: str, query: dict[str, str]) -> None:
        with self._changed:
            items = self._selected(kind, namespace, query)
            rv = str(self._rv)
        self._send(h, 200, {
            "kind": f"{kind.kind}List", "apiVersion": kind.group_version,
            "metadata": {"resourceVersion": rv}, "items": items,
        })

    def _watch(self, h: BaseHTTPRequestHandler, kind: Kind, namespace: str, query: dict[str, str]) -> None:
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        fs, ls = query.get("fieldSelector", ""), query.get("labelSelector", "")
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def selected(obj: dict[str, Any]) -> bool:
            return (not namespace or obj["metadata"].get("namespace") == namespace) and _matches(obj, fs, ls)

        with self._changed:
            requested_rv = query.get("resourceVersion", "")
            pending: list[tuple[str, dict[str, Any]]] = []
            if query.get("sendInitialEvents") == "true" or requested_rv in ("", "0"):
                # "Start at most recent/any": synthetic ADDED for what exists now, as the real server does.
                pending = [("ADDED", o) for o in self._selected(kind, namespace, query)]
                if query.get("sendInitialEvents") == "true":
                    pending.append(("BOOKMARK", {
                        "kind": kind.kind, "apiVersion": kind.group_version,
                        "metadata": {"resourceVersion": str(self._rv), "annotations": {INITIAL_EVENTS_END: "true"}},
                    }))
                seen = self._rv
            else:
                seen = int(requested_rv)
        try:
            while True:
                for event_type, obj in pending:
                    self._chunk(h, {"type": event_type, "object": obj})
                with self._changed:
                    while not self._stopping and time.monotonic() < deadline and self._rv == seen:
                        self._changed.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
                    if self._stopping or time.monotonic() >= deadline:
                        break
                    pending = [(t, o) for rv, plural, t, o in self._events
                               if rv > seen and plural == kind.plural and selected(o)]
                    seen = self._rv
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client closed its watch, as informers do on resync or shutdown
        h.close_connection = True

    @staticmethod
    def _chunk(h: BaseHTTPRequestHandler, event: dict[str, Any]) -> None:
        data = json.dumps(event).encode() + b"\n"
        h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        h.wfile.flush()

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _status(self, h: BaseHTTPRequestHandler, code: int, reason: str, message: str) -> None:
        self._send(h, code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                             "message": message, "reason": reason, "code": code})


def main() -> None:
    """Run it by hand: serve pods from a JSON file (a list of Pod dicts) and write a kubeconfig."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    parser.add_argument("--pods", help="JSON file with a list of Pod objects")
    args = parser.parse_args()
    api = FakeKubeApiServer(port=args.port).start()
    for pod in json.loads(Path(args.pods).read_text()) if args.pods else []:
        api.add_pod(pod)
    api.write_kubeconfig(args.kubeconfig)
    print(f"fake kube-apiserver on {api.url}, kubeconfig {args.kubeconfig}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        api.stop()


if __name__ == "__main__":
    main()
