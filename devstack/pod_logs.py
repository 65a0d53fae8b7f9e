"""Container log files as the kubelet writes them under /var/log/pods, for the node agent to tail, and
read back as the lines the container wrote."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

# containerd splits a line the container wrote into CRI records of at most 16 KiB, all but the last
# tagged P (partial); the agent's container operator joins them again.
CRI_MAX_RECORD = 16 * 1024


def now() -> str:
    """The runtime's RFC 3339 timestamp with nanoseconds, as CRI writes it."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def cri(stream: str, tag: str, text: str) -> str:
    return f"{now()} {stream} {tag} {text}\n"


def cri_line(text: str, stream: str = "stdout") -> str:
    """One line of the container's output as containerd logs it: P records of 16 KiB, then F."""
    data = text.encode()
    chunks = [data[i:i + CRI_MAX_RECORD] for i in range(0, len(data), CRI_MAX_RECORD)] or [b""]
    stamp = now()
    records = [f"{stamp} {stream} P {c.decode(errors='surrogateescape')}\n" for c in chunks[:-1]]
    records.append(f"{stamp} {stream} F {chunks[-1].decode(errors='surrogateescape')}\n")
    return "".join(records)


def container_log_dir(root: Path, pod: dict, container: str) -> Path:
    """<root>/<namespace>_<pod>_<uid>/<container>, as the kubelet lays out /var/log/pods."""
    meta = pod["metadata"]
    return root / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / container


def _unix_ns(stamp: str) -> int:
    """containerd's RFC 3339 time (Go's RFC3339Nano: trailing zeros of the fraction dropped) in ns;
    datetime keeps only microseconds."""
    whole, _, rest = stamp.partition(".")
    fraction = rest.rstrip("Z") if rest else ""
    seconds = datetime.strptime(whole.rstrip("Z"), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return int(seconds) * 10**9 + int(fraction.ljust(9, "0")[:9] or 0)


def lines_written(directory: Path) -> Counter:
    """(time in ns, text) of each line a container wrote, read back from the CRI files in its
    directory (rotated ones too, compressed ones not), partial (P) records joined per stream."""
    written: Counter = Counter()
    for path in sorted(directory.glob("*.log*")):
        if path.suffix == ".gz":
            continue
        pending: dict[str, tuple[str, str]] = {}  # stream -> (first record's time, text so far)
        for record in path.read_text(errors="replace").splitlines():
            stamp, stream, tag, text = (record.split(" ", 3) + [""])[:4]
            first, joined = pending.pop(stream, (stamp, ""))
            if tag == "F":
                written[(_unix_ns(first), joined + text)] += 1
            else:
                pending[stream] = (first, joined + text)
    return written


class PodLogs:
    """/var/log/pods/<namespace>_<pod>_<uid>/<container>/0.log, as the kubelet lays it out."""

    def __init__(self, root: Path, pod: dict, container: str):
        self.dir = container_log_dir(root, pod, container)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.file = self.dir / "0.log"

    def write(self, *lines: str) -> None:
        with open(self.file, "a", errors="surrogateescape") as f:
            f.writelines(lines)

    def write_bytes(self, data: bytes) -> None:
        with open(self.file, "ab") as f:
            f.write(data)

    def rotate(self) -> None:
        # The kubelet renames the live file to 0.log.<timestamp> and starts a new 0.log.
        self.file.rename(self.dir / f"0.log.{time.strftime('%Y%m%d-%H%M%S')}")
