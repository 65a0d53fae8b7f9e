"""The sampling tier as the cluster runs it (two replicas of collector/sampler.yaml behind the gateway's
loadbalancing exporter) at a 10 % setting: traces with an error or a slow SERVER span are kept whole,
of the fast successful ones about one in ten, and span metrics count every request, kept or not."""

from __future__ import annotations

import math
import os
import time
import uuid

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from devstack import collector
from devstack.otlp_payloads import PROTOBUF, service_resource
from devstack.procs import poll_for, say

FAST, ERRORS, SLOW = 1000, 20, 20
PERCENT = 10
SPANS_PER_TRACE = 4  # the browser's fetch, the backend's SERVER span, its SQL and Redis calls


def _span(trace_id: bytes, span_id: bytes, parent: bytes, name: str, kind: int, start: int, ms: float,
          error: bool = False) -> Span:
    return Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name, kind=kind,
                start_time_unix_nano=start, end_time_unix_nano=start + int(ms * 1e6),
                status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET))


def trace_halves(run: str, server_ms: float, sql_error: bool) -> tuple[bytes, bytes, bytes]:
    """(trace id, the backend's part, the browser's part) of one request, as two OTLP requests: the
    backend exports its spans first, the browser its root span later, as in the real stack."""
    trace_id, fetch, server, now = os.urandom(16), os.urandom(8), os.urandom(8), time.time_ns()
    backend = [_span(trace_id, server, fetch, "POST /api/messages", Span.SPAN_KIND_SERVER, now, server_ms),
               _span(trace_id, os.urandom(8), server, "INSERT board", Span.SPAN_KIND_CLIENT, now, 1, sql_error),
               _span(trace_id, os.urandom(8), server, "GET", Span.SPAN_KIND_CLIENT, now, 0.5)]
    browser = [_span(trace_id, fetch, b"", "POST", Span.SPAN_KIND_CLIENT, now - 1_000_000, server_ms + 2)]
    parts = []
    for service, spans in ((f"backend-{run}", backend), (f"frontend-{run}", browser)):
        parts.append(ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource=service_resource(service, None), scope_spans=[ScopeSpans(spans=spans)])]).SerializeToString())
    return trace_id, parts[0], parts[1]


@pytest.fixture(scope="module")
def sampling_gateway(work_dir, kube_api, far_end, prometheus):
    gw = collector.gateway(work_dir / "gateway-sampling", kube_api, far_end.tempo_otlp_grpc, far_end.loki_otlp_endpoint,
                           prometheus_otlp=prometheus.otlp_endpoint, name="gateway-sampling",
                           sampler_env={"SAMPLING_PERCENT": str(PERCENT), "SAMPLING_SLOW_SERVER_SPAN_MS": "1000"}).start()
    yield gw
    gw.stop()


def test_errors_and_slow_requests_are_kept_whole_and_the_rest_at_the_set_rate(sampling_gateway, tempo, prometheus):
    run = uuid.uuid4().hex[:8]
    kinds = {"fast": (FAST, 5, False), "error": (ERRORS, 5, True), "slow": (SLOW, 1500, False)}
    sent: dict[str, list[str]] = {kind: [] for kind in kinds}
    http = requests.Session()
    for kind, (count, server_ms, error) in kinds.items():
        for _ in range(count):
            trace_id, backend, browser = trace_halves(run, server_ms, error)
            for body in (backend, browser):
                resp = http.post(f"{sampling_gateway.otlp_http}/v1/traces", data=body, headers=PROTOBUF, timeout=10)
                assert resp.status_code == 200, resp.text
            sent[kind].append(trace_id.hex())
    say(f"sent {sum(len(v) for v in sent.values())} traces of {SPANS_PER_TRACE} spans in two parts each")

    def found(kind: str) -> dict[str, int]:
        return {t: n for t in sent[kind] if (n := len(tempo.spans(t)))}

    poll_for(lambda: [1] if len(found("error")) == ERRORS and len(found("slow")) == SLOW else [], 1, 60,
             "every error and slow trace at the far end", interval=1)
    # Decisions come 1 s after a root, at the latest 10 s after a trace's first span: after that,
    # nothing more of this run can arrive.
    time.sleep(15)
    kept = {kind: found(kind) for kind in kinds}
    mean, sd = FAST * PERCENT / 100, math.sqrt(FAST * PERCENT / 100 * (1 - PERCENT / 100))
    low, high = math.floor(mean - 4.5 * sd), math.ceil(mean + 4.5 * sd)
    per_replica = [s.metric("otelcol_receiver_accepted_spans", receiver="otlp") for s in sampling_gateway.samplers]
    print(f"\nat SAMPLING_PERCENT={PERCENT}: kept {len(kept['error'])}/{ERRORS} error traces, {len(kept['slow'])}/{SLOW} "
          f"slow ones, {len(kept['fast'])}/{FAST} fast ones (binomial bounds {low}-{high}); spans per kept trace "
          f"{sorted(set(n for k in kept.values() for n in k.values()))}; spans taken per sampling replica {per_replica}")

    assert all(n == SPANS_PER_TRACE for k in kept.values() for n in k.values()), "a kept trace is not whole"
    assert len(kept["error"]) == ERRORS and len(kept["slow"]) == SLOW
    assert low <= len(kept["fast"]) <= high
    assert all(n > 0 for n in per_replica), "a sampling replica took no spans"

    # RED metrics count every request, kept or not (summed over the replicas that counted them).
    calls = (f'sum(traces_spanmetrics_calls_total{{service="backend-{run}", span_kind="SPAN_KIND_SERVER"}})')
    counted = poll_for(lambda: [r for r in prometheus.query(calls) if float(r["value"][1]) >= FAST + ERRORS + SLOW],
                       1, 60, f"{FAST + ERRORS + SLOW} calls in {calls}", interval=2)
    assert float(counted[0]["value"][1]) == FAST + ERRORS + SLOW
