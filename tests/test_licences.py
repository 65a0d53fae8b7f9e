"""No AGPL code is built, linked or fetched: not Loki, Tempo, Grafana, Mimir or k6 by module, and no
package of any kind whose licence is AGPL. The manifests deploy those projects' images; nothing of
theirs is in this repository's builds (the tests' far end is the project's collector and models)."""

from __future__ import annotations

import json
import re
import subprocess
from importlib import metadata

import pytest

from devstack import builds
from devstack.procs import REPO

# Go module paths of AGPL-3.0 projects, with any major-version suffix or package below them.
# github.com/grafana/loki/pkg/push is published as a separate Apache-2.0 module and stays allowed.
AGPL_MODULES = re.compile(
    r"github\.com/grafana/loki(?!/pkg/push\b)(?=[/\s@\"']|$)"
    r"|github\.com/grafana/(tempo|grafana|mimir)(?=[/\s@\"']|$)"
    r"|go\.k6\.io/"
)
AGPL_LICENCE = re.compile(r"(?i)\bAGPL|Affero")
# Every file that pins or fetches a dependency, and every script or recipe that builds one.
PIN_FILES = ("go.mod", "go.sum", "package.json", "package-lock.json", "manifest.yaml", "Makefile", "Dockerfile")
PIN_PATTERNS = (re.compile(r"requirements.*\.txt$"), re.compile(r"\.(sh|mjs)$"), re.compile(r"(^|/)\.ci/"))


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if (REPO / line).is_file()]


def pin_and_build_files() -> list[str]:
    return [f for f in tracked_files()
            if f.rsplit("/", 1)[-1] in PIN_FILES or any(p.search(f) for p in PIN_PATTERNS)]


def test_the_scan_covers_every_kind_of_pin_file():
    files = pin_and_build_files()
    names = {f.rsplit("/", 1)[-1] for f in files}
    assert {"go.mod", "go.sum", "package-lock.json", "manifest.yaml", "Makefile"} <= names, names
    assert any("requirements" in f for f in files) and any(f.endswith(".sh") for f in files)


def test_no_agpl_module_is_pinned_or_fetched():
    hits = []
    for path in pin_and_build_files():
        for no, line in enumerate((REPO / path).read_text(errors="replace").splitlines(), 1):
            if AGPL_MODULES.search(line):
                hits.append(f"{path}:{no}: {line.strip()[:120]}")
    assert not hits, "AGPL modules named where dependencies are pinned or built:\n" + "\n".join(hits)


def test_the_module_pattern_catches_what_it_must():
    for bad in ("github.com/grafana/loki/v3 v3.7.8", "github.com/grafana/tempo v1.5.1-0.2025", "go.k6.io/k6 v1.0.0",
                "go install github.com/grafana/loki/v3/cmd/loki@v3.7.8", "github.com/grafana/mimir/pkg/x"):
        assert AGPL_MODULES.search(bad), bad
    for fine in ("github.com/grafana/loki/pkg/push v0.0.0", "@grafana/lezer-logql", "grafana/tempo:2.8.2",
                 "github.com/grafana/dskit v0.0.0"):
        assert not AGPL_MODULES.search(fine), fine


@pytest.mark.parametrize("lockfile", [f for f in tracked_files() if f.endswith("package-lock.json")])
def test_no_npm_package_is_agpl(lockfile):
    packages = json.loads((REPO / lockfile).read_text())["packages"]
    agpl = {name: meta.get("license") for name, meta in packages.items()
            if AGPL_LICENCE.search(json.dumps(meta.get("license", "")))}
    assert not agpl, f"{lockfile}: AGPL packages {agpl}"


def test_no_python_package_in_the_venv_is_agpl():
    agpl = []
    for dist in metadata.distributions():
        meta = dist.metadata
        licence = " ".join([meta.get("License") or "", meta.get("License-Expression") or "",
                            *(c for c in meta.get_all("Classifier") or [] if c.startswith("License"))])
        if AGPL_LICENCE.search(licence):
            agpl.append(f"{meta['Name']}: {licence.strip()[:80]}")
    assert not agpl, agpl


def test_the_built_collector_resolved_no_agpl_module():
    """collector/build.sh keeps the go.mod the builder resolved beside the binary: every module
    version that went into it, direct or not."""
    resolved = (builds.collector_dir() / "go.mod").read_text()
    hits = [line.strip() for line in resolved.splitlines() if AGPL_MODULES.search(line)]
    assert "go.opentelemetry.io/collector" in resolved
    assert not hits, hits
