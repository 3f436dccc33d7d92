"""S3 and DynamoDB storage against moto's server over HTTP (real boto3 clients, no patching)."""

import os
from pathlib import Path

import pytest

from nexus_assets.lib.aws.aws_bootstrap import bootstrap
from nexus_assets.lib.aws.aws_config import AwsSettings
from nexus_assets.lib.aws.dynamo_records import MAX_INLINE_BYTES, DynamoRecordStore, StaleWriteError
from nexus_assets.lib.aws.s3_store import ChecksumMismatchError
from nexus_assets.lib.core.job_tracking import JobRecord, SqliteJobStore, summarize
from nexus_assets.settings import Settings


@pytest.fixture
def settings(aws_env: dict[str, str]) -> AwsSettings:
    settings = AwsSettings.from_env(os.environ)
    bootstrap(settings)
    return settings


def test_settings_and_deployment_come_from_the_environment(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings.from_env().deployment == "aws"
    settings = AwsSettings.from_env(os.environ)
    assert settings.bucket == aws_env["NEXUS_S3_BUCKET"] and settings.sse == "AES256"
    assert settings.storage_class == "STANDARD_IA"
    monkeypatch.setenv("NEXUS_ENV", "cloud")
    with pytest.raises(ValueError, match="NEXUS_ENV='cloud'"):
        Settings.from_env()
    monkeypatch.delenv("NEXUS_S3_BUCKET")
    with pytest.raises(ValueError, match="NEXUS_S3_BUCKET"):
        AwsSettings.from_env(os.environ)


def test_bootstrap_is_idempotent_and_protects_the_bucket(settings: AwsSettings) -> None:
    again = bootstrap(settings)
    assert {state for target, state in again.items() if " policy " not in target} == {"exists"}
    s3 = settings.client("s3")
    rules = s3.get_bucket_encryption(Bucket=settings.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=settings.bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=settings.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    dynamodb = settings.client("dynamodb")
    for table in (settings.records_table, settings.jobs_table):
        described = dynamodb.describe_table(TableName=table)["Table"]
        assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        pitr = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_every_put_is_encrypted_with_its_storage_class_and_checksum(settings: AwsSettings, tmp_path: Path) -> None:
    store = settings.object_store()
    store.put_bytes("processed/a/b/x.parquet", b"data")
    head = store.head("processed/a/b/x.parquet")
    assert head["ServerSideEncryption"] == "AES256" and head["StorageClass"] == "STANDARD_IA"
    assert store.get_bytes("processed/a/b/x.parquet") == b"data"
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(40 * 1024 * 1024))  # above the multipart threshold
    sha = store.upload_file("vkp/big.bin", big, storage_class="STANDARD")
    head = store.head("vkp/big.bin")
    assert head.get("StorageClass", "STANDARD") == "STANDARD"  # S3 omits the header for STANDARD
    assert head["ServerSideEncryption"] == "AES256" and head["Metadata"]["sha256"] == sha
    assert "-" in head["ETag"], "uploaded in parts"
    assert store.download_file("vkp/big.bin", tmp_path / "back.bin") == sha
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()


def test_kms_encryption_when_a_key_is_configured(settings: AwsSettings) -> None:
    kms = settings.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    store = AwsSettings(**{**settings.__dict__, "kms_key_id": key_id}).object_store()
    store.put_bytes("processed/k.json", b"{}")
    head = store.head("processed/k.json")
    assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]


def test_a_corrupted_object_is_refused_on_read(settings: AwsSettings, tmp_path: Path) -> None:
    store = settings.object_store()
    store.put_bytes("processed/c.bin", b"original")
    # Someone overwrites the body but keeps the old checksum metadata.
    old = store.head("processed/c.bin")["Metadata"]
    settings.client("s3").put_object(Bucket=settings.bucket, Key="processed/c.bin", Body=b"tampered", Metadata=old)
    with pytest.raises(ChecksumMismatchError, match="processed/c.bin"):
        store.get_bytes("processed/c.bin")
    with pytest.raises(ChecksumMismatchError):
        store.download_file("processed/c.bin", tmp_path / "c.bin")
    assert not (tmp_path / "c.bin").exists(), "a bad download never lands at its destination"


