"""Sensors that rebuild a partition when its PDFs change: S3 (or local) listing, or S3 events via SQS.

The change detection itself (cursor of per-partition fingerprints, key validation, S3 event
parsing) lives in `nexus_assets.lib.ingest.upload_tracking`; these sensors only list, compare and emit.
The upload sensors are on by default in aws mode (production); locally they start stopped: turn
`raw_upload_sensor` on in the UI (Automation → Sensors) with `make ui` running. `curriculum_folders_sensor`
(registers folders as partitions, never starts a run) runs by default everywhere.
"""

from __future__ import annotations

import dagster as dg

from nexus_assets.defs import settings as code_location
from nexus_assets.defs.jobs import curriculum_build_job
from nexus_assets.defs.partitions import curriculum_partitions_def, key_of
from nexus_assets.defs.resources import DataDirResource
from nexus_assets.lib.core.layout import LayoutError, Partition
from nexus_assets.lib.ingest.upload_tracking import (
    UPLOAD_FINGERPRINT,
    ListingDiff,
    cursor_fingerprint,
    diff_listing,
    dump_cursor,
    fingerprint,
    load_cursor,
    parse_s3_event_message,
    partition_of_key,
    partition_of_label,
    run_key,
)

SENSOR_INTERVAL_S = 30
SQS_BATCHES_PER_TICK = 10  # 10 messages each: at most 100 S3 events per tick


def _default_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if code_location.automation_on() else dg.DefaultSensorStatus.STOPPED


def _built_fingerprint(instance: dg.DagsterInstance, part: Partition) -> str | None:
    """The upload fingerprint of the PDFs the partition's latest build read (None: never built here)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_pdfs"), asset_partitions=[key_of(part)]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    value = materialization.metadata.get(UPLOAD_FINGERPRINT) if materialization else None
    return str(getattr(value, "value", value)) if value is not None else None


def _result(
    context: dg.SensorEvaluationContext, diff: ListingDiff, previous: dict, extra_cursor: dict | None = None
) -> dg.SensorResult:
    """Run requests for the changed partitions, registering new partitions in the same tick.

    A partition the cursor has never seen (the sensor was just switched on, or the cursor reset) is
    requested only if its latest build read other PDFs than the folder holds now: switching the sensor
    on does not rebuild what `nexus build` or the UI already built.
    """
    for message in diff.skipped:
        context.log.warning(message)
    changed = [
        part
        for part in diff.changed
        if part.label in previous or _built_fingerprint(context.instance, part) != diff.fingerprints[part]
    ]
    if seeded := [p.label for p in diff.changed if p not in changed]:
        context.log.info("already built from the same PDFs, not rebuilt: " + ", ".join(seeded))
    requests = [
        dg.RunRequest(
            partition_key=key_of(part),
            run_key=run_key(part, diff.fingerprints[part], previous),
            tags={"nexus/trigger": "upload"},
        )
        for part in changed
    ]
    if requests:
        context.log.info("rebuilding " + ", ".join(p.label for p in changed))
    known = set(context.instance.get_dynamic_partitions(curriculum_partitions_def.name))  # type: ignore[arg-type]
    empty = fingerprint([])
    new = sorted(key_of(p) for p, fp in diff.fingerprints.items() if fp != empty and key_of(p) not in known)
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[curriculum_partitions_def.build_add_request(new)] if new else [],
        cursor=dump_cursor(diff.fingerprints, previous, extra_cursor),
    )


class SqsQueueResource(dg.ConfigurableResource):
    """The SQS queue receiving the bucket's S3 event notifications (empty: SQS mode is off)."""

    queue_url: str = ""
    region: str = "us-east-1"
    endpoint_url: str = ""

    def client(self):
        import boto3

        from nexus_assets.lib.aws.aws_retry import guard_client

        retry = code_location.SETTINGS.retry  # the one retry policy of aws mode (lib/aws/aws_retry.py)
        client = boto3.client(
            "sqs", region_name=self.region, endpoint_url=self.endpoint_url or None, config=retry.config()
        )
        return guard_client(client, "sqs", retry)


