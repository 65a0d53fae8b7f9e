"""Static checks of k8s/: every kustomization renders, every object passes strict offline schema
validation, and every reference (between objects, and from env and config files to Services) resolves."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from devstack import kustomize
from devstack.kustomize import ENTRY_POINTS

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "k8s"
# Schemas for this version ship inside kubernetes-validate: no network, no cluster.
KUBERNETES_VERSION = "1.34.0"

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
# Reads root-owned container log files on the node: uid 0 without any capability (see its manifest).
ROOT_WORKLOADS = {("observability", "DaemonSet", "otel-agent")}
HOSTPATH_WORKLOADS = ROOT_WORKLOADS

# Every generated ConfigMap: (namespace, name before the hash) -> {data key: repo file}.
GENERATED_CONFIGMAPS = {
    ("observability", "otel-gateway-config"): {"gateway.yaml": "collector/gateway.yaml"},
    ("observability", "otel-sampler-config"): {"sampler.yaml": "collector/sampler.yaml"},
    ("observability", "otel-agent-config"): {"agent.yaml": "collector/agent.yaml"},
    ("observability", "loki-config"): {"loki.yaml": "k8s/loki/loki.yaml"},
    ("observability", "tempo-config"): {"tempo.yaml": "k8s/tempo/tempo.yaml"},
    ("observability", "grafana-datasources"): {
        "datasources.yaml": "grafana/provisioning/datasources/datasources.yaml"},
    ("observability", "grafana-dashboard-providers"): {
        "dashboards.yaml": "grafana/provisioning/dashboards/dashboards.yaml"},
    ("observability", "grafana-dashboards"): {
        p.name: f"grafana/dashboards/{p.name}" for p in sorted((REPO / "grafana/dashboards").glob("*.json"))},
    ("apps", "frontend-nginx-conf"): {"nginx.conf": "frontend/nginx.conf"},
    ("observability", "otel-gateway-auth-config"): {
        "gateway-auth.yaml": "k8s/overlays/split-observability/gateway-auth.yaml"},
    ("observability", "otel-agent-auth-config"): {
        "agent-auth.yaml": "k8s/components/agent-bearer-auth/agent-auth.yaml"},
    ("observability", "otel-external-backends"): {
        "gateway-external.yaml": "k8s/overlays/external-backends/gateway-external.yaml",
        "sampler-external.yaml": "k8s/overlays/external-backends/sampler-external.yaml"},
}
# Which workload mounts which generated ConfigMap (in the entry points that have that workload).
CONFIG_CONSUMERS = {
    ("observability", "StatefulSet", "otel-gateway"): ["otel-gateway-config"],
    ("observability", "StatefulSet", "otel-sampler"): ["otel-sampler-config"],
    ("observability", "DaemonSet", "otel-agent"): ["otel-agent-config"],
    ("observability", "StatefulSet", "loki"): ["loki-config"],
    ("observability", "StatefulSet", "tempo"): ["tempo-config"],
    ("observability", "Deployment", "grafana"): [
        "grafana-datasources", "grafana-dashboard-providers", "grafana-dashboards"],
    ("apps", "Deployment", "frontend"): ["frontend-nginx-conf"],
}
# Config files merged over a base by a collector's second --config flag.
COLLECTOR_CONFIG_PATCHES = {
    "gateway": ("collector/gateway.yaml", "k8s/overlays/split-observability/gateway-auth.yaml"),
    "agent": ("collector/agent.yaml", "k8s/components/agent-bearer-auth/agent-auth.yaml"),
}


# --- rendering (devstack/kustomize.py, with kubectl built from k8s.io/kubernetes) -------------

def render(entry: str) -> tuple[dict, ...]:
    try:
        return kustomize.render(entry)
    except RuntimeError as exc:
        pytest.fail(str(exc))


# --- object helpers --------------------------------------------------------------------------

def ident(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']} {meta.get('namespace', '-')}/{meta['name']}"


def by_kind(objs, kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def names(objs, kind: str, namespace: str) -> set[str]:
    return {o["metadata"]["name"] for o in objs
            if o["kind"] == kind and o["metadata"].get("namespace") == namespace}


def find(objs, kind: str, namespace: str, name: str) -> dict | None:
    for o in objs:
        if o["kind"] == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace:
            return o
    return None


def base_name(name: str) -> str:
    """A generated object's name without kustomize's 10-character hash suffix."""
    return re.sub(r"-[a-z0-9]{10}$", "", name)


def workloads(objs) -> list[dict]:
    return [o for o in objs if o["kind"] in WORKLOAD_KINDS]


def pod_template(workload: dict) -> dict:
    return workload["spec"]["template"]


def containers(pod_spec: dict, include_init: bool = True) -> list[dict]:
    return (pod_spec.get("initContainers", []) if include_init else []) + pod_spec["containers"]


def workload_key(w: dict) -> tuple[str, str, str]:
    return (w["metadata"]["namespace"], w["kind"], w["metadata"]["name"])


def image_tag(image: str) -> str | None:
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


# --- (a) render and (b) schema ---------------------------------------------------------------

@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_kustomization_renders(entry):
    objs = render(entry)
    kinds: dict[str, int] = {}
    for o in objs:
        kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
    print(f"{entry}: {len(objs)} objects {dict(sorted(kinds.items()))}")
    assert objs, f"{entry} rendered nothing"
    for o in objs:
        assert o["metadata"].get("namespace") or o["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding"), \
            f"{ident(o)} has no namespace"


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_objects_pass_strict_schema_validation(entry):
    errors = []
    for o in render(entry):
        try:
            kubernetes_validate.validate(o, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{ident(o)}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            # This stack uses no CRDs: an unknown kind is a typo or a removed API version.
            errors.append(f"{ident(o)}: {exc.message}")
    print(f"{entry}: {len(render(entry))} objects checked strictly against Kubernetes {KUBERNETES_VERSION}")
    assert not errors, "\n".join(errors)


# --- (c) references between objects ----------------------------------------------------------

def container_ports(pod_spec: dict) -> list[dict]:
    return [p for c in pod_spec["containers"] for p in c.get("ports", [])]


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def port_matches(target, ports: list[dict]) -> bool:
    if isinstance(target, int):
        return any(p["containerPort"] == target for p in ports)
    return any(p.get("name") == target for p in ports)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_services_select_pods_and_target_declared_ports(entry):
    objs = render(entry)
    errors = []
    for svc in by_kind(objs, "Service"):
        ns, selector = svc["metadata"]["namespace"], svc["spec"].get("selector", {})
        pods = [pod_template(w) for w in workloads(objs) if w["metadata"]["namespace"] == ns
                and selects(selector, pod_template(w)["metadata"].get("labels", {}))]
        if not pods:
            errors.append(f"{ident(svc)}: selector {selector} matches no pod template")
            continue
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if not any(port_matches(target, container_ports(p["spec"])) for p in pods):
                errors.append(f"{ident(svc)}: port {port['port']} -> targetPort {target!r} is no container port")
        print(f"{entry}: {ident(svc)} selects {len(pods)} pod template(s), ports ok")
    assert not errors, "\n".join(errors)


def matches(selector: dict, labels: dict) -> bool:
    """A LabelSelector ({} selects all), with the matchExpressions operators the manifests use."""
    ops = {"In": lambda k, v: labels.get(k) in v, "NotIn": lambda k, v: labels.get(k) not in v,
           "Exists": lambda k, v: k in labels, "DoesNotExist": lambda k, v: k not in labels}
    return (all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
            and all(ops[e["operator"]](e["key"], e.get("values", [])) for e in selector.get("matchExpressions", [])))


def policy_admits(policies: list[dict], labels: dict, target) -> bool:
    """Some ingress rule of a policy selecting these pods opens this port (by number or name)."""
    return any(matches(np["spec"]["podSelector"], labels) and any(
        not rule.get("ports") or any(p.get("port") in target for p in rule["ports"])
        for rule in np["spec"].get("ingress", [])) for np in policies)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_network_policies_open_every_service_port_and_name_pods_that_exist(entry):
    """Where a namespace denies ingress by default, each Service port must be opened to someone (or
    the Service silently stops working); each pod selector of a policy must select a pod of the
    stack (a typo in a label selects nothing and opens nothing), DNS's in kube-system aside."""
    objs = render(entry)
    policies = by_kind(objs, "NetworkPolicy")
    # Peers are looked up in the whole stack: a split overlay leaves some in the other cluster.
    pods = [(w["metadata"]["namespace"], pod_template(w)["metadata"].get("labels", {}))
            for w in workloads(objs) + workloads(render("default"))]
    errors = []
    for np in policies:
        ns = np["metadata"]["namespace"]
        peers = [(ns, np["spec"]["podSelector"])] + [
            (peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name", ns),
             peer["podSelector"])
            for rule in np["spec"].get("ingress", []) + np["spec"].get("egress", [])
            for peer in rule.get("from", rule.get("to", [])) if "podSelector" in peer]
        for peer_ns, selector in peers:
            if peer_ns != "kube-system" and not any(n == peer_ns and matches(selector, labels) for n, labels in pods):
                errors.append(f"{ident(np)}: {peer_ns} {selector} selects no pod of the stack")
    denying = {np["metadata"]["namespace"] for np in policies
               if np["spec"]["podSelector"] == {} and "Ingress" in np["spec"]["policyTypes"] and not np["spec"].get("ingress")}
    for svc in by_kind(objs, "Service"):
        ns, selector = svc["metadata"]["namespace"], svc["spec"].get("selector")
        if ns not in denying or not selector:
            continue
        in_ns = [np for np in policies if np["metadata"]["namespace"] == ns]
        for port in svc["spec"]["ports"]:
            target = {port["port"], port.get("targetPort", port["port"])}
            for w in workloads(objs):
                template = pod_template(w)
                labels = template["metadata"].get("labels", {})
                if w["metadata"]["namespace"] == ns and selects(selector, labels):
                    # A named targetPort counts by its number too.
                    target |= {c["containerPort"] for c in container_ports(template["spec"]) if c.get("name") in target}
                    if not policy_admits(in_ns, labels, target):
                        errors.append(f"{ident(svc)}: port {port['port']} is opened by no NetworkPolicy")
    print(f"{entry}: {len(policies)} NetworkPolicies; default-deny ingress in {sorted(denying)}")
    assert not errors, "\n".join(errors)


