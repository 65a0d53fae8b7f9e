"""The highest span and log rate the shipped gateway passes to the far end (our collector where Tempo
and Loki stand, counting only) with nothing lost, and its memory: `make bench ONLY=pipeline_throughput`."""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.common import Row, progress
from devstack.collector import metric_sum
from devstack.proc_stats import CLK_TCK, cpu_seconds, status_kib

BENCH = "pipeline throughput"
# telemetrygen offers spans, then log records, at each rate for STEP_S seconds; stepping stops at
# the first step that is not clean (Step.clean: every item generated, accepted, exported and
# counted by the far end's own receiver, nothing refused, failed or discarded, and neither
# the generator nor the exporter queue fell behind).
STEPS = (10_000, 20_000, 30_000, 40_000, 50_000, 60_000)
STEP_S = 10
# The exporters flush a batch at the latest 1 s after its first item, and the sampling tier decides a
# trace 1 s after its root span arrives; allow a few seconds more.
DRAIN_BOUND_S = 5.0
# The exporters batch inside their queue, so it always holds up to ~1 s of input; more than this
# much means the export to the far end is falling behind, which a 10 s step would otherwise hide.
BACKLOG_BOUND_S = 2.0
# A generator that needs longer than this beyond STEP_S could not hand its data over as fast as
# it made it (gateway back-pressure, or its own single export pipeline for spans).
GEN_OVERRUN_S = 2.0
# After an unclean step, how long to keep waiting so the totals are final (and the next signal
# starts from an empty queue).
SETTLE_MAX_S = 30.0
GOAL_RATE = 50_000
GOAL_RSS_MIB = 256.0
# Half the sampler's pod limit: it holds the traces that wait for a decision, by design.
SAMPLER_GOAL_RSS_MIB = 512.0
PER_WORKER_RATE = 1000.0
# telemetrygen exports spans through one batch processor (one request at a time) for all its
# workers, so spans go in larger requests than an app's 512; log workers each send their own.
TRACE_BATCH = 2048
LOG_BATCH = 512
# The StatefulSets set this (k8s/otel-gateway, k8s/otel-sampler); without it Go's GC runs unbounded.
DEPLOYMENT_GOMEMLIMIT = "800MiB"

SIGNALS = {
    # signal: (gateway receiver item, gateway exporter, far-end receiver); traces go on from the
    # gateway's loadbalancing exporter through the two sampling replicas to the far end.
    "traces": ("spans", "loadbalancing", "otlp/tempo"),
    "logs": ("log_records", "otlp_http/loki", "otlp/loki"),
}
UNIT = {"traces": "spans/s", "logs": "log records/s"}


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Step:
    signal: str
    target_rate: int
    workers: int
    generated: int = 0
    gen_ok: bool = False
    gen_wall_s: float = 0.0
    accepted: int = 0
    refused: int = 0
    sent: int = 0
    send_failed: int = 0
    enqueue_failed: int = 0
    backend_received: int = 0
    backend_discarded: int = 0
    drain_s: float | None = None  # None: not drained within SETTLE_MAX_S
    peak_queue: int = 0
    cores: dict[str, float] = field(default_factory=dict)

    @property
    def achieved_rate(self) -> float:
        # Over the generator's whole run: a backlog it flushes after STEP_S counts against it.
        return self.accepted / max(STEP_S, self.gen_wall_s)

    @property
    def backlog_bound(self) -> float:
        return self.accepted / STEP_S * BACKLOG_BOUND_S

    @property
    def clean(self) -> bool:
        counted = self.generated == self.accepted == self.sent == self.backend_received > 0
        lost = self.refused or self.send_failed or self.enqueue_failed or self.backend_discarded
        kept_up = (self.gen_ok and self.gen_wall_s <= STEP_S + GEN_OVERRUN_S and self.peak_queue <= self.backlog_bound
                   and self.drain_s is not None and self.drain_s <= DRAIN_BOUND_S)
        return counted and not lost and kept_up

    def problems(self) -> str:
        issues = []
        if not self.gen_ok:
            issues.append("generator failed")
        if self.gen_wall_s > STEP_S + GEN_OVERRUN_S:
            issues.append(f"generator took {self.gen_wall_s:.1f}s for {STEP_S}s of data (its export was held up)")
        if self.generated != self.accepted:
            issues.append(f"generated {self.generated} != accepted {self.accepted}")
        if self.refused:
            issues.append(f"refused {self.refused} (back-pressure; the generator retries)")
        if self.sent != self.accepted:
            issues.append(f"exported {self.sent} != accepted {self.accepted}")
        if self.send_failed or self.enqueue_failed:
            issues.append(f"send_failed {self.send_failed}, enqueue_failed {self.enqueue_failed}")
        if self.backend_received != self.sent:
            issues.append(f"far end counted {self.backend_received} != exported {self.sent}")
        if self.backend_discarded:
            issues.append(f"far end refused {self.backend_discarded}")
        if self.peak_queue > self.backlog_bound:
            issues.append(f"exporter fell behind: queue peaked at {self.peak_queue} > {BACKLOG_BOUND_S:g}s of input")
        if self.drain_s is None:
            issues.append(f"queue not drained in {SETTLE_MAX_S:.0f}s")
        elif self.drain_s > DRAIN_BOUND_S:
            issues.append(f"queue drained only after {self.drain_s:.1f}s")
        return "; ".join(issues) or "clean"

    def summary(self) -> str:
        short = {"gateway": "gw", "far end": "far end", "telemetrygen": "gen",
                 "everything else": "other", "machine total": "total"}
        cores = " ".join(f"{short.get(k, k)} {v:.2f}" for k, v in self.cores.items())
        drain = "-" if self.drain_s is None else f"{self.drain_s:.1f}s"
        return (f"{self.target_rate // 1000}k target, {self.workers} workers: generated {self.generated} "
                f"in {self.gen_wall_s:.1f}s, "
                f"accepted {self.accepted} ({self.achieved_rate:.0f}/s), exported {self.sent}, far end counted "
                f"{self.backend_received}, peak queue {self.peak_queue}, drained {drain}: {self.problems()}; "
                f"CPU cores {cores}")


