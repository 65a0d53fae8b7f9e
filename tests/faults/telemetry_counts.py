"""Counting one service's telemetry at each hop: what the gateway accepted, queued and sent (its own
metrics), and what Tempo and Loki return, each span and record counted once even if delivered twice."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Callable

import requests
import yaml

from harness.loki import CONFIG as LOKI_CONFIG
from harness.procs import say

_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$")
SERVER = "SPAN_KIND_SERVER"
# Entries per Loki query: the most the shipped config allows (tests/test_loki_limits.py shows a
# page that size of records like the backend's comes back).
LOKI_PAGE = yaml.safe_load(LOKI_CONFIG.read_text())["limits_config"]["max_entries_limit_per_query"]


def metric_sum(text: str, name: str, **labels: str) -> int:
    """Sum of every series called `name` whose labels include `labels` (Prometheus text format)."""
    total = 0.0
    for line in text.splitlines():
        match = _SERIES.match(line)
        if match and match.group(1) == name and all(f'{k}="{v}"' in (match.group(2) or "") for k, v in labels.items()):
            total += float(match.group(3))
    return int(total)


@dataclass(frozen=True)
class GatewayCounts:
    """The gateway's counters since its process started (they restart from zero with it)."""

    accepted_spans: int
    accepted_logs: int
    refused_spans: int
    refused_logs: int
    queued_spans: int
    queued_logs: int
    in_flight: int
    sent_spans: int
    sent_logs: int
    send_failed_spans: int
    send_failed_logs: int

    @classmethod
    def read(cls, gateway) -> "GatewayCounts":
        m = gateway.metrics()
        return cls(
            accepted_spans=metric_sum(m, "otelcol_receiver_accepted_spans", receiver="otlp"),
            accepted_logs=metric_sum(m, "otelcol_receiver_accepted_log_records", receiver="otlp"),
            refused_spans=metric_sum(m, "otelcol_receiver_refused_spans")
            + metric_sum(m, "otelcol_receiver_failed_spans"),
            refused_logs=metric_sum(m, "otelcol_receiver_refused_log_records")
            + metric_sum(m, "otelcol_receiver_failed_log_records"),
            queued_spans=metric_sum(m, "otelcol_exporter_queue_size", data_type="traces"),
            queued_logs=metric_sum(m, "otelcol_exporter_queue_size", data_type="logs"),
            in_flight=metric_sum(m, "otelcol_exporter_in_flight_requests"),
            sent_spans=metric_sum(m, "otelcol_exporter_sent_spans"),
            sent_logs=metric_sum(m, "otelcol_exporter_sent_log_records"),
            send_failed_spans=metric_sum(m, "otelcol_exporter_send_failed_spans")
            + metric_sum(m, "otelcol_exporter_enqueue_failed_spans"),
            send_failed_logs=metric_sum(m, "otelcol_exporter_send_failed_log_records")
            + metric_sum(m, "otelcol_exporter_enqueue_failed_log_records"),
        )

    def drained(self) -> bool:
        """Nothing waits in the queue or on the wire, and all it accepted has been sent."""
        return (self.queued_spans == 0 and self.queued_logs == 0 and self.in_flight == 0
                and self.sent_spans >= self.accepted_spans and self.sent_logs >= self.accepted_logs)

    def __str__(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


def wait_for_drain(gateway, timeout: float, quiet_s: float = 3.0) -> GatewayCounts:
    """Waits until the gateway has sent all it accepted and nothing new has come in for quiet_s: the
    backend's SDKs export their last batch up to a schedule delay (200 ms here) after the load."""
    deadline = time.monotonic() + timeout
    quiet_since, last_note = time.monotonic(), time.monotonic()
    previous = counts = GatewayCounts.read(gateway)
    while time.monotonic() < deadline:
        time.sleep(1)
        counts = GatewayCounts.read(gateway)
        if (counts.accepted_spans, counts.accepted_logs) != (previous.accepted_spans, previous.accepted_logs):
            quiet_since = time.monotonic()
        previous = counts
        if counts.drained() and time.monotonic() - quiet_since >= quiet_s:
            break
        if time.monotonic() - last_note >= 10:
            say(f"waiting for the gateway queue to drain: {counts}")
            last_note = time.monotonic()
    return counts


@dataclass(frozen=True)
class TempoCount:
    traces: int
    spans: int
    server_spans: int


def tempo_trace_ids(tempo, service: str, since_epoch_s: float) -> set[str]:
    """Ids of every trace with a span of `service` (one per request here: no incoming traceparent)."""
    resp = requests.get(tempo.url + "/api/search", timeout=30, params={
        "q": f'{{resource.service.name="{service}"}}',
        # max_result_limit is 0 (unlimited) in our config; spss=1 keeps the answer small: only
        # the ids are needed.
        "limit": "1000000", "spss": "1",
        "start": str(int(since_epoch_s) - 60), "end": str(int(time.time()) + 60),
    })
    resp.raise_for_status()
    return {t["traceID"] for t in resp.json().get("traces", [])}


def tempo_count(tempo, service: str, since_epoch_s: float) -> TempoCount:
    """Every trace of `service` found by TraceQL, each fetched whole: distinct span ids, so a batch
    the gateway delivered twice (at-least-once after a crash) is counted once."""
    trace_ids = tempo_trace_ids(tempo, service, since_epoch_s)
    with ThreadPoolExecutor(8) as pool:
        traces = list(pool.map(tempo.spans, sorted(trace_ids)))
    spans = {(s["span_id"], s["kind"]) for trace in traces for s in trace
             if s["resource"].get("service.name") == service}
    return TempoCount(len(trace_ids), len(spans), sum(1 for _, kind in spans if kind == SERVER))


def loki_count(loki, service: str, since_epoch_s: float) -> int:
    """Log records of `service` in Loki, read page by page; each counted once by (time, line, ids)."""
    seen: set[tuple] = set()
    start_ns = int((since_epoch_s - 60) * 1e9)
    end_ns = time.time_ns() + 60 * 10**9
    while True:
        resp = requests.get(loki.url + "/loki/api/v1/query_range", timeout=30, params={
            "query": f'{{service_name="{service}"}}', "start": str(start_ns), "end": str(end_ns),
            "limit": str(LOKI_PAGE), "direction": "forward",
        })
        resp.raise_for_status()
        page = [(int(v[0]), v[1], s["stream"].get("span_id"), s["stream"].get("trace_id"))
                for s in resp.json()["data"]["result"] for v in s["values"]]
        seen.update(page)
        if len(page) < LOKI_PAGE:
            return len(seen)
        last_ns = max(entry[0] for entry in page)
        if last_ns == start_ns:
            raise AssertionError(f"more than {LOKI_PAGE} entries share one timestamp; cannot page")
        start_ns = last_ns  # inclusive: the boundary entries come again and are de-duplicated


def wait_for_count(count: Callable[[], int], want: int, timeout: float, what: str,
                   settle_s: float | None = None) -> int:
    """Polls count() until it reaches `want`. With settle_s, also stops once the count has not moved
    for that long (where some loss is allowed). Gives up after `timeout`; returns the last count.
    A failed or timed-out query is one more poll, reported, not the end of the test."""
    deadline = time.monotonic() + timeout
    last, last_change, last_note = -1, time.monotonic(), time.monotonic()
    while True:
        try:
            value = count()
        except requests.RequestException as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what}: no answer within {timeout:.0f}s (last error: {exc!r})") from exc
            say(f"{what}: query failed, polling again: {exc!r}")
            time.sleep(2)
            continue
        now = time.monotonic()
        if value != last:
            last, last_change = value, now
        if value >= want or now >= deadline or (settle_s is not None and now - last_change >= settle_s):
            return value
        if now - last_note >= 10:
            say(f"{what}: {value} of {want} so far")
            last_note = now
        time.sleep(2)
