"""The string comparison LogQL label matchers and TraceQL share: `=`, `!=`, `=~`, `!~`, with a regex
that must match the whole value and `.` matching a newline too: Prometheus matchers for LogQL
(https://prometheus.io/docs/prometheus/latest/querying/basics/#time-series-selectors), "fully
anchored" in TraceQL (https://grafana.com/docs/tempo/latest/traceql/). The Loki and Tempo models
differ only in what a missing value is."""

from __future__ import annotations

import re

OPERATORS = ("=", "!=", "=~", "!~")


def anchored_regex(pattern: str, error: type[ValueError]) -> re.Pattern:
    """The pattern compiled for fullmatch; an invalid one raises `error`, the caller's query error."""
    try:
        return re.compile(f"(?:{pattern})", re.DOTALL)
    except re.error as exc:
        raise error(f"invalid regex {pattern!r}: {exc}") from exc


def string_match(op: str, actual: str, expected: str, regex: re.Pattern | None) -> bool:
    if op == "=":
        return actual == expected
    if op == "!=":
        return actual != expected
    matched = bool(regex.fullmatch(actual))
    return matched if op == "=~" else not matched
