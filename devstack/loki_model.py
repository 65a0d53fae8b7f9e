"""A model of what Loki stores and answers, not Loki (AGPL, never run here): what Loki would keep of
the records that reached the far end, and the LogQL the project uses; a record Loki would refuse
raises. Its sources and limits: tests/README.md, "The Loki model"."""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from .otlp_sink import LogRecord
from .matchers import anchored_regex, string_match
from .procs import REPO, poll_for

CONFIG = REPO / "k8s" / "loki" / "loki.yaml"

DOCS_OTEL = "https://grafana.com/docs/loki/latest/send-data/otel/"
DOCS_LIMITS = "https://grafana.com/docs/loki/latest/configure/#limits_config"
DOCS_SM = "https://grafana.com/docs/loki/latest/get-started/labels/structured-metadata/"
DOCS_LABELS = "https://grafana.com/docs/loki/latest/get-started/labels/"
DOCS_LOG_QUERIES = "https://grafana.com/docs/loki/latest/query/log_queries/"
DOCS_METRIC_QUERIES = "https://grafana.com/docs/loki/latest/query/metric_queries/"
DOCS_API = "https://grafana.com/docs/loki/latest/reference/loki-http-api/"
DOCS_COMPONENTS = "https://grafana.com/docs/loki/latest/get-started/components/"
DOCS_OUT_OF_ORDER = "https://grafana.com/docs/loki/latest/configure/#accept-out-of-order-writes"

# DOCS_OTEL: the resource attributes Loki indexes by default ("Format considerations").
DEFAULT_INDEX_LABELS = (
    "service.name", "service.namespace", "service.instance.id", "deployment.environment",
    "deployment.environment.name", "cloud.region", "cloud.availability_zone", "k8s.cluster.name",
    "k8s.namespace.name", "k8s.pod.name", "k8s.container.name", "container.name", "k8s.replicaset.name",
    "k8s.deployment.name", "k8s.statefulset.name", "k8s.daemonset.name", "k8s.cronjob.name", "k8s.job.name",
)
# DOCS_LIMITS (discover_service_name): the labels tried, in this order, when there is no service_name.
DEFAULT_DISCOVER_SERVICE_NAME = (
    "service", "app", "application", "app_name", "name", "app_kubernetes_io_name", "container",
    "container_name", "k8s_container_name", "component", "workload", "job", "k8s_job_name",
)
UNKNOWN_SERVICE = "unknown_service"
# DOCS_LIMITS (log_level_fields): the label or structured-metadata names a level is read from.
DEFAULT_LOG_LEVEL_FIELDS = (
    "level", "LEVEL", "Level", "log.level", "severity", "SEVERITY", "Severity", "SeverityText", "lvl", "LVL",
    "Lvl", "severity_text", "Severity_Text", "SEVERITY_TEXT",
)
# DOCS_API: /loki/api/v1/label/<name>/values without start looks back 6 hours.
LABEL_VALUES_LOOKBACK_NS = 6 * 3600 * 10**9


class LokiWouldReject(AssertionError):
    """Loki would refuse this record (HTTP 400 for its push): the test must not pass on it."""

    def __init__(self, limit: str, value: Any, maximum: Any, record: LogRecord, detail: str = ""):
        self.limit, self.value, self.maximum, self.record, self.detail = limit, value, maximum, record, detail
        line = line_of(record.body)
        service = record.resource.get("service.name", "<no service.name>")
        super().__init__(f"Loki would reject this record: {limit} ({value} > {maximum}){detail}; "
                         f"service {service!r}, line {line[:80]!r} [{DOCS_LIMITS}]")


class LokiQueryRefused(AssertionError):
    """Loki answers 400 to this query (not a LogQL problem: a query limit)."""


class UnsupportedLogQL(ValueError):
    """LogQL this model does not answer (it may be valid LogQL); the message says which part."""


class InvalidLogQL(UnsupportedLogQL):
    """LogQL Loki itself refuses with a parse error (400). A subclass of UnsupportedLogQL so that
    catching that sees every query this model will not answer."""


# Configuration ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeRule:
    """One entry of otlp_config's attributes_config / scope_attributes / log_attributes."""
    action: str
    attributes: tuple[str, ...] = ()
    regex: re.Pattern | None = None

    def matches(self, name: str) -> bool:
        return name in self.attributes or bool(self.regex and self.regex.fullmatch(name))


@dataclass(frozen=True)
class OtlpConfig:
    resource: tuple[AttributeRule, ...]
    scope: tuple[AttributeRule, ...] = ()
    log: tuple[AttributeRule, ...] = ()

    @staticmethod
    def action(rules: Iterable[AttributeRule], name: str) -> str:
        # DOCS_OTEL (otlp_config): the first rule that matches decides; no match = structured metadata.
        return next((rule.action for rule in rules if rule.matches(name)), "structured_metadata")


