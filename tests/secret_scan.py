"""What the session's pipelines delivered to the far end (every span and log record as it arrived, and
what the Loki and Tempo models answer for it), searched for the secret values the suite used; run
by conftest's far_end fixture once every test is done."""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse


def everything_in_loki(loki) -> str:
    return "\n".join(json.dumps(entry) for service in loki.label_values("service_name")
                     for entry in loki.query(f'{{service_name="{service}"}}', limit=5000))


def everything_in_tempo(tempo) -> str:
    seen: dict[str, str] = {}
    for traceql in ("{}", '{resource.service.name="backend"}', '{resource.service.name="frontend"}'):
        for hit in tempo.search_traceql(traceql, limit=2000):
            seen.setdefault(hit["traceID"], json.dumps(tempo.trace(hit["traceID"])))
    return "\n".join(seen.values())


def everything_that_arrived(far_end) -> str:
    records = [*far_end.trace_sink.spans(), *far_end.log_sink.logs()]
    return "\n".join(json.dumps(dataclasses.asdict(r), default=repr) for r in records)


def leaked(far_end, secrets: set[str]) -> list[str]:
    """The secrets (their first characters) found stored, plain or URL-encoded; a header named like a
    credential counts too."""
    stored = everything_that_arrived(far_end) + everything_in_loki(far_end.loki) + everything_in_tempo(far_end.tempo)
    print(f"\nsecret scan: {len(stored)} bytes from the far end and its Tempo and Loki models, "
          f"{len(secrets)} secret values checked")
    found = [s[:6] + "..." for s in sorted(secrets) if s in stored or urllib.parse.quote(s) in stored]
    if re.search(r"(?i)\"(authorization|cookie|set-cookie)\"\s*:", stored):
        found.append("a credential header")
    return found
