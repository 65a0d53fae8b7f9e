"""`make bench`: runs every benchmark, prints one table and writes the figures to a JSON file.

Usage: python bench/run.py [--only request_overhead,4] [--out bench/results/latest.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import REPO, Row, progress

# benchmark number -> module with run(work_dir) -> list[Row]
MODULES = {
    "request_overhead": "request_overhead",
    "4": "gateway_throughput",
    "5": "freshness",
    "6": "browser_cost",
}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{shutil.os.cpu_count()} cores ({cpu}), {mem_kib / 2**20:.0f} GiB, {platform.platform()}"


def print_table(rows: list[Row]) -> None:
    header = f"| {'benchmark':<24} | {'metric':<58} | {'value':>10} | {'goal':<18} | met |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        met = {True: "yes", False: "NO", None: ""}[r.met]
        print(f"| {r.benchmark:<24} | {r.metric:<58} | {r.value:>8.2f} {r.unit:<1} | {r.goal:<18} | {met:<3} |")
    details = [r for r in rows if r.detail]
    if details:
        print()
        for r in details:
            print(f"- {r.metric}: {r.detail}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="comma-separated keys of MODULES, e.g. 1-2,5")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "latest.json"))
    args = parser.parse_args()
    keys = [k for k in MODULES if not args.only or k in args.only.split(",")]
    rows: list[Row] = []
    started = time.time()
    for key in keys:
        module = __import__(MODULES[key])
        work_dir = Path(tempfile.mkdtemp(prefix=f"bench-{MODULES[key]}-"))
        progress(f"running benchmark {key} ({MODULES[key]}) in {work_dir}")
        t0 = time.monotonic()
        rows.extend(module.run(work_dir))
        progress(f"benchmark {key} took {time.monotonic() - t0:.0f}s")
        shutil.rmtree(work_dir, ignore_errors=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    print(f"\nmachine: {machine()}; commit {commit}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}\n")
    print_table(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "commit": commit, "started": started,
                               "rows": [r.as_dict() for r in rows]}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
