"""Chroma collections built aside and swapped in atomically.

Chroma's `PersistentClient` is not safe with several writer processes on one directory, and a
reader must never see a half-written collection. So every build writes a fresh directory
`<root>/builds/<build_id>/`, marks it complete, and only then moves the `<root>/current` symlink
to it with an atomic rename. Readers resolve `current` once and open that build. A build whose
content equals the current one is not redone.

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

ADD_BATCH = 1000  # Chroma accepts at most 5,461 items per add(); 1,000 writes fast and keeps memory flat
COMPLETE_MARKER = "build.json"
CURRENT_LINK = "current"
BUILDS_DIR = "builds"


class CollectionError(RuntimeError):
    """A collection that is missing, incomplete or built with another embedding model."""


def _client(path: Path):
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(
        path=str(path), settings=Settings(anonymized_telemetry=False, allow_reset=False)
    )


def build_fingerprint(ids: Sequence[str], documents: Sequence[str], metadatas: Sequence[dict],
                      model_id: str, dims: int) -> str:
    """Hash of everything a collection holds except the vectors (a function of model and text)."""
    digest = hashlib.sha256(f"{model_id}\x1f{dims}".encode())
    for cid, doc, meta in sorted(zip(ids, documents, metadatas, strict=True)):
        digest.update(f"\x1e{cid}\x1f{doc}\x1f{json.dumps(meta, sort_keys=True)}".encode())
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

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "name": self.name, "count": self.count,
                "fingerprint": self.fingerprint, "model_id": self.model_id, "dims": self.dims,
                "reused": self.reused}


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
) -> CollectionInfo:
    """Write a complete collection aside, then point `root/current` at it atomically."""
    if embeddings.shape != (len(ids), dims):
        raise CollectionError(
            f"collection {name}: {len(ids)} ids but embeddings of shape {embeddings.shape}, expected "
            f"({len(ids)}, {dims}) for model {model_id}"
        )
    fingerprint = build_fingerprint(ids, documents, metadatas, model_id, dims)
    existing = current_build(root)
    if existing is not None:
        info = read_build_info(existing)
        if info.get("fingerprint") == fingerprint:
            return CollectionInfo(existing, name, info["count"], fingerprint, model_id, dims, reused=True)

    builds = root / BUILDS_DIR
    builds.mkdir(parents=True, exist_ok=True)
    build_dir = builds / f"{fingerprint[:12]}-{uuid.uuid4().hex[:8]}"
    client = _client(build_dir)
    collection = client.create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
        metadata={"model_id": model_id, "dims": dims},
    )
    for lo in range(0, len(ids), ADD_BATCH):
        hi = lo + ADD_BATCH
        collection.add(ids=list(ids[lo:hi]), embeddings=embeddings[lo:hi], documents=list(documents[lo:hi]),
                       metadatas=list(metadatas[lo:hi]))
    count = collection.count()
    if count != len(ids):
        raise CollectionError(f"collection {name}: wrote {len(ids)} items but Chroma holds {count}")
    del collection, client
    (build_dir / COMPLETE_MARKER).write_text(json.dumps(
        {"name": name, "count": count, "fingerprint": fingerprint, "model_id": model_id, "dims": dims},
        sort_keys=True,
    ))
    _swap_current(root, build_dir)
    _prune_builds(root, keep_previous)
    return CollectionInfo(build_dir, name, count, fingerprint, model_id, dims)


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
