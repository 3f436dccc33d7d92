"""Partition builds on several celery run workers that share no disk, only the services.

Everything is started here: a fresh Postgres database (the instance: runs, events, pools), a RabbitMQ
vhost (the broker of CeleryRunLauncher, deploy/launchers/celery.yaml), Redis as the result backend,
moto's server (S3 and DynamoDB: aws mode), a Chroma server, `dagster-daemon`, and two celery workers,
each in an empty directory of its own (working dir, DAGSTER_HOME, NEXUS_DATA_DIR). The sample PDFs
go to the bucket with `nexus sample-data`; one asset backfill of every sample partition goes to the
daemon, which queues the runs (max_concurrent_runs 2) and sends each to the broker as one celery task.

While it runs, the pool process executing one run is SIGKILLed in the middle of that run (as the OOM
killer would). The worker's parent reports the lost task to the backend, the daemon's run monitor
marks the run failed, run retries start it again, and the retry rebuilds the partition.

What is checked: every partition has a successful run and a package in the bucket that verifies with
the deployment's public key; every worker ran at least one partition (the runs' celery task ids in
each worker's log); the runs in progress never exceeded the limit; the killed run is FAILURE and its
retry, tagged with it as parent, SUCCESS.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from nexus_assets_tests.support import make_aws_env, unavailable
from nexus_assets_tests.support.services import (
    CeleryWorker,
    ServiceUnavailable,
    chroma_server,
    dagster_cli,
    deployment_env,
    download_packages,
    fresh_database,
    launch_backfill,
    most_runs_in_progress,
    nexus_cli,
    pg_connect,
    rabbitmq_vhost,
    start_celery_worker,
    start_daemon,
    stop_group,
    stop_upload_sensors,
    wait_for_workers,
)
from nexus_assets_tests.support.webserver import ASSETS, free_port

pytestmark = pytest.mark.slow

WORKERS = 2
MAX_RUNS = 2
REDIS_DB = 11
BACKFILL_TIMEOUT_S = 900
CELERY_TASK_TAG = "dagster-celery/task_id"


def scale_out_instance(env: dict[str, str]) -> str:
    """The celery profile as `nexus deploy render-instance` renders it, with the monitor polling every
    2 s (production: 60 s) so a lost worker is noticed within the test's time."""
    config = yaml.safe_load(
        nexus_cli(["deploy", "render-instance", "--launcher", "celery", "--max-concurrent-runs", str(MAX_RUNS)], env)
    )
    assert config["run_launcher"]["class"] == "CeleryRunLauncher"
    config["run_monitoring"].update(poll_interval_seconds=2, free_slots_after_run_end_seconds=5)
    return yaml.safe_dump(config, sort_keys=False)


def worker_of(task_id: str, workers: list[CeleryWorker]) -> CeleryWorker | None:
    return next((w for w in workers if task_id in w.received_task_ids()), None)


@pytest.mark.reliability(
    "crash", "the process running a partition on a celery worker SIGKILLed mid-run (2 workers, no shared disk)"
)
def test_a_backfill_on_celery_workers_that_share_no_disk(moto_endpoint: str, tmp_path: Path, reliability) -> None:
    from nexus_assets.lib.core.layout import Partition
    from nexus_assets.lib.ingest.sample_data import SAMPLE_PARTITIONS

    partitions = [Partition(subject, grade) for subject, grade in SAMPLE_PARTITIONS]
    try:
        with (
            fresh_database("nexus_scale") as database,
            rabbitmq_vhost("nexus_scale") as vhost,
            chroma_server(tmp_path, free_port()) as chroma,
        ):
            reliability(_run_scale_out(database, vhost, chroma, moto_endpoint, tmp_path, partitions))
    except ServiceUnavailable as exc:
        unavailable(str(exc))


