"""The six assets through Dagster's own `materialize()`, partition by partition."""

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from nexus_assets.defs.assets import curriculum_assets
from nexus_assets.defs.partitions import key_of, register_partitions
from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.index.chroma_store import current_build, open_collection
from nexus_assets.lib.publish.vkp import read_manifest, verify_vkp
from nexus_assets_tests.support.dagster_build import local_resources_at

pytestmark = pytest.mark.slow  # each test materializes whole partitions (model included)

INFO10 = Partition("informatika", "kelas_10")
BIO11 = Partition("biologi", "kelas_11")


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def _materialize(instance: dg.DagsterInstance, data_dir: Path, part: Partition, run_config: dict | None = None):
    register_partitions(instance, [part])
    return dg.materialize(
        curriculum_assets,
        partition_key=key_of(part),
        instance=instance,
        resources=local_resources_at(data_dir),
        run_config=run_config,
    )


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [mat] = result.asset_materializations_for_node(asset)
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def test_partition_builds_every_asset_down_to_a_verified_vkp(instance, data_dir: Path) -> None:
    result = _materialize(instance, data_dir, INFO10)
    assert result.success
    processed = data_dir / "processed/informatika/kelas_10"
    for name in ("raw_pdfs", "pdf_text", "text_chunks", "chunk_embeddings"):
        assert (processed / f"{name}.parquet").is_file(), name
    raw = pd.read_parquet(processed / "raw_pdfs.parquet")
    assert list(raw.columns) == ["file", "path", "size", "sha256", "mtime"] and len(raw) == 2
    chunks = pd.read_parquet(processed / "text_chunks.parquet")
    embeddings = pd.read_parquet(processed / "chunk_embeddings.parquet")
    assert len(chunks) == len(embeddings) > 10
    assert set(embeddings["model_id"]) == {"sentence-transformers/all-MiniLM-L6-v2"}
    assert set(embeddings["dims"]) == {384}
    # Chroma holds exactly the chunk ids, with the partition's metadata.
    got = open_collection(current_build(processed / "chroma")).get(include=["metadatas"])
    assert sorted(got["ids"]) == sorted(chunks["chunk_id"])
    assert {m["subject"] for m in got["metadatas"]} == {"informatika"} and {m["grade"] for m in got["metadatas"]} == {
        "kelas_10"
    }
    vkp = data_dir / "vkp/informatika_kelas_10_v1.0.0.vkp"
    assert verify_vkp(vkp).ok
    meta = _metadata(result, "vkp_package")
    assert meta["published"] is True and meta["version"] == "1.0.0"
    assert _metadata(result, "pdf_text")["pages"] == 9
    text_meta = _metadata(result, "text_chunks")
    assert text_meta["chunks"] == len(chunks)
    assert text_meta["chunk_len_min"] <= text_meta["chunk_len_median"] <= text_meta["chunk_len_max"] <= 800
    assert "buku_siswa_informatika_kelas_10.pdf" in text_meta["preview"]


def test_a_broken_file_is_reported_and_the_partition_still_builds(instance, data_dir: Path) -> None:
    result = _materialize(instance, data_dir, BIO11)
    assert result.success
    meta = _metadata(result, "pdf_text")
    assert meta["files"] == 2 and meta["files_failed"] == 1
    failed = [r.data for r in meta["failed_files"].records]
    assert [(f["file"], f["status"]) for f in failed] == [("rusak.pdf", "truncated")]
    manifest = read_manifest(data_dir / "vkp/biologi_kelas_11_v1.0.0.vkp")
    statuses = {s["file"]: s["status"] for s in manifest["sources"]}
    assert statuses["rusak.pdf"] == "truncated"
    assert manifest["counts"]["files"] == 2 and manifest["counts"]["files_ok"] == 1


def test_a_partition_without_pdfs_is_an_explicit_empty_result(instance, data_dir: Path) -> None:
    result = _materialize(instance, data_dir, Partition("informatika", "kelas_12"))
    assert result.success
    assert _metadata(result, "raw_pdfs")["files"] == 0
    meta = _metadata(result, "vkp_package")
    assert meta["published"] is False and "empty" in meta["reason"]
    assert not list((data_dir / "vkp").glob("informatika_kelas_12_*"))


