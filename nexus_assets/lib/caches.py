"""Content-addressed caches beside the processed data, so a rebuild only redoes what changed.

Two stores live under `<data>/cache/` (see `DataLayout.cache_dir`):

- `BlobCache`: one file per key (`<namespace>/<key[:2]>/<key>`), written to a temporary name in the
  same directory and renamed into place. Used for PDF extraction results keyed by the PDF's sha256.
  Two runs writing the same key write the same bytes, and a reader sees the whole file or none.
- `VectorCache`: an SQLite database in WAL mode holding float32 vectors keyed by
  (namespace, content sha256), where the namespace names the model, its dims, the precision and
  the engine. SQLite serialises concurrent writers across processes; WAL lets readers go on while
  one writes. A hit returns exactly the bytes that were stored.

Both survive restarts (they are plain files) and record when an entry was last used, so `prune`
can drop what no partition needs any more.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nexus_assets.lib.layout import PROCESSED_PREFIX, DataLayout

BLOBS_DIR = "blobs"
VECTORS_DB = "vectors.sqlite3"
SQLITE_BUSY_MS = 60_000  # a concurrent run may hold the write lock while it stores a large batch
SQLITE_CHUNK = 500  # keys per `IN (...)` query, below SQLite's variable limit


def _atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@dataclass(frozen=True)
class BlobCache:
    """Immutable blobs under `root/<namespace>/<key[:2]>/<key>`; a hit refreshes the file's mtime."""

    root: Path
    namespace: str

    def path(self, key: str) -> Path:
        return self.root / BLOBS_DIR / self.namespace / key[:2] / key

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last use, for prune
        return data

    def put(self, key: str, data: bytes) -> None:
        _atomic_write(self.path(key), data)

    def discard(self, key: str) -> None:
        """Forget an entry that could not be decoded (e.g. written by an incompatible version)."""
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()


class VectorCache:
    """float32 vectors keyed by (namespace, key) in one SQLite file shared by concurrent runs."""

    def __init__(self, root: Path) -> None:
        self.path = root / VECTORS_DB
        root.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=SQLITE_BUSY_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (namespace TEXT NOT NULL, key TEXT NOT NULL, dims INTEGER NOT NULL,"
            " vector BLOB NOT NULL, last_used REAL NOT NULL, PRIMARY KEY (namespace, key)) WITHOUT ROWID"
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> VectorCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def get_many(self, namespace: str, keys: Iterable[str], dims: int) -> dict[str, np.ndarray]:
        """Stored vectors of the keys present (read-only arrays of the exact stored bytes)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, np.ndarray] = {}
        for lo in range(0, len(wanted), SQLITE_CHUNK):
            batch = wanted[lo : lo + SQLITE_CHUNK]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT key, dims, vector FROM vectors WHERE namespace = ? AND key IN ({marks})", [namespace, *batch]
            ).fetchall()
            for key, stored_dims, blob in rows:
                if stored_dims == dims and len(blob) == dims * 4:
                    found[key] = np.frombuffer(blob, dtype="<f4")
        if found:
            now = time.time()
            with self._write() as db:
                for lo in range(0, len(found), SQLITE_CHUNK):
                    batch = list(found)[lo : lo + SQLITE_CHUNK]
                    db.execute(f"UPDATE vectors SET last_used = ? WHERE namespace = ? AND key IN "
                               f"({','.join('?' * len(batch))})", [now, namespace, *batch])
        return found

    def put_many(self, namespace: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors; an existing entry is kept (same namespace and text give the same vector)."""
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys but {len(vectors)} vectors")
        data = np.ascontiguousarray(vectors, dtype="<f4")
        now = time.time()
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO vectors (namespace, key, dims, vector, last_used) VALUES (?, ?, ?, ?, ?)",
                ((namespace, key, data.shape[1], data[i].tobytes(), now) for i, key in enumerate(keys)),
            )

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def keys(self) -> list[tuple[str, str, float]]:
        """(namespace, key, last_used) of every entry."""
        return self._db.execute("SELECT namespace, key, last_used FROM vectors").fetchall()

    def delete(self, entries: Iterable[tuple[str, str]]) -> int:
        removed = 0
        with self._write() as db:
            for namespace, key in entries:
                removed += db.execute("DELETE FROM vectors WHERE namespace = ? AND key = ?", (namespace, key)).rowcount
        return removed

    def vacuum(self) -> None:
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("VACUUM")


