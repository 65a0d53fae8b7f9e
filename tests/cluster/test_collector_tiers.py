"""Both collector tiers rolled under steady traffic: every trace whole, each log record once, span
metrics exact; a sampling pod killed without grace loses within bound; a scaled-in one keeps its
queue; the autoscalers read their CPU metric."""

from __future__ import annotations

import json
import time

from faults.board_traffic import BoardTraffic
from faults.telemetry_counts import SERVER, loki_records
from devstack.procs import say, wait_until

SERVER_CALLS = 'traces_spanmetrics_calls_total{service="backend", span_kind="SPAN_KIND_SERVER"}'
# The span metrics connector flushes every 15 s (collector/sampler.yaml); Prometheus has a point
# of every replica's counter within this long of a request.
FLUSH_S = 15


def counted_since(stack, since_epoch: float) -> int:
    """Backend SERVER calls the span metrics counted after since_epoch, summed over the sampling
    replicas, from the raw points: a restarted replica's counter starts again from zero under the
    same series (a reset, counted as increase() counts it, without its extrapolation)."""
    window = int(time.time() - since_epoch) + 5 * FLUSH_S
    total = 0.0
    for series in stack.prometheus_query(f"{SERVER_CALLS}[{window}s]"):
        points = [(float(t), float(v)) for t, v in series["values"]]
        previous = next((v for t, v in reversed(points) if t <= since_epoch), 0.0)
        for _, value in ((t, v) for t, v in points if t > since_epoch):
            total += value - previous if value >= previous else value
            previous = value
    return round(total)


def _restart(api, name: str) -> float:
    started = time.monotonic()
    api.kubectl("rollout", "restart", f"statefulset/{name}", "-n", "observability")
    api.kubectl("rollout", "status", f"statefulset/{name}", "-n", "observability", "--timeout=600s")
    seconds = time.monotonic() - started
    say(f"rollout restart of {name}: done in {seconds:.0f} s")
    return seconds


class FreshTraffic:
    """Load of its own, counted from `since`: what came before is flushed first (span metrics); the far
    end's spans are those of traces that started after `since`, its records those it holds beyond
    what it held at `since` (a record's time can be its request's start, just before)."""

    def __init__(self, stack, frontend_url: str, quiet_s: float = 2 * FLUSH_S):
        time.sleep(quiet_s)
        self.stack, self.since = stack, time.time()
        self.records_from_ns = int((self.since - 60) * 1e9)
        self.records_before = loki_records(stack.far_end.loki, "backend", 0, start_ns=self.records_from_ns)
        self.traffic = BoardTraffic.signed_up(frontend_url)

    def traces(self) -> dict[str, list[dict]]:
        """The backend's traces at the far end that started after `since`, each read whole."""
        tempo, since_ns = self.stack.far_end.tempo, int(self.since * 1e9)
        window = int(time.time() - self.since) + 60
        return {h["traceID"]: tempo.spans(h["traceID"])
                for h in tempo.search_traceql('{resource.service.name="backend"}', limit=10**9, since_s=window)
                if int(h["startTimeUnixNano"]) >= since_ns}

    def found(self) -> tuple[int, int]:
        """(SERVER spans, log records) of the backend at the far end, this traffic's alone."""
        spans = {s["span_id"] for trace in self.traces().values() for s in trace
                 if s["kind"] == SERVER and s["resource"].get("service.name") == "backend"}
        records = loki_records(self.stack.far_end.loki, "backend", 0, start_ns=self.records_from_ns)
        return len(spans), records - self.records_before

    def incomplete(self) -> list[str]:
        """Traces in which a span's parent is missing (a part lost or decided apart)."""
        broken = []
        for trace_id, spans in self.traces().items():
            ids = {s["span_id"] for s in spans}
            if any(s["parent_span_id"].strip("0") and s["parent_span_id"] not in ids for s in spans):
                broken.append(trace_id)
        return broken


