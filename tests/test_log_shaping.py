"""The log pipeline under bad input, as a hostile or careless pod would send it: the gateway hands Loki
only records Loki accepts, masks secrets in the text, and one bad line never costs its neighbours
(through the real agent and gateway, answered by the Loki model)."""

from __future__ import annotations

import json
import os
import time
import uuid

import threading

import pytest
import requests
import yaml

import conftest
from conftest import Api, unique_name
from devstack import collector, kustomize
from devstack.kube_objects import make_namespace, make_pod
from devstack.otlp_payloads import PROTOBUF, log_request
from devstack.pod_logs import PodLogs, cri, cri_line
from devstack.proc_stats import cpu_seconds, status_kib
from devstack.procs import REPO

LINE_LIMIT = 255_000  # what transform/loki-limits in gateway.yaml cuts a body to
HOUR_NS = 3600 * 10**9

# Secrets printed in plain lines; the session's secret scan (conftest) looks for these too.
BEARER = "tok3n-abcdefghijklmnopqrstuvwxyz012345"
PASSWORD = "hunter2-pa55word-x9"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJlLXRoYXQtaXMtc2VjcmV0"
PRIVATE_KEY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7secretkeymaterial"
AWS_KEY = "AKIAIOSFODNN7EXAMPLQ"
BODY_SECRETS = [BEARER, PASSWORD, JWT, PRIVATE_KEY, AWS_KEY]
conftest.SECRETS.update(BODY_SECRETS)


@pytest.fixture(scope="module")
def node(kube_api, gateway, tmp_path_factory):
    """A node's /var/log/pods and the agent tailing it, forwarding to the session gateway."""
    namespace = f"shaping-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("node") / "var" / "log" / "pods"
    root.mkdir(parents=True)
    kube_api.add_namespace(make_namespace(namespace))
    # GOGC and GOMEMLIMIT as the DaemonSet sets them, so the flood test sees the deployed agent's CPU and memory.
    agent = collector.agent(tmp_path_factory.mktemp("agent"), kube_api, gateway, str(root),
                            name="agent-shaping", **kustomize.go_runtime_env("DaemonSet", "otel-agent")).start()
    yield {"namespace": namespace, "root": root, "kube": kube_api, "agent": agent}
    agent.stop()


def container(component: str) -> dict:
    """The collector container of a k8s/ workload, as the manifest declares it."""
    (workload,) = [d for path in (REPO / "k8s" / component).glob("*.yaml") for d in yaml.safe_load_all(path.read_text())
                   if d and d.get("kind") in ("DaemonSet", "Deployment", "StatefulSet")]
    return workload["spec"]["template"]["spec"]["containers"][0]


def memory_limit_kib(component: str) -> int:
    return kustomize.quantity_bytes(container(component)["resources"]["limits"]["memory"]) // 1024


def pod(node: dict, name: str) -> PodLogs:
    spec = make_pod(f"{name}-{uuid.uuid4().hex[:5]}", node["namespace"], labels={"app.kubernetes.io/name": name},
                    containers=(name,))
    node["kube"].add_pod(spec)
    return PodLogs(node["root"], spec, name)


def stream(loki, node: dict, service: str, count: int, timeout: float = 60) -> list[dict]:
    return loki.wait_for(f'{{k8s_namespace_name="{node["namespace"]}", service_name="{service}"}}', count=count,
                         timeout=timeout)


def test_long_lines_arrive_cut_to_what_loki_takes_and_marked_and_their_neighbours_whole(node, loki):
    logs = pod(node, "long-lines")
    # The pod's own pace: the agent's first poll must not find the whole file at once.
    time.sleep(1)
    # ASCII: containerd splits a line every 16 KiB whatever the characters, and the agent decodes each
    # part on its own, so a character split there arrives as replacement characters (as today).
    long_300k, long_2m = "a" * 300_000, "b" * 2_000_000
    logs.write(cri("stdout", "F", "before the long lines"), cri_line(long_300k), cri_line(long_2m),
               cri("stdout", "F", "after the long lines"))
    entries = stream(loki, node, "long-lines", count=4)
    lines = [e["line"] for e in entries]
    assert lines[0] == "before the long lines" and lines[-1] == "after the long lines", [x[:40] for x in lines]
    assert len(entries) == 4, [len(x) for x in lines]
    for entry, original in ((entries[1], long_300k), (entries[2], long_2m)):
        line, labels = entry["line"], entry["labels"]
        assert labels["log_truncated"] == "true" and int(labels["log_original_length"]) == len(original.encode())
        assert len(line.encode()) <= LINE_LIMIT and original.startswith(line), (len(line.encode()), line[-5:])
    print(f"\nlong lines: 300,000 and 2,000,000 bytes arrived as {len(lines[1].encode())} and "
          f"{len(lines[2].encode())} bytes, marked truncated")


