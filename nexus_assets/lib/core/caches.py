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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from nexus_assets.lib.aws.s3_store import S3ObjectStore
from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.layout import PROCESSED_PREFIX, DataLayout
from nexus_assets.lib.core.sqlite_wal import connect_wal

BLOBS_DIR = "blobs"
SPANS_DIR = "spans"  # chunk spans (lib/index/chunking.SpanCache): derived data, pruned by age alone
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
        self._db = connect_wal(self.path, SQLITE_BUSY_MS, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (namespace TEXT NOT NULL, key TEXT NOT NULL, dims INTEGER NOT NULL,"
            " vector BLOB NOT NULL, last_used REAL NOT NULL, PRIMARY KEY (namespace, key)) WITHOUT ROWID"
        )
        # Remote vector packs (aws mode) already loaded into this file, so each is downloaded once.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS imported_packs (namespace TEXT NOT NULL, pack TEXT NOT NULL,"
            " PRIMARY KEY (namespace, pack)) WITHOUT ROWID"
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
                    db.execute(
                        f"UPDATE vectors SET last_used = ? WHERE namespace = ? AND key IN "
                        f"({','.join('?' * len(batch))})",
                        [now, namespace, *batch],
                    )
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

    def imported_packs(self, namespace: str) -> set[str]:
        rows = self._db.execute("SELECT pack FROM imported_packs WHERE namespace = ?", (namespace,)).fetchall()
        return {pack for (pack,) in rows}

    def mark_imported(self, namespace: str, packs: Iterable[str]) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO imported_packs (namespace, pack) VALUES (?, ?)",
                ((namespace, pack) for pack in packs),
            )

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
    spans_removed: int = 0

    def summary(self) -> str:
        spans = f" (and {self.spans_removed} chunk-span entries)" if self.spans_removed else ""
        return (
            f"removed {self.blobs_removed} extraction entries ({self.blob_bytes_removed / 1e6:.1f} MB) and "
            f"{self.vectors_removed} vectors{spans}; kept {self.blobs_kept} and {self.vectors_kept}; cache size "
            f"{self.bytes_before / 1e6:.1f} MB -> {self.bytes_after / 1e6:.1f} MB"
        )


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
            doomed = [
                (ns, key)
                for ns, key, used in entries
                if everything or (used < cutoff and not (ns in live_namespaces and key in referenced_vectors))
            ]
            vectors_removed = cache.delete(doomed)
            vectors_kept = len(entries) - vectors_removed
            if vectors_removed:
                cache.vacuum()
    return PruneResult(blobs_removed, blob_bytes, blobs_kept, vectors_removed, vectors_kept, before, cache_size(root))


def _live(last_use: dict[Any, float], cutoff: float) -> set[Any]:
    """Namespaces used since `cutoff`, and the most recently used one whatever its age."""
    live = {ns for ns, used in last_use.items() if used >= cutoff}
    if last_use:
        live.add(max(last_use, key=last_use.__getitem__))
    return live


def referenced_keys(processed_tables: Iterable[Path | tuple[str, bytes]]) -> tuple[set[str], set[str]]:
    """(PDF sha256s, chunk content hashes) named by `raw_pdfs` and `text_chunks` parquet tables.

    A table is a local path or, for one read from the bucket, `(its uri, its bytes)`.
    """
    from nexus_assets.lib.core.parquet_io import read_arrow

    blobs: set[str] = set()
    vectors: set[str] = set()
    for table in processed_tables:
        where, source = (table[0], table[1]) if isinstance(table, tuple) else (str(table), table)
        stem = where.rsplit("/", 1)[-1].removesuffix(".parquet")
        column, into = {"raw_pdfs": ("sha256", blobs), "text_chunks": ("content_sha256", vectors)}[stem]
        try:
            into.update(read_arrow(source, columns=[column]).column(column).to_pylist())
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(
                f"{where}: cannot read column {column!r} to see which cache entries are in use: {exc}"
            ) from exc
    return blobs, vectors


def prune_data_cache(layout: DataLayout, older_than_days: float = 7.0, everything: bool = False) -> PruneResult:
    """`nexus cache prune`: prune `layout.cache_dir`, keeping what the local partitions' tables reference."""
    processed = layout.root / PROCESSED_PREFIX
    tables = sorted(processed.glob("*/*/raw_pdfs.parquet")) + sorted(processed.glob("*/*/text_chunks.parquet"))
    blobs, vectors = referenced_keys(tables)
    before = cache_size(layout.cache_dir)
    result = prune(layout.cache_dir, blobs, vectors, older_than_days * 86400.0, everything=everything)
    # Spans are recomputed in a second from the extraction, so no table pins them: age alone decides.
    spans = prune(layout.cache_dir / SPANS_DIR, set(), set(), older_than_days * 86400.0, everything=everything)
    return replace(
        result, bytes_before=before, bytes_after=cache_size(layout.cache_dir), spans_removed=spans.blobs_removed
    )


