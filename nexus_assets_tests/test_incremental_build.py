"""Rebuilds through Dagster reuse the caches, change only what changed, and give the same bytes.

Each test materializes a whole partition (model included), so they are marked slow.
"""

import shutil
from pathlib import Path

import pytest

from nexus_assets.lib.index import chroma_store
from nexus_assets.lib.index.chroma_store import current_build, open_collection
from nexus_assets_tests.support.dagster_build import build_info10, copy_informatika

pytestmark = pytest.mark.slow

EMBEDDINGS = "processed/informatika/kelas_10/chunk_embeddings.parquet"


def test_cached_and_fresh_vectors_are_the_same_bytes(tmp_path: Path, sample_raw_root: Path) -> None:
    uncached, cached = tmp_path / "uncached", tmp_path / "cached"
    for data_dir in (uncached, cached):
        copy_informatika(sample_raw_root, data_dir)
    build_info10(uncached, cache_vectors=False)
    first = build_info10(cached)
    assert first["chunk_embeddings"]["embedded"] == first["text_chunks"]["chunks"]
    # Everything but the caches goes: the next build reads every extraction and vector from them.
    for name in ("processed/informatika", "vkp"):
        shutil.rmtree(cached / name)
    again = build_info10(cached)
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
    copy_informatika(sample_raw_root, data_dir)
    build_info10(data_dir)
    unchanged = build_info10(data_dir)
    assert unchanged["chunk_embeddings"]["embedded"] == 0
    assert unchanged["chroma_collection"]["build_mode"] == "reused"
    assert unchanged["vkp_package"]["published"] is False

    # The module is replaced by another book: its chunks are new, the other file's are cached.
    raw = data_dir / "raw-curriculum/informatika"
    shutil.copy(
        raw / "kelas_11/buku_siswa_informatika_kelas_11.pdf", raw / "kelas_10/modul_ajar_informatika_kelas_10.pdf"
    )
    changed = build_info10(data_dir)
    assert changed["pdf_text"]["files_from_cache"] == 1
    assert 0 < changed["chunk_embeddings"]["embedded"] < changed["text_chunks"]["chunks"]
    assert changed["chroma_collection"]["build_mode"] == "incremental"
    assert changed["vkp_package"]["version"] == "1.0.1"

    # The patched collection holds exactly what a fresh build of the same sources holds.
    fresh_dir = tmp_path / "fresh"
    shutil.copytree(raw, fresh_dir / "raw-curriculum/informatika")
    assert build_info10(fresh_dir)["chroma_collection"]["build_mode"] == "fresh"

    def contents(root: Path) -> dict:
        got = open_collection(current_build(root / "processed/informatika/kelas_10/chroma")).get(
            include=["documents", "metadatas", "embeddings"]
        )
        return {
            cid: (doc, meta, vec.tobytes())
            for cid, doc, meta, vec in zip(
                got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True
            )
        }

    assert contents(data_dir) == contents(fresh_dir)
