from pathlib import Path

import pytest

from nexus_assets.lib.core.layout import DataLayout, LayoutError, Partition, parse_semver


def test_partition_paths_follow_the_seed_layout(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    part = Partition("informatika", "kelas_10")
    assert layout.raw_dir(part) == tmp_path / "raw-curriculum/informatika/kelas_10"
    assert layout.processed_dir(part) == tmp_path / "processed/informatika/kelas_10"
    assert layout.vkp_path(part, "1.2.0") == tmp_path / "vkp/informatika_kelas_10_v1.2.0.vkp"


@pytest.mark.parametrize("bad", ["Informatika", "kelas 10", "ilmu-komputer", "", "../x", "kelas|10", "ä"])
def test_non_slug_names_are_refused_with_the_name(bad: str) -> None:
    with pytest.raises(LayoutError, match="lowercase slugs"):
        Partition(bad, "kelas_10")
    with pytest.raises(LayoutError, match="grade"):
        Partition("informatika", bad)


def test_discovery_refuses_bad_folders_and_keeps_the_rest(tmp_path: Path) -> None:
    raw = tmp_path / "raw-curriculum"
    (raw / "informatika" / "kelas_10").mkdir(parents=True)
    (raw / "Matematika" / "kelas_10").mkdir(parents=True)
    (raw / "biologi" / "Kelas 11").mkdir(parents=True)
    found, refused = DataLayout(tmp_path).discover_partitions()
    assert found == [Partition("informatika", "kelas_10")]
    assert len(refused) == 2
    assert any("'Matematika'" in r for r in refused)
    assert any("'Kelas 11'" in r and "biologi" in r for r in refused)


def test_published_versions_sort_semantically(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    part = Partition("fisika", "kelas_12")
    layout.vkp_dir.mkdir(parents=True)
    for version in ("1.0.9", "1.0.10", "1.0.2"):
        layout.vkp_path(part, version).write_bytes(b"")
    (layout.vkp_dir / "fisika_kelas_12_vbad.vkp").write_bytes(b"")
    (layout.vkp_dir / "fisika_kelas_1_v9.0.0.vkp").write_bytes(b"")  # another partition
    assert layout.published_versions(part) == ["1.0.2", "1.0.9", "1.0.10"]
    assert parse_semver("1.0.10") == (1, 0, 10)


def test_data_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXUS_DATA_DIR", str(tmp_path / "elsewhere"))
    assert DataLayout.from_env().root == tmp_path / "elsewhere"


def test_partition_keys_read_the_way_people_say_them_and_old_keys_still_read() -> None:
    from nexus_assets.lib.core.layout import partition_label

    assert Partition.from_label("informatika/kelas_10") == Partition("informatika", "kelas_10")
    # runs and job records of the former subject × grade definition: "<grade>|<subject>"
    assert Partition.from_label("kelas_10|informatika") == Partition("informatika", "kelas_10")
    assert partition_label("kelas_10|informatika") == "informatika/kelas_10"
    assert partition_label("not a key") == "not a key" and partition_label("") == ""
    for bad in ("biologi", "a/b/c", "Biologi/kelas_10", "/kelas_10"):
        with pytest.raises(LayoutError, match="invalid"):
            Partition.from_label(bad)


def test_every_build_has_one_job_name_however_it_was_launched() -> None:
    import dagster as dg

    from nexus_assets.build import BUILD_JOB, build_job_name

    from_the_asset_graph = dg.DagsterRun(job_name="__ASSET_JOB", tags={"dagster/partition": "informatika/kelas_10"})
    assert build_job_name(from_the_asset_graph) == BUILD_JOB
    assert build_job_name(dg.DagsterRun(job_name="curriculum_catalog_job")) == "curriculum_catalog_job"
