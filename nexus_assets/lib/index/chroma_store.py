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

One model per collection: a collection's name carries the model and dims (`model_collection_name`),
its metadata and completion marker record them, and `build_collection` refuses to load vectors of
another model into a collection of the same name. A model change therefore writes a new collection.

A build can also be written without moving `current` (`promote=False`) and promoted later with
`promote_build`: the pipeline serves a build only once the quality gates it must pass have passed,
so search never answers from a build whose checks fail.

Embeddings are always passed explicitly, to `add()` and to `query()`, and collections are created
with `embedding_function=None`: Chroma must never fall back to its default embedding function,
which downloads an ONNX model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.fault_points import fault_point
from nexus_assets.lib.core.partition_lock import file_lock

ADD_BATCH = 5000  # Chroma accepts at most 5,461 items per add(); fewer, larger calls write fastest
COMPLETE_MARKER = "build.json"
CURRENT_LINK = "current"
BUILDS_DIR = "builds"
ITEMS_SUFFIX = ".items.json"
# Incremental only while the change is small: past this share of the collection (changed + removed
# items, accumulated since the last fresh build), a fresh build is as fast and leaves no tombstones.
INCREMENTAL_MAX_CHURN = 0.25
LOCK_FILE = ".lock"
PROMOTED_SUFFIX = ".promoted"  # beside a build once `current` served it: superseded, it can go at once
# A complete build nobody serves yet may be another run's, waiting for its checks before promotion:
# it is pruned only once it is older than this. Incomplete builds are a killed writer's and go at once
# (every writer holds the lock, so none is being written while the lock is held).
UNPROMOTED_GRACE_S = 3600.0


class CollectionError(RuntimeError):
    """A collection that is missing, incomplete or built with another embedding model."""


def model_collection_name(base: str, model_id: str, dims: int) -> str:
    """`<base>__<model slug>-<dims>d`: a collection name per (partition, model, dims), valid for Chroma."""
    slug = re.sub(r"[^a-z0-9.]+", "-", model_id.lower()).strip("-.")
    slug = re.sub(r"\.{2,}", ".", slug)[:200]
    return f"{base}__{slug}-{dims}d"


def _refuse_other_model(name: str, model_id: str, dims: int, held: dict[str, Any], where: Path) -> None:
    """A collection holds vectors of one model: loading another model's vectors into it is an error."""
    if held.get("name") == name and (held.get("model_id"), held.get("dims")) != (model_id, dims):
        raise CollectionError(
            f"collection {name} in {where} holds vectors of {held.get('model_id')} ({held.get('dims')} dims); "
            f"refusing to load vectors of {model_id} ({dims} dims) into it: a model change needs a new "
            "collection (name it with model_collection_name)"
        )


def _client(path: Path):
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False, allow_reset=False))


def item_digests(
    ids: Sequence[str], documents: Sequence[str], metadatas: Sequence[dict], embeddings: np.ndarray
) -> dict[str, str]:
    """A digest per item of its document, metadata and vector bytes: what an incremental build compares."""
    vectors = np.ascontiguousarray(embeddings, dtype="<f4")
    return {
        cid: hashing.sha256_bytes(
            f"{doc}\x1f{json.dumps(meta, sort_keys=True)}\x1f".encode() + vectors[i].tobytes(), 32
        )
        for i, (cid, doc, meta) in enumerate(zip(ids, documents, metadatas, strict=True))
    }


