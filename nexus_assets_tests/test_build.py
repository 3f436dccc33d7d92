"""`nexus_assets.build`: the one path around a partition run, tested without the CLI on top."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.build import CLI_TAG, BuildRefused, plan, record_sensed_run, run_summary
from nexus_assets.lib.core.build_fingerprint import record_build
from nexus_assets.lib.core.job_tracking import SqliteJobStore
from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.settings import Settings
from nexus_assets_tests.support.dagster_build import INFO10, copy_informatika, materialize_info10

LOCAL = Settings.from_env({})  # the local default, whatever this shell exports


def test_plan_picks_partitions_with_pdfs_and_writes_nothing(tmp_path: Path, sample_raw_root: Path) -> None:
    data = tmp_path / "data"
    copy_informatika(sample_raw_root, data)
    (data / "raw-curriculum" / "biologi" / "kelas_10").mkdir(parents=True)  # a folder without PDFs
    layout = DataLayout(data)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))

    build = plan(layout, LOCAL)
    assert build.targets == [Partition("informatika", "kelas_10"), Partition("informatika", "kelas_11")]
    assert build.current == [] and set(build.fingerprints) == set(build.targets)
    assert [s["partition"] for s in build.skipped] == ["biologi/kelas_10"]
    assert "no PDFs" in build.skipped[0]["reason"]
    with pytest.raises(BuildRefused, match=r"biologi/kelas_10: no PDFs in .*nothing was registered or built"):
        plan(layout, LOCAL, "biologi", "kelas_10")
    with pytest.raises(BuildRefused, match=r"did you mean 'informatika'"):
        plan(layout, LOCAL, "informatica")
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # planning wrote nothing

    # A partition whose last successful build had the same fingerprint is current, unless forced.
    (layout.processed_dir(INFO10)).mkdir(parents=True)
    (layout.processed_dir(INFO10) / "text_chunks.parquet").write_bytes(b"x")
    record_build(layout, INFO10, build.fingerprints[INFO10], "run-1")
    again = plan(layout, LOCAL, "informatika")
    assert again.current == [INFO10] and again.targets == [Partition("informatika", "kelas_11")]
    assert plan(layout, LOCAL, "informatika", force=True).targets == build.targets
    shutil.copy(next(layout.raw_dir(INFO10).glob("*.pdf")), layout.raw_dir(INFO10) / "revised.pdf")
    assert INFO10 in plan(layout, LOCAL, "informatika").targets  # a new PDF: no longer current


@pytest.mark.slow
def test_one_reader_gives_the_cli_the_job_table_and_the_sensors_the_same_run(
    tmp_path: Path, sample_raw_root: Path
) -> None:
    from nexus_assets.defs.partitions import key_of

    data = tmp_path / "data"
    copy_informatika(sample_raw_root, data)
    with dg.instance_for_test() as instance:
        result = materialize_info10(instance, data)
        metadata = {
            e.asset_key.path[-1]: {k: getattr(v, "value", v) for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()
        }
        summary = run_summary(instance, result.run_id)
        figures = summary.record
        assert figures.status == "completed" and figures.errors == [] and figures.completed_at
        assert figures.partition == str(key_of(INFO10)) and figures.job_id == result.run_id
        assert (figures.total_files, summary.pages, figures.total_chunks) == (
            metadata["pdf_text"]["files"],
            metadata["pdf_text"]["pages"],
            metadata["text_chunks"]["chunks"],
        )
        assert figures.total_chunks > 0 and figures.total_embeddings == metadata["chunk_embeddings"]["embeddings"]
        assert (summary.vkp_version, summary.published) == ("1.0.0", True)
        assert run_summary(instance, result.run_id, finished=False).status == "running"

        # The run status sensors record a run the daemon launched, from the same summary ...
        jobs = SqliteJobStore(tmp_path / "jobs.sqlite")
        record = record_sensed_run(instance, result.run_id, jobs, finished=True)
        assert record is not None
        [stored] = jobs.recent(days=1)
        assert (stored.job_id, stored.status, stored.total_chunks) == (result.run_id, "completed", figures.total_chunks)
        assert stored.timestamp == figures.timestamp and stored.completed_at
        # The started sensor may see a short run only once it has ended: it records the end, not "running".
        late_start = record_sensed_run(instance, result.run_id, SqliteJobStore(tmp_path / "late.sqlite"), False)
        assert late_start is not None and (late_start.status, late_start.total_chunks) == (
            "completed",
            figures.total_chunks,
        )
        assert summary.job_record("2026-01-01T00:00:00.000+00:00").timestamp == "2026-01-01T00:00:00.000+00:00"
        # ... and leave the runs of `nexus build` to it (it records them around the run).
        instance.add_run_tags(result.run_id, {CLI_TAG: "cli"})
        assert record_sensed_run(instance, result.run_id, jobs, finished=True) is None


@pytest.mark.reliability(
    "bad input", "explicit builds of ilmu/komputer_kelas_10 and ilmu_komputer/kelas_10 (same package names)"
)
def test_an_explicit_build_of_an_ambiguous_pair_is_refused(tmp_path: Path, sample_raw_root: Path, reliability) -> None:
    data = tmp_path / "data"
    pdf = next(sample_raw_root.rglob("*.pdf"))
    for subject, grade in [("ilmu", "komputer_kelas_10"), ("ilmu_komputer", "kelas_10")]:
        folder = data / "raw-curriculum" / subject / grade
        folder.mkdir(parents=True)
        shutil.copy(pdf, folder / pdf.name)
    layout = DataLayout(data)
    for subject, grade in [("ilmu", "komputer_kelas_10"), ("ilmu_komputer", "kelas_10")]:
        with pytest.raises(BuildRefused, match=r"would publish the same package names.*nothing was registered") as why:
            plan(layout, LOCAL, subject, grade)
    reliability(f'refused before anything is registered: "{str(why.value)[:110]}"')
