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
    assert {p.to_user_string() for p in catalog.parent_keys} == {"pdf_text", "text_chunks", "vkp_package"}
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
    [folders] = partitions
    # One dynamic dimension: a partition per folder, keyed `<subject>/<grade>` (not a subject × grade product).
    assert isinstance(folders, dg.DynamicPartitionsDefinition) and folders.name == "curriculum"


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


def test_the_catalog_refreshes_itself_once_partition_runs_have_updated_it() -> None:
    """Dagster's automation condition, not sensors of ours: evaluated as the daemon would, the catalog is
    requested after a partition's text and package change (even with another registered partition never
    built, which Dagster's plain eager condition would wait for), and not again while nothing changed."""
    from nexus_assets.defs.partitions import key_of, register_partitions
    from nexus_assets.lib.core.layout import Partition

    selection = dg.AssetSelection.assets("curriculum_catalog")
    [sensor] = [s for s in defs.sensors if isinstance(s, dg.AutomationConditionSensorDefinition)]
    assert sensor.asset_selection == selection
    with dg.instance_for_test() as instance:
        built, never = Partition("informatika", "kelas_10"), Partition("biologi", "kelas_11")
        register_partitions(instance, [built, never])

        def evaluate(cursor=None):
            return dg.evaluate_automation_conditions(
                defs=defs, instance=instance, asset_selection=selection, cursor=cursor
            )

        first = evaluate()
        assert first.total_requested == 0  # nothing has changed since the condition started watching
        for asset in ("pdf_text", "text_chunks", "vkp_package"):
            instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=key_of(built)))
        second = evaluate(first.cursor)
        assert second.total_requested == 1
        assert second.get_requested_partitions(dg.AssetKey("curriculum_catalog")) == {None}
        third = evaluate(second.cursor)
        assert third.total_requested == 0  # handled: no second refresh for the same builds


def test_every_asset_has_a_code_version_from_the_code_that_computes_it() -> None:
    """The UI marks partitions stale when the code behind an asset changes (Dagster derives data versions
    from code versions): each stage's version digests its own lib sub-package and the wiring."""
    from nexus_assets.lib.core.build_fingerprint import code_version

    graph = defs.resolve_asset_graph()
    versions = {k.to_user_string(): graph.get(k).code_version for k in graph.get_all_asset_keys()}
    wiring = ("defs", "lib/core")
    assert versions["pdf_text"] == versions["raw_pdfs"] == code_version(*wiring, "lib/ingest")
    assert versions["text_chunks"] == versions["chunk_embeddings"] == code_version(*wiring, "lib/index")
    assert versions["vkp_package"] == versions["curriculum_catalog"]
    assert versions["vkp_package"] == code_version(*wiring, "lib/publish", "lib/distribution")
    assert len({versions["pdf_text"], versions["text_chunks"], versions["vkp_package"]}) == 3
