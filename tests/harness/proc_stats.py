"""Resident memory of live processes and the children of a process, read from /proc (Linux)."""

from __future__ import annotations

import os


def rss_kb(pid: int) -> int:
    """VmRSS: anonymous + file-backed + shared memory resident now, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ValueError(f"no VmRSS for pid {pid} (a kernel thread or a zombie)")


def children(pid: int) -> list[int]:
    """Direct children of pid, e.g. the workers of a gunicorn master."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # The command name (field 2) may hold spaces or parentheses: split after the last ')'.
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        if ppid == pid:
            found.append(int(entry))
    return sorted(found)
