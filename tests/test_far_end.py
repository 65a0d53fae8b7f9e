"""The far end answers on the wire as Tempo and Loki would where the pipeline meets them: logs only on
Loki's OTLP path, a retryable refusal the gateway rides out, and a restart that keeps what was stored."""

from __future__ import annotations

import os
import time

import pytest
import requests

from conftest import unique_name
from devstack import collector
from devstack.far_end import FarEnd
from devstack.otlp_payloads import PROTOBUF, log_request, span_request


@pytest.fixture
def far_end(tmp_path):
    end = FarEnd(tmp_path / "far-end").start()
    yield end
    end.close()


def test_logs_are_taken_only_on_lokis_otlp_path(far_end):
    service = unique_name("path")
    body = log_request(service, os.urandom(16).hex(), "on loki's path", {})
    base = far_end.collector.otlp_http
    assert requests.post(f"{base}/v1/logs", data=body, headers=PROTOBUF, timeout=10).status_code == 404
    assert requests.post(f"{base}/otlp/v1/logs", data=body, headers=PROTOBUF, timeout=10).status_code == 200
    # Loki takes no traces over HTTP at all.
    traces = span_request(service, os.urandom(16).hex(), {})
    assert requests.post(f"{base}/v1/traces", data=traces, headers=PROTOBUF, timeout=10).status_code == 404
    assert [e["line"] for e in far_end.loki.wait_for(f'{{service_name="{service}"}}')] == ["on loki's path"]
    assert far_end.accepted().log_records == 1


def refused(far_end) -> tuple[int, int]:
    """Spans and log records the far end's receivers refused, at least once each, so far."""
    return (far_end.collector.metric("otelcol_receiver_refused_spans"),
            far_end.collector.metric("otelcol_receiver_refused_log_records"))


def test_a_refusing_far_end_is_ridden_out_by_the_gateway(far_end, tmp_path, kube_api, prometheus):
    gateway = collector.gateway(tmp_path, kube_api, far_end.tempo_otlp_grpc, far_end.loki_otlp_endpoint,
                                prometheus_otlp=prometheus.otlp_endpoint).start()
    try:
        service, trace_id = unique_name("refuse"), os.urandom(16).hex()
        far_end.refuse()
        for path, body in (("/v1/traces", span_request(service, trace_id, {}, count=5)),
                           ("/v1/logs", log_request(service, trace_id, "while refusing", {}, count=5))):
            assert requests.post(gateway.otlp_http + path, data=body, headers=PROTOBUF, timeout=10).status_code == 200
        # The far end refuses each try (its receiver counts them) and the gateway keeps the data queued.
        deadline = time.monotonic() + 30
        while min(refused(far_end)) < 5 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert min(refused(far_end)) >= 5, refused(far_end)
        assert far_end.tempo.spans(trace_id) == [] and far_end.accepted().spans == 0
        assert gateway.metric("otelcol_exporter_send_failed_spans") == 0  # retrying, not given up
        far_end.refuse(False)
        # The first retry comes after initial_interval 5 s (gateway.yaml), randomised.
        assert len(far_end.tempo.wait_for_trace(trace_id, min_spans=5, timeout=60)) == 5
        assert len(far_end.loki.wait_for(f'{{service_name="{service}"}}', count=5, timeout=60)) == 5
    finally:
        gateway.stop()


def test_the_far_end_comes_back_on_its_ports_with_what_it_kept(far_end):
    service, trace_id = unique_name("back"), os.urandom(16).hex()
    endpoint = far_end.collector.otlp_http + "/otlp/v1/logs"
    body = log_request(service, trace_id, "before the restart", {})
    assert requests.post(endpoint, data=body, headers=PROTOBUF, timeout=10).status_code == 200
    far_end.stop()
    with pytest.raises(requests.ConnectionError):
        requests.post(endpoint, data=body, headers=PROTOBUF, timeout=10)
    far_end.start()
    body = log_request(service, trace_id, "after the restart", {})
    assert requests.post(endpoint, data=body, headers=PROTOBUF, timeout=10).status_code == 200
    lines = [e["line"] for e in far_end.loki.wait_for(f'{{service_name="{service}"}}', count=2)]
    assert lines == ["before the restart", "after the restart"]
    assert far_end.accepted().log_records == 2  # counted across both runs of the process
