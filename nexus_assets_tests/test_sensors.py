"""Upload sensors, against moto's S3/SQS server over HTTP, and the weekly schedule."""

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.definitions import defs
from nexus_assets.defs.aws import AwsDataDirResource, AwsResource
from nexus_assets.defs.partitions import register_partitions
from nexus_assets.defs.resources import DataDirResource
from nexus_assets.defs.schedules import weekly_full_rebuild_schedule
from nexus_assets.defs.sensors import (
    SqsQueueResource,
    curriculum_folders_sensor,
    raw_upload_sensor,
    sqs_upload_sensor,
)
from nexus_assets.lib.aws.aws_bootstrap import bootstrap
from nexus_assets.lib.aws.aws_config import AwsSettings
from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.ingest.raw_sources import LocalRawSource
from nexus_assets.lib.ingest.upload_tracking import UPLOAD_FINGERPRINT, partition_fingerprint


class Tick:
    """Evaluates a sensor like the daemon does: cursor carried over, dynamic partitions applied."""

    def __init__(self, sensor: dg.SensorDefinition, resources: dict, instance: dg.DagsterInstance) -> None:
        self.sensor, self.resources, self.instance, self.cursor = sensor, resources, instance, None
        self.seen_run_keys: set[str] = set()

    def __call__(self) -> list[tuple[str, str]]:
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources=self.resources, definitions=defs
        ) as context:
            result = self.sensor(context)
        if isinstance(result, dg.SkipReason):
            return []
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursor = result.cursor
        fresh = [r for r in result.run_requests if r.run_key not in self.seen_run_keys]
        self.seen_run_keys.update(r.run_key for r in fresh)
        return sorted(tuple(str(r.partition_key).split("/")) for r in fresh)  # type: ignore[misc]


@pytest.fixture
def s3_setup(aws_env: dict[str, str], tmp_path: Path):
    settings = AwsSettings.from_env(os.environ)
    bootstrap(settings)
    aws = AwsResource(
        bucket=settings.bucket,
        records_table=settings.records_table,
        jobs_table=settings.jobs_table,
        region=settings.region,
        endpoint_url=settings.endpoint_url,
    )
    resources = {"data_dir": AwsDataDirResource(aws=aws, data_dir=str(tmp_path)), "sqs_queue": SqsQueueResource()}
    s3 = settings.client("s3")

    def put(key: str, body: bytes = b"%PDF-1.7 sample") -> None:
        s3.put_object(Bucket=settings.bucket, Key=key, Body=body)

    def delete(key: str) -> None:
        s3.delete_object(Bucket=settings.bucket, Key=key)

    with dg.instance_for_test() as instance:
        yield Tick(raw_upload_sensor, resources, instance), put, delete, settings, instance


def test_uploads_changes_deletions_and_new_subjects(s3_setup) -> None:
    tick, put, delete, _, instance = s3_setup
    assert tick() == []
    put("raw-curriculum/informatika/kelas_10/bab1.pdf")
    assert tick() == [("informatika", "kelas_10")]
    assert tick() == [], "a second tick with no change requests nothing"
    # A new folder is registered as a partition, keyed `<subject>/<grade>`, in the same tick; only folders
    # that exist are partitions (no subject × grade cross product).
    put("raw-curriculum/biologi/kelas_11/sel.pdf")
    assert tick() == [("biologi", "kelas_11")]
    assert sorted(instance.get_dynamic_partitions("curriculum")) == ["biologi/kelas_11", "informatika/kelas_10"]
    # Re-upload with a new ETag, of the key that sorts last (a since_key cursor's own key).
    put("raw-curriculum/informatika/kelas_10/bab1.pdf", b"%PDF-1.7 revised")
    assert tick() == [("informatika", "kelas_10")]
    # A key that sorts before every key seen so far.
    put("raw-curriculum/aaa_seni/kelas_10/a.pdf")
    assert tick() == [("aaa_seni", "kelas_10")]
    # Two uploads within the same second, in two partitions.
    put("raw-curriculum/informatika/kelas_10/bab2.pdf")
    put("raw-curriculum/biologi/kelas_11/genetika.pdf")
    assert tick() == [("biologi", "kelas_11"), ("informatika", "kelas_10")]
    # Deletions: one file, then the last file of a partition.
    delete("raw-curriculum/informatika/kelas_10/bab2.pdf")
    assert tick() == [("informatika", "kelas_10")]
    delete("raw-curriculum/aaa_seni/kelas_10/a.pdf")
    assert tick() == [("aaa_seni", "kelas_10")]
    assert tick() == []
    # Going back to content already built before is a change too (new run key from the content).
    put("raw-curriculum/informatika/kelas_10/bab2.pdf")
    assert tick() == [("informatika", "kelas_10")]


