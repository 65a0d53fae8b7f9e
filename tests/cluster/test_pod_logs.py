"""The agent DaemonSet ships what the pods wrote to the kubelet's /var/log/pods: every line of MariaDB,
Redis and nginx once, under its pod's service.name; of the backend (annotated as shipping OTLP) only
what its SDK did not ship; nothing of the collectors themselves."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import requests

from board_ui import poll
from devstack.pod_logs import container_log_dir, lines_written
from devstack.procs import say

POD_LOGS = Path("/var/log/pods")
# (namespace, app.kubernetes.io/name, container): pods whose stdout is their only log channel (the
# frontend container is nginx).
FILE_LOGGED = (("apps", "mariadb", "mariadb"), ("apps", "redis", "redis"), ("apps", "frontend", "frontend"))


def _is_masked(shipped: str, written: str) -> bool:
    """The gateway masks what looks like a credential in a body (transform/redact-bodies in
    collector/gateway.yaml: MariaDB's "(using password: NO)" arrives as "(using password: ***)"); the
    rest of the line is kept."""
    if "***" not in shipped:
        return False
    pattern = ".+?".join(re.escape(part) for part in shipped.split("***"))
    return re.fullmatch(pattern, written, re.S) is not None


def _records(far_end, directory: Path) -> list:
    """What the far end holds of the agent's records read from one container's files."""
    return [r for r in far_end.log_sink.logs()
            if str(r.attributes.get("log.file.path", "")).startswith(f"{directory}/")]


def _as_written(records: list, written: Counter) -> Counter:
    """The (time, text) of the written line each record is (a masked body counts as its line)."""
    shipped: Counter = Counter()
    for r in records:
        key = (r.time_unix_nano, r.body)
        if key not in written:
            key = next((k for k in written if k[0] == r.time_unix_nano and _is_masked(r.body, k[1])), key)
        shipped[key] += 1
    return shipped


def test_the_agent_ships_each_line_mariadb_redis_and_nginx_wrote_once(stack, far_end, loki, frontend_url):
    for path in ("/", "/no-such-page", "/api/messages?limit=1"):
        requests.get(frontend_url + path, timeout=10)  # access-log lines from nginx
    for namespace, app, container in FILE_LOGGED:
        pods = stack.pods(namespace, f"app.kubernetes.io/name={app}")
        total = 0
        for pod in pods:
            total += _check_shipped_once(far_end, pod, container_log_dir(POD_LOGS, pod, container), app, container)
        assert total, f"{app}: the kubelet wrote no log lines for {[p['metadata']['name'] for p in pods]}"
        assert loki.query(f'{{service_name="{app}", k8s_namespace_name="{namespace}"}}', limit=5000), app
        say(f"{app}: {total} lines from {len(pods)} pod(s) shipped once each, service_name={app}")


def _check_shipped_once(far_end, pod: dict, directory: Path, app: str, container: str) -> int:
    before = lines_written(directory)
    if not before:
        return 0

    def all_arrived() -> None:
        missing = before - _as_written(_records(far_end, directory), before)
        assert not missing, (f"{sum(missing.values())} of {sum(before.values())} lines of {app} not at "
                             f"the far end, e.g. {list(missing)[:2]}")

    poll(all_arrived, 60, f"{app}: the {sum(before.values())} lines in {directory.parent.name}")
    # The far end first, then the files: every line shipped must be in the files by then.
    records = _records(far_end, directory)
    after = lines_written(directory)
    extra = _as_written(records, after) - after
    assert not extra, f"{app}: shipped more often than written: {list(extra.items())[:3]}"
    resources = {(r.resource.get("service.name"), r.resource.get("k8s.pod.name"),
                  r.resource.get("k8s.container.name")) for r in records}
    assert resources == {(app, pod["metadata"]["name"], container)}, resources
    return len(records)


def _is_app_record(text: str) -> bool:
    """A record the backend's stdout handler wrote, which its SDK shipped too (backend/board/json_logs.py)."""
    try:
        record = json.loads(text)
    except ValueError:
        return False
    return isinstance(record, dict) and "logger" in record and "message" in record


def test_of_the_backend_only_what_its_sdk_did_not_ship_is_read_from_its_files(stack, far_end, frontend_url):
    """Its app records arrive over OTLP only; gunicorn's own lines (boot, worker exits) once each."""
    # A failed login logs an app record, so the files hold one whatever ran before.
    for _ in range(4):
        requests.post(frontend_url + "/api/auth/login", json={"username": "nobody", "password": "wrong-password"},
                      timeout=10)
    pods = stack.pods("apps", "app.kubernetes.io/name=backend")
    assert len(pods) >= 2, [p["metadata"]["name"] for p in pods]
    app_records = server_lines = 0
    for pod in pods:
        for status in pod["status"].get("containerStatuses", []):
            directory = container_log_dir(POD_LOGS, pod, status["name"])
            written = lines_written(directory)
            if not written:
                continue
            own = Counter({k: n for k, n in written.items() if not _is_app_record(k[1])})
            poll(lambda: _assert_arrived(far_end, directory, own), 60, f"{directory.parent.name}'s own lines")
            now_written = lines_written(directory)
            shipped = _as_written(_records(far_end, directory), now_written)
            assert not [k for k in shipped if _is_app_record(k[1])], "an app record was read from the files too"
            assert not shipped - now_written, f"shipped more often than written: {shipped}"
            app_records += sum(written.values()) - sum(own.values())
            server_lines += sum(own.values())
    say(f"backend: {server_lines} server lines read from its files once each, {app_records} app records left to OTLP")
    assert app_records and server_lines


def _assert_arrived(far_end, directory: Path, lines: Counter) -> None:
    missing = lines - _as_written(_records(far_end, directory), lines)
    assert not missing, f"{sum(missing.values())} of {sum(lines.values())} not at the far end: {list(missing)[:2]}"


def test_nothing_of_the_collectors_is_read_from_their_files(stack, far_end):
    quiet = stack.pods("observability", "app.kubernetes.io/name in (otel-agent, otel-gateway)")
    assert len(quiet) >= 2, [p["metadata"]["name"] for p in quiet]
    for pod in quiet:
        for status in pod["status"]["containerStatuses"]:
            directory = container_log_dir(POD_LOGS, pod, status["name"])
            assert lines_written(directory), f"{directory}: nothing written, so nothing to leave out"
            shipped = _records(far_end, directory)
            assert not shipped, f"{pod['metadata']['name']}/{status['name']}: {len(shipped)} lines shipped"
