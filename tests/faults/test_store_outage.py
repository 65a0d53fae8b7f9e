"""Tempo and Loki (the far end) down together for a minute under a steady request load: the collector
tiers keep accepting into their file_storage queues (spans in the sampling tier's, records in the
gateway's) and deliver every span and record once the stores are back."""

from __future__ import annotations

import time

import pytest

from devstack.procs import say

from .board_traffic import BoardTraffic
from .telemetry_counts import PipelineCounts, delivered, wait_for_drain, wait_for_far_end

WARM_S = 10
OUTAGE_S = 60
AFTER_S = 10
# The exporters' retry back-off grows to max_interval 30 s (gateway.yaml), randomised by up to 50%:
# the first retry after the stores return can be 45 s away, then the queue drains.
DRAIN_TIMEOUT_S = 180


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_tempo_and_loki_down_a_minute_every_accepted_span_and_record_arrives(pipeline, traced_backend):
    """Asserted: every request answered 2xx; the tiers refused nothing and queued while the stores
    were down; afterwards their queues drain with no failed send, and for this service Tempo holds
    exactly the spans the gateway accepted (and one SERVER span per request served) and Loki exactly
    the log records it accepted. The far end is stopped and started again on the same ports, keeping
    what it had stored, as a Tempo and Loki restarted with their volumes would. (What a SIGKILLed
    Tempo loses of what it had acknowledged is Tempo's own matter, not the pipeline's.)"""
    gateway, far_end = pipeline.gateway, pipeline.far_end
    traffic = BoardTraffic.signed_up(traced_backend.url)

    with traffic.steady_load() as load:
        time.sleep(WARM_S)
        stopping = time.monotonic()
        far_end.stop()
        down_at = time.monotonic()
        say(f"far end (Tempo and Loki) stopped by SIGTERM in {down_at - stopping:.1f}s; down for {OUTAGE_S}s under load")
        while time.monotonic() - down_at < OUTAGE_S:
            time.sleep(min(15, OUTAGE_S - (time.monotonic() - down_at)))
            say(f"{time.monotonic() - down_at:.0f}s down: {load.snapshot().total} requests; "
                f"collector tiers {PipelineCounts.read(gateway)}")
        at_return = PipelineCounts.read(gateway)
        far_end.start()
        say(f"far end (Tempo and Loki) back after {time.monotonic() - down_at:.0f}s")
        time.sleep(AFTER_S)
    result = load.result
    say(f"load stopped: {result.summary()}")

    drained = wait_for_drain(gateway, timeout=DRAIN_TIMEOUT_S)
    say(f"collector tiers drained: {drained}")
    reached = wait_for_far_end(far_end, drained.accepted_spans, drained.accepted_logs, timeout=120)
    spans = delivered(far_end, traced_backend.service, traffic.started_epoch)
    delivered_logs = spans.log_records
    sent_spans, sent_logs = traffic.server_spans(), traffic.log_records()

    print(f"\nTempo+Loki {OUTAGE_S}s outage under load: {result.summary()}; {traffic.summary()}")
    print(f"  collector tiers when the stores returned: {at_return}")
    print(f"  collector tiers after draining: {drained}")
    print(f"  far end accepted: {reached}")
    print(f"  spans: sent {sent_spans} server spans (1 per request); accepted {drained.accepted_spans} spans; "
          f"delivered {spans.spans} spans, {spans.server_spans} server spans in {spans.traces} traces")
    print(f"  logs: sent {sent_logs} records; accepted {drained.accepted_logs}; delivered {delivered_logs}")

    assert set(result.counts) <= {"200", "201"}, result.summary()
    assert at_return.queued_spans > 0 and at_return.queued_logs > 0, "nothing was queued during the outage"
    assert drained.refused_spans == 0 and drained.refused_logs == 0, str(drained)
    assert drained.drained(), f"the collector tiers did not drain within {DRAIN_TIMEOUT_S}s: {drained}"
    assert drained.send_failed_spans == 0 and drained.send_failed_logs == 0, str(drained)
    assert reached.spans == drained.accepted_spans and reached.log_records == drained.accepted_logs
    assert spans.spans == drained.accepted_spans
    assert spans.server_spans == sent_spans
    assert delivered_logs == drained.accepted_logs
    assert delivered_logs == sent_logs
