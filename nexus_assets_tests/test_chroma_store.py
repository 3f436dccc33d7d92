import os
from pathlib import Path

import numpy as np
import pytest

from nexus_assets.lib.index.chroma_store import (
    CollectionError,
    CollectionItems,
    build_collection,
    current_build,
    open_collection,
    promote_build,
    query_collection,
)


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 16)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _build(root: Path, ids: list[str], vectors: np.ndarray):
    docs = [f"dokumen {i}" for i in ids]
    metas = [{"file": "a.pdf", "page": 1} for _ in ids]
    return build_collection(root, "mapel__kelas_1", CollectionItems(ids, vectors, docs, metas, "test-model", 16))


def test_build_then_query_exact_neighbour(tmp_path: Path) -> None:
    vectors = _vectors(1200)  # more than one add() batch
    ids = [f"c{i}" for i in range(1200)]
    info = _build(tmp_path, ids, vectors)
    assert info.count == 1200 and not info.reused and info.mode == "fresh"
    assert current_build(tmp_path) == info.path.resolve()
    hits = query_collection(info.path, vectors[777], k=3)
    assert hits[0]["id"] == "c777" and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert hits[0]["metadata"] == {"file": "a.pdf", "page": 1}


def test_same_content_reuses_the_build_and_changes_swap_it(tmp_path: Path) -> None:
    vectors = _vectors(10)
    ids = [f"c{i}" for i in range(10)]
    first = _build(tmp_path, ids, vectors)
    assert _build(tmp_path, ids, vectors).reused
    second = _build(tmp_path, ids[:5], vectors[:5])  # five chunks removed from the sources
    assert not second.reused and second.path != first.path
    collection = open_collection(current_build(tmp_path))
    assert sorted(collection.get()["ids"]) == sorted(ids[:5]), "removed chunks are gone"
    # The previous build is kept for readers that opened it just before the swap.
    assert first.path.exists()
    third = _build(tmp_path, ids[:3], vectors[:3])
    assert not first.path.exists(), "builds older than the previous one are pruned"
    assert os.readlink(tmp_path / "current") == os.path.relpath(third.path, tmp_path)


def test_a_half_written_build_is_never_current(tmp_path: Path) -> None:
    ids = [f"c{i}" for i in range(4)]
    with pytest.raises(CollectionError):
        _build(tmp_path, ids, _vectors(3))  # vectors do not match ids: refused before anything is swapped
    assert current_build(tmp_path) is None


def test_query_with_another_model_is_refused(tmp_path: Path) -> None:
    info = _build(tmp_path, ["a", "b", "c"], _vectors(3))
    with pytest.raises(CollectionError, match="built with test-model"):
        query_collection(info.path, _vectors(1)[0], k=1, expected_model_id="other-model")


def test_empty_collection_answers_no_hits(tmp_path: Path) -> None:
    info = _build(tmp_path, [], np.zeros((0, 16), dtype=np.float32))
    assert info.count == 0
    assert query_collection(info.path, _vectors(1)[0], k=5) == []


def _contents(build_dir: Path) -> dict[str, tuple[str, dict, list[float]]]:
    got = open_collection(build_dir).get(include=["documents", "metadatas", "embeddings"])
    return {
        cid: (doc, meta, list(np.round(vec, 5)))
        for cid, doc, meta, vec in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True)
    }


def test_a_small_change_is_applied_to_a_copy_and_equals_a_fresh_build(tmp_path: Path) -> None:
    ids = [f"c{i}" for i in range(200)]
    vectors = _vectors(200)
    first = _build(tmp_path / "inc", ids, vectors)
    before = _contents(first.path)
    query_collection(first.path, vectors[0], k=1)  # a reader has the old build open
    # Ten chunks changed text (new ids), five removed, one kept its id but moved page.
    new_ids = ids[5:] + [f"n{i}" for i in range(10)]
    new_vectors = np.vstack([vectors[5:], _vectors(10, seed=1)])
    docs = [f"dokumen {i}" for i in new_ids]
    metas = [{"file": "a.pdf", "page": 2 if cid == "c50" else 1} for cid in new_ids]
    second = build_collection(
        tmp_path / "inc", "mapel__kelas_1", CollectionItems(new_ids, new_vectors, docs, metas, "test-model", 16)
    )
    assert second.mode == "incremental" and second.upserted == 11 and second.deleted == 5
    assert _contents(first.path) == before, "the build readers may hold is untouched"
    fresh = build_collection(
        tmp_path / "fresh", "mapel__kelas_1", CollectionItems(new_ids, new_vectors, docs, metas, "test-model", 16)
    )
    assert fresh.mode == "fresh"
    assert _contents(second.path) == _contents(fresh.path)
    assert second.fingerprint == fresh.fingerprint
    hits = query_collection(current_build(tmp_path / "inc"), new_vectors[-1], k=1)
    assert hits[0]["id"] == "n9"


def test_a_large_change_or_a_precision_change_writes_a_fresh_build(tmp_path: Path) -> None:
    ids = [f"c{i}" for i in range(40)]
    vectors = _vectors(40)
    _build(tmp_path, ids, vectors)
    half = _build(tmp_path, ids[:20], vectors[:20])
    assert half.mode == "fresh", "half the collection removed: a fresh build leaves no tombstones"
    nudged = vectors[:20] + np.float32(1e-3)
    assert _build(tmp_path, ids[:20], nudged).mode == "fresh", "every vector changed (e.g. another precision)"


def test_an_unpromoted_build_is_not_served_until_promoted(tmp_path: Path) -> None:
    """The pipeline builds aside, runs its checks, and only then lets search serve the build."""
    vectors = _vectors(10)
    ids = [f"c{i}" for i in range(10)]
    served = _build(tmp_path, ids, vectors)
    docs, metas = [f"dokumen {i}" for i in ids[:6]], [{"file": "a.pdf", "page": 1}] * 6
    aside = build_collection(
        tmp_path, "mapel__kelas_1", CollectionItems(ids[:6], vectors[:6], docs, metas, "test-model", 16), promote=False
    )
    assert not aside.reused and aside.count == 6
    assert current_build(tmp_path) == served.path.resolve(), "search still serves the checked build"
    again = build_collection(
        tmp_path, "mapel__kelas_1", CollectionItems(ids[:6], vectors[:6], docs, metas, "test-model", 16), promote=False
    )
    assert again.reused and again.path == aside.path, "a rerun (e.g. after a failed check) reuses the build"
    assert promote_build(tmp_path, aside.path) is True
    assert current_build(tmp_path) == aside.path.resolve()
    assert promote_build(tmp_path, aside.path) is False, "promoting the served build changes nothing"
    with pytest.raises(CollectionError, match="not a complete Chroma build"):
        promote_build(tmp_path, tmp_path / "builds" / "missing")
