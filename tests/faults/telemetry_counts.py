"""Counting one service's telemetry at each hop: what the collector tiers accepted, queued and sent
(their own metrics), what the far end accepted (its own metrics), and what the Tempo and Loki models return."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

import yaml

from devstack.collector import metric_sum
from devstack.procs import REPO, say

SERVER = "SPAN_KIND_SERVER"
# Entries per Loki query: the most the shipped config allows.
LOKI_PAGE = yaml.safe_load((REPO / "k8s/loki/loki.yaml").read_text())["limits_config"]["max_entries_limit_per_query"]


@dataclass(frozen=True)
class PipelineCounts:
    """The two collector tiers' own counters: the gateway's (spans and records in, records out to
    Loki, spans out to the sampling tier) and the sampling replicas' (spans in, spans out to Tempo).
    Each process's counters restart from zero with it."""

    accepted_spans: int
    accepted_logs: int
    refused_spans: int
    refused_logs: int
    queued_spans: int
    queued_logs: int
    in_flight: int
    routed_spans: int
    sent_logs: int
    sampler_accepted_spans: int
    sent_spans: int
    send_failed_spans: int
    send_failed_logs: int

    @classmethod
    def read(cls, gateway) -> "PipelineCounts":
        m = gateway.metrics()
        tier = [s.metrics() for s in gateway.samplers]
        both = [m, *tier]

        def total(texts, name, **labels):
            return sum(metric_sum(t, name, **labels) for t in texts)

        return cls(
            accepted_spans=metric_sum(m, "otelcol_receiver_accepted_spans", receiver="otlp"),
            accepted_logs=metric_sum(m, "otelcol_receiver_accepted_log_records", receiver="otlp"),
            refused_spans=total(both, "otelcol_receiver_refused_spans") + total(both, "otelcol_receiver_failed_spans"),
            refused_logs=metric_sum(m, "otelcol_receiver_refused_log_records")
            + metric_sum(m, "otelcol_receiver_failed_log_records"),
            queued_spans=total(both, "otelcol_exporter_queue_size", data_type="traces"),
            queued_logs=metric_sum(m, "otelcol_exporter_queue_size", data_type="logs"),
            in_flight=total(both, "otelcol_exporter_in_flight_requests"),
            routed_spans=metric_sum(m, "otelcol_exporter_sent_spans", exporter="loadbalancing"),
            sent_logs=metric_sum(m, "otelcol_exporter_sent_log_records"),
            sampler_accepted_spans=total(tier, "otelcol_receiver_accepted_spans", receiver="otlp"),
            sent_spans=total(tier, "otelcol_exporter_sent_spans", exporter="otlp_grpc/tempo"),
            send_failed_spans=total(both, "otelcol_exporter_send_failed_spans")
            + total(both, "otelcol_exporter_enqueue_failed_spans"),
            send_failed_logs=metric_sum(m, "otelcol_exporter_send_failed_log_records")
            + metric_sum(m, "otelcol_exporter_enqueue_failed_log_records"),
        )

    def drained(self) -> bool:
        """Nothing waits in a queue or on the wire, and each tier has sent on all it accepted (the
        sampling tier all of it, at the shipped keep-all rate)."""
        return (self.queued_spans == 0 and self.queued_logs == 0 and self.in_flight == 0
                and self.routed_spans >= self.accepted_spans and self.sent_logs >= self.accepted_logs
                and self.sent_spans >= self.sampler_accepted_spans)

    def __str__(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


def wait_for_drain(gateway, timeout: float, quiet_s: float = 3.0) -> PipelineCounts:
    """Waits until both tiers have sent on all they accepted and nothing new has come in for quiet_s: the
    backend's SDKs export their last batch up to a schedule delay (200 ms here) after the load."""
    deadline = time.monotonic() + timeout
    quiet_since, last_note = time.monotonic(), time.monotonic()
    previous = counts = PipelineCounts.read(gateway)
    while time.monotonic() < deadline:
        time.sleep(1)
        counts = PipelineCounts.read(gateway)
        if (counts.accepted_spans, counts.accepted_logs) != (previous.accepted_spans, previous.accepted_logs):
            quiet_since = time.monotonic()
        previous = counts
        if counts.drained() and time.monotonic() - quiet_since >= quiet_s:
            break
        if time.monotonic() - last_note >= 10:
            say(f"waiting for the collector tiers to drain: {counts}")
            last_note = time.monotonic()
    return counts


@dataclass(frozen=True)
class Delivered:
    """One service's telemetry as the user would find it, each span and record counted once even if
    the gateway delivered it twice (at-least-once after a crash)."""

    traces: int
    spans: int
    server_spans: int
    log_records: int


def delivered(far_end, service: str, since_epoch_s: float) -> Delivered:
    """Counted in the Tempo and Loki models: every trace of `service` found by TraceQL, each read
    whole (distinct span ids), and every record of its Loki stream (distinct time, line and ids)."""
    since_s = int(time.time() - since_epoch_s) + 60
    hits = far_end.tempo.search_traceql(f'{{resource.service.name="{service}"}}', limit=10**9, since_s=since_s)
    spans = {(s["span_id"], s["kind"]) for hit in hits for s in far_end.tempo.spans(hit["traceID"])
             if s["resource"].get("service.name") == service}
    return Delivered(len(hits), len(spans), sum(1 for _, kind in spans if kind == SERVER),
                     loki_records(far_end.loki, service, since_s))


def loki_records(loki, service: str, since_s: int, start_ns: int | None = None) -> int:
    """Records of `service` of the last since_s seconds (or from start_ns on), read in pages of the
    most one query may return (as from Loki)."""
    seen: set[tuple] = set()
    query = f'{{service_name="{service}"}}'
    start_ns = time.time_ns() - since_s * 10**9 if start_ns is None else start_ns
    while True:
        page = loki.query(query, since_s=int((time.time_ns() - start_ns) / 1e9) + 1, limit=LOKI_PAGE)
        page = [e for e in page if int(e["ts"]) >= start_ns]
        seen.update((e["ts"], e["line"], e["labels"].get("span_id"), e["labels"].get("trace_id")) for e in page)
        if len(page) < LOKI_PAGE:
            return len(seen)
        last_ns = max(int(e["ts"]) for e in page)
        if last_ns == start_ns:
            raise AssertionError(f"more than {LOKI_PAGE} entries share one timestamp; cannot page")
        start_ns = last_ns  # inclusive: the boundary entries come again and are de-duplicated


def wait_for_far_end(far_end, spans: int, log_records: int, timeout: float, settle_s: float | None = None):
    """Polls the far end's own counters (cheap, at Go speed) until it has accepted `spans` and
    `log_records`; with settle_s, also stops once they have not moved for that long. Returns the
    last reading."""
    deadline = time.monotonic() + timeout
    last, last_change, last_note = None, time.monotonic(), time.monotonic()
    while True:
        got = far_end.accepted()
        now = time.monotonic()
        if got != last:
            last, last_change = got, now
        if (got.spans >= spans and got.log_records >= log_records) or now >= deadline \
                or (settle_s is not None and now - last_change >= settle_s):
            return got
        if now - last_note >= 10:
            say(f"far end accepted {got.spans} of {spans} spans, {got.log_records} of {log_records} log records")
            last_note = now
        time.sleep(1)