def test_records_are_versioned_and_stale_writes_refused(settings: AwsSettings) -> None:
    records = DynamoRecordStore(settings.client("dynamodb"), settings.records_table, settings.object_store())
    assert records.put("vkp_package", "kelas_10|informatika", {"version": "1.0.1"}, version=200, writer="run-new")
    with pytest.raises(StaleWriteError, match="run-new"):
        records.put("vkp_package", "kelas_10|informatika", {"version": "1.0.0"}, version=100, writer="run-old")
    assert records.get("vkp_package", "kelas_10|informatika") == {"version": "1.0.1"}
    # The same value again writes nothing and keeps the version.
    assert not records.put("vkp_package", "kelas_10|informatika", {"version": "1.0.1"}, version=300)
    assert records.version("vkp_package", "kelas_10|informatika") == 200
    with pytest.raises(KeyError, match="pdf_text"):
        records.get("pdf_text", "kelas_10|informatika")


def test_large_records_overflow_to_s3_transparently(settings: AwsSettings) -> None:
    store = settings.object_store()
    records = DynamoRecordStore(settings.client("dynamodb"), settings.records_table, store)
    large = {"rows": ["x" * 1000 for _ in range(MAX_INLINE_BYTES // 1000 + 10)]}
    records.put("raw_pdfs", "kelas_10|fisika", large, version=1)
    item = settings.client("dynamodb").get_item(
        TableName=settings.records_table, Key={"pk": {"S": "raw_pdfs"}, "sk": {"S": "kelas_10|fisika"}}
    )["Item"]
    assert "s3_key" in item and "value" not in item
    assert store.head(item["s3_key"]["S"])["ServerSideEncryption"] == "AES256"
    assert records.get("raw_pdfs", "kelas_10|fisika") == large
    records.put("raw_pdfs", "kelas_10|fisika", {"small": True}, version=2)
    assert records.get("raw_pdfs", "kelas_10|fisika") == {"small": True}
    assert not store.exists(item["s3_key"]["S"]), "the replaced overflow object is removed"


def test_job_records_round_trip_and_summarise(settings: AwsSettings) -> None:
    jobs = settings.job_store()
    jobs.put(
        JobRecord(
            "run-1",
            "2099-01-01T00:00:00.000+00:00",
            "curriculum_build_job",
            "kelas_10|informatika",
            status="completed",
            total_files=2,
            successful_files=2,
            total_chunks=30,
            total_embeddings=30,
            processing_time=12.5,
            estimated_cost=0.0012,
        )
    )
    jobs.put(
        JobRecord(
            "run-2",
            "2099-01-01T00:01:00.000+00:00",
            "curriculum_build_job",
            "kelas_11|biologi",
            status="failed",
            errors=["chunk_embeddings: boom"],
        )
    )
    records = jobs.recent(days=7)
    assert [r.job_id for r in records] == ["run-1", "run-2"]
    assert records[0].processing_time == 12.5 and records[1].errors == ["chunk_embeddings: boom"]
    summary = summarize(records)
    assert summary["by_status"] == {"completed": 1, "failed": 1}
    assert summary["estimated_cost_usd"] == pytest.approx(0.0012)


@pytest.mark.parametrize("kind", ["sqlite", "dynamodb"])
def test_a_late_start_record_never_overwrites_the_end_of_its_run(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The run status sensors tick independently: the start of a short run can be recorded after its end.
    The start record only creates, so the finished record stands (seen as a lost record in the daemon test)."""
    jobs = SqliteJobStore(tmp_path / "jobs.db") if kind == "sqlite" else request.getfixturevalue("settings").job_store()
    start = "2099-01-01T00:00:00.000+00:00"
    jobs.put(JobRecord("run-1", start, "curriculum_build_job", "kelas_10|informatika", status="running"))
    jobs.put(JobRecord("run-1", start, "curriculum_build_job", "kelas_10|informatika", "completed", total_chunks=7))
    jobs.put(JobRecord("run-1", start, "curriculum_build_job", "kelas_10|informatika", status="running"))
    [record] = jobs.recent(days=3650)
    assert (record.status, record.total_chunks) == ("completed", 7)
    jobs.put(JobRecord("run-1", start, "curriculum_build_job", "kelas_10|informatika", "failed", errors=["late"]))
    [record] = jobs.recent(days=3650)
    assert record.status == "failed", "a finished record may still replace another (a reaped run)"
