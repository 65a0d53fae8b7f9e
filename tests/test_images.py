"""The images `make images` builds, each run under exactly the security context its manifest declares
(devstack/containers.py), checked from /proc and by the container doing its job (images/README.md)."""

from __future__ import annotations

import copy
import json
import os
import re
import uuid
from pathlib import Path

import pytest
import requests

from devstack import collector, containers, kustomize
from devstack.containers import HOST_ADDRESS, PodContainer
from devstack.kube_objects import make_namespace, make_pod
from devstack.otlp_payloads import span_request
from devstack.pod_logs import PodLogs, cri
from devstack.procs import REPO, free_port, poll_for

pytestmark = pytest.mark.timeout(600)


def from_host(url_or_address: str) -> str:
    """A host loopback address as a container reaches it."""
    return url_or_address.replace("127.0.0.1", HOST_ADDRESS)


def assert_confined(container: PodContainer, uid: int) -> dict[str, str]:
    status = container.process_status()
    print(f"{container.name}: Uid {status['Uid']}, CapEff {status['CapEff']}, CapBnd {status['CapBnd']}, "
          f"NoNewPrivs {status['NoNewPrivs']}, Seccomp {status['Seccomp']}, "
          f"memory limit {container.memory_limit_bytes() // 2**20} MiB")
    assert status["Uid"].split()[:2] == [str(uid), str(uid)]
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0, status
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2", status  # 2: a seccomp filter
    limit = container.spec["resources"]["limits"]["memory"]
    assert container.memory_limit_bytes() == kustomize.quantity_bytes(limit)
    # The root filesystem is read-only: only the pod's volumes take writes (tried where there is a shell).
    assert container.read_only_root()
    probe = container.exec("sh", "-c", "touch /probe-write")
    if "executable file" not in probe.stderr:  # distroless: no shell to try with
        assert probe.returncode != 0 and "Read-only file system" in probe.stderr, probe
    return status


@pytest.fixture(scope="module")
def images():
    return containers.podman_env()


@pytest.fixture
def started():
    running: list[PodContainer] = []

    def start(container: PodContainer, **kw) -> PodContainer:
        running.append(container)
        return container.start(**kw)

    yield start
    for container in reversed(running):
        container.stop()


def test_the_collector_build_differs_from_its_dockerfile_only_in_the_pinned_base(images):
    shipped = (REPO / "collector" / "Dockerfile").read_text().splitlines()
    copy = containers.STACK_CACHE / "podman" / "collector-context" / "Dockerfile"
    if not copy.exists():
        pytest.skip("the pinned distroless image is here: collector/ was built as it is")
    changed = [(a, b) for a, b in zip(shipped, copy.read_text().splitlines()) if a != b]
    assert len(changed) == 1 and re.fullmatch(r"FROM (\S+)@sha256:[0-9a-f]{64}", changed[0][0]), changed
    assert changed[0][1] == f"FROM {changed[0][0].split()[1].split('@')[0]}"


def test_backend_image_serves_healthz_and_names_missing_dependencies(images, started, tmp_path, gateway, tempo):
    deployment = kustomize.workload("Deployment", "backend", "apps")
    nothing = free_port()  # neither MariaDB nor Redis answers there
    backend = started(PodContainer(tmp_path, deployment, "backend", env={
        "MYSQL_HOST": HOST_ADDRESS, "MYSQL_PORT": str(nothing), "REDIS_URL": f"redis://{HOST_ADDRESS}:{nothing}/0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": from_host(gateway.otlp_http)}), probe_kind="livenessProbe")
    assert_confined(backend, 10001)

    url = backend.url(8000)
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
    ready = requests.get(f"{url}/readyz", timeout=15)
    assert ready.status_code == 503, ready.text
    checks = ready.json()["checks"]
    assert checks["mysql"] != "ok" and checks["redis"] != "ok", checks
    print(f"/readyz: {ready.status_code} {json.dumps(checks)}")

    # Its telemetry leaves the container: a request's SERVER span reaches Tempo.
    missing = requests.get(f"{url}/api/no-such-route", timeout=5)
    assert missing.status_code == 404
    spans = tempo.wait_for_trace(missing.json()["error"]["trace_id"], timeout=30)
    assert {s["resource"]["service.name"] for s in spans} == {"backend"}
    assert {s["resource"]["k8s.namespace.name"] for s in spans} == {"apps"}  # from the downward API env


