"""The string comparison LogQL label matchers and TraceQL share (`=`, `!=`, `=~`, `!~`, regexes fully
anchored), so that the Loki and Tempo models agree on it (tests/README.md, "The Tempo model")."""

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