class QueueSampler:
    """Polls the exporter's queue size once a second in the background, keeping the peak."""

    def __init__(self, metrics: Callable[[], str], exporter: str):
        self.metrics = metrics
        self.exporter = exporter
        self.peak_queue = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                queue = metric_sum(self.metrics(), "otelcol_exporter_queue_size", exporter=self.exporter)
                self.peak_queue = max(self.peak_queue, int(queue))
            except (OSError, ValueError):
                pass

    def __enter__(self) -> "QueueSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


class Stack:
    def __init__(self, work_dir: Path):
        from devstack import collector
        from devstack.kube_apiserver import start_with_manifests
        from devstack.prometheus import Prometheus
        from devstack.far_end import FarEnd

        self.work_dir = work_dir
        self.kube = start_with_manifests(work_dir / "kube")
        self.prometheus = Prometheus(work_dir / "prometheus").start()
        self.far_end = self.gateway = None
        try:
            progress("gateway throughput: starting the far end (counting only)")
            self.far_end = FarEnd(work_dir / "far-end", keep=False).start()
            progress("gateway throughput: starting the gateway (collector/gateway.yaml)")
            self.gateway = collector.gateway(work_dir / "gateway", self.kube, self.far_end.tempo_otlp_grpc,
                                             self.far_end.loki_otlp_endpoint,
                                             prometheus_otlp=self.prometheus.otlp_endpoint,
                                             sampler_env={"GOMEMLIMIT": DEPLOYMENT_GOMEMLIMIT},
                                             GOMEMLIMIT=DEPLOYMENT_GOMEMLIMIT).start()
        except BaseException:
            self.stop()
            raise

    def pids(self) -> dict[str, int]:
        return {"gateway": self.gateway.process.pid,
                **{s.name.removeprefix("gateway-"): s.process.pid for s in self.gateway.samplers},
                "far end": self.far_end.process.pid}

    def stop(self) -> None:
        for component in (self.gateway, self.far_end):
            if component is not None:
                component.stop()
        if self.far_end is not None:
            self.far_end.close()
        self.prometheus.stop()
        self.kube.stop()


def counters(stack: Stack, signal: str) -> dict[str, float]:
    item, exporter, far_end_receiver = SIGNALS[signal]
    gw = stack.gateway.metrics()
    far_end = stack.far_end.collector.metrics()
    return {
        "accepted": metric_sum(gw, f"otelcol_receiver_accepted_{item}", receiver="otlp"),
        "refused": metric_sum(gw, f"otelcol_receiver_refused_{item}", receiver="otlp")
        + metric_sum(gw, f"otelcol_receiver_failed_{item}", receiver="otlp"),
        "sent": metric_sum(gw, f"otelcol_exporter_sent_{item}", exporter=exporter),
        "send_failed": metric_sum(gw, f"otelcol_exporter_send_failed_{item}", exporter=exporter),
        "enqueue_failed": metric_sum(gw, f"otelcol_exporter_enqueue_failed_{item}", exporter=exporter),
        "queue": metric_sum(gw, "otelcol_exporter_queue_size", exporter=exporter),
        "backend_received": metric_sum(far_end, f"otelcol_receiver_accepted_{item}", receiver=far_end_receiver),
        "backend_discarded": metric_sum(far_end, f"otelcol_receiver_refused_{item}", receiver=far_end_receiver)
        + metric_sum(far_end, f"otelcol_receiver_failed_{item}", receiver=far_end_receiver),
    }


