"""The Loki and Tempo models against answers that follow from the Loki and Tempo documentation, on real
OTLP protobuf decoded by the sink's own decoders; no services, so these run in milliseconds."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbLogRecord
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from devstack.loki_model import CONFIG as LOKI_CONFIG
from devstack.loki_model import (
    InvalidLogQL, LokiModel, LokiQueryRefused, LokiWouldReject, UnsupportedLogQL, load_limits, normalise_name,
    parse_bytes,
)
from devstack.otlp_payloads import to_any_value, to_key_values
from devstack.otlp_sink import LogRecord, Span, decode_logs, decode_traces
from devstack.tempo_model import ROOT_NOT_YET_RECEIVED, TempoModel, UnsupportedTraceQL

OTEL = "https://grafana.com/docs/loki/latest/send-data/otel/"
LIMITS = "https://grafana.com/docs/loki/latest/configure/#limits_config"
SM = "https://grafana.com/docs/loki/latest/get-started/labels/structured-metadata/"
LOG_QUERIES = "https://grafana.com/docs/loki/latest/query/log_queries/"
TRACEQL = "https://grafana.com/docs/tempo/latest/traceql/"
TEMPO_API = "https://grafana.com/docs/tempo/latest/api_docs/"

# When this module was imported: timestamps relative to it are fine for ordering, but a check
# against "now" (the future bound below) must read the clock when it runs.
NOW = time.time_ns()
SECOND = 10**9
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"


# Building what the sink would have decoded -------------------------------------------------------


def log(body: Any = "hello", ts: int | None = NOW, attributes: dict | None = None, trace_id: str = "",
        span_id: str = "", severity_text: str = "", severity_number: int = 0, observed: int = 0,
        flags: int = 0) -> PbLogRecord:
    record = PbLogRecord(time_unix_nano=ts or 0, observed_time_unix_nano=observed, severity_text=severity_text,
                         severity_number=severity_number, attributes=to_key_values(attributes or {}), flags=flags,
                         trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(span_id))
    if body is not None:
        record.body.CopyFrom(to_any_value(body))
    return record


def decoded_logs(resource: dict[str, Any], *records: PbLogRecord, scope: str = "", scope_version: str = "",
                 scope_attributes: dict | None = None) -> list[LogRecord]:
    request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=to_key_values(resource)),
        scope_logs=[ScopeLogs(scope=InstrumentationScope(name=scope, version=scope_version,
                                                         attributes=to_key_values(scope_attributes or {})),
                              log_records=list(records))])])
    return decode_logs(request.SerializeToString(), "/otlp/v1/logs")


class Records:
    """A stand-in for OtlpSink.logs / .spans: what arrived, in order."""

    def __init__(self):
        self.items: list = []

    def __call__(self) -> list:
        return list(self.items)


def loki_defaults_config() -> Path:
    """The shipped loki.yaml without its otlp_config: the tests of Loki's own defaults read these
    limits, while the shipped index-label choice has tests of its own below."""
    config = yaml.safe_load(LOKI_CONFIG.read_text())
    config["limits_config"].pop("otlp_config", None)
    path = Path(tempfile.mkdtemp(prefix="loki-defaults-")) / "loki.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


LOKI_DEFAULTS = loki_defaults_config()


def loki_with(*batches: list[LogRecord], config: Path | None = None) -> LokiModel:
    records = Records()
    for batch in batches:
        records.items.extend(batch)
    return LokiModel(records, config or LOKI_DEFAULTS)


def loki_config(tmp_path: Path, limits: dict) -> Path:
    path = tmp_path / "loki.yaml"
    path.write_text(yaml.safe_dump({"auth_enabled": False, "limits_config": limits}))
    return path


def span(name: str, trace_id: str = TRACE_ID, span_id: str = SPAN_ID, parent: str = "", kind: int = 2,
         start: int = NOW - SECOND, end: int = NOW, attributes: dict | None = None, status: int = 0) -> PbSpan:
    return PbSpan(trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(span_id),
                  parent_span_id=bytes.fromhex(parent), name=name, kind=kind, start_time_unix_nano=start,
                  end_time_unix_nano=end, attributes=to_key_values(attributes or {}), status=Status(code=status))


def decoded_spans(resource: dict[str, Any], *spans: PbSpan, scope: str = "flask", version: str = "0.1") -> list[Span]:
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=to_key_values(resource)),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name=scope, version=version), spans=list(spans))])])
    return decode_traces(request.SerializeToString())


# Loki: what becomes a label, what structured metadata ----------------------------------------------


def test_default_resource_attributes_are_index_labels_and_the_rest_structured_metadata():
    # OTEL ("Format considerations"): the default resource attributes are index labels; other resource
    # attributes, log attributes, scope and the record's fields are structured metadata.
    loki = loki_with(decoded_logs(
        {"service.name": "backend", "k8s.namespace.name": "app", "k8s.pod.name": "backend-0", "host.name": "node-1"},
        log("login succeeded", attributes={"enduser.id": "alice"}, trace_id=TRACE_ID,
            span_id=SPAN_ID, severity_text="INFO", severity_number=9, observed=NOW + 5, flags=1),
        scope="app.auth", scope_version="1.2"))
    (stream,) = loki.streams()
    assert dict(stream) == {"service_name": "backend", "k8s_namespace_name": "app", "k8s_pod_name": "backend-0"}
    (entry,) = loki.query('{service_name="backend"}')
    assert entry["line"] == "login succeeded" and entry["ts"] == str(NOW)
    assert entry["labels"] == {
        "service_name": "backend", "k8s_namespace_name": "app", "k8s_pod_name": "backend-0",
        "host_name": "node-1", "enduser_id": "alice", "scope_name": "app.auth", "scope_version": "1.2",
        "trace_id": TRACE_ID, "span_id": SPAN_ID, "severity_text": "INFO", "severity_number": "9",
        "flags": "1", "observed_timestamp": str(NOW + 5), "detected_level": "info",
    }
    assert loki.label_values("service_name") == ["backend"]
    assert loki.label_values("host_name") == []  # structured metadata is not a label (SM)


def test_trace_and_span_ids_are_lowercase_hex_metadata_and_absent_when_unset():
    # OTEL: trace_id and span_id are structured metadata in hex; an unset (all-zero) id is not stored.
    loki = loki_with(decoded_logs({"service.name": "s"}, log("with", trace_id="AB" * 16, span_id="CD" * 8),
                                  log("without", ts=NOW + 1, trace_id="00" * 16)))
    with_ids, without = loki.query('{service_name="s"}')
    assert (with_ids["labels"]["trace_id"], with_ids["labels"]["span_id"]) == ("ab" * 16, "cd" * 8)
    assert "trace_id" not in without["labels"] and "span_id" not in without["labels"]


def test_attribute_names_are_normalised():
    # OTEL (Loki 3.6+): characters outside [a-zA-Z0-9] become "_", runs collapse, a leading digit
    # gets "key_"; for label and structured-metadata names alike.
    assert normalise_name("k8s.pod.name") == "k8s_pod_name"
    assert normalise_name("a..b-c") == "a_b_c"
    assert normalise_name("1abc") == "key_1abc"
    loki = loki_with(decoded_logs({"service.name": "s", "k8s.pod.name": "p", "a..b-c": "x"},
                                  log(attributes={"1abc": "y", "http.request.method": "GET"})))
    (entry,) = loki.query('{k8s_pod_name="p"}')
    assert {"a_b_c": "x", "key_1abc": "y", "http_request_method": "GET"}.items() <= entry["labels"].items()


def test_non_string_values_are_stored_as_their_string_form():
    # OTEL / SM: every structured-metadata value and the line are strings; a map body is a JSON line.
    loki = loki_with(decoded_logs(
        {"service.name": "s"},
        log({"msg": "hi", "n": 1, "ok": True, "x": 1.0}, attributes={
            "count": 42, "ratio": 0.5, "whole": 2.0, "flag": False, "list": ["a", 1], "nested": {"k": "v"}})))
    (entry,) = loki.query('{service_name="s"}')
    assert entry["line"] == '{"msg":"hi","n":1,"ok":true,"x":1}'
    labels = entry["labels"]
    assert (labels["count"], labels["ratio"], labels["whole"], labels["flag"]) == ("42", "0.5", "2", "false")
    assert labels["list"] == '["a",1]'
    assert labels["nested_k"] == "v"  # a map attribute is flattened into parent_child names


def test_a_record_without_service_name_is_unknown_service():
    # https://grafana.com/docs/loki/latest/get-started/labels/#default-labels-for-all-users
    loki = loki_with(decoded_logs({"host.name": "node-1"}, log("orphan")))
    assert loki.label_values("service_name") == ["unknown_service"]
    assert [e["line"] for e in loki.query('{service_name="unknown_service"}')] == ["orphan"]


def test_service_name_is_discovered_from_an_index_label(tmp_path):
    # LIMITS (discover_service_name): without service.name, the first index label in that list names
    # the service. k8s.container.name is a default index label; `app` is one once otlp_config makes it.
    containers = loki_with(decoded_logs({"k8s.container.name": "nginx"}, log()))
    assert containers.label_values("service_name") == ["nginx"]
    config = loki_config(tmp_path, {"otlp_config": {"resource_attributes": {
        "attributes_config": [{"action": "index_label", "attributes": ["app"]}]}}})
    apps = loki_with(decoded_logs({"app": "shop"}, log()), config=config)
    assert apps.label_values("service_name") == ["shop"]
    assert dict(next(iter(apps.streams()))) == {"app": "shop", "service_name": "shop"}


def test_detected_level_comes_from_severity():
    # LIMITS (discover_log_levels): detected_level from severity_text, else severity_number
    # (https://opentelemetry.io/docs/specs/otel/logs/data-model/#field-severitynumber), else the line.
    loki = loki_with(decoded_logs({"service.name": "s"},
                                  log("a", ts=NOW + 1, severity_text="WARNING"),
                                  log("b", ts=NOW + 2, severity_number=17),
                                  log("c", ts=NOW + 3, severity_number=21),
                                  log("level=debug msg=x", ts=NOW + 4),
                                  log("nothing to see", ts=NOW + 5)))
    levels = [e["labels"]["detected_level"] for e in loki.query('{service_name="s"}')]
    assert levels == ["warn", "error", "fatal", "debug", "unknown"]


def test_timestamp_falls_back_to_observed_time_then_arrival():
    # OTEL: the entry's timestamp is the record's time, else its observed time, else when Loki got it.
    observed_only = decoded_logs({"service.name": "s"}, log("observed", ts=None, observed=NOW - 7))
    neither = decoded_logs({"service.name": "s"}, log("arrival", ts=None))
    loki = loki_with(observed_only, neither)
    entries = {e["line"]: e for e in loki.query('{service_name="s"}')}
    assert entries["observed"]["ts"] == str(NOW - 7) and "observed_timestamp" not in entries["observed"]["labels"]
    assert entries["arrival"]["ts"] == str(neither[0].received_unix_nano)


def test_a_retried_batch_is_stored_once():
    # https://grafana.com/docs/loki/latest/get-started/components/ (ingester, timestamp ordering): the
    # same line at the same timestamp in the same stream is a duplicate and is ignored.
    batch = decoded_logs({"service.name": "s"}, log("once"), log("twice the same time", ts=NOW + 1))
    loki = loki_with(batch, decoded_logs({"service.name": "s"}, log("once"), log("twice the same time", ts=NOW + 1)))
    assert [e["line"] for e in loki.query('{service_name="s"}')] == ["once", "twice the same time"]


def test_the_same_line_at_the_same_time_with_other_metadata_is_kept():
    # grafana/loki#21039 (merged 2026-03-03): the duplicate check compares structured metadata too,
    # so two requests logging the same line at the same instant (another trace) both stay.
    loki = loki_with(decoded_logs({"service.name": "s"}, log("same", ts=NOW + 9, trace_id="1" * 32),
                                  log("same", ts=NOW + 9, trace_id="2" * 32)))
    assert [e["labels"]["trace_id"] for e in loki.query('{service_name="s"}')] == ["1" * 32, "2" * 32]


# Loki: limits -------------------------------------------------------------------------------------


def rejected(loki: LokiModel, limit: str) -> LokiWouldReject:
    """The record is refused wherever the model is read, naming the limit."""
    with pytest.raises(LokiWouldReject) as raised:
        loki.query('{service_name=~".+"}')
    assert raised.value.limit == limit and limit in str(raised.value)
    with pytest.raises(LokiWouldReject):
        loki.label_values("service_name")
    assert [r.limit for r in loki.rejections()] == [limit]
    return raised.value


def test_sixteen_index_labels_are_refused():
    # LIMITS: max_label_names_per_series defaults to 15.
    from devstack.loki_model import DEFAULT_INDEX_LABELS

    resource = {name: "v" for name in DEFAULT_INDEX_LABELS[:16]}
    error = rejected(loki_with(decoded_logs(resource, log("too many labels"))), "max_label_names_per_series")
    assert "16 > 15" in str(error) and "too many labels" in str(error)
    assert not loki_with(decoded_logs({n: "v" for n in DEFAULT_INDEX_LABELS[:15]}, log())).rejections()


def test_the_shipped_otlp_config_indexes_at_most_fifteen_and_no_per_process_identity():
    # DOCS_OTEL ("Changing the default mapping", ignore_defaults): with ignore_defaults only the
    # listed attributes are index labels; every other resource attribute is structured metadata.
    from devstack.loki_model import DEFAULT_INDEX_LABELS

    resource = {name: "v" for name in DEFAULT_INDEX_LABELS} | {"host.name": "n", "os.type": "linux"}
    loki = loki_with(decoded_logs(resource, log("all of them")), config=LOKI_CONFIG)
    assert not loki.rejections()
    (stream,) = loki.streams()
    labels = dict(stream)
    assert len(labels) <= 15
    assert not {"service_instance_id", "k8s_pod_name", "k8s_replicaset_name"} & set(labels)
    (entry,) = loki.query('{service_name="v"}')
    assert entry["labels"]["k8s_pod_name"] == "v" and entry["labels"]["service_instance_id"] == "v"


def test_a_300_kb_line_is_refused_and_256_kb_is_the_limit():
    # LIMITS: max_line_size defaults to 256KB, parsed with binary units (262144 bytes); a longer line
    # is refused unless max_line_size_truncate.
    rejected(loki_with(decoded_logs({"service.name": "s"}, log("x" * 300 * 1024))), "max_line_size")
    rejected(loki_with(decoded_logs({"service.name": "s"}, log("x" * (262144 + 1)))), "max_line_size")
    assert not loki_with(decoded_logs({"service.name": "s"}, log("x" * 262144))).rejections()


def test_a_long_line_is_cut_when_truncation_is_on(tmp_path):
    # LIMITS: max_line_size_truncate: true truncates the line to max_line_size instead.
    config = loki_config(tmp_path, {"max_line_size": "1KB", "max_line_size_truncate": True})
    loki = loki_with(decoded_logs({"service.name": "s"}, log("y" * 5000)), config=config)
    assert [len(e["line"]) for e in loki.query('{service_name="s"}')] == [1024]


def test_more_than_128_structured_metadata_entries_are_refused():
    # SM / LIMITS: max_structured_metadata_entries_count defaults to 128.
    attributes = {f"a{i}": "v" for i in range(129)}
    rejected(loki_with(decoded_logs({"service.name": "s"}, log(attributes=attributes))),
             "max_structured_metadata_entries_count")
    attributes.pop("a0")
    assert not loki_with(decoded_logs({"service.name": "s"}, log(attributes=attributes))).rejections()


def test_more_than_64_kb_of_structured_metadata_is_refused():
    # SM / LIMITS: max_structured_metadata_size defaults to 64KB, names and values counted.
    rejected(loki_with(decoded_logs({"service.name": "s"}, log(attributes={"a": "v" * 65536}))),
             "max_structured_metadata_size")
    assert not loki_with(decoded_logs({"service.name": "s"}, log(attributes={"a": "v" * 65535}))).rejections()


def test_a_week_old_record_is_refused_and_a_six_day_old_one_kept():
    # LIMITS: reject_old_samples / reject_old_samples_max_age (168h, as loki.yaml also sets).
    eight_days = 8 * 86400 * SECOND
    rejected(loki_with(decoded_logs({"service.name": "s"}, log(ts=NOW - eight_days))), "reject_old_samples_max_age")
    six_days = decoded_logs({"service.name": "s"}, log("old", ts=NOW - 6 * 86400 * SECOND))
    loki = loki_with(six_days)
    assert [e["line"] for e in loki.query('{service_name="s"}', since_s=7 * 86400)] == ["old"]
    assert loki.query('{service_name="s"}') == []  # outside the default hour


def test_a_record_from_the_future_is_refused():
    # LIMITS: creation_grace_period (10m) bounds how far ahead a timestamp may be.
    rejected(loki_with(decoded_logs({"service.name": "s"}, log(ts=time.time_ns() + 11 * 60 * SECOND))), "creation_grace_period")


def test_a_late_record_beyond_the_out_of_order_window_is_refused():
    # https://grafana.com/docs/loki/latest/configure/#accept-out-of-order-writes: a stream takes entries
    # out of order back to max_chunk_age / 2 (1h by default) before its newest one.
    newest = decoded_logs({"service.name": "s"}, log("now"))
    late = decoded_logs({"service.name": "s"}, log("an hour and a minute late", ts=NOW - 61 * 60 * SECOND))
    rejected(loki_with(newest, late), "out-of-order window (ingester.max_chunk_age / 2)")
    slightly = decoded_logs({"service.name": "s"}, log("59 minutes late", ts=NOW - 59 * 60 * SECOND))
    assert not loki_with(newest, slightly).rejections()
    assert not loki_with(late, newest).rejections()  # in order: both kept


def test_a_long_label_value_is_refused():
    # LIMITS: max_label_value_length defaults to 2048.
    rejected(loki_with(decoded_logs({"service.name": "s" * 2049}, log())), "max_label_value_length")


def test_limits_come_from_the_shipped_config():
    # LIMITS: what k8s/loki/loki.yaml sets, Loki's defaults for the rest; sizes in binary units.
    from devstack.loki_model import CONFIG

    shipped = yaml.safe_load(CONFIG.read_text())["limits_config"]
    limits = load_limits()
    assert limits.max_entries_limit_per_query == shipped["max_entries_limit_per_query"]
    assert limits.max_global_streams_per_user == shipped["max_global_streams_per_user"]
    assert limits.reject_old_samples_max_age_ns == 168 * 3600 * SECOND
    assert limits.max_label_names_per_series == 15 and limits.max_line_size == 262144
    assert parse_bytes("5MB") == 5 * 1024 * 1024 and parse_bytes(100) == 100


def test_a_query_over_the_entries_limit_is_refused():
    # LIMITS: max_entries_limit_per_query (5000 in loki.yaml) answers 400 to a larger limit.
    loki = loki_with(decoded_logs({"service.name": "s"}, log()))
    assert len(loki.query('{service_name="s"}', limit=5000)) == 1
    with pytest.raises(LokiQueryRefused, match="max_entries_limit_per_query"):
        loki.query('{service_name="s"}', limit=5001)


# Loki: otlp_config from loki.yaml -------------------------------------------------------------


def test_otlp_config_demotes_a_default_label_only_with_ignore_defaults(tmp_path):
    # OTEL ("Changing the default mapping"): the default rules come first, so demoting k8s.pod.name
    # needs ignore_defaults: true and the labels still wanted listed again.
    resource = {"service.name": "s", "k8s.namespace.name": "app", "k8s.pod.name": "s-0"}
    demote = {"action": "structured_metadata", "attributes": ["k8s.pod.name"]}
    kept = loki_with(decoded_logs(resource, log()), config=loki_config(tmp_path, {"otlp_config": {
        "resource_attributes": {"attributes_config": [demote]}}}))
    assert "k8s_pod_name" in dict(next(iter(kept.streams())))

    config = loki_config(tmp_path, {"otlp_config": {"resource_attributes": {
        "ignore_defaults": True,
        "attributes_config": [{"action": "index_label", "attributes": ["service.name", "k8s.namespace.name"]}, demote],
    }}})
    loki = loki_with(decoded_logs(resource, log()), config=config)
    assert dict(next(iter(loki.streams()))) == {"service_name": "s", "k8s_namespace_name": "app"}
    (entry,) = loki.query('{service_name="s"} | k8s_pod_name="s-0"')
    assert entry["labels"]["k8s_pod_name"] == "s-0"


def test_otlp_config_drops_attributes_by_name_or_regex(tmp_path):
    # OTEL: action drop, for resource (by regex), scope and log attributes; regexes fully anchored.
    config = loki_config(tmp_path, {"otlp_config": {
        "resource_attributes": {"attributes_config": [{"action": "drop", "regex": "host\\..*"}]},
        "scope_attributes": [{"action": "drop", "attributes": ["scope.secret"]}],
        "log_attributes": [{"action": "drop", "attributes": ["password"]}, {"action": "drop", "regex": "tok"}]}})
    loki = loki_with(decoded_logs({"service.name": "s", "host.name": "h", "xhost.name": "kept"},
                                  log(attributes={"password": "p", "token": "kept"}),
                                  scope_attributes={"scope.secret": "s", "scope.other": "kept"}), config=config)
    (entry,) = loki.query('{service_name="s"}')
    assert not {"host_name", "password", "scope_secret"} & set(entry["labels"])
    assert {"xhost_name", "token", "scope_other"} <= set(entry["labels"])  # anchored: "tok" is not "token"


def test_otlp_config_refuses_index_label_for_log_attributes(tmp_path):
    # OTEL: index_label is only allowed for resource attributes; Loki does not start with it elsewhere.
    config = loki_config(tmp_path, {"otlp_config": {
        "log_attributes": [{"action": "index_label", "attributes": ["x"]}]}})
    with pytest.raises(ValueError, match="index_label"):
        LokiModel(Records(), config)


# Loki: LogQL ------------------------------------------------------------------------------------


@pytest.fixture
def shop() -> LokiModel:
    # Now, not the module's import time: the 5m windows below must hold however late this test runs.
    now = time.time_ns()
    backend = decoded_logs({"service.name": "backend", "k8s.namespace.name": "app"},
                           log("login succeeded", ts=now - 3 * SECOND, attributes={"enduser.id": "alice"},
                               trace_id=TRACE_ID, span_id=SPAN_ID, severity_number=9),
                           log("login failed", ts=now - 2 * SECOND, attributes={"enduser.id": "bob"},
                               severity_number=17),
                           log('GET /api/messages "200"', ts=now - 1 * SECOND))
    frontend = decoded_logs({"service.name": "frontend", "k8s.namespace.name": "app"},
                            log("test error triggered from the UI", ts=now, severity_text="ERROR"))
    old = decoded_logs({"service.name": "backend", "k8s.namespace.name": "app"},
                       log("two hours ago", ts=now - 7200 * SECOND))
    return loki_with(old, backend, frontend)  # oldest first: a later push of it would be refused (out-of-order window)


def lines(loki: LokiModel, logql: str, **kwargs) -> list[str]:
    return [e["line"] for e in loki.query(logql, **kwargs)]


def test_stream_selectors(shop):
    # LOG_QUERIES ("Log stream selector"): = != =~ !~ over index labels; regexes fully anchored.
    assert lines(shop, '{service_name="frontend"}') == ["test error triggered from the UI"]
    assert len(lines(shop, '{k8s_namespace_name="app", service_name!="frontend"}')) == 3
    assert lines(shop, '{service_name=~"back"}') == []
    assert len(lines(shop, '{service_name=~"back.*|front.*"}')) == 4
    assert lines(shop, '{k8s_namespace_name="app", service_name!~"back.*"}') == ["test error triggered from the UI"]
    assert lines(shop, '{enduser_id="alice"}') == []  # structured metadata is no stream label


def test_answers_come_oldest_first_within_the_window_and_limit(shop):
    # https://grafana.com/docs/loki/latest/reference/loki-http-api/ (query_range, direction=forward).
    assert lines(shop, '{service_name="backend"}', limit=2) == ["login succeeded", "login failed"]
    assert lines(shop, '{service_name="backend"}', since_s=3 * 3600)[0] == "two hours ago"
    assert "two hours ago" not in lines(shop, '{service_name="backend"}')


def test_line_filters(shop):
    # LOG_QUERIES ("Line filter expression"): |= != |~ !~; a line regex may match anywhere.
    assert lines(shop, '{service_name="backend"} |= "login"') == ["login succeeded", "login failed"]
    assert lines(shop, '{service_name="backend"} != "login"') == ['GET /api/messages "200"']
    assert lines(shop, '{service_name="backend"} |~ "fail"') == ["login failed"]
    assert lines(shop, '{service_name="backend"} !~ "log.n" |= "200"') == ['GET /api/messages "200"']
    assert lines(shop, '{service_name="backend"} |= `"200"`') == ['GET /api/messages "200"']
    assert lines(shop, '{service_name="backend"} |= "\\"200\\""') == ['GET /api/messages "200"']


def test_label_filters_see_structured_metadata(shop):
    # LOG_QUERIES ("Label filter expression") and SM ("Querying structured metadata"): | name op "value"
    # over labels and structured metadata; a missing one compares as "".
    assert lines(shop, f'{{service_name="backend"}} | trace_id="{TRACE_ID}"') == ["login succeeded"]
    assert lines(shop, '{service_name="backend"} | enduser_id="bob" |= "login"') == ["login failed"]
    assert lines(shop, '{service_name="backend"} | enduser_id=~"a.*"') == ["login succeeded"]
    assert lines(shop, '{service_name="backend"} | enduser_id=""') == ['GET /api/messages "200"']
    assert len(lines(shop, '{service_name="backend"} | enduser_id!="alice"')) == 2
    assert lines(shop, '{service_name=~".+"} | detected_level=~"error|fatal|critical"') == [
        "login failed", "test error triggered from the UI"]


def test_the_dashboards_metric_query(shop):
    # https://grafana.com/docs/loki/latest/query/metric_queries/: sum by (...) (count_over_time(...[range])).
    counts = shop.metric_query(
        'sum by (service_name, detected_level) (count_over_time({service_name=~"backend|frontend"}[5m]))')
    assert counts == {("backend", "info"): 1, ("backend", "error"): 1, ("backend", "unknown"): 1,
                      ("frontend", "error"): 1}
    assert shop.metric_query('sum(count_over_time({service_name="backend"} |= "login" [1h]))') == {(): 2}


@pytest.mark.parametrize("logql", [
    "{}", '{service_name=""}', '{service_name=~".*"}', '{service_name!="x"}',
])
def test_selectors_loki_refuses(shop, logql):
    # LOG_QUERIES: a selector needs a matcher that does not match the empty value.
    with pytest.raises(InvalidLogQL, match="empty-compatible"):
        shop.query(logql)


@pytest.mark.parametrize("logql", [
    '{service_name="backend"} | json', '{service_name="backend"} | logfmt | level="info"',
    '{service_name="backend"} | severity_number > 10', '{service_name="backend"} |= "a" or "b"',
    'rate({service_name="backend"}[5m])', 'count_over_time({service_name="backend"}[5m])',
    'sum by (x) (rate({service_name="backend"}[5m]))', 'sum(count_over_time({service_name="backend"}[$__auto]))',
    '{service_name="backend"} | line_format "{{.x}}"', 'service_name="backend"',
])
def test_unsupported_logql_raises(shop, logql):
    # LOG_QUERIES / metric_queries: valid LogQL (mostly) beyond the model's subset must fail loudly,
    # not answer as if nothing matched.
    with pytest.raises(UnsupportedLogQL):
        shop.metric_query(logql) if logql.startswith(("sum", "rate", "count")) else shop.query(logql)


def test_wait_for_polls_until_enough_entries(shop):
    # The old harness's polling contract (query_range until `count` entries, else AssertionError).
    assert len(shop.wait_for('{service_name="backend"}', count=3, timeout=1)) == 3
    with pytest.raises(AssertionError, match="3 < 4"):
        shop.wait_for('{service_name="backend"}', count=4, timeout=0.05)


def test_the_model_follows_records_as_they_arrive():
    # A push is visible to the next query (loki.yaml: query_ingesters_within covers fresh entries).
    records = Records()
    loki = LokiModel(records)
    assert loki.query('{service_name="s"}') == []
    records.items.extend(decoded_logs({"service.name": "s"}, log("later")))
    assert lines(loki, '{service_name="s"}') == ["later"]


# Tempo --------------------------------------------------------------------------------------------

OTHER_TRACE = "00" + "1" * 30  # leading zeros, as 1 in 256 random ids has


@pytest.fixture
def traces() -> TempoModel:
    login = decoded_spans({"service.name": "backend"},
                          span("POST /api/auth/login", attributes={"http.route": "/api/auth/login",
                                                                   "http.response.status_code": 200}),
                          span("SELECT", span_id="1" * 16, parent=SPAN_ID, kind=3, attributes={"db.system": "mysql"}),
                          span("GET", span_id="2" * 16, parent=SPAN_ID, kind=3, status=2,
                               attributes={"db.system": "redis"}), scope="opentelemetry.instrumentation.flask")
    click = decoded_spans({"service.name": "frontend"},
                          span("submit", trace_id=OTHER_TRACE, span_id="3" * 16, kind=1, start=NOW - 5 * SECOND,
                               end=NOW - 4 * SECOND, attributes={"url.full": "http://site/e2e-load"}),
                          scope="@opentelemetry/instrumentation-user-interaction")
    records = Records()
    records.items.extend(login + click)
    return TempoModel(records)


def ids(hits: list[dict]) -> list[str]:
    return [hit["traceID"] for hit in hits]


def test_traceql_by_service_name_span_name_and_attribute(traces):
    # TRACEQL ("Select spans"): resource., span. and unscoped . attributes, the name intrinsic.
    assert ids(traces.search_traceql('{resource.service.name="backend"}')) == [TRACE_ID]
    assert ids(traces.search_traceql('{resource.service.name="frontend" && name="submit"}')) == [OTHER_TRACE]
    assert ids(traces.search_traceql('{resource.service.name="backend" && span.http.route="/api/auth/login"}')) == [
        TRACE_ID]
    assert ids(traces.search_traceql('{.db.system="redis"}')) == [TRACE_ID]
    assert ids(traces.search_traceql('{span.service.name="backend"}')) == []  # a resource attribute
    assert ids(traces.search_traceql('{}')) == [TRACE_ID, OTHER_TRACE]  # newest first


def test_traceql_conditions_hold_on_one_span(traces):
    # TRACEQL: && inside one { } means the same span satisfies both.
    assert ids(traces.search_traceql('{name="SELECT" && span.db.system="mysql"}')) == [TRACE_ID]
    assert ids(traces.search_traceql('{name="SELECT" && span.db.system="redis"}')) == []


def test_traceql_intrinsics(traces):
    # TRACEQL ("Intrinsic fields"): kind and status are unquoted enums; trace:id, trace:rootService, trace:rootName.
    assert ids(traces.search_traceql('{kind=server}')) == [TRACE_ID]
    assert ids(traces.search_traceql('{status=error}')) == [TRACE_ID]
    assert ids(traces.search_traceql('{kind=internal && status!=error}')) == [OTHER_TRACE]
    assert ids(traces.search_traceql(f'{{trace:id="{OTHER_TRACE.lstrip("0")}"}}')) == [OTHER_TRACE]
    assert ids(traces.search_traceql(f'{{trace:id="{OTHER_TRACE}"}}')) == [OTHER_TRACE]
    assert ids(traces.search_traceql('{trace:rootService="backend" && name="GET"}')) == [TRACE_ID]
    assert ids(traces.search_traceql('{trace:rootName="POST /api/auth/login"}')) == [TRACE_ID]


def test_traceql_regex_is_fully_anchored_and_types_matter(traces):
    # TRACEQL ("Comparison operators"): regexes are fully anchored; a string never equals an int.
    assert ids(traces.search_traceql('{resource.service.name=~"back"}')) == []
    assert ids(traces.search_traceql('{resource.service.name=~"back.*"}')) == [TRACE_ID]
    assert ids(traces.search_traceql('{resource.service.name!~"back.*"}')) == [OTHER_TRACE]
    assert ids(traces.search_traceql('{span.http.response.status_code="200"}')) == []
    assert ids(traces.search_traceql('{span.missing!="x"}')) == []  # nil matches nothing


def test_search_results_are_shaped_like_tempos(traces):
    # TEMPO_API (search response): traceID, rootServiceName, rootTraceName, startTimeUnixNano, durationMs.
    (hit,) = traces.search_traceql('{resource.service.name="backend"}')
    assert hit == {"traceID": TRACE_ID, "rootServiceName": "backend", "rootTraceName": "POST /api/auth/login",
                   "startTimeUnixNano": str(NOW - SECOND), "durationMs": 1000}
    assert len(traces.search_traceql("{}", limit=1)) == 1
    since_login_s = (time.time_ns() - NOW) // SECOND + 3  # back to 3 s before the login ended
    assert traces.search_traceql("{}", since_s=since_login_s) == [hit]  # the click ended 4 s before it


def test_a_trace_without_its_root_span(traces):
    # TEMPO_API: a trace whose root span has not arrived has no root service yet.
    records = Records()
    records.items.extend(decoded_spans({"service.name": "backend"}, span("child", parent="9" * 16)))
    (hit,) = TempoModel(records).search_traceql("{}")
    assert hit["rootServiceName"] == ROOT_NOT_YET_RECEIVED


def test_tag_search_and_values(traces):
    # TEMPO_API (search with tags=logfmt; /api/search/tag/<tag>/values).
    assert ids(traces.search_tags("service.name=backend")) == [TRACE_ID]
    assert ids(traces.search_tags('service.name=backend db.system="mysql"')) == [TRACE_ID]
    assert ids(traces.search_tags("service.name=backend db.system=postgres")) == []
    assert traces.tag_values("service.name") == ["backend", "frontend"]
    assert traces.tag_values("db.system") == ["mysql", "redis"]


def test_trace_by_id_in_tempos_json_and_flattened(traces):
    # TEMPO_API (/api/traces/<id>): {"batches": [...]} in the OTLP JSON mapping (ids base64, kinds by name).
    data = traces.trace(TRACE_ID)
    (batch,) = data["batches"]
    assert batch["resource"]["attributes"] == [{"key": "service.name", "value": {"stringValue": "backend"}}]
    (scope,) = batch["scopeSpans"]
    assert scope["scope"] == {"name": "opentelemetry.instrumentation.flask", "version": "0.1"}
    root = scope["spans"][0]
    assert root["kind"] == "SPAN_KIND_SERVER" and root["traceId"] == "CvdlGRbNQ92ESOshHIAxnA=="
    assert traces.trace("f" * 32) is None

    spans = {s["name"]: s for s in traces.spans(TRACE_ID)}
    server = spans["POST /api/auth/login"]
    assert (server["trace_id"], server["span_id"], server["parent_span_id"]) == (TRACE_ID, SPAN_ID, "")
    assert server["attributes"] == {"http.route": "/api/auth/login", "http.response.status_code": "200"}
    assert spans["SELECT"]["kind"] == "SPAN_KIND_CLIENT" and spans["SELECT"]["parent_span_id"] == SPAN_ID
    assert server["resource"] == {"service.name": "backend"}
    assert server["scope"] == "opentelemetry.instrumentation.flask"
    assert [s["name"] for s in traces.spans(OTHER_TRACE.lstrip("0"))] == ["submit"]  # zeros stripped: same trace


def test_a_span_that_arrives_twice_is_one_span(traces):
    # TEMPO_API (/api/traces/<id>): Tempo de-duplicates a trace's spans by id when it reads them.
    records = Records()
    batch = decoded_spans({"service.name": "backend"},
                          span("POST /x"), span("SELECT", span_id="1" * 16, parent=SPAN_ID))
    records.items.extend(batch + decoded_spans({"service.name": "backend"}, span("POST /x")))
    tempo = TempoModel(records)
    assert sorted(s["name"] for s in tempo.wait_for_trace(TRACE_ID, min_spans=2, timeout=1)) == ["POST /x", "SELECT"]
    with pytest.raises(AssertionError, match="2 < 3"):
        tempo.wait_for_trace(TRACE_ID, min_spans=3, timeout=0.05)


@pytest.mark.parametrize("traceql", [
    '{resource.service.name="a" || name="b"}', '{span.http.response.status_code > 200}', '{duration > 1s}',
    '{} | count() > 1', '{kind="server"}', '{resource.service.name="a"} && {name="b"}', '{status=~"err"}',
    'resource.service.name="a"', '{name="a" &&}', '{span.x=5}',
])
def test_unsupported_traceql_raises(traces, traceql):
    # TRACEQL: valid TraceQL (mostly) beyond the model's subset must fail loudly, not find nothing.
    with pytest.raises(UnsupportedTraceQL):
        traces.search_traceql(traceql)
