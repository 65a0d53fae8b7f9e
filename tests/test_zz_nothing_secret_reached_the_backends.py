"""Runs last (by name): everything the suite's pipelines delivered to the far end (every span and log
record as it arrived, and what the Loki and Tempo models answer for it), scanned for the passwords,
session ids, cookies and Authorization values the suite used."""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse

import conftest
from test_log_shaping import BODY_SECRETS
from test_pipeline_e2e import QUERY_SECRET

# Values that must never be stored, beyond the session ids conftest.Api recorded: the secrets the
# suite put in attributes (test_pipeline_e2e.py) and printed in log lines (test_log_shaping.py).
KNOWN_SECRETS = [conftest.TEST_PASSWORD, "cookie-secret-1", "auth-secret-2", "cookie-secret-3",
                 "password-secret-4", "password-secret-5", "token-secret-6", "auth-secret-7", "session-secret-8",
                 QUERY_SECRET, *BODY_SECRETS]


def everything_in_loki(loki) -> str:
    chunks = []
    for service in loki.label_values("service_name"):
        for entry in loki.query(f'{{service_name="{service}"}}', limit=5000):
            chunks.append(json.dumps(entry))
    return "\n".join(chunks)


def everything_in_tempo(tempo) -> str:
    chunks = []
    seen = set()
    for traceql in ("{}", '{resource.service.name="backend"}', '{resource.service.name="frontend"}'):
        for hit in tempo.search_traceql(traceql, limit=2000):
            if hit["traceID"] not in seen:
                seen.add(hit["traceID"])
                chunks.append(json.dumps(tempo.trace(hit["traceID"])))
    return "\n".join(chunks)


def everything_that_arrived(far_end) -> str:
    records = [*far_end.trace_sink.spans(), *far_end.log_sink.logs()]
    return "\n".join(json.dumps(dataclasses.asdict(r), default=repr) for r in records)


def test_no_password_session_cookie_or_authorization_value_reached_the_far_end(far_end, tempo, loki):
    stored = everything_that_arrived(far_end) + everything_in_loki(loki) + everything_in_tempo(tempo)
    secrets = KNOWN_SECRETS + sorted(conftest.SESSION_IDS_SEEN)
    print(f"\nsecret scan: {len(stored)} bytes from the far end and its Tempo and Loki models, "
          f"{len(secrets)} secret values checked")
    assert len(stored) > 1000, "the scan found almost nothing stored: is the suite's telemetry reaching the backends?"
    leaked = [s[:6] + "..." for s in secrets if s in stored or urllib.parse.quote(s) in stored]
    assert not leaked, f"secret values reached the far end: {leaked}"
    assert not re.search(r"(?i)\"(authorization|cookie|set-cookie)\"\s*:", stored)