def run_step(stack: Stack, signal: str, rate: int, efficiency: float) -> Step:
    from devstack.telemetrygen import TelemetryGen, workers_for

    _, exporter, _ = SIGNALS[signal]
    # Each worker falls short of its nominal rate by its timer's overshoot: ask for more workers.
    workers = workers_for(rate / efficiency, PER_WORKER_RATE)
    step = Step(signal, rate, workers)
    service = f"bench-{signal}-{rate}-{int(time.time())}"
    before = counters(stack, signal)
    pids = stack.pids()
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    child_before = children_cpu()
    busy_before, total_before = machine_cpu()
    wall_before = time.monotonic()
    gen = TelemetryGen(signal, stack.gateway.otlp_grpc, stack.work_dir / "telemetrygen",
                       rate_per_worker=PER_WORKER_RATE,
                       workers=workers, duration_s=STEP_S, service=service,
                       batch_size=TRACE_BATCH if signal == "traces" else LOG_BATCH)
    with QueueSampler(stack.gateway.metrics, exporter) as sampler:
        gen.start()
        result = gen.wait(timeout=STEP_S + 60)
        gen_end = time.monotonic()
        step.gen_wall_s = gen_end - wall_before
        # Sample CPU over the generator's run: that is when the pipeline is under load.
        wall = time.monotonic() - wall_before
        step.cores = {name: (cpu_seconds(pid) - cpu_before[name]) / wall for name, pid in pids.items()}
        step.cores["telemetrygen"] = (children_cpu() - child_before) / wall
        busy_after, total_after = machine_cpu()
        machine_busy = (busy_after - busy_before) / (total_after - total_before) * os.cpu_count()
        step.cores["everything else"] = max(0.0, machine_busy - sum(step.cores.values()))
        step.cores["machine total"] = machine_busy
        step.generated, step.gen_ok = result.items, result.ok(workers)
        # Drained: every accepted item is exported (or failed) and the queue is empty.
        while True:
            now = counters(stack, signal)
            accepted = now["accepted"] - before["accepted"]
            done = now["sent"] - before["sent"] + now["send_failed"] - before["send_failed"]
            # Spans also wait in the sampling tier for their trace's decision: drained means the far
            # end has them.
            arrived = now["backend_received"] - before["backend_received"]
            if done >= accepted and now["queue"] == 0 and arrived >= accepted:
                step.drain_s = time.monotonic() - gen_end
                break
            if time.monotonic() - gen_end > SETTLE_MAX_S:
                break
            time.sleep(0.25)
        step.peak_queue = sampler.peak_queue
    time.sleep(0.5)  # the far end's counter is bumped before its response; this is just margin
    after = counters(stack, signal)
    for key in ("accepted", "refused", "sent", "send_failed", "enqueue_failed", "backend_received",
                "backend_discarded"):
        setattr(step, key, int(after[key] - before[key]))
    return step


def measure_signal(stack: Stack, signal: str) -> list[Step]:
    steps: list[Step] = []
    efficiency = 0.85
    for rate in STEPS:
        progress(f"gateway throughput: {signal} at {rate}/s for {STEP_S}s")
        step = run_step(stack, signal, rate, efficiency)
        steps.append(step)
        progress(f"gateway throughput: {step.summary()}")
        # Calibrate the generator from what it actually produced, for the next step; damped and
        # bounded, so one step starved by other jobs on the machine does not double the next one.
        if step.generated and step.gen_ok:
            measured = step.generated / STEP_S / (step.workers * PER_WORKER_RATE)
            efficiency = min(1.0, max(0.6, (efficiency + measured) / 2))
        if not step.clean:
            break
    return steps


