"""The gateway collector SIGKILLed under a steady request load and started again on the same storage
directory and ports, as a kubelet restarts a crashed container with its emptyDir kept."""

from __future__ import annotations

import time

from devstack.procs import say

from .board_traffic import BoardTraffic
from .telemetry_counts import PipelineCounts, delivered, wait_for_drain, wait_for_far_end

WARM_S = 15  # load before the kill, so the gateway holds a queue and the SDKs an open connection
DEAD_S = 3  # the gateway stays dead this long before it is started again (kubelet's first back-off is 10 s)
AFTER_S = 15  # load after the restart
# A span (or log record) can only be lost if the SDK exporter gave it up: it was batched at most one
# schedule delay (200 ms in tests) plus one export before the kill, and the exporter's last retry
# against the dead gateway began before the gateway was ready again. A second of margin each side.
MARGIN_S = 1.0


def test_gateway_sigkill_under_load_delivers_all_it_accepted(pipeline, traced_backend):
    """What the gateway had accepted before the kill sits in its file_storage queue (exporters batch
    inside that queue; gateway.yaml has no batch processor, so nothing is held in memory only) and
    must all reach the far end (Tempo and Loki) after the restart. What the backend's SDK had not yet handed
    over is retried by the OTLP/HTTP exporter (connection errors: backoff 1, 2, 4 s within its 10 s
    timeout) and dropped only when that runs out.

    Asserted:
    - the backend answers every request 2xx: its exporters work on their own threads;
    - delivered >= accepted-before-kill, for spans in the Tempo model and for log records in the
      Loki model (accepted = the gateway's otelcol_receiver_accepted_* read just before the kill);
    - overall loss (server spans vs requests served, log records vs records emitted) is at most
      what the backend produced from MARGIN_S before the kill to MARGIN_S after the gateway was
      ready again: the SDK batches in flight during the outage;
    - the restarted gateway drains its queue with no failed sends.
    """
    gateway, far_end = pipeline.gateway, pipeline.far_end
    traffic = BoardTraffic.signed_up(traced_backend.url)

    with traffic.steady_load() as load:
        time.sleep(WARM_S)
        before = PipelineCounts.read(gateway)
        killed_at = time.monotonic()
        gateway.process.kill()
        say(f"gateway SIGKILLed after {before.accepted_spans} spans / {before.accepted_logs} log records accepted")
        time.sleep(DEAD_S)
        gateway.start()
        ready_at = time.monotonic()
        say(f"gateway ready again {ready_at - killed_at:.1f}s after the kill")
        time.sleep(AFTER_S)
    result = load.result
    say(f"load stopped: {result.summary()}")

    after = wait_for_drain(gateway, timeout=120)
    sent_spans = traffic.server_spans()
    sent_logs = traffic.log_records()
    window = (killed_at - MARGIN_S, ready_at + MARGIN_S)
    at_risk_spans = traffic.server_spans(*window)
    at_risk_logs = traffic.log_records(*window)
    during_outage = traffic.server_spans(killed_at, ready_at)

    # Loss is allowed (bounded), so stop waiting once the far end's counts stop moving.
    reached = wait_for_far_end(far_end, after.accepted_spans, after.accepted_logs, timeout=120, settle_s=20)
    spans = delivered(far_end, traced_backend.service, traffic.started_epoch)
    delivered_logs = spans.log_records

    print(f"\ngateway SIGKILL under load: {result.summary()}; {traffic.summary()}; "
          f"{during_outage} answered while the gateway was down ({ready_at - killed_at:.1f}s)")
    print(f"  spans: sent {sent_spans} server spans (1 per request); accepted before the kill "
          f"{before.accepted_spans} (all kinds); accepted after the restart {after.accepted_spans}; "
          f"delivered {spans.spans} spans, {spans.server_spans} server spans in {spans.traces} traces; "
          f"lost {sent_spans - spans.server_spans} server spans (bound {at_risk_spans})")
    print(f"  logs: sent {sent_logs} records; accepted before the kill {before.accepted_logs}; accepted after "
          f"the restart {after.accepted_logs}; delivered {delivered_logs}; lost {sent_logs - delivered_logs} "
          f"(bound {at_risk_logs})")
    print(f"  far end accepted {reached} (duplicates of an at-least-once redelivery included)")
    print(f"  gateway before the kill: {before}")
    print(f"  restarted gateway after the load: {after}")

    assert set(result.counts) <= {"200", "201"}, result.summary()
    assert during_outage > 0, "no request was answered while the gateway was down: the kill missed the load"
    assert spans.spans >= before.accepted_spans, "spans accepted before the kill were lost"
    assert delivered_logs >= before.accepted_logs, "log records accepted before the kill were lost"
    assert sent_spans - spans.server_spans <= at_risk_spans
    assert sent_logs - delivered_logs <= at_risk_logs
    assert after.drained(), f"the restarted gateway did not drain its queue: {after}"
    assert after.send_failed_spans == 0 and after.send_failed_logs == 0, str(after)
