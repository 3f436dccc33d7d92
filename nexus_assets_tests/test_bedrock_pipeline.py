"""A partition built by the real job with the Bedrock back end (loopback fake), then with Bedrock down."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from nexus_assets.build import run_summary
from nexus_assets.defs.assets import curriculum_assets
from nexus_assets.defs.checks import curriculum_checks
from nexus_assets.defs.jobs import curriculum_build_job
from nexus_assets.defs.partitions import key_of, register_partitions
from nexus_assets.defs.resources import EmbedderResource
from nexus_assets.lib.core.layout import Partition
from nexus_assets.lib.index.bedrock_embedding import DEFAULT_PRICES_PER_1K_TOKENS, TITAN_TEXT_V2
from nexus_assets.lib.index.chroma_store import current_build, read_build_info
from nexus_assets.lib.index.embedding import DEFAULT_MODEL_ID
from nexus_assets.lib.publish.vkp import read_manifest
from nexus_assets_tests.support.dagster_build import local_resources_at

pytestmark = pytest.mark.slow  # two full partition builds, the local model included

INFO10 = Partition("informatika", "kelas_10")


def _run(instance: dg.DagsterInstance, data_dir: Path) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(
        assets=curriculum_assets,
        asset_checks=curriculum_checks,
        jobs=[curriculum_build_job],
        resources=local_resources_at(data_dir, EmbedderResource(backend="bedrock_fallback", bedrock_max_attempts=3)),
        executor=dg.in_process_executor,
    )
    register_partitions(instance, [INFO10])
    return defs.resolve_job_def("curriculum_build_job").execute_in_process(
        instance=instance, partition_key=key_of(INFO10), raise_on_error=False
    )


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [mat] = result.asset_materializations_for_node(asset)
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def _checks_passed(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_bedrock_builds_a_partition_and_an_outage_rebuilds_it_wholly_with_the_local_model(
    data_dir: Path, bedrock_env
) -> None:
    fake = bedrock_env
    fake.throttle_next(2)
    processed = data_dir / "processed/informatika/kelas_10"
    with dg.instance_for_test() as instance:
        first = _run(instance, data_dir)
        assert first.success
        meta = _metadata(first, "chunk_embeddings")
        chunks = pd.read_parquet(processed / "text_chunks.parquet")
        assert (meta["backend"], meta["model_id"], meta["dims"], meta["fallback"]) == (
            "bedrock",
            TITAN_TEXT_V2,
            1024,
            False,
        )
        assert meta["requests"] == len(chunks) == len(fake.requests) and meta["retries"] == fake.throttled == 2
        assert meta["input_tokens"] == fake.tokens_reported > 0
        price = DEFAULT_PRICES_PER_1K_TOKENS[TITAN_TEXT_V2]
        assert meta["estimated_cost_usd"] == pytest.approx(fake.tokens_reported / 1000 * price, abs=1e-8)
        assert all(v is True for v in _checks_passed(first).values()), _checks_passed(first)
        titan_collection = read_build_info(current_build(processed / "chroma"))
        assert (titan_collection["model_id"], titan_collection["dims"]) == (TITAN_TEXT_V2, 1024)
        v1 = read_manifest(data_dir / "vkp/informatika_kelas_10_v1.0.0.vkp")
        assert v1["embedding"] == {"model_id": TITAN_TEXT_V2, "dims": 1024}
        record = run_summary(instance, first.run_id).job_record()
        assert (record.embedding_model, record.input_tokens, record.embedding_fallback) == (
            TITAN_TEXT_V2,
            fake.tokens_reported,
            "",
        )
        assert record.estimated_cost == pytest.approx(meta["estimated_cost_usd"])

        # A new file's chunks are not in the cache, and Bedrock is now unreachable (connections refused):
        # the partition cannot be finished with Titan, so ALL of it, cached Titan chunks included, goes local.
        shutil.copy(
            data_dir / "raw-curriculum/biologi/kelas_10/buku_siswa_biologi_kelas_10.pdf",
            data_dir / "raw-curriculum/informatika/kelas_10/tambahan.pdf",
        )
        fake.stop()
        second = _run(instance, data_dir)
        assert second.success
        meta = _metadata(second, "chunk_embeddings")
        assert (meta["backend"], meta["model_id"], meta["dims"], meta["fallback"]) == (
            "local",
            DEFAULT_MODEL_ID,
            384,
            True,
        )
        assert "bedrock" in meta["fallback_reason"] and fake.endpoint_url in meta["fallback_reason"]
        assert (meta["input_tokens"], meta["estimated_cost_usd"]) == (0, 0.0)
        vectors = pd.read_parquet(processed / "chunk_embeddings.parquet")
        chunks = pd.read_parquet(processed / "text_chunks.parquet")
        assert set(vectors["model_id"]) == {DEFAULT_MODEL_ID} and len(vectors) == len(chunks), "no mix of models"
        assert meta["embedded"] == len(chunks) and meta["from_cache"] == 0
        assert instance.get_run_by_id(second.run_id).tags["nexus/embedding_fallback"] == DEFAULT_MODEL_ID
        assert all(v is True for v in _checks_passed(second).values()), _checks_passed(second)
        local_collection = read_build_info(current_build(processed / "chroma"))
        assert local_collection["model_id"] == DEFAULT_MODEL_ID
        assert local_collection["name"] != titan_collection["name"]
        v2 = read_manifest(data_dir / "vkp/informatika_kelas_10_v2.0.0.vkp")
        assert v2["embedding"] == {"model_id": DEFAULT_MODEL_ID, "dims": 384}
        record = run_summary(instance, second.run_id).job_record()
        assert record.embedding_model == DEFAULT_MODEL_ID and "unavailable" in record.embedding_fallback
        assert record.status == "completed"