def test_an_sdk_record_too_long_for_loki_is_cut_on_a_character_boundary(gateway, loki):
    service = f"long-sdk-{uuid.uuid4().hex[:6]}"
    text = "a" + "é" * 200_000  # 400,001 bytes: the cut at 255,000 falls inside a character
    body = log_request(service, os.urandom(16).hex(), text, {})
    assert requests.post(gateway.otlp_http + "/v1/logs", data=body, headers=PROTOBUF, timeout=10).status_code == 200
    (entry,) = loki.wait_for(f'{{service_name="{service}"}}')
    assert entry["labels"]["log_truncated"] == "true" and entry["labels"]["log_original_length"] == "400001"
    assert text.startswith(entry["line"]) and len(entry["line"].encode()) == LINE_LIMIT - 1


def test_twenty_resource_attributes_make_at_most_fifteen_index_labels_none_per_process(gateway, loki):
    service = f"many-attrs-{uuid.uuid4().hex[:6]}"
    resource = {
        "service.namespace": "shop", "service.instance.id": str(uuid.uuid4()), "deployment.environment": "prod",
        "deployment.environment.name": "prod", "cloud.region": "eu-west-1", "cloud.availability_zone": "eu-west-1a",
        "k8s.cluster.name": "c1", "k8s.namespace.name": "apps", "k8s.pod.name": "web-7d9f-x2x4z",
        "k8s.container.name": "web", "container.name": "web", "k8s.replicaset.name": "web-7d9f",
        "k8s.deployment.name": "web", "k8s.statefulset.name": "web-db", "k8s.daemonset.name": "web-ds",
        "k8s.cronjob.name": "web-cron", "k8s.job.name": "web-job", "host.name": "node-1", "os.type": "linux",
    }
    assert len(resource) + 1 == 20  # and service.name
    body = log_request(service, os.urandom(16).hex(), "twenty resource attributes", {}, resource_extra=resource)
    assert requests.post(gateway.otlp_http + "/v1/logs", data=body, headers=PROTOBUF, timeout=10).status_code == 200
    loki.wait_for(f'{{service_name="{service}"}}')
    (labels,) = [dict(key) for key, entries in loki.streams().items()
                 if ("service_name", service) in key]
    print(f"\n20 resource attributes -> {len(labels)} index labels: {sorted(labels)}")
    assert len(labels) <= 15
    assert not {"service_instance_id", "k8s_pod_name", "k8s_replicaset_name"} & set(labels)
    entry = loki.query(f'{{service_name="{service}"}} | k8s_pod_name="web-7d9f-x2x4z"')[0]
    assert entry["labels"]["service_instance_id"] == resource["service.instance.id"]


def test_the_backends_streams_do_not_split_per_worker(stack_backend, loki):
    """Each gunicorn worker has its own service.instance.id: it must not make a stream of its own."""
    Api(stack_backend.url).signup_and_login(unique_name("streams"))
    loki.wait_for('{service_name="backend"} |= "login succeeded"')
    # The suite's backend runs outside any pod (test_gateway_enrichment's pod-named records have a namespace).
    backend_streams = [dict(key) for key in loki.streams()
                       if ("service_name", "backend") in key and not any(k == "k8s_namespace_name" for k, _ in key)]
    assert backend_streams and all("service_instance_id" not in labels for labels in backend_streams)
    assert len(backend_streams) == 1, backend_streams


