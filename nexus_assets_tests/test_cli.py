"""The `nexus` command line, end to end on generated sample data through a real Dagster instance."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.cli import main
from nexus_assets.lib.ingest.sample_data import SAMPLE_PARTITIONS
from nexus_assets.lib.publish.vkp import verify_vkp
from nexus_assets_tests.support.cli_json import check_document

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Sample data generated and built once through `nexus build` (data dir, DAGSTER_HOME)."""
    root = tmp_path_factory.mktemp("cli")
    data, home = root / "data", root / "dagster_home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        assert main(["--data-dir", str(data), "sample-data"]) == 0
        assert main(["--data-dir", str(data), "build"]) == 0
    return data, home


def test_build_publishes_one_verified_vkp_per_sample_partition(built: tuple[Path, Path], capsys) -> None:
    data, _ = built
    packages = sorted((data / "vkp").glob("*.vkp"))
    assert [p.name for p in packages] == sorted(f"{s}_{g}_v1.0.0.vkp" for s, g in SAMPLE_PARTITIONS)
    # The data directory's development key signed them (no key configured): verify trusts it, saying so.
    assert main(["--data-dir", str(data), "vkp", "verify", *map(str, packages)]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("OK ") == captured.out.count("signature valid") == len(packages)
    assert "DEVELOPMENT public key" in captured.err
    assert main(["--data-dir", str(data / "elsewhere"), "vkp", "verify", str(packages[0])]) == 2, "no trusted key"


def test_runs_are_recorded_in_the_instance(built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _, home = built
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="curriculum_build_job"))
        assert len(runs) >= len(SAMPLE_PARTITIONS)
        assert {r.tags["dagster/partition"] for r in runs} == {f"{s}/{g}" for s, g in SAMPLE_PARTITIONS}
        assert (home / "dagster.yaml").exists()


