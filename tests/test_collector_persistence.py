"""The gateway's persistent queue: data accepted while Tempo and Loki (the far end) are down survives a
gateway restart and is delivered, every record, once they are back."""

from __future__ import annotations

import os

import requests

from conftest import unique_name
from devstack import collector
from devstack.far_end import FarEnd
from devstack.otlp_payloads import log_request, span_request

BATCHES = 10
PER_BATCH = 50


def test_accepted_telemetry_survives_backend_outage_and_gateway_restart(work_dir, kube_api, prometheus):
    base = work_dir / "persistence"
    far_end = FarEnd(base, name="far-end-p").start()
    gateway = collector.gateway(base, kube_api, far_end.tempo_otlp_grpc, far_end.loki_otlp_endpoint,
                                prometheus_otlp=prometheus.otlp_endpoint, name="gateway-p").start()
    service = unique_name("persist")
    trace_id = os.urandom(16).hex()
    headers = {"Content-Type": "application/x-protobuf"}
    try:
        far_end.stop()
        accepted = 0
        for i in range(BATCHES):
            for path, body in (("/v1/traces", span_request(service, trace_id, {"batch": str(i)}, count=PER_BATCH)),
                               ("/v1/logs", log_request(service, trace_id, f"record {i}", {"batch": str(i)},
                                                        count=PER_BATCH))):
                resp = requests.post(gateway.otlp_http + path, data=body, headers=headers, timeout=10)
                assert resp.status_code == 200, resp.text
            accepted += PER_BATCH
        on_disk = sum(f.stat().st_size for f in gateway.storage_dir.rglob("*") if f.is_file())
        print(f"\npersistence: accepted {accepted} spans and {accepted} log records; queue on disk {on_disk} bytes")
        assert on_disk > 0

        gateway.process.restart()  # SIGTERM, then start again on the same storage
        far_end.start()

        spans = far_end.tempo.wait_for_trace(trace_id, min_spans=accepted, timeout=90)
        records = far_end.loki.wait_for(f'{{service_name="{service}"}}', count=accepted, timeout=90)
        print(f"persistence: delivered {len(spans)} spans to Tempo, {len(records)} log records to Loki "
              f"(the far end counted {far_end.accepted()})")
        assert len(spans) == accepted
        assert len(records) == accepted
    finally:
        gateway.stop()
        far_end.close()