@dataclass(frozen=True)
class LokiLimits:
    """The limits_config values the model applies, with Loki's defaults (DOCS_LIMITS)."""
    otlp: OtlpConfig = field(default_factory=lambda: OtlpConfig((AttributeRule("index_label", DEFAULT_INDEX_LABELS),)))
    discover_service_name: tuple[str, ...] = DEFAULT_DISCOVER_SERVICE_NAME
    discover_log_levels: bool = True
    log_level_fields: tuple[str, ...] = DEFAULT_LOG_LEVEL_FIELDS
    log_level_from_json_max_depth: int = 2
    allow_structured_metadata: bool = True
    max_label_names_per_series: int = 15
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    max_line_size: int = 256 * 1024
    max_line_size_truncate: bool = False
    max_structured_metadata_size: int = 64 * 1024
    max_structured_metadata_entries_count: int = 128
    reject_old_samples: bool = True
    reject_old_samples_max_age_ns: int = 168 * 3600 * 10**9
    creation_grace_period_ns: int = 10 * 60 * 10**9
    max_global_streams_per_user: int = 5000
    max_entries_limit_per_query: int = 5000
    max_query_lookback_ns: int = 0  # 0: no limit
    # Not a limits_config key: ingester.max_chunk_age, which bounds the out-of-order window.
    max_chunk_age_ns: int = 2 * 3600 * 10**9


def load_limits(path: Path = CONFIG) -> LokiLimits:
    """limits_config of a Loki config file, as Loki would read it (unset keys keep their defaults)."""
    text = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: m.group(2) or "", path.read_text())  # -config.expand-env
    config = yaml.safe_load(text) or {}
    limits = config.get("limits_config") or {}
    ingester = config.get("ingester") or {}
    d = LokiLimits()
    get = limits.get
    return LokiLimits(
        otlp=_otlp_config(get("otlp_config") or {}),
        discover_service_name=tuple(get("discover_service_name", d.discover_service_name) or ()),
        discover_log_levels=bool(get("discover_log_levels", d.discover_log_levels)),
        log_level_fields=tuple(get("log_level_fields") or d.log_level_fields),
        log_level_from_json_max_depth=int(get("log_level_from_json_max_depth", d.log_level_from_json_max_depth)),
        allow_structured_metadata=bool(get("allow_structured_metadata", d.allow_structured_metadata)),
        max_label_names_per_series=int(get("max_label_names_per_series", d.max_label_names_per_series)),
        max_label_name_length=int(get("max_label_name_length", d.max_label_name_length)),
        max_label_value_length=int(get("max_label_value_length", d.max_label_value_length)),
        max_line_size=parse_bytes(get("max_line_size", d.max_line_size)),
        max_line_size_truncate=bool(get("max_line_size_truncate", d.max_line_size_truncate)),
        max_structured_metadata_size=parse_bytes(get("max_structured_metadata_size", d.max_structured_metadata_size)),
        max_structured_metadata_entries_count=int(get("max_structured_metadata_entries_count",
                                                      d.max_structured_metadata_entries_count)),
        reject_old_samples=bool(get("reject_old_samples", d.reject_old_samples)),
        reject_old_samples_max_age_ns=parse_duration_ns(get("reject_old_samples_max_age", "168h")),
        creation_grace_period_ns=parse_duration_ns(get("creation_grace_period", "10m")),
        max_global_streams_per_user=int(get("max_global_streams_per_user", d.max_global_streams_per_user)),
        max_entries_limit_per_query=int(get("max_entries_limit_per_query", d.max_entries_limit_per_query)),
        max_query_lookback_ns=parse_duration_ns(get("max_query_lookback", "0s")),
        max_chunk_age_ns=parse_duration_ns(ingester.get("max_chunk_age", "2h")),
    )


def _otlp_config(raw: dict) -> OtlpConfig:
    # DOCS_OTEL (otlp_config): unless resource_attributes.ignore_defaults, the default index_label
    # rule is put first, so a later rule cannot demote a default label.
    resource_raw = raw.get("resource_attributes") or {}
    resource = tuple(_rule(r, "resource_attributes") for r in resource_raw.get("attributes_config") or ())
    if not resource_raw.get("ignore_defaults", False):
        resource = (AttributeRule("index_label", DEFAULT_INDEX_LABELS),) + resource
    return OtlpConfig(resource=resource,
                      scope=tuple(_rule(r, "scope_attributes") for r in raw.get("scope_attributes") or ()),
                      log=tuple(_rule(r, "log_attributes") for r in raw.get("log_attributes") or ()))


def _rule(raw: dict, where: str) -> AttributeRule:
    """One attributes rule, refused where Loki refuses it at start-up (DOCS_LIMITS, otlp_config)."""
    action = raw.get("action") or "structured_metadata"
    if action not in ("index_label", "structured_metadata", "drop"):
        raise ValueError(f"otlp_config.{where}: unsupported action {action!r}")
    if action == "index_label" and where != "resource_attributes":
        raise ValueError(f"otlp_config.{where}: index_label is only supported for resource_attributes")
    attributes, regex = tuple(raw.get("attributes") or ()), raw.get("regex")
    if bool(attributes) == bool(regex):
        raise ValueError(f"otlp_config.{where}: set exactly one of attributes and regex: {raw}")
    # Loki's config regexes are Prometheus relabel regexes: fully anchored.
    return AttributeRule(action, attributes, re.compile(regex, re.DOTALL) if regex else None)