def test_timestamps_loki_would_refuse_are_replaced_and_kept_as_attributes(gateway, loki):
    service = f"times-{uuid.uuid4().hex[:6]}"
    now = time.time_ns()
    cases = {"a week old": now - 8 * 24 * HOUR_NS, "an hour ahead": now + HOUR_NS, "no timestamp": 0}
    for label, ts in cases.items():
        body = log_request(service, os.urandom(16).hex(), label, {}, time_unix_nano=ts, observed_time_unix_nano=ts)
        assert requests.post(gateway.otlp_http + "/v1/logs", data=body, headers=PROTOBUF, timeout=10).status_code == 200
    entries = {e["line"]: e for e in loki.wait_for(f'{{service_name="{service}"}}', count=3)}
    for label, ts in cases.items():
        entry = entries[label]
        assert abs(int(entry["ts"]) - now) < 60 * 10**9, (label, entry["ts"])
        if ts:
            assert entry["labels"]["log_original_time_unix_nano"] == str(ts), entry["labels"]


def test_a_json_line_keeps_its_own_time_as_an_attribute(node, loki):
    logs = pod(node, "own-time")
    week_ago = "2020-01-01T00:00:00Z"
    logs.write(cri("stdout", "F", json.dumps({"time": week_ago, "level": "info", "message": "an old app time"})))
    (entry,) = stream(loki, node, "own-time", count=1)
    assert entry["line"] == "an old app time" and entry["labels"]["time"] == week_ago
    assert abs(int(entry["ts"]) - time.time_ns()) < 120 * 10**9


def test_odd_encodings_and_shapes_arrive_and_loki_takes_them(node, loki):
    logs = pod(node, "odd-shapes")
    nested: dict = {"leaf": "bottom"}
    for depth in range(30):
        nested = {f"level{depth}": nested, **{f"k{depth}_{i}": i for i in range(6)}}
    logs.write_bytes(cri("stdout", "F", "invalid utf-8: ").encode()[:-1] + b"\xff\xfe end\n")
    logs.write(cri("stdout", "F", "a nul \x00 byte"),
               cri("stdout", "F", "\x1b[31mred\x1b[0m and \x1b[1;32mbold green\x1b[0m"),
               cri("stdout", "F", json.dumps({"message": "bad trace id", "trace_id": "not-a-hex-trace-id"})),
               cri("stdout", "F", json.dumps({"message": "deeply nested", "payload": nested})))
    entries = {e["line"]: e for e in stream(loki, node, "odd-shapes", count=5)}
    print("\nodd shapes arrived: " + ", ".join(repr(line[:30]) for line in entries))
    assert "invalid utf-8: \ufffd\ufffd end" in entries
    assert "a nul \x00 byte" in entries
    assert "red and bold green" in entries  # colour codes removed, text kept
    bad = next(e for line, e in entries.items() if "bad trace id" in line)
    assert "trace_id" not in bad["labels"] or not bad["labels"]["trace_id"].strip("0")
    deep = entries["deeply nested"]["labels"]
    assert len(deep) <= 128 and sum(len(k) + len(v) for k, v in deep.items()) <= 64 * 1024


def test_secrets_in_plain_lines_are_masked_and_the_rest_kept(node, loki):
    logs = pod(node, "leaky")
    logs.write(cri("stdout", "F", f"GET /api with Authorization: Bearer {BEARER} took 3 ms"),
               cri("stdout", "F", f"connecting with user=app password={PASSWORD} to db"),
               cri("stdout", "F", f"issued {JWT} for user-123"),
               cri("stdout", "F", f"key: -----BEGIN RSA PRIVATE KEY-----\\n{PRIVATE_KEY}\\n-----END RSA PRIVATE KEY----- loaded"),
               cri("stdout", "F", f"using aws key {AWS_KEY} in eu-west-1"))
    lines = [e["line"] for e in stream(loki, node, "leaky", count=5)]
    print("\nmasked: " + " | ".join(lines))
    shown = "\n".join(lines)
    assert not [s for s in BODY_SECRETS if s in shown]
    assert "GET /api with Authorization: Bearer *** took 3 ms" in lines
    assert "connecting with user=app password=*** to db" in lines
    assert "issued ***jwt*** for user-123" in lines
    assert any(line.startswith("key: -----BEGIN RSA PRIVATE KEY----- ***") and line.endswith(" loaded") for line in lines)
    assert any(line.startswith("using aws key AKIA") and line.endswith(" in eu-west-1") for line in lines)