def rate_row(signal: str, steps: list[Step]) -> Row:
    clean = [s for s in steps if s.clean]
    best = max(clean, key=lambda s: s.achieved_rate, default=None)
    value = round(best.achieved_rate) if best else 0
    last = steps[-1]
    total = last.cores.get("machine total", 0.0)
    own = {k: v for k, v in last.cores.items() if k not in ("machine total", "everything else")}
    top = max(own, key=own.get)
    if last.clean:
        verdict = (f"Every step was clean, so {value}/s is a lower bound: the generator could not offer more "
                   f"(asked {last.target_rate}/s, made {last.generated / STEP_S:.0f}/s)")
    else:
        verdict = f"First unclean step: {last.target_rate}/s ({last.problems()})"
    saturated = "saturated" if total >= 0.9 * os.cpu_count() else "not saturated"
    if best and best.achieved_rate:
        per_10k = best.cores.get("gateway", 0.0) / best.achieved_rate * 10_000
        verdict += (f". The gateway itself used {per_10k:.2f} cores per 10k/s at {value}/s, i.e. about "
                    f"{per_10k * GOAL_RATE / 10_000:.1f} cores for {GOAL_RATE}/s if that scales linearly")
        if signal == "traces":
            samplers = sum(v for k, v in best.cores.items() if k.startswith("sampler"))
            verdict += f"; the two sampling replicas together {samplers / best.achieved_rate * 10_000:.2f} cores per 10k/s"
    detail = (f"{verdict}. In the last step the machine was {saturated} ({total:.2f} of {os.cpu_count()} cores busy, "
              f"{last.cores.get('everything else', 0.0):.2f} of it other jobs); busiest of ours: {top} "
              f"({own[top]:.2f} cores). telemetrygen, the far end and both collector tiers share the same {os.cpu_count()} "
              f"noisy cores. Steps of {STEP_S}s: " + " | ".join(s.summary() for s in steps))
    return Row(BENCH, f"sustained {signal} rate with zero loss", value, UNIT[signal], f">= {GOAL_RATE}",
               value >= GOAL_RATE, detail)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def queue_bytes_per_span(stack: Stack) -> tuple[float, int]:
    """(bytes, spans): disk the sampling tier's Tempo queues take per waiting span, with the far end
    (Tempo) down and 100,000 spans sent; sizes a queue volume for an outage of a given length."""
    from devstack.telemetrygen import TelemetryGen

    samplers = stack.gateway.samplers
    before = sum(_dir_bytes(s.storage_dir) for s in samplers)
    stack.far_end.stop()
    progress("gateway throughput: Tempo down, 100,000 spans into the sampling tier's queues")
    gen = TelemetryGen("traces", stack.gateway.otlp_grpc, stack.work_dir / "telemetrygen-queue",
                       rate_per_worker=PER_WORKER_RATE, workers=10, duration_s=10, service="bench-queue",
                       batch_size=TRACE_BATCH)
    gen.start()
    sent = gen.wait(timeout=60).items

    def queued() -> int:
        return sum(metric_sum(s.metrics(), "otelcol_exporter_queue_size", exporter="otlp_grpc/tempo")
                   for s in samplers)

    deadline = time.monotonic() + 60
    while queued() < sent and time.monotonic() < deadline:
        time.sleep(1)
    waiting = queued()
    return (sum(_dir_bytes(s.storage_dir) for s in samplers) - before) / max(waiting, 1), waiting


def run(work_dir: Path) -> list[Row]:
    work_dir = Path(work_dir) / "gateway-throughput"
    work_dir.mkdir(parents=True, exist_ok=True)
    from devstack import builds

    builds.tool("telemetrygen")
    stack = Stack(work_dir)
    try:
        results = {signal: measure_signal(stack, signal) for signal in SIGNALS}
        hwm_mib = status_kib(stack.gateway.process.pid, "VmHWM") / 1024
        sampler_hwm_mib = max(status_kib(s.process.pid, "VmHWM") for s in stack.gateway.samplers) / 1024
        span_bytes, queued = queue_bytes_per_span(stack)
    finally:
        stack.stop()
    rows = [rate_row(signal, steps) for signal, steps in results.items()]
    rows.append(Row(
        BENCH, "gateway peak RSS (VmHWM) over all steps", round(hwm_mib, 1), "MiB", f"<= {GOAL_RSS_MIB:.0f}",
        hwm_mib <= GOAL_RSS_MIB,
        f"Run with GOMEMLIMIT={DEPLOYMENT_GOMEMLIMIT} as in the deployment; memory_limiter's 80% is of the host's "
        "memory here (no cgroup limit), of the 1Gi pod limit in k8s. Covers every step of both signals.",
    ))
    rows.append(Row(
        BENCH, "sampling replica peak RSS (VmHWM), the larger of two", round(sampler_hwm_mib, 1), "MiB",
        f"<= {SAMPLER_GOAL_RSS_MIB:.0f}", sampler_hwm_mib <= SAMPLER_GOAL_RSS_MIB,
        f"Run with GOMEMLIMIT={DEPLOYMENT_GOMEMLIMIT} as in the StatefulSet; holds the traces waiting for a "
        "decision (1 s after their root span here) and its Tempo queue's batches. Covers every traces step.",
    ))
    rows.append(Row(
        BENCH, "sampling tier's Tempo queue on disk per waiting span", round(span_bytes), "bytes", "", None,
        f"Tempo down, telemetrygen traces of 5 spans: {queued} spans waiting in the two replicas' file_storage "
        "(bbolt files, growth over the run). A 30-minute outage at R spans/s needs R x 1800 x this much "
        "queue volume over the tier, and queue_size (items) at least R x 1800 / replicas.",
    ))
    return rows
