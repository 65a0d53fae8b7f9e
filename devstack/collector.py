"""The otelcol-stack collector with the shipped gateway, sampler or agent config, unchanged, on free
local ports; its k8s_attributes processor talks to the real kube-apiserver with its ServiceAccount's
token, and the gateway finds its sampling tier by DNS as in the cluster."""

from __future__ import annotations

import re
import shlex
import urllib.request
from pathlib import Path

from . import builds
from .kube_apiserver import KubeApiServer
from .procs import REPO, LocalService, Process, free_port, http_ok, with_private_mounts

_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$")

GATEWAY_CONFIG = REPO / "collector" / "gateway.yaml"
AGENT_CONFIG = REPO / "collector" / "agent.yaml"
SAMPLER_CONFIG = REPO / "collector" / "sampler.yaml"

# The local sampling tier: two replicas on their own loopback addresses and one port, under one
# name that resolves to both (from the gateway's private /etc/hosts), as the headless Service's
# name resolves to the StatefulSet's ready pods in the cluster.
SAMPLER_HOSTNAME = "otel-sampler.devstack"
SAMPLER_ADDRESSES = ("127.0.0.2", "127.0.0.3")


class Collector(LocalService):
    def __init__(self, name: str, config: Path, base_dir: Path, kube: KubeApiServer | None, env: dict[str, str],
                 extra_configs: tuple[Path, ...] = (), service_account: str = "observability/otel-gateway",
                 listen: tuple[str, int, int] | None = None, hosts: dict[str, tuple[str, ...]] | None = None):
        """listen: (address, OTLP/gRPC port, OTLP/HTTP port) to receive on instead of free loopback ports.
        hosts: names the collector resolves, from an /etc/hosts of its own (a private mount namespace)."""
        self.name = name
        self.listen_host, self.grpc_port, self.http_port = listen or ("127.0.0.1", free_port(), free_port())
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.storage_dir = base_dir / f"{name}-storage"
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        # Only configs with k8s_attributes need an API server (the far end has none).
        kube_env = {} if kube is None else {
            "K8S_AUTH_TYPE": "kubeConfig",
            "KUBECONFIG": str(kube.write_kubeconfig(base_dir / f"{name}-kubeconfig", service_account)),
            "K8S_NODE_NAME": "node-1",
        }
        full_env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(base_dir),
            **kube_env,
            "OTLP_GRPC_ENDPOINT": self.otlp_grpc,
            "OTLP_HTTP_ENDPOINT": f"{self.listen_host}:{self.http_port}",
            "HEALTH_CHECK_ENDPOINT": f"127.0.0.1:{self.health_port}",
            "OTELCOL_METRICS_HOST": "127.0.0.1",
            "OTELCOL_METRICS_PORT": str(self.metrics_port),
            "OTELCOL_STORAGE_DIR": str(self.storage_dir),
            **env,
        }
        argv = [builds.collector(), f"--config={config}", *(f"--config={c}" for c in extra_configs)]
        if hosts:
            hosts_file = base_dir / f"{name}-hosts"
            extra = "".join(f"{address} {host}\n" for host, addresses in hosts.items() for address in addresses)
            hosts_file.write_text(Path("/etc/hosts").read_text() + extra)
            argv = with_private_mounts(f"mount --bind {shlex.quote(str(hosts_file))} /etc/hosts", argv)
        self.process = Process(name, argv, base_dir, env=full_env,
                               ready=lambda: http_ok(f"http://127.0.0.1:{self.health_port}/"), ready_timeout=60)

    @property
    def otlp_http(self) -> str:
        return f"http://{self.listen_host}:{self.http_port}"

    @property
    def otlp_grpc(self) -> str:
        return f"{self.listen_host}:{self.grpc_port}"

    def metrics(self) -> str:
        """The collector's own Prometheus metrics (queue sizes, sent/failed counts)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def instance_id(self) -> str:
        """The collector's service.instance.id: the `instance` label of the own metrics it pushes to Prometheus."""
        match = re.search(r'^target_info\{.*service_instance_id="([^"]+)"', self.metrics(), re.MULTILINE)
        assert match, "no service_instance_id in the collector's target_info"
        return match.group(1)

    def metric(self, name: str, **labels: str) -> int:
        """Sum of the collector's own series called `name` whose labels include `labels`."""
        return metric_sum(self.metrics(), name, **labels)


