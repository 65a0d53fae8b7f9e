"""Tempo (built from its Go module) in monolithic mode with the config that ships in k8s/tempo/."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .grafana_store import GrafanaStore
from .procs import REPO, free_port

CONFIG = REPO / "k8s" / "tempo" / "tempo.yaml"


class Tempo(GrafanaStore):
    def __init__(self, base_dir: Path, name: str = "tempo"):
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.otlp_grpc_port = free_port()
        self.otlp_http_port = free_port()
        self.data_dir = base_dir / f"{name}-data"
        self._launch("tempo", CONFIG, base_dir, name, {
            "TEMPO_HTTP_PORT": str(self.http_port),
            "TEMPO_GRPC_PORT": str(self.grpc_port),
            "TEMPO_OTLP_GRPC_PORT": str(self.otlp_grpc_port),
            "TEMPO_OTLP_HTTP_PORT": str(self.otlp_http_port),
            "TEMPO_DATA_DIR": str(self.data_dir),
            "TEMPO_LOG_LEVEL": "warn",
        })

    @property
    def otlp_grpc(self) -> str:
        return f"127.0.0.1:{self.otlp_grpc_port}"

    def stop(self) -> None:
        # A graceful stop cuts the live traces to the WAL (about 5 s here); a SIGKILL before that
        # loses the traces acknowledged in the last trace_idle_period. The grace is still bounded:
        # this Tempo can hang on SIGTERM after a recent query (grafana/tempo #5733).
        self.process.stop(timeout=10)

    def _get(self, path: str, params: dict[str, str] | None = None) -> dict | None:
        url = self.url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise

    def search_traceql(self, traceql: str, limit: int = 100, since_s: int = 3600) -> list[dict]:
        now = int(time.time())
        data = self._get("/api/search", {"q": traceql, "limit": str(limit), "start": str(now - since_s),
                                         "end": str(now + 60)})
        return (data or {}).get("traces", [])

    def search_tags(self, tags: str, limit: int = 100, since_s: int = 3600) -> list[dict]:
        now = int(time.time())
        data = self._get("/api/search", {"tags": tags, "limit": str(limit), "start": str(now - since_s),
                                         "end": str(now + 60)})
        return (data or {}).get("traces", [])

    def trace(self, trace_id: str) -> dict | None:
        return self._get(f"/api/traces/{trace_id}")

    def spans(self, trace_id: str) -> list[dict]:
        """The trace flattened: one dict per span with its resource and scope attached."""
        data = self.trace(trace_id)
        if not data:
            return []
        spans = []
        for batch in data.get("batches", data.get("resourceSpans", [])):
            resource = {a["key"]: _value(a["value"]) for a in batch.get("resource", {}).get("attributes", [])}
            for scope in batch.get("scopeSpans", batch.get("instrumentationLibrarySpans", [])):
                for span in scope.get("spans", []):
                    spans.append({
                        "trace_id": _hex(span["traceId"]), "span_id": _hex(span["spanId"]),
                        "parent_span_id": _hex(span.get("parentSpanId", "")), "name": span["name"],
                        "kind": span.get("kind", ""), "resource": resource,
                        "attributes": {a["key"]: _value(a["value"]) for a in span.get("attributes", [])},
                        "scope": scope.get("scope", {}).get("name", ""),
                    })
        return spans

    def wait_for_trace(self, trace_id: str, min_spans: int = 1, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        spans: list[dict] = []
        while time.monotonic() < deadline:
            spans = self.spans(trace_id)
            if len(spans) >= min_spans:
                return spans
            time.sleep(0.25)
        raise AssertionError(f"Tempo returned {len(spans)} < {min_spans} spans of {trace_id} within {timeout}s")


def _value(value: dict):
    for key in ("stringValue", "intValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    return value


def _hex(span_or_trace_id: str) -> str:
    """Tempo's JSON gives ids in base64 (protobuf JSON mapping); tests compare lowercase hex."""
    import base64

    if not span_or_trace_id:
        return ""
    if all(c in "0123456789abcdef" for c in span_or_trace_id.lower()) and len(span_or_trace_id) in (16, 32):
        return span_or_trace_id.lower()
    return base64.b64decode(span_or_trace_id).hex()
