"""overlays/external-backends: the collector tiers configured from the Secret it renders deliver to the
endpoints it names (the far end standing in for a distributed Tempo and Loki), and every variable of
that Secret is one the configs read."""

from __future__ import annotations

import re
import uuid

import requests

from devstack import collector, kustomize
from devstack.otlp_payloads import PROTOBUF, log_request, span_request
from devstack.procs import REPO

OVERLAY = REPO / "k8s" / "overlays" / "external-backends"
GATEWAY_PATCH = OVERLAY / "gateway-external.yaml"
SAMPLER_PATCH = OVERLAY / "sampler-external.yaml"


def _read_variables(*paths) -> set[str]:
    return {m for p in paths for m in re.findall(r"\$\{env:([A-Z0-9_]+)", p.read_text())}


def _secret_keys(tmp_path) -> set[str]:
    stage = kustomize.stage_with_example_secrets(OVERLAY, tmp_path)
    (secret,) = [o for o in kustomize.render_directory(stage)
                 if o["kind"] == "Secret" and o["metadata"]["name"].startswith("external-backends")]
    return set(secret["data"])


def test_the_secret_sets_only_what_the_configs_read(tmp_path):
    keys = _secret_keys(tmp_path)
    read = _read_variables(collector.GATEWAY_CONFIG, collector.SAMPLER_CONFIG, GATEWAY_PATCH, SAMPLER_PATCH)
    print(f"Secret external-backends: {sorted(keys)}")
    assert keys <= read, keys - read
    assert {"TEMPO_OTLP_ENDPOINT", "LOKI_OTLP_ENDPOINT", "PROMETHEUS_OTLP_ENDPOINT"} <= keys


def test_the_tiers_deliver_to_the_endpoints_the_secret_names(tmp_path, kube_api, far_end, prometheus, tempo, loki):
    # The Secret's variables, with the far end's and Prometheus's addresses for the example's.
    secret = {"TEMPO_OTLP_ENDPOINT": far_end.tempo_otlp_grpc, "TEMPO_INSECURE": "true",
              "TEMPO_AUTHORIZATION": "Bearer tempo-token", "LOKI_OTLP_ENDPOINT": far_end.loki_otlp_endpoint,
              "LOKI_AUTHORIZATION": "Bearer loki-token", "PROMETHEUS_OTLP_ENDPOINT": prometheus.otlp_endpoint,
              "OWN_METRICS_OTLP_ENDPOINT": f"{prometheus.otlp_endpoint}/v1/metrics",
              "PROMETHEUS_AUTHORIZATION": "Bearer metrics-token"}
    assert set(secret) == _secret_keys(tmp_path)
    gateway = collector.gateway(tmp_path, kube_api, secret["TEMPO_OTLP_ENDPOINT"], secret["LOKI_OTLP_ENDPOINT"],
                                prometheus_otlp=secret["PROMETHEUS_OTLP_ENDPOINT"], name="gateway-external",
                                extra_configs=(GATEWAY_PATCH,), sampler_configs=(SAMPLER_PATCH,), sampler_env=secret,
                                **secret).start()
    try:
        trace_id = uuid.uuid4().hex
        for path, body in (("/v1/traces", span_request("external-probe", trace_id, {})),
                           ("/v1/logs", log_request("external-probe", trace_id, "to an external Loki", {}))):
            resp = requests.post(f"{gateway.otlp_http}{path}", data=body, headers=PROTOBUF, timeout=10)
            assert resp.status_code == 200, resp.text
        (span,) = tempo.wait_for_trace(trace_id, timeout=30)
        lines = loki.wait_for(f'{{service_name="external-probe"}} | trace_id="{trace_id}"', 1, timeout=30)
        print(f"external-backends: span {trace_id} in Tempo (model), {len(lines)} line in Loki (model)")
        assert span["resource"]["service.name"] == "external-probe"
    finally:
        gateway.stop()
