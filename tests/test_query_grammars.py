"""Every LogQL and TraceQL query the project ships (provisioning, dashboards and their links, the
README, what `make local` prints) parses with Grafana's own grammars, `@grafana/lezer-logql` and
`@grafana/lezer-traceql`, once rendered as Grafana would (tests/README.md, "Grafana's query grammars")."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest
import yaml

from devstack import npm
from devstack.grafana_links import view_logs_query
from devstack.procs import REPO

GRAMMARS = REPO / "tests" / "query_grammars"
DATASOURCES = REPO / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
DASHBOARDS = REPO / "grafana" / "dashboards"
README = REPO / "README.md"

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"

# What a dashboard variable's selection renders to. Loki's and Tempo's datasources join a multi-value
# (or All without a custom all value) selection with `|` for regex matchers; a custom `allValue` is
# passed through unformatted. A variable the dashboards use that is missing here fails the test.
VARIABLE_SAMPLES = {"service": ["backend", "frontend"], "node": ["node-1", "node-2"], "namespace": ["apps"],
                    "pod": ["backend-6d4f9-x2k7p", "redis-0"]}
# Grafana's built-in interval variables, rendered for a one-hour range.
BUILTINS = {"__auto": "1m", "__interval": "1m", "__rate_interval": "1m", "__interval_ms": "60000",
            "__range": "1h", "__range_s": "3600", "__range_ms": "3600000"}
# Span attributes the Tempo -> Loki link reads its tags from.
SPAN_ATTRIBUTES = {"service.name": "backend"}

# Grafana's own variable syntax: $name, [[name:format]], ${name.fieldPath:format}.
GRAFANA_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")

Query = dict  # {"lang": "logql" | "traceql", "query": str, "where": str}


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# Rendering --------------------------------------------------------------------------------------


def render_provisioning(value: str, where: str) -> str:
    """Grafana expands `$NAME` / `${NAME}` in provisioning files as environment variables; `$$` is a
    literal `$`. A query holding an unescaped `$` would be mangled by that expansion."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        raise AssertionError(f"{where}: {m.group(0)!r} is an environment variable to Grafana's "
                             f"provisioning (write $$ for a literal $): {value!r}")
    return re.sub(r"\$\$|\$\{[^}]*\}|\$\w+", sub, value)


def render_variables(query: str, values: dict[str, str], where: str) -> str:
    """Replaces Grafana template variables from `values` (keys: `name` or `name.fieldPath`)."""
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        key = f"{name}.{m.group(5)}" if m.group(5) else name
        if key in values:
            return values[key]
        if name in BUILTINS:
            return BUILTINS[name]
        raise AssertionError(f"{where}: no sample rendering for Grafana variable {m.group(0)!r} in "
                             f"{query!r} (add it to VARIABLE_SAMPLES or BUILTINS)")
    return GRAFANA_VARIABLE.sub(sub, query)


def variables_in(query: str) -> set[str]:
    return {m.group(1) or m.group(2) or m.group(4) for m in GRAFANA_VARIABLE.finditer(query)}


# Sources ----------------------------------------------------------------------------------------


def datasource_types() -> dict[str, str]:
    provisioned = yaml.safe_load(DATASOURCES.read_text())
    return {ds["uid"]: ds["type"] for ds in provisioned["datasources"]}


LANG_OF_TYPE = {"loki": "logql", "tempo": "traceql"}


