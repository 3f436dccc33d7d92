"""The code location loads, and its lineage reads like the architecture."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from nexus_assets.definitions import defs

ROOT = Path(__file__).resolve().parents[1]
CHAIN = ["raw_pdfs", "pdf_text", "text_chunks", "chunk_embeddings", "chroma_collection", "vkp_package"]


def test_six_partitioned_assets_form_the_chain() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {*CHAIN, "curriculum_catalog"}
    catalog = graph.get(dg.AssetKey("curriculum_catalog"))
    assert catalog.partitions_def is None and catalog.group_name == "publish"
    assert {p.to_user_string() for p in catalog.parent_keys} == {"vkp_package"}
    kinds = {k: graph.get(dg.AssetKey(k)).kinds for k in CHAIN}
    assert {"pdf"} <= kinds["raw_pdfs"] and {"pymupdf", "tesseract"} <= kinds["pdf_text"]
    assert "chromadb" in kinds["chroma_collection"] and "zip" in kinds["vkp_package"]
    for upstream, downstream in zip(CHAIN, CHAIN[1:], strict=False):
        parents = {p.to_user_string() for p in graph.get(dg.AssetKey(downstream)).parent_keys}
        assert upstream in parents, f"{downstream} depends on {upstream}"
    groups = {graph.get(dg.AssetKey(k)).group_name for k in CHAIN}
    assert groups == {"ingest", "index", "publish"}
    partitions = {graph.get(dg.AssetKey(k)).partitions_def for k in CHAIN}
    assert len(partitions) == 1
    [multi] = partitions
    assert isinstance(multi, dg.MultiPartitionsDefinition)
    assert sorted(d.name for d in multi.partitions_defs) == ["grade", "subject"]


def test_build_job_covers_the_chain() -> None:
    job = defs.resolve_job_def("curriculum_build_job")
    # The asset checks run in the same run as the assets they judge (blocking ones gate vkp_package).
    checks = {f"{k.asset_key.to_python_identifier()}_{k.name}" for k in defs.resolve_asset_graph().asset_check_keys}
    assert {n for n in job.graph.node_dict} == set(CHAIN) | checks and len(checks) == 7
    assert job.executor_def.name == "in_process"


def test_dagster_cli_validates_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "success" in (proc.stdout + proc.stderr).lower()


def test_partition_runs_refresh_the_catalog() -> None:
    """Successful and failed partition runs both change the catalog (versions, gate status): both refresh it."""
    sensors = {s.name: s for s in defs.sensors if s.name.startswith("curriculum_catalog_after_")}
    assert set(sensors) == {"curriculum_catalog_after_success_sensor", "curriculum_catalog_after_failure_sensor"}
    for sensor in sensors.values():
        assert sensor.job_name == "curriculum_catalog_job"
    job = defs.resolve_job_def("curriculum_catalog_job")
    assert {n for n in job.graph.node_dict} == {"curriculum_catalog"}
