"""The quality gates through Dagster: partitioned checks, their verdicts and metadata, and blocking.

Fast tests store a partition's asset values (built from the sample PDFs by the pure pipeline
functions) where the IO manager reads them, break one, and run the checks alone, as the UI's
"Execute checks" does. Slow tests run `curriculum_build_job` itself: every check runs on the
partition it builds, warnings do not stop a package, and a failing blocking check leaves the
previous VKP as the latest.
"""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from nexus_assets.cli import main
from nexus_assets.defs.assets import curriculum_assets
from nexus_assets.defs.checks import curriculum_checks
from nexus_assets.defs.curriculum_catalog import curriculum_catalog, curriculum_catalog_job
from nexus_assets.defs.io_managers import ARTIFACT
from nexus_assets.defs.jobs import curriculum_build_job
from nexus_assets.defs.partitions import curriculum_partitions_def, key_of, register_partitions
from nexus_assets.defs.resources import EmbedderResource
from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.core.tables import embeddings_frame, raw_manifest_frame
from nexus_assets.lib.publish import quality
from nexus_assets.lib.publish.vkp import verify_vkp
from nexus_assets.settings import Settings
from nexus_assets_tests.support.dagster_build import local_resources_at
from nexus_assets_tests.support.quality_data import (
    BIO10,
    BIO11,
    MAT10,
    chroma_build,
    golden_rows,
    publish,
    sample_chunks,
    sample_pages,
    tamper,
    unanswerable_rows,
    write_golden,
)

ALL_CHECKS = {
    "text_coverage",
    "chunk_health",
    "duplicate_rate",
    "embedding_sanity",
    "collection_consistency",
    "retrieval_quality",
    "package_integrity",
}
BLOCKING = {"chunk_health", "embedding_sanity", "collection_consistency", "retrieval_quality", "package_integrity"}
CHECK_JOBS = {
    spec.name: dg.define_asset_job(f"check_{spec.name}", selection=dg.AssetSelection.checks(check))
    for check in curriculum_checks
    for spec in check.check_specs
}
RETRIEVAL_OP = "chroma_collection_retrieval_quality"


@pytest.fixture(autouse=True)
def _no_deployment_golden_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their golden questions; a developer's own $NEXUS_GOLDEN_QUESTIONS must not leak in."""
    monkeypatch.delenv(quality.GOLDEN_QUESTIONS_ENV, raising=False)
    monkeypatch.delenv(quality.MIN_RECALL_ENV, raising=False)
    _reload_settings(monkeypatch)


def _reload_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks' settings as a code location loaded with this environment reads them."""
    monkeypatch.setattr("nexus_assets.defs.settings.SETTINGS", Settings.from_env())


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def _defs(data_dir: Path, embedder: EmbedderResource | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=[*curriculum_assets, curriculum_catalog],
        asset_checks=curriculum_checks,
        jobs=[curriculum_build_job, curriculum_catalog_job, *CHECK_JOBS.values()],
        resources=local_resources_at(data_dir, embedder),
        executor=dg.in_process_executor,
    )


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _meta(evaluation: dg.AssetCheckEvaluation) -> dict:
    return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}


def _run_check(
    instance: dg.DagsterInstance, data_dir: Path, part: Partition, name: str, run_config: dict | None = None
) -> dg.AssetCheckEvaluation:
    """Run one check alone on stored values; the run carries the partition's tags, as a UI launch does."""
    register_partitions(instance, [part])
    job = _defs(data_dir).resolve_job_def(f"check_{name}")
    result = job.execute_in_process(
        instance=instance,
        run_config=run_config,
        raise_on_error=False,
        tags=curriculum_partitions_def.get_tags_for_partition_key(key_of(part)),
    )
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.partition == str(key_of(part)), "the verdict belongs to the partition"
    return evaluation


