"""The board as a person uses it in a browser (Playwright pages), and reading the trace it leaves:
shared by the browser tests of the local stack (test_frontend_e2e.py) and of the cluster
(cluster/test_browser_trace.py)."""

from __future__ import annotations

import re
import time
from typing import Callable, TypeVar

from playwright.sync_api import expect

from conftest import TEST_PASSWORD
from devstack.procs import say

T = TypeVar("T")
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")


def poll(check: Callable[[], T], timeout: float, what: str, nudge: Callable[[], None] | None = None,
         nudge_every: float = 3.0) -> T:
    """Calls check() until it returns without an AssertionError; nudge() (e.g. a telemetry flush)
    runs every nudge_every seconds meanwhile. The last assertion is the failure message."""
    deadline = time.monotonic() + timeout
    next_nudge = time.monotonic() + nudge_every
    started = time.monotonic()
    while True:
        try:
            result = check()
            say(f"{what}: after {time.monotonic() - started:.1f}s")
            return result
        except AssertionError as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what}: not within {timeout:.0f}s: {exc}") from None
        if nudge is not None and time.monotonic() >= next_nudge:
            nudge()
            next_nudge = time.monotonic() + nudge_every
        time.sleep(0.5)


def flush_telemetry(page) -> None:
    """The app flushes both batch processors on `pagehide` (src/telemetry.ts); firing it skips the
    5 s export delay instead of waiting for it."""
    if not page.is_closed():
        page.evaluate("window.dispatchEvent(new Event('pagehide'))")


def hide_page(page) -> None:
    """What switching to another tab does to a page: visibilityState becomes 'hidden' and a
    visibilitychange event fires (web-vitals then reports CLS and INP; the app flushes). Headless
    Chromium keeps its pages visible, so the state is set the way web-vitals' own tests set it."""
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")


def trace_id_of(request) -> str:
    header = request.all_headers().get("traceparent", "")
    match = TRACEPARENT.match(header)
    assert match, f"{request.method} {request.url} carries no sampled traceparent: {header!r}"
    return match.group(1)


def open_app(context, site, path: str = "/"):
    page = context.new_page()
    page.goto(site.url + path)
    page.get_by_test_id("auth-form").wait_for()  # the session check finished: no one is logged in
    return page


def sign_up(page, username: str) -> None:
    page.get_by_test_id("username-input").fill(username)
    page.get_by_test_id("password-input").fill(TEST_PASSWORD)
    page.get_by_test_id("signup-button").click()
    expect(page.get_by_test_id("whoami")).to_have_text(username)


def post_message(page, body: str):
    """Posts through the form; returns the POST /api/messages request."""
    page.get_by_test_id("message-input").fill(body)
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/messages")) as posted:
        page.get_by_test_id("post-button").click()
    expect(page.get_by_test_id("message-input")).to_have_value("")  # cleared once the post succeeded
    expect(page.get_by_test_id("messages-loading")).to_have_count(0)  # and the list reloaded
    return posted.value


def describe(spans: list[dict]) -> str:
    return "\n".join(f"  {s['resource'].get('service.name')} {s['kind']} {s['name']!r} id={s['span_id']} "
                     f"parent={s['parent_span_id'] or '-'} scope={s['scope']}" for s in spans)


def descendants(spans: list[dict], root: dict) -> list[dict]:
    children: dict[str, list[dict]] = {}
    for span in spans:
        children.setdefault(span["parent_span_id"], []).append(span)
    found, todo = [], [root["span_id"]]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child["span_id"])
    return found


def service(span: dict) -> str:
    return span["resource"].get("service.name", "")


def is_kind(span: dict, kind: str) -> bool:
    return str(span["kind"]).upper().endswith(kind)


def attr(span: dict, *names: str):
    for name in names:
        if name in span["attributes"]:
            return span["attributes"][name]
    return None


def db_system(span: dict) -> str:
    return str(attr(span, "db.system.name", "db.system") or "")


def search_ids(tempo, traceql: str, since_s: int) -> set[str]:
    # Search results drop leading zeros of trace ids; compare without them.
    return {t["traceID"].lstrip("0") for t in tempo.search_traceql(traceql, limit=100, since_s=since_s)}
