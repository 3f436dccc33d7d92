"""Named points where the crash tests stop a build on purpose, to prove a SIGKILL there loses nothing.

A process reaching the point named by NEXUS_FAULT_POINT writes its pid to NEXUS_FAULT_MARKER (when
set) and then hangs, so the test can kill it at exactly that point (during embedding, between
staging and committing a package, ...). With the variable unset, which is always so in production,
`fault_point` is a dictionary lookup and returns at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

FAULT_POINT_ENV = "NEXUS_FAULT_POINT"
FAULT_MARKER_ENV = "NEXUS_FAULT_MARKER"
HANG_SECONDS = 600  # far longer than any test waits before its SIGKILL


def fault_point(name: str) -> None:
    """Hang here (for a test to kill the process) when NEXUS_FAULT_POINT is `name`; else do nothing."""
    if os.environ.get(FAULT_POINT_ENV) != name:
        return
    marker = os.environ.get(FAULT_MARKER_ENV)
    if marker:
        tmp = Path(f"{marker}.{os.getpid()}.tmp")
        tmp.write_text(f"{os.getpid()} {name}\n")
        os.replace(tmp, marker)
    time.sleep(HANG_SECONDS)
    raise RuntimeError(f"fault point {name!r} was not killed within {HANG_SECONDS} s")
