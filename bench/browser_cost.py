"""What browser telemetry costs in gzip bytes of JS and in time to the `load` event:
`make bench ONLY=browser_cost`."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

from bench.common import REPO, Row, median, percentile, progress

BENCH = "browser cost"
# Sizes: the frontend's own `npm run size`. Load times: the app built with VITE_TELEMETRY=on and
# =off, each served by the real nginx config (devstack.nginx), loaded as a first visit (cache cleared)
# in Debian's headless Chromium (devstack.browser), A/B interleaved, the order alternating per round.
FRONTEND = REPO / "frontend"
ROUNDS = 30
WARMUP_ROUNDS = 2
GOAL_GZIP_KB = 40.0
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
  const sdk = performance.getEntriesByType('resource').find((e) => /\\/assets\\/telemetry-/.test(e.name));
  return {load: nav.loadEventStart, mounted: window.__benchMounted, sdk_arrived: sdk ? sdk.responseEnd : null};
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


@contextmanager
def first_visit(context, url: str, *cdp_setup: tuple[str, dict]):
    """A new page loaded after the browser's HTTP cache and cookies were cleared, once the app has
    rendered: yields (page, its CDP session). `cdp_setup`: CDP commands sent before navigating."""
    page = context.new_page()
    try:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.clearBrowserCache")
        cdp.send("Network.clearBrowserCookies")
        for method, params in cdp_setup:
            cdp.send(method, params)
        page.add_init_script(_MOUNT_OBSERVER_JS)
        page.goto(url, wait_until="load", timeout=30_000)
        page.wait_for_function("() => window.__benchMounted !== undefined", timeout=30_000)
        yield page, cdp
    finally:
        page.close()


def load_once(context, url: str) -> dict:
    """One first visit's timings, and Chromium's main-thread time spent running script (CDP
    Performance metric ScriptDuration) once the app has rendered: the CPU the page's JS cost."""
    with first_visit(context, url, ("Performance.enable", {"timeDomain": "threadTicks"})) as (page, cdp):
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return {**page.evaluate(_TIMINGS_JS), "script_ms": metrics["ScriptDuration"] * 1000}


PROFILE_LOADS = 10


def profile_once(context, url: str) -> dict[str, float]:
    """One first visit under Chromium's sampling profiler (CDP Profiler, 100 us), from navigation
    until the app has rendered: milliseconds of samples per script file (its basename), and per
    V8 pseudo-frame ("(garbage collector)", "(program)") for time in no script."""
    profiler = (("Profiler.enable", {}), ("Profiler.setSamplingInterval", {"interval": 100}), ("Profiler.start", {}))
    with first_visit(context, url, *profiler) as (_, cdp):
        profile = cdp.send("Profiler.stop")["profile"]
    where = {}
    for node in profile["nodes"]:
        frame = node["callFrame"]
        where[node["id"]] = frame["url"].rsplit("/", 1)[-1] or frame["functionName"] or "(anonymous)"
    spent: dict[str, float] = {}
    for node_id, delta_us in zip(profile["samples"], profile["timeDeltas"]):
        name = where[node_id]
        if name != "(idle)":
            spent[name] = spent.get(name, 0.0) + delta_us / 1000
    return spent


def profile_loads(url: str) -> dict[str, float]:
    """Median milliseconds per file over PROFILE_LOADS first visits (files that ran in any)."""
    from devstack import browser

    runs = []
    with browser.playwright() as pw, browser.chromium(pw) as context:
        profile_once(context, url)  # warm-up: the browser's own first-run work
        runs = [profile_once(context, url) for _ in range(PROFILE_LOADS)]
    names = {name for run in runs for name in run}
    return {name: median([run.get(name, 0.0) for run in runs]) for name in names}


def measure_loads(urls: dict[str, str]) -> dict[str, list[dict]]:
    from devstack import browser

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


def size_rows(sizes: dict) -> list[Row]:
    on, off = sizes["telemetry_on"], sizes["telemetry_off"]
    cost_kb = sizes["telemetry_gzip_cost_bytes"] / 1000
    initial_kb = sizes["telemetry_initial_gzip_cost_bytes"] / 1000
    how = "npm run size (scripts/bundle-size.mjs, gzip -9 of each JS asset; KB = 1000 bytes)"
    return [
        Row(BENCH, "telemetry JS gzip cost (on - off)", round(cost_kb, 1), "KB", f"<= {GOAL_GZIP_KB:g}",
            cost_kb <= GOAL_GZIP_KB,
            f"{how}: on {on['gzip_bytes']} B gzip / {on['raw_bytes']} B raw in {on['files']} file(s), off "
            f"{off['gzip_bytes']} B gzip / {off['raw_bytes']} B raw in {off['files']} file(s)."),
        Row(BENCH, "telemetry JS gzip the page loads before it runs (on - off)", round(initial_kb, 1), "KB", "", None,
            f"{how}: the entry chunk and its static imports, on {on['initial_gzip_bytes']} B / off "
            f"{off['initial_gzip_bytes']} B gzip; the rest is imported lazily (main.ts)."),
    ]


