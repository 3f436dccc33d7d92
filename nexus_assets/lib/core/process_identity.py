"""Name a process so that another one can later tell whether it is still alive.

A pid alone is not enough (pids are reused), so the identity is host, pid and the process's creation
time as psutil reports it (seconds since the epoch, two decimals): the same on every reading on Linux,
macOS and Windows, with no /proc needed. `is_gone` is true only when that exact process is known to be
gone on this host; a process on another host is never declared dead from here.
"""

from __future__ import annotations

import os
import socket

import psutil


def _created(pid: int) -> str | None:
    """The creation time of `pid` as an identity field, or None when no such process runs."""
    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except psutil.NoSuchProcess:
        return None


def current_identity() -> str:
    """`host:pid:created` of this process."""
    pid = os.getpid()
    try:
        created = _created(pid) or "?"
    except psutil.Error:  # a sandbox that hides even our own process: identity without a start time
        created = "?"
    return f"{socket.gethostname()}:{pid}:{created}"


def is_gone(identity: str) -> bool:
    """True when the process `identity` names ran on this host and no longer runs."""
    try:
        host, pid_text, start = identity.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname() or start == "?":
        return False
    if "." not in start:
        # Written before psutil (clock ticks from /proc): comparable only by whether the pid still exists.
        return not psutil.pid_exists(pid)
    try:
        return _created(pid) != start
    except psutil.Error:  # access denied: alive or not, it is not ours to declare dead
        return False
