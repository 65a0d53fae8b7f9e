"""The node agent on a fabricated /var/log/pods tree -> the real gateway -> the far end and its Loki model."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from devstack import collector
from devstack.kube_objects import make_namespace, make_pod, make_replicaset
from devstack.pod_logs import PodLogs, cri

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def pods(kube_api, tmp_path_factory):
    namespace = f"agent-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("node") / "var" / "log" / "pods"
    kube_api.add_namespace(make_namespace(namespace))
    kube_api.add_namespace(make_namespace("observability"))
    kube_api.add_replicaset(make_replicaset("web-5d8f7c9b6", namespace, "web"))
    web = make_pod("web-5d8f7c9b6-abcde", namespace, labels={"app.kubernetes.io/name": "webshop"},
                   replicaset="web-5d8f7c9b6", containers=("web",))
    legacy = make_pod("legacy-0", namespace, containers=("legacy",))
    pushes_otlp = make_pod("backend-7c9d-x1", namespace, labels={"app.kubernetes.io/name": "backend"},
                           annotations={"observability.stack/logs": "otlp"}, containers=("backend",))
    own = make_pod("otel-agent-q2w3e", "observability", labels={"app.kubernetes.io/name": "otel-agent"},
                   containers=("otel-collector",))
    for pod in (web, legacy, pushes_otlp, own):
        kube_api.add_pod(pod)
    return {
        "namespace": namespace, "root": root,
        "web": PodLogs(root, web, "web"), "legacy": PodLogs(root, legacy, "legacy"),
        "otlp": PodLogs(root, pushes_otlp, "backend"), "own": PodLogs(root, own, "otel-collector"),
    }


def test_agent_collects_pod_logs_once_with_metadata_and_trace_context(pods, kube_api, gateway, loki, work_dir):
    ns = pods["namespace"]
    pods["web"].write(
        cri("stdout", "F", "plain cri line"),
        cri("stdout", "P", "first half of a long line, "),
        cri("stdout", "F", "second half"),
        cri("stderr", "F", json.dumps({"level": "warn", "message": "json app line",
                                       "trace_id": TRACE_ID, "span_id": SPAN_ID, "user": "x"})),
    )
    pods["legacy"].write(cri("stdout", "F", "a pod without labels"))
    # The OTLP-shipping pod: its app's JSON record (shipped by its SDK too) is dropped, what the
    # SDK never saw is kept: the server's own error log and a traceback before telemetry started.
    pods["otlp"].write(
        cri("stdout", "F", json.dumps({"time": "2026-01-01T00:00:00.000+00:00", "level": "info",
                                       "logger": "board.auth", "message": "already shipped over otlp",
                                       "service.name": "backend"})),
        cri("stderr", "F", "[2026-01-01 00:00:00 +0000] [7] [CRITICAL] WORKER TIMEOUT (pid:8)"),
        cri("stderr", "F", "configuration error: MYSQL_PORT must be an integer, got 'x'"),
    )
    pods["own"].write(cri("stderr", "F", "collector's own log line"))

    agent = collector.agent(work_dir / "agent", kube_api, gateway, str(pods["root"]))
    agent.start()
    try:
        entries = loki.wait_for(f'{{k8s_namespace_name="{ns}"}}', count=6, timeout=60)
        by_line = {e["line"]: e["labels"] for e in entries}
        worker_timeout = "[2026-01-01 00:00:00 +0000] [7] [CRITICAL] WORKER TIMEOUT (pid:8)"
        config_error = "configuration error: MYSQL_PORT must be an integer, got 'x'"
        assert set(by_line) == {"plain cri line", "first half of a long line, second half", "json app line",
                                "a pod without labels", worker_timeout, config_error}, sorted(by_line)
        assert by_line[worker_timeout]["service_name"] == "backend"
        assert by_line[worker_timeout]["severity_text"] == "CRITICAL", by_line[worker_timeout]

        web = by_line["plain cri line"]
        assert web["service_name"] == "webshop"
        assert web["k8s_pod_name"] == "web-5d8f7c9b6-abcde"
        assert web["k8s_container_name"] == "web"
        assert web["k8s_deployment_name"] == "web"
        assert by_line["a pod without labels"]["service_name"] == "legacy"  # no app label: the container name

        app = by_line["json app line"]
        assert app["trace_id"] == TRACE_ID and app["span_id"] == SPAN_ID
        assert app.get("detected_level", app.get("severity_text", "")).lower().startswith("warn")

        # The rotated file is not read again; the new 0.log is.
        pods["web"].rotate()
        pods["web"].write(cri("stdout", "F", "after rotation"))
        loki.wait_for(f'{{k8s_namespace_name="{ns}"}} |= "after rotation"', timeout=30)

        # A restart resumes from the checkpoints.
        agent.process.restart()
        pods["web"].write(cri("stdout", "F", "after restart"))
        loki.wait_for(f'{{k8s_namespace_name="{ns}"}} |= "after restart"', timeout=30)
        time.sleep(3)
        lines = [e["line"] for e in loki.query(f'{{k8s_namespace_name="{ns}"}}')]
        print(f"\nagent: {len(lines)} lines in Loki for namespace {ns}")
        assert len(lines) == len(set(lines)) == 8, sorted(lines)
        assert not loki.query('{k8s_namespace_name="observability"} |= "collector\'s own log line"')
    finally:
        agent.stop()


PYTHON_TRACEBACK = ["Traceback (most recent call last):", '  File "/app/main.py", line 9, in <module>', "    main()",
                    '  File "/app/main.py", line 5, in main', "    raise ValueError(\"bad input\")", "ValueError: bad input"]
PYTHON_CHAINED = ["Traceback (most recent call last):", '  File "/app/db.py", line 3, in connect', "    sock.connect()",
                  "ConnectionRefusedError: [Errno 111] Connection refused", "",
                  "During handling of the above exception, another exception occurred:", "",
                  "Traceback (most recent call last):", '  File "/app/main.py", line 2, in <module>',
                  "    connect()", "app.errors.Unavailable: database unavailable"]
JAVA = ["2026-01-01 12:00:00,123 ERROR [main] com.example.Service - request failed",
        "java.lang.IllegalStateException: boom", "\tat com.example.Service.handle(Service.java:42)",
        "\tat com.example.Main.main(Main.java:7)", "Caused by: java.io.IOException: disk full",
        "\tat com.example.Store.write(Store.java:12)", "\t... 2 more"]
GO_PANIC = ["panic: runtime error: index out of range [3] with length 3", "", "goroutine 1 [running]:",
            "main.lookup(...)", "\t/app/main.go:12", "main.main()", "\t/app/main.go:8 +0x1d"]


def test_stack_traces_are_one_record_each_and_the_lines_around_them_stay_apart(pods, kube_api, gateway, loki,
                                                                                work_dir):
    """Python (bare, chained, and after the message logged with it), Java and Go traces from a
    plain-text pod, each one record with its first line's time and severity; stdout interleaved with
    stderr's trace stays apart; a frame split into CRI partial records is joined first; JSON lines are
    untouched; a trace that never ends is flushed at its line bound (500), the last one by time."""
    ns = pods["namespace"]
    app = make_pod("crashy-0", ns, labels={"app.kubernetes.io/name": "crashy"}, containers=("crashy",))
    kube_api.add_pod(app)
    logs = PodLogs(pods["root"], app, "crashy")
    long_frame = "    " + "x" * 20_000  # containerd splits it into a P and an F record
    logs.write(
        cri("stdout", "F", "starting up"),
        cri("stderr", "F", PYTHON_TRACEBACK[0]), cri("stderr", "F", PYTHON_TRACEBACK[1]),
        cri("stdout", "F", "stdout goes on meanwhile"),
        *(cri("stderr", "F", line) for line in PYTHON_TRACEBACK[2:]),
        cri("stdout", "F", json.dumps({"level": "info", "message": "a json line", "detail": "  indented"})),
        cri("stderr", "F", "database down"),
        *(cri("stderr", "F", line) for line in PYTHON_CHAINED),
        cri("stdout", "F", "between traces"),
        *(cri("stdout", "F", line) for line in JAVA),
        cri("stderr", "F", "[2026-01-01 00:00:00 +0000] [9] [ERROR] Error handling request /api"),
        cri("stderr", "F", PYTHON_TRACEBACK[0]), cri("stderr", "P", long_frame[:16_000]),
        cri("stderr", "F", long_frame[16_000:]), cri("stderr", "F", "KeyError: 'x'"),
        cri("stdout", "F", "panic: endless"),
        *(cri("stdout", "F", f"  frame {i}") for i in range(700)),
        cri("stdout", "F", "after the endless trace"),
        *(cri("stderr", "F", line) for line in GO_PANIC),
    )
    agent = collector.agent(work_dir / "agent-multiline", kube_api, gateway, str(pods["root"]))
    agent.start()
    try:
        query = f'{{k8s_namespace_name="{ns}", service_name="crashy"}}'
        entries = loki.wait_for(query, count=12, timeout=60)
        time.sleep(3)  # nothing more comes
        entries = loki.query(query)
    finally:
        agent.stop()
    lines = [e["line"] for e in entries]
    endless = ["panic: endless", *(f"  frame {i}" for i in range(700))]
    logged = "\n".join(["[2026-01-01 00:00:00 +0000] [9] [ERROR] Error handling request /api", PYTHON_TRACEBACK[0],
                        long_frame, "KeyError: 'x'"])
    expected = ["starting up", "stdout goes on meanwhile", "\n".join(PYTHON_TRACEBACK), "a json line",
                "\n".join(["database down", *PYTHON_CHAINED]), "between traces", "\n".join(JAVA), logged,
                "\n".join(endless[:500]), "\n".join(endless[500:]),
                "after the endless trace", "\n".join(GO_PANIC)]
    assert sorted(lines) == sorted(expected), "\n".join(f"{line[:70]!r} ({len(line)})" for line in lines)
    by_line = {e["line"]: e for e in entries}
    assert by_line["\n".join(JAVA)]["labels"]["severity_text"] == "ERROR"
    assert by_line[logged]["labels"]["severity_text"] == "ERROR"
    assert by_line["\n".join(PYTHON_TRACEBACK)]["labels"]["severity_text"] == "Traceback"
    # Severity numbers (OTLP): ERROR 17, FATAL 21.
    assert {by_line[trace]["labels"]["severity_number"] for trace in ("\n".join(PYTHON_TRACEBACK), logged)} == {"17"}
    assert by_line["\n".join(GO_PANIC)]["labels"]["severity_number"] == "21"
    # A record has its first line's time: the Python trace's first line came before "stdout goes on".
    assert int(by_line["\n".join(PYTHON_TRACEBACK)]["ts"]) < int(by_line["stdout goes on meanwhile"]["ts"])
