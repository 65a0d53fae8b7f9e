"""Fixtures of the frontend tests: the built app, nginx in front of the real stack, and chromium.

Imported by the test modules that use them (conftest.py stays shared and untouched).
"""

from __future__ import annotations

import pytest

from devstack import browser
from devstack.nginx import Nginx, ensure_frontend_built
from devstack.procs import say


@pytest.fixture(scope="session")
def frontend_dist():
    return ensure_frontend_built()


@pytest.fixture(scope="session")
def site(work_dir, frontend_dist, stack_backend, gateway):
    """nginx with the shipped template: the built app, /api/ -> backend, /otlp/ -> gateway."""
    say("starting nginx in front of the backend and the gateway collector")
    # The test-error control is on here (a test clicks it); the shipped default is off.
    server = Nginx(work_dir / "nginx", backend_url=stack_backend.url, otlp_url=gateway.otlp_http,
                   static_root=frontend_dist, FRONTEND_SHOW_TEST_ERROR="true").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pw():
    with browser.playwright() as playwright:
        yield playwright


@pytest.fixture
def browser_context(pw, tmp_path):
    """A fresh headless chromium (own profile: no cookies, no sessionStorage) per test."""
    with browser.chromium(pw, tmp_path / "chromium-profile") as context:
        context.set_default_timeout(15_000)
        yield context