_BYTE_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2, "MIB": 1024**2,
               "G": 1024**3, "GB": 1024**3, "GIB": 1024**3, "T": 1024**4, "TB": 1024**4, "TIB": 1024**4}


def parse_bytes(value: Any) -> int:
    """A flagext.ByteSize: "256KB", "5MB" or a plain number. Loki parses these with binary units
    (KB = 1024), so the documented default max_line_size of 256KB is 262144 bytes."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", str(value))
    if not match or match.group(2).upper() not in _BYTE_UNITS:
        raise ValueError(f"not a Loki byte size: {value!r}")
    return int(match.group(1)) * _BYTE_UNITS[match.group(2).upper()]


_DURATION_UNITS_NS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
                      "w": 7 * 86400 * 10**9, "y": 365 * 86400 * 10**9}


def parse_duration_ns(value: Any) -> int:
    """A Prometheus-style duration ("168h", "1h30m", "10m", "0s") in nanoseconds."""
    text = str(value).strip()
    if text == "0":
        return 0
    parts = re.findall(r"(\d+)(ms|[smhdwy])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {value!r}")
    return sum(int(n) * _DURATION_UNITS_NS[u] for n, u in parts)


# From an OTLP record to a Loki entry --------------------------------------------------------------


_NOT_NAME = re.compile(r"[^a-zA-Z0-9]+")


@functools.lru_cache(maxsize=4096)  # a pure function; every record repeats the same few names
def normalise_name(name: str) -> str:
    """DOCS_OTEL: attribute names become label / structured-metadata names (Loki 3.6+): each character
    outside [a-zA-Z0-9] becomes "_", runs of "_" collapse to one, and a name that would start with a
    digit gets the prefix "key_" (one that starts with "_" gets "key", as Prometheus' translator does)."""
    if not name:
        return name
    out = _NOT_NAME.sub("_", name)  # "_" is outside [a-zA-Z0-9] too: a mixed run becomes one "_"
    if out[0].isdigit():
        out = "key_" + out
    elif out[0] == "_":
        out = "key" + out
    return out


def go_float(f: float) -> str:
    """A double as the OTLP collector library prints it (ES6 number style: 1.0 -> "1", 1e-7 -> "1e-7")."""
    if math.isinf(f) or math.isnan(f):
        return f"json: unsupported value: {'NaN' if math.isnan(f) else ('+Inf' if f > 0 else '-Inf')}"
    if f != 0 and (abs(f) < 1e-6 or abs(f) >= 1e21):
        mantissa, exponent = repr(f).split("e")  # repr is shortest round-trip, like Go's -1 precision
        if exponent.startswith("-0"):
            exponent = "-" + exponent[2:]
        return f"{mantissa}e{exponent}"
    text = format(Decimal(repr(f)), "f")
    return text[:-2] if text.endswith(".0") else text


def go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes an OTLP map or array: sorted keys, no spaces, bytes as base64,
    doubles in ES6 style. (Recent collector libraries no longer HTML-escape <, > and &.)"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            raise ValueError("unsupported value")  # encoding/json fails; the caller stores ""
        return go_float(value)
    if isinstance(value, bytes):
        return json.dumps(base64.b64encode(value).decode())
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(value[k])}" for k in sorted(value)) + "}"
    raise TypeError(f"not an OTLP value: {value!r}")


def as_loki_string(value: Any) -> str:
    """DOCS_OTEL: a non-string attribute value or body is stored as its string form (the collector
    library's AsString: ints in decimal, bools true/false, bytes base64, arrays and maps as JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    try:
        return go_json(value)
    except ValueError:
        return ""


def line_of(body: Any) -> str:
    """DOCS_OTEL: the log line is the record's body as a string ("" for an unset body)."""
    return as_loki_string(body)


def attribute_labels(key: str, value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """One attribute as (name, value) pairs. A map value is flattened into one pair per leaf,
    named parent_child (observed Loki behaviour; DOCS_OTEL is silent on nested maps)."""
    name = normalise_name(f"{prefix}_{key}" if prefix else key)
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in attribute_labels(k, v, name)]
    return [(name, as_loki_string(value))]


def _partition(attributes: dict[str, Any], rules: Iterable[AttributeRule]) -> tuple[list, list]:
    """(index labels, structured metadata) of a set of attributes under otlp_config rules; drops vanish."""
    rules = tuple(rules)
    index: list[tuple[str, str]] = []
    metadata: list[tuple[str, str]] = []
    for key, value in attributes.items():
        action = OtlpConfig.action(rules, key)
        if action == "index_label":
            index.extend(attribute_labels(key, value))
        elif action == "structured_metadata":
            metadata.extend(attribute_labels(key, value))
    return index, metadata