# --- aws mode: the same caches shared through the bucket ---------------------------------------
#
# A task on another machine (ECS, Kubernetes) starts with an empty disk, so in aws mode both caches
# are mirrored under `s3://<bucket>/processed/_cache/`. Every object there is immutable and named by
# its content, so runs sharing the bucket never overwrite each other's entries:
#
# - extraction blobs: `blobs/<namespace>/<key[:2]>/<key>`, the same bytes as the local file;
# - vectors: packs `vectors/<namespace digest>/<pack sha256>.parquet` (key, vector), one per build
#   that embedded something. A run reads the packs it has not imported yet into its local SQLite
#   file, then answers from there. `prune_s3_cache` compacts the packs and drops what no table needs.

S3_CACHE_PREFIX = f"{PROCESSED_PREFIX}/_cache"
VECTOR_PACKS_DIR = "vectors"


def _is_missing(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code")
    return code in ("404", "NoSuchKey", "NotFound")


def namespace_digest(namespace: str) -> str:
    """A short, key-safe name for a vector namespace (which holds `|` and `=`)."""
    return hashing.sha256_text(namespace, 24)


@dataclass(frozen=True)
class MirroredBlobCache:
    """A `BlobCache` whose misses are looked up in the bucket and whose puts are shared through it."""

    local: BlobCache
    store: S3ObjectStore
    prefix: str = S3_CACHE_PREFIX

    def remote_key(self, key: str) -> str:
        return f"{self.prefix}/{BLOBS_DIR}/{self.local.namespace}/{key[:2]}/{key}"

    def get(self, key: str) -> bytes | None:
        data = self.local.get(key)
        if data is not None:
            return data
        try:
            data = self.store.get_bytes(self.remote_key(key))
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        self.local.put(key, data)
        return data

    def put(self, key: str, data: bytes) -> None:
        self.local.put(key, data)
        self.store.put_bytes(self.remote_key(key), data)  # same key, same bytes: a racing put is harmless

    def discard(self, key: str) -> None:
        self.local.discard(key)
        self.store.delete(self.remote_key(key))


def _pack_bytes(namespace: str, keys: Sequence[str], vectors: np.ndarray) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = np.ascontiguousarray(vectors, dtype="<f4")
    table = pa.table(
        {"key": pa.array(list(keys), pa.string()), "vector": pa.array([row.tobytes() for row in data], pa.binary())}
    )
    table = table.replace_schema_metadata({"namespace": namespace, "dims": str(data.shape[1])})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _read_pack(data: bytes, namespace: str, where: str) -> tuple[list[str], np.ndarray]:
    from nexus_assets.lib.core.parquet_io import read_arrow

    table = read_arrow(data)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if meta.get("namespace") != namespace:
        raise ValueError(f"{where}: vector pack of namespace {meta.get('namespace')!r}, expected {namespace!r}")
    dims = int(meta["dims"])
    blobs = table.column("vector").to_pylist()
    if any(len(b) != dims * 4 for b in blobs):
        raise ValueError(f"{where}: vector pack holds vectors that are not {dims} float32 values")
    vectors = (
        np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dims)
        if blobs
        else np.empty((0, dims), dtype="<f4")
    )
    return table.column("key").to_pylist(), vectors


