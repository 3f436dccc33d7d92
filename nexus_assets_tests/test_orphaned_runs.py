"""Pool slots left behind by ended runs are freed before a build; a run still going keeps its slot."""

from __future__ import annotations

import dagster as dg

from nexus_assets.defs.orphaned_runs import free_slots_of_ended_runs

POOL = "embedding"


def _run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus) -> str:
    run = instance.add_run(dg.DagsterRun(job_name="curriculum_build_job", status=status))
    return run.run_id


def test_an_ended_runs_slot_is_freed_and_a_running_one_kept() -> None:
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(POOL, 1)
        ended = _run(instance, dg.DagsterRunStatus.FAILURE)  # interrupted: recorded failed, slot never released
        claim = storage.claim_concurrency_slot(POOL, ended, "chunk_embeddings")
        assert claim.is_claimed
        waiting = _run(instance, dg.DagsterRunStatus.STARTED)
        assert not storage.claim_concurrency_slot(POOL, waiting, "chunk_embeddings").is_claimed  # blocked

        assert free_slots_of_ended_runs(instance) == [ended]

        assert storage.claim_concurrency_slot(POOL, waiting, "chunk_embeddings").is_claimed
        # The running run's slot is its own: a second pass leaves it claimed.
        assert free_slots_of_ended_runs(instance) == []
        assert storage.get_concurrency_info(POOL).active_slot_count == 1
        assert storage.get_concurrency_run_ids() == {waiting}