def from_datasources() -> list[Query]:
    """Every `query`/`expr` string in the datasources' jsonData, in the language of the datasource it
    is sent to (a link's `datasourceUid`, else the datasource's own), plus derived fields' internal
    link `url`s, which are the query sent to the linked datasource."""
    types = datasource_types()
    queries: list[Query] = []

    def walk(node, path: str, ds: dict, target_type: str) -> None:
        if isinstance(node, dict):
            if "datasourceUid" in node:
                target_type = types.get(node["datasourceUid"], "?")
            for key, value in node.items():
                here = f"{path}.{key}"
                if key in ("query", "expr") and isinstance(value, str):
                    add(value, here, target_type, ds, node)
                elif key == "url" and isinstance(value, str) and "datasourceUid" in node:
                    add(value, here, target_type, ds, node)
                else:
                    walk(value, here, ds, target_type)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]", ds, target_type)

    def add(raw: str, path: str, target_type: str, ds: dict, node: dict) -> None:
        where = f"{rel(DATASOURCES)}: {ds['name']} {path}"
        lang = LANG_OF_TYPE.get(target_type)
        if lang is None:
            return  # not a query language checked here (e.g. a link to Prometheus)
        tags = ", ".join(f'{tag.get("value") or tag["key"]}="{SPAN_ATTRIBUTES.get(tag["key"], "sample")}"'
                         for tag in node.get("tags", []))
        link_values = {"__tags": tags, "__span.traceId": TRACE_ID, "__span.spanId": SPAN_ID,
                       "__trace.traceId": TRACE_ID, "__value.raw": TRACE_ID, "__value.text": TRACE_ID}
        query = render_variables(render_provisioning(raw, where), link_values, where)
        if lang == "traceql" and re.fullmatch(r"[0-9a-fA-F]{16,32}", query):
            return  # a bare trace id: Tempo's TraceQL query type looks the trace up, no TraceQL
        queries.append({"lang": lang, "query": query, "where": where})

    for ds in yaml.safe_load(DATASOURCES.read_text())["datasources"]:
        walk(ds.get("jsonData") or {}, "jsonData", ds, ds["type"])
    return queries


def panels(dashboard: dict):
    stack = list(dashboard.get("panels", []))
    while stack:
        panel = stack.pop(0)
        yield panel
        stack[0:0] = panel.get("panels", [])  # rows hold their collapsed panels


def from_dashboards() -> list[Query]:
    types = datasource_types()
    queries: list[Query] = []
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files, f"no dashboards in {rel(DASHBOARDS)}"
    for path in files:
        dashboard = json.loads(path.read_text())
        variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}

        def type_of(datasource) -> str:
            if isinstance(datasource, dict):
                return datasource.get("type") or types.get(datasource.get("uid"), "?")
            return types.get(datasource, "?") if isinstance(datasource, str) else "?"

        def renderings(query: str) -> list[tuple[str, str]]:
            """(label, rendered query) for each selection of the variables `query` uses."""
            choices = []
            for name in sorted(variables_in(query) & variables.keys()):
                var = variables[name]
                assert name in VARIABLE_SAMPLES, f"{rel(path)}: add sample values for ${name} to VARIABLE_SAMPLES"
                samples = VARIABLE_SAMPLES[name]
                options = []
                if var.get("multi") or var.get("includeAll"):
                    options.append((f"${name}={'|'.join(samples)}", "|".join(samples)))
                else:
                    options.append((f"${name}={samples[0]}", samples[0]))
                if var.get("includeAll"):
                    all_value = var.get("allValue") or "|".join(samples)
                    options.append((f"${name}=All", all_value))
                choices.append([(name, label, value) for label, value in options])
            out = []
            for combo in itertools.product(*choices) if choices else [()]:
                label = " ".join(c[1] for c in combo)
                where = f"{rel(path)} [{label}]" if label else rel(path)
                out.append((label, render_variables(query, {c[0]: c[2] for c in combo}, where)))
            return out

        def add(raw: str, lang: str, where: str) -> None:
            for label, query in renderings(raw):
                queries.append({"lang": lang, "query": query, "where": f"{where} [{label}]" if label else where})

        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                ds_type = type_of(target.get("datasource") or panel.get("datasource"))
                where = f"{rel(path)}: panel {panel.get('title')!r} target {target.get('refId')}"
                if ds_type == "loki" and target.get("expr"):
                    add(target["expr"], "logql", where)
                elif ds_type == "tempo" and target.get("queryType", "traceql") == "traceql" and target.get("query"):
                    add(target["query"], "traceql", where)
        for name, var in variables.items():
            stream = (var.get("query") or {}).get("stream") if isinstance(var.get("query"), dict) else None
            if type_of(var.get("datasource")) == "loki" and stream:
                add(stream, "logql", f"{rel(path)}: variable ${name} stream selector")
        for annotation in dashboard.get("annotations", {}).get("list", []):
            if type_of(annotation.get("datasource")) == "loki" and annotation.get("expr"):
                add(annotation["expr"], "logql", f"{rel(path)}: annotation {annotation.get('name')!r}")
    return queries


