"""Name a process so that another one can later tell whether it is still alive.

A pid alone is not enough (pids are reused), so the identity is host, pid and the process's start
time from /proc (clock ticks since boot). `is_gone` is true only when that exact process is known
to be gone on this host; a process on another host, or where /proc is unavailable, is never
declared dead from here.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def _start_ticks(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) comes after the command name, which is in parentheses and may hold spaces.
    return stat.rsplit(")", 1)[1].split()[19]


def current_identity() -> str:
    """`host:pid:start` of this process."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '?'}"


def is_gone(identity: str) -> bool:
    """True when the process `identity` names ran on this host and no longer runs."""
    try:
        host, pid_text, start = identity.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname() or start == "?":
        return False
    return _start_ticks(pid) != start
