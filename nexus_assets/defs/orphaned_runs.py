"""Runs left `STARTED` by a `nexus build` process that was killed: marked failed, their pool slots freed (and the
slots finished runs still hold).

`nexus build` runs each partition in its own process (`execute_in_process`), and a step in a pool
(`embedding`, `chroma_writer`) holds a slot in the instance while it runs. SIGKILL the process and
nobody reports the run's end: the run stays `STARTED` for ever and its slot stays taken, so the next
build of any partition would wait for that pool indefinitely. The daemon's run monitoring does not
watch in-process runs, so every `nexus build` first looks for its own earlier runs (tagged with the
process that ran them) whose process is gone, and ends them the way the monitor would. A run that did
end (failed after SIGTERM or Ctrl-C) can also be left holding a slot, so the build frees the slots of
every ended run too, as the daemon's `free_slots_after_run_end_seconds` does in production.
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


def free_slots_of_finished_runs(instance: dg.DagsterInstance, run_ids: list[str] | None = None) -> list[str]:
    """Free the pool slots still claimed by runs that have ended (all such runs, or those of `run_ids`).

    A run interrupted while a step in a pool was being retried (SIGTERM, then Ctrl-C during chunk_embeddings)
    ended FAILURE with the step's `embedding` slot still claimed: every later build of every partition waited
    for that pool for ever, silently (red team a26 F10). A finished run holds nothing, so freeing is safe."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    holding = storage.get_concurrency_run_ids() if run_ids is None else set(run_ids)
    freed = []
    for run_id in sorted(holding):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            freed.append(run_id)
    return freed


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[OrphanedRun]:
    """Mark failed every unfinished run whose `nexus build` process is gone; free its concurrency slots, and
    those of every finished run that still holds some (`free_slots_of_finished_runs`)."""
    free_slots_of_finished_runs(instance)
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
