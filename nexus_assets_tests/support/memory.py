"""Resident-memory readings for tests that measure a peak in a child process.

`resource.getrusage(...).ru_maxrss` is the wrong instrument there: Linux carries the forking parent's
peak over fork and exec, so a child of the test process (which holds models, moto, Dagster) reports
the parent's peak, and a bound checked on it fails spuriously or, as a difference, cannot fail.
VmHWM in /proc/self/status is the high-water mark of this process's own address space, and
clear_refs resets it, so a peak can be taken around just the work measured. Stdlib only: child
scripts import it.
"""

from __future__ import annotations

from pathlib import Path


def status_kib(field: str) -> int:
    """A `kB` field of /proc/self/status, e.g. "VmRSS" or "VmHWM"."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(f"/proc/self/status has no {field} field")


def reset_peak_rss() -> None:
    """Set VmHWM back to the current VmRSS (Linux's clear_refs, value 5), so the next peak is the work's own."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mib() -> int:
    """This process's peak resident memory since it started or since `reset_peak_rss`, in MiB."""
    return status_kib("VmHWM") // 1024
