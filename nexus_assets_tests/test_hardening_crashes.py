"""Crashes and races: a run SIGKILLed mid-build, and two runs of one partition at once, lose nothing.

Each killed run is a real `nexus build` process stopped with SIGKILL (its whole process group) at a
named fault point (`nexus_assets/lib/core/fault_points.py`): during the embedding step, after a package is
staged, after it is committed but before the catalog moves. After each kill the previous release must
still be whole: its VKP byte for byte, the catalog pointer, and the Chroma build search serves. The
next ordinary run must then finish the job with no manual cleanup and leave no temporary files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pymupdf
import pytest

from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.index.chroma_store import COMPLETE_MARKER, collection_contents, current_build, query_collection
from nexus_assets.lib.publish.signing import trusted_public_key
from nexus_assets.lib.publish.vkp import read_manifest, verify_vkp
from nexus_assets.lib.publish.vkp_delta import read_tables
from nexus_assets_tests.support import make_aws_env

pytestmark = [pytest.mark.slow]

PART = Partition("matematika", "kelas_11")  # the smallest sample partition: each run takes seconds
KILL_WAIT_S = 300


def write_pdf(path: Path, pages: list[str]) -> Path:
    """A small text PDF (one string per page)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with pymupdf.open() as doc:
        for text in pages:
            doc.new_page().insert_textbox(pymupdf.Rect(50, 50, 545, 790), text, fontsize=11)
        doc.save(path)
    return path


def revision_pdf(path: Path, number: int) -> Path:
    """A new textbook chapter, different per `number`: gives a build real embedding and publishing work."""
    body = (
        f"Bab tambahan {number}. Persamaan kuadrat memiliki bentuk umum ax kuadrat ditambah bx ditambah c "
        f"sama dengan nol. Diskriminan menentukan banyaknya akar real pada revisi ke-{number}. "
    )
    return write_pdf(path, [body * 6, f"Latihan revisi {number}: tentukan akar-akar persamaan berikut. " * 8])


def nexus_cmd(data: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "nexus_assets.cli", "--data-dir", str(data), *args]


def build_args() -> list[str]:
    return ["build", "--subject", PART.subject, "--grade", PART.grade]


def run_nexus(data: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(nexus_cmd(data, *args), env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"nexus {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def build_killed_at(data: Path, env: dict[str, str], point: str, marker: Path) -> str:
    """Start `nexus build`, wait until it reaches `point`, SIGKILL its process group; returns its output."""
    marker.unlink(missing_ok=True)
    log = marker.with_name(f"{marker.name}.{point}.log")
    with log.open("w") as out:  # a file, not a pipe: nobody reads a pipe while the build runs
        proc = subprocess.Popen(
            nexus_cmd(data, *build_args()),
            start_new_session=True,
            text=True,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**env, "NEXUS_FAULT_POINT": point, "NEXUS_FAULT_MARKER": str(marker)},
        )
    deadline = time.monotonic() + KILL_WAIT_S
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(
                f"the build ended (exit {proc.returncode}) before reaching {point}:\n{log.read_text()[-5000:]}"
            )
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"the build did not reach {point} within {KILL_WAIT_S} s:\n{log.read_text()[-5000:]}")
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return log.read_text()


@dataclass(frozen=True)
class Release:
    """What schools and search see of the partition's latest release."""

    version: str
    vkp_sha256: str
    catalog_latest: str
    served_build: str
    served_ids: tuple[str, ...]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def served_ids(data: Path) -> tuple[Path, tuple[str, ...]]:
    build = current_build(DataLayout(data).processed_dir(PART) / "chroma")
    assert build is not None, "search serves no complete Chroma build"
    ids, _, _ = collection_contents(build)
    return build, tuple(sorted(ids))


def local_release(data: Path) -> Release:
    catalog = json.loads((data / "vkp" / "catalog.json").read_text())
    latest = catalog["partitions"][PART.label]["latest"]
    build, ids = served_ids(data)
    return Release(latest, sha256(data / "vkp" / PART.vkp_name(latest)), latest, build.name, ids)


def assert_readable(data: Path, release: Release, package: Path) -> None:
    """The release still works: its package verifies, its collection answers a query with its own ids."""
    key, _ = trusted_public_key(None, data)
    assert key is not None
    report = verify_vkp(package, key)
    assert report.ok, report
    build, ids = served_ids(data)
    assert ids == release.served_ids
    chunks, _ = read_tables(package)
    assert sorted(chunks["chunk_id"]) == list(ids), "search serves exactly the chunks of the latest package"
    hits = query_collection(build, np.ones(384, dtype=np.float32) / np.sqrt(384), k=3)
    assert hits and {h["id"] for h in hits} <= set(ids)


