"""Runs left `STARTED` by a `nexus build` process that was killed: marked failed, their pool slots freed.

`nexus build` runs each partition in its own process (`execute_in_process`), and a step in a pool
(`embedding`, `chroma_writer`) holds a slot in the instance while it runs. SIGKILL the process and
nobody reports the run's end: the run stays `STARTED` for ever and its slot stays taken, so the next
build of any partition would wait for that pool indefinitely. The daemon's run monitoring does not
watch in-process runs, so every `nexus build` first looks for its own earlier runs (tagged with the
process that ran them) whose process is gone, and ends them the way the monitor would.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from nexus_assets.lib.core.process_identity import current_identity, is_gone

PROCESS_TAG = "nexus/process"  # host:pid:start of the `nexus build` process running the run
JOB_TIMESTAMP_TAG = "nexus/job_timestamp"  # the job record's sort key, to close the same record
_UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


@dataclass(frozen=True)
class OrphanedRun:
    run_id: str
    partition: str
    job_timestamp: str | None
    reason: str


def process_tags() -> dict[str, str]:
    """Tags naming this process, for `fail_orphaned_runs` in a later process."""
    return {PROCESS_TAG: current_identity()}


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[OrphanedRun]:
    """Mark failed every unfinished run whose `nexus build` process is gone; free its concurrency slots."""
    ended = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=_UNFINISHED)):
        run = record.dagster_run
        identity = run.tags.get(PROCESS_TAG)
        if not identity or not is_gone(identity):
            continue
        reason = (
            f"the nexus build process that ran it ({identity}) is gone (killed or crashed) while the run was "
            f"{run.status.value}; marked failed by a later nexus build, which freed its pool slots"
        )
        instance.report_run_failed(run, message=reason)
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        ended.append(
            OrphanedRun(run.run_id, run.tags.get("dagster/partition", ""), run.tags.get(JOB_TIMESTAMP_TAG), reason)
        )
    return ended
