"""A model of what Tempo finds, not Tempo (AGPL, never run here): what Tempo's HTTP API would answer
(TraceQL, tag search, a trace by id, tag values) for the spans that reached the far end. Its sources
and limits: tests/README.md, "The Tempo model"."""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from .matchers import OPERATORS, anchored_regex, string_match
from .otlp_payloads import to_key_values
from .procs import poll_for
from .otlp_sink import Span

DOCS_TRACEQL = "https://grafana.com/docs/tempo/latest/traceql/"
DOCS_API = "https://grafana.com/docs/tempo/latest/api_docs/"

# DOCS_API (search): a trace whose root span has not arrived is listed with this root service name.
ROOT_NOT_YET_RECEIVED = "<root span not yet received>"
KINDS = {"unspecified": 0, "internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUSES = {"unset": 0, "ok": 1, "error": 2}


class UnsupportedTraceQL(ValueError):
    """TraceQL this model does not answer (it may be valid TraceQL); the message says which part."""


def normalise_trace_id(trace_id: str) -> str:
    """DOCS_API (/api/traces/<id>): an id may come with its leading zeros stripped (Tempo's own search
    results used to strip them) or as a 64-bit id; Tempo pads it to 128 bits."""
    text = trace_id.strip().lower()
    if not text or len(text) > 32 or not re.fullmatch(r"[0-9a-f]+", text):
        raise ValueError(f"not a trace id: {trace_id!r}")
    return text.rjust(32, "0")


# TraceQL -----------------------------------------------------------------------------------------

_TOKEN = re.compile(r'''
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<op>&&|\|\||=~|!~|!=|>=|<=|=|>|<|\{|\}|\(|\)|\|)
  | (?P<field>(?:resource|span)?\.[A-Za-z0-9_.\-/]+|(?:trace|span):[A-Za-z]+|[A-Za-z_][A-Za-z0-9_]*)
''', re.VERBOSE)
_INTRINSICS = ("name", "kind", "status", "trace:id", "trace:rootService", "trace:rootName")
# DOCS_TRACEQL ("Intrinsic fields"): the scoped spellings of the span intrinsics.
_ALIASES = {"span:name": "name", "span:kind": "kind", "span:status": "status"}


@dataclass(frozen=True)
class Condition:
    """One `field op value` of a spanset filter, evaluated against one span of its trace."""
    field: str
    op: str
    value: str
    regex: re.Pattern | None = None

    def compare(self, actual: Any) -> bool:
        # DOCS_TRACEQL ("Comparison operators"): a string literal only compares with string values; a
        # missing attribute (nil) matches nothing, != and !~ included. Regexes are Go RE2 and fully
        # anchored ("All regular expressions are treated as fully anchored").
        return isinstance(actual, str) and string_match(self.op, actual, self.value, self.regex)


@dataclass(frozen=True)
class SpansetFilter:
    conditions: tuple[Condition, ...]


def _unquote(token: str) -> str:
    body = token[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}
    try:
        return re.sub(r"\\(.)", lambda m: escapes[m.group(1)], body)
    except KeyError as exc:
        raise UnsupportedTraceQL(f"escape \\{exc.args[0]} in {token}") from exc


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise UnsupportedTraceQL(f"cannot read {text[pos:pos + 20]!r} at {pos} of {text!r}")
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
        pos = match.end()
    return tokens


def parse_traceql(text: str) -> SpansetFilter:
    """DOCS_TRACEQL: `{}` or `{ cond && cond ... }`; anything else raises UnsupportedTraceQL."""
    tokens = _tokens(text)
    if len(tokens) < 2 or tokens[0] != ("op", "{") or tokens[-1] != ("op", "}"):
        raise UnsupportedTraceQL(f"only a single spanset filter {{ ... }} is modelled: {text!r}")
    body = tokens[1:-1]
    conditions = []
    for i in range(0, len(body), 4):
        chunk = body[i:i + 4]
        if len(chunk) < 3:
            raise UnsupportedTraceQL(f"incomplete condition in {text!r}")
        conditions.append(_condition(chunk[:3], text))
        if len(chunk) == 4 and chunk[3] != ("op", "&&"):
            raise UnsupportedTraceQL(f"{chunk[3][1]!r}: only && between conditions is modelled, in {text!r}")
        if len(chunk) == 4 and i + 4 >= len(body):
            raise UnsupportedTraceQL(f"a condition must follow && in {text!r}")
    return SpansetFilter(tuple(conditions))


def _condition(tokens: list[tuple[str, str]], text: str) -> Condition:
    (field_kind, field), (op_kind, op), (value_kind, value) = tokens
    field = _ALIASES.get(field, field)
    if field_kind != "field" or (not field.startswith((".", "resource.", "span.")) and field not in _INTRINSICS):
        raise UnsupportedTraceQL(f"field {field!r} is not modelled, in {text!r}")
    if op_kind != "op" or op not in OPERATORS:
        raise UnsupportedTraceQL(f"operator {op!r} is not modelled, in {text!r}")
    if field in ("kind", "status"):
        # DOCS_TRACEQL ("Intrinsic fields"): kind and status take unquoted enum values.
        allowed = KINDS if field == "kind" else STATUSES
        if value_kind != "field" or value not in allowed or op not in ("=", "!="):
            raise UnsupportedTraceQL(f"{field} {op} {value}: want = or != one of {sorted(allowed)}, in {text!r}")
        return Condition(field, op, value)
    if value_kind != "string":
        raise UnsupportedTraceQL(f"{field} {op} {value}: only string values are modelled, in {text!r}")
    value = _unquote(value)
    regex = anchored_regex(value, UnsupportedTraceQL) if op in ("=~", "!~") else None
    if field == "trace:id":
        value = value.lower()
    return Condition(field, op, value, regex)


# Traces ------------------------------------------------------------------------------------------


@dataclass
class Trace:
    trace_id: str
    spans: list[Span]

    @property
    def root(self) -> Span | None:
        return next((s for s in self.spans if not s.parent_span_id.strip("0")), None)

    @property
    def start_ns(self) -> int:
        return min(s.start_time_unix_nano for s in self.spans)

    @property
    def end_ns(self) -> int:
        return max(s.end_time_unix_nano for s in self.spans)

    def root_service(self) -> str:
        root = self.root
        return str(root.resource.get("service.name", "")) if root else ROOT_NOT_YET_RECEIVED

    def root_name(self) -> str:
        root = self.root
        return root.name if root else ""

    def summary(self) -> dict:
        """DOCS_API (search response): one entry of "traces"."""
        return {"traceID": self.trace_id, "rootServiceName": self.root_service(),
                "rootTraceName": self.root_name(), "startTimeUnixNano": str(self.start_ns),
                "durationMs": max(0, self.end_ns - self.start_ns) // 1_000_000}


def _field_value(condition: Condition, span: Span, trace: Trace) -> list[Any]:
    """The value(s) a condition's field has on a span; [] when the attribute is missing."""
    name = condition.field
    if name == "name":
        return [span.name]
    if name == "trace:id":
        return [trace.trace_id]
    if name == "trace:rootService":
        return [trace.root_service()] if trace.root else []
    if name == "trace:rootName":
        return [trace.root_name()] if trace.root else []
    scope, _, key = name.partition(".")
    sources = {"resource": [span.resource], "span": [span.attributes], "": [span.attributes, span.resource]}[scope]
    return [source[key] for source in sources if key in source]


def _span_matches(span: Span, trace: Trace, conditions: Iterable[Condition]) -> bool:
    for condition in conditions:
        if condition.field == "kind":
            equal = span.kind == KINDS[condition.value]
            if equal != (condition.op == "="):
                return False
        elif condition.field == "status":
            equal = span.status_code == STATUSES[condition.value]
            if equal != (condition.op == "="):
                return False
        elif condition.field == "trace:id":
            if condition.op in ("=", "!="):
                if not _trace_id_equal(trace.trace_id, condition.value, condition.op):
                    return False
            elif not condition.compare(trace.trace_id):
                return False
        elif not any(condition.compare(value) for value in _field_value(condition, span, trace)):
            # An unscoped .name matches when either the span or the resource attribute does.
            return False
    return True


def _trace_id_equal(trace_id: str, value: str, op: str) -> bool:
    """trace:id compares ids, not strings: a short or zero-stripped id names the same trace."""
    try:
        same = normalise_trace_id(value) == trace_id
    except ValueError:
        same = False
    return same if op == "=" else not same


def _proto_span(span: Span) -> ProtoSpan:
    return ProtoSpan(
        trace_id=bytes.fromhex(span.trace_id), span_id=bytes.fromhex(span.span_id),
        parent_span_id=bytes.fromhex(span.parent_span_id), trace_state=span.trace_state, name=span.name,
        kind=span.kind, start_time_unix_nano=span.start_time_unix_nano, end_time_unix_nano=span.end_time_unix_nano,
        attributes=to_key_values(span.attributes),
        events=[ProtoSpan.Event(name=e["name"], attributes=to_key_values(e["attributes"])) for e in span.events],
        status=Status(code=span.status_code, message=span.status_message))


def _value(value: dict) -> Any:
    """An OTLP-JSON attribute value as the old harness flattened it (intValue stays a string)."""
    for key in ("stringValue", "intValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    return value


def _hex(encoded: str) -> str:
    """Tempo's JSON carries ids in base64 (the protobuf JSON mapping); tests compare lowercase hex."""
    return base64.b64decode(encoded).hex() if encoded else ""


_TAG = r'([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)'


def _tags(text: str) -> list[tuple[str, str]]:
    """DOCS_API (search, `tags`): logfmt, `key=value key2="a value"`."""
    if not re.fullmatch(rf"\s*(?:{_TAG}\s*)+", text):
        raise UnsupportedTraceQL(f"tags must be logfmt key=value pairs: {text!r}")
    return [(k, _unquote(v) if v.startswith('"') else v) for k, v in re.findall(_TAG, text)]


# The model ---------------------------------------------------------------------------------------


class TempoModel:
    """What Tempo would find among the spans `spans()` returns (the far end's trace sink, read on every
    call, so the model follows what keeps arriving)."""

    def __init__(self, spans: Callable[[], list[Span]]):
        self._spans = spans
        self._seen = 0
        self._last: Span | None = None
        self._traces: dict[str, Trace] = {}
        self._ids: set[tuple[str, str, int]] = set()

    def _update(self) -> dict[str, Trace]:
        spans = self._spans()
        if len(spans) < self._seen or (self._seen and spans[self._seen - 1] is not self._last):
            self._seen, self._traces, self._ids = 0, {}, set()  # not the list we followed: start again
        for span in spans[self._seen:]:
            # A span that arrives twice (a retried batch) is one span: Tempo's combiner de-duplicates a
            # trace's spans by span id and kind when it reads them (DOCS_API, /api/traces/<id>).
            identity = (span.trace_id, span.span_id, span.kind)
            if identity in self._ids:
                continue
            self._ids.add(identity)
            self._traces.setdefault(span.trace_id, Trace(span.trace_id, [])).spans.append(span)
        self._seen, self._last = len(spans), (spans[-1] if spans else None)
        return self._traces

    def _recent(self, since_s: float) -> list[Trace]:
        # DOCS_API (search, start/end in seconds): traces overlapping the window; the old harness asked
        # up to a minute ahead.
        now = time.time_ns()
        start, end = now - int(since_s * 10**9), now + 60 * 10**9
        return [t for t in self._update().values() if t.start_ns <= end and t.end_ns >= start]

    @staticmethod
    def _newest_first(traces: list[Trace], limit: int) -> list[dict]:
        # DOCS_API (search): the most recent traces first, at most `limit`.
        return [t.summary() for t in sorted(traces, key=lambda t: t.start_ns, reverse=True)[:limit]]

    def search_traceql(self, traceql: str, limit: int = 100, since_s: int = 3600) -> list[dict]:
        """DOCS_TRACEQL: traces in which some span satisfies every condition of the spanset filter."""
        conditions = parse_traceql(traceql).conditions
        hits = [t for t in self._recent(since_s) if any(_span_matches(s, t, conditions) for s in t.spans)]
        return self._newest_first(hits, limit)

    def search_tags(self, tags: str, limit: int = 100, since_s: int = 3600) -> list[dict]:
        """DOCS_API (search by `tags`): each key=value is a span or resource attribute (`name` is the
        span name) that one span must carry, as the TraceQL { .key = "value" && ... } would."""
        conditions = tuple(Condition("name" if k == "name" else f".{k}", "=", v) for k, v in _tags(tags))
        hits = [t for t in self._recent(since_s) if any(_span_matches(s, t, conditions) for s in t.spans)]
        return self._newest_first(hits, limit)

    def trace(self, trace_id: str) -> dict | None:
        """DOCS_API (/api/traces/<id>): {"batches": [ResourceSpans as OTLP JSON]}, ids in base64 as Tempo
        writes them; None (Tempo's 404) for an unknown trace."""
        trace = self._update().get(normalise_trace_id(trace_id))
        if trace is None:
            return None
        batches: dict[tuple, ResourceSpans] = {}
        scopes: dict[tuple, ScopeSpans] = {}
        for span in trace.spans:
            resource_key = repr(sorted(span.resource.items()))
            if resource_key not in batches:
                batches[resource_key] = ResourceSpans(resource=Resource(attributes=to_key_values(span.resource)))
            scope_key = (resource_key, span.scope, span.scope_version)
            if scope_key not in scopes:
                scopes[scope_key] = batches[resource_key].scope_spans.add(
                    scope=InstrumentationScope(name=span.scope, version=span.scope_version))
            scopes[scope_key].spans.append(_proto_span(span))
        return {"batches": [MessageToDict(batch) for batch in batches.values()]}

    def spans(self, trace_id: str) -> list[dict]:
        """The trace flattened as the old harness did: one dict per span with its resource and scope."""
        data = self.trace(trace_id)
        if not data:
            return []
        flattened = []
        for batch in data["batches"]:
            resource = {a["key"]: _value(a["value"]) for a in batch.get("resource", {}).get("attributes", [])}
            for scope in batch.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    flattened.append({
                        "trace_id": _hex(span["traceId"]), "span_id": _hex(span["spanId"]),
                        "parent_span_id": _hex(span.get("parentSpanId", "")), "name": span.get("name", ""),
                        "kind": span.get("kind", ""), "resource": resource,
                        "attributes": {a["key"]: _value(a["value"]) for a in span.get("attributes", [])},
                        "scope": scope.get("scope", {}).get("name", ""),
                    })
        return flattened

    def wait_for_trace(self, trace_id: str, min_spans: int = 1, timeout: float = 30.0) -> list[dict]:
        return poll_for(lambda: self.spans(trace_id), min_spans, timeout,
                        f"spans of {trace_id} from Tempo (model)")

    def tag_values(self, tag: str) -> list[str]:
        """DOCS_API (/api/search/tag/<tag>/values): the distinct values of a resource or span attribute
        (`name` for span names), as strings, sorted."""
        values: set[str] = set()
        for trace in self._update().values():
            for span in trace.spans:
                if tag == "name":
                    values.add(span.name)
                for source in (span.resource, span.attributes):
                    if tag in source and not isinstance(source[tag], (dict, list, bytes)):
                        value = source[tag]
                        values.add(str(value).lower() if isinstance(value, bool) else str(value))
        return sorted(values)