def build_fingerprint(
    ids: Sequence[str],
    documents: Sequence[str],
    metadatas: Sequence[dict],
    model_id: str,
    dims: int,
    embeddings: np.ndarray | None = None,
) -> str:
    """Hash of everything a collection holds (vectors included when given: a precision change rebuilds)."""
    digest = hashing.RecordDigest(model_id, dims)
    for cid, doc, meta in sorted(zip(ids, documents, metadatas, strict=True)):
        digest.record(cid, doc, json.dumps(meta, sort_keys=True))
    if embeddings is not None:
        order = np.argsort(np.asarray(ids, dtype=object), kind="stable") if len(ids) else []
        digest.update(np.ascontiguousarray(np.asarray(embeddings, dtype="<f4")[order]).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class CollectionItems:
    """What a collection holds: one row per chunk (id, vector, text, metadata), every vector from one
    model. The one argument of every writer (local build, server publish, a school's install)."""

    ids: Sequence[str]
    embeddings: np.ndarray
    documents: Sequence[str]
    metadatas: Sequence[dict]
    model_id: str
    dims: int

    def check(self, name: str) -> None:
        """Refuse vectors of the wrong shape and duplicate ids before anything is written."""
        if self.embeddings.shape != (len(self.ids), self.dims):
            raise CollectionError(
                f"collection {name}: {len(self.ids)} ids but embeddings of shape {self.embeddings.shape}, "
                f"expected ({len(self.ids)}, {self.dims}) for model {self.model_id}"
            )
        if len(set(self.ids)) != len(self.ids):
            raise CollectionError(f"collection {name}: duplicate ids")

    def fingerprint(self) -> str:
        return build_fingerprint(self.ids, self.documents, self.metadatas, self.model_id, self.dims, self.embeddings)

    def digests(self) -> dict[str, str]:
        return item_digests(self.ids, self.documents, self.metadatas, self.embeddings)

    def write(self, write, rows: Sequence[int] | range | None = None) -> None:
        """Pass the `rows` (all by default) to a Chroma `add` or `upsert` in batches of ADD_BATCH."""
        rows = list(range(len(self.ids)) if rows is None else rows)
        for lo in range(0, len(rows), ADD_BATCH):
            part = rows[lo : lo + ADD_BATCH]
            write(
                ids=[self.ids[i] for i in part],
                embeddings=self.embeddings[part],
                documents=[self.documents[i] for i in part],
                metadatas=[self.metadatas[i] for i in part],
            )


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
        return {
            "path": str(self.path),
            "name": self.name,
            "count": self.count,
            "fingerprint": self.fingerprint,
            "model_id": self.model_id,
            "dims": self.dims,
            "reused": self.reused,
            "mode": self.mode,
            "upserted": self.upserted,
            "deleted": self.deleted,
        }


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
    items: CollectionItems,
    keep_previous: int = 1,
    incremental: bool = True,
    promote: bool = True,
) -> CollectionInfo:
    """Write a complete collection aside (fresh, or as a patched copy of the current one), then swap it in.

    With `promote=False` the build is left aside for `promote_build`; an unpromoted complete build of
    the same content (a run whose checks failed, or a concurrent run of the same partition) is reused
    rather than written again. Runs under the partition's Chroma lock, so two runs never interleave.
    """
    items.check(name)
    with _locked(root):
        return _build_collection(root, name, items, keep_previous, incremental, promote)


def _locked(root: Path):
    return file_lock(root / LOCK_FILE, f"Chroma builds under {root}")


def _build_collection(
    root: Path, name: str, items: CollectionItems, keep_previous: int, incremental: bool, promote: bool
) -> CollectionInfo:
    ids, model_id, dims = items.ids, items.model_id, items.dims
    fingerprint = items.fingerprint()
    existing = current_build(root)
    previous: dict[str, Any] = read_build_info(existing) if existing is not None else {}
    if existing is not None:
        _refuse_other_model(name, model_id, dims, previous, existing)
    if previous.get("fingerprint") == fingerprint:
        return CollectionInfo(
            existing, name, previous["count"], fingerprint, model_id, dims, reused=True, mode="reused"
        )
    waiting = _unpromoted_build(root, fingerprint)
    if waiting is not None:
        return CollectionInfo(
            waiting,
            name,
            int(read_build_info(waiting)["count"]),
            fingerprint,
            model_id,
            dims,
            reused=True,
            mode="reused",
        )

    digests = items.digests()
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
        items.write(collection.upsert, [index[c] for c in changed])
        mode, upserted, deleted = "incremental", len(changed), len(removed)
    else:
        collection = _new_collection(build_dir, name, model_id, dims)
        items.write(collection.add)
        mode, upserted, deleted, churn = "fresh", len(ids), 0, 0
    fault_point("chroma.written")
    count = collection.count()
    if count != len(ids):
        shutil.rmtree(build_dir, ignore_errors=True)
        raise CollectionError(f"collection {name}: wrote {len(ids)} items but Chroma holds {count} ({mode} build)")
    del collection
    _items_path(build_dir).write_text(json.dumps(digests, sort_keys=True))
    (build_dir / COMPLETE_MARKER).write_text(
        json.dumps(
            {
                "name": name,
                "count": count,
                "fingerprint": fingerprint,
                "model_id": model_id,
                "dims": dims,
                "mode": mode,
                "churn": churn,
            },
            sort_keys=True,
        )
    )
    if promote:
        _serve(root, build_dir)
    _prune_builds(root, keep_previous)
    return CollectionInfo(
        build_dir, name, count, fingerprint, model_id, dims, mode=mode, upserted=upserted, deleted=deleted
    )


