"""What /proc says about a live process (Linux): resident memory, CPU time, children."""

from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, key: str) -> int:
    """A KiB field of /proc/<pid>/status: VmRSS (resident now), VmHWM (the most ever resident), ..."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise ValueError(f"no {key} for pid {pid} (a kernel thread or a zombie)")


def rss_kb(pid: int) -> int:
    """VmRSS: anonymous + file-backed + shared memory resident now, in KiB."""
    return status_kib(pid, "VmRSS")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may hold spaces or parentheses: split after the last ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def voluntary_switches(pid: int) -> int:
    """Times the process's live threads gave up the CPU to wait (a lock, the GIL, I/O), summed."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches:"))
        except (OSError, StopIteration):
            continue  # the thread ended while we looked
    return total


def children(pid: int) -> list[int]:
    """Direct children of pid, e.g. the workers of a gunicorn master."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        if ppid == pid:
            found.append(int(entry))
    return sorted(found)
