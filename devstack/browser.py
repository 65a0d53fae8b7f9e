"""Headless Debian chromium driven by Playwright, a fresh profile per launch: Playwright's own browser
downloads cannot be fetched here, so it drives /usr/bin/chromium through `executable_path`."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from . import system_packages

CHROMIUM = "/usr/bin/chromium"
# Root in a container has no usable sandbox; the rest keeps chromium from talking to anything but
# the page under test (updates, sync, field trials) and from using QUIC where nginx speaks TCP.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    system_packages.ensure("chromium")
    return CHROMIUM


@contextlib.contextmanager
def playwright() -> Iterator["object"]:
    """The sync Playwright API (one per thread; start it once and launch many browsers)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@contextlib.contextmanager
def chromium(pw, user_data_dir: Path | None = None, **context_options) -> Iterator["object"]:
    """A BrowserContext of a fresh headless chromium whose profile is user_data_dir (created
    empty; a temp dir when None). Closing it ends the browser."""
    owned = user_data_dir is None
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-")) if owned else Path(user_data_dir)
    if not owned:
        if profile.exists() and any(profile.iterdir()):
            raise ValueError(f"user data dir {profile} is not empty: the profile must be fresh")
        profile.mkdir(parents=True, exist_ok=True)
    context = pw.chromium.launch_persistent_context(
        str(profile), executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS, **context_options
    )
    try:
        yield context
    finally:
        context.close()
        if owned:
            shutil.rmtree(profile, ignore_errors=True)
