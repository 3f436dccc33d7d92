"""Chroma collections built aside and swapped in atomically.

Chroma's `PersistentClient` is not safe with several writer processes on one directory, and a
reader must never see a half-written collection. So every build writes a fresh directory
`<root>/builds/<build_id>/`, marks it complete, and only then moves the `<root>/current` symlink
to it with an atomic rename. Readers resolve `current` once and open that build. A build whose
content equals the current one is not redone.

A rebuild after a small change is incremental: the current build is copied aside, the changed
items are upserted and the removed ones deleted in the copy, and the copy is swapped in like any
new build, so readers still only ever see complete builds. Each build keeps a sidecar
(`builds/<id>.items.json`: a digest per item) to find what changed without reading Chroma. When
much has changed, or deletions have piled up in the copies' HNSW index, a fresh build is written.

Embeddings are always passed explicitly, to `add()` and to `query()`, and collections are created
with `embedding_function=None`: Chroma must never fall back to its default embedding function,
which downloads an ONNX model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ADD_BATCH = 5000  # Chroma accepts at most 5,461 items per add(); fewer, larger calls write fastest
COMPLETE_MARKER = "build.json"
CURRENT_LINK = "current"
BUILDS_DIR = "builds"
ITEMS_SUFFIX = ".items.json"
# Incremental only while the change is small: past this share of the collection (changed + removed
# items, accumulated since the last fresh build), a fresh build is as fast and leaves no tombstones.
INCREMENTAL_MAX_CHURN = 0.25


class CollectionError(RuntimeError):
    """A collection that is missing, incomplete or built with another embedding model."""


def _client(path: Path):
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(
        path=str(path), settings=Settings(anonymized_telemetry=False, allow_reset=False)
    )


def item_digests(ids: Sequence[str], documents: Sequence[str], metadatas: Sequence[dict],
                 embeddings: np.ndarray) -> dict[str, str]:
    """A digest per item of its document, metadata and vector bytes: what an incremental build compares."""
    vectors = np.ascontiguousarray(embeddings, dtype="<f4")
    return {
        cid: hashlib.sha256(f"{doc}\x1f{json.dumps(meta, sort_keys=True)}\x1f".encode() + vectors[i].tobytes())
        .hexdigest()[:32]
        for i, (cid, doc, meta) in enumerate(zip(ids, documents, metadatas, strict=True))
    }


def build_fingerprint(ids: Sequence[str], documents: Sequence[str], metadatas: Sequence[dict],
                      model_id: str, dims: int, embeddings: np.ndarray | None = None) -> str:
    """Hash of everything a collection holds (vectors included when given: a precision change rebuilds)."""
    digest = hashlib.sha256(f"{model_id}\x1f{dims}".encode())
    for cid, doc, meta in sorted(zip(ids, documents, metadatas, strict=True)):
        digest.update(f"\x1e{cid}\x1f{doc}\x1f{json.dumps(meta, sort_keys=True)}".encode())
    if embeddings is not None:
        order = np.argsort(np.asarray(ids, dtype=object), kind="stable") if len(ids) else []
        digest.update(np.ascontiguousarray(np.asarray(embeddings, dtype="<f4")[order]).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class CollectionInfo:
    path: Path  # the build directory holding the Chroma files
    name: str
    count: int
    fingerprint: str
    model_id: str
    dims: int
    reused: bool = False
    mode: str = "fresh"  # fresh | incremental | reused
    upserted: int = 0
    deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "name": self.name, "count": self.count,
                "fingerprint": self.fingerprint, "model_id": self.model_id, "dims": self.dims,
                "reused": self.reused, "mode": self.mode, "upserted": self.upserted, "deleted": self.deleted}


def current_build(root: Path) -> Path | None:
    """The complete build `root/current` points at, or None."""
    link = root / CURRENT_LINK
    if not link.is_symlink() and not link.exists():
        return None
    target = link.resolve()
    return target if (target / COMPLETE_MARKER).is_file() else None


def read_build_info(build_dir: Path) -> dict[str, Any]:
    return json.loads((build_dir / COMPLETE_MARKER).read_text())


def build_collection(
    root: Path,
    name: str,
    ids: Sequence[str],
    embeddings: np.ndarray,
    documents: Sequence[str],
    metadatas: Sequence[dict],
    model_id: str,
    dims: int,
    keep_previous: int = 1,
    incremental: bool = True,
) -> CollectionInfo:
    """Write a complete collection aside (fresh, or as a patched copy of the current one), then swap it in."""
    if embeddings.shape != (len(ids), dims):
        raise CollectionError(
            f"collection {name}: {len(ids)} ids but embeddings of shape {embeddings.shape}, expected "
            f"({len(ids)}, {dims}) for model {model_id}"
        )
    if len(set(ids)) != len(ids):
        raise CollectionError(f"collection {name}: duplicate ids")
    fingerprint = build_fingerprint(ids, documents, metadatas, model_id, dims, embeddings)
    existing = current_build(root)
    previous: dict[str, Any] = read_build_info(existing) if existing is not None else {}
    if previous.get("fingerprint") == fingerprint:
        return CollectionInfo(existing, name, previous["count"], fingerprint, model_id, dims, reused=True,
                              mode="reused")

    digests = item_digests(ids, documents, metadatas, embeddings)
    builds = root / BUILDS_DIR
    builds.mkdir(parents=True, exist_ok=True)
    build_dir = builds / f"{fingerprint[:12]}-{uuid.uuid4().hex[:8]}"
    plan = _incremental_plan(existing, previous, digests, name, model_id, dims) if incremental else None
    if plan is not None:
        changed, removed, churn = plan
        _copy_build(existing, build_dir)
        collection = _client(build_dir).get_collection(name, embedding_function=None)
        index = {cid: i for i, cid in enumerate(ids)}
        for lo in range(0, len(removed), ADD_BATCH):
            collection.delete(ids=removed[lo : lo + ADD_BATCH])
        _write_items(collection.upsert, [index[c] for c in changed], ids, embeddings, documents, metadatas)
        mode, upserted, deleted = "incremental", len(changed), len(removed)
    else:
        collection = _client(build_dir).create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
            metadata={"model_id": model_id, "dims": dims},
        )
        _write_items(collection.add, range(len(ids)), ids, embeddings, documents, metadatas)
        mode, upserted, deleted, churn = "fresh", len(ids), 0, 0
    count = collection.count()
    if count != len(ids):
        shutil.rmtree(build_dir, ignore_errors=True)
        raise CollectionError(f"collection {name}: wrote {len(ids)} items but Chroma holds {count} ({mode} build)")
    del collection
    _items_path(build_dir).write_text(json.dumps(digests, sort_keys=True))
    (build_dir / COMPLETE_MARKER).write_text(json.dumps(
        {"name": name, "count": count, "fingerprint": fingerprint, "model_id": model_id, "dims": dims,
         "mode": mode, "churn": churn},
        sort_keys=True,
    ))
    _swap_current(root, build_dir)
    _prune_builds(root, keep_previous)
    return CollectionInfo(build_dir, name, count, fingerprint, model_id, dims, mode=mode, upserted=upserted,
                          deleted=deleted)


def _items_path(build_dir: Path) -> Path:
    return build_dir.with_name(build_dir.name + ITEMS_SUFFIX)


def _incremental_plan(
    existing: Path | None, previous: dict[str, Any], digests: dict[str, str], name: str, model_id: str, dims: int
) -> tuple[list[str], list[str], int] | None:
    """(changed ids, removed ids, churn since the last fresh build), or None when a fresh build is better."""
    if existing is None or previous.get("name") != name or previous.get("model_id") != model_id \
            or previous.get("dims") != dims or not _items_path(existing).is_file():
        return None
    try:
        before: dict[str, str] = json.loads(_items_path(existing).read_text())
    except (OSError, ValueError):
        return None
    changed = [cid for cid, digest in digests.items() if before.get(cid) != digest]
    removed = sorted(set(before) - set(digests))
    churn = int(previous.get("churn", 0)) + len(changed) + len(removed)
    if churn > INCREMENTAL_MAX_CHURN * max(len(digests), 1):
        return None
    return changed, removed, churn


def _copy_build(source: Path, target: Path) -> None:
    """Copy a complete build's files (not its completion marker) into a new build directory."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(COMPLETE_MARKER))


