"""lib/aws/storage.py: the one home of what local and aws mode mean for storage, outside and inside runs."""

import os
from dataclasses import replace
from pathlib import Path

import pytest

from nexus_assets.lib.aws.aws_bootstrap import bootstrap
from nexus_assets.lib.aws.aws_config import AwsSettings
from nexus_assets.lib.aws.storage import AwsStorage, LocalStorage, open_storage
from nexus_assets.lib.core.caches import MirroredBlobCache, MirroredVectorCache
from nexus_assets.lib.core.job_tracking import JobRecord, SqliteJobStore
from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.ingest.sample_data import generate_sample_corpus
from nexus_assets.settings import Settings

PART = Partition("informatika", "kelas_10")


def test_local_storage_keeps_everything_under_the_data_directory(
    tmp_path: Path, sample_raw_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEXUS_ENV", raising=False)
    layout = DataLayout(tmp_path / "data")
    generate_sample_corpus(layout.raw_root)
    local = Settings.from_env({})  # the local default, whatever the shell exports (make exports NEXUS_DATA_DIR)
    storage = open_storage(layout, local)
    assert storage == LocalStorage(layout, local)
    assert storage.raw_root_uri() == str(layout.raw_root)
    found, _ = storage.raw_source().discover()
    assert PART in found
    jobs = storage.job_store()
    assert isinstance(jobs, SqliteJobStore)
    jobs.put(JobRecord("run-1", "2026-12-05T00:00:00.000+00:00", "curriculum_build_job", "kelas_10|informatika"))
    assert [r.job_id for r in jobs.recent(days=3650)] == ["run-1"] and layout.jobs_db.is_file()
    assert storage.invalidate_cdn(["/vkp/catalog.json"]) is None
    assert storage.outputs_on_this_disk  # `nexus build`'s fingerprint fast path applies
    key = "raw-curriculum/informatika/kelas_10/buku_siswa_informatika_kelas_10.pdf"
    assert key in storage.raw_keys()
    assert storage.add_raw(key, layout.root / key) == str(layout.root / key), "already in place: nothing to do"
    assert list(storage.prune_caches(older_than_days=7)) == [str(layout.cache_dir)]


@pytest.mark.slow
def test_aws_storage_reads_and_records_through_the_bucket_and_tables(aws_env: dict[str, str], tmp_path: Path) -> None:
    """Against moto over HTTP: PDFs are found in the bucket (not on disk), jobs land in DynamoDB, caches
    are mirrored; the Dagster resource of aws mode hands out the very same storage."""
    from nexus_assets.definitions import aws_resources

    settings = AwsSettings.from_env(os.environ)
    bootstrap(settings)
    layout = DataLayout(tmp_path / "mirror")
    samples = generate_sample_corpus(tmp_path / "samples")
    settings.object_store().upload_file("raw-curriculum/informatika/kelas_10/bab1.pdf", samples[0])
    storage = open_storage(layout, Settings.from_env())
    assert isinstance(storage, AwsStorage) and storage.aws == settings
    assert storage.raw_root_uri() == f"s3://{aws_env['NEXUS_S3_BUCKET']}/raw-curriculum/"
    found, _ = storage.raw_source().discover()
    assert found == [PART] and not layout.raw_root.exists()  # listed in the bucket, nothing read locally
    assert storage.raw_keys() == ["raw-curriculum/informatika/kelas_10/bab1.pdf"] and not storage.outputs_on_this_disk
    added = storage.add_raw("raw-curriculum/informatika/kelas_11/bab2.pdf", samples[1])
    assert added == f"s3://{aws_env['NEXUS_S3_BUCKET']}/raw-curriculum/informatika/kelas_11/bab2.pdf"
    assert settings.object_store().exists("raw-curriculum/informatika/kelas_11/bab2.pdf")
    assert list(storage.prune_caches(older_than_days=7)) == [
        str(layout.cache_dir),
        f"s3://{aws_env['NEXUS_S3_BUCKET']}/processed/_cache/",
    ]
    storage.job_store().put(
        JobRecord("run-2", "2026-12-05T00:00:00.000+00:00", "curriculum_build_job", "kelas_10|informatika")
    )
    assert [r.job_id for r in settings.job_store().recent(days=3650)] == ["run-2"]
    assert isinstance(storage.extraction_cache(), MirroredBlobCache)
    assert isinstance(storage.vector_cache(), MirroredVectorCache)

    resource = aws_resources(Settings.from_env())["data_dir"].model_copy(update={"data_dir": str(layout.root)})
    with resource.process_config_and_initialize_cm() as initialized:  # EnvVars resolved, as in a run
        from_resource = initialized.storage()
        # The same bucket, tables, endpoint, encryption and retry policy (the bucket policy is bootstrap's).
        same = replace(from_resource.aws, bucket_policy=storage.aws.bucket_policy)
        assert (type(from_resource), from_resource.layout, same) == (AwsStorage, layout, storage.aws)