def _local_folders(root: Path, *labels: str) -> None:
    for label in labels:
        folder = root / "raw-curriculum" / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "bab1.pdf").write_bytes(f"%PDF-1.7 {label}".encode())


def _report_built(instance: dg.DagsterInstance, root: Path, label: str) -> None:
    """What a build leaves for the sensor: raw_pdfs' materialization with the fingerprint of the PDFs it read."""
    part = Partition.from_label(label)
    source = LocalRawSource(DataLayout(root))
    fp = partition_fingerprint(source.listing(part.raw_prefix() + "/"), part)
    instance.report_runless_asset_event(
        dg.AssetMaterialization("raw_pdfs", partition=label, metadata={UPLOAD_FINGERPRINT: fp})
    )


def test_switching_the_upload_sensor_on_rebuilds_only_what_changed_since_its_build(tmp_path: Path) -> None:
    """The first tick (no cursor) requests the folders never built and those changed since their build,
    not those built from the PDFs they hold now; later ticks go by the cursor as before."""
    _local_folders(tmp_path, "informatika/kelas_10", "biologi/kelas_11", "fisika/kelas_12")
    resources = {"data_dir": DataDirResource(data_dir=str(tmp_path)), "sqs_queue": SqsQueueResource()}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("curriculum", ["informatika/kelas_10", "biologi/kelas_11"])
        _report_built(instance, tmp_path, "informatika/kelas_10")
        _report_built(instance, tmp_path, "biologi/kelas_11")
        (tmp_path / "raw-curriculum/biologi/kelas_11/bab2.pdf").write_bytes(b"%PDF-1.7 uploaded after the build")
        tick = Tick(raw_upload_sensor, resources, instance)
        assert tick() == [("biologi", "kelas_11"), ("fisika", "kelas_12")]
        assert sorted(instance.get_dynamic_partitions("curriculum")) == [
            "biologi/kelas_11",
            "fisika/kelas_12",
            "informatika/kelas_10",
        ]
        assert tick() == []
        (tmp_path / "raw-curriculum/informatika/kelas_10/bab1.pdf").write_bytes(b"%PDF-1.7 revised")
        assert tick() == [("informatika", "kelas_10")]


def test_the_folders_sensor_registers_every_folder_and_starts_nothing(tmp_path: Path) -> None:
    _local_folders(tmp_path, "informatika/kelas_10", "matematika/kelas_11")
    (tmp_path / "raw-curriculum/Sejarah/kelas_10").mkdir(parents=True)  # not a slug: never a partition
    (tmp_path / "raw-curriculum/Sejarah/kelas_10/a.pdf").write_bytes(b"%PDF-1.7")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(
            instance=instance, resources={"data_dir": DataDirResource(data_dir=str(tmp_path))}, definitions=defs
        ) as context:
            result = curriculum_folders_sensor(context)
        assert isinstance(result, dg.SensorResult) and not result.run_requests
        [request] = result.dynamic_partitions_requests or []
        assert sorted(request.partition_keys) == ["informatika/kelas_10", "matematika/kelas_11"]
        instance.add_dynamic_partitions("curriculum", list(request.partition_keys))
        with dg.build_sensor_context(
            instance=instance, resources={"data_dir": DataDirResource(data_dir=str(tmp_path))}, definitions=defs
        ) as context:
            again = curriculum_folders_sensor(context)
        assert not again.dynamic_partitions_requests and again.skip_reason is not None


def test_bad_keys_are_skipped_by_name_and_never_stall(s3_setup, capfd) -> None:
    tick, put, _, _, _ = s3_setup
    for bad in (
        "raw-curriculum/Informatika/kelas_10/a.pdf",
        "raw-curriculum/informatika/a.pdf",
        "raw-curriculum/informatika/kelas_10/notes.txt",
        "raw-curriculum/informatika/kelas_10/sub/x.pdf",
        "raw-curriculum/%2e%2e/kelas_10/x.pdf",
    ):
        put(bad)
    put("raw-curriculum/fisika/kelas_12/gerak.pdf")
    assert tick() == [("fisika", "kelas_12")]
    logged = capfd.readouterr().err
    assert "invalid subject folder 'Informatika' (raw-curriculum/Informatika/kelas_10/a.pdf)" in logged
    assert "'raw-curriculum/informatika/kelas_10/notes.txt' is not raw-curriculum/" in logged
    assert "escape" in logged
    assert tick() == []


