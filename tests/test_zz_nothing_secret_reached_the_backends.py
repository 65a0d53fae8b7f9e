"""Runs last (by name): everything the suite's backends stored in Tempo and Loki, scanned for the
passwords, session ids, cookies and Authorization values the suite used."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

import conftest

# Values that must never be stored, beyond the session ids conftest.Api recorded.
KNOWN_SECRETS = [conftest.TEST_PASSWORD, "cookie-secret-1", "auth-secret-2", "cookie-secret-3",
                 "password-secret-4", "password-secret-5", "token-secret-6", "auth-secret-7", "session-secret-8"]


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


def test_no_password_session_cookie_or_authorization_value_in_tempo_or_loki(tempo, loki):
    stored = everything_in_loki(loki) + everything_in_tempo(tempo)
    secrets = KNOWN_SECRETS + sorted(conftest.SESSION_IDS_SEEN)
    print(f"\nsecret scan: {len(stored)} bytes from Tempo and Loki, {len(secrets)} secret values checked")
    assert len(stored) > 1000, "the scan found almost nothing stored: is the suite's telemetry reaching the backends?"
    leaked = [s[:6] + "..." for s in secrets if s in stored or urllib.parse.quote(s) in stored]
    assert not leaked, f"secret values found in Tempo or Loki: {leaked}"
    assert not re.search(r"(?i)\"(authorization|cookie|set-cookie)\"\s*:", stored)