@dataclass(frozen=True)
class PruneResult:
    blobs_removed: int
    blob_bytes_removed: int
    blobs_kept: int
    vectors_removed: int
    vectors_kept: int
    bytes_before: int
    bytes_after: int

    def summary(self) -> str:
        return (f"removed {self.blobs_removed} extraction entries ({self.blob_bytes_removed / 1e6:.1f} MB) and "
                f"{self.vectors_removed} vectors; kept {self.blobs_kept} and {self.vectors_kept}; cache size "
                f"{self.bytes_before / 1e6:.1f} MB -> {self.bytes_after / 1e6:.1f} MB")


def cache_size(root: Path) -> int:
    if not root.is_dir():
        return 0
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def prune(
    root: Path,
    referenced_blobs: set[str],
    referenced_vectors: set[str],
    older_than_s: float,
    everything: bool = False,
    now: float | None = None,
) -> PruneResult:
    """Remove what no build needs: entries unused for `older_than_s` seconds that nothing references.

    `referenced_*` are the keys the processed tables point at (PDF sha256s, chunk content hashes).
    They are kept in every namespace still in use (one with an entry used within the period, and
    always the most recently used one); a namespace nobody used for the whole period (an old
    extractor version, another precision) goes entirely. The period also protects a build running
    concurrently, whose keys are in no table yet. `everything` empties the cache.
    """
    now = time.time() if now is None else now
    before = cache_size(root)
    cutoff = now - older_than_s
    blobs_removed = blob_bytes = blobs_kept = 0
    blob_root = root / BLOBS_DIR
    namespaces = sorted(p for p in blob_root.iterdir() if p.is_dir()) if blob_root.is_dir() else []
    files_by_ns = {ns: [(p, p.stat()) for p in sorted(ns.rglob("*")) if p.is_file()] for ns in namespaces}
    last_use = {ns: max((stat.st_mtime for _, stat in files), default=0.0) for ns, files in files_by_ns.items()}
    live_blobs = _live(last_use, cutoff)
    for namespace, files in files_by_ns.items():
        live = namespace in live_blobs
        for path, stat in files:
            temporary = path.name.startswith(".") and path.name.endswith(".tmp")
            needed = live and not temporary and path.name in referenced_blobs
            if everything or (stat.st_mtime < cutoff and not needed):
                path.unlink(missing_ok=True)
                blobs_removed += 1
                blob_bytes += stat.st_size
            else:
                blobs_kept += 1
        for directory in sorted((p for p in namespace.rglob("*") if p.is_dir()), reverse=True) + [namespace]:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only empty ones go
    vectors_removed = vectors_kept = 0
    if (root / VECTORS_DB).is_file():
        with VectorCache(root) as cache:
            entries = cache.keys()
            last_vector_use: dict[str, float] = {}
            for ns, _, used in entries:
                last_vector_use[ns] = max(used, last_vector_use.get(ns, 0.0))
            live_namespaces = _live(last_vector_use, cutoff)
            doomed = [(ns, key) for ns, key, used in entries
                      if everything or (used < cutoff and not (ns in live_namespaces and key in referenced_vectors))]
            vectors_removed = cache.delete(doomed)
            vectors_kept = len(entries) - vectors_removed
            if vectors_removed:
                cache.vacuum()
    return PruneResult(blobs_removed, blob_bytes, blobs_kept, vectors_removed, vectors_kept, before,
                       cache_size(root))


def _live(last_use: dict[Any, float], cutoff: float) -> set[Any]:
    """Namespaces used since `cutoff`, and the most recently used one whatever its age."""
    live = {ns for ns, used in last_use.items() if used >= cutoff}
    if last_use:
        live.add(max(last_use, key=last_use.__getitem__))
    return live


def referenced_keys(processed_tables: Iterable[Path]) -> tuple[set[str], set[str]]:
    """(PDF sha256s, chunk content hashes) named by the given `raw_pdfs` and `text_chunks` parquet files."""
    import pyarrow.parquet as pq

    blobs: set[str] = set()
    vectors: set[str] = set()
    for path in processed_tables:
        column, into = {"raw_pdfs": ("sha256", blobs), "text_chunks": ("content_sha256", vectors)}[path.stem]
        try:
            into.update(pq.read_table(path, columns=[column]).column(column).to_pylist())
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read column {column!r} to see which cache entries are in use: {exc}") \
                from exc
    return blobs, vectors


def prune_data_cache(layout: DataLayout, older_than_days: float = 7.0, everything: bool = False) -> PruneResult:
    """`nexus cache prune`: prune `layout.cache_dir`, keeping what the local partitions' tables reference."""
    processed = layout.root / PROCESSED_PREFIX
    tables = sorted(processed.glob("*/*/raw_pdfs.parquet")) + sorted(processed.glob("*/*/text_chunks.parquet"))
    blobs, vectors = referenced_keys(tables)
    return prune(layout.cache_dir, blobs, vectors, older_than_days * 86400.0, everything=everything)