def _new_collection(build_dir: Path, name: str, model_id: str, dims: int):
    return _client(build_dir).create_collection(
        name,
        embedding_function=None,
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"model_id": model_id, "dims": dims},
    )


def write_build(build_dir: Path, name: str, items: CollectionItems) -> int:
    """A fresh complete build at `build_dir` (no `current` link, no history): what a school server
    installing a delta writes before swapping its own link. Returns the item count."""
    items.check(name)
    collection = _new_collection(build_dir, name, items.model_id, items.dims)
    items.write(collection.add)
    count = collection.count()
    if count != len(items.ids):
        raise CollectionError(
            f"collection {name} in {build_dir}: wrote {len(items.ids)} items but Chroma holds {count}"
        )
    del collection
    (build_dir / COMPLETE_MARKER).write_text(
        json.dumps(
            {
                "name": name,
                "count": count,
                "model_id": items.model_id,
                "dims": items.dims,
                "mode": "fresh",
                "churn": 0,
                "fingerprint": items.fingerprint(),
            },
            sort_keys=True,
        )
    )
    return count


def _unpromoted_build(root: Path, fingerprint: str) -> Path | None:
    """A complete build of exactly this content that was never promoted, if one is still on disk."""
    for candidate in sorted((root / BUILDS_DIR).glob(f"{fingerprint[:12]}-*")):
        if (
            candidate.is_dir()
            and (candidate / COMPLETE_MARKER).is_file()
            and read_build_info(candidate).get("fingerprint") == fingerprint
        ):
            return candidate
    return None


def promote_build(root: Path, build_dir: Path, keep_previous: int = 1) -> bool:
    """Make a complete build the one `current` serves (atomic); False when it already was."""
    build_dir = Path(build_dir).resolve()
    with _locked(root):
        if not (build_dir / COMPLETE_MARKER).is_file():
            raise CollectionError(f"{build_dir} is not a complete Chroma build (no {COMPLETE_MARKER}): not promoted")
        if current_build(root) == build_dir:
            return False
        _serve(root, build_dir)
        _prune_builds(root, keep_previous)
        return True


def _items_path(build_dir: Path) -> Path:
    return build_dir.with_name(build_dir.name + ITEMS_SUFFIX)


def _promoted_path(build_dir: Path) -> Path:
    return build_dir.with_name(build_dir.name + PROMOTED_SUFFIX)


def _incremental_plan(
    existing: Path | None, previous: dict[str, Any], digests: dict[str, str], name: str, model_id: str, dims: int
) -> tuple[list[str], list[str], int] | None:
    """(changed ids, removed ids, churn since the last fresh build), or None when a fresh build is better."""
    if (
        existing is None
        or previous.get("name") != name
        or previous.get("model_id") != model_id
        or previous.get("dims") != dims
        or not _items_path(existing).is_file()
    ):
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


def _serve(root: Path, build_dir: Path) -> None:
    """Swap `current` to a build of the pipeline's and mark it as once served (beside it, not in it:
    a package ships the build's files), so pruning may drop it as soon as it is superseded."""
    _promoted_path(build_dir).touch()
    swap_current(root, build_dir)


def swap_current(root: Path, build_dir: Path) -> None:
    """Point `root/current` at `build_dir` in one atomic rename."""
    tmp = root / f".{CURRENT_LINK}.{uuid.uuid4().hex[:8]}"
    os.symlink(os.path.relpath(build_dir, root), tmp)
    try:
        os.replace(tmp, root / CURRENT_LINK)  # atomic on POSIX: readers see the old or the new build
    except BaseException:
        tmp.unlink(missing_ok=True)  # `current` a real directory, say: no temporary link left per attempt
        raise