def _stream_labels(record: LogRecord, limits: LokiLimits) -> dict[str, str]:
    labels, _ = _partition(record.resource, limits.otlp.resource)
    stream = dict(labels)
    # DOCS_LABELS ("Default labels for all users"): without a service.name Loki takes service_name from
    # an index label named in discover_service_name, else "unknown_service". Loki's OTLP path (its
    # behaviour; the page only lists the names) takes the first such label in the order the resource
    # attributes came, and counts a non-empty service.name that is not an index label (demoted or
    # dropped) as present: no service_name label is added then.
    has_service_name = as_loki_string(record.resource.get("service.name")) != ""
    if not has_service_name and limits.discover_service_name:
        found = next((value for name, value in labels if name in limits.discover_service_name), None)
        stream["service_name"] = found if found is not None else UNKNOWN_SERVICE
    return stream


def _timestamp(record: LogRecord, arrival_ns: int) -> int:
    """DOCS_OTEL: the entry's timestamp is time_unix_nano, else observed_time_unix_nano, else arrival."""
    return record.time_unix_nano or record.observed_time_unix_nano or arrival_ns


def _record_metadata(record: LogRecord, limits: LokiLimits) -> list[tuple[str, str]]:
    """DOCS_OTEL / DOCS_SM: what Loki keeps per record as structured metadata, in Loki's order."""
    _, metadata = _partition(record.attributes, limits.otlp.log)
    if record.time_unix_nano and record.observed_time_unix_nano:  # else it already is the timestamp
        metadata.append(("observed_timestamp", str(record.observed_time_unix_nano)))
    if record.severity_number:
        metadata.append(("severity_number", str(record.severity_number)))
    if record.severity_text:
        metadata.append(("severity_text", record.severity_text))
    if record.dropped_attributes_count:
        metadata.append(("dropped_attributes_count", str(record.dropped_attributes_count)))
    if record.flags:
        metadata.append(("flags", str(record.flags)))
    for name, hex_id in (("trace_id", record.trace_id), ("span_id", record.span_id)):
        if hex_id.strip("0"):  # an empty or all-zero id is "not set"
            metadata.append((name, hex_id.lower()))
    _, resource_metadata = _partition(record.resource, limits.otlp.resource)
    _, scope_metadata = _partition(record.scope_attributes, limits.otlp.scope)
    metadata += resource_metadata + scope_metadata
    if record.scope_name:
        metadata.append(("scope_name", record.scope_name))
    if record.scope_version:
        metadata.append(("scope_version", record.scope_version))
    return metadata


# detected_level (DOCS_LIMITS, discover_log_levels): from a level field, else severity_number, else the line.
_LEVEL_ALIASES = {"trace": "trace", "trc": "trace", "debug": "debug", "dbg": "debug", "info": "info",
                  "inf": "info", "information": "info", "warn": "warn", "wrn": "warn", "warning": "warn",
                  "error": "error", "err": "error", "critical": "critical", "fatal": "fatal"}
# https://opentelemetry.io/docs/specs/otel/logs/data-model/#field-severitynumber: 1-4 TRACE ... 21-24 FATAL.
_SEVERITY_RANGES = ((4, "trace"), (8, "debug"), (12, "info"), (16, "warn"), (20, "error"), (24, "fatal"))


def detected_level(labels: dict[str, str], metadata: dict[str, str], line: str, limits: LokiLimits) -> str:
    fields = limits.log_level_fields
    for source in (labels, metadata):
        value = next((source[f] for f in fields if f in source), None)
        if value is not None:
            return _LEVEL_ALIASES.get(value.lower(), value)  # an unknown level is kept as given
    if "severity_number" in metadata:
        number = int(metadata["severity_number"])
        return next((level for top, level in _SEVERITY_RANGES if number <= top), "unknown")
    return _level_from_line(line, limits)


def _level_from_line(line: str, limits: LokiLimits) -> str:
    value = None
    stripped = line.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        value = _json_level(stripped, set(limits.log_level_fields), limits.log_level_from_json_max_depth)
    elif "=" in line:
        value = _logfmt_level(line, limits.log_level_fields)
    if value is not None and value.lower() in _LEVEL_ALIASES:
        return _LEVEL_ALIASES[value.lower()]
    return _level_from_words(line)


def _json_level(text: str, fields: set[str], max_depth: int) -> str | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None

    def find(obj: Any, depth: int) -> str | None:
        if not isinstance(obj, dict) or (max_depth > 0 and depth >= max_depth):
            return None
        for key, value in obj.items():
            if isinstance(value, str) and key in fields:
                return value
            found = find(value, depth + 1) if isinstance(value, dict) else None
            if found is not None:
                return found
        return None

    return find(document, 0)


def _logfmt_level(line: str, fields: tuple[str, ...]) -> str | None:
    pairs = re.findall(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)', line)
    best: tuple[int, str] | None = None
    for key, raw in pairs:
        for rank, name in enumerate(fields):
            if key.lower() == name.lower() and (best is None or rank < best[0]):
                best = (rank, raw[1:-1] if raw.startswith('"') else raw)
    return best[1] if best else None