def _run_scale_out(database: str, vhost: str, chroma: str, moto_endpoint: str, tmp_path: Path, partitions) -> str:
    """The backfill and its checks; what happened to the killed run, for the Reliability table."""
    from nexus_assets.defs.partitions import key_of

    keys = tmp_path / "keys"
    env = {**deployment_env(database, keys, chroma, vhost, REDIS_DB), **make_aws_env(moto_endpoint)}
    uploader = tmp_path / "uploader"
    nexus_cli(["aws", "bootstrap"], {**env, "DAGSTER_HOME": str(tmp_path / "uploader_home")})
    assert "uploaded s3://" in nexus_cli(["--data-dir", str(uploader), "sample-data"], env)

    home = tmp_path / "daemon_home"
    home.mkdir()
    instance_text = scale_out_instance(env)
    (home / "dagster.yaml").write_text(instance_text)
    daemon_env = {**env, "DAGSTER_HOME": str(home), "NEXUS_DATA_DIR": str(tmp_path / "daemon_data")}
    nexus_cli(["deploy", "apply-pools"], daemon_env)
    # Each worker host has its own CPUs: the instance-wide embedding pool is raised to the worker count
    # (deploy/pools.yaml's 1 is for runs sharing one machine), as docs/production.md says.
    pool = dagster_cli(["instance", "concurrency", "set", "embedding", str(WORKERS)], daemon_env)
    assert pool.returncode == 0, pool.stderr[-2000:]
    stop_upload_sensors(daemon_env)

    workers = [start_celery_worker(f"w{i}", tmp_path / f"worker{i}", env, instance_text) for i in range(WORKERS)]
    daemon = start_daemon(daemon_env, tmp_path / "daemon.log")
    runs_db = pg_connect(database)

    def fail(message: str) -> None:
        logs = "\n".join(f"--- {w.name} ---\n{w.log()[-2500:]}" for w in workers)
        pytest.fail(
            f"{message}\n--- daemon ---\n{(tmp_path / 'daemon.log').read_text(errors='replace')[-4000:]}\n{logs}",
            pytrace=False,
        )

    def query(sql: str, args: tuple = ()) -> list[tuple]:
        with runs_db.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    try:
        try:
            wait_for_workers(workers)
        except RuntimeError as exc:
            fail(str(exc))
        started = time.monotonic()
        backfill_id = launch_backfill(home, env, partitions, ASSETS)
        most, killed, status = 0, None, "REQUESTED"
        while time.monotonic() - started < BACKFILL_TIMEOUT_S:
            if daemon.poll() is not None:
                fail(f"dagster-daemon exited with {daemon.returncode}")
            most = max(most, most_runs_in_progress(runs_db))
            if killed is None:
                killed = _kill_one_run_midway(query, workers)
            [(status,)] = query("SELECT status FROM bulk_actions WHERE key = %s", (backfill_id,))
            if status not in ("REQUESTED", "CANCELING", "FAILING"):
                break
            time.sleep(0.5)
        wall = time.monotonic() - started
        if status != "COMPLETED_SUCCESS":
            fail(f"backfill {backfill_id} is {status} after {wall:.0f} s")

        runs = query(
            "SELECT r.run_id, r.status, p.value, COALESCE(c.value, ''), COALESCE(par.value, '') FROM runs r"
            " JOIN run_tags p ON p.run_id = r.run_id AND p.key = 'dagster/partition'"
            " LEFT JOIN run_tags c ON c.run_id = r.run_id AND c.key = %s"
            " LEFT JOIN run_tags par ON par.run_id = r.run_id AND par.key = 'dagster/parent_run_id'",
            (CELERY_TASK_TAG,),
        )
        print(
            f"\nscale-out backfill: {len(partitions)} partitions on {WORKERS} celery workers, {wall:.0f} s wall,"
            f" at most {most} runs in progress, {len(runs)} runs"
        )
        timeline = query(
            "SELECT r.run_id, r.status, p.value, r.create_timestamp, r.start_time, r.end_time FROM runs r"
            " JOIN run_tags p ON p.run_id = r.run_id AND p.key = 'dagster/partition' ORDER BY r.create_timestamp"
        )
        first = min(row[3] for row in timeline).timestamp()
        tasks = {run_id: task_id for run_id, _, _, task_id, _ in runs}
        for run_id, run_status, partition, created, start, end in timeline:
            owner = worker_of(tasks[run_id], workers) if tasks.get(run_id) else None
            print(
                f"  {partition:28} {run_status:8} {owner.name if owner else '?':3}"
                f" created +{created.timestamp() - first:5.0f} s"
                f" started +{(start or first) - first:5.0f} s ran {(end or start or 0) - (start or 0):5.0f} s"
            )
        succeeded = {p for _, s, p, _, _ in runs if s == "SUCCESS"}
        assert succeeded == {str(key_of(p)) for p in partitions}, runs
        # The run-queue limit held, and was reached: runs waiting in the broker count against it.
        assert 2 <= most <= MAX_RUNS, f"{most} runs in progress, limit {MAX_RUNS}"
        # Every worker ran at least one partition: each run's celery task id is in exactly one worker's log.
        ran_by: dict[str, list[str]] = {w.name: [] for w in workers}
        for _, run_status, partition, task_id, _ in runs:
            assert task_id, f"run of {partition} has no celery task id: not launched by CeleryRunLauncher"
            owner = worker_of(task_id, workers)
            assert owner is not None, f"no worker log received task {task_id} ({partition})"
            if run_status == "SUCCESS":
                ran_by[owner.name].append(partition)
        assert all(ran_by.values()), f"a worker ran no partition: {ran_by}"
        # The killed run: marked failed by the monitor, retried as a new run that rebuilt its partition.
        assert killed is not None, "no run was seen mid-way to kill"
        killed_run, killed_partition = killed
        by_id = {run_id: (s, p, parent) for run_id, s, p, _, parent in runs}
        assert by_id[killed_run][0] == "FAILURE", by_id[killed_run]
        retries = [(s, p) for s, p, parent in by_id.values() if parent == killed_run]
        assert retries == [("SUCCESS", killed_partition)], retries
        monitor_events = query(
            "SELECT event FROM event_logs WHERE run_id = %s AND dagster_event_type = 'PIPELINE_FAILURE'", (killed_run,)
        )
        assert monitor_events and "Celery task failed" in monitor_events[0][0], monitor_events
        # Every package is in the bucket and verifies with the deployment's public key.
        vkps = download_packages(env, partitions, tmp_path / "downloads")
        verify_env = {k: v for k, v in env.items() if k != "NEXUS_SIGNING_KEY"}
        verified = nexus_cli(["vkp", "verify", "--public-key", str(keys / "nexus-signing.pub"), *vkps], verify_env)
        assert verified.count("OK ") == len(vkps) and "signature" in verified, verified
        [(failed_at,)] = query("SELECT end_time FROM runs WHERE run_id = %s", (killed_run,))
        [(retry_end,)] = query(
            "SELECT r.end_time FROM runs r JOIN run_tags t ON t.run_id = r.run_id"
            " WHERE t.key = 'dagster/parent_run_id' AND t.value = %s",
            (killed_run,),
        )
        return (
            "the killed run marked FAILURE by the run monitor ('Celery task failed'), its retry SUCCESS"
            f" {retry_end - failed_at:.0f} s later; "
            f"{len(succeeded)}/{len(partitions)} partitions succeeded, {len(vkps)} packages verify, "
            f"runs per worker {sorted(len(v) for v in ran_by.values())}, at most {most} of {MAX_RUNS} runs in progress"
        )
    finally:
        runs_db.close()
        stop_group(daemon)
        for worker in workers:
            stop_group(worker.process)


def _kill_one_run_midway(query, workers: list[CeleryWorker]) -> tuple[str, str] | None:
    """SIGKILL the pool process running a run whose first step is done but whose later steps are not;
    (run id, partition) once done, else None."""
    rows = query(
        "SELECT r.run_id, p.value, c.value FROM runs r"
        " JOIN run_tags p ON p.run_id = r.run_id AND p.key = 'dagster/partition'"
        " JOIN run_tags c ON c.run_id = r.run_id AND c.key = %s"
        " WHERE r.status = 'STARTED' AND EXISTS (SELECT 1 FROM event_logs e WHERE e.run_id = r.run_id"
        "  AND e.dagster_event_type = 'STEP_SUCCESS' AND e.step_key = 'raw_pdfs')"
        " AND NOT EXISTS (SELECT 1 FROM event_logs e WHERE e.run_id = r.run_id"
        "  AND e.dagster_event_type = 'STEP_START' AND e.step_key = 'vkp_package')",
        (CELERY_TASK_TAG,),
    )
    for run_id, partition, task_id in rows:
        worker = worker_of(task_id, workers)
        children = worker.pool_children() if worker else []
        if worker and len(children) == 1:
            os.kill(children[0], signal.SIGKILL)
            return run_id, partition
    return None
