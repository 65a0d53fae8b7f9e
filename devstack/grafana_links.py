"""Grafana's links between Tempo and Loki as the provisioned datasources define them, filled in the way
Grafana fills their variables: what "View logs" on a span and "View trace" on a log line open."""

from __future__ import annotations

import yaml

from .procs import REPO

DATASOURCES = REPO / "grafana" / "provisioning" / "datasources" / "datasources.yaml"


def provisioned(uid: str) -> dict:
    # Grafana expands $NAME from the environment in provisioning files and turns $$ into a literal $.
    text = DATASOURCES.read_text().replace("$$", "$")
    return next(ds for ds in yaml.safe_load(text)["datasources"] if ds["uid"] == uid)


def view_logs_query(span: dict) -> str:
    """Grafana's tracesToLogsV2 interpolation: ${__tags} from the mapped span/resource attributes.
    `span` is a flattened span as the Tempo model gives it (resource, attributes, ids in hex)."""
    settings = provisioned("tempo")["jsonData"]["tracesToLogsV2"]
    assert settings["datasourceUid"] == "loki" and settings["customQuery"] is True
    attributes = {**span["resource"], **span["attributes"]}
    tags = ", ".join(f'{t.get("value") or t["key"]}="{attributes[t["key"]]}"'
                     for t in settings["tags"] if t["key"] in attributes)
    return (settings["query"].replace("${__tags}", tags)
            .replace("${__span.traceId}", span["trace_id"]).replace("${__span.spanId}", span["span_id"]))
