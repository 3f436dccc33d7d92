"""The aws-mode IO managers and resources directly: stale writes, streaming, CDN invalidation."""

import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.defs.aws import AwsDataDirResource, AwsResource, DynamoRecordIOManager
from nexus_assets.lib.aws.aws_bootstrap import bootstrap
from nexus_assets.lib.aws.aws_config import AwsSettings
from nexus_assets.lib.aws.dynamo_records import StaleWriteError
from nexus_assets_tests.support import PROJECT_ROOT

PARTITION = "informatika/kelas_10"


@pytest.fixture
def aws(aws_env: dict[str, str]) -> AwsResource:
    settings = AwsSettings.from_env(os.environ)
    bootstrap(settings)
    return AwsResource(
        bucket=settings.bucket,
        records_table=settings.records_table,
        jobs_table=settings.jobs_table,
        region=settings.region,
        endpoint_url=settings.endpoint_url,
    )


def test_a_stale_write_through_the_io_manager_is_refused(aws: AwsResource, tmp_path: Path) -> None:
    manager = DynamoRecordIOManager(aws=aws, data_dir=str(tmp_path))
    # A newer run has already written the catalog entry.
    aws.record_store().put("vkp_package", PARTITION, {"version": "1.0.2"}, version=10**18, writer="newer-run")
    context = dg.build_output_context(asset_key=dg.AssetKey("vkp_package"), partition_key=PARTITION, run_id="older-run")
    with pytest.raises(StaleWriteError, match="newer-run"):
        manager.handle_output(context, {"version": "1.0.1"})
    loaded = manager.load_input(dg.build_input_context(asset_key=dg.AssetKey("vkp_package"), partition_key=PARTITION))
    assert loaded == {"version": "1.0.2"}


def test_records_with_artifacts_round_trip_to_another_machine(aws: AwsResource, tmp_path: Path) -> None:
    node_a, node_b = tmp_path / "a", tmp_path / "b"
    build = node_a / "processed/informatika/kelas_10/chroma/builds/abc"
    build.mkdir(parents=True)
    (build / "chroma.sqlite3").write_bytes(b"sqlite bytes")
    (build / "seg").mkdir()
    (build / "seg" / "data.bin").write_bytes(os.urandom(1000))
    out = dg.build_output_context(asset_key=dg.AssetKey("chroma_collection"), partition_key=PARTITION, run_id="r1")
    DynamoRecordIOManager(aws=aws, data_dir=str(node_a)).handle_output(out, {"count": 3, "artifact": str(build)})
    key = "processed/informatika/kelas_10/chroma/builds/abc.tar.gz"
    assert aws.object_store().exists(key)
    ctx = dg.build_input_context(asset_key=dg.AssetKey("chroma_collection"), partition_key=PARTITION)
    value = DynamoRecordIOManager(aws=aws, data_dir=str(node_b)).load_input(ctx)
    local = Path(value["artifact"])
    assert local == node_b / "processed/informatika/kelas_10/chroma/builds/abc"
    assert (local / "seg" / "data.bin").read_bytes() == (build / "seg" / "data.bin").read_bytes()
    assert value["count"] == 3


def test_publishing_invalidates_the_cdn_when_configured(aws: AwsResource, tmp_path: Path) -> None:
    cloudfront = aws.settings().client("cloudfront")
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "nexus-test",
            "Comment": "",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "s3",
                        "DomainName": f"{aws.bucket}.s3.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "s3",
                "ViewerProtocolPolicy": "https-only",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )["Distribution"]["Id"]
    without = AwsDataDirResource(aws=aws, data_dir=str(tmp_path))
    assert without.invalidate_cdn(["/vkp/*"]) is None
    with_cdn = AwsDataDirResource(
        aws=aws.model_copy(update={"cloudfront_distribution_id": distribution}), data_dir=str(tmp_path)
    )
    invalidation = with_cdn.invalidate_cdn(["/vkp/*", "/processed/informatika/kelas_10/*"])
    got = cloudfront.get_invalidation(DistributionId=distribution, Id=invalidation)["Invalidation"]
    assert sorted(got["InvalidationBatch"]["Paths"]["Items"]) == ["/processed/informatika/kelas_10/*", "/vkp/*"]


CHILD = textwrap.dedent("""
    import json, sys
    import dagster as dg
    from nexus_assets.defs.aws import AwsResource, DynamoRecordIOManager
    cfg = json.loads(sys.argv[1])
    aws = AwsResource(bucket=cfg["bucket"], records_table=cfg["table"], endpoint_url=cfg["endpoint"])
    manager = DynamoRecordIOManager(aws=aws, data_dir=cfg["data_dir"])
    aws.object_store().head(cfg["key"])  # clients and imports warmed up before the baseline
    from nexus_assets_tests.support.memory import status_kib
    before = status_kib("VmRSS")
    ctx = dg.build_input_context(asset_key=dg.AssetKey("chroma_collection"), partition_key="informatika/kelas_10")
    value = manager.load_input(ctx)
    peak = status_kib("VmHWM")  # support/memory.py: why not ru_maxrss
    print(json.dumps({"before_kb": before, "peak_kb": peak, "artifact": value["artifact"]}))
""")


@pytest.mark.slow
def test_a_200_mb_artifact_streams_to_disk(aws: AwsResource, tmp_path: Path) -> None:
    """Fetching a 200 MB archive adds well under 100 MB of resident memory (measured in a child process)."""
    source = tmp_path / "src"
    source.mkdir()
    with (source / "big.bin").open("wb") as handle:
        for _ in range(200):
            handle.write(os.urandom(1024 * 1024))
    archive = tmp_path / "big.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(source, arcname=".")
    key = "processed/informatika/kelas_10/chroma/builds/big.tar.gz"
    aws.object_store().upload_file(key, archive)
    aws.record_store().put("chroma_collection", PARTITION, {"artifact_key": key, "count": 1}, version=1)
    cfg = {
        "endpoint": aws.endpoint_url,
        "bucket": aws.bucket,
        "table": aws.records_table,
        "key": key,
        "data_dir": str(tmp_path / "node"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
        cwd=PROJECT_ROOT,  # the child imports nexus_assets_tests.support
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    restored = Path(result["artifact"]) / "big.bin"
    assert restored.stat().st_size == 200 * 1024 * 1024
    added_mb = (result["peak_kb"] - result["before_kb"]) / 1024
    print(f"200 MB artifact fetch added {added_mb:.1f} MB of resident memory")
    assert added_mb < 100