def test_rolling_restarts_of_both_tiers_lose_nothing_and_count_exactly(stack, frontend_url):
    api = stack.cluster.api
    fresh = FreshTraffic(stack, frontend_url)
    since, traffic = fresh.since, fresh.traffic
    with traffic.steady_load() as load:
        time.sleep(5)
        gateway_s = _restart(api, "otel-gateway")
        sampler_s = _restart(api, "otel-sampler")
        time.sleep(5)
    say(f"load stopped: {load.result.summary()}")
    sent_spans, sent_logs = traffic.server_spans(), traffic.log_records()

    # Decided (1-10 s), queued, flushed (15 s): wait until Tempo and Prometheus have it all.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        spans, records = fresh.found()
        if spans >= sent_spans and records >= sent_logs:
            break
        say(f"waiting for the far end: {spans} of {sent_spans} SERVER spans, {records} of {sent_logs} records")
        time.sleep(5)
    time.sleep(2 * FLUSH_S)
    spans, records = fresh.found()
    counted = counted_since(stack, since)
    broken = fresh.incomplete()
    say(f"rollout restart of otel-gateway ({gateway_s:.0f} s) then otel-sampler ({sampler_s:.0f} s) under load: "
          f"{traffic.summary()}; sent {sent_spans} requests (1 SERVER span each), {sent_logs} log records; found "
          f"{spans} SERVER spans ({len(broken)} traces incomplete), "
          f"{records} log records in Loki, span metrics count {counted} calls")

    assert set(load.result.counts) <= {"200", "201"}, load.result.summary()
    assert spans == sent_spans
    assert not broken, broken[:5]
    assert records == sent_logs
    assert counted == sent_spans


def test_a_sampling_pod_killed_without_grace_loses_at_most_its_undecided_traces(stack, frontend_url):
    """What a crash or a lost node costs: the traces the pod had not yet decided and the counts it
    had not yet flushed, both at most the last seconds of its share of the traffic. The replacement
    (same name, same queue volume) sends what was queued."""
    api = stack.cluster.api
    fresh = FreshTraffic(stack, frontend_url)
    since, traffic = fresh.since, fresh.traffic
    with traffic.steady_load() as load:
        time.sleep(20)
        killed_at = time.monotonic()
        api.kubectl("delete", "pod", "otel-sampler-1", "-n", "observability", "--grace-period=0", "--force")
        wait_until(lambda: any(p["metadata"]["name"] == "otel-sampler-1"
                               for p in stack.ready_pods("observability", "app.kubernetes.io/name=otel-sampler")),
                   180, "otel-sampler-1 replaced and Ready", interval=1)
        ready_at = time.monotonic()
        time.sleep(10)
    sent_spans = traffic.server_spans()
    # At risk: what the killed pod held undecided (decision_wait 10 s) or uncounted (one flush) at
    # the kill, plus what the gateways routed to it until their DNS lookups dropped it.
    at_risk = traffic.server_spans(killed_at - 10 - FLUSH_S, ready_at)
    time.sleep(20 + 2 * FLUSH_S)
    spans, _ = fresh.found()
    counted = counted_since(stack, since)
    say(f"otel-sampler-1 killed without grace under load, Ready again after {ready_at - killed_at:.0f} s: "
          f"{traffic.summary()}; sent {sent_spans} requests; found {spans} SERVER spans "
          f"(lost {sent_spans - spans}); span metrics count {counted} (lost {sent_spans - counted}); "
          f"bound {at_risk} (requests from {10 + FLUSH_S} s before the kill until the replacement was Ready)")
    assert set(load.result.counts) <= {"200", "201"}, load.result.summary()
    assert 0 <= sent_spans - spans <= at_risk
    assert 0 <= sent_spans - counted <= at_risk