FLOOD_LINES = 200_000
QUIET_EVERY_S = 1.0
QUIET_LATENCY_S = 10.0  # one noisy pod must not hold another's lines back longer than this


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_flood_from_one_pod_loses_nothing_starves_no_one_and_stays_within_memory_limits(node, gateway, far_end):
    """Every line of the flood and of a quiet pod beside it arrives once, the quiet pod's within
    QUIET_LATENCY_S, and the agent's and the gateway's peak memory stays under their pods' limits.
    A receiver reads each file to its end in a poll (filelog has no per-poll budget: contrib #17846);
    the agent's sixteen receivers, sharded by pod uid, keep a flood from holding back other shards."""
    noisy = pod(node, "flood")
    # The agent reads pods in sixteen shards by the first hex digit of their uid (agent.yaml): a
    # flood holds back its own shard only. The quiet pod is in another one, as 15 of 16 pods are.
    quiet = pod(node, "quiet")
    while quiet.dir.parent.name.rsplit("_", 1)[1][0] == noisy.dir.parent.name.rsplit("_", 1)[1][0]:
        quiet = pod(node, "quiet")
    written: dict[str, int] = {}  # quiet line -> when it was written (ns)
    stop = threading.Event()

    def quiet_pod() -> None:
        i = 0
        while not stop.wait(QUIET_EVERY_S if i else 0):
            line = f"quiet {i}"
            written[line] = time.time_ns()
            quiet.write(cri("stdout", "F", line))
            i += 1

    def arrived(service: str) -> list:
        return [r for r in far_end.log_sink.logs() if r.resource.get("service.name") == service
                and r.resource.get("k8s.namespace.name") == node["namespace"]]

    pids = {"agent": node["agent"].process.pid, "gateway": gateway.process.pid,
            "far end": far_end.collector.process.pid, "test (far-end sinks)": os.getpid()}
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    talker = threading.Thread(target=quiet_pod, daemon=True)
    talker.start()
    started = time.monotonic()
    for chunk in range(0, FLOOD_LINES, 10_000):  # as fast as a process can write
        noisy.write("".join(cri("stdout", "F", f"flood {i}") for i in range(chunk, chunk + 10_000)))
    wrote_s = time.monotonic() - started
    deadline = time.monotonic() + 240
    while len(arrived("flood")) < FLOOD_LINES and time.monotonic() < deadline:
        time.sleep(1)
    stop.set()
    talker.join(5)
    time.sleep(QUIET_LATENCY_S)  # the last quiet line's own allowance

    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    flood = arrived("flood")
    times = sorted(r.received_unix_nano for r in flood)
    carried_s = (times[-1] - times[0]) / 1e9 if len(times) > 1 else float("nan")
    quiet_latency = {r.body: (r.received_unix_nano - written[r.body]) / 1e9 for r in arrived("quiet")}
    # VmHWM: the most each process ever had resident.
    agent_kib = status_kib(node["agent"].process.pid, "VmHWM")
    gateway_kib = status_kib(gateway.process.pid, "VmHWM")
    print(f"\nflood: {FLOOD_LINES} lines written in {wrote_s:.1f}s; {len(flood)} arrived over {carried_s:.1f}s "
          f"({len(flood) / carried_s:.0f} lines/s carried by the agent and gateway); quiet pod: "
          f"{len(quiet_latency)} of {len(written)} lines, slowest {max(quiet_latency.values()):.1f}s (goal "
          f"{QUIET_LATENCY_S:.0f}s); peak RSS agent "
          f"{agent_kib / 1024:.0f} MiB (limit {memory_limit_kib('otel-agent') / 1024:.0f}), gateway "
          f"{gateway_kib / 1024:.0f} MiB (limit {memory_limit_kib('otel-gateway') / 1024:.0f}); CPU seconds "
          + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items()))
    assert len({r.body for r in flood}) == len(flood) == FLOOD_LINES
    assert set(quiet_latency) == set(written)
    assert max(quiet_latency.values()) <= QUIET_LATENCY_S, quiet_latency
    assert agent_kib < memory_limit_kib("otel-agent") and gateway_kib < memory_limit_kib("otel-gateway")
