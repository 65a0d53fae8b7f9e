"""The backend uses OpenTelemetry through its public API only: no module of backend/ reads or writes
a private attribute, or imports a private name, of an OpenTelemetry class or module, so that an
upgrade of the pinned packages cannot break it silently."""

from __future__ import annotations

import ast

from devstack.procs import REPO

# The logs signal is still in development upstream: these are the import paths its documentation gives.
DOCUMENTED_PRIVATE_MODULES = {"opentelemetry._logs", "opentelemetry.sdk._logs", "opentelemetry.sdk._logs.export",
                              "opentelemetry.exporter.otlp.proto.http._log_exporter"}


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def findings(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("getattr", "setattr", "hasattr", "delattr"):
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and private(str(node.args[1].value)):
                found.append(f"line {node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("opentelemetry"):
            for alias in node.names:
                module = f"{node.module}.{alias.name}"
                if private(alias.name) and module not in DOCUMENTED_PRIVATE_MODULES:
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
            if any(private(part) for part in node.module.split(".")) and node.module not in DOCUMENTED_PRIVATE_MODULES:
                found.append(f"line {node.lineno}: from {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("opentelemetry") and any(private(p) for p in alias.name.split(".")):
                    found.append(f"line {node.lineno}: import {alias.name}")
    return found


def test_no_backend_module_touches_a_private_name():
    modules = sorted((REPO / "backend").rglob("*.py"))
    assert len(modules) > 10
    hits = {str(m.relative_to(REPO)): f for m in modules if (f := findings(m.read_text()))}
    assert not hits, hits


def test_the_check_catches_what_the_old_backend_did():
    assert findings("exporter._client.export(data)")
    assert findings("processor._batch_processor.emit(record)")
    assert findings("getattr(exporter, '_shutdown')")
    assert findings("from opentelemetry.exporter.otlp.proto.http._common import _is_request_too_large")
    assert not findings("from opentelemetry.sdk._logs import LoggerProvider\nself._app = app")