# A data link's series labels as a click on a series fills them.
FIELD_LABEL_SAMPLES = {"__field.labels.service": "backend", "__field.labels.http_route": "/api/messages",
                       "__field.labels.namespace": "apps", "__field.labels.pod": "backend-6d4f9-x2k7p",
                       "__from": "1767225600000", "__to": "1767229200000"}


def from_dashboard_links() -> list[Query]:
    """The queries inside panels' data links to Explore (`panes`, URL-encoded JSON), rendered for a
    click on a series, in the language of the datasource each pane queries."""
    from urllib.parse import parse_qs, urlsplit

    types = datasource_types()
    queries: list[Query] = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in panels(json.loads(path.read_text())):
            for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", []):
                where = f"{rel(path)}: panel {panel.get('title')!r} link {link['title']!r}"
                url = render_variables(link["url"], FIELD_LABEL_SAMPLES, where)
                (panes,) = parse_qs(urlsplit(url).query)["panes"]
                for pane in json.loads(panes).values():
                    for query in pane["queries"]:
                        uid = query["datasource"]["uid"]
                        assert uid == pane["datasource"] and uid in types, f"{where}: datasource {uid!r}"
                        text = query.get("expr") or query.get("query")
                        queries.append({"lang": LANG_OF_TYPE[types[uid]], "query": text, "where": where})
    return queries


TRACEQL_HINT = re.compile(r"\b(resource|span|event|link|instrumentation|trace)[.:]|&&|^\{\s*\.|(?<![\w.])"
                          r"(name|status|kind|duration)\s*(=|!=|>|<)")
LOGQL_HINT = re.compile(r'^\{\s*[A-Za-z_]\w*\s*(=~|!~|!=|=)\s*"')


def language_of(text: str) -> str | None:
    if TRACEQL_HINT.search(text):
        return "traceql"
    if LOGQL_HINT.search(text):
        return "logql"
    return None


def fill_placeholders(query: str) -> str:
    """A reader's rendering of the README's elisions: `"<that trace>"` and `trace_id=...` are a
    trace id."""
    query = re.sub(r'"<[^"<>]*>"', f'"{TRACE_ID}"', query)
    return re.sub(r"(=~|!~|!=|=)\s*\.\.\.", rf'\1"{TRACE_ID}"', query)


def from_readme() -> list[Query]:
    """Inline code spans that start with `{`: JSON bodies are skipped, the rest must be LogQL or
    TraceQL (an unrecognised one fails, so that it gets a decision)."""
    text = README.read_text()
    # Blank out fenced blocks (keeping line numbers): their backticks are not inline spans.
    text = re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)
    queries: list[Query] = []
    unknown = []
    for m in re.finditer(r"(?<!`)`(\{[^`]*)`(?!`)", text):
        line_no = text.count("\n", 0, m.start()) + 1
        line = text.splitlines()[line_no - 1]
        span = m.group(1)
        if line.lstrip().startswith("|"):
            span = span.replace(r"\|", "|")  # GFM: an escaped pipe inside a table cell
        if span.startswith('{"'):
            continue  # a JSON body
        lang = language_of(span)
        if lang is None:
            unknown.append(f"README.md:{line_no}: `{span}`")
            continue
        queries.append({"lang": lang, "query": fill_placeholders(span), "where": f"README.md:{line_no}"})
    assert not unknown, ("code spans starting with { that are neither JSON nor recognisable LogQL/TraceQL "
                         "(teach language_of about them): " + "; ".join(unknown))
    return queries


