"""Renders k8s/ and its overlays with the kustomize of a kubectl built from the pinned
k8s.io/kubernetes; the machine's own kubectl is not a pin (tests/README.md, "The harness")."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from . import builds
from .procs import REPO

K8S = REPO / "k8s"


def entry_points() -> dict[str, Path]:
    """k8s/ itself and every overlay: each must render on its own."""
    points = {"default": K8S}
    for directory in sorted((K8S / "overlays").iterdir()):
        if (directory / "kustomization.yaml").is_file():
            points[f"overlays/{directory.name}"] = directory
    return points


ENTRY_POINTS = entry_points()


def uncommitted_secret_files(directory: Path) -> list[Path]:
    """Secret env files the kustomization reads that git does not hold (each has a .example)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    files = [directory / f for gen in kustomization.get("secretGenerator", []) for f in gen.get("envs", [])]
    return [f for f in files if Path(f"{f}.example").is_file()]


def stage_with_example_secrets(directory: Path, stage_root: Path) -> Path:
    """A copy of an overlay whose secret env files are its committed *.env.example files, so it
    renders without real secrets and without writing into the repo."""
    stage = stage_root / directory.name
    shutil.copytree(directory, stage)
    for example in stage.rglob("*.env.example"):
        shutil.copyfile(example, example.with_suffix(""))
    kustomization_file = stage / "kustomization.yaml"
    kustomization = yaml.safe_load(kustomization_file.read_text())
    for key in ("resources", "components"):
        # kustomize accepts only relative roots: re-point each base from the copy's location.
        kustomization[key] = [
            os.path.relpath((directory / entry).resolve(), stage) if entry.startswith("..") else entry
            for entry in kustomization.get(key, [])
        ]
    kustomization_file.write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return stage


@functools.lru_cache(maxsize=None)
def render(entry: str) -> tuple[dict, ...]:
    """The objects `kubectl apply -k` would send for an entry point ("default", "overlays/kind", ...)."""
    return render_directory(ENTRY_POINTS[entry])


def render_directory(directory: Path) -> tuple[dict, ...]:
    """The objects `kubectl apply -k directory` would send (an overlay outside k8s/, such as the test cluster's)."""
    with tempfile.TemporaryDirectory(prefix="k8s-render-") as tmp:
        source = directory
        if uncommitted_secret_files(directory):
            source = stage_with_example_secrets(directory, Path(tmp))
        proc = subprocess.run([builds.tool("kubectl"), "kustomize", str(source)], capture_output=True, text=True,
                              timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed:\n{proc.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def workload(kind: str, name: str, namespace: str | None = None, entry: str = "default") -> dict:
    """The one rendered object of this kind and name (in `namespace`, when given)."""
    (found,) = [o for o in render(entry) if o["kind"] == kind and o["metadata"]["name"] == name
                and namespace in (None, o["metadata"].get("namespace"))]
    return found


def container(kind: str, name: str, entry: str = "default") -> dict:
    """The first container of a workload's pod template, as rendered."""
    return workload(kind, name, entry=entry)["spec"]["template"]["spec"]["containers"][0]


_UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def quantity_bytes(value: str) -> int:
    """A manifest's binary quantity ("512Mi") in bytes."""
    for suffix, factor in _UNITS.items():
        if value.endswith(suffix):
            return int(value[: -len(suffix)]) * factor
    return int(value)


def local_args(kind: str, name: str, **local: str) -> list[str]:
    """The container's args with the flags named in `local` (paths, listen addresses) given the
    local values instead: `local_args("StatefulSet", "prometheus", **{"--config.file": path})`."""
    args = [a for a in container(kind, name).get("args", []) if a.split("=", 1)[0] not in local]
    return [f"{flag}={value}" for flag, value in local.items()] + args


def go_runtime_env(kind: str, name: str) -> dict[str, str]:
    """GOGC and GOMEMLIMIT as a collector workload sets them: its CPU and memory depend on both."""
    return {e["name"]: e["value"] for e in container(kind, name).get("env", []) if e["name"] in ("GOGC", "GOMEMLIMIT")}