def _write_items(write, rows: Sequence[int] | range, ids: Sequence[str], embeddings: np.ndarray,
                 documents: Sequence[str], metadatas: Sequence[dict]) -> None:
    rows = list(rows)
    for lo in range(0, len(rows), ADD_BATCH):
        part = rows[lo : lo + ADD_BATCH]
        write(ids=[ids[i] for i in part], embeddings=embeddings[part], documents=[documents[i] for i in part],
              metadatas=[metadatas[i] for i in part])


def _swap_current(root: Path, build_dir: Path) -> None:
    tmp = root / f".{CURRENT_LINK}.{uuid.uuid4().hex[:8]}"
    os.symlink(os.path.relpath(build_dir, root), tmp)
    os.replace(tmp, root / CURRENT_LINK)  # atomic on POSIX: readers see the old or the new build


def _prune_builds(root: Path, keep_previous: int) -> None:
    """Remove old builds, keeping the current one and the `keep_previous` most recent others."""
    current = current_build(root)
    builds = sorted((p for p in (root / BUILDS_DIR).iterdir() if p.is_dir()),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    others = [p for p in builds if current is None or p.resolve() != current]
    for stale in others[keep_previous:]:
        shutil.rmtree(stale, ignore_errors=True)
        _items_path(stale).unlink(missing_ok=True)


def open_collection(build_dir: Path, expected_model_id: str | None = None):
    """Open the collection stored in a complete build directory (read-only use)."""
    if not (build_dir / COMPLETE_MARKER).is_file():
        raise CollectionError(f"{build_dir} is not a complete Chroma build (no {COMPLETE_MARKER})")
    info = read_build_info(build_dir)
    if expected_model_id and info["model_id"] != expected_model_id:
        raise CollectionError(
            f"collection in {build_dir} was built with {info['model_id']}, not {expected_model_id}: "
            "query it with the model it was built with"
        )
    return _client(build_dir).get_collection(info["name"], embedding_function=None)


def query_collection(build_dir: Path, query_embedding: np.ndarray, k: int,
                     expected_model_id: str | None = None) -> list[dict[str, Any]]:
    """Top-k hits as dicts with id, text, metadata and cosine similarity score."""
    collection = open_collection(build_dir, expected_model_id)
    available = collection.count()
    if available == 0:
        return []
    k = max(1, min(k, available))
    result = collection.query(query_embeddings=[np.asarray(query_embedding, dtype=np.float32)],
                              n_results=k, include=["documents", "metadatas", "distances"])
    return [
        {"id": cid, "text": doc, "metadata": meta, "score": round(1.0 - float(dist), 6)}
        for cid, doc, meta, dist in zip(result["ids"][0], result["documents"][0],
                                        result["metadatas"][0], result["distances"][0], strict=True)
    ]


def collection_contents(build_dir: Path) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """All ids, documents and metadata of a build (builds are immutable once complete)."""
    got = open_collection(build_dir).get(include=["documents", "metadatas"])
    return list(got["ids"]), list(got["documents"]), list(got["metadatas"])
