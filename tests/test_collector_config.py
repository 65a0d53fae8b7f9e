"""Every collector config that ships passes the built binary's own `validate`."""

from __future__ import annotations

import subprocess

import pytest

from devstack import builds
from devstack.procs import REPO

CONFIGS = {
    "gateway": ["collector/gateway.yaml"],
    "sampler": ["collector/sampler.yaml"],
    "agent": ["collector/agent.yaml"],
    "gateway+bearer-auth (split-observability)": ["collector/gateway.yaml",
                                                  "k8s/overlays/split-observability/gateway-auth.yaml"],
    "agent+bearer-auth (split-apps)": ["collector/agent.yaml", "k8s/components/agent-bearer-auth/agent-auth.yaml"],
    "gateway+external-backends": ["collector/gateway.yaml", "k8s/overlays/external-backends/gateway-external.yaml"],
    "sampler+external-backends": ["collector/sampler.yaml", "k8s/overlays/external-backends/sampler-external.yaml"],
    # The tests' far end (where Tempo and Loki stand), in both of its modes.
    "far end (tests)": ["devstack/far_end.yaml"],
    "far end, count only (benchmark 4)": ["devstack/far_end.yaml", "devstack/far_end_count_only.yaml"],
}
# The far end's config has no defaults: devstack/far_end.py sets every address.
FAR_END_ENV = {"HEALTH_CHECK_ENDPOINT": "127.0.0.1:13133", "OTLP_GRPC_ENDPOINT": "127.0.0.1:4317",
               "OTLP_HTTP_ENDPOINT": "127.0.0.1:3100", "TRACE_SINK_ENDPOINT": "127.0.0.1:4417",
               "LOG_SINK_ENDPOINT": "http://127.0.0.1:4418", "OTELCOL_METRICS_HOST": "127.0.0.1",
               "OTELCOL_METRICS_PORT": "8888"}


@pytest.mark.parametrize("name", CONFIGS)
def test_config_validates(name, tmp_path):
    argv = [builds.collector(), "validate", *(f"--config={REPO / c}" for c in CONFIGS[name])]
    token = tmp_path / "token"
    token.write_text("validate-token")
    # validate stats host_metrics' root_path, and /hostfs (the agent pod's mount) is not here.
    hostfs = tmp_path / "hostfs"
    hostfs.mkdir()
    # What the pods set from the downward API and the split-apps overlay (its mounted token file).
    env = {"PATH": "/usr/bin:/bin", "K8S_NODE_NAME": "node-1", "GATEWAY_OTLP_HTTP_ENDPOINT": "https://otlp.example.com",
           "OTLP_TOKEN_FILE": str(token), "HOST_ROOT": str(hostfs), "TEMPO_INSECURE": "false",
           **(FAR_END_ENV if name.startswith("far end") else {})}
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr


def test_manifest_holds_exactly_the_components_the_configs_use():
    import yaml

    manifest = yaml.safe_load((REPO / "collector" / "manifest.yaml").read_text())
    kinds = ("receivers", "processors", "exporters", "connectors", "extensions")
    built = {m["gomod"].split()[0].rsplit("/", 1)[-1] for kind in kinds for m in manifest.get(kind, [])}
    used = set()
    for files in CONFIGS.values():
        for path in files:
            config = yaml.safe_load((REPO / path).read_text())
            for kind in kinds:
                used.update(key.split("/")[0] for key in (config.get(kind) or {}))
    # Component type names -> Go module directory names.
    module_of = {
        "otlp": "otlpreceiver", "file_log": "filelogreceiver", "host_metrics": "hostmetricsreceiver",
        "memory_limiter": "memorylimiterprocessor",
        "k8s_attributes": "k8sattributesprocessor", "resource": "resourceprocessor",
        "transform": "transformprocessor", "filter": "filterprocessor", "otlp_grpc": "otlpexporter",
        "otlp_http": "otlphttpexporter", "debug": "debugexporter", "health_check": "healthcheckextension",
        "file_storage": "filestorage", "bearertokenauth": "bearertokenauthextension",
        "span_metrics": "spanmetricsconnector", "pprof": "pprofextension",
        "loadbalancing": "loadbalancingexporter", "tail_sampling": "tailsamplingprocessor",
    }
    needed = {module_of[u] for u in used}
    assert needed <= built, f"used but not built: {needed - built}"
    assert built - needed <= {"debugexporter"}, f"built but unused: {built - needed - {'debugexporter'}}"