def from_make_local() -> list[Query]:
    """What `make local` prints for each trace: the "View logs" query, rendered by the same code
    (devstack.grafana_links) from a backend SERVER span."""
    span = {"trace_id": TRACE_ID, "span_id": SPAN_ID, "resource": dict(SPAN_ATTRIBUTES), "attributes": {}}
    return [{"lang": "logql", "query": view_logs_query(span), "where": "make local: View logs of a backend span"}]


def from_alert_links() -> list[Query]:
    """The Loki queries of the alerts' `logs` links, as Prometheus renders them for the rule unit
    tests' series (tests/prometheus/*_rules_test.yml holds each rendered link)."""
    from urllib.parse import parse_qs, urlsplit

    queries: list[Query] = []
    for path in sorted((REPO / "tests" / "prometheus").glob("*_test.yml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                for alert in case.get("exp_alerts", []):
                    if "logs" in alert.get("exp_annotations", {}):
                        (panes,) = parse_qs(urlsplit(alert["exp_annotations"]["logs"]).query)["panes"]
                        for pane in json.loads(panes).values():
                            assert pane["datasource"] == "loki", f"{rel(path)}: {case['alertname']}"
                            where = f"{rel(path)}: {case['alertname']}"
                            queries += [{"lang": "logql", "query": q["expr"], "where": where} for q in pane["queries"]]
    return queries


SOURCES: dict[str, Callable[[], list[Query]]] = {
    "datasources.yaml": from_datasources,
    "dashboards": from_dashboards,
    "dashboard links": from_dashboard_links,
    "alert links": from_alert_links,
    "README.md": from_readme,
    "make local": from_make_local,
}


# Parsing ----------------------------------------------------------------------------------------


def parse(queries: list[Query]) -> list[dict]:
    """One node run of parse.mjs over all `queries`."""
    node = shutil.which("node")
    assert node, "node is not on PATH"
    npm.ensure_installed(GRAMMARS)
    result = subprocess.run([node, str(GRAMMARS / "parse.mjs")], input=json.dumps(queries), cwd=GRAMMARS,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "NODE_NO_WARNINGS": "1"})
    assert result.returncode == 0, f"parse.mjs exited {result.returncode}: {result.stderr}"
    results = json.loads(result.stdout)
    assert len(results) == len(queries), f"parse.mjs answered {len(results)} of {len(queries)} queries"
    return results


@pytest.fixture(scope="module")
def shipped() -> list[Query]:
    return [q for collect in SOURCES.values() for q in collect()]


@pytest.mark.parametrize("source", SOURCES)
def test_each_source_yields_queries(source):
    """A moved or renamed file, or a changed layout, must not make the check pass on nothing."""
    assert SOURCES[source](), f"no LogQL/TraceQL query found in {source}"


def test_shipped_queries_parse(shipped):
    results = parse(shipped)
    for r, q in zip(results, shipped):
        print(f"{'ok ' if r['ok'] else 'ERR'} {q['lang']:7} {r['where']}: {r['query']}")
    failures = [f"{r['where']}: {r['query']}\n    {r['error']}" for r in results if not r["ok"]]
    assert not failures, f"{len(failures)} shipped queries do not parse:\n" + "\n".join(failures)


def test_checker_reports_syntax_errors():
    """The checker itself catches errors: broken queries fail, their fixed forms pass."""
    cases = [
        {"lang": "logql", "query": '{service_name="backend" | trace_id=', "where": "broken logql"},
        {"lang": "traceql", "query": "{resource.service.name = }", "where": "broken traceql"},
        {"lang": "logql", "query": f'{{service_name="backend"}} | trace_id="{TRACE_ID}"', "where": "fixed logql"},
        {"lang": "traceql", "query": '{resource.service.name = "backend"}', "where": "fixed traceql"},
    ]
    results = {r["where"]: r for r in parse(cases)}
    for where in ("broken logql", "broken traceql"):
        assert not results[where]["ok"], results[where]
        assert "syntax error at line 1 col" in results[where]["error"], results[where]
    assert results["fixed logql"]["ok"] and results["fixed traceql"]["ok"], results