def _prune_builds(root: Path, keep_previous: int) -> None:
    """Remove old builds (under the lock): a killed writer's incomplete ones, and complete ones beyond
    the current one and the `keep_previous` most recent others once they are past the grace period."""
    current = current_build(root)
    builds = sorted(
        (p for p in (root / BUILDS_DIR).iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    others = [p for p in builds if current is None or p.resolve() != current]
    complete = [p for p in others if (p / COMPLETE_MARKER).is_file()]
    now = time.time()
    stale = [p for p in others if not (p / COMPLETE_MARKER).is_file()]
    stale += [
        p
        for p in complete[keep_previous:]
        if _promoted_path(p).is_file() or now - p.stat().st_mtime > UNPROMOTED_GRACE_S
    ]
    for build in stale:
        shutil.rmtree(build, ignore_errors=True)
        _items_path(build).unlink(missing_ok=True)
        _promoted_path(build).unlink(missing_ok=True)


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


def query_collection(
    build_dir: Path, query_embedding: np.ndarray, k: int, expected_model_id: str | None = None
) -> list[dict[str, Any]]:
    """Top-k hits as dicts with id, text, metadata and cosine similarity score."""
    return _hits(open_collection(build_dir, expected_model_id), query_embedding, k)


def _hits(collection, query_embedding: np.ndarray, k: int) -> list[dict[str, Any]]:
    available = collection.count()
    if available == 0:
        return []
    k = max(1, min(k, available))
    result = collection.query(
        query_embeddings=[np.asarray(query_embedding, dtype=np.float32)],
        n_results=k,
        include=["documents", "metadatas", "distances"],
    )
    return [
        {"id": cid, "text": doc, "metadata": meta, "score": round(1.0 - float(dist), 6)}
        for cid, doc, meta, dist in zip(
            result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0], strict=True
        )
    ]


def cosine_of(build_dir: Path, ids: Sequence[str], query_embedding: np.ndarray) -> dict[str, float]:
    """Cosine similarity of the query to the stored vectors of `ids` (all vectors are unit length)."""
    if not ids:
        return {}
    got = open_collection(build_dir).get(ids=list(ids), include=["embeddings"])
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    scores = vectors @ np.asarray(query_embedding, dtype=np.float32)
    return {cid: round(float(score), 6) for cid, score in zip(got["ids"], scores, strict=True)}


def collection_contents(build_dir: Path) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """All ids, documents and metadata of a build (builds are immutable once complete)."""
    got = open_collection(build_dir).get(include=["documents", "metadatas"])
    return list(got["ids"]), list(got["documents"]), list(got["metadatas"])


# --- Chroma server mode -----------------------------------------------------------------------------------
# A Chroma server takes writes from many runs at once, each run writing its own partition's
# collection. Chroma has no atomic rename or alias, so readers are kept off half-written data with a
# pointer: a build goes into its own collection `<name>.b<fingerprint>-<nonce>`, is counted, and only
# then the pointer collection `<name>.current` (empty; its metadata names the build) is switched with
# one metadata replace. Readers resolve the pointer and open the build it names; no collection is
# called `<name>` itself, so a reader that skips the pointer gets "not found", never partial data.
# The build the pointer named before stays (for readers that resolved it a moment ago) until the
# next swap; abandoned unfinished builds are removed once they are older than STAGING_GRACE_S.

POINTER_SUFFIX = ".current"
BUILD_INFIX = ".b"
STAGING_GRACE_S = 3600


@dataclass(frozen=True)
class ChromaServer:
    """Where the Chroma server is. The token is sent as a bearer header and kept out of repr and errors."""

    host: str = "127.0.0.1"
    port: int = 8000
    ssl: bool = False
    token: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self):
        import chromadb
        from chromadb.config import Settings

        try:
            return chromadb.HttpClient(
                host=self.host,
                port=self.port,
                ssl=self.ssl,
                headers=self.headers(),
                settings=Settings(anonymized_telemetry=False),
            )
        except Exception as exc:  # noqa: BLE001 - any connection failure: name the server, never the token
            raise CollectionError(f"Chroma server {self.url}: cannot connect: {type(exc).__name__}") from None


def pointer_name(name: str) -> str:
    return name + POINTER_SUFFIX