def test_second_build_creates_no_new_version(built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    data, home = built
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    before = sorted(p.name for p in (data / "vkp").iterdir())
    with dg.DagsterInstance.get() as instance:
        runs_before = len(instance.get_runs(filters=dg.RunsFilter(job_name="curriculum_build_job")))
    # Nothing changed since the fixture's build: nothing runs, not even Dagster.
    assert main(["--data-dir", str(data), "build", "--subject", "informatika"]) == 0
    assert capsys.readouterr().err.count(": up to date") == 2
    # -q: the same result table on stdout, and no notes at all.
    assert main(["--data-dir", str(data), "build", "--subject", "informatika", "-q"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == "" and quiet.out.count("up to date") == 2 and "==" not in quiet.out
    with dg.DagsterInstance.get() as instance:
        assert len(instance.get_runs(filters=dg.RunsFilter(job_name="curriculum_build_job"))) == runs_before
    # --force runs Dagster; every step finds its inputs unchanged and no package version is made.
    assert main(["--data-dir", str(data), "build", "--subject", "informatika", "--force"]) == 0
    assert capsys.readouterr().out.count("(unchanged)") == 2
    assert sorted(p.name for p in (data / "vkp").iterdir()) == before


def test_search_prints_json_hits(built: tuple[Path, Path], capsys) -> None:
    data, _ = built
    code = main(
        [
            "--data-dir",
            str(data),
            "search",
            "hewan endemik komodo dan anoa",
            "--subject",
            "biologi",
            "--grade",
            "kelas_10",
            "-k",
            "3",
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)  # one document (it was one line per hit before `nexus` 0.1 on click)
    assert doc["schema"] == "nexus.search/1" and doc["partition"] == "biologi/kelas_10" and doc["k"] == 3
    hits = doc["hits"]
    assert len(hits) == 3 and [h["rank"] for h in hits] == [1, 2, 3]
    assert all({"file", "page", "score", "text"} <= set(h) for h in hits)
    assert hits[0]["file"] == "buku_siswa_biologi_kelas_10.pdf"
    assert "komodo" in " ".join(h["text"].lower() for h in hits)


def test_search_of_an_unbuilt_partition_says_what_to_do(built: tuple[Path, Path], capsys) -> None:
    data, _ = built
    assert main(["--data-dir", str(data), "search", "x", "--subject", "sejarah", "--grade", "kelas_10"]) == 1
    assert "nexus build --subject sejarah --grade kelas_10" in capsys.readouterr().err


def test_verify_fails_on_a_tampered_package(built: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    data, _ = built
    source = data / "vkp/matematika_kelas_10_v1.0.0.vkp"
    tampered = tmp_path / source.name
    raw = bytearray(source.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    tampered.write_bytes(bytes(raw))
    assert main(["--data-dir", str(data), "vkp", "verify", str(tampered)]) == 1
    assert "FAILED" in capsys.readouterr().err
    assert not verify_vkp(tampered).ok


def test_bad_slugs_are_refused_by_name(tmp_path: Path, capsys) -> None:
    assert main(["--data-dir", str(tmp_path), "build", "--subject", "Ilmu Komputer"]) == 2
    assert "'Ilmu Komputer'" in capsys.readouterr().err


def test_jobs_lists_every_cli_run_with_a_summary(built: tuple[Path, Path], capsys) -> None:
    data, _ = built
    assert main(["--data-dir", str(data), "jobs", "--days", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("completed") + out.count("partial") >= len(SAMPLE_PARTITIONS)
    assert "partial" in out, "biologi/kelas_11 has a broken file: its run is partial, not completed"
    assert "estimated cost $" in out


def test_cache_prune_keeps_what_the_built_partitions_need(built: tuple[Path, Path], capsys) -> None:
    data, _ = built
    assert main(["--data-dir", str(data), "cache", "prune", "--older-than-days", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"local {data / 'processed' / '_cache'}: removed 0 extraction entries")
    assert "and 0 vectors" in out, "every entry is referenced by a built partition's tables"
    assert list((data / "processed" / "_cache").rglob("*.sqlite3")), "the cache itself is still there"


def test_every_reporting_command_answers_json_with_its_documented_keys(
    built: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    data, _ = built

    def document(args: list[str], schema: str, codes: tuple[int, ...] = (0,)) -> dict:
        assert main(args) in codes
        return check_document(capsys.readouterr().out, schema)

    where = ["--data-dir", str(data)]
    build = document([*where, "build", "--json"], "nexus.build/1")
    assert build["ok"] and len(build["partitions"]) == len(SAMPLE_PARTITIONS)
    assert {p["status"] for p in build["partitions"]} == {"up to date"}, "nothing changed since the fixture's build"
    report = document([*where, "report", "--subject", "matematika", "--json"], "nexus.report/1", (0, 1))
    assert [p["partition"] for p in report["partitions"]] == ["matematika/kelas_10", "matematika/kelas_11"]
    assert {"name", "asset", "verdict", "passed", "severity", "summary", "figures"} <= set(
        report["partitions"][0]["checks"][0]
    )
    packages = sorted(str(p) for p in (data / "vkp").glob("*.vkp"))
    verify = document(["vkp", "verify", *packages, *where, "--json"], "nexus.vkp.verify/1")
    assert verify["ok"] and all(p["signature"] == "valid" for p in verify["packages"])
    assert verify["trusted_key"].startswith("DEVELOPMENT")
    catalog = str(data / "vkp" / "catalog.json")
    pull = document(
        ["vkp", "pull", "--catalog", catalog, "--dest", str(tmp_path / "school"), *where, "--json"], "nexus.vkp.pull/1"
    )
    assert pull["ok"] and {p["via"] for p in pull["partitions"]} == {"full"}
    assert all(p["to"] == "1.0.0" and p["downloaded_bytes"] > 0 for p in pull["partitions"])
    again = document(
        ["vkp", "pull", "--catalog", catalog, "--dest", str(tmp_path / "school"), *where, "--json"], "nexus.vkp.pull/1"
    )
    assert {p["via"] for p in again["partitions"]} == {"up to date"}
    signed = document(["vkp", "catalog", *where, "--json"], "nexus.vkp.catalog/1")
    assert len(signed["partitions"]) == len(SAMPLE_PARTITIONS)


def test_a_build_in_a_pipe_prints_plain_progress_and_one_json_document(built: tuple[Path, Path]) -> None:
    """End to end in a subprocess (stderr is not a terminal): progress lines on stderr, no Dagster log
    formatting, and stdout holds only the JSON document."""
    data, home = built
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nexus_assets.cli",
            "build",
            "--subject",
            "informatika",
            "--grade",
            "kelas_10",
            "--force",
            "--data-dir",
            str(data),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = check_document(proc.stdout, "nexus.build/1")
    [part] = doc["partitions"]
    assert part["partition"] == "informatika/kelas_10" and part["status"] == "completed"
    assert part["files"] == 2 and part["chunks"] > 0 and part["vkp_version"] == "1.0.0" and not part["published"]
    assert "[1/1] informatika/kelas_10: step 1/" in proc.stderr
    assert "[1/1] informatika/kelas_10: completed in" in proc.stderr
    assert " - dagster - " not in proc.stderr, "Dagster's console logger is replaced by the progress display"
