"""The node agent's CPU per log line: a realistic mix of pod lines through collector/agent.yaml as it
ships, to the gateway and a far end that only counts; with a CPU profile of the agent (pprof) saying
where the time goes: `make bench ONLY=agent_cost`."""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path

from bench.common import Row, progress
from bench.drop_sink import DropSink
from devstack import collector, kustomize
from devstack.far_end import FarEnd
from devstack.kube_apiserver import start_with_manifests
from devstack.kube_objects import make_namespace, make_pod
from devstack.pod_logs import PodLogs, cri
from devstack.proc_stats import cpu_seconds
from devstack.procs import free_port

NAME = "agent cost"
PODS = 10
LINES = 200_000
GOAL_US_PER_LINE = 12.0
PROFILE_S = 15
IDLE_S = 10
TRACEBACK = ["2026-01-01 00:00:00,000 ERROR [worker] request failed", "Traceback (most recent call last):", '  File "/app/board/views.py", line 42, in handler',
             "    return compute(request)", '  File "/app/board/compute.py", line 7, in compute',
             "    raise ValueError(\"bad input\")", "ValueError: bad input"]


def mix(n: int, seed: int = 7) -> list[str]:
    """n lines as pods write them: the app's JSON records with trace context, nginx's JSON access log,
    plain text, and now and then an error logged with its Python traceback (one record of 7 lines)."""
    rng = random.Random(seed)
    lines: list[str] = []
    while len(lines) < n:
        kind = rng.random()
        trace, span = f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}"
        if kind < 0.40:
            lines.append(json.dumps({"time": "2026-01-01T00:00:00.000+00:00", "level": "info", "logger": "board.messages",
                                     "message": "message posted", "service.name": "backend", "trace_id": trace,
                                     "span_id": span, "message.id": rng.randrange(10**6), "enduser.id": "user_1"}))
        elif kind < 0.70:
            lines.append(json.dumps({"time": "2026-01-01T00:00:00+00:00", "remote_addr": "198.18.0.7",
                                     "method": "GET", "uri": "/api/messages?limit=20", "protocol": "HTTP/1.1",
                                     "status": 200, "body_bytes_sent": 2817, "request_length": 512,
                                     "request_time": 0.004, "upstream_status": "200",
                                     "upstream_response_time": "0.004", "user_agent": "Mozilla/5.0",
                                     "trace_id": trace}))
        elif kind < 0.99:
            lines.append(f"worker {rng.randrange(8)} handled job {rng.randrange(10**6)} in {rng.randrange(900)} ms")
        else:
            lines.extend(TRACEBACK)
    return lines[:n]


def records_in(lines: list[str]) -> int:
    """The records `lines` make once each traceback is one."""
    return len(lines) - sum(1 for line in lines if line.startswith((" ", "Traceback", "ValueError")))


def flood(agent, far_end: FarEnd, pods: list[PodLogs], lines: list[str], expected: int) -> tuple[float, float, int]:
    """Writes `lines` split over the pods' files at once; (agent CPU seconds, seconds until the far end
    had every record, records that arrived)."""
    before_cpu, before_count = cpu_seconds(agent.process.pid), far_end.accepted().log_records
    started = time.monotonic()
    per_pod = len(lines) // len(pods)
    for i, logs in enumerate(pods):
        logs.write("".join(cri("stdout", "F", line) for line in lines[i * per_pod:(i + 1) * per_pod]))
    while far_end.accepted().log_records - before_count < expected and time.monotonic() - started < 300:
        time.sleep(0.5)
    return (cpu_seconds(agent.process.pid) - before_cpu, time.monotonic() - started,
            far_end.accepted().log_records - before_count)


def run(work_dir: Path) -> list[Row]:
    kube = start_with_manifests(work_dir / "kube")
    namespace = "bench-agent"
    kube.add_namespace(make_namespace(namespace))
    root = work_dir / "var" / "log" / "pods"
    pods = []
    for i in range(PODS):
        pod = make_pod(f"app-{i}", namespace, labels={"app.kubernetes.io/name": f"app-{i}"}, containers=("app",))
        kube.add_pod(pod)
        pods.append(PodLogs(root, pod, "app"))
    drop = DropSink()
    far_end = FarEnd(work_dir / "far-end", keep=False).start()
    gateway = collector.gateway(work_dir / "gateway", kube, far_end.tempo_otlp_grpc, far_end.loki_otlp_endpoint,
                                prometheus_otlp=drop.endpoint).start()
    profile_port = free_port()
    agent = collector.agent(work_dir / "agent", kube, gateway, str(root), PPROF_ENDPOINT=f"127.0.0.1:{profile_port}",
                            **kustomize.go_runtime_env("DaemonSet", "otel-agent"))
    try:
        agent.start()
        idle_before = cpu_seconds(agent.process.pid)
        time.sleep(IDLE_S)
        idle_cores = (cpu_seconds(agent.process.pid) - idle_before) / IDLE_S
        lines = mix(LINES)
        expected = records_in(lines)
        progress(f"{NAME}: {LINES} lines into {PODS} pods' files, twice: measured, then profiled")
        cpu_s, carried_s, arrived = flood(agent, far_end, pods, lines, expected)
        profiler = subprocess.Popen(["curl", "-s", "-o", str(work_dir / "agent.pprof"),
                                     f"http://127.0.0.1:{profile_port}/debug/pprof/profile?seconds={PROFILE_S}"])
        flood(agent, far_end, pods, lines, expected)
        profiler.wait(PROFILE_S + 30)
        print(subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=30", str(work_dir / "agent.pprof")],
                             capture_output=True, text=True).stdout)
    finally:
        agent.stop()
        gateway.stop()
        far_end.close()
        drop.close()
        kube.stop()
    us = cpu_s / LINES * 1e6
    return [
        Row(NAME, "agent CPU per line, the realistic mix", us, "us", f"<= {GOAL_US_PER_LINE}", us <= GOAL_US_PER_LINE,
            f"{cpu_s:.1f} s of agent CPU for {LINES} lines from {PODS} pods ({arrived} of {expected} records "
            f"arrived in {carried_s:.1f} s)"),
        Row(NAME, "lines per second per core of agent CPU", 1e6 / us, "lines/s", "", None, ""),
        Row(NAME, "records arrived / records written", arrived / expected, "x", "1.00", arrived == expected, ""),
        Row(NAME, "agent CPU while no pod writes", idle_cores * 1000, "millicores", "", None,
            f"its sixteen file receivers polling over {IDLE_S} s"),
    ]
