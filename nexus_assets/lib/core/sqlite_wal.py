"""Open a SQLite file that several processes share (WAL journal), without racing on its creation.

Switching a database to WAL takes an exclusive lock, and SQLite answers "database is locked" at once
(the busy handler is not consulted) when another process holds the file at that moment: two runs
opening a new cache together hit exactly that. WAL is a property of the file, so the switch is only
tried while the file is not in WAL yet, and retried with a short backoff until the deadline.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def connect_wal(path: Path, busy_ms: int, **connect_kwargs: object) -> sqlite3.Connection:
    """A connection to `path` in WAL mode with a busy timeout of `busy_ms` for every later statement."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=busy_ms / 1000, **connect_kwargs)  # type: ignore[arg-type]
    db.execute(f"PRAGMA busy_timeout={busy_ms}")
    deadline = time.monotonic() + busy_ms / 1000
    delay = 0.01
    while True:
        try:
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return db
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                db.close()
                raise
            if time.monotonic() >= deadline:
                db.close()
                raise sqlite3.OperationalError(
                    f"{path}: still locked by another process after {busy_ms} ms while switching to WAL: {exc}"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
