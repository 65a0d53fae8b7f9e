"""The shipped Loki config answers the largest query it permits, with entries shaped like ours."""

from __future__ import annotations

import time

import requests
import yaml

from conftest import unique_name
from harness.loki import CONFIG

# The backend's records carry about 0.9 KB of labels and structured metadata each.
ATTRIBUTES = {f"attr.{i:02d}": "x" * 40 for i in range(20)}
PER_REQUEST = 1000


def test_a_query_for_max_entries_of_large_records_answers(loki):
    """max_entries_limit_per_query records of ~1 KB come back in one query. With Loki's 4 MiB gRPC
    server default, the querier's answer to its query-frontend is refused and the query hangs until
    query_timeout instead of failing."""
    from harness.otlp_payloads import log_request

    limit = yaml.safe_load(CONFIG.read_text())["limits_config"]["max_entries_limit_per_query"]
    service = unique_name("loki-limits")
    trace_id = "ab" * 16
    for batch in range(-(-limit // PER_REQUEST)):
        resp = requests.post(loki.otlp_endpoint + "/v1/logs", timeout=30,
                             headers={"Content-Type": "application/x-protobuf"},
                             data=log_request(service, trace_id, f"batch {batch}", ATTRIBUTES, count=PER_REQUEST))
        assert resp.status_code == 204, resp.text

    started = time.monotonic()
    entries = loki.query(f'{{service_name="{service}"}}', limit=limit, timeout=30)
    elapsed = time.monotonic() - started
    print(f"\n{len(entries)} entries of ~{sum(len(k) + len(v) for k, v in ATTRIBUTES.items())} B "
          f"attributes in one query: {elapsed:.2f}s")
    assert len(entries) == limit