def data_keys(obj: dict) -> set[str]:
    return set(obj.get("data", {})) | set(obj.get("binaryData", {})) | set(obj.get("stringData", {}))


def pod_references(pod_spec: dict):
    """(kind, name, key or None, where) for every ConfigMap/Secret/PVC/ServiceAccount a pod uses."""
    if pod_spec.get("serviceAccountName"):
        yield "ServiceAccount", pod_spec["serviceAccountName"], None, "serviceAccountName"
    for vol in pod_spec.get("volumes", []):
        where = f"volume {vol['name']}"
        if "configMap" in vol:
            for item in vol["configMap"].get("items", [None]):
                yield "ConfigMap", vol["configMap"]["name"], item and item["key"], where
        if "secret" in vol:
            for item in vol["secret"].get("items", [None]):
                yield "Secret", vol["secret"]["secretName"], item and item["key"], where
        if "persistentVolumeClaim" in vol:
            yield "PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"], None, where
        for source in vol.get("projected", {}).get("sources", []):
            for kind, field in (("ConfigMap", "configMap"), ("Secret", "secret")):
                if field in source:
                    for item in source[field].get("items", [None]):
                        yield kind, source[field]["name"], item and item["key"], where
    for c in containers(pod_spec):
        for env_from in c.get("envFrom", []):
            if "configMapRef" in env_from:
                yield "ConfigMap", env_from["configMapRef"]["name"], None, f"{c['name']} envFrom"
            if "secretRef" in env_from:
                yield "Secret", env_from["secretRef"]["name"], None, f"{c['name']} envFrom"
        for env in c.get("env", []):
            ref = env.get("valueFrom", {})
            for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if field in ref:
                    yield kind, ref[field]["name"], ref[field]["key"], f"{c['name']} env {env['name']}"