@pytest.mark.slow
def test_ten_thousand_objects_keep_the_cursor_small(s3_setup) -> None:
    tick, _, _, settings, _ = s3_setup
    s3 = settings.client("s3")
    subjects = [f"mapel_{i:02d}" for i in range(20)]

    def put(i: int) -> None:
        subject, grade = subjects[i % 20], f"kelas_{1 + (i // 20) % 12}"
        s3.put_object(Bucket=settings.bucket, Key=f"raw-curriculum/{subject}/{grade}/f{i:05d}.pdf", Body=b"x")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(10_000)))
    started = time.perf_counter()
    first = tick()
    first_s = time.perf_counter() - started
    assert len(first) == 20 * 12
    started = time.perf_counter()
    assert tick() == []
    quiet_s = time.perf_counter() - started
    s3.put_object(Bucket=settings.bucket, Key="raw-curriculum/mapel_03/kelas_7/new.pdf", Body=b"y")
    assert tick() == [("mapel_03", "kelas_7")]
    print(f"10,000 objects: first tick {first_s:.2f} s, quiet tick {quiet_s:.2f} s, cursor {len(tick.cursor)} bytes")
    assert len(tick.cursor) < 20_000, "the cursor grows with partitions (240), not objects"


def test_local_sensor_watches_the_data_directory(tmp_path: Path) -> None:
    raw = tmp_path / "raw-curriculum" / "matematika" / "kelas_10"
    raw.mkdir(parents=True)
    with dg.instance_for_test() as instance:
        tick = Tick(
            raw_upload_sensor,
            {"data_dir": DataDirResource(data_dir=str(tmp_path)), "sqs_queue": SqsQueueResource()},
            instance,
        )
        (raw / "bab1.pdf").write_bytes(b"%PDF one")
        assert tick() == [("matematika", "kelas_10")]
        assert tick() == []
        (raw / "bab1.pdf").write_bytes(b"%PDF one")  # rewritten with the same content: no rebuild
        assert tick() == []
        (raw / "bab1.pdf").write_bytes(b"%PDF two")
        assert tick() == [("matematika", "kelas_10")]
        (raw / "bab1.pdf").unlink()
        assert tick() == [("matematika", "kelas_10")]


def _s3_event(key: str, name: str = "ObjectCreated:Put") -> str:
    return json.dumps({"Records": [{"eventName": name, "s3": {"bucket": {"name": "b"}, "object": {"key": key}}}]})


def test_sqs_mode_consumes_events_and_deletes_after_the_tick(s3_setup) -> None:
    _, put, delete, settings, instance = s3_setup
    sqs = settings.client("sqs")
    queue = sqs.create_queue(QueueName=f"uploads-{settings.bucket}", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    resources = {
        "data_dir": s3_setup[0].resources["data_dir"],
        "sqs_queue": SqsQueueResource(queue_url=queue, endpoint_url=settings.endpoint_url),
    }
    tick = Tick(sqs_upload_sensor, resources, instance)
    listing = Tick(raw_upload_sensor, resources, instance)
    put("raw-curriculum/sejarah/kelas_11/perang.pdf")
    sqs.send_message(QueueUrl=queue, MessageBody=_s3_event("raw-curriculum/sejarah/kelas_11/perang.pdf"))
    sqs.send_message(QueueUrl=queue, MessageBody="this is not an S3 event")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Event": "s3:TestEvent"}))
    assert tick() == [("sejarah", "kelas_11")]
    assert listing() == [], "in SQS mode the listing sensor stands down"
    # The handled messages are deleted at the next tick; the malformed one stays for the dead-letter queue.
    assert tick() == []
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]
    assert bodies == ["this is not an S3 event"]
    delete("raw-curriculum/sejarah/kelas_11/perang.pdf")
    sqs.send_message(
        QueueUrl=queue, MessageBody=_s3_event("raw-curriculum/sejarah/kelas_11/perang.pdf", "ObjectRemoved:Delete")
    )
    assert tick() == [("sejarah", "kelas_11")]


def test_weekly_schedule_requests_every_registered_partition() -> None:
    with dg.instance_for_test() as instance:
        register_partitions(instance, [Partition("informatika", "kelas_10"), Partition("biologi", "kelas_11")])
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 22, 2, tzinfo=UTC)
        )
        requests = weekly_full_rebuild_schedule(context)
        keys = sorted(str(r.partition_key) for r in requests)
        # The registered folders, not the cross product of their subjects and grades.
        assert keys == ["biologi/kelas_11", "informatika/kelas_10"]
        assert len({r.run_key for r in requests}) == 2
    assert weekly_full_rebuild_schedule.cron_schedule == "0 2 * * 0"
    assert weekly_full_rebuild_schedule.execution_timezone == "Asia/Jakarta"
