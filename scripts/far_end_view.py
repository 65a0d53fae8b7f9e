"""`make local`'s live terminal view of what reached the far end: each finished trace as a span tree
with durations, the "View logs" query Grafana would run for its SERVER span and what the Loki model
answers to it, and each log line with its trace id. Tempo, Loki and Grafana run in the cluster."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import TextIO

from devstack.grafana_links import view_logs_query

# A trace is printed once no span of it has arrived for this long: the backend exports every
# second (BSP) and the browser's spans come a little later than the backend's.
QUIET_S = 3.0
POLL_S = 0.5
SPAN_KINDS = {0: "", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def span_tree(spans: list) -> list[str]:
    """One line per span, children indented under their parent, siblings in start order."""
    by_id = {s.span_id: s for s in spans}
    children: dict[str, list] = defaultdict(list)
    for s in spans:
        parent = s.parent_span_id if s.parent_span_id in by_id else ""
        children[parent].append(s)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for s in sorted(children[parent], key=lambda s: s.start_time_unix_nano):
            ms = (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6
            kind = SPAN_KINDS.get(s.kind, "")
            lines.append(f"{'  ' * depth}{s.resource.get('service.name', '?')}: {s.name}"
                         f"{f' ({kind})' if kind else ''} {ms:.1f} ms{'  ERROR' if s.status_code == 2 else ''}")
            walk(s.span_id, depth + 1)

    walk("", 0)
    return lines


def flattened(span) -> dict:
    """The span as the Tempo model and Grafana's link see it."""
    return {"trace_id": span.trace_id, "span_id": span.span_id, "resource": span.resource,
            "attributes": span.attributes}


class FarEndView:
    def __init__(self, far_end, out: TextIO):
        self._spans, self._logs, self._out = far_end.trace_sink.spans, far_end.log_sink.logs, out
        self._loki = far_end.loki
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="far-end-view")

    def start(self) -> "FarEndView":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        spans_seen = logs_seen = 0
        pending: dict[str, list] = defaultdict(list)
        last_arrival: dict[str, float] = {}
        while not self._stop.wait(POLL_S):
            now = time.monotonic()
            new_spans = self._spans()[spans_seen:]
            spans_seen += len(new_spans)
            for s in new_spans:
                pending[s.trace_id].append(s)
                last_arrival[s.trace_id] = now
            for record in self._logs()[logs_seen:]:
                logs_seen += 1
                self._print_log(record)
            for trace_id in [t for t, at in last_arrival.items() if now - at >= QUIET_S]:
                self._print_trace(trace_id, pending.pop(trace_id))
                del last_arrival[trace_id]

    def _print_log(self, record) -> None:
        service = record.resource.get("service.name", "unknown_service")
        trace = f" trace_id={record.trace_id}" if record.trace_id.strip("0") else ""
        self._out.write(f"log   {service} {record.severity_text or '-'}: {record.body}{trace}\n")
        self._out.flush()

    def _print_trace(self, trace_id: str, spans: list) -> None:
        ids = {s.span_id for s in spans}
        roots = [s for s in spans if s.parent_span_id not in ids]
        root = min(roots or spans, key=lambda s: s.start_time_unix_nano)
        lines = [f"trace {trace_id} ({len(spans)} spans)", *("  " + line for line in span_tree(spans))]
        # "View logs" on the backend's SERVER span, the one a user opens: the logs are the backend's.
        server = next((s for s in spans if s.kind == 2), root)
        query = view_logs_query(flattened(server))
        lines.append(f"  View logs ({server.name}): {query}")
        found = [e["line"] for e in self._loki.query(query)]
        lines.append(f"    -> {len(found)} line(s) in the Loki model: " + "; ".join(found))
        self._out.write("\n".join(lines) + "\n")
        self._out.flush()