def undeclared_mounts(workload: dict) -> list[str]:
    pod_spec = pod_template(workload)["spec"]
    declared = {v["name"] for v in pod_spec.get("volumes", [])}
    declared |= {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
    return [f"{c['name']} mounts undeclared volume {m['name']}"
            for c in containers(pod_spec) for m in c.get("volumeMounts", []) if m["name"] not in declared]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_pod_references_exist(entry):
    objs = render(entry)
    errors = []
    for w in workloads(objs):
        ns = w["metadata"]["namespace"]
        errors += [f"{ident(w)}: {e}" for e in undeclared_mounts(w)]
        if w["kind"] == "StatefulSet" and find(objs, "Service", ns, w["spec"]["serviceName"]) is None:
            errors.append(f"{ident(w)}: serviceName {w['spec']['serviceName']} is no Service")
        for kind, name, key, where in pod_references(pod_template(w)["spec"]):
            target = find(objs, kind, ns, name)
            if target is None:
                errors.append(f"{ident(w)}: {where} references missing {kind} {ns}/{name}")
            elif key is not None and key not in data_keys(target):
                errors.append(f"{ident(w)}: {where} references missing key {key!r} of {kind} {ns}/{name}")
            else:
                print(f"{entry}: {ident(w)} {where} -> {kind} {name}{'' if key is None else '[' + key + ']'}")
    assert not errors, "\n".join(errors)


# $(VAR) in an env value: the kubelet expands it from variables defined before it.
KUBELET_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def unexpanded_references(objs, namespace: str, container: dict) -> list[str]:
    """$(VAR) in an env value that the kubelet would leave as is: VAR not defined before it."""
    defined = set()
    for env_from in container.get("envFrom", []):
        for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if field in env_from:
                defined |= data_keys(find(objs, kind, namespace, env_from[field]["name"]) or {})
    problems = []
    for env in container.get("env", []):
        for name in KUBELET_REFERENCE.findall(env.get("value", "")):
            if name not in defined:
                problems.append(f"{container['name']} env {env['name']}: $({name}) is not defined before it")
        defined.add(env["name"])
    return problems


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_env_expansions_refer_to_earlier_variables(entry):
    objs = render(entry)
    errors = []
    for w in workloads(objs):
        for c in containers(pod_template(w)["spec"]):
            errors += [f"{ident(w)}: {p}" for p in unexpanded_references(objs, w["metadata"]["namespace"], c)]
        print(f"{entry}: {ident(w)} env expansions checked")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_rbac_and_ingress_references_exist(entry):
    objs = render(entry)
    errors = []
    for binding in by_kind(objs, "ClusterRoleBinding") + by_kind(objs, "RoleBinding"):
        role_ns = binding["metadata"].get("namespace")
        role_kind, role_name = binding["roleRef"]["kind"], binding["roleRef"]["name"]
        if not any(o["kind"] == role_kind and o["metadata"]["name"] == role_name
                   and o["metadata"].get("namespace") == (role_ns if role_kind == "Role" else None) for o in objs):
            errors.append(f"{ident(binding)}: roleRef {role_kind} {role_name} missing")
        for subject in binding.get("subjects", []):
            subject_ns = subject.get("namespace", role_ns)
            if subject["kind"] == "ServiceAccount" and find(objs, "ServiceAccount", subject_ns, subject["name"]) is None:
                errors.append(f"{ident(binding)}: subject ServiceAccount {subject_ns}/{subject['name']} missing")
    for ingress in by_kind(objs, "Ingress"):
        ns = ingress["metadata"]["namespace"]
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                svc_ref = path["backend"]["service"]
                svc = find(objs, "Service", ns, svc_ref["name"])
                wanted = svc_ref["port"]
                if svc is None or not any(p["port"] == wanted.get("number") or p.get("name") == wanted.get("name")
                                          for p in svc["spec"]["ports"]):
                    errors.append(f"{ident(ingress)}: backend {svc_ref['name']}:{wanted} is no Service port")
                else:
                    print(f"{entry}: {ident(ingress)} {rule.get('host')}{path['path']} -> {svc_ref['name']} {wanted}")
    assert not errors, "\n".join(errors)


# --- (c) in-cluster endpoints in env values and config files ----------------------------------

# ${env:VAR:-default} (collector), ${VAR:-default} (Loki, Tempo), ${VAR} (envsubst templates);
# `$${` is an escaped literal in collector and Grafana files.
ENV_REFERENCE = re.compile(r"(?<!\$)\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
URL = re.compile(r"\b([a-z][a-z0-9+.-]*)://([^/\s\"'`,;)}\]]+)")
DNS_NAME = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
HOST_PORT = re.compile(rf"(?<![\w.@/:-])({DNS_NAME}):(\d{{1,5}})(?![\w.])")
DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379}


def substitute(text: str, env: dict[str, str]) -> str:
    """Expand the references a config engine would: the pod's value if set, else the default."""
    def expand(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        return default if default is not None else match.group(0)
    return ENV_REFERENCE.sub(expand, text)


def endpoints(text: str) -> list[tuple[str, int | None, str]]:
    """(host, port, as written) of every URL and host:port in text."""
    found = []
    for scheme, netloc in URL.findall(text):
        host, _, port = netloc.rpartition("@")[2].partition(":")
        found.append((host, int(port) if port.isdigit() else DEFAULT_PORTS.get(scheme), f"{scheme}://{netloc}"))
    for host, port in HOST_PORT.findall(URL.sub(" ", text)):
        found.append((host, int(port), f"{host}:{port}"))
    return found


def in_cluster_service(host: str, namespace: str, namespaces: set[str]) -> tuple[str, str] | None:
    """(namespace, service) a host names inside the cluster, or None for external hosts and IPs."""
    labels = host.split(".")
    if host == "localhost" or all(label.isdigit() for label in labels) or not any(ch.isalpha() for ch in host):
        return None
    if host.endswith(".svc.cluster.local"):
        labels = labels[:-3]
    elif host.endswith(".svc"):
        labels = labels[:-1]
    elif len(labels) == 1:
        return namespace, host
    elif not (len(labels) == 2 and labels[1] in namespaces):
        return None
    return (labels[-1], labels[-2]) if len(labels) >= 2 else (namespace, labels[0])


def pod_env(objs, namespace: str, container: dict) -> dict[str, str]:
    """The container's environment as far as it is known without reading Secrets."""
    env: dict[str, str] = {}
    for env_from in container.get("envFrom", []):
        if "configMapRef" in env_from:
            cm = find(objs, "ConfigMap", namespace, env_from["configMapRef"]["name"]) or {}
            env.update(cm.get("data", {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = KUBELET_REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), item["value"])
        elif "configMapKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["configMapKeyRef"]
            cm = find(objs, "ConfigMap", namespace, ref["name"]) or {}
            if ref["key"] in cm.get("data", {}):
                env[item["name"]] = cm["data"][ref["key"]]
    return env


def pod_secret_env(objs, namespace: str, container: dict) -> dict[str, str]:
    """What the container's envFrom Secrets set (rendered from the committed examples)."""
    env: dict[str, str] = {}
    for env_from in container.get("envFrom", []):
        if "secretRef" in env_from:
            secret = find(objs, "Secret", namespace, env_from["secretRef"]["name"]) or {}
            env.update({k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()})
    return env


def host_port_pairs(env: dict[str, str]) -> list[str]:
    """FOO_HOST + FOO_PORT settings (e.g. MYSQL_HOST/MYSQL_PORT) written as one host:port."""
    return [f"{env[name]}:{env[name[:-5] + '_PORT']}" for name in env
            if name.endswith("_HOST") and name[:-5] + "_PORT" in env]


def deep_merge(base, patch):
    """The collector's merge of several --config files: maps merge, everything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return copy.deepcopy(patch)


def live_collector_config(config: dict) -> dict:
    """Only the components the service section uses: unused ones are never started."""
    service = config.get("service", {})
    used: dict[str, set[str]] = {"extensions": set(service.get("extensions", []))}
    for pipeline in service.get("pipelines", {}).values():
        for section in ("receivers", "processors", "exporters", "connectors"):
            used.setdefault(section, set()).update(pipeline.get(section, []))
    live = {section: {name: config.get(section, {}).get(name) for name in sorted(names_)}
            for section, names_ in used.items()}
    live["service"] = service
    return live


def mounted_files(objs, workload: dict, container: dict) -> dict[str, tuple[str, str]]:
    """mount path of each ConfigMap file the container sees -> (ConfigMap name, content)."""
    ns, pod_spec = workload["metadata"]["namespace"], pod_template(workload)["spec"]
    volumes = {v["name"]: v["configMap"]["name"] for v in pod_spec.get("volumes", []) if "configMap" in v}
    files = {}
    for mount in container.get("volumeMounts", []):
        cm = find(objs, "ConfigMap", ns, volumes.get(mount["name"], ""))
        for key, content in (cm or {}).get("data", {}).items():
            files[f"{mount['mountPath'].rstrip('/')}/{key}"] = (cm["metadata"]["name"], content)
    return files


def config_texts(objs, workload: dict, container: dict) -> list[tuple[str, str]]:
    """(label, text) of every config the container reads; collector configs merged and pruned."""
    files = mounted_files(objs, workload, container)
    args = container.get("args", []) + container.get("command", [])
    collector_files = [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    texts = []
    if collector_files:
        merged: dict = {}
        for path in collector_files:
            assert path in files, f"{ident(workload)}: --config={path} is not a mounted ConfigMap file"
            merged = deep_merge(merged, yaml.safe_load(files[path][1]))
        texts.append(("+".join(collector_files), yaml.safe_dump(live_collector_config(merged))))
    texts += [(f"{path} ({cm})", content) for path, (cm, content) in files.items() if path not in collector_files]
    return texts


def check_endpoints(objs, namespace: str, text: str, where: str, namespaces: set[str]) -> list[str]:
    errors = []
    for host, port, written in endpoints(text):
        target = in_cluster_service(host, namespace, namespaces)
        if target is None:
            print(f"    {where}: {written} is not an in-cluster Service name (skipped)")
            continue
        svc = find(objs, "Service", *target)
        if svc is None:
            errors.append(f"{where}: {written} names Service {target[0]}/{target[1]}, which does not exist")
        elif port is None or port not in {p["port"] for p in svc["spec"]["ports"]}:
            errors.append(f"{where}: {written}: Service {target[0]}/{target[1]} has no port {port}")
        else:
            print(f"    {where}: {written} -> Service {target[0]}/{target[1]}:{port}")
    return errors


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_in_cluster_endpoints_name_existing_services(entry):
    objs = render(entry)
    namespaces = {o["metadata"]["name"] for o in by_kind(objs, "Namespace")} | {"apps", "observability"}
    errors, scanned = [], set()
    for w in workloads(objs):
        ns = w["metadata"]["namespace"]
        for c in containers(pod_template(w)["spec"]):
            secret_env = pod_secret_env(objs, ns, c)
            env = {**secret_env, **pod_env(objs, ns, c)}
            where = f"{ident(w)} {c['name']}"
            print(f"{entry}: {where}")
            for name, value in list(env.items()) + [("host+port", v) for v in host_port_pairs(env)]:
                errors += check_endpoints(objs, ns, value, f"{where} env {name}", namespaces)
            for label, text in config_texts(objs, w, c):
                scanned.add(label)
                # The file's own defaults (but where a Secret sets the value: its default never
                # applies), then the values this pod's environment gives it.
                errors += check_endpoints(objs, ns, substitute(text, secret_env), f"{where} {label} (defaults)",
                                          namespaces)
                errors += check_endpoints(objs, ns, substitute(text, env), f"{where} {label} (pod env)", namespaces)
    print(f"{entry}: scanned configs: {sorted(scanned)}")
    assert not errors, "\n".join(errors)


# A third-party image is pinned to a release: a version number (a digest pins too), never latest
# or a branch build such as Tempo's main-<sha>. Our own images are built from this tree (`:dev`).
RELEASE_TAG = re.compile(r"v?\d+\.\d+(\.\d+)?([-.+][0-9A-Za-z.]+)?|sha256:[0-9a-f]{64}")
BRANCH_BUILD = re.compile(r"(?i)(^|[-.])(main|master|latest|nightly|edge|dev|weekly)([-.]|$)")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_images_are_pinned(entry):
    errors = []
    for w in workloads(render(entry)):
        for c in containers(pod_template(w)["spec"]):
            tag = image_tag(c["image"])
            ours = c["image"].startswith("otel-stack/")
            if tag is None or tag == "latest" or (not ours and (not RELEASE_TAG.fullmatch(tag)
                                                                 or BRANCH_BUILD.search(tag))):
                errors.append(f"{ident(w)} {c['name']}: image {c['image']} is not pinned to a release")
            else:
                print(f"{entry}: {ident(w)} {c['name']}: {c['image']}")
    assert not errors, "\n".join(errors)


def test_production_pins_our_images_by_an_immutable_reference():
    """A mutable :dev tag never reaches nodes that cached an older build; a release tag or digest does."""
    ours = [c for w in workloads(render("overlays/production-secrets"))
            for c in containers(pod_template(w)["spec"]) if c["image"].startswith("otel-stack/")]
    for c in ours:
        tag = c["image"].split("@", 1)[1] if "@" in c["image"] else image_tag(c["image"])
        print(f"production: {c['name']}: {c['image']} ({c.get('imagePullPolicy')})")
        assert RELEASE_TAG.fullmatch(tag) and not BRANCH_BUILD.search(tag), c["image"]
        assert c.get("imagePullPolicy") == "IfNotPresent", c
    assert {c["image"].split(":")[0].split("@")[0] for c in ours} == {
        "otel-stack/backend", "otel-stack/frontend", "otel-stack/collector"}


# --- hardening and labels --------------------------------------------------------------------

def container_hardening_errors(c: dict, pod_security: dict, root_allowed: bool, main: bool) -> list[str]:
    sc = c.get("securityContext", {})
    errors = []
    if sc.get("allowPrivilegeEscalation") is not False:
        errors.append("allowPrivilegeEscalation must be false")
    if sc.get("privileged"):
        errors.append("privileged")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []) or sc.get("capabilities", {}).get("add"):
        errors.append("capabilities must drop ALL and add none")
    if sc.get("readOnlyRootFilesystem") is not True:
        errors.append("readOnlyRootFilesystem must be true")
    if not root_allowed and sc.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is not True:
        errors.append("runAsNonRoot must be true")
    if sc.get("seccompProfile", pod_security.get("seccompProfile", {})).get("type") != "RuntimeDefault":
        errors.append("seccompProfile must be RuntimeDefault")
    for bound in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in c.get("resources", {}).get(bound, {}):
                errors.append(f"resources.{bound}.{resource} missing")
    if main and not (c.get("livenessProbe") and c.get("readinessProbe")):
        errors.append("liveness and readiness probes required")
    return errors


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_workloads_are_hardened(entry):
    errors = []
    for w in workloads(render(entry)):
        key, pod_spec = workload_key(w), pod_template(w)["spec"]
        pod_security = pod_spec.get("securityContext", {})
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if pod_spec.get(flag):
                errors.append(f"{ident(w)}: {flag}")
        host_paths = [v for v in pod_spec.get("volumes", []) if "hostPath" in v]
        if host_paths and key not in HOSTPATH_WORKLOADS:
            errors.append(f"{ident(w)}: hostPath volumes {[v['name'] for v in host_paths]}")
        if key in ROOT_WORKLOADS:
            print(f"{entry}: {ident(w)} runs as uid 0 without capabilities (allowed: reads node log files)")
        main_names = {c["name"] for c in pod_spec["containers"]}
        for c in containers(pod_spec):
            problems = container_hardening_errors(c, pod_security, key in ROOT_WORKLOADS, c["name"] in main_names)
            errors += [f"{ident(w)} {c['name']}: {p}" for p in problems]
        print(f"{entry}: {ident(w)} hardening checked")
    assert not errors, "\n".join(errors)


STANDARD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/component",
                   "app.kubernetes.io/part-of", "app.kubernetes.io/version")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_workloads_carry_standard_labels(entry):
    errors = []
    for w in workloads(render(entry)):
        tag = image_tag(pod_template(w)["spec"]["containers"][0]["image"])
        for where, labels in (("metadata", w["metadata"].get("labels", {})),
                              ("pod template", pod_template(w)["metadata"].get("labels", {}))):
            missing = [label for label in STANDARD_LABELS if label not in labels]
            if missing:
                errors.append(f"{ident(w)} {where}: missing {missing}")
            elif str(labels["app.kubernetes.io/version"]) != tag:
                errors.append(f"{ident(w)} {where}: version label {labels['app.kubernetes.io/version']} != tag {tag}")
        print(f"{entry}: {ident(w)} labels ok (version {tag})")
    assert not errors, "\n".join(errors)


# --- (d) generated ConfigMaps are the repo files ---------------------------------------------

@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_generated_configmaps_are_the_repo_files(entry):
    objs = render(entry)
    errors = []
    for cm in by_kind(objs, "ConfigMap"):
        ns, name = cm["metadata"]["namespace"], cm["metadata"]["name"]
        expected = GENERATED_CONFIGMAPS.get((ns, base_name(name)))
        if expected is None:
            continue
        if name == base_name(name):
            errors.append(f"{ident(cm)}: no hash suffix, so a change would not roll its pods")
        if set(cm.get("data", {})) != set(expected):
            errors.append(f"{ident(cm)}: keys {sorted(cm.get('data', {}))} != {sorted(expected)}")
            continue
        for key, path in expected.items():
            if cm["data"][key].encode() != (REPO / path).read_bytes():
                errors.append(f"{ident(cm)}: data[{key}] differs from {path}")
            else:
                print(f"{entry}: {ident(cm)} data[{key}] == {path}")
    for key, wanted in CONFIG_CONSUMERS.items():
        w = find(objs, key[1], key[0], key[2])
        if w is None:
            continue
        volumes = pod_template(w)["spec"].get("volumes", [])
        mounted = {base_name(v["configMap"]["name"]) for v in volumes if "configMap" in v}
        errors += [f"{ident(w)} does not mount generated ConfigMap {cm}" for cm in wanted if cm not in mounted]
    assert not errors, "\n".join(errors)


# --- collector config patches ----------------------------------------------------------------

def load_repo_yaml(path: str) -> dict:
    return yaml.safe_load((REPO / path).read_text())


def pipeline_components(config: dict, section: str) -> set[str]:
    return {name for p in config["service"]["pipelines"].values() for name in p.get(section, [])}


@pytest.mark.parametrize("collector", COLLECTOR_CONFIG_PATCHES)
def test_collector_auth_patch_keeps_the_base_config(collector):
    base_path, patch_path = COLLECTOR_CONFIG_PATCHES[collector]
    base, merged = load_repo_yaml(base_path), deep_merge(load_repo_yaml(base_path), load_repo_yaml(patch_path))
    extensions = merged["service"]["extensions"]
    print(f"{collector}: {patch_path} over {base_path}: extensions {extensions}")
    assert set(base["service"]["extensions"]) <= set(extensions), "the patch drops a base extension"
    assert all(name in merged["extensions"] for name in extensions)
    authenticators = [e for e in extensions if e.split("/")[0] == "bearertokenauth"]
    assert authenticators, "no bearertokenauth extension enabled"
    connectors = set(merged.get("connectors", {}))
    for section in ("receivers", "processors", "exporters"):
        for name in pipeline_components(merged, section) - connectors:
            assert name in merged[section], f"pipeline uses undefined {section[:-1]} {name}"
    if collector == "gateway":
        # What comes from outside must authenticate; a connector's input is the gateway's own traces.
        for name in pipeline_components(merged, "receivers") - connectors:
            for protocol, settings in merged["receivers"][name]["protocols"].items():
                assert settings["auth"]["authenticator"] in authenticators, f"{name}.{protocol} is not authenticated"
                print(f"  receiver {name}.{protocol}: auth {settings['auth']['authenticator']}")
    else:
        base_exporters = [base["exporters"][n] for n in pipeline_components(base, "exporters") - connectors]
        for name in pipeline_components(merged, "exporters") - connectors:
            exporter = merged["exporters"][name]
            assert exporter["auth"]["authenticator"] in authenticators, f"exporter {name} sends no token"
            for setting in ("retry_on_failure", "sending_queue"):
                assert all(exporter[setting] == b[setting] for b in base_exporters), \
                    f"exporter {name}: {setting} differs from the base exporter's"
            print(f"  exporter {name}: auth {exporter['auth']['authenticator']}, queue and retry as the base")


# --- contract details ------------------------------------------------------------------------

def env_names(container: dict) -> set[str]:
    return {e["name"] for e in container.get("env", [])}


def test_backend_deployment_follows_the_contract():
    objs = render("default")
    backend = find(objs, "Deployment", "apps", "backend")
    pod = pod_template(backend)
    main, = pod["spec"]["containers"]
    init, = pod["spec"]["initContainers"]
    env = pod_env(objs, "apps", main)
    print(f"backend: replicas {backend['spec']['replicas']}, init {init['command']}, env {sorted(env)}")
    assert backend["spec"]["replicas"] == 2
    assert pod["metadata"]["annotations"]["observability.stack/logs"] == "otlp"
    assert init["command"] == ["python", "-m", "board"]
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-gateway.observability.svc.cluster.local:4318"
    assert "deployment.environment.name=development" in env["OTEL_RESOURCE_ATTRIBUTES"]
    for name in ("MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_DATABASE", "SECRET_KEY"):
        assert name in env_names(main) and name not in env, f"{name} must come from a Secret"


def test_cluster_roles_grant_each_reader_exactly_what_it_reads():
    k8s_attributes = [{"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]},
                      {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]}]
    wanted = {
        "otel-gateway": k8s_attributes,
        "otel-agent": k8s_attributes,
        # Its --resources, listed and watched.
        "kube-state-metrics": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
            {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"],
             "verbs": ["list", "watch"]}],
        # Node discovery, and the kubelets through the API server's node proxy.
        "prometheus": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},
                       {"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}],
    }
    roles = {role["metadata"]["name"]: role["rules"] for role in by_kind(render("default"), "ClusterRole")}
    for name, rules in roles.items():
        print(f"ClusterRole {name}: {rules}")
    assert roles == wanted


def test_node_agent_mounts_node_paths_as_intended():
    agent = find(render("default"), "DaemonSet", "observability", "otel-agent")
    pod_spec = pod_template(agent)["spec"]
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod_spec["volumes"] if "hostPath" in v}
    main, = pod_spec["containers"]
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    node_name = next(e for e in main["env"] if e["name"] == "K8S_NODE_NAME")
    print(f"otel-agent hostPaths: {host_paths}")
    assert sorted(host_paths.values()) == ["/proc", "/sys", "/var/lib/otelcol-agent", "/var/log/pods"]
    for name, path in host_paths.items():
        # Only its checkpoints are written; the node's own /proc and /sys appear where
        # host_metrics looks for them (root_path /hostfs, agent.yaml).
        assert mounts[name].get("readOnly", False) is (path != "/var/lib/otelcol-agent")
        if path in ("/proc", "/sys"):
            assert mounts[name]["mountPath"] == f"/hostfs{path}"

    assert node_name["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def secret_literals(kustomization: dict) -> list[str]:
    return [lit for gen in kustomization.get("secretGenerator", []) for lit in gen.get("literals", [])]


def test_committed_secret_values_are_marked_development_defaults():
    secretish = re.compile(r"(?i)password|secret|token|key")
    for path in sorted(K8S.rglob("kustomization.yaml")):
        lines = path.read_text().splitlines()
        for literal in secret_literals(yaml.safe_load(path.read_text()) or {}):
            name = literal.split("=", 1)[0]
            if not secretish.search(name):
                continue
            marked = all("# DEVELOPMENT DEFAULT" in line for line in lines if literal in line)
            print(f"{path.relative_to(REPO)}: {name}=... {'marked' if marked else 'NOT MARKED'}")
            assert marked, f"{path}: secret literal {name} is not marked # DEVELOPMENT DEFAULT"


# --- Grafana provisioning --------------------------------------------------------------------

def test_grafana_datasources_link_traces_and_logs():
    provisioned = load_repo_yaml("grafana/provisioning/datasources/datasources.yaml")["datasources"]
    datasources = {d["uid"]: d for d in provisioned}
    tempo, loki = datasources["tempo"]["jsonData"], datasources["loki"]["jsonData"]
    to_logs = tempo["tracesToLogsV2"]
    print(f"tempo -> logs: {to_logs}\nloki derived fields: {loki['derivedFields']}")
    assert to_logs["datasourceUid"] == "loki" and to_logs["customQuery"] is True
    # `$$` is Grafana's escape for a literal `$` (a single one would be read as an env variable).
    assert to_logs["query"] == '{$${__tags}} | trace_id="$${__span.traceId}"'
    assert {"key": "service.name", "value": "service_name"} in to_logs["tags"]
    assert tempo["serviceMap"]["datasourceUid"] == "prometheus"
    assert tempo["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert {"key": "service.name", "value": "service"} in tempo["tracesToMetrics"]["tags"]
    prometheus = datasources["prometheus"]["jsonData"]
    assert prometheus["exemplarTraceIdDestinations"] == [{"name": "trace_id", "datasourceUid": "tempo"}]
    trace_link, = [f for f in loki["derivedFields"] if f["datasourceUid"] == "tempo"]
    assert trace_link["matcherType"] == "label" and trace_link["matcherRegex"] == "trace_id"
    assert trace_link["url"] == "$${__value.raw}"


def test_dashboards_query_the_provisioned_datasources():
    for path in sorted((REPO / "grafana/dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
        uids |= {v["datasource"]["uid"] for v in dashboard.get("templating", {}).get("list", []) if "datasource" in v}
        print(f"{path.name}: uid {dashboard['uid']}, datasources {sorted(uids)}")
        assert uids <= {"tempo", "loki", "prometheus"}, f"{path.name} queries an unprovisioned datasource"
