"""How soon a finished request's log line and trace reach the far end (where Loki and Tempo stand),
with the deployment's export schedules: `make bench ONLY=freshness`."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.common import deployed_export_delays, Row, percentile, progress

BENCH = "freshness"
# Each sample is a failed login for a fresh username: it logs "login failed" and its 401 body
# hands over the trace id, as a user reporting a problem would. Requests go REQUEST_GAP_S apart,
# no multiple of either export schedule, so they meet the export timers at varied phases, and
# every pending id is looked up about every POLL_S until visible.
SAMPLES = 20
REQUEST_GAP_S = 1.3
POLL_S = 0.1
VISIBLE_TIMEOUT_S = 30.0
GOAL_LOGS_P95_S = 3.0
GOAL_TRACES_P95_S = 5.0
# What the backend runs with in the cluster, not the harness's short test delays.
DEPLOYED_DELAYS = deployed_export_delays()


@dataclass
class Sample:
    trace_id: str
    username: str
    responded: float  # time.monotonic() when the response had arrived


@dataclass
class Poller:
    """Polls one kind of lookup for every pending sample, recording when each became visible."""

    name: str
    visible: Callable[[Sample], bool]
    found: dict[str, float] = field(default_factory=dict)  # trace id -> seconds after the response
    cycles: list[float] = field(default_factory=list)
    errors: int = 0
    missing_note: str = ""

    def recheck_missing(self, samples: list[Sample]) -> None:
        """Once more for every sample never seen: late, or never findable this way at all?"""
        notes = []
        for sample in samples:
            if sample.trace_id in self.found:
                continue
            try:
                seen = self.visible(sample)
            except Exception as exc:  # noqa: BLE001
                seen = f"error {type(exc).__name__}"
            notes.append(f"{sample.trace_id}: {'visible' if seen is True else 'still not visible'} "
                         f"{time.monotonic() - sample.responded:.0f}s after the response"
                         + (f" ({seen})" if isinstance(seen, str) else ""))
        self.missing_note = "; ".join(notes[:3])

    def run(self, samples: list[Sample], lock: threading.Lock, done: threading.Event, deadline: float) -> None:
        while not done.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            with lock:
                pending = [s for s in samples if s.trace_id not in self.found]
            for sample in pending:
                if started - sample.responded > VISIBLE_TIMEOUT_S:
                    continue
                try:
                    if self.visible(sample):
                        self.found[sample.trace_id] = time.monotonic() - sample.responded
                except Exception:  # noqa: BLE001 - an error answer is "not visible yet"
                    self.errors += 1
            elapsed = time.monotonic() - started
            if pending:
                self.cycles.append(elapsed)
            time.sleep(max(0.0, POLL_S - elapsed))


def _same_trace(a: str, b: str) -> bool:
    # Tempo's search results may drop the trace id's leading zeros.
    return a.lower().lstrip("0") == b.lower().lstrip("0")


# What a user pasting an id into Grafana's TraceQL editor runs.
SEARCH_HOW = 'TraceQL search {trace:id="<id>"} on the Tempo model'


def failed_login(session, base_url: str) -> Sample:
    username = f"fresh_{uuid.uuid4().hex[:12]}"
    resp = session.post(f"{base_url}/api/auth/login", json={"username": username, "password": "wrong-password-1"},
                        timeout=15)
    responded = time.monotonic()
    if resp.status_code != 401:
        raise RuntimeError(f"expected 401 from a wrong login, got {resp.status_code}: {resp.text[:200]}")
    return Sample(resp.json()["error"]["trace_id"], username, responded)


class Stack:
    def __init__(self, work_dir: Path):
        from devstack import collector, mariadb, redis_server
        from devstack.backend import Backend, backend_env
        from devstack.kube_apiserver import start_with_manifests
        from devstack.prometheus import Prometheus
        from devstack.far_end import FarEnd

        self._stoppers: list[Callable[[], None]] = []
        try:
            progress("freshness: starting MariaDB, Redis and the far end")
            db = mariadb.start(work_dir / "mariadb")
            self._stoppers.append(db.process.stop)
            redis = redis_server.start(work_dir / "redis")
            self._stoppers.append(redis.process.stop)
            kube = start_with_manifests(work_dir / "kube")
            self._stoppers.append(kube.stop)
            prometheus = Prometheus(work_dir / "prometheus").start()
            self._stoppers.append(prometheus.stop)
            far_end = FarEnd(work_dir / "far-end").start()
            self._stoppers.append(far_end.close)
            self.tempo, self.loki = far_end.tempo, far_end.loki
            progress("freshness: starting the gateway and the backend (the deployment's export delays)")
            gateway = collector.gateway(work_dir / "gateway", kube, far_end.tempo_otlp_grpc,
                                        far_end.loki_otlp_endpoint, prometheus_otlp=prometheus.otlp_endpoint).start()
            self._stoppers.append(gateway.stop)
            env = backend_env(db.env(), redis.env(), gateway.otlp_http, **DEPLOYED_DELAYS)
            self.backend = Backend(work_dir / "logs", env, name="backend-freshness").start()
            self._stoppers.append(self.backend.stop)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for stop in reversed(self._stoppers):
            stop()


def measure(stack: Stack) -> tuple[dict[str, Poller], int]:
    import requests

    http = requests.Session()
    loki, tempo = stack.loki, stack.tempo

    def in_loki(sample: Sample) -> bool:
        entries = loki.query(f'{{service_name="backend"}} | trace_id="{sample.trace_id}"', since_s=300, limit=10)
        return any(e["line"] == "login failed" for e in entries)

    def in_tempo_search(sample: Sample) -> bool:
        hits = tempo.search_traceql(f'{{trace:id="{sample.trace_id}"}}', limit=1, since_s=300)
        return any(_same_trace(hit["traceID"], sample.trace_id) for hit in hits)

    def in_tempo_by_id(sample: Sample) -> bool:
        return bool(tempo.spans(sample.trace_id))

    # Warm-up, not counted: the first request creates the schema and opens every connection.
    progress("freshness: warm-up request, waiting until the pipeline delivers it")
    warm = failed_login(http, stack.backend.url)
    loki.wait_for(f'{{service_name="backend"}} | trace_id="{warm.trace_id}"', timeout=60)
    tempo.wait_for_trace(warm.trace_id, timeout=60)

    pollers = {
        "logs": Poller("Loki", in_loki),
        "traces (search)": Poller("Tempo search", in_tempo_search),
        "traces (by id)": Poller("Tempo by id", in_tempo_by_id),
    }
    samples: list[Sample] = []
    lock = threading.Lock()
    done = threading.Event()
    deadline = time.monotonic() + SAMPLES * REQUEST_GAP_S + VISIBLE_TIMEOUT_S + 10
    threads = [threading.Thread(target=p.run, args=(samples, lock, done, deadline), daemon=True)
               for p in pollers.values()]
    for thread in threads:
        thread.start()
    progress(f"freshness: {SAMPLES} failed logins {REQUEST_GAP_S}s apart, polling Loki and Tempo every {POLL_S}s")
    failures = 0
    try:
        for _ in range(SAMPLES):
            started = time.monotonic()
            try:
                sample = failed_login(http, stack.backend.url)
                with lock:
                    samples.append(sample)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                failures += 1
                progress(f"freshness: request failed: {exc}")
            time.sleep(max(0.0, REQUEST_GAP_S - (time.monotonic() - started)))
        progress("freshness: waiting for the last samples to become visible")
        while time.monotonic() < deadline:
            if all(len(p.found) == len(samples) for p in pollers.values()):
                break
            if samples and time.monotonic() - samples[-1].responded > VISIBLE_TIMEOUT_S + 1:
                break
            time.sleep(0.2)
    finally:
        done.set()
        for thread in threads:
            thread.join(10)
    for poller in pollers.values():
        poller.recheck_missing(samples)
    return pollers, len(samples)


# Why trace freshness sits where it does; logs wait at most the BLRP's 1 s instead.
TRACE_NOTE = (f"A span waits up to OTEL_BSP_SCHEDULE_DELAY={DEPLOYED_DELAYS['OTEL_BSP_SCHEDULE_DELAY']} ms in the "
              "backend's batch processor (the SDK default of 5000 ms alone puts p95 near 4.75 s), then up to 1 s in "
              "the gateway's exporter batch, before the far end has it. ")


def rows_for(key: str, poller: Poller, count: int, goal_s: float | None, how: str, note: str = "") -> list[Row]:
    times = sorted(poller.found.values())
    missing = count - len(times)
    # A sample never seen counts as the timeout: it must not improve the percentiles.
    padded = times + [VISIBLE_TIMEOUT_S] * missing
    p50, p95 = percentile(padded, 50), percentile(padded, 95)
    cycle = percentile(poller.cycles, 50) if poller.cycles else float("nan")
    late = f"Not seen in time: {poller.missing_note}. " if poller.missing_note else ""
    detail = (f"{how}; {len(times)} of {count} visible within {VISIBLE_TIMEOUT_S:.0f}s; "
              f"min {times[0] if times else float('nan'):.2f}s max {times[-1] if times else float('nan'):.2f}s; "
              f"poll cycle median {cycle * 1000:.0f} ms (resolution); {poller.errors} query errors. {late}{note}"
              f"Backend with the deployment's schedules BSP {DEPLOYED_DELAYS['OTEL_BSP_SCHEDULE_DELAY']} ms / BLRP "
              f"{DEPLOYED_DELAYS['OTEL_BLRP_SCHEDULE_DELAY']} ms (from k8s/backend; the harness "
              "shortens them); gateway exporter batch flush_timeout 1s; all processes on 2 shared cores.")
    rows = [Row(BENCH, f"{key} visible p50", round(p50, 2), "s", "", None, detail)]
    if goal_s is None:
        rows.append(Row(BENCH, f"{key} visible p95", round(p95, 2), "s", "", None, detail))
    else:
        rows.append(Row(BENCH, f"{key} visible p95", round(p95, 2), "s", f"<= {goal_s:g}",
                        p95 <= goal_s and missing == 0, detail))
    return rows


def run(work_dir: Path) -> list[Row]:
    work_dir = Path(work_dir) / "freshness"
    work_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(work_dir)
    try:
        pollers, count = measure(stack)
    finally:
        stack.stop()
    return [
        *rows_for("log line at the far end (Loki model)", pollers["logs"], count, GOAL_LOGS_P95_S,
                  '{service_name="backend"} | trace_id="<id>", line "login failed", on the Loki model'),
        *rows_for("trace at the far end (Tempo model search)", pollers["traces (search)"], count, GOAL_TRACES_P95_S,
                  SEARCH_HOW, TRACE_NOTE),
        *rows_for("trace at the far end (Tempo model by id)", pollers["traces (by id)"], count, None,
                  "trace by id on the Tempo model (what pasting an id into Grafana does); informational", TRACE_NOTE),
    ]
