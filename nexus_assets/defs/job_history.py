"""Recording every pipeline run in the job table (ETLPipelineJobs), failures included.

`nexus build` records its own runs around each execution; runs launched from the UI, by sensors or
by schedules are recorded by the run status sensors below (they need the daemon, as every sensor
does). Both build the record from the same place: the run and its materialization events.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import dagster as dg
from dagster import DagsterEventType

from nexus_assets.defs.jobs import curriculum_build_job
from nexus_assets.defs.resources import DataDirResource
from nexus_assets.lib.core.job_tracking import JobRecord, JobStatus, now_iso

CLI_TAG = "nexus/launched_by"
CATALOG_RACE_TAG = "nexus/catalog_race"  # set by vkp_package when a newer run's catalog entry refused ours


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds") if ts else None


# Dagster's retry bookkeeping around the step's real error ("Exceeded max_retries of 3").
_RETRY_WRAPPERS = ("RetryRequestedFromPolicy", "RetryRequested")


def _text(message: str) -> str:
    """A message without its leading `ClassName: `."""
    return re.sub(r"^[A-Za-z_]\w*: ", "", message, count=1)


def _error_chain(error: object, limit: int = 600) -> str:
    """The error and its causes, outermost first (what the code raised, then what it wrapped), class names
    without their modules; Dagster's retry wrapper becomes a note on the first message."""
    messages, retried = [], ""
    while error is not None:
        lines = (getattr(error, "message", None) or str(error)).strip().splitlines()
        first = lines[0].strip() if lines else ""
        if getattr(error, "cls_name", "") in _RETRY_WRAPPERS:
            retried = first
        elif first:
            short = re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*: )", "", first)
            if not messages or _text(short) != _text(messages[-1]):  # skip a re-raise with the same text
                messages.append(short)
        error = getattr(error, "cause", None)
    if messages and retried:
        count = re.search(r"max_retries of (\d+)", retried)
        n = int(count[1]) if count else 0
        messages[0] += f" (after {n} step retr{'y' if n == 1 else 'ies'})" if count else f" ({retried})"
    return " <- ".join(messages)[:limit] or retried or "failed"


def run_started_record(instance: dg.DagsterInstance, run_id: str, timestamp: str | None = None) -> JobRecord:
    """A `running` record for a run that has just been created or started."""
    record = instance.get_run_record_by_id(run_id)
    run = record.dagster_run if record else None
    return JobRecord(
        job_id=run_id,
        timestamp=timestamp or _iso(record.create_timestamp.timestamp() if record else None) or now_iso(),
        job_type=run.job_name if run else "curriculum_build_job",
        partition=(run.tags.get("dagster/partition", "") if run else ""),
        config=dict(run.run_config) if run else {},
    )


def finished_record(instance: dg.DagsterInstance, run_id: str, timestamp: str | None = None) -> JobRecord:
    """The final record of a finished run: status, counts from its materializations, errors, time."""
    record = run_started_record(instance, run_id, timestamp)
    run_record = instance.get_run_record_by_id(run_id)
    meta: dict[str, dict] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.dagster_event.event_specific_data.materialization
        meta[materialization.asset_key.path[-1]] = {
            k: getattr(v, "value", v) for k, v in materialization.metadata.items()
        }
    text = meta.get("pdf_text", {})
    record.total_files = int(text.get("files", meta.get("raw_pdfs", {}).get("files", 0)))
    record.successful_files = int(text.get("files_ok", 0))
    record.failed_files = int(text.get("files_failed", 0))
    record.total_chunks = int(meta.get("text_chunks", {}).get("chunks", 0))
    record.total_embeddings = int(meta.get("chunk_embeddings", {}).get("embeddings", 0))
    embedding = meta.get("chunk_embeddings", {})
    record.estimated_cost = float(embedding.get("estimated_cost_usd", 0.0))
    record.embedding_model = str(embedding.get("model_id", ""))
    record.input_tokens = int(embedding.get("input_tokens", 0))
    record.embedding_fallback = str(embedding.get("fallback_reason", "")) if embedding.get("fallback") else ""
    step_failures = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        step_failures.append(f"{entry.step_key}: {_error_chain(entry.dagster_event.event_specific_data.error)}")
    record.errors = list(step_failures)
    if record.failed_files:
        record.errors.append(f"{record.failed_files} file(s) could not be extracted; see pdf_text's failed_files")
    run = run_record.dagster_run if run_record else None
    if run is not None and run.tags.get(CATALOG_RACE_TAG):
        record.errors.append(
            f"vkp_package: {run.tags[CATALOG_RACE_TAG]} was published, but a racing run had already "
            "moved the catalog to a newer version (the conditional write refused ours)"
        )
    status: JobStatus
    if run is None or run.status == dg.DagsterRunStatus.FAILURE or step_failures:
        status = "failed"
    else:
        status = "partial" if record.failed_files else "completed"
    record.status = status
    if run_record and run_record.start_time and run_record.end_time:
        record.processing_time = round(run_record.end_time - run_record.start_time, 3)
    record.completed_at = now_iso()
    return record


def _record_from_sensor(context: dg.RunStatusSensorContext, data_dir: DataDirResource, finished: bool) -> None:
    run = context.dagster_run
    if run.tags.get(CLI_TAG) == "cli":
        return  # `nexus build` records its own runs
    builder = finished_record if finished else run_started_record
    record = builder(context.instance, run.run_id)
    data_dir.job_store().put(record)
    if record.status == "failed":
        context.log.error(f"run {run.run_id} of partition {record.partition or '?'} failed: {'; '.join(record.errors)}")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.STARTED,
    monitored_jobs=[curriculum_build_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records each started build run in the job table.",
)
def job_started_sensor(context: dg.RunStatusSensorContext, data_dir: DataDirResource) -> None:
    _record_from_sensor(context, data_dir, finished=False)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[curriculum_build_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records each successful build run (completed or partial) in the job table.",
)
def job_succeeded_sensor(context: dg.RunStatusSensorContext, data_dir: DataDirResource) -> None:
    _record_from_sensor(context, data_dir, finished=True)


@dg.run_failure_sensor(
    monitored_jobs=[curriculum_build_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records each failed build run, with the failing step and error, in the job table.",
)
def job_failed_sensor(context: dg.RunFailureSensorContext, data_dir: DataDirResource) -> None:
    _record_from_sensor(context, data_dir, finished=True)


job_history_sensors = [job_started_sensor, job_succeeded_sensor, job_failed_sensor]
