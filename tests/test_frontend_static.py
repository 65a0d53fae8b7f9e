"""The frontend without a browser: its unit tests, its build's bundle check, and the nginx template."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from frontend_fixtures import frontend_dist  # noqa: F401 - fixture
from devstack import nginx
from devstack.procs import say


def _plain_env() -> dict[str, str]:
    # vitest colours its summary unless told not to; CI=true also turns off watch mode.
    return dict(os.environ, NO_COLOR="1", FORCE_COLOR="0", CI="true")


def test_unit_tests_pass(frontend_dist):  # noqa: F811
    say("frontend: npm test (vitest, about 30 s)")
    result = subprocess.run(["npm", "test"], cwd=nginx.FRONTEND, env=_plain_env(), capture_output=True, text=True,
                            timeout=300)
    output = result.stdout + result.stderr
    summary = [line.strip() for line in output.splitlines() if re.match(r"\s*(Test Files|Tests)\s", line)]
    print("vitest:", " | ".join(summary) or "(no summary line)")
    assert result.returncode == 0, output[-4000:]
    assert any(re.match(r"Tests\s+\d+ passed", line) for line in summary), summary
    assert not any("failed" in line for line in summary), summary


def test_telemetry_is_loaded_lazily(frontend_dist):  # noqa: F811
    """The build already ran scripts/check-bundle.mjs (`npm run build`); this re-runs it on the
    dist/ the e2e tests serve, which may come from an earlier build: no OpenTelemetry in what
    index.html loads before the app runs, and a chunk of its own that main.ts imports."""
    result = subprocess.run(["node", "scripts/check-bundle.mjs", str(frontend_dist)], cwd=nginx.FRONTEND,
                            capture_output=True, text=True, timeout=120)
    print(result.stdout.strip())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "none with OpenTelemetry" in result.stdout and "loaded lazily" in result.stdout


def _render(tmp_path, **variables):
    defaults = {"LISTEN_PORT": "18080", "STATIC_ROOT": str(nginx.DIST), "BACKEND_URL": "http://127.0.0.1:18000",
                "OTLP_URL": "http://127.0.0.1:14318"}
    return nginx.render_config(tmp_path / "runtime", **{**defaults, **variables})


def test_rendered_config_passes_nginx_t(tmp_path, frontend_dist):  # noqa: F811
    conf = _render(tmp_path, STATIC_ROOT=str(frontend_dist))
    text = conf.read_text()
    # Only the script's variables are substituted; nginx's own ($uri, $host, ...) must survive.
    directives = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "${" not in directives
    for kept in ("$uri", "$host", "$binary_remote_addr", "$http_traceparent", "$request_method"):
        assert kept in directives, kept
    assert f"root {frontend_dist};" in text
    assert "proxy_pass http://127.0.0.1:18000;" in text and "proxy_pass http://127.0.0.1:14318;" in text
    # The app's test-error control is off unless a deployment turns it on.
    assert '"showTestError":false}' in text
    result = subprocess.run(nginx.nginx_argv(conf, test_only=True), capture_output=True, text=True, timeout=60)
    print(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "(no nginx -t output)")
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.parametrize("variable,value", [
    ("BACKEND_URL", "http://127.0.0.1:8000/api"),  # a path would change how proxy_pass maps URIs
    ("OTLP_URL", "http://127.0.0.1:4318; return 200"),
    ("LISTEN_PORT", "8080; include /etc/passwd"),
    ("OTLP_AUTHORIZATION", 'Bearer x"; return 200 "'),
    ("FRONTEND_SERVICE_NAME", 'x"}; return 200 "'),
    ("OTLP_RATE_LIMIT", "fast"),
    ("FRONTEND_SHOW_TEST_ERROR", "1"),
])
def test_render_refuses_unsafe_values(tmp_path, variable, value):
    with pytest.raises(RuntimeError, match=variable):
        _render(tmp_path, **{variable: value})
    assert not (tmp_path / "runtime" / "nginx.conf").exists()


def test_the_gateway_token_is_added_for_the_browser_only_when_configured(tmp_path, frontend_dist):  # noqa: F811
    plain = _render(tmp_path / "plain", STATIC_ROOT=str(frontend_dist)).read_text()
    assert 'proxy_set_header Authorization "";' in plain  # the browser's own header is never forwarded
    with_token = _render(tmp_path / "token", STATIC_ROOT=str(frontend_dist),
                         OTLP_AUTHORIZATION="Bearer dev-otlp-bearer-token").read_text()
    assert 'proxy_set_header Authorization "Bearer dev-otlp-bearer-token";' in with_token