@dg.sensor(
    job=curriculum_build_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=_default_status(),
    description="Lists raw-curriculum/ (S3 in aws mode, the data directory locally) and rebuilds every "
    "partition whose PDFs were added, changed or deleted.",
)
def raw_upload_sensor(
    context: dg.SensorEvaluationContext, data_dir: DataDirResource, sqs_queue: SqsQueueResource
) -> dg.SensorResult | dg.SkipReason:
    if sqs_queue.queue_url:
        return dg.SkipReason("SQS mode: sqs_upload_sensor consumes the bucket's S3 events instead of listing")
    cursor = load_cursor(context.cursor)
    diff = diff_listing(data_dir.raw_source().listing(), cursor["partitions"])
    return _result(context, diff, cursor["partitions"])


@dg.sensor(
    job=curriculum_build_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=_default_status(),
    description="Consumes S3 event notifications from SQS and rebuilds the partitions they touch; a "
    "message is deleted only after the tick that emitted its run request has been committed.",
)
def sqs_upload_sensor(
    context: dg.SensorEvaluationContext, data_dir: DataDirResource, sqs_queue: SqsQueueResource
) -> dg.SensorResult | dg.SkipReason:
    if not sqs_queue.queue_url:
        return dg.SkipReason("no SQS queue configured (NEXUS_SQS_QUEUE_URL): raw_upload_sensor lists S3 instead")
    sqs = sqs_queue.client()
    cursor = load_cursor(context.cursor)
    # Messages handled by the previous tick: its run requests and cursor are committed, so delete them now.
    for receipt in cursor.get("pending_delete", []):
        sqs.delete_message(QueueUrl=sqs_queue.queue_url, ReceiptHandle=receipt)
    touched: set[Partition] = set()
    handled: list[str] = []
    skipped: list[str] = []
    for _ in range(SQS_BATCHES_PER_TICK):
        messages = sqs.receive_message(QueueUrl=sqs_queue.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        for message in messages:
            events = parse_s3_event_message(message.get("Body", ""))
            if events is None:
                context.log.warning(
                    f"SQS message {message['MessageId']} is not an S3 event notification: left to "
                    "the queue's redrive policy (dead-letter queue)"
                )
                continue
            for event in events:
                try:
                    touched.add(partition_of_key(event.key))
                except LayoutError as exc:
                    skipped.append(str(exc))
            handled.append(message["ReceiptHandle"])
        if len(messages) < 10:
            break
    previous = cursor["partitions"]
    source = data_dir.raw_source()
    fingerprints = {}
    for part in sorted(touched):
        # The event says where to look; the listing of that one partition says what is there now.
        files = [(item.key.rsplit("/", 1)[-1], item.etag) for item in source.listing(part.raw_prefix() + "/")]
        fingerprints[part] = fingerprint(files)
    changed = sorted(p for p, fp in fingerprints.items() if cursor_fingerprint(previous.get(p.label)) != fp)
    kept = {
        part: cursor_fingerprint(entry)
        for label, entry in previous.items()
        if (part := partition_of_label(label)) is not None
    }
    diff = ListingDiff({**kept, **fingerprints}, changed, skipped)
    return _result(context, diff, previous, {"pending_delete": handled})


@dg.sensor(
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers a partition for every raw-curriculum/<subject>/<grade>/ folder holding PDFs, so the "
    "UI lists the folders from the first tick; it never starts a run (raw_upload_sensor does).",
)
def curriculum_folders_sensor(context: dg.SensorEvaluationContext, data_dir: DataDirResource) -> dg.SensorResult:
    # refusals are reported by builds and the upload sensor
    found, _refused = data_dir.raw_source().discover(data_dir.storage().publishes)
    known = set(context.instance.get_dynamic_partitions(curriculum_partitions_def.name))  # type: ignore[arg-type]
    new = [key_of(p) for p in found if key_of(p) not in known]
    if new:
        context.log.info("registered " + ", ".join(new))
    return dg.SensorResult(
        dynamic_partitions_requests=[curriculum_partitions_def.build_add_request(new)] if new else [],
        skip_reason=None if new else f"all {len(found)} folder(s) registered",
    )


upload_sensors = [raw_upload_sensor, sqs_upload_sensor, curriculum_folders_sensor]