def test_backend_schema_init_container_creates_the_tables(images, started, tmp_path, mysql):
    deployment = kustomize.workload("Deployment", "backend", "apps")
    env = {**mysql.env(), "MYSQL_HOST": HOST_ADDRESS, "SCHEMA_WAIT_SECONDS": "30"}
    schema = started(PodContainer(tmp_path, deployment, "schema", env=env))
    assert schema.wait(timeout=120) == 0, schema.logs()
    assert "Warning" not in schema.logs(), schema.logs()
    print(schema.logs().strip()[-500:])


@pytest.fixture
def backend_container(images, started, tmp_path, mysql, redis_srv, gateway):
    deployment = kustomize.workload("Deployment", "backend", "apps")
    return started(PodContainer(tmp_path, deployment, "backend", env={
        **mysql.env(), "MYSQL_HOST": HOST_ADDRESS, "REDIS_URL": from_host(redis_srv.url),
        "REDIS_PASSWORD": redis_srv.password,
        "OTEL_EXPORTER_OTLP_ENDPOINT": from_host(gateway.otlp_http)}))


def test_frontend_image_serves_the_app_its_config_and_proxies_the_api(images, started, tmp_path, backend_container,
                                                                     gateway):
    deployment = kustomize.workload("Deployment", "frontend", "apps")
    frontend = started(PodContainer(tmp_path, deployment, "frontend", env={
        "BACKEND_URL": f"http://{HOST_ADDRESS}:{backend_container.ports[8000]}",
        "OTLP_URL": from_host(gateway.otlp_http)}))
    assert_confined(frontend, 101)

    url = frontend.url(8080)
    page = requests.get(f"{url}/", timeout=5)
    assert page.status_code == 200 and '<div id="app">' in page.text, page.text[:300]
    assert requests.get(f"{url}/config.json", timeout=5).json() == {"serviceName": "frontend", "showTestError": False}
    listed = requests.get(f"{url}/api/messages?limit=1", timeout=10)
    assert listed.status_code == 200 and "messages" in listed.json(), listed.text
    print(f"frontend: / {page.status_code}, /config.json, /api/messages {listed.status_code} from the backend container")