def test_a_scaled_in_sampling_replica_keeps_its_queue_until_the_set_grows_again(stack, frontend_url):
    """Tempo down, traffic queued in both sampling replicas, then the autoscaler told to keep one
    replica: the removed replica's claim (and its queue) stays; allowed two again, the autoscaler
    brings that replica back, it sends its queue once Tempo returns, and every request's SERVER
    span arrives."""
    api = stack.cluster.api
    bounds = json.loads(api.kubectl("get", "hpa", "otel-sampler", "-n", "observability", "-o", "json").stdout)["spec"]
    fresh = FreshTraffic(stack, frontend_url, quiet_s=5)  # no span metrics counted here
    stack.far_end.stop()
    try:
        with fresh.traffic.steady_load() as load:
            time.sleep(20)
        sent = fresh.traffic.server_spans()
        time.sleep(15)  # decided (at most 10 s) and queued for Tempo
        claim = api.get("persistentvolumeclaims", "queue-otel-sampler-1", "observability")
        _bound_autoscaler(api, "otel-sampler", 1, 1)
        wait_until(lambda: not [p for p in stack.pods("observability", "app.kubernetes.io/name=otel-sampler")
                                if p["metadata"]["name"] == "otel-sampler-1"], 180, "otel-sampler-1 gone", interval=1)
        kept = api.get("persistentvolumeclaims", "queue-otel-sampler-1", "observability")
        assert kept["metadata"]["uid"] == claim["metadata"]["uid"], "the scaled-in replica's claim was not kept"
    finally:
        try:
            _bound_autoscaler(api, "otel-sampler", bounds["minReplicas"], bounds["maxReplicas"])
            wait_until(lambda: len(stack.ready_pods("observability", "app.kubernetes.io/name=otel-sampler")) == 2,
                       300, "the autoscaler brings otel-sampler back to 2 ready replicas", interval=2)
        finally:
            stack.far_end.start()
    deadline = time.monotonic() + 180
    while (spans := fresh.found()[0]) < sent and time.monotonic() < deadline:
        time.sleep(5)
    say(f"sampling tier scaled 2 -> 1 -> 2 by its autoscaler with Tempo down: {load.result.summary()}; sent {sent} "
        f"requests, found {spans} SERVER spans once Tempo returned; otel-sampler-1's claim kept "
        f"({claim['metadata']['uid']})")
    assert set(load.result.counts) <= {"200", "201"}, load.result.summary()
    assert spans == sent


def _bound_autoscaler(api, name: str, least: int, most: int) -> None:
    """Outside its bounds the autoscaler sets the replicas at once, with or without a metric."""
    api.kubectl("patch", "hpa", name, "-n", "observability", "--type=merge", "-p",
                json.dumps({"spec": {"minReplicas": least, "maxReplicas": most}}))


def test_both_tiers_autoscalers_read_their_cpu_from_the_metrics_api(stack):
    """The tiers' HorizontalPodAutoscalers read CPU utilisation through the aggregated metrics API
    (metrics-server scraping the kubelet), and `kubectl top` shows each collector pod's usage."""
    api = stack.cluster.api

    def autoscalers() -> dict[str, dict]:
        listed = json.loads(api.kubectl("get", "hpa", "-n", "observability", "-o", "json").stdout)["items"]
        return {h["metadata"]["name"]: h for h in listed}

    def reading(hpa: dict) -> int | None:
        active = any(c["type"] == "ScalingActive" and c["status"] == "True" and c["reason"] == "ValidMetricFound"
                     for c in hpa["status"].get("conditions", []))
        current = [m["resource"]["current"] for m in hpa["status"].get("currentMetrics") or []
                   if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
        return current[0].get("averageUtilization") if active and current else None

    def both_read() -> bool:
        found = autoscalers()
        return set(found) == {"otel-gateway", "otel-sampler"} and all(reading(h) is not None for h in found.values())

    wait_until(both_read, 180, "both autoscalers report a CPU utilisation", interval=5)
    top = api.kubectl("top", "pods", "-n", "observability", "--no-headers").stdout
    usage = {line.split()[0]: line.split()[1] for line in top.splitlines()}
    for name, hpa in autoscalers().items():
        say(f"{name}: CPU {reading(hpa)} % of its request (target "
            f"{hpa['spec']['metrics'][0]['resource']['target']['averageUtilization']} %), "
            f"{hpa['status']['currentReplicas']} replicas, wants {hpa['status']['desiredReplicas']}")
    say("kubectl top pods -n observability: " + ", ".join(f"{pod} {cpu}" for pod, cpu in sorted(usage.items())))
    for pod in ("otel-gateway-0", "otel-gateway-1", "otel-sampler-0", "otel-sampler-1"):
        assert usage.get(pod, "").endswith("m"), (pod, top)
