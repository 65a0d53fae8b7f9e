"""The Loki and Tempo the tests build from tools/ are the ones the cluster runs (k8s image tags)."""

from __future__ import annotations

import re

import yaml

from harness.procs import REPO


def image_tag(component: str) -> str:
    kustomization = yaml.safe_load((REPO / "k8s" / component / "kustomization.yaml").read_text())
    return str(kustomization["images"][0]["newTag"])


def required_version(tool: str, module: str) -> str:
    gomod = (REPO / "tools" / tool / "go.mod").read_text()
    return re.search(rf"^(?:require )?\s*{re.escape(module)} (\S+)", gomod, re.M).group(1)


def test_loki_image_is_the_built_release():
    assert "v" + image_tag("loki") == required_version("loki", "github.com/grafana/loki/v3")


def test_tempo_image_is_the_built_commit():
    pseudo = required_version("tempo", "github.com/grafana/tempo")
    commit = pseudo.rsplit("-", 1)[-1]
    assert image_tag("tempo") == f"main-{commit[:7]}"