def test_rebuilds_publish_only_changed_content(instance, data_dir: Path) -> None:
    _materialize(instance, data_dir, INFO10)
    again = _materialize(instance, data_dir, INFO10)
    assert _metadata(again, "vkp_package")["published"] is False
    assert _metadata(again, "chroma_collection")["reused"] is True
    assert DataLayout(data_dir).published_versions(INFO10) == ["1.0.0"]

    # One file removed: a new minor version (source files changed), and its chunks leave the collection.
    (data_dir / "raw-curriculum/informatika/kelas_10/modul_ajar_informatika_kelas_10.pdf").unlink()
    changed = _materialize(instance, data_dir, INFO10)
    assert _metadata(changed, "vkp_package")["version"] == "1.1.0"
    assert _metadata(changed, "vkp_package")["bump"] == "minor"
    build = current_build(data_dir / "processed/informatika/kelas_10/chroma")
    files = {m["file"] for m in open_collection(build).get(include=["metadatas"])["metadatas"]}
    assert files == {"buku_siswa_informatika_kelas_10.pdf"}
    assert verify_vkp(data_dir / "vkp/informatika_kelas_10_v1.0.0.vkp").ok, "the old version is untouched"


def test_unchanged_chunks_keep_their_ids_when_a_file_is_added(instance, data_dir: Path) -> None:
    _materialize(instance, data_dir, INFO10)
    before = set(pd.read_parquet(data_dir / "processed/informatika/kelas_10/text_chunks.parquet")["chunk_id"])
    shutil.copy(
        data_dir / "raw-curriculum/informatika/kelas_11/buku_siswa_informatika_kelas_11.pdf",
        data_dir / "raw-curriculum/informatika/kelas_10/tambahan.pdf",
    )
    _materialize(instance, data_dir, INFO10)
    after = set(pd.read_parquet(data_dir / "processed/informatika/kelas_10/text_chunks.parquet")["chunk_id"])
    assert before < after


def test_chunking_is_configurable_from_the_launchpad(instance, data_dir: Path) -> None:
    default = _metadata(_materialize(instance, data_dir, INFO10), "text_chunks")["chunks"]
    config = {"ops": {"text_chunks": {"config": {"chunk_size": 400, "chunk_overlap": 50}}}}
    small = _metadata(_materialize(instance, data_dir, INFO10, config), "text_chunks")
    assert small["chunks"] > default * 1.5 and small["chunk_len_max"] <= 400


def test_table_assets_report_column_schemas_row_counts_and_a_histogram_table(instance, data_dir: Path) -> None:
    result = _materialize(instance, data_dir, INFO10)
    assert result.success
    processed = data_dir / "processed/informatika/kelas_10"
    for asset in ("raw_pdfs", "pdf_text", "text_chunks", "chunk_embeddings"):
        [mat] = result.asset_materializations_for_node(asset)
        schema, rows = mat.metadata["dagster/column_schema"], mat.metadata["dagster/row_count"]
        frame = pd.read_parquet(processed / f"{asset}.parquet")
        assert isinstance(schema, dg.TableSchemaMetadataValue), asset
        assert [c.name for c in schema.schema.columns] == list(frame.columns), asset
        assert all(c.description for c in schema.schema.columns), asset
        assert isinstance(rows, dg.IntMetadataValue) and rows.value == len(frame) > 0, asset
        assert mat.metadata["dagster/partition_row_count"].value == len(frame), asset
    chunks = pd.read_parquet(processed / "text_chunks.parquet")
    [mat] = result.asset_materializations_for_node("text_chunks")
    histogram = mat.metadata["chunk_length_histogram"]
    assert isinstance(histogram, dg.TableMetadataValue)
    assert [c.name for c in histogram.schema.columns] == ["chars_min", "chars_max", "chunks", "percent"]
    bins = [r.data for r in histogram.records]
    assert sum(b["chunks"] for b in bins) == len(chunks)
    assert bins[0]["chars_min"] == chunks["char_len"].min() and bins[-1]["chars_max"] >= chunks["char_len"].max()
    for b in bins:
        assert b["chunks"] == chunks["char_len"].between(b["chars_min"], b["chars_max"]).sum()
    [pdf] = result.asset_materializations_for_node("pdf_text")
    status = pdf.metadata["file_status"]
    assert isinstance(status, dg.TableMetadataValue)
    assert {r.data["file"] for r in status.records} == set(pd.read_parquet(processed / "pdf_text.parquet")["file"])
