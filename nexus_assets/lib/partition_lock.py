"""One writer at a time per partition and resource on a machine (an advisory file lock).

Two runs of the same partition can start together locally: `nexus build` twice, a UI launch during a
sensor's run. Each step's outputs are written atomically, but a Chroma build, its promotion and a
package publication read the previous state and then write the next one, so they run under the
partition's lock for that resource and the second run sees what the first one finished. The lock is
`fcntl.flock` on a file beside the data: released by the kernel when its holder dies (a SIGKILLed
run never leaves a stale lock). Across machines (aws mode) the conditional writes of the catalog and
of the package objects do this job instead.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_TIMEOUT_S = 1800.0  # a publication or Chroma build of a very large partition takes minutes, not hours


class LockTimeoutError(TimeoutError):
    """Another run held the partition's lock for longer than the timeout."""


@contextmanager
def file_lock(path: Path, what: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed); `what` names it in the timeout error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(f"{what}: another run has held {path} for over {timeout_s:.0f} s; "
                                           "if no run of this partition is in progress, the holder is stuck: "
                                           "stop it (the lock is released when its process ends)") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
