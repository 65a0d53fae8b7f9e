"""Alertmanager, built from github.com/prometheus/alertmanager (tools/alertmanager), running the shipped
k8s/alertmanager/alertmanager.yml with only its grouping timers and Slack webhook URL file changed
(`for_tests`), so a test sees the notifications the deployment would send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
import yaml

from . import builds, kustomize
from .procs import REPO, LocalService, Process, free_port, http_ok

CONFIG = REPO / "k8s" / "alertmanager" / "alertmanager.yml"
TEST_TIMERS = {"group_wait": "1s", "group_interval": "1s"}


def for_tests(config: dict[str, Any], webhook_url_file: Path) -> dict[str, Any]:
    receivers = [{**r, "slack_configs": [{**c, "api_url_file": str(webhook_url_file)} for c in r["slack_configs"]]}
                 if "slack_configs" in r else r for r in config["receivers"]]
    return {**config, "route": {**config["route"], **TEST_TIMERS}, "receivers": receivers}


class Alertmanager(LocalService):
    def __init__(self, base_dir: Path, slack_webhook_url: str):
        self.port = free_port()
        conf_dir = base_dir / "alertmanager-etc"
        conf_dir.mkdir(parents=True, exist_ok=True)
        self.webhook_url_file = conf_dir / "slack-webhook-url"
        self.webhook_url_file.write_text(slack_webhook_url)
        self.config = conf_dir / "alertmanager.yml"
        self.config.write_text(yaml.safe_dump(for_tests(yaml.safe_load(CONFIG.read_text()), self.webhook_url_file),
                                              sort_keys=False))
        argv = [builds.tool("alertmanager"), *kustomize.local_args("StatefulSet", "alertmanager", **{
            "--config.file": str(self.config), "--storage.path": str(base_dir / "alertmanager-data"),
            "--web.listen-address": f"127.0.0.1:{self.port}"})]
        self.process = Process("alertmanager", argv, base_dir, ready=lambda: http_ok(f"{self.url}/-/ready"),
                               ready_timeout=60)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """As Prometheus sends them (POST /api/v2/alerts)."""
        requests.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10).raise_for_status()

    def alerts(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/api/v2/alerts", timeout=10).json()