def _level_from_words(line: str) -> str:
    """The last resort: words in the line (observed Loki behaviour, checked in this order)."""
    checks = (("info", ("info:", "INFO:", "[info]", "[INFO]", "info", "INFO")),
              ("error", ("err:", "ERR:", "[err]", "[ERR]", "[error]", "[ERROR]")),
              ("warn", ("warn:", "WARN:", "[warn]", "[WARN]", "[warning]", "[WARNING]", "warning", "WARNING")),
              ("critical", ("critical:", "CRITICAL:", "[critical]", "[CRITICAL]")),
              ("debug", ("debug:", "DEBUG:", "[debug]", "[DEBUG]", "debug", "DEBUG")))
    return next((level for level, needles in checks if any(n in line for n in needles)), "unknown")


@dataclass
class Entry:
    """One stored log entry: its stream's index labels, its structured metadata, time and line."""
    labels: dict[str, str]
    structured_metadata: dict[str, str]
    ts: int
    line: str
    record: LogRecord = field(repr=False)

    @property
    def stream(self) -> frozenset[tuple[str, str]]:
        return frozenset(self.labels.items())

    def all_labels(self) -> dict[str, str]:
        """What a LogQL label filter and a query's answer see: structured metadata and index labels
        (an index label wins a name clash)."""
        return {**self.structured_metadata, **self.labels}

    def as_result(self) -> dict:
        """The shape the old harness returned for one query_range value."""
        return {"labels": self.all_labels(), "ts": str(self.ts), "line": self.line}


def store(record: LogRecord, limits: LokiLimits, now_ns: int | None = None) -> Entry:
    """The entry Loki stores for one record, or LokiWouldReject. Stream-count limits and duplicate
    lines need the other records: LokiModel applies those."""
    arrival = record.received_unix_nano or now_ns or time.time_ns()
    labels = _stream_labels(record, limits)
    _check_labels(labels, record, limits)
    ts = _timestamp(record, arrival)
    _check_timestamp(ts, arrival, record, limits)
    line = _checked_line(line_of(record.body), record, limits)
    metadata_pairs = _record_metadata(record, limits)
    _check_metadata(metadata_pairs, record, limits)
    metadata = dict(metadata_pairs)
    if limits.discover_log_levels and limits.allow_structured_metadata:
        # Added after validation: detected_level does not count against the metadata limits. One the
        # sender set itself is kept, its value normalised.
        given = metadata.get("detected_level")
        metadata["detected_level"] = (_LEVEL_ALIASES.get(given.lower(), given) if given is not None
                                      else detected_level(labels, metadata, line, limits))
    return Entry(labels, metadata, ts, line, record)


def _check_labels(labels: dict[str, str], record: LogRecord, limits: LokiLimits) -> None:
    # DOCS_LIMITS: max_label_names_per_series, max_label_name_length, max_label_value_length.
    if not labels:
        raise LokiWouldReject("at least one label pair is required per stream", 0, "1 or more", record)
    if len(labels) > limits.max_label_names_per_series:
        raise LokiWouldReject("max_label_names_per_series", len(labels), limits.max_label_names_per_series,
                              record, f" labels {sorted(labels)}")
    for name, value in labels.items():
        if len(name.encode()) > limits.max_label_name_length:
            raise LokiWouldReject("max_label_name_length", len(name.encode()), limits.max_label_name_length,
                                  record, f" label {name[:40]!r}...")
        if len(value.encode()) > limits.max_label_value_length:
            raise LokiWouldReject("max_label_value_length", len(value.encode()), limits.max_label_value_length,
                                  record, f" label {name!r}")


def _check_timestamp(ts: int, arrival: int, record: LogRecord, limits: LokiLimits) -> None:
    # DOCS_LIMITS: reject_old_samples(_max_age) and creation_grace_period.
    oldest = arrival - limits.reject_old_samples_max_age_ns
    if limits.reject_old_samples and ts < oldest:
        raise LokiWouldReject("reject_old_samples_max_age", f"age {(arrival - ts) / 3.6e12:.1f}h",
                              f"{limits.reject_old_samples_max_age_ns / 3.6e12:g}h", record)
    if ts > arrival + limits.creation_grace_period_ns:
        raise LokiWouldReject("creation_grace_period", f"{(ts - arrival) / 6e10:.1f}m in the future",
                              f"{limits.creation_grace_period_ns / 6e10:g}m", record)


def _checked_line(line: str, record: LogRecord, limits: LokiLimits) -> str:
    # DOCS_LIMITS: max_line_size counts bytes; max_line_size_truncate cuts instead of refusing.
    size = len(line.encode())
    if limits.max_line_size and size > limits.max_line_size:
        if not limits.max_line_size_truncate:
            raise LokiWouldReject("max_line_size", f"{size} bytes", f"{limits.max_line_size} bytes", record)
        return line.encode()[:limits.max_line_size].decode(errors="replace")
    return line


