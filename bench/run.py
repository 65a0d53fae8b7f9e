"""`make bench` (`python -m bench.run [--only NAME,...]`): runs the benchmarks, prints one table and
writes the figures to bench/results/latest.json; `python -m bench.report` renders them into bench/README.md."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import REPO, Row, progress

# Each a module of bench/ with run(work_dir) -> list[Row], named for what it measures.
BENCHMARKS = ("request_overhead", "pipeline_throughput", "agent_cost", "freshness", "browser_cost")
RESULTS = REPO / "bench" / "results" / "latest.json"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{shutil.os.cpu_count()} cores ({cpu}), {mem_kib / 2**20:.0f} GiB, {platform.platform()}"


def print_table(rows: list[Row]) -> None:
    print("| benchmark | metric | value | goal | met |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.benchmark} | {r.metric} | {r.value:.2f} {r.unit} | {r.goal} | {({True: 'yes', False: 'NO'}).get(r.met, '')} |")
    for r in rows:
        if r.detail:
            print(f"- {r.metric}: {r.detail}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help=f"comma-separated names of {', '.join(BENCHMARKS)}")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"no benchmark {', '.join(sorted(unknown))}; there are {', '.join(BENCHMARKS)}")
    out = Path(args.out)
    # A partial run replaces only its own benchmarks' rows in the results file.
    kept = json.loads(out.read_text())["rows"] if out.exists() and args.only else []
    rows: list[Row] = []
    results = []
    for name in names:
        work_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        progress(f"running {name} in {work_dir}")
        started = time.monotonic()
        ran = importlib.import_module(f"bench.{name}").run(work_dir)
        progress(f"{name} took {time.monotonic() - started:.0f}s")
        shutil.rmtree(work_dir, ignore_errors=True)
        rows.extend(ran)
        results.extend(dict(r.as_dict(), module=name) for r in ran)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    print(f"\nmachine: {machine()}; commit {commit}\n")
    print_table(rows)
    others = [r for r in kept if r["module"] not in names]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "commit": commit, "rows": others + results}, indent=1) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
