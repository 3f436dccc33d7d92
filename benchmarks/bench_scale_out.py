"""Run-level scale-out on celery workers: one backfill on 1, 2 and 4 workers, in one run.

The same stack as nexus_assets_tests/test_scale_out.py (a fresh Postgres database, a RabbitMQ vhost,
Redis results, moto's S3/DynamoDB, a Chroma server, the daemon with the celery profile), then:

- the trivial job (benchmarks/scale_out_defs.py: 12 partitions, each step waits 8 s): its throughput
  ratio is the launch path's own scaling (target >= 1.7x at 2 workers, >= 3x at 4);
- the real job, `curriculum_build_job`'s assets on the sample partitions in aws mode, a fresh bucket
  per worker count so nothing is reused: recorded, not a target, since on a 2-core machine every
  worker shares the same two cores.

Wall time of a backfill: from its first run's creation to its last run's end (the runs table), so
the backfill daemon's tick interval before the first run does not count. The queue limit is set to
the largest worker count and the `dagster/backfill` tag limit is lifted (it would cap 4 workers at 3).
The embedding pool is raised to the worker count. Prints the CPU, a table, and `speedup_2_workers=`
and `speedup_4_workers=` lines for the trivial job (`real_speedup_N_workers=` for the real one).

    .venv/bin/python -m benchmarks.bench_scale_out [--workers 1 2 4] [--skip-real]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from nexus_assets.lib.core.cpu_info import cpu_kind, cpu_model
from nexus_assets_tests.support import PROJECT_ROOT, make_aws_env
from nexus_assets_tests.support.services import (
    backfill_status,
    chroma_server,
    dagster_cli,
    deployment_env,
    fresh_database,
    launch_backfill,
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

REDIS_DB = 12
TIMEOUT_S = 1800


def backfill_wall(conn, backfill_id: str) -> tuple[float, int]:
    """(seconds from the first run's creation to the last run's end, successful runs) of a backfill."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT min(extract(epoch FROM r.create_timestamp)), max(r.end_time),"
            " count(*) FILTER (WHERE r.status = 'SUCCESS') FROM runs r JOIN run_tags t ON t.run_id = r.run_id"
            " WHERE t.key = 'dagster/backfill' AND t.value = %s",
            (backfill_id,),
        )
        first, last, ok = cur.fetchone()
    return float(last) - float(first), int(ok)


