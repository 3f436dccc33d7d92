"""The content-addressed caches: exact round trips, two writer processes, restarts and pruning."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nexus_assets.lib.core.caches import (
    BlobCache,
    MirroredBlobCache,
    MirroredVectorCache,
    VectorCache,
    prune,
    prune_bucket_cache,
    prune_data_cache,
)
from nexus_assets.lib.core.layout import DataLayout

NS = "model|dims=4|bf16"


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


def test_vectors_come_back_byte_for_byte_and_survive_a_restart(tmp_path: Path) -> None:
    vectors = _vectors(3)
    with VectorCache(tmp_path) as cache:
        cache.put_many(NS, ["a", "b", "c"], vectors)
    with VectorCache(tmp_path) as cache:  # a new process would open it the same way
        found = cache.get_many(NS, ["c", "a", "missing"], dims=4)
        assert set(found) == {"a", "c"}
        assert found["a"].tobytes() == vectors[0].tobytes() and found["c"].tobytes() == vectors[2].tobytes()
        assert cache.get_many("other-precision", ["a"], dims=4) == {}, "namespaces never mix"
        assert cache.get_many(NS, ["a"], dims=8) == {}, "a vector of other dims is not a hit"


def test_a_stored_vector_is_never_replaced(tmp_path: Path) -> None:
    with VectorCache(tmp_path) as cache:
        cache.put_many(NS, ["a"], _vectors(1, seed=1))
        cache.put_many(NS, ["a"], _vectors(1, seed=2))
        assert cache.get_many(NS, ["a"], 4)["a"].tobytes() == _vectors(1, seed=1)[0].tobytes()


def _writer(root: str, worker: int) -> None:
    with VectorCache(Path(root)) as cache:
        for batch in range(20):
            keys = [f"{worker}-{batch}-{i}" for i in range(50)] + [f"shared-{i}" for i in range(50)]
            cache.put_many(NS, keys, _vectors(100, seed=batch))
            cache.get_many(NS, keys, 4)
    blobs = BlobCache(Path(root), "extraction-test")
    for i in range(50):
        blobs.put(f"{i:064d}", f"value {i}".encode() * 1000)


def test_two_processes_share_the_caches_safely(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(tmp_path), n)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    with VectorCache(tmp_path) as cache:
        assert cache.count() == 2 * 20 * 50 + 50
    blobs = BlobCache(tmp_path, "extraction-test")
    assert all(blobs.get(f"{i:064d}") == f"value {i}".encode() * 1000 for i in range(50))
    assert not list(tmp_path.rglob("*.tmp")), "no temporary file is left behind"


def test_prune_keeps_what_tables_reference_and_what_was_used_recently(tmp_path: Path) -> None:
    day = 86400.0
    blobs = BlobCache(tmp_path, "extraction-v1")
    for key in ("kept", "stale", "fresh"):
        blobs.put(key, b"x" * 100)
    old = time.time() - 30 * day
    for key in ("kept", "stale"):
        os.utime(blobs.path(key), (old, old))
    with VectorCache(tmp_path) as cache:
        cache.put_many(NS, ["kept", "stale"], _vectors(2))
        cache.put_many("old-precision", ["kept"], _vectors(1))
        cache._db.execute("UPDATE vectors SET last_used = ?", (old,))
        cache.put_many(NS, ["fresh"], _vectors(1))
    result = prune(tmp_path, {"kept"}, {"kept"}, older_than_s=7 * day)
    assert (result.blobs_removed, result.vectors_removed) == (1, 2)
    assert blobs.get("kept") and blobs.get("fresh") and blobs.get("stale") is None
    with VectorCache(tmp_path) as cache:
        assert set(cache.get_many(NS, ["kept", "stale", "fresh"], 4)) == {"kept", "fresh"}
        assert cache.get_many("old-precision", ["kept"], 4) == {}, "a namespace unused for the period goes"
    assert "removed 1 extraction entries" in result.summary()
    emptied = prune(tmp_path, set(), set(), older_than_s=7 * day, everything=True)
    assert emptied.blobs_kept == 0 and emptied.vectors_kept == 0


def test_prune_of_a_data_dir_reads_the_processed_tables(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    processed = tmp_path / "processed/informatika/kelas_10"
    processed.mkdir(parents=True)
    pd.DataFrame({"sha256": ["pdf-in-use"]}).to_parquet(processed / "raw_pdfs.parquet")
    pd.DataFrame({"content_sha256": ["chunk-in-use"]}).to_parquet(processed / "text_chunks.parquet")
    blobs = BlobCache(layout.cache_dir, "extraction-v1")
    blobs.put("pdf-in-use", b"1")
    blobs.put("pdf-gone", b"2")
    with VectorCache(layout.cache_dir) as cache:
        cache.put_many(NS, ["chunk-in-use", "chunk-gone"], _vectors(2))
    result = prune_data_cache(layout, older_than_days=0)
    assert (result.blobs_removed, result.vectors_removed) == (1, 1)
    assert blobs.get("pdf-in-use") == b"1"
    assert prune_data_cache(DataLayout(tmp_path / "empty")).blobs_removed == 0, "no cache: nothing to do"


# --- aws mode: the caches mirrored through the bucket (moto server) ---------------------------


@pytest.fixture
def store(aws_env: dict[str, str]):
    from nexus_assets.lib.aws.aws_bootstrap import bootstrap
    from nexus_assets.lib.aws.aws_config import AwsSettings

    settings = AwsSettings.from_env(os.environ)
    bootstrap(settings)
    return settings.object_store()


def test_a_fresh_disk_gets_extractions_and_vectors_from_the_bucket(tmp_path: Path, store) -> None:
    first, second = tmp_path / "task-1", tmp_path / "task-2"  # two machines, one bucket
    MirroredBlobCache(BlobCache(first, "extraction-v1"), store).put("pdf-sha", b"extracted")
    with MirroredVectorCache(VectorCache(first), store) as cache:
        cache.put_many(NS, ["a", "b"], _vectors(2))
    assert MirroredBlobCache(BlobCache(second, "extraction-v1"), store).get("pdf-sha") == b"extracted"
    assert BlobCache(second, "extraction-v1").get("pdf-sha") == b"extracted", "a hit is kept on the local disk"
    assert MirroredBlobCache(BlobCache(second, "extraction-v2"), store).get("pdf-sha") is None, "other version"
    with MirroredVectorCache(VectorCache(second), store) as cache:
        found = cache.get_many(NS, ["a", "b", "c"], 4)
        assert sorted(found) == ["a", "b"]
        np.testing.assert_array_equal(np.stack([found["a"], found["b"]]), _vectors(2))
        assert cache.get_many("other-model|dims=4", ["a"], 4) == {}, "namespaces never share vectors"
        imported = cache.packs_imported
        cache.get_many(NS, ["c"], 4)
        assert cache.packs_imported == imported, "a pack is downloaded once per disk"


def test_runs_sharing_the_bucket_never_overwrite_each_other(tmp_path: Path, store) -> None:
    for run in range(3):  # three runs embed overlapping chunks: each adds its own immutable pack
        with MirroredVectorCache(VectorCache(tmp_path / f"run-{run}"), store) as cache:
            cache.put_many(NS, [f"k{run}", "shared"], _vectors(2, seed=run))
    packs = list(store.list_keys("processed/_cache/vectors/"))
    assert len(packs) == 3
    with MirroredVectorCache(VectorCache(tmp_path / "reader"), store) as cache:
        found = cache.get_many(NS, ["k0", "k1", "k2", "shared"], 4)
    assert sorted(found) == ["k0", "k1", "k2", "shared"]


def test_bucket_prune_compacts_packs_and_keeps_what_tables_reference(tmp_path: Path, store) -> None:
    blobs = MirroredBlobCache(BlobCache(tmp_path / "a", "extraction-v1"), store)
    blobs.put("pdf-in-use", b"1")
    blobs.put("pdf-gone", b"2")
    for run in range(2):
        with MirroredVectorCache(VectorCache(tmp_path / f"r{run}"), store) as cache:
            cache.put_many(NS, [f"chunk-in-use-{run}", f"chunk-gone-{run}"], _vectors(2, seed=run))
    store.put_bytes(
        "processed/informatika/kelas_10/raw_pdfs.parquet", pd.DataFrame({"sha256": ["pdf-in-use"]}).to_parquet()
    )
    store.put_bytes(
        "processed/informatika/kelas_10/text_chunks.parquet",
        pd.DataFrame({"content_sha256": ["chunk-in-use-0", "chunk-in-use-1"]}).to_parquet(),
    )
    recent = prune_bucket_cache(store, older_than_days=7)
    assert (recent.blobs_removed, recent.vectors_removed) == (0, 0), "entries of the last week are kept"
    result = prune_bucket_cache(store, older_than_days=0)
    assert (result.blobs_removed, result.vectors_removed, result.vectors_kept) == (1, 2, 2)
    assert len(list(store.list_keys("processed/_cache/vectors/"))) == 1, "two packs compacted into one"
    assert len(list(store.list_keys("processed/informatika/"))) == 2, "tables are never touched"
    with MirroredVectorCache(VectorCache(tmp_path / "fresh"), store) as cache:
        assert sorted(cache.get_many(NS, ["chunk-in-use-0", "chunk-in-use-1", "chunk-gone-0"], 4)) == [
            "chunk-in-use-0",
            "chunk-in-use-1",
        ]
    assert MirroredBlobCache(BlobCache(tmp_path / "b", "extraction-v1"), store).get("pdf-gone") is None
    emptied = prune_bucket_cache(store, everything=True)
    assert emptied.bytes_after == 0


def test_prune_drops_chunk_spans_by_age_alone_and_says_so(tmp_path: Path) -> None:
    from nexus_assets.lib.core.caches import prune_data_cache
    from nexus_assets.lib.index.chunking import ChunkingParams, SpanCache

    layout = DataLayout(tmp_path)
    SpanCache.under(layout.cache_dir, "tok").spans("Satu kalimat. " * 200, ChunkingParams(300, 40), None)
    assert prune_data_cache(layout, older_than_days=7).spans_removed == 0, "recently used spans are kept"
    result = prune_data_cache(layout, older_than_days=0)
    assert result.spans_removed == 1 and result.blobs_removed == 0
    assert "removed 0 extraction entries" in result.summary() and "1 chunk-span entries" in result.summary()