class MirroredVectorCache:
    """A `VectorCache` that imports the bucket's vector packs on a miss and shares new vectors as a pack."""

    def __init__(self, local: VectorCache, store: S3ObjectStore, prefix: str = S3_CACHE_PREFIX) -> None:
        self.local = local
        self.store = store
        self.prefix = prefix
        self.packs_imported = 0

    def __enter__(self) -> MirroredVectorCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.local.close()

    def pack_dir(self, namespace: str) -> str:
        return f"{self.prefix}/{VECTOR_PACKS_DIR}/{namespace_digest(namespace)}/"

    def _import_new_packs(self, namespace: str) -> None:
        done = self.local.imported_packs(namespace)
        new = [
            obj["Key"]
            for obj in self.store.list_keys(self.pack_dir(namespace))
            if obj["Key"].endswith(".parquet") and obj["Key"] not in done
        ]
        for key in new:
            keys, vectors = _read_pack(self.store.get_bytes(key), namespace, self.store.uri(key))
            if keys:
                self.local.put_many(namespace, keys, vectors)
            self.local.mark_imported(namespace, [key])
            self.packs_imported += 1

    def get_many(self, namespace: str, keys: Iterable[str], dims: int) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(keys))
        found = self.local.get_many(namespace, wanted, dims)
        if len(found) < len(wanted):
            self._import_new_packs(namespace)
            found.update(self.local.get_many(namespace, [k for k in wanted if k not in found], dims))
        return found

    def put_many(self, namespace: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        self.local.put_many(namespace, keys, vectors)
        if not len(keys):
            return
        data = _pack_bytes(namespace, keys, vectors)
        key = f"{self.pack_dir(namespace)}{hashing.sha256_bytes(data)}.parquet"
        self.store.put_bytes(key, data)
        self.local.mark_imported(namespace, [key])


def prune_s3_cache(
    store: S3ObjectStore,
    referenced_blobs: set[str],
    referenced_vectors: set[str],
    older_than_s: float,
    everything: bool = False,
    prefix: str = S3_CACHE_PREFIX,
    now: float | None = None,
) -> PruneResult:
    """`prune` for the bucket's mirror: the same rules, by object age (S3 keeps no last-read time).

    Vector packs older than the period are compacted: the referenced vectors of a live namespace are
    rewritten as one pack, then the packs read are deleted (a pack a concurrent run adds meanwhile
    is not among them, so it survives).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    now = time.time() if now is None else now
    cutoff = now - older_than_s
    objects = list(store.list_keys(f"{prefix}/"))
    before = sum(int(obj["Size"]) for obj in objects)
    blobs: dict[str, list[dict[str, Any]]] = {}
    packs: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        parts = obj["Key"][len(prefix) + 1 :].split("/")
        if parts[0] == BLOBS_DIR and len(parts) == 4:
            blobs.setdefault(parts[1], []).append(obj)
        elif parts[0] == VECTOR_PACKS_DIR and len(parts) == 3:
            packs.setdefault(parts[1], []).append(obj)
    age = {k: max(o["LastModified"].timestamp() for o in v) for k, v in blobs.items()}
    live_blobs = _live(age, cutoff)
    blobs_removed = blob_bytes = blobs_kept = 0
    for namespace, objs in blobs.items():
        for obj in objs:
            old = obj["LastModified"].timestamp() < cutoff
            needed = namespace in live_blobs and obj["Key"].rsplit("/", 1)[-1] in referenced_blobs
            if everything or (old and not needed):
                store.delete(obj["Key"])
                blobs_removed += 1
                blob_bytes += int(obj["Size"])
            else:
                blobs_kept += 1
    live_packs = _live({k: max(o["LastModified"].timestamp() for o in v) for k, v in packs.items()}, cutoff)
    vectors_removed = vectors_kept = 0
    for digest, objs in packs.items():
        old = [o for o in objs if everything or o["LastModified"].timestamp() < cutoff]
        if not old:
            continue
        kept: dict[str, np.ndarray] = {}
        namespace = ""
        for obj in old:
            data = store.get_bytes(obj["Key"])
            namespace = (pq.read_schema(pa.BufferReader(data)).metadata or {}).get(b"namespace", b"").decode()
            keys, vectors = _read_pack(data, namespace, store.uri(obj["Key"]))
            for key, vector in zip(keys, vectors, strict=True):
                if not everything and digest in live_packs and key in referenced_vectors:
                    kept.setdefault(key, vector)
            vectors_removed += len(keys)
        compacted = None
        if kept:
            data = _pack_bytes(namespace, list(kept), np.stack(list(kept.values())))
            compacted = f"{prefix}/{VECTOR_PACKS_DIR}/{digest}/{hashing.sha256_bytes(data)}.parquet"
            store.put_bytes(compacted, data)
            vectors_kept += len(kept)
            vectors_removed -= len(kept)
        for obj in old:
            if obj["Key"] != compacted:
                store.delete(obj["Key"])
    after = sum(int(obj["Size"]) for obj in store.list_keys(f"{prefix}/"))
    return PruneResult(blobs_removed, blob_bytes, blobs_kept, vectors_removed, vectors_kept, before, after)


def prune_bucket_cache(store: S3ObjectStore, older_than_days: float = 7.0, everything: bool = False) -> PruneResult:
    """`nexus cache prune` in aws mode: the bucket's mirror, keeping what the bucket's tables reference."""
    wanted = ("/raw_pdfs.parquet", "/text_chunks.parquet")
    tables = [
        (store.uri(obj["Key"]), store.get_bytes(obj["Key"]))
        for obj in store.list_keys(f"{PROCESSED_PREFIX}/")
        if obj["Key"].endswith(wanted) and not obj["Key"].startswith(f"{S3_CACHE_PREFIX}/")
    ]
    blobs, vectors = referenced_keys(tables)
    return prune_s3_cache(store, blobs, vectors, older_than_days * 86400.0, everything=everything)
