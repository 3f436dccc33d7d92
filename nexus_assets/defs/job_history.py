"""Every partition build the daemon launches (UI launchpad or asset graph, backfills, sensors, schedules)
recorded in the job table (ETLPipelineJobs), under one job name (`build.build_job_name`).

The sensors monitor every job of the code location (no `monitored_jobs`): runs started from the UI's
asset graph are Dagster's implicit `__ASSET_JOB`; `record_sensed_run` keeps the partition builds.

Thin run status sensors over `nexus_assets.build.record_sensed_run`, which builds the record from
`run_summary` like `nexus build` does for its own runs (those carry a tag and are skipped here). They
need the daemon, as every sensor does.
"""

from __future__ import annotations

import dagster as dg

from nexus_assets.build import record_sensed_run
from nexus_assets.defs.resources import DataDirResource


def _record(context: dg.RunStatusSensorContext, data_dir: DataDirResource, finished: bool) -> None:
    record = record_sensed_run(context.instance, context.dagster_run.run_id, data_dir.job_store(), finished)
    if record is not None and record.status == "failed":
        context.log.error(
            f"run {record.job_id} of partition {record.partition or '?'} failed: {'; '.join(record.errors)}"
        )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.STARTED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records each started build run in the job table.",
)
def job_started_sensor(context: dg.RunStatusSensorContext, data_dir: DataDirResource) -> None:
    _record(context, data_dir, finished=False)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records each successful build run (completed or partial) in the job table.",
)
def job_succeeded_sensor(context: dg.RunStatusSensorContext, data_dir: DataDirResource) -> None:
    _record(context, data_dir, finished=True)


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records each failed build run, with the failing step and error, in the job table.",
)
def job_failed_sensor(context: dg.RunFailureSensorContext, data_dir: DataDirResource) -> None:
    _record(context, data_dir, finished=True)


job_history_sensors = [job_started_sensor, job_succeeded_sensor, job_failed_sensor]
