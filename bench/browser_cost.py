"""Benchmark 6: what browser telemetry costs in gzip bytes of JS and in time to the `load` event.
Run alone: python bench/run.py --only 6
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

from common import REPO, Row, median, percentile, progress

BENCH = "6 browser cost"
# Sizes: the frontend's own `npm run size`. Load times: the app built with VITE_TELEMETRY=on and
# =off, each served by the real nginx config (harness.nginx), loaded as a first visit (cache cleared)
# in Debian's headless Chromium (harness.browser), A/B interleaved, the order alternating per round.
FRONTEND = REPO / "frontend"
ROUNDS = 30
WARMUP_ROUNDS = 2
GOAL_GZIP_KB = 60.0
GOAL_LOAD_RATIO = 1.10
VARIANTS = ("on", "off")
# Milliseconds from navigation start. A MutationObserver installed before any page script notes
# when the app first renders into #app (Vue's mount), whether or not `load` has fired by then.
_MOUNT_OBSERVER_JS = """
new MutationObserver((_, observer) => {
  const app = document.getElementById('app');
  if (app && app.children.length > 0) { window.__benchMounted = performance.now(); observer.disconnect(); }
}).observe(document, {childList: true, subtree: true});
"""
_TIMINGS_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  return {load: nav.loadEventStart, mounted: window.__benchMounted};
}"""