def load_rows(results: dict[str, list[dict]], served_gzip: dict[str, int]) -> list[Row]:
    def stats(key: str, variant: str) -> tuple[float, float]:
        values = [r[key] for r in results[variant]]
        return median(values), percentile(values, 99)

    (on_med, on_p99), (off_med, off_p99) = stats("load", "on"), stats("load", "off")
    (mon_med, mon_p99), (moff_med, moff_p99) = stats("mounted", "on"), stats("mounted", "off")
    (son_med, _), (soff_med, _) = stats("script_ms", "on"), stats("script_ms", "off")
    setup = (f"{ROUNDS} rounds A/B interleaved (order alternating, {WARMUP_ROUNDS} warm-up rounds dropped), a new "
             "page with HTTP cache and cookies cleared per load (first visit), Debian Chromium headless via "
             "Playwright (devstack.browser), both builds served by frontend/nginx.conf via devstack.nginx "
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
        sdk_row(results["on"]),
        Row(BENCH, "main-thread script time until rendered, median on - off", round(son_med - soff_med, 1), "ms",
            "", None,
            f"Chromium's ScriptDuration (CDP Performance.getMetrics, thread ticks) when #app has content: median "
            f"{son_med:.1f} ms on / {soff_med:.1f} ms off ({son_med / soff_med:.2f}x). {setup}"),
    ]


def sdk_row(loads: list[dict]) -> Row:
    """Whether `load` waits for the telemetry chunk: a count, which noise on the machine cannot
    move the way it moves the load-time medians."""
    lazy = [r for r in loads if r["sdk_arrived"] is not None]
    early = sum(1 for r in lazy if r["load"] < r["sdk_arrived"])
    share = 100 * early / len(lazy) if lazy else 0.0
    return Row(BENCH, "loads with `load` before the telemetry chunk arrived", round(share, 1), "%", "", None,
               f"{early} of {len(lazy)} first visits (resource timing of assets/telemetry-*.js, responseEnd, against "
               f"loadEventStart); {len(loads) - len(lazy)} loads had no resource entry for such a chunk.")


def profile_row(profiles: dict[str, dict[str, float]]) -> Row:
    """Where the page's main-thread time went until it rendered, per script file, on and off."""
    def top(variant: str) -> str:
        ranked = sorted(profiles[variant].items(), key=lambda item: -item[1])
        return ", ".join(f"{name} {ms:.1f}" for name, ms in ranked[:8] if ms >= 0.1)

    def chunk(variant: str, prefix: str) -> float:
        return sum(ms for name, ms in profiles[variant].items() if name.startswith(prefix))

    telemetry, entry = chunk("on", "telemetry-"), chunk("on", "index-")
    share = 100 * telemetry / (telemetry + entry)
    return Row(BENCH, "profile: telemetry chunk's share of JS samples (on)", round(share, 1), "%", "",
               None,
               f"Chromium's sampling profiler (CDP Profiler, 100 us), {PROFILE_LOADS} first visits per variant, "
               f"median ms of samples per file until #app has content (the profiler's own overhead inflates "
               f"every figure alike, so compare shares, not these ms with ScriptDuration); on: {top('on')}; off: "
               f"{top('off')}. Telemetry chunk {telemetry:.1f} ms, entry chunk on/off {entry:.1f} / "
               f"{chunk('off', 'index-'):.1f} ms.")


def served_js_gzip(url: str, root: Path) -> int:
    """Bytes of JS the browser downloads from nginx (its own gzip level), every chunk of the build."""
    import requests

    total = 0
    for asset in sorted((root / "assets").glob("*.js")):
        resp = requests.get(f"{url.rstrip('/')}/assets/{asset.name}", headers={"Accept-Encoding": "gzip"},
                            timeout=10, stream=True)
        total += len(resp.raw.read(decode_content=False))
    return total


def run(work_dir: Path) -> list[Row]:
    from devstack.nginx import Nginx, ensure_frontend_built

    work_dir = Path(work_dir) / "browser-cost"
    work_dir.mkdir(parents=True, exist_ok=True)
    ensure_frontend_built()  # node_modules (npm ci) for the builds below
    progress("browser cost: npm run size (builds the app with and without telemetry)")
    sizes = bundle_sizes()
    upstream = QuietUpstream()
    servers = []
    try:
        urls, roots = {}, {}
        for variant in VARIANTS:
            progress(f"browser cost: building the app with VITE_TELEMETRY={variant}")
            root = roots[variant] = work_dir / f"dist-{variant}"
            build(variant, root)
            server = Nginx(work_dir, upstream.url, upstream.url, static_root=root, name=f"nginx-{variant}").start()
            servers.append(server)
            urls[variant] = server.url + "/"
        served = {v: served_js_gzip(u, roots[v]) for v, u in urls.items()}
        progress(f"browser cost: {ROUNDS} A/B rounds of first visits in headless Chromium")
        results = measure_loads(urls)
        progress(f"browser cost: {PROFILE_LOADS} profiled first visits per variant")
        profiles = {v: profile_loads(u) for v, u in urls.items()}
    finally:
        for server in servers:
            server.stop()
        upstream.stop()
    return [*size_rows(sizes), *load_rows(results, served), profile_row(profiles)]
