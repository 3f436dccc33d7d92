"""One writer at a time per partition and resource on a machine (an advisory file lock).

Two runs of the same partition can start together locally: `nexus build` twice, a UI launch during a
sensor's run. Each step's outputs are written atomically, but a Chroma build, its promotion and a
package publication read the previous state and then write the next one, so they run under the
partition's lock for that resource and the second run sees what the first one finished. The lock is
the `filelock` library's `FileLock` (`fcntl.flock` on POSIX) on a file beside the data: released by the
kernel when its holder dies, so a SIGKILLed run never leaves a stale lock. The lock file is kept on
release (`preserve_lock_file`), which also rules out filelock's soft-lock fallback on filesystems
without flock: a marker file would outlive a killed holder. Across machines (aws mode) the conditional
writes of the catalog and of the package objects do this job instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

DEFAULT_TIMEOUT_S = 1800.0  # a publication or Chroma build of a very large partition takes minutes, not hours
POLL_INTERVAL_S = 0.2


class LockTimeoutError(TimeoutError):
    """Another run held the partition's lock for longer than the timeout."""


@contextmanager
def file_lock(path: Path, what: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed); `what` names it in the timeout error.

    Not re-entrant across calls (`is_singleton=False`, a fresh lock object each time): a second
    `file_lock` on the same path waits even in the same process, as two runs would.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, thread_local=False, preserve_lock_file=True)
    try:
        lock.acquire(timeout=timeout_s, poll_interval=POLL_INTERVAL_S)
    except Timeout:
        raise LockTimeoutError(
            f"{what}: another run has held {path} for over {timeout_s:.0f} s; "
            "if no run of this partition is in progress, the holder is stuck: "
            "stop it (the lock is released when its process ends)"
        ) from None
    try:
        yield
    finally:
        lock.release()