def _pointer(client, name: str) -> dict[str, Any]:
    from chromadb.errors import NotFoundError

    try:
        return dict(client.get_collection(pointer_name(name), embedding_function=None).metadata or {})
    except NotFoundError:
        return {}


def publish_to_server(client, name: str, items: CollectionItems) -> CollectionInfo:
    """Write the collection into its own server collection, verify it, then point `<name>.current` at it.

    Unchanged content (same fingerprint, target still complete) is not written again. The returned
    info's `path` is the server collection's name as a path-like label (there is no local directory).
    """
    import time

    items.check(name)
    ids, model_id, dims = items.ids, items.model_id, items.dims
    fingerprint = items.fingerprint()
    pointer = _pointer(client, name)
    if pointer.get("fingerprint") == fingerprint and _complete_count(client, pointer.get("current")) == len(ids):
        return CollectionInfo(
            Path(pointer["current"]), name, len(ids), fingerprint, model_id, dims, reused=True, mode="reused"
        )
    target = f"{name}{BUILD_INFIX}{fingerprint[:12]}-{uuid.uuid4().hex[:8]}"
    collection = client.create_collection(
        target,
        embedding_function=None,
        configuration={"hnsw": {"space": "cosine"}},
        metadata={
            "model_id": model_id,
            "dims": dims,
            "fingerprint": fingerprint,
            "complete": False,
            "created": time.time(),
        },
    )
    items.write(collection.add)
    count = collection.count()
    if count != len(ids):
        client.delete_collection(target)
        raise CollectionError(f"collection {name}: wrote {len(ids)} items to {target} but the server holds {count}")
    collection.modify(
        metadata={
            "model_id": model_id,
            "dims": dims,
            "fingerprint": fingerprint,
            "complete": True,
            "count": count,
            "created": time.time(),
        }
    )
    holder = client.get_or_create_collection(pointer_name(name), embedding_function=None)
    # One metadata replace: readers see the old build or the new one, never a mix.
    holder.modify(
        metadata={
            "current": target,
            "previous": pointer.get("current") or "",
            "fingerprint": fingerprint,
            "count": count,
            "model_id": model_id,
            "dims": dims,
        }
    )
    _prune_server_builds(client, name, keep={target, pointer.get("current") or ""})
    return CollectionInfo(Path(target), name, count, fingerprint, model_id, dims)


def _complete_count(client, target: str | None) -> int | None:
    from chromadb.errors import NotFoundError

    if not target:
        return None
    try:
        collection = client.get_collection(target, embedding_function=None)
    except NotFoundError:
        return None
    return collection.count() if (collection.metadata or {}).get("complete") else None


def _prune_server_builds(client, name: str, keep: set[str]) -> None:
    """Delete this partition's older builds; another writer's unfinished build is left alone for a grace period."""
    import time

    from chromadb.errors import NotFoundError

    prefix = name + BUILD_INFIX
    for collection in client.list_collections():
        if not collection.name.startswith(prefix) or collection.name in keep:
            continue
        meta = collection.metadata or {}
        if not meta.get("complete") and time.time() - float(meta.get("created", 0)) < STAGING_GRACE_S:
            continue
        try:
            client.delete_collection(collection.name)
        except NotFoundError:  # another writer pruned it first
            pass


def open_server_collection(client, name: str, expected_model_id: str | None = None):
    """The complete collection `<name>.current` points at (raises CollectionError when there is none)."""
    pointer = _pointer(client, name)
    if not pointer.get("current"):
        raise CollectionError(f"no collection {name} on the Chroma server (no {pointer_name(name)} pointer)")
    if expected_model_id and pointer.get("model_id") != expected_model_id:
        raise CollectionError(
            f"collection {name} on the Chroma server was built with {pointer.get('model_id')}, not {expected_model_id}"
        )
    return client.get_collection(pointer["current"], embedding_function=None)


def query_server_collection(
    client, name: str, query_embedding: np.ndarray, k: int, expected_model_id: str | None = None
) -> list[dict[str, Any]]:
    """Top-k hits (id, text, metadata, cosine score) from the partition's current server collection."""
    collection = open_server_collection(client, name, expected_model_id)
    return _hits(collection, query_embedding, k)