def _build(
    instance: dg.DagsterInstance,
    data_dir: Path,
    part: Partition,
    embedder: EmbedderResource | None = None,
    run_config: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """One run of the real curriculum_build_job for a partition (its checks included)."""
    register_partitions(instance, [part])
    job = _defs(data_dir, embedder).resolve_job_def("curriculum_build_job")
    return job.execute_in_process(
        instance=instance, partition_key=key_of(part), run_config=run_config, raise_on_error=False
    )


def _steps(result: dg.ExecuteInProcessResult, event_type: dg.DagsterEventType) -> set[str]:
    return {e.step_key for e in result.all_events if e.event_type == event_type}


# --- stored partitions: what a build leaves, written without running the assets ---------------------------


def _store(layout: DataLayout, part: Partition, name: str, value: pd.DataFrame | dict) -> None:
    base = layout.processed_dir(part) / name
    base.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(value, pd.DataFrame):
        value.to_parquet(base.with_suffix(".parquet"), index=False)
    else:
        base.with_suffix(".json").write_text(json.dumps(value))


_TABLES: dict[Partition, tuple[pd.DataFrame, pd.DataFrame, np.ndarray]] = {}


def _sample_tables(raw_root: Path, part: Partition, embedder) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Pages, chunks and real MiniLM vectors of a sample partition, computed once per test session."""
    if part not in _TABLES:
        pages = sample_pages(raw_root, part)
        chunks = sample_chunks(pages, part)
        _TABLES[part] = pages, chunks, embedder.embed(chunks["text"].tolist())
    pages, chunks, vectors = _TABLES[part]
    return pages.copy(), chunks.copy(), vectors.copy()


def store_partition(data_dir: Path, part: Partition, embedder) -> dict[str, pd.DataFrame | dict]:
    """Every asset value of a sample partition, stored where LocalPartitionedIOManager loads it."""
    layout = DataLayout(data_dir)
    pages, chunks, vectors = _sample_tables(data_dir / "raw-curriculum", part, embedder)
    embeddings = embeddings_frame(chunks["chunk_id"].tolist(), vectors, embedder.model_id, embedder.dims)
    build = chroma_build(layout, part, chunks, vectors)
    values: dict[str, pd.DataFrame | dict] = {
        "raw_pdfs": raw_manifest_frame(layout.raw_dir(part), layout.root),
        "pdf_text": pages,
        "text_chunks": chunks,
        "chunk_embeddings": embeddings,
        "chroma_collection": {"count": len(chunks), ARTIFACT: str(build)},
        "vkp_package": publish(layout, part, chunks, embeddings, build),
    }
    for name, value in values.items():
        _store(layout, part, name, value)
    return values


# --- registration ---------------------------------------------------------------------------------------------


def test_seven_partitioned_checks_are_registered_and_the_build_job_runs_them() -> None:
    from nexus_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    specs = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert set(specs) == ALL_CHECKS
    assert {name for name, spec in specs.items() if spec.blocking} == BLOCKING
    assert {spec.partitions_def for spec in specs.values()} == {curriculum_partitions_def}
    targets = {name: spec.asset_key.to_user_string() for name, spec in specs.items()}
    assert targets == {
        "text_coverage": "pdf_text",
        "chunk_health": "text_chunks",
        "duplicate_rate": "text_chunks",
        "embedding_sanity": "chunk_embeddings",
        "collection_consistency": "chroma_collection",
        "retrieval_quality": "chroma_collection",
        "package_integrity": "vkp_package",
    }
    nodes = set(defs.resolve_job_def("curriculum_build_job").graph.node_dict)
    assert {f"{asset}_{name}" for name, asset in targets.items()} <= nodes


# --- through Dagster on stored values: good data passes, data built to break each check fails ---------------


def test_every_check_passes_on_a_good_partition_and_explains_its_verdict(
    instance, data_dir: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = store_partition(data_dir, BIO10, embedder)
    golden = write_golden(data_dir / "golden.jsonl", golden_rows(values["pdf_text"], BIO10))
    monkeypatch.setenv(quality.GOLDEN_QUESTIONS_ENV, str(golden))  # configured per deployment
    _reload_settings(monkeypatch)
    verdicts = {name: _run_check(instance, data_dir, BIO10, name) for name in sorted(ALL_CHECKS)}
    for name, evaluation in verdicts.items():
        assert evaluation.passed, (name, _meta(evaluation)["verdict"])
        assert evaluation.description == _meta(evaluation)["verdict"]
        assert evaluation.blocking == (name in BLOCKING)
    assert _meta(verdicts["text_coverage"])["text_coverage"] == 1.0
    health = _meta(verdicts["chunk_health"])
    assert health["chunk_len_min"] <= health["chunk_len_median"] <= health["chunk_len_max"] <= 800
    assert _meta(verdicts["embedding_sanity"])["dims"] == 384
    assert _meta(verdicts["collection_consistency"])["collection_items"] == len(values["text_chunks"])
    assert _meta(verdicts["package_integrity"])["version"] == "1.0.0"
    retrieval = _meta(verdicts["retrieval_quality"])
    assert retrieval["questions"] == 4 and retrieval["recall_at_5"] >= 0.7 and retrieval["applicable"]
    assert "buku_siswa_biologi_kelas_10.pdf" in retrieval["answered_questions"]  # a Markdown table
    # A good partition has nothing to list in most tables (no pages without text, no empty chunks...):
    # those read "none" as plain text, not a "[Show Markdown]" link to an empty list.
    empty = {
        (name, key): value
        for name, evaluation in verdicts.items()
        for key, value in evaluation.metadata.items()
        if isinstance(value, dg.TextMetadataValue) and value.value == "none"
    }
    assert ("text_coverage", "pages_without_text") in empty, sorted(empty)
    markdown = [
        (name, key, value.value)
        for name, evaluation in verdicts.items()
        for key, value in evaluation.metadata.items()
        if isinstance(value, dg.MarkdownMetadataValue)
    ]
    assert markdown and all("|" in text for *_, text in markdown), markdown


def _empty_chunk(values: dict, data_dir: Path, part: Partition) -> None:
    chunks = values["text_chunks"].copy()
    chunks.loc[2, "text"] = ""
    _store(DataLayout(data_dir), part, "text_chunks", chunks)


def _duplicated_file(values: dict, data_dir: Path, part: Partition) -> None:
    pages = values["pdf_text"]
    doubled = pd.concat([pages, pages.assign(file="salinan_buku_biologi.pdf")], ignore_index=True)
    _store(DataLayout(data_dir), part, "text_chunks", sample_chunks(doubled, part))


def _nan_vector(values: dict, data_dir: Path, part: Partition) -> None:
    embeddings = values["chunk_embeddings"].copy()
    vector = np.array(embeddings.loc[4, "embedding"], dtype=np.float32)
    vector[0] = np.nan
    embeddings.at[4, "embedding"] = vector
    _store(DataLayout(data_dir), part, "chunk_embeddings", embeddings)


def _collection_missing_ids(values: dict, data_dir: Path, part: Partition) -> None:
    chunks = values["text_chunks"].iloc[:-3]
    vectors = np.stack(values["chunk_embeddings"]["embedding"].iloc[:-3].to_numpy())
    build = chroma_build(DataLayout(data_dir), part, chunks, vectors)
    _store(DataLayout(data_dir), part, "chroma_collection", {"count": len(chunks), ARTIFACT: str(build)})


def _tampered_vkp(values: dict, data_dir: Path, part: Partition) -> None:
    tamper(Path(values["vkp_package"]["location"]))


def _unanswerable_golden(values: dict, data_dir: Path, part: Partition) -> dict:
    golden = write_golden(data_dir / "golden.jsonl", unanswerable_rows(part))
    return {"ops": {RETRIEVAL_OP: {"config": {"golden_questions": str(golden)}}}}  # from the launchpad


BREAKAGES: list[tuple[str, Partition, Callable, str, str]] = [
    # check, partition, breakage, severity, what the metadata must name
    ("text_coverage", MAT10, lambda *a: None, "WARN", "buku_siswa_matematika_kelas_10.pdf"),  # a real scanned page
    ("chunk_health", BIO10, _empty_chunk, "ERROR", "empty_chunks"),
    ("duplicate_rate", BIO10, _duplicated_file, "WARN", "salinan_buku_biologi.pdf"),
    ("embedding_sanity", BIO10, _nan_vector, "ERROR", "non_finite"),
    ("collection_consistency", BIO10, _collection_missing_ids, "ERROR", "missing_ids"),
    ("package_integrity", BIO10, _tampered_vkp, "ERROR", "sha256 mismatch"),
    ("retrieval_quality", BIO11, _unanswerable_golden, "ERROR", "rusak.pdf"),
]


@pytest.mark.parametrize(("name", "part", "breakage", "severity", "named"), BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_each_check_fails_on_data_built_to_break_it(
    instance, data_dir: Path, embedder, name: str, part: Partition, breakage: Callable, severity: str, named: str
) -> None:
    values = store_partition(data_dir, part, embedder)
    run_config = breakage(values, data_dir, part)
    evaluation = _run_check(instance, data_dir, part, name, run_config)
    meta = _meta(evaluation)
    assert not evaluation.passed, meta["verdict"]
    assert evaluation.severity == getattr(dg.AssetCheckSeverity, severity)
    assert evaluation.blocking == (name in BLOCKING)
    rendered = " ".join(f"{k} {v}" for k, v in meta.items())
    assert named in rendered, f"the metadata names the offending {named}: {meta}"


def test_a_collection_check_reads_the_build_through_its_record(instance, data_dir: Path, embedder) -> None:
    """The check judges the build the chroma_collection record names, not whatever `current` points at."""
    values = store_partition(data_dir, BIO10, embedder)
    good = values["chroma_collection"][ARTIFACT]
    _collection_missing_ids(values, data_dir, BIO10)  # also moves `current` to the short build
    _store(DataLayout(data_dir), BIO10, "chroma_collection", {"count": len(values["text_chunks"]), ARTIFACT: good})
    assert _run_check(instance, data_dir, BIO10, "collection_consistency").passed


# --- through the build job --------------------------------------------------------------------------------------


class _NaNVectors:
    """A broken embedding back end: the real model's vectors with a NaN in each; all else is the real model's."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    @property
    def cache_namespace(self) -> str:  # never share cached vectors with the real model
        return f"{getattr(self._inner, 'cache_namespace', '')}|nan-test"

    def embed(self, texts, *args, **kwargs) -> np.ndarray:
        vectors = np.array(self._inner.embed(texts, *args, **kwargs), dtype=np.float32, copy=True)
        vectors[:, 0] = np.nan
        return vectors


class NaNEmbedderResource(EmbedderResource):
    def get_embedder(self):
        return _NaNVectors(super().get_embedder())


@pytest.mark.slow
def test_a_build_runs_every_check_and_a_tampered_package_fails_the_next_run(
    instance, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    golden = write_golden(
        data_dir / "golden.jsonl", golden_rows(sample_pages(data_dir / "raw-curriculum", BIO10), BIO10)
    )
    monkeypatch.setenv(quality.GOLDEN_QUESTIONS_ENV, str(golden))
    _reload_settings(monkeypatch)
    result = _build(instance, data_dir, BIO10)
    assert result.success
    verdicts = _evaluations(result)
    assert set(verdicts) == ALL_CHECKS
    assert all(e.passed for e in verdicts.values()), {n: _meta(e)["verdict"] for n, e in verdicts.items()}
    assert {e.partition for e in verdicts.values()} == {str(key_of(BIO10))}
    assert _meta(verdicts["retrieval_quality"])["questions"] == 4
    package = data_dir / "vkp/biologi_kelas_10_v1.0.0.vkp"
    assert verify_vkp(package).ok

    tamper(package)  # edited after publication; the content the build makes is unchanged
    again = _build(instance, data_dir, BIO10)
    assert not again.success, "a failing blocking check fails the run (nexus build exits 1)"
    integrity = _evaluations(again)["package_integrity"]
    assert not integrity.passed and "sha256 mismatch" in _meta(integrity)["problems"]
    assert DataLayout(data_dir).published_versions(BIO10) == ["1.0.0"]


@pytest.mark.slow
def test_a_failing_blocking_check_keeps_the_previous_vkp_the_latest(instance, data_dir: Path) -> None:
    assert _build(instance, data_dir, BIO10).success
    layout = DataLayout(data_dir)
    assert layout.published_versions(BIO10) == ["1.0.0"]
    live = (data_dir / "processed/biologi/kelas_10/chroma/current").resolve()

    # New content (a second book) embedded by a broken model: every vector carries a NaN.
    shutil.copy(
        data_dir / "raw-curriculum/biologi/kelas_11/buku_siswa_biologi_kelas_11.pdf",
        data_dir / "raw-curriculum/biologi/kelas_10/tambahan.pdf",
    )
    blocked = _build(instance, data_dir, BIO10, embedder=NaNEmbedderResource())
    assert not blocked.success
    sanity = _evaluations(blocked)["embedding_sanity"]
    assert not sanity.passed and sanity.severity == dg.AssetCheckSeverity.ERROR and sanity.blocking
    assert _meta(sanity)["non_finite"] == _meta(sanity)["vectors"] > 0
    assert "chunk_embeddings_embedding_sanity" in _steps(blocked, dg.DagsterEventType.STEP_FAILURE)
    assert not {"chroma_collection", "vkp_package"} & _steps(blocked, dg.DagsterEventType.STEP_START), "never started"
    assert not blocked.asset_materializations_for_node("vkp_package")
    assert layout.published_versions(BIO10) == ["1.0.0"], "the previous version stays the latest"
    assert (data_dir / "processed/biologi/kelas_10/chroma/current").resolve() == live, "search is untouched too"
    catalog = _catalog(instance, data_dir)
    row = catalog[catalog["subject"] == "biologi"].iloc[0]
    assert (row["checks"], row["failed_checks"], row["vkp_version"]) == ("failed", "embedding_sanity", "1.0.0")
    assert main(["--data-dir", str(data_dir), "report", "--subject", "biologi", "--grade", "kelas_10"]) == 1, (
        "nexus report shows the same blocking failure"
    )

    # The same content with the working model publishes: the check was the only thing in the way.
    fixed = _build(instance, data_dir, BIO10)
    assert fixed.success and layout.published_versions(BIO10) == ["1.0.0", "1.1.0"]  # a file added: minor


@pytest.mark.slow
def test_a_golden_set_the_build_cannot_answer_holds_the_package_back(instance, data_dir: Path) -> None:
    assert _build(instance, data_dir, BIO11).success  # no golden questions yet: not applicable
    layout = DataLayout(data_dir)
    assert layout.published_versions(BIO11) == ["1.0.0"]

    live = data_dir / "processed/biologi/kelas_11/chroma/current"
    served = live.resolve()

    shutil.copy(
        data_dir / "raw-curriculum/biologi/kelas_10/buku_siswa_biologi_kelas_10.pdf",
        data_dir / "raw-curriculum/biologi/kelas_11/tambahan.pdf",
    )
    golden = write_golden(data_dir / "golden.jsonl", unanswerable_rows(BIO11))  # answers are in rusak.pdf
    config = {"ops": {RETRIEVAL_OP: {"config": {"golden_questions": str(golden)}}}}
    blocked = _build(instance, data_dir, BIO11, run_config=config)
    retrieval = _evaluations(blocked)["retrieval_quality"]
    assert not retrieval.passed and _meta(retrieval)["recall_at_5"] == 0.0
    assert "rusak.pdf" in _meta(retrieval)["missed_questions"]
    assert "vkp_package" not in _steps(blocked, dg.DagsterEventType.STEP_START)
    assert layout.published_versions(BIO11) == ["1.0.0"]
    assert live.resolve() == served, "search keeps serving the build of v1.0.0, not the one the check rejected"

    # A deliberate override from the launchpad (threshold 0) lets the same build through.
    config["ops"][RETRIEVAL_OP]["config"]["min_recall"] = 0.0
    overridden = _build(instance, data_dir, BIO11, run_config=config)
    assert overridden.success and layout.published_versions(BIO11) == ["1.0.0", "1.1.0"]  # a file added: minor
    assert live.resolve() != served, "published with the package: search serves the new build"


@pytest.mark.slow
def test_warnings_do_not_stop_a_package(instance, data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    """A scanned page and the same book uploaded twice warn, and the partition still publishes."""
    shutil.copy(
        data_dir / "raw-curriculum/matematika/kelas_10/buku_siswa_matematika_kelas_10.pdf",
        data_dir / "raw-curriculum/matematika/kelas_10/salinan.pdf",
    )
    result = _build(instance, data_dir, MAT10)
    assert result.success
    verdicts = _evaluations(result)
    coverage, duplicates = verdicts["text_coverage"], verdicts["duplicate_rate"]
    assert not coverage.passed and coverage.severity == dg.AssetCheckSeverity.WARN
    assert _meta(coverage)["text_coverage"] == 0.8 and "salinan.pdf" in _meta(coverage)["pages_without_text"]
    assert not duplicates.passed and duplicates.severity == dg.AssetCheckSeverity.WARN
    assert _meta(duplicates)["duplicate_rate"] == 0.5
    assert all(verdicts[name].passed for name in BLOCKING)
    assert DataLayout(data_dir).published_versions(MAT10) == ["1.0.0"]

    catalog = _catalog(instance, data_dir)
    [row] = catalog.to_dict("records")
    assert row == {
        **row,
        "subject": "matematika",
        "grade": "kelas_10",
        "files": 2,
        "pages": 10,
        "chunks": _meta(verdicts["chunk_health"])["chunks"],
        "vkp_version": "1.0.0",
        "checks": "warn",
        "failed_checks": "",
        "warnings": "duplicate_rate, text_coverage",
        "pages_without_text": 2,
    }
    assert row["last_build"].startswith("20")

    # `nexus report`: the same rules on what the build stored, on the terminal.
    assert main(["--data-dir", str(data_dir), "report", "--subject", "matematika", "--grade", "kelas_10"]) == 0
    out = capsys.readouterr().out
    assert "WARN text_coverage (pdf_text): 80.0% of 10 pages have text" in out and "salinan.pdf" in out
    assert "WARN duplicate_rate" in out and "PASS package_integrity" in out
    assert "N/A  retrieval_quality" in out and "0 blocking failure(s)" in out


def _catalog(instance: dg.DagsterInstance, data_dir: Path) -> pd.DataFrame:
    """Materialize curriculum_catalog; it must land in processed/catalog.parquet with a UI table."""
    result = _defs(data_dir).resolve_job_def("curriculum_catalog_job").execute_in_process(instance=instance)
    [materialization] = result.asset_materializations_for_node("curriculum_catalog")
    table = materialization.metadata["catalog"]
    assert isinstance(table, dg.TableMetadataValue)
    assert [c.name for c in table.schema.columns][:2] == ["subject", "grade"]
    assert materialization.metadata["dagster/row_count"].value == len(table.records)
    return pd.read_parquet(data_dir / "processed/catalog.parquet")