class QuietUpstream:
    """Stands in for the backend and the collector behind nginx: 200 to every POST (an empty
    OTLP response), 404 to everything else, at no cost worth measuring and with no complaints
    when a closed page drops the connection."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, status: int) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                json_body = "json" in (self.headers.get("Content-Type") or "")
                body = b"{}" if json_body and status == 200 else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if json_body else "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                self._answer(200)

            def do_GET(self):
                self._answer(404)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a page closed mid-export: nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def bundle_sizes() -> dict:
    """The frontend's own size measurement, one JSON line on stdout."""
    out = subprocess.run(["node", "scripts/bundle-size.mjs"], cwd=FRONTEND, check=True, capture_output=True,
                         text=True, timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


def build(variant: str, out_dir: Path) -> None:
    env = dict(os.environ, VITE_TELEMETRY=variant)
    subprocess.run(["node", "node_modules/vite/bin/vite.js", "build", "--outDir", str(out_dir), "--emptyOutDir",
                    "--logLevel", "warn"], cwd=FRONTEND, env=env, check=True, capture_output=True, timeout=300)


def load_once(context, url: str) -> dict:
    """One first visit: a new page after the browser's HTTP cache and cookies were cleared."""
    page = context.new_page()
    try:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.clearBrowserCache")
        cdp.send("Network.clearBrowserCookies")
        page.add_init_script(_MOUNT_OBSERVER_JS)
        page.goto(url, wait_until="load", timeout=30_000)
        page.wait_for_function("() => window.__benchMounted !== undefined", timeout=30_000)
        return page.evaluate(_TIMINGS_JS)
    finally:
        page.close()


def measure_loads(urls: dict[str, str]) -> dict[str, list[dict]]:
    from harness import browser

    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with browser.playwright() as pw, browser.chromium(pw) as context:
        for round_no in range(WARMUP_ROUNDS + ROUNDS):
            order = VARIANTS if round_no % 2 == 0 else tuple(reversed(VARIANTS))
            for variant in order:
                timing = load_once(context, urls[variant])
                if round_no >= WARMUP_ROUNDS:
                    results[variant].append(timing)
            counted = round_no + 1 - WARMUP_ROUNDS
            if counted > 0 and counted % 10 == 0:
                progress(f"browser cost: {counted} of {ROUNDS} A/B rounds")
    return results


def size_row(sizes: dict) -> Row:
    on, off = sizes["telemetry_on"], sizes["telemetry_off"]
    cost_kb = sizes["telemetry_gzip_cost_bytes"] / 1000
    return Row(BENCH, "telemetry JS gzip cost (on - off)", round(cost_kb, 1), "KB", f"<= {GOAL_GZIP_KB:g}",
               cost_kb <= GOAL_GZIP_KB,
               f"npm run size (scripts/bundle-size.mjs, gzip -9 of every JS asset; KB = 1000 bytes): on "
               f"{on['gzip_bytes']} B gzip / {on['raw_bytes']} B raw in {on['files']} file(s), off "
               f"{off['gzip_bytes']} B gzip / {off['raw_bytes']} B raw in {off['files']} file(s).")


def load_rows(results: dict[str, list[dict]], served_gzip: dict[str, int]) -> list[Row]:
    def stats(key: str, variant: str) -> tuple[float, float]:
        values = [r[key] for r in results[variant]]
        return median(values), percentile(values, 99)

    (on_med, on_p99), (off_med, off_p99) = stats("load", "on"), stats("load", "off")
    (mon_med, mon_p99), (moff_med, moff_p99) = stats("mounted", "on"), stats("mounted", "off")
    setup = (f"{ROUNDS} rounds A/B interleaved (order alternating, {WARMUP_ROUNDS} warm-up rounds dropped), a new "
             "page with HTTP cache and cookies cleared per load (first visit), Debian Chromium headless via "
             "Playwright (harness.browser), both builds served by frontend/nginx.conf via harness.nginx "
             "(gzip level 5 on the wire: JS "
             f"{served_gzip['on']} B on / {served_gzip['off']} B off), loopback, 2 shared noisy cores; "
             f"p99 of {ROUNDS} samples is their maximum.")
    ratio = on_med / off_med
    return [
        Row(BENCH, "time to load event, median ratio (on/off)", round(ratio, 3), "x", f"<= {GOAL_LOAD_RATIO:g}",
            ratio <= GOAL_LOAD_RATIO,
            f"load event median {on_med:.0f} ms on / {off_med:.0f} ms off; p99 {on_p99:.0f} / {off_p99:.0f} ms "
            f"(p99 ratio {on_p99 / off_p99:.2f}). {setup}"),
        Row(BENCH, "time to load event p99 ratio (on/off)", round(on_p99 / off_p99, 3), "x", "", None, setup),
        Row(BENCH, "time to app rendered, median ratio (on/off)", round(mon_med / moff_med, 3), "x", "", None,
            f"#app has content: median {mon_med:.0f} ms on / {moff_med:.0f} ms off, p99 {mon_p99:.0f} / "
            f"{moff_p99:.0f} ms. The app starts telemetry after fetching /config.json, which can finish after "
            f"`load`; this point includes that start-up. {setup}"),
    ]


def served_js_gzip(url: str) -> int:
    """Bytes of JS the browser actually downloads from nginx (its own gzip level)."""
    import re

    import requests

    html = requests.get(url, timeout=10).text
    total = 0
    for path in re.findall(r'src="(/assets/[^"]+\.js)"', html):
        resp = requests.get(url.rstrip("/") + path, headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True)
        total += len(resp.raw.read(decode_content=False))
    return total


def run(work_dir: Path) -> list[Row]:
    from harness.nginx import Nginx, ensure_frontend_built

    work_dir = Path(work_dir) / "browser-cost"
    work_dir.mkdir(parents=True, exist_ok=True)
    ensure_frontend_built()  # node_modules (npm ci) for the builds below
    progress("browser cost: npm run size (builds the app with and without telemetry)")
    sizes = bundle_sizes()
    upstream = QuietUpstream()
    servers = []
    try:
        urls = {}
        for variant in VARIANTS:
            progress(f"browser cost: building the app with VITE_TELEMETRY={variant}")
            root = work_dir / f"dist-{variant}"
            build(variant, root)
            server = Nginx(work_dir, upstream.url, upstream.url, static_root=root, name=f"nginx-{variant}").start()
            servers.append(server)
            urls[variant] = server.url + "/"
        served = {v: served_js_gzip(u) for v, u in urls.items()}
        progress(f"browser cost: {ROUNDS} A/B rounds of first visits in headless Chromium")
        results = measure_loads(urls)
    finally:
        for server in servers:
            server.stop()
        upstream.stop()
    return [size_row(sizes), *load_rows(results, served)]
