"""The shipped rules fire in the real Prometheus, `for: 5m` and all, and the real Alertmanager posts
them to Slack (a stand-in): a Redis outage fails the backend's writes (503) while its reads go on
from MariaDB, and Tempo (the far end) is down throughout, so the gateway's trace export stalls."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from conftest import Api, unique_name
from devstack import redis_server
from devstack.load import SteadyLoad
from devstack.procs import say

# Both alerts' `for` (k8s/prometheus/rules/stack.yml). Each fires after it, plus up to a span
# metrics flush, an own-metrics push and a rule evaluation (15 s each) to become pending.
FOR_S = 300
FIRING_TIMEOUT_S = FOR_S + 150
# The error ratio is a 5-minute rate: it falls under 5 % once the failed writes are under 5 % of
# the window's requests. The busier traffic after the outage gets there in about 80 s; the
# outage's own trickle of reads would take about 4 minutes.
RESOLVED_TIMEOUT_S = 300
POLL_S = 5
PROGRESS_S = 30


@pytest.fixture
def backend_redis(work_dir):
    """This test's own Redis, which it stops; its append-only file keeps the sessions across that."""
    srv = redis_server.start(work_dir / "faults" / "alerts-redis", persist=True)
    yield srv
    srv.process.stop()


class AlertTimeline:
    """When (epoch seconds) each watched alert was first seen pending, firing and gone at
    Prometheus's /api/v1/alerts, and the alert as Prometheus held it when first seen firing."""

    def __init__(self, prometheus, **watched: dict[str, str]):
        self.prometheus, self.watched = prometheus, watched
        self.started = time.time()
        self.seen: dict[tuple[str, str], float] = {}
        self.firing: dict[str, dict] = {}

    def poll(self) -> None:
        now = time.time()
        for name, labels in self.watched.items():
            alerts = self.prometheus.alerts_named(name, **labels)
            for alert in alerts:
                self.seen.setdefault((name, alert["state"]), now)
                if alert["state"] == "firing":
                    self.firing.setdefault(name, alert)
            if not alerts and (name, "firing") in self.seen:
                self.seen.setdefault((name, "gone"), now)

    def at(self, name: str, state: str) -> float | None:
        return self.seen.get((name, state))

    def active_for(self, name: str) -> float:
        """How long the alert had been active (pending, then firing) when first seen firing."""
        active_at = datetime.fromisoformat(self.firing[name]["activeAt"]).timestamp()
        return self.seen[(name, "firing")] - active_at

    def summary(self) -> str:
        return "; ".join(f"{name}: " + (", ".join(f"{state} at {t - self.started:.0f}s" for (n, state), t
                                                   in self.seen.items() if n == name) or "inactive")
                         for name in self.watched)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_failing_writes_and_a_stalled_trace_export_fire_alerts_that_reach_slack(
        pipeline, traced_backend, backend_redis, prometheus, slack):
    """Prometheus runs k8s/prometheus/ as shipped; Alertmanager k8s/alertmanager/alertmanager.yml
    with only its grouping timers shortened (devstack/alertmanager.py). Asserted:
    - ServiceErrorRatioHigh for this backend goes pending, then firing no sooner than its `for`
      after it became active; Slack gets "[FIRING] ServiceErrorRatioHigh (<service>)" with the
      summary and runbook, then, after the failures stop, "[RESOLVED] ...";
    - GatewayExportStalled goes pending, then fires for a sampling replica's otlp_grpc/tempo, and
      Slack gets it, while the sampling tier's queues hold what Tempo could not take.
    """
    far_end, gateway, service = pipeline.far_end, pipeline.gateway, traced_backend.service
    sampler = gateway.samplers[0]
    # Down before the first span: an exporter that never sent needs no 5 minutes of silence before
    # the stall rule's "sent nothing in 5 minutes" holds, so both alerts share one wait.
    far_end.stop()
    api = Api(traced_backend.url)
    api.signup_and_login(unique_name("alerts"))
    session = api.http.cookies["session"]

    def read(http):
        return http.get(f"{traced_backend.url}/api/messages?limit=20", timeout=10)

    def write(http):
        http.cookies.set("session", session)
        return http.post(f"{traced_backend.url}/api/messages", json={"body": "while alerts are watched"}, timeout=10)

    error_alert, stall_alert = f"ServiceErrorRatioHigh ({service})", "GatewayExportStalled"
    timeline = AlertTimeline(prometheus, ServiceErrorRatioHigh={"service": service},
                             GatewayExportStalled={"job": "otel-sampler", "instance": sampler.instance_id(),
                                                   "exporter": "otlp_grpc/tempo"})

    def tempo_queue() -> int:
        return sum(s.metric("otelcol_exporter_queue_size", exporter="otlp_grpc/tempo") for s in gateway.samplers)

    def progress() -> str:
        ratio = prometheus.query(f'service:request_error_ratio:rate5m{{service="{service}"}}')
        return (f"{time.time() - timeline.started:.0f}s: error ratio (5m) {float(ratio[0]['value'][1]) if ratio else 0:.1%}; "
                f"sampling tier's Tempo queues {tempo_queue()} spans; {timeline.summary()}")

    def watch(done, timeout: float, waiting_for: str) -> None:
        deadline, next_progress = time.monotonic() + timeout, 0.0
        while True:
            timeline.poll()
            if done():
                return
            assert time.monotonic() < deadline, f"no {waiting_for} within {timeout}s: {progress()}"
            if time.monotonic() >= next_progress:
                say(progress())
                next_progress = time.monotonic() + PROGRESS_S
            time.sleep(POLL_S)

    backend_redis.process.stop()
    say(f"Redis stopped: {service}'s writes fail from now on, Tempo is down; both alerts need {FOR_S}s of `for`")
    with SteadyLoad(read, threads=1, interval_s=0.5) as reads, SteadyLoad(write, threads=1, interval_s=2.0) as writes:
        watch(lambda: timeline.at("ServiceErrorRatioHigh", "firing"), FIRING_TIMEOUT_S, "ServiceErrorRatioHigh firing")
        firing = slack.wait_for_title(f"[FIRING] {error_alert}", timeout=60)
        during = reads.snapshot(), writes.snapshot()
        backend_redis.process.start()
        recovered = time.time()
        say(f"Redis back after {recovered - timeline.started:.0f}s ({during[0].total} reads, {during[1].total} "
            f"writes); busier reads until Slack shows the alert resolved")
        with SteadyLoad(read, threads=4, interval_s=0.15) as busier:
            watch(lambda: slack.titled(f"[RESOLVED] {error_alert}") and timeline.at("GatewayExportStalled", "firing")
                  and slack.titled(f"[FIRING] {stall_alert}"),
                  RESOLVED_TIMEOUT_S, f"[RESOLVED] {error_alert} in Slack and {stall_alert} firing")
        resolved_after = time.time() - recovered
    stall_queue = tempo_queue()

    print(f"\nalerts from the shipped rules: {timeline.summary()} (t=0: Redis and Tempo stopped)")
    print(f"  during the outage: reads {during[0].summary()}; writes {during[1].summary()}")
    print(f"  whole run: reads {reads.result.summary()}; writes {writes.result.summary()}; "
          f"after the outage, busier reads {busier.result.summary()}")
    print(f"  ServiceErrorRatioHigh: value {float(timeline.firing['ServiceErrorRatioHigh']['value']):.1%} when firing, "
          f"active {timeline.active_for('ServiceErrorRatioHigh'):.0f}s by then; resolved in Slack "
          f"{resolved_after:.0f}s after Redis returned")
    print(f"  GatewayExportStalled: active {timeline.active_for('GatewayExportStalled'):.0f}s when firing; "
          f"Tempo queue {stall_queue} spans; Slack: {firing['attachments'][0]['title']!r}, "
          f"{slack.titled(f'[RESOLVED] {error_alert}')[0]['attachments'][0]['title']!r}, "
          f"{slack.titled(f'[FIRING] {stall_alert}')[0]['attachments'][0]['title']!r}")

    assert set(during[0].counts) == {"200"}, during[0].summary()
    assert set(during[1].counts) == {"503"} and set(during[1].codes) == {"redis_unavailable"}, during[1].summary()
    for name in ("ServiceErrorRatioHigh", "GatewayExportStalled"):
        assert timeline.at(name, "pending") < timeline.at(name, "firing"), timeline.summary()
        assert timeline.active_for(name) >= FOR_S, (name, timeline.firing[name])
    assert float(timeline.firing["ServiceErrorRatioHigh"]["value"]) > 0.05
    text = firing["attachments"][0]["text"]
    assert f"{service}: " in text and "of requests fail" in text, text
    assert "Runbook: Open the service's RED dashboard" in text, text
    assert firing["channel"] == "#alerts"
    stalled_text = "\n".join(m["attachments"][0]["text"] for m in slack.titled(f"[FIRING] {stall_alert}"))
    assert "otel-sampler's otlp_grpc/tempo holds data and sends nothing" in stalled_text, stalled_text
    assert stall_queue > 0
