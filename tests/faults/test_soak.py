"""A soak at moderate load through the whole pipeline: memory of the backend workers, the gateway and
the sampling replicas must level off, not creep. SOAK_SECONDS (default 300) sets the measured span
after warm-up."""

from __future__ import annotations

import os
import statistics
import time

import pytest

from devstack.proc_stats import children, rss_kb
from devstack.procs import say

from .board_traffic import BoardTraffic
from .telemetry_counts import delivered, wait_for_drain, wait_for_far_end

SOAK_S = int(os.environ.get("SOAK_SECONDS", "300"))
WARMUP_S = 60  # imports, connection pools, caches and the Go heap settle first
SAMPLE_EVERY_S = 10
WINDOW_S = min(60, SOAK_S // 2)  # first vs last minute (shorter only when SOAK_SECONDS < 120)
MAX_GROWTH = 0.10
# A login's password hash (werkzeug's scrypt, n=2**15, r=8) holds a 32 MiB buffer for the ~0.1 s
# it runs; a single read lands on one at random and swings a worker's RSS by 50%. Each sample is
# the lowest of a quick burst of reads: the worker's settled memory, which is what must not creep.
BURST_READS, BURST_GAP_S = 20, 0.1  # 2 s: outlasts a hash slowed down by a busy machine
# Six threads pausing 0.25 s between requests: about 20 req/s when a request takes ~50 ms.
THREADS, PAUSE_S = 6, 0.25


def settled_rss_kb(pids: dict[str, int]) -> dict[str, int]:
    lowest = {name: rss_kb(pid) for name, pid in pids.items()}
    for _ in range(BURST_READS - 1):
        time.sleep(BURST_GAP_S)
        lowest = {name: min(kb, rss_kb(pids[name])) for name, kb in lowest.items()}
    return lowest


def growth(series: list[tuple[float, int]]) -> tuple[float, float, float]:
    """Mean RSS of the first and the last window's samples and the relative growth between them."""
    n = max(1, WINDOW_S // SAMPLE_EVERY_S)
    first = statistics.mean(kb for _, kb in series[:n])
    last = statistics.mean(kb for _, kb in series[-n:])
    return first, last, last / first - 1


@pytest.mark.slow
@pytest.mark.timeout(WARMUP_S + SOAK_S + 600)
def test_soak_memory_levels_off_and_no_request_fails(pipeline, traced_backend):
    """Asserted, over SOAK_SECONDS after a WARMUP_S warm-up, with RSS sampled every SAMPLE_EVERY_S
    (each sample settled, see BURST_READS): each gunicorn worker's, the gateway's and each sampling
    replica's mean RSS over the last minute is at most MAX_GROWTH above the first minute's; the
    workers are the same processes throughout (none was restarted); every request is answered 2xx; and afterwards the
    collector tiers drain, refusing and failing nothing, the far end accepted all the gateway did, the
    Tempo model holds one trace per request and the Loki model every log record."""
    gateway, far_end = pipeline.gateway, pipeline.far_end
    traffic = BoardTraffic.signed_up(traced_backend.url)
    master = traced_backend.backend.process.pid

    with traffic.steady_load(threads=THREADS, interval_s=PAUSE_S, max_requests=10**7) as load:
        say(f"soak: warming up for {WARMUP_S}s, then measuring for {SOAK_S}s")
        time.sleep(WARMUP_S)
        workers = children(master)
        assert workers, "gunicorn has no workers"
        watched = ({f"worker {pid}": pid for pid in workers} | {"gateway": gateway.process.pid}
                   | {s.name.removeprefix("gateway-"): s.process.pid for s in gateway.samplers})
        series: dict[str, list[tuple[float, int]]] = {name: [] for name in watched}
        requests_at_start = load.snapshot().total
        t0 = time.monotonic()
        for i in range(SOAK_S // SAMPLE_EVERY_S + 1):
            time.sleep(max(0.0, t0 + i * SAMPLE_EVERY_S - time.monotonic()))
            elapsed = time.monotonic() - t0
            for name, kb in settled_rss_kb(watched).items():
                series[name].append((elapsed, kb))
            if i % (60 // SAMPLE_EVERY_S) == 0:
                say(f"soak {elapsed:.0f}s/{SOAK_S}s: {load.snapshot().summary()}; RSS MiB "
                    + ", ".join(f"{n}={s[-1][1] / 1024:.1f}" for n, s in series.items()))
        workers_at_end = children(master)
        rate = (load.snapshot().total - requests_at_start) / (time.monotonic() - t0)
    result = load.result
    say(f"soak load stopped: {result.summary()}")

    # Memory first: the verdict the soak exists for is printed whatever the delivery checks find.
    print(f"\nsoak {SOAK_S}s after {WARMUP_S}s warm-up: {result.summary()}; {traffic.summary()}; "
          f"{rate:.1f} req/s while measured")
    print(f"  RSS MiB every {SAMPLE_EVERY_S}s:\n       t  " + "  ".join(series))
    for i in range(len(series["gateway"])):
        print(f"  {series['gateway'][i][0]:6.0f}  " + "  ".join(f"{s[i][1] / 1024:8.1f}" for s in series.values()))
    verdicts = {name: growth(s) for name, s in series.items()}
    for name, (first, last, change) in verdicts.items():
        print(f"  {name}: first {WINDOW_S}s mean {first / 1024:.1f} MiB, last {WINDOW_S}s mean "
              f"{last / 1024:.1f} MiB, growth {change:+.1%} (limit {MAX_GROWTH:.0%})")

    drained = wait_for_drain(gateway, timeout=180)
    sent_traces, sent_logs = traffic.server_spans(), traffic.log_records()
    reached = wait_for_far_end(far_end, drained.accepted_spans, drained.accepted_logs, timeout=120)
    found = delivered(far_end, traced_backend.service, traffic.started_epoch)
    traces, delivered_logs = found.traces, found.log_records
    print(f"  collector tiers after the load: {drained}")
    print(f"  far end accepted {reached}; Tempo: {traces} traces for {sent_traces} requests; Loki: "
          f"{delivered_logs} records, gateway accepted {drained.accepted_logs}, backend emitted {sent_logs}")

    assert set(result.counts) <= {"200", "201"}, result.summary()
    assert workers_at_end == workers, f"gunicorn workers changed during the soak: {workers} -> {workers_at_end}"
    for name, (_, _, change) in verdicts.items():
        assert change <= MAX_GROWTH, f"{name} RSS grew {change:.1%} between the first and the last minute"
    assert drained.drained() and drained.refused_spans == 0 and drained.refused_logs == 0, str(drained)
    assert drained.send_failed_spans == 0 and drained.send_failed_logs == 0, str(drained)
    assert reached.spans == drained.accepted_spans and reached.log_records == drained.accepted_logs
    assert traces == sent_traces
    assert delivered_logs == drained.accepted_logs == sent_logs