def metric_sum(text: str, name: str, **labels: str) -> int:
    """Sum of every series called `name` whose labels include `labels` (Prometheus text format)."""
    total = 0.0
    for line in text.splitlines():
        match = _SERIES.match(line)
        if match and match.group(1) == name and all(f'{k}="{v}"' in (match.group(2) or "") for k, v in labels.items()):
            total += float(match.group(3))
    return int(total)


class Gateway(Collector):
    """The gateway with the sampling tier it routes traces to, started and stopped together."""

    def __init__(self, *args, samplers: list[Collector], **kwargs):
        super().__init__(*args, **kwargs)
        self.samplers = samplers

    def start(self):
        # A gateway started again after a crash finds its sampling tier still running.
        for sampler in self.samplers:
            if not sampler.process.alive():
                sampler.start()
        return super().start()

    def stop(self) -> None:
        super().stop()
        for sampler in self.samplers:
            sampler.stop()


def sampler(base_dir: Path, name: str, address: str, grpc_port: int, tempo_otlp_grpc: str, prometheus_otlp: str,
            extra_configs: tuple[Path, ...] = (), **env: str) -> Collector:
    """One replica of the sampling tier: span metrics to Prometheus, sampled traces to Tempo."""
    return Collector(name, SAMPLER_CONFIG, base_dir, None,
                     {"TEMPO_OTLP_ENDPOINT": tempo_otlp_grpc, "PROMETHEUS_OTLP_ENDPOINT": prometheus_otlp,
                      "OWN_METRICS_OTLP_ENDPOINT": f"{prometheus_otlp}/v1/metrics", "COLLECTOR_INSTANCE_ID": name,
                      **env},
                     extra_configs=extra_configs, listen=(address, grpc_port, free_port()))


def gateway(base_dir: Path, kube: KubeApiServer, tempo_otlp_grpc: str, loki_otlp_http: str, *,
            prometheus_otlp: str, name: str = "gateway", sampler_env: dict[str, str] | None = None,
            extra_configs: tuple[Path, ...] = (), sampler_configs: tuple[Path, ...] = (), **env: str) -> Gateway:
    """prometheus_otlp: a real Prometheus's OTLP endpoint (devstack/prometheus.py), for the metrics
    and for the gateway's own (OWN_METRICS_OTLP_ENDPOINT in env sends those elsewhere).
    sampler_env, sampler_configs: settings and configs merged over sampler.yaml of the sampling tier."""
    port = free_port()
    samplers = [sampler(base_dir, f"{name}-sampler-{i}", address, port, tempo_otlp_grpc, prometheus_otlp,
                        sampler_configs, **(sampler_env or {}))
                for i, address in enumerate(SAMPLER_ADDRESSES)]
    return Gateway(name, GATEWAY_CONFIG, base_dir, kube,
                   {"LOKI_OTLP_ENDPOINT": loki_otlp_http, "PROMETHEUS_OTLP_ENDPOINT": prometheus_otlp,
                    "OWN_METRICS_OTLP_ENDPOINT": f"{prometheus_otlp}/v1/metrics",
                    "SAMPLER_HOSTNAME": SAMPLER_HOSTNAME, "SAMPLER_OTLP_PORT": str(port), **env},
                   extra_configs=extra_configs, hosts={SAMPLER_HOSTNAME: SAMPLER_ADDRESSES}, samplers=samplers)


def agent(base_dir: Path, kube: KubeApiServer, gateway: Collector, pod_logs_dir: str,
          name: str = "agent", **env: str) -> Collector:
    """Logs and this machine's host metrics to the gateway over OTLP/gRPC, its own metrics to the
    gateway's OTLP/HTTP."""
    return Collector(name, AGENT_CONFIG, base_dir, kube,
                     {"GATEWAY_OTLP_ENDPOINT": gateway.otlp_grpc, "GATEWAY_OTLP_HTTP_ENDPOINT": gateway.otlp_http,
                      "POD_LOGS_DIR": pod_logs_dir, "HOST_ROOT": "/", "PPROF_ENDPOINT": f"127.0.0.1:{free_port()}",
                      **env},
                     service_account="observability/otel-agent")