def test_collector_image_runs_the_shipped_gateway_and_sampler_configs_and_delivers(images, started, tmp_path, kube_api,
                                                                                   far_end, tempo):
    """Both tiers from the image, as their StatefulSets declare them: the gateway finds the sampler
    by name (here the host's address) and the sampler delivers to Tempo."""
    queues = {tier: tmp_path / f"{tier}-queue" for tier in ("otel-gateway", "otel-sampler")}
    for queue in queues.values():
        queue.mkdir()
    sampler = started(PodContainer(tmp_path, kustomize.workload("StatefulSet", "otel-sampler", "observability"),
                                   "otel-sampler", host_paths={"queue": queues["otel-sampler"]},
                                   env={"TEMPO_OTLP_ENDPOINT": from_host(far_end.tempo_otlp_grpc)}))
    assert_confined(sampler, 65532)
    gateway = started(PodContainer(tmp_path, kustomize.workload("StatefulSet", "otel-gateway", "observability"),
                                   "otel-gateway", kube=kube_api, host_paths={"queue": queues["otel-gateway"]},
                                   env={"SAMPLER_HOSTNAME": HOST_ADDRESS, "SAMPLER_OTLP_PORT": str(sampler.ports[4317]),
                                        "LOKI_OTLP_ENDPOINT": from_host(far_end.loki_otlp_endpoint)}))
    assert_confined(gateway, 65532)
    for tier, queue in queues.items():
        assert os.listdir(queue), f"{tier}: the persistent queue wrote nothing into its volume"

    trace_id = uuid.uuid4().hex
    resp = requests.post(f"{gateway.url(4318)}/v1/traces", data=span_request("image-probe", trace_id, {}),
                         headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert resp.status_code == 200, resp.text
    (span,) = tempo.wait_for_trace(trace_id, timeout=30)
    assert span["resource"]["service.name"] == "image-probe"
    print(f"gateway and sampler images: span {trace_id} accepted on 4318 and found in Tempo (model); "
          f"queue files {[os.listdir(q) for q in queues.values()]}")


def test_collector_image_runs_the_shipped_agent_config_and_ships_pod_logs(images, started, tmp_path, kube_api, gateway,
                                                                          loki):
    namespace = f"image-probe-{uuid.uuid4().hex[:6]}"
    kube_api.add_namespace(make_namespace(namespace))
    pod = make_pod(f"probe-{uuid.uuid4().hex[:5]}", namespace, labels={"app.kubernetes.io/name": "image-probe"},
                   containers=("probe",))
    kube_api.add_pod(pod)
    root = tmp_path / "var-log-pods"
    root.mkdir()
    marker = f"line from a pod {uuid.uuid4().hex[:8]}"
    PodLogs(root, pod, "probe").write(cri("stdout", "F", marker))

    daemonset = kustomize.workload("DaemonSet", "otel-agent", "observability")
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    agent = started(PodContainer(tmp_path, daemonset, "otel-agent", kube=kube_api,
                                 # This machine's /proc and /sys stand for the node's.
                                 host_paths={"varlogpods": root, "checkpoints": checkpoints,
                                             "host-proc": Path("/proc"), "host-sys": Path("/sys")},
                                 env={"GATEWAY_OTLP_ENDPOINT": from_host(gateway.otlp_grpc)}))
    assert_confined(agent, 0)  # uid 0 to read root's log files, with no capability at all

    (entry,) = loki.wait_for(f'{{service_name="image-probe"}} |= "{marker}"', timeout=60)
    assert entry["labels"]["k8s_pod_name"] == pod["metadata"]["name"]
    print(f"agent image: {marker!r} from {root} reached Loki (model) with pod {pod['metadata']['name']}")

    # Node metrics read through the read-only /hostfs mounts, sent on without a scrape error (their
    # way on to Prometheus is test_metrics.py's).
    def own(name: str, **labels: str) -> int:
        return collector.metric_sum(requests.get(f"{agent.url(8888)}/metrics", timeout=5).text, name, **labels)

    (sent,) = poll_for(lambda: [n for n in [own("otelcol_exporter_sent_metric_points", exporter="otlp_grpc/gateway")]
                                if n > 0], 1, 60, "node metrics sent by the agent image", interval=1)
    errored = own("otelcol_scraper_errored_metric_points", receiver="host_metrics")
    print(f"agent image: {own('otelcol_receiver_accepted_metric_points', receiver='host_metrics')} node metric "
          f"points read, {sent} sent to the gateway, {errored} scrape errors")
    assert errored == 0


def _without_tmp_mount(manifest: dict) -> dict:
    broken = copy.deepcopy(manifest)
    for c in broken["spec"]["template"]["spec"]["containers"]:
        c["volumeMounts"] = [m for m in c.get("volumeMounts", []) if m["mountPath"] != "/tmp"]
    return broken


def _on_port_80(manifest: dict) -> dict:
    broken = copy.deepcopy(manifest)
    (c,) = broken["spec"]["template"]["spec"]["containers"]
    c["ports"] = [{**p, "containerPort": 80} if p["containerPort"] == 8080 else p for p in c["ports"]]
    c["env"] = [{**e, "value": "80"} if e["name"] == "LISTEN_PORT" else e for e in c["env"]]
    for probe in ("readinessProbe", "livenessProbe"):
        if "httpGet" in c.get(probe, {}):
            c[probe]["httpGet"]["port"] = 80
    return broken


@pytest.mark.parametrize("workload_name,container,breakage,expected", [
    ("backend", "backend", _without_tmp_mount, "Read-only file system"),
    ("frontend", "frontend", _without_tmp_mount, "Read-only file system"),
    ("frontend", "frontend", _on_port_80, "Permission denied"),
], ids=["backend-without-tmp", "frontend-without-tmp", "frontend-on-port-80"])
def test_a_manifest_change_that_breaks_its_image_fails_here(images, tmp_path, workload_name, container, breakage,
                                                            expected):
    # Upstream names nginx can resolve (it resolves them at start); nothing needs to answer there.
    env = {"BACKEND_URL": f"http://{HOST_ADDRESS}:9", "OTLP_URL": f"http://{HOST_ADDRESS}:9"}
    manifest = breakage(kustomize.workload("Deployment", workload_name, "apps"))
    broken = PodContainer(tmp_path, manifest, container, env=env)
    try:
        with pytest.raises(RuntimeError, match="not ready") as failed:
            broken.start(ready_timeout=30, probe_kind="livenessProbe")
    finally:
        broken.stop()
    assert expected in str(failed.value), str(failed.value)[-1500:]
    print(f"{workload_name} with {breakage.__name__}: refused to start ({expected!r} in its log)")
