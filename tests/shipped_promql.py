"""Every PromQL expression the project ships (rules, dashboards, the Tempo datasource's links) and the
metric names they read, for the tests that check those names against real series."""

from __future__ import annotations

import json
import re

import yaml

from devstack.procs import REPO

# Prefixes of what Prometheus scrapes in a cluster (kube-state-metrics, the kubelets): only a
# cluster has those series.
SCRAPED_IN_A_CLUSTER = ("kube_", "container_", "kubelet_")


def shipped_rules():
    """(file name, rule) for every rule in k8s/prometheus/rules/."""
    for path in sorted((REPO / "k8s" / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield path.name, rule


def shipped_promql() -> dict[str, str]:
    """{where: expression} for every rule, dashboard panel and tracesToMetrics query."""
    exprs = {f"{file}: {rule.get('alert') or rule.get('record')}": rule["expr"] for file, rule in shipped_rules()}
    for path in sorted((REPO / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text()).get("panels", []):
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("uid") == "prometheus":
                    exprs[f"{path.name}: {panel['title']} {target['refId']}"] = target["expr"]
    provisioned = yaml.safe_load((REPO / "grafana/provisioning/datasources/datasources.yaml").read_text())
    for ds in provisioned["datasources"]:
        for query in ds.get("jsonData", {}).get("tracesToMetrics", {}).get("queries", []):
            exprs[f"datasource {ds['uid']}: {query['name']}"] = query["query"]
    return exprs


def metric_names(exprs: dict[str, str]) -> dict[str, set[str]]:
    """{metric name: where it is read} for every name followed by a label matcher."""
    names: dict[str, set[str]] = {}
    for where, expr in exprs.items():
        for name in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", expr):
            names.setdefault(name, set()).add(where)
    return names