def leftovers(data: Path) -> list[str]:
    """Temporary files and incomplete builds a killed run could leave behind."""
    found = [
        str(p.relative_to(data))
        for p in data.rglob("*")
        if p.name.endswith((".tmp", ".part")) or (p.parent.name == ".staging" and p.is_file())
    ]
    builds = DataLayout(data).processed_dir(PART) / "chroma" / "builds"
    found += [str(b.relative_to(data)) for b in builds.iterdir() if b.is_dir() and not (b / COMPLETE_MARKER).is_file()]
    return found


@pytest.fixture(scope="module")
def local_v1(tmp_path_factory: pytest.TempPathFactory, sample_raw_root: Path) -> Iterator[tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("crash-local")
    data = root / "data"
    shutil.copytree(sample_raw_root / PART.subject / PART.grade, data / PART.raw_prefix())
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env["DAGSTER_HOME"] = str(root / "dagster_home")
    run_nexus(data, env, *build_args())
    yield data, env


@pytest.mark.reliability(
    "crash",
    "SIGKILL during the embedding step, then SIGKILL after a package was staged "
    "and after it was committed (local mode)",
)
def test_killed_runs_leave_the_previous_release_and_the_next_run_completes(
    local_v1, tmp_path: Path, reliability
) -> None:
    data, env = local_v1
    before = local_release(data)
    v1 = data / "vkp" / PART.vkp_name(before.version)
    assert before.version == "1.0.0"
    revision_pdf(data / PART.raw_prefix() / "bab_tambahan.pdf", 1)  # a source added: the next release is 1.1.0
    marker = tmp_path / "reached"
    observed = []
    for point in ("embedding", "publish.staged", "publish.committed"):
        build_killed_at(data, env, point, marker)
        after = local_release(data)
        assert after == before, f"killed at {point}: the release schools and search see changed"
        assert sha256(v1) == before.vkp_sha256
        assert_readable(data, before, v1)
        left = leftovers(data)
        if point == "publish.staged":
            assert any(".staging" in f for f in left), "the run was killed with its packages staged"
        observed.append(
            f"killed at {point}: catalog still v{after.catalog_latest}, v1.0.0 package unchanged and "
            f"verified, search serves its {len(after.served_ids)} chunks ({len(left)} temporary files)"
        )
    # Killed after the commit: v1.1.0 exists but nothing names it yet; the next run must not mint another version.
    assert (data / "vkp" / PART.vkp_name("1.1.0")).is_file()
    run_nexus(data, env, *build_args())
    final = local_release(data)
    assert final.version == final.catalog_latest == "1.1.0"
    assert not (data / "vkp" / PART.vkp_name("1.1.1")).exists() and not (data / "vkp" / PART.vkp_name("1.2.0")).exists()
    package = data / "vkp" / PART.vkp_name("1.1.0")
    assert_readable(data, final, package)
    assert read_manifest(package)["previous_version"] == "1.0.0"
    entry = json.loads((data / "vkp" / "catalog.json").read_text())["partitions"][PART.label]
    assert entry["versions"][0]["delta"] and entry["versions"][0]["delta"]["from"] == "1.0.0", (
        "the delta committed by the killed run is named in the catalog"
    )
    assert leftovers(data) == [], "no temporary file or incomplete build is left"
    assert sha256(v1) == before.vkp_sha256
    reliability("; ".join(observed))
    reliability(
        f"next run: no manual step, catalog -> v{final.version} (not a further version) with the killed "
        f"run's delta from v1.0.0, search serves its {len(final.served_ids)} chunks, 0 temporary files "
        "or incomplete builds left"
    )


@pytest.mark.reliability("concurrency", "two `nexus build` runs of the same partition started together (local mode)")
def test_two_runs_of_one_partition_end_in_one_consistent_release(local_v1, reliability) -> None:
    data, env = local_v1
    before = local_release(data)
    revision_pdf(data / PART.raw_prefix() / "bab_tambahan.pdf", 2)  # changed chunk content: a patch release
    logs = [data.parent / f"concurrent-{n}.log" for n in range(2)]
    procs = []
    for log in logs:
        with log.open("w") as out:
            procs.append(
                subprocess.Popen(
                    nexus_cmd(data, *build_args(), "--force"), env=env, text=True, stdout=out, stderr=subprocess.STDOUT
                )
            )
    codes = [p.wait(timeout=600) for p in procs]
    assert codes == [0, 0], [log.read_text()[-5000:] for log in logs]
    after = local_release(data)
    versions = sorted(p.name for p in (data / "vkp").glob(f"{PART.subject}_{PART.grade}_v*.vkp"))
    expected = {PART.vkp_name(v) for v in ("1.0.0", "1.1.0", before.version)} | {PART.vkp_name(after.version)}
    assert set(versions) == expected, f"exactly one new version for the two runs: {versions}"
    assert after.version != before.version
    package = data / "vkp" / PART.vkp_name(after.version)
    assert_readable(data, after, package)
    assert leftovers(data) == []
    reliability(
        f"both runs exit 0; one new version v{after.version} (not two), catalog -> v{after.version}, "
        f"search serves exactly its {len(after.served_ids)} chunks; 0 temporary files left"
    )


# --- aws mode ------------------------------------------------------------------------------------------


def _s3_release(settings, data: Path) -> tuple[str, str, str]:
    """(catalog.json latest, DynamoDB catalog latest, ETag of that package) in the bucket."""
    s3 = settings.client("s3")
    catalog = json.loads(s3.get_object(Bucket=settings.bucket, Key="vkp/catalog.json")["Body"].read())
    latest = catalog["partitions"][PART.label]["latest"]
    item = settings.client("dynamodb").get_item(
        TableName=settings.records_table, Key={"pk": {"S": "vkp_catalog"}, "sk": {"S": PART.label}}
    )["Item"]
    etag = s3.head_object(Bucket=settings.bucket, Key=PART.vkp_key(latest))["ETag"]
    return latest, json.dumps(item, sort_keys=True, default=str), etag


@pytest.mark.reliability(
    "crash", "SIGKILL during the embedding step and after a package was committed (aws mode, moto S3/DynamoDB)"
)
def test_killed_aws_runs_keep_the_release_and_leave_no_orphans(
    moto_endpoint: str, tmp_path: Path, sample_raw_root: Path, reliability, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nexus_assets.lib.aws.aws_config import AwsSettings

    aws = make_aws_env(moto_endpoint)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")},
        **aws,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    data = tmp_path / "node"
    run_nexus(data, env, "aws", "bootstrap")
    for key, value in aws.items():  # for AwsSettings.from_env below
        monkeypatch.setenv(key, value)
    settings = AwsSettings.from_env(os.environ)
    s3 = settings.client("s3")
    for pdf in sorted((sample_raw_root / PART.subject / PART.grade).glob("*.pdf")):
        s3.upload_file(
            str(pdf), settings.bucket, f"{PART.raw_prefix()}/{pdf.name}", ExtraArgs={"ServerSideEncryption": "AES256"}
        )
    run_nexus(data, env, *build_args())
    before = _s3_release(settings, data)
    assert before[0] == "1.0.0"
    extra = revision_pdf(tmp_path / "bab_tambahan.pdf", 3)
    s3.upload_file(
        str(extra),
        settings.bucket,
        f"{PART.raw_prefix()}/bab_tambahan.pdf",
        ExtraArgs={"ServerSideEncryption": "AES256"},
    )
    observed = []
    for point in ("embedding", "publish.committed"):
        build_killed_at(data, env, point, tmp_path / "reached")
        assert _s3_release(settings, data) == before, f"killed at {point}: the published release changed"
        observed.append(
            f"killed at {point}: catalog.json and the DynamoDB pointer still v{before[0]}, "
            "its package object unchanged (same ETag)"
        )
    run_nexus(data, env, *build_args())
    latest, _, _ = _s3_release(settings, data)
    assert latest == "1.1.0"
    uploads = s3.list_multipart_uploads(Bucket=settings.bucket).get("Uploads", [])
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket)
        for o in page.get("Contents", [])
    ]
    temporary = [k for k in keys if k.endswith((".tmp", ".part")) or "/.staging/" in k or "/." in k]
    packages = sorted(k for k in keys if k.startswith("vkp/") and k.endswith(".vkp"))
    assert uploads == [] and temporary == [], (uploads, temporary)
    assert packages == [PART.vkp_key("1.0.0"), PART.vkp_key("1.1.0")], packages
    assert s3.head_object(Bucket=settings.bucket, Key=PART.vkp_key("1.0.0"))["ETag"] == before[2]
    reliability("; ".join(observed))
    reliability(
        f"next run: catalog -> v{latest}, packages {', '.join(p.split('/')[-1] for p in packages)}; "
        f"{len(uploads)} unfinished multipart uploads and {len(temporary)} temporary objects in the bucket"
    )
