"""What every benchmark returns, and the statistics they share."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
# A batch or export interval no benchmark loop outlasts: every export happens in the final flush.
HOUR_MS = "3600000"


@dataclass
class Row:
    benchmark: str  # e.g. "1 instrumentation cost"
    metric: str  # e.g. "GET /api/messages p50 ratio (on/off)"
    value: float
    unit: str  # "x", "ms", "spans/s", "MiB", "KB", "s"
    goal: str  # e.g. "<= 1.25"; "" when informational
    met: bool | None  # None when there is no goal
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


BOARD_MESSAGES = 20  # what the benchmarks' GET asks for (limit=20): a full page, as a user sees it


def seed_board(have: int, post: Callable[[dict], object]) -> None:
    """Post messages (one JSON body each through `post`) until the board holds BOARD_MESSAGES: an
    empty board would measure little but overhead. `have` is how many it holds already."""
    for i in range(have, BOARD_MESSAGES):
        post({"body": f"seeded message {i}: a sentence of ordinary length"})


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def deployed_export_delays() -> dict[str, str]:
    """The batch processors' schedule and the metric export interval the backend runs with in the
    cluster (k8s/backend), so the benchmarks measure the shipped setting, not the harness's short
    test delays."""
    import yaml

    deployment = yaml.safe_load((REPO / "k8s" / "backend" / "deployment.yaml").read_text())
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    wanted = ("OTEL_BSP_SCHEDULE_DELAY", "OTEL_BLRP_SCHEDULE_DELAY")
    delays = {e["name"]: e["value"] for e in env if e["name"] in wanted}
    kustomization = yaml.safe_load((REPO / "k8s" / "backend" / "kustomization.yaml").read_text())
    for generator in kustomization.get("configMapGenerator", []):
        for literal in generator.get("literals", []):
            name, _, value = literal.partition("=")
            if name == "OTEL_METRIC_EXPORT_INTERVAL":
                delays[name] = value
    assert set(delays) == {*wanted, "OTEL_METRIC_EXPORT_INTERVAL"}, f"k8s/backend no longer sets {delays}"
    return delays


def callgrind_per_item(argv: Callable[[int], list[str]], counts: tuple[int, int], env: dict[str, str], out: Path,
                       cwd: Path | None = None) -> float:
    """Instructions for one more item (a request) of the Python script `argv(count)` runs, every
    thread: two runs side by side (a count does not depend on the machine's load), FEW and MANY
    items, the difference over MANY - FEW, so that start-up and the final flush cancel out."""
    files = [out.with_name(f"{out.name}.{n}") for n in counts]
    env = dict(env, PYTHONHASHSEED="0")  # string hashing's random seed moves a count by tens of k
    runs = [subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={file}", sys.executable, *argv(n)],
                             env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for n, file in zip(counts, files)]
    for run in runs:
        _, err = run.communicate(timeout=3600)
        assert run.returncode == 0, err.decode(errors="replace")[-3000:]
    few, many = (int(re.search(r"^(?:summary|totals): (\d+)", f.read_text(), re.M).group(1)) for f in files)
    return (many - few) / (counts[1] - counts[0])
