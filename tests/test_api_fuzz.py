"""The API against its own OpenAPI description, fuzzed by the schemathesis CLI with every check it has
(`st run --checks all`), logged in, straight to gunicorn and through the frontend's nginx, the
origin users reach."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import requests

import conftest
from frontend_fixtures import frontend_dist, site  # noqa: F401 - fixtures
from devstack.procs import say

TESTS = Path(__file__).resolve().parent
# The same requests on every run, so that CI passes or fails on the code; FUZZ_SEED=<n> explores others.
SEED = os.environ.get("FUZZ_SEED", "20261207")


def fuzz(base_url: str, examples: int, work: Path) -> int:
    """Runs the CLI; returns how many generated requests passed every check (fails on any that did not)."""
    st = Path(sys.executable).with_name("st")
    sessions = work / "fuzz-sessions"
    env = dict(os.environ, PYTHONPATH=str(TESTS), SCHEMATHESIS_HOOKS="schemathesis_auth", NO_COLOR="1",
               FUZZ_SESSIONS_FILE=str(sessions))
    result = subprocess.run([str(st), "--config-file", str(TESTS / "schemathesis.toml"), "run",
                             f"{base_url}/api/openapi.json", "--checks", "all", "--seed", SEED,
                             "--max-examples", str(examples), "--no-color"],
                            env=env, capture_output=True, text=True, timeout=900, cwd=work)
    conftest.SECRETS.update(sessions.read_text().split() if sessions.exists() else ())
    output = result.stdout + result.stderr
    summary = re.search(r"^\s*(\d+) generated, (\d+) passed", output, re.M)
    print("\n".join(line for line in output.splitlines() if re.search(r"generated|Re-authenticated|issues", line)))
    assert result.returncode == 0 and summary, output[-6000:]
    assert "Authentication failed" not in output, output[-3000:]
    return int(summary.group(2))


def test_every_check_passes_straight_to_gunicorn(backend, tmp_path):
    say("schemathesis: every check, logged in, about 1,100 requests to gunicorn (1-2 min)")
    assert fuzz(backend.url, examples=170, work=tmp_path) >= 1000


def test_an_overlong_query_gets_the_documented_414(backend):
    """What the fuzz once found: repeated long `limit` values make a request line gunicorn refuses."""
    spec = requests.get(backend.url + "/api/openapi.json", timeout=10).json()
    resp = requests.get(backend.url + "/api/messages", params=[("limit", "x" * 100)] * 50, timeout=10)
    assert resp.status_code == 414 and "414" in spec["paths"]["/api/messages"]["get"]["responses"]


def test_every_check_passes_through_nginx(site, tmp_path):  # noqa: F811
    say("schemathesis: every check through the frontend's nginx (about 30 s)")
    assert fuzz(site.url, examples=20, work=tmp_path) >= 100


def test_nginx_names_the_methods_of_every_api_path_when_it_refuses_trace(site):  # noqa: F811
    """nginx refuses TRACE itself, before the backend could say which methods a path takes."""
    spec = requests.get(site.url + "/api/openapi.json", timeout=10).json()
    for path, operations in spec["paths"].items():
        resp = requests.request("TRACE", site.url + path, timeout=10)
        allowed = {m.strip() for m in resp.headers.get("Allow", "").split(",")}
        assert resp.status_code == 405 and allowed - {"HEAD"} == {m.upper() for m in operations}, (path, resp.headers)
        assert resp.json()["error"]["code"] == "method_not_allowed"
