"""Rebuilds through Dagster reuse the caches, change only what changed, and give the same bytes.

Each test materializes a whole partition (model included), so they are marked slow.
"""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.defs.assets import curriculum_assets
from nexus_assets.defs.io_managers import RECORD_IO_MANAGER, LocalPartitionedIOManager
from nexus_assets.defs.partitions import key_of, register_partitions
from nexus_assets.defs.resources import ChromaResource, DataDirResource, EmbedderResource
from nexus_assets.lib import chroma_store
from nexus_assets.lib.chroma_store import current_build, open_collection
from nexus_assets.lib.layout import Partition

pytestmark = pytest.mark.slow

INFO10 = Partition("informatika", "kelas_10")
EMBEDDINGS = "processed/informatika/kelas_10/chunk_embeddings.parquet"


def _build(data_dir: Path, cache_vectors: bool = True) -> dict[str, dict]:
    """Materialize INFO10 in `data_dir`; the metadata of every asset, by asset name."""
    with dg.instance_for_test() as instance:
        register_partitions(instance, [INFO10])
        result = dg.materialize(
            curriculum_assets, partition_key=key_of(INFO10), instance=instance,
            resources={
                "data_dir": DataDirResource(data_dir=str(data_dir)),
                "embedder": EmbedderResource(cache_vectors=cache_vectors),
                "chroma": ChromaResource(),
                "io_manager": LocalPartitionedIOManager(data_dir=str(data_dir)),
                RECORD_IO_MANAGER: LocalPartitionedIOManager(data_dir=str(data_dir)),
            },
        )
        assert result.success
        return {
            mat.asset_key.path[-1]: {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
            for mat in (e.materialization for e in result.get_asset_materialization_events())
        }


def _copy_raw(sample_raw_root: Path, data_dir: Path) -> None:
    shutil.copytree(sample_raw_root / "informatika", data_dir / "raw-curriculum" / "informatika")


def test_cached_and_fresh_vectors_are_the_same_bytes(tmp_path: Path, sample_raw_root: Path) -> None:
    uncached, cached = tmp_path / "uncached", tmp_path / "cached"
    for data_dir in (uncached, cached):
        _copy_raw(sample_raw_root, data_dir)
    _build(uncached, cache_vectors=False)
    first = _build(cached)
    assert first["chunk_embeddings"]["embedded"] == first["text_chunks"]["chunks"]
    # Everything but the caches goes: the next build reads every extraction and vector from them.
    for name in ("processed/informatika", "vkp"):
        shutil.rmtree(cached / name)
    again = _build(cached)
    assert again["pdf_text"]["files_from_cache"] == 2
    assert again["chunk_embeddings"]["embedded"] == 0
    assert again["chunk_embeddings"]["from_cache"] == first["text_chunks"]["chunks"]
    assert (uncached / EMBEDDINGS).read_bytes() == (cached / EMBEDDINGS).read_bytes()


def test_a_changed_file_is_the_only_work_of_a_rebuild(
    tmp_path: Path, sample_raw_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sample partition is two small files: one replaced is half the collection, which would
    # normally earn a fresh build (test_chroma_store checks that rule); here the copy path is wanted.
    monkeypatch.setattr(chroma_store, "INCREMENTAL_MAX_CHURN", 1.0)
    data_dir = tmp_path / "data"
    _copy_raw(sample_raw_root, data_dir)
    _build(data_dir)
    unchanged = _build(data_dir)
    assert unchanged["chunk_embeddings"]["embedded"] == 0
    assert unchanged["chroma_collection"]["build_mode"] == "reused"
    assert unchanged["vkp_package"]["published"] is False

    # The module is replaced by another book: its chunks are new, the other file's are cached.
    raw = data_dir / "raw-curriculum/informatika"
    shutil.copy(raw / "kelas_11/buku_siswa_informatika_kelas_11.pdf",
                raw / "kelas_10/modul_ajar_informatika_kelas_10.pdf")
    changed = _build(data_dir)
    assert changed["pdf_text"]["files_from_cache"] == 1
    assert 0 < changed["chunk_embeddings"]["embedded"] < changed["text_chunks"]["chunks"]
    assert changed["chroma_collection"]["build_mode"] == "incremental"
    assert changed["vkp_package"]["version"] == "1.0.1"

    # The patched collection holds exactly what a fresh build of the same sources holds.
    fresh_dir = tmp_path / "fresh"
    shutil.copytree(raw, fresh_dir / "raw-curriculum/informatika")
    assert _build(fresh_dir)["chroma_collection"]["build_mode"] == "fresh"

    def contents(root: Path) -> dict:
        got = open_collection(current_build(root / "processed/informatika/kelas_10/chroma")).get(
            include=["documents", "metadatas", "embeddings"])
        return {cid: (doc, meta, vec.tobytes()) for cid, doc, meta, vec in
                zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True)}

    assert contents(data_dir) == contents(fresh_dir)
