"""The whole pipeline in aws mode against moto's S3/DynamoDB server, through the `nexus` CLI."""

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pandas as pd
import pytest

from nexus_assets.lib.aws.aws_config import AwsSettings
from nexus_assets_tests.support import make_aws_env

pytestmark = pytest.mark.slow


def nexus(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "nexus_assets.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"nexus {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def aws_build(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """Bootstrap, upload the sample PDFs to the bucket, build the informatika partitions (once per module;
    no test changes what another reads: the failure test points its run at a records table that does not exist)."""
    tmp_path = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in make_aws_env(moto_endpoint).items():
            mp.setenv(key, value)
        mp.delenv("NEXUS_DATA_DIR", raising=False)
        env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
        data = tmp_path / "work"
        nexus("aws", "bootstrap", env=env)
        uploaded = nexus("--data-dir", str(data), "sample-data", env=env).stdout
        assert "uploaded s3://" in uploaded
        nexus("--data-dir", str(data / "node-a"), "build", "--subject", "informatika", env=env)
        settings = AwsSettings.from_env(os.environ)
        # The bucket's keys and the job records right after this first build (the other tests' runs add
        # objects and records): what test_the_pipeline_lands_in_s3_and_dynamodb checks, in any order.
        first = {
            "keys": {o["Key"] for o in settings.object_store().list_keys("")},
            "jobs": settings.job_store().recent(days=1),
        }
        yield env, settings, data, first


def _item(settings: AwsSettings, asset: str, partition: str) -> dict:
    response = settings.client("dynamodb").get_item(
        TableName=settings.records_table, Key={"pk": {"S": asset}, "sk": {"S": partition}}
    )
    return response.get("Item", {})


def test_the_pipeline_lands_in_s3_and_dynamodb(aws_build) -> None:
    env, settings, data, first = aws_build
    keys = first["keys"]
    s3 = settings.client("s3")
    for grade in ("kelas_10", "kelas_11"):
        prefix = f"processed/informatika/{grade}"
        for table in ("pdf_text", "text_chunks", "chunk_embeddings"):
            key = f"{prefix}/{table}.parquet"
            assert key in keys, key
            head = s3.head_object(Bucket=settings.bucket, Key=key)
            assert head["ServerSideEncryption"] == "AES256" and head["StorageClass"] == "STANDARD_IA"
        archives = [k for k in keys if k.startswith(f"{prefix}/chroma/builds/") and k.endswith(".tar.gz")]
        assert len(archives) == 1
        assert s3.head_object(Bucket=settings.bucket, Key=archives[0])["ServerSideEncryption"] == "AES256"
        vkp = f"vkp/informatika_{grade}_v1.0.0.vkp"
        assert vkp in keys
        assert s3.head_object(Bucket=settings.bucket, Key=vkp)["ServerSideEncryption"] == "AES256"
        for asset in ("raw_pdfs", "chroma_collection", "vkp_package"):
            assert _item(settings, asset, f"informatika/{grade}"), (asset, grade)
    assert not any(k.startswith("processed/matematika") for k in keys), "only the chosen subject was built"
    assert any(k.startswith("processed/_cache/blobs/extraction-") for k in keys), "extractions shared in the bucket"
    assert any(k.startswith("processed/_cache/vectors/") for k in keys), "vectors shared in the bucket"
    # Parquet round-trips and agrees with the packaged counts.
    chunks = pd.read_parquet(
        io.BytesIO(settings.object_store().get_bytes("processed/informatika/kelas_10/text_chunks.parquet"))
    )
    assert list(chunks.columns)[:2] == ["chunk_id", "file"] and len(chunks) > 10
    entry = _item(settings, "vkp_package", "informatika/kelas_10")
    assert "informatika_kelas_10_v1.0.0.vkp" in entry["value"]["S"]
    # The package downloaded from S3 verifies.
    target = Path(env["DAGSTER_HOME"]).parent / "downloaded" / "informatika_kelas_10_v1.0.0.vkp"
    settings.object_store().download_file("vkp/informatika_kelas_10_v1.0.0.vkp", target)
    # node-a signed it with its development key (no key configured): name that data dir to trust it.
    assert nexus("--data-dir", str(data / "node-a"), "vkp", "verify", str(target), env=env).returncode == 0
    # The catalog: one DynamoDB pointer per partition, and vkp/catalog.json generated from them for the CDN.
    assert _item(settings, "vkp_catalog", "informatika/kelas_10")["latest"]["S"] == "1.0.0"
    catalog = json.loads(settings.object_store().get_bytes("vkp/catalog.json"))
    assert set(catalog["partitions"]) == {"informatika/kelas_10", "informatika/kelas_11"}
    # One completed job record per run, with the run's counts.
    jobs = {r.partition: r for r in first["jobs"]}
    assert set(jobs) == {"informatika/kelas_10", "informatika/kelas_11"}, "one record per run"
    record = jobs["informatika/kelas_10"]
    assert record.status == "completed" and record.total_files == 2 and record.successful_files == 2
    assert record.total_chunks == len(chunks) == record.total_embeddings
    assert record.completed_at and record.processing_time > 0
    listing = nexus("jobs", "--days", "1", env=env).stdout
    completed = sum(r.status == "completed" for r in settings.job_store().recent(days=1))  # 2 when run first
    assert f"completed {completed}" in listing and "estimated cost" in listing
    # The curriculum catalog lands beside the processed data, in S3.
    catalog = pd.read_parquet(io.BytesIO(settings.object_store().get_bytes("processed/catalog.parquet")))
    built = catalog[catalog["subject"] == "informatika"].set_index("grade")
    assert built.loc["kelas_10", "vkp_version"] == "1.0.0" and built.loc["kelas_10", "files"] == 2
    assert built.loc["kelas_10", "chunks"] == len(chunks)


def test_another_machine_rebuilds_with_no_new_version(aws_build) -> None:
    env, settings, data, _ = aws_build
    s3 = settings.client("s3")
    key = "vkp/informatika_kelas_10_v1.0.0.vkp"
    before = _item(settings, "vkp_package", "informatika/kelas_10")["version"]["N"]
    # A fresh working directory: everything comes from the bucket and the table.
    proc = nexus(
        "--data-dir", str(data / "node-b"), "build", "--subject", "informatika", "--grade", "kelas_10", env=env
    )
    out = proc.stdout
    assert "(unchanged)" in out
    # The caches come through the bucket too: nothing is extracted or embedded again on the new disk.
    assert re.search(r"2 of 2 files unchanged", out + proc.stderr), out + proc.stderr
    assert re.search(r": 0 chunks embedded \([^)]*\), [1-9]\d* from the cache", out + proc.stderr)
    versions = s3.list_object_versions(Bucket=settings.bucket, Prefix="vkp/")["Versions"]
    assert [v["Key"] for v in versions].count(key) == 1, "no new VKP object"
    assert not any(v["Key"].endswith("v1.0.1.vkp") for v in versions)
    assert _item(settings, "vkp_package", "informatika/kelas_10")["version"]["N"] == before, "no new catalog version"


def test_credentials_never_reach_logs_or_records(aws_build) -> None:
    env, settings, data, _ = aws_build
    out = nexus("--data-dir", str(data / "node-d"), "build", "--subject", "informatika", "--grade", "kelas_10", env=env)
    secret = env["AWS_SECRET_ACCESS_KEY"]
    assert secret not in out.stdout + out.stderr
    for record in settings.job_store().recent(days=1):
        assert secret not in repr(record)
    items = boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url).scan(
        TableName=settings.records_table
    )["Items"]
    assert items and secret not in repr(items)


def test_a_failed_run_leaves_a_failed_record(aws_build) -> None:
    env, settings, data, _ = aws_build
    # The run's records table is missing (another name, so the module's shared table stays for the other tests).
    missing = {**env, "NEXUS_DYNAMODB_TABLE": f"{settings.records_table}-missing"}
    proc = nexus(
        "--data-dir",
        str(data / "node-c"),
        "build",
        "--subject",
        "informatika",
        "--grade",
        "kelas_11",
        env=missing,
        check=False,
    )
    assert proc.returncode == 1
    failed = [r for r in settings.job_store().recent(days=1) if r.status == "failed"]
    assert "failed" in proc.stdout + proc.stderr
    assert len(failed) == 1 and failed[0].partition == "informatika/kelas_11"
    assert any("raw_pdfs" in e and "ResourceNotFound" in e for e in failed[0].errors), failed[0].errors
    assert failed[0].completed_at