def _check_metadata(pairs: list[tuple[str, str]], record: LogRecord, limits: LokiLimits) -> None:
    # DOCS_SM / DOCS_LIMITS: allow_structured_metadata, max_structured_metadata_size (names + values),
    # max_structured_metadata_entries_count.
    if pairs and not limits.allow_structured_metadata:
        raise LokiWouldReject("allow_structured_metadata", f"{len(pairs)} entries", "0 (disabled)", record)
    size = sum(len(n.encode()) + len(v.encode()) for n, v in pairs)
    if limits.max_structured_metadata_size and size > limits.max_structured_metadata_size:
        raise LokiWouldReject("max_structured_metadata_size", f"{size} bytes",
                              f"{limits.max_structured_metadata_size} bytes", record)
    if limits.max_structured_metadata_entries_count and len(pairs) > limits.max_structured_metadata_entries_count:
        raise LokiWouldReject("max_structured_metadata_entries_count", len(pairs),
                              limits.max_structured_metadata_entries_count, record)


# LogQL --------------------------------------------------------------------------------------------

_TOKEN = re.compile(r'''
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<op>=~|!~|!=|\|=|\|~|==|\||=|\{|\}|\(|\)|\[|\]|,)
  | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
''', re.VERBOSE)
_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
               '"': '"', "'": "'"}


def _unquote(token: str) -> str:
    """A LogQL string: "double quoted" with Go escapes, or `raw`."""
    if token.startswith("`"):
        return token[1:-1]

    def escape(m: re.Match) -> str:
        text = m.group(1)
        if text[0] in _GO_ESCAPES:
            return _GO_ESCAPES[text[0]]
        if text[0] in "xuU":
            return chr(int(text[1:], 16))
        return chr(int(text, 8))

    try:
        return re.sub(r'\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)', escape, token[1:-1])
    except (ValueError, KeyError) as exc:
        raise InvalidLogQL(f"bad escape in {token}") from exc


def _tokens(text: str, error: type[ValueError]) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise error(f"cannot read {text[pos:pos + 20]!r} at {pos} of {text!r}")
        kind = match.lastgroup
        if kind == "raw":
            kind = "string"
        if kind != "space":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    regex: re.Pattern | None = None

    def __call__(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")  # a missing label compares as ""
        return string_match("=" if self.op == "==" else self.op, actual, self.value, self.regex)


@dataclass(frozen=True)
class LineFilter:
    op: str
    value: str
    regex: re.Pattern | None = None

    def __call__(self, line: str) -> bool:
        # DOCS_LOG_QUERIES ("Line filter expression"): |= contains, != does not contain, |~ / !~ an
        # RE2 regex that may match anywhere in the line (not anchored).
        if self.op == "|=":
            return self.value in line
        if self.op == "!=":
            return self.value not in line
        found = bool(self.regex.search(line))
        return found if self.op == "|~" else not found


@dataclass(frozen=True)
class LogQuery:
    selector: tuple[Matcher, ...]
    stages: tuple[LineFilter | Matcher, ...]

    def selects(self, stream_labels: dict[str, str]) -> bool:
        return all(m(stream_labels) for m in self.selector)

    def keeps(self, entry: Entry) -> bool:
        labels = None
        for stage in self.stages:
            if isinstance(stage, LineFilter):
                if not stage(entry.line):
                    return False
            else:
                labels = labels if labels is not None else entry.all_labels()
                if not stage(labels):
                    return False
        return True


@dataclass(frozen=True)
class CountQuery:
    """sum [by (labels)] (count_over_time(<log query>[range]))."""
    by: tuple[str, ...]
    inner: LogQuery
    range_ns: int


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text, UnsupportedLogQL)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, *values: str, kind: str | None = None) -> str:
        token = self.peek()
        if token is None or (values and token[1] not in values) or (kind and token[0] != kind):
            wanted = " or ".join(values) if values else kind
            raise UnsupportedLogQL(f"expected {wanted}, got {token[1] if token else 'the end'!r} in {self.text!r}")
        self.pos += 1
        return token[1]

    def done(self) -> None:
        if self.peek() is not None:
            raise UnsupportedLogQL(f"this model reads no further than {self.peek()[1]!r} in {self.text!r}")

    def query(self) -> LogQuery | CountQuery:
        token = self.peek()
        if token == ("ident", "sum"):
            return self.count_query()
        if token and token[0] == "ident":
            raise UnsupportedLogQL(f"metric query {token[1]!r}: only sum (count_over_time(...)) is modelled")
        result = self.log_query()
        self.done()
        return result

    def count_query(self) -> CountQuery:
        # DOCS_METRIC_QUERIES: sum by (a, b) (expr) and sum (expr) by (a, b) are the same query.
        self.take("sum")
        by = self.grouping() if self.peek() in (("ident", "by"), ("ident", "without")) else ()
        self.take("(")
        self.take("count_over_time")
        self.take("(")
        inner = self.log_query()
        self.take("[")
        range_ns = parse_duration_ns(self.take(kind="duration"))
        self.take("]")
        self.take(")")
        self.take(")")
        if not by and self.peek() in (("ident", "by"), ("ident", "without")):
            by = self.grouping()
        self.done()
        return CountQuery(by, inner, range_ns)

    def grouping(self) -> tuple[str, ...]:
        if self.take("by", "without") == "without":
            raise UnsupportedLogQL("sum without (...) is not modelled")
        self.take("(")
        names = [self.take(kind="ident")]
        while self.peek() == ("op", ","):
            self.take(",")
            names.append(self.take(kind="ident"))
        self.take(")")
        return tuple(names)

    def log_query(self) -> LogQuery:
        selector = self.selector()
        stages: list[LineFilter | Matcher] = []
        while self.peek() and self.peek()[1] in ("|=", "!=", "|~", "!~", "|"):
            op = self.take()
            if op == "|":
                stages.append(self.label_filter())
            else:
                value = _unquote(self.take(kind="string"))
                regex = None
                if op in ("|~", "!~"):
                    try:
                        regex = re.compile(value)
                    except re.error as exc:
                        raise InvalidLogQL(f"invalid regex {value!r}: {exc}") from exc
                stages.append(LineFilter(op, value, regex))
        return LogQuery(selector, tuple(stages))

    def selector(self) -> tuple[Matcher, ...]:
        # DOCS_LOG_QUERIES ("Log stream selector"): {name op "value", ...}, op one of = != =~ !~.
        self.take("{")
        matchers: list[Matcher] = []
        if self.peek() != ("op", "}"):
            matchers.append(self.matcher(("=", "!=", "=~", "!~")))
            while self.peek() == ("op", ","):
                self.take(",")
                matchers.append(self.matcher(("=", "!=", "=~", "!~")))
        self.take("}")
        # Loki refuses a selector every matcher of which also matches an empty value ({} included):
        # "queries require at least one regexp or equality matcher that does not have an
        # empty-compatible value".
        if not any(not m({}) for m in matchers):
            raise InvalidLogQL(f"{self.text!r}: queries require at least one regexp or equality matcher "
                               "that does not have an empty-compatible value")
        return tuple(matchers)

    def label_filter(self) -> Matcher:
        # DOCS_LOG_QUERIES ("Label filter expression"): only string comparisons of one label.
        ops = ("=", "==", "!=", "=~", "!~")
        token = self.peek()
        following = self.tokens[self.pos + 1][1] if self.pos + 1 < len(self.tokens) else None
        if token and token[0] == "ident" and following not in ops:
            raise UnsupportedLogQL(f"pipeline stage | {token[1]} ... is not modelled (only label filters)")
        return self.matcher(ops)

    def matcher(self, ops: tuple[str, ...]) -> Matcher:
        name = self.take(kind="ident")
        op = self.take(*ops)
        value = _unquote(self.take(kind="string"))
        regex = anchored_regex(value, InvalidLogQL) if op in ("=~", "!~") else None
        return Matcher(name, op, value, regex)