def run_backfill(
    label: str, count: int, work: Path, env: dict[str, str], instance_text: str, home: Path, conn, launch
) -> float:
    """Start `count` workers, run one backfill (`launch()` returns its id), stop them; its wall time."""
    root = work / f"{label}-{count}"
    workers = [start_celery_worker(f"{label}{count}w{i}", root / f"w{i}", env, instance_text) for i in range(count)]
    try:
        wait_for_workers(workers)
        backfill_id = launch()
        deadline = time.monotonic() + TIMEOUT_S
        status = backfill_status(conn, backfill_id)
        while status in ("REQUESTED", "CANCELING", "FAILING") and time.monotonic() < deadline:
            time.sleep(1)
            status = backfill_status(conn, backfill_id)
        if status != "COMPLETED_SUCCESS":
            raise RuntimeError(f"{label} backfill on {count} workers ended {status}; logs under {root}")
        wall, ok = backfill_wall(conn, backfill_id)
        print(f"{label}: {count} worker(s), {ok} runs, {wall:.1f} s", flush=True)
        return wall
    finally:
        for worker in workers:
            stop_group(worker.process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--skip-real", action="store_true", help="only the trivial job")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request otherwise

    from benchmarks import scale_out_defs
    from nexus_assets.lib.core.layout import Partition
    from nexus_assets.lib.ingest.sample_data import SAMPLE_PARTITIONS

    print(f"CPU: {cpu_model()} ({cpu_kind()}), {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    work = Path(tempfile.mkdtemp(prefix="nexus-bench-scale-out-"))
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    trivial: dict[int, float] = {}
    real: dict[int, float] = {}
    try:
        with (
            fresh_database("nexus_bench") as database,
            rabbitmq_vhost("nexus_bench") as vhost,
            chroma_server(work, free_port()) as chroma,
        ):
            base = deployment_env(database, work / "keys", chroma, vhost, REDIS_DB)
            base.update(
                BENCH_TRIVIAL_WAIT_S=str(scale_out_defs.WAIT_S),
                BENCH_TRIVIAL_PARTITIONS=str(len(scale_out_defs.PARTITIONS)),
            )

            def aws_env() -> dict[str, str]:
                """A fresh bucket and tables with the sample PDFs uploaded: nothing cached from a previous count."""
                env = {**base, **make_aws_env(endpoint)}
                nexus_cli(["aws", "bootstrap"], {**env, "DAGSTER_HOME": str(work / "uploader_home")})
                nexus_cli(["--data-dir", str(work / f"upload-{env['NEXUS_S3_BUCKET']}"), "sample-data"], env)
                return env

            daemon_env = aws_env()
            home = work / "daemon_home"
            home.mkdir()
            rendered = nexus_cli(
                ["deploy", "render-instance", "--launcher", "celery", "--max-concurrent-runs", str(max(args.workers))],
                daemon_env,
            )
            config = yaml.safe_load(rendered)
            limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
            config["concurrency"]["runs"]["tag_concurrency_limits"] = [
                limit for limit in limits if limit["key"] != "dagster/backfill"
            ]
            config["run_monitoring"]["poll_interval_seconds"] = 5
            instance_text = yaml.safe_dump(config, sort_keys=False)
            (home / "dagster.yaml").write_text(instance_text)
            workspace = work / "workspace.yaml"
            workspace.write_text(
                yaml.safe_dump(
                    {
                        "load_from": [
                            {
                                "python_module": {
                                    "module_name": module,
                                    "location_name": name,
                                    "working_directory": str(PROJECT_ROOT),
                                }
                            }
                            for module, name in (
                                ("nexus_assets.definitions", "nexus_assets"),
                                ("benchmarks.scale_out_defs", "bench_scale_out"),
                            )
                        ]
                    }
                )
            )
            daemon_env = {**daemon_env, "DAGSTER_HOME": str(home), "NEXUS_DATA_DIR": str(work / "daemon_data")}
            nexus_cli(["deploy", "apply-pools"], daemon_env)
            stop_upload_sensors(daemon_env, workspace)
            daemon = start_daemon(daemon_env, work / "daemon.log", workspace)
            conn = pg_connect(database)
            try:
                for count in args.workers:
                    trivial[count] = run_backfill(
                        "trivial",
                        count,
                        work,
                        base,
                        instance_text,
                        home,
                        conn,
                        lambda: launch_backfill(
                            home, base, list(scale_out_defs.PARTITIONS), ("trivial_wait",), scale_out_defs.defs
                        ),
                    )
                partitions = [Partition(subject, grade) for subject, grade in SAMPLE_PARTITIONS]
                for count in [] if args.skip_real else args.workers:
                    env = aws_env()
                    pool = dagster_cli(["instance", "concurrency", "set", "embedding", str(count)], daemon_env)
                    if pool.returncode != 0:
                        raise RuntimeError(pool.stderr[-2000:])
                    real[count] = run_backfill(
                        "real",
                        count,
                        work,
                        env,
                        instance_text,
                        home,
                        conn,
                        lambda env=env: launch_backfill(home, env, partitions, ASSETS),
                    )
            finally:
                conn.close()
                stop_group(daemon)
    finally:
        moto.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}")

    print(f"\nCPU: {cpu_model()} ({cpu_kind()}), {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    print(f"{'job':<8} {'workers':>7} {'wall s':>8} {'speedup':>8}")
    for label, walls in (("trivial", trivial), ("real", real)):
        for count, wall in walls.items():
            first = walls[min(walls)]
            print(f"{label:<8} {count:>7} {wall:>8.1f} {first / wall:>7.2f}x")
    for count in (2, 4):
        if count in trivial and 1 in trivial:
            print(f"speedup_{count}_workers={trivial[1] / trivial[count]:.2f}")
        if count in real and 1 in real:
            print(f"real_speedup_{count}_workers={real[1] / real[count]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
