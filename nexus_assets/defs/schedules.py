"""The weekly full rebuild: every registered partition, one run each, in one schedule tick.

Dagster schedules cannot emit backfills, and `build_schedule_from_partitioned_job` refuses a
partitions definition without a time dimension (ours is one dynamic dimension, a partition per
folder). A schedule that yields one run request per partition keeps the trigger explicit and
visible as one tick in the UI; the run queue (`max_concurrent_runs`) and the pools on the embedding
and Chroma-writing steps keep a full rebuild from overloading the machine or putting two writers on
one Chroma directory.
"""

from __future__ import annotations

import dagster as dg

from nexus_assets.defs import settings as code_location
from nexus_assets.defs.jobs import curriculum_build_job
from nexus_assets.defs.partitions import curriculum_partitions_def


@dg.schedule(
    job=curriculum_build_job,
    cron_schedule=code_location.SETTINGS.rebuild_cron,
    execution_timezone=code_location.SETTINGS.rebuild_timezone,
    default_status=(
        dg.DefaultScheduleStatus.RUNNING
        if code_location.SETTINGS.deployment == "aws"
        else dg.DefaultScheduleStatus.STOPPED
    ),
    description="Rebuilds every registered partition (<subject>/<grade> folder) once a week "
    "(NEXUS_REBUILD_CRON, NEXUS_REBUILD_TIMEZONE).",
)
def weekly_full_rebuild_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    keys = curriculum_partitions_def.get_partition_keys(dynamic_partitions_store=context.instance)
    if not keys:
        return dg.SkipReason("no partitions registered yet: nothing to rebuild")
    tick = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [
        dg.RunRequest(partition_key=key, run_key=f"weekly-{tick}-{key}", tags={"nexus/trigger": "weekly"})
        for key in keys
    ]