def parse_logql(text: str) -> LogQuery | CountQuery:
    """The LogQL subset this model answers; anything else raises UnsupportedLogQL."""
    return _Parser(text).query()


# The model ---------------------------------------------------------------------------------------


@dataclass
class _State:
    """What the model derived from the records it has seen so far (they only ever grow)."""
    seen: int = 0
    last: LogRecord | None = None
    streams: dict[frozenset, list[Entry]] = field(default_factory=dict)
    lines: set[tuple] = field(default_factory=set)
    newest: dict[frozenset, int] = field(default_factory=dict)
    rejections: list[LokiWouldReject] = field(default_factory=list)


class LokiModel:
    """What Loki would store from the records `records()` returns, and what it would answer.

    `records` is the far end's sink (OtlpSink.logs): it is read on every call, so the model follows
    what keeps arriving. `config_path` is the Loki config whose limits_config applies.
    """

    def __init__(self, records: Callable[[], list[LogRecord]], config_path: Path = CONFIG):
        self._records = records
        self.config_path = config_path
        self.limits = load_limits(config_path)
        self._state = _State()

    # ingestion
    def store(self, record: LogRecord) -> Entry:
        """The entry Loki stores for `record` on its own (raises LokiWouldReject)."""
        return store(record, self.limits)

    def rejections(self) -> list[LokiWouldReject]:
        """Every record so far that Loki would refuse, without raising (for tests that expect it)."""
        return list(self._update().rejections)

    def streams(self) -> dict[frozenset, list[Entry]]:
        """Stored streams, keyed by their index labels, entries in time order."""
        state = self._accepted()
        return {key: sorted(entries, key=lambda e: e.ts) for key, entries in state.streams.items()}

    def _update(self) -> _State:
        records = self._records()
        state = self._state
        if len(records) < state.seen or (state.seen and records[state.seen - 1] is not state.last):
            state = self._state = _State()  # not the list we followed: start again
        for record in records[state.seen:]:
            self._ingest(record, state)
        state.seen, state.last = len(records), (records[-1] if records else None)
        return state

    def _ingest(self, record: LogRecord, state: _State) -> None:
        try:
            entry = store(record, self.limits)
        except LokiWouldReject as rejection:
            state.rejections.append(rejection)
            return
        key = entry.stream
        if key not in state.streams and len(state.streams) >= self.limits.max_global_streams_per_user:
            # DOCS_LIMITS: max_global_streams_per_user (one ingester: the whole limit is local).
            state.rejections.append(LokiWouldReject("max_global_streams_per_user", len(state.streams) + 1,
                                                    self.limits.max_global_streams_per_user, record))
            return
        # DOCS_OUT_OF_ORDER: a stream accepts entries out of order only back to max_chunk_age/2 before
        # its newest entry; older ones are refused ("entry too far behind").
        newest = state.newest.get(key)
        window = self.limits.max_chunk_age_ns // 2
        if newest is not None and entry.ts < newest - window:
            state.rejections.append(LokiWouldReject(
                "out-of-order window (ingester.max_chunk_age / 2)", f"{(newest - entry.ts) / 6e10:.1f}m behind",
                f"{window / 6e10:g}m", record, " behind the newest entry of its stream"))
            return
        # DOCS_COMPONENTS ("Ingester", timestamp ordering): a line equal to one already stored in the
        # same stream at the same timestamp is a duplicate and is ignored (a retried batch is stored once).
        # Its structured metadata counts too since grafana/loki#21039 (merged 2026-03-03; before it,
        # #15425: two workers logging the same line at the same time in one stream kept one).
        identity = (key, entry.ts, entry.line, frozenset(entry.structured_metadata.items()))
        if identity in state.lines:
            return
        state.lines.add(identity)
        state.newest[key] = max(entry.ts, newest or entry.ts)
        state.streams.setdefault(key, []).append(entry)

    def _accepted(self) -> _State:
        state = self._update()
        if state.rejections:
            first = state.rejections[0]
            more = f" (and {len(state.rejections) - 1} more records)" if len(state.rejections) > 1 else ""
            raise LokiWouldReject(first.limit, first.value, first.maximum, first.record, first.detail + more)
        return state

    # queries
    def _window(self, since_s: float) -> tuple[int, int]:
        now = time.time_ns()
        start = now - int(since_s * 10**9)
        if self.limits.max_query_lookback_ns:  # DOCS_LIMITS: max_query_lookback clamps the start
            start = max(start, now - self.limits.max_query_lookback_ns)
        return start, now + 10**9  # the old harness asked up to one second ahead

    def _matching(self, query: LogQuery, start: int, end: int) -> list[Entry]:
        entries = []
        for key, stream in self._accepted().streams.items():
            if query.selects(dict(key)):
                entries.extend(e for e in stream if start <= e.ts < end and query.keeps(e))
        return entries

    def query(self, logql: str, since_s: int = 3600, limit: int = 1000, timeout: float = 10) -> list[dict]:
        """DOCS_API (query_range, direction=forward): [{"labels": {index labels + structured metadata},
        "ts": "<ns>", "line": ...}], the oldest `limit` entries of the last `since_s` seconds first.
        `timeout` is accepted for the old harness's signature; the model answers at once."""
        query = parse_logql(logql)
        if not isinstance(query, LogQuery):
            raise UnsupportedLogQL(f"{logql!r} is a metric query: use metric_query()")
        if limit > self.limits.max_entries_limit_per_query:
            raise LokiQueryRefused(f"max entries limit per query exceeded, limit > max_entries_limit_per_query "
                                   f"({limit} > {self.limits.max_entries_limit_per_query}) [{DOCS_LIMITS}]")
        entries = sorted(self._matching(query, *self._window(since_s)), key=lambda e: e.ts)
        return [e.as_result() for e in entries[:limit]]

    def wait_for(self, logql: str, count: int = 1, timeout: float = 30.0) -> list[dict]:
        return poll_for(lambda: self.query(logql), count, timeout, f"entries for {logql} from Loki (model)")

    def label_values(self, label: str) -> list[str]:
        """DOCS_API (/loki/api/v1/label/<name>/values): values of an index label over the last 6 hours.
        Structured metadata is not a label and has no values here."""
        start = time.time_ns() - LABEL_VALUES_LOOKBACK_NS
        values = {dict(key)[label] for key, stream in self._accepted().streams.items()
                  if label in dict(key) and any(e.ts >= start for e in stream)}
        return sorted(values)

    def metric_query(self, logql: str, at_ns: int | None = None) -> dict[tuple[str, ...], int]:
        """DOCS_METRIC_QUERIES: the instant value at `at_ns` (now) of
        sum by (l1, ...) (count_over_time(<log query>[range])): {(value of l1, ...): count}.
        A label an entry lacks groups as ""."""
        query = parse_logql(logql)
        if not isinstance(query, CountQuery):
            raise UnsupportedLogQL(f"{logql!r} is a log query: use query()")
        end = at_ns if at_ns is not None else time.time_ns()
        counts: dict[tuple[str, ...], int] = {}
        for entry in self._matching(query.inner, end - query.range_ns + 1, end + 1):
            labels = entry.all_labels()
            key = tuple(labels.get(name, "") for name in query.by)
            counts[key] = counts.get(key, 0) + 1
        return counts
