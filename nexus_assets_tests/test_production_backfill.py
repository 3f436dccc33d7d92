"""The production path on this machine: Postgres instance, dagster-daemon, a UI backfill through GraphQL.

A fresh database on the local PostgreSQL (127.0.0.1:5432) per test run; the instance is
deploy/dagster.yaml as rendered by `nexus deploy render-instance` (queued runs, max_concurrent_runs
from NEXUS_TEST_MAX_CONCURRENT_RUNS, default 2); pool limits set by `nexus deploy apply-pools`. The
webserver registers the six sample partitions and launches one backfill of all six the way the UI
does (addDynamicPartition, launchPartitionBackfill); the daemon dequeues the runs. While they run,
the runs table is sampled: runs in progress never exceed the limit. The wall time is printed (README
"Running in production" quotes it at concurrency 1 and 2).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexus_assets.lib.ingest.sample_data import SAMPLE_PARTITIONS
from nexus_assets_tests.support import services, unavailable
from nexus_assets_tests.support.webserver import (
    ASSETS,
    LOCATION,
    PROJECT_ROOT,
    REPOSITORY,
    Webserver,
    daemon_command,
    free_port,
    partition_key,
    start_process,
    stop_process_group,
    wait_until_loaded,
    webserver_command,
)

pytestmark = pytest.mark.slow

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MAX_RUNS = int(os.environ.get("NEXUS_TEST_MAX_CONCURRENT_RUNS", "2"))
BACKFILL_TIMEOUT_S = 600
IN_PROGRESS = ("STARTING", "STARTED", "CANCELING")


def _pg(dbname: str = "postgres"):
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        conn = psycopg2.connect(dbname=dbname, connect_timeout=5, **PG)
    except psycopg2.OperationalError as exc:
        unavailable(f"no PostgreSQL on {PG['host']}:{PG['port']} ({exc})")
    conn.autocommit = True
    return conn


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A new database for this run, dropped afterwards (even while daemons still hold connections)."""
    _pg().close()  # skips (or fails in CI) without PostgreSQL
    with services.fresh_database("nexus_test") as name:
        yield name


def _nexus(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "nexus_assets.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"nexus {' '.join(args)} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


def test_ui_backfill_on_postgres_respects_the_run_queue(
    fresh_database: str, tmp_path: Path, sample_raw_root: Path
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(sample_raw_root, data_dir / "raw-curriculum")
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "NEXUS_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
        "NEXUS_ENV": "local",
        "DAGSTER_PG_HOST": PG["host"],
        "DAGSTER_PG_PORT": str(PG["port"]),
        "DAGSTER_PG_USER": PG["user"],
        "DAGSTER_PG_PASSWORD": "trust-auth-ignores-it",
        "DAGSTER_PG_DB": fresh_database,
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    (home / "dagster.yaml").write_text(
        _nexus(["deploy", "render-instance", "--max-concurrent-runs", str(MAX_RUNS)], env)
    )
    assert "embedding: 1" in _nexus(["deploy", "apply-pools"], env).replace("pool ", "")

    port = free_port()
    webserver = start_process(webserver_command(port), env, tmp_path / "webserver.log")
    daemon = start_process(daemon_command(), env, tmp_path / "daemon.log")
    server = Webserver(f"http://127.0.0.1:{port}", webserver, tmp_path / "webserver.log", data_dir, home)
    runs_db = _pg(fresh_database)
    try:
        wait_until_loaded(server)
        repo = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
        # What the UI's "Add partition" dialog sends, once per folder (the daemon's curriculum_folders_sensor
        # may have registered it first: then Dagster answers that it exists).
        for subject, grade in SAMPLE_PARTITIONS:
            added = server.gql(
                "mutation($repo: RepositorySelector!, $def: String!, $key: String!) {"
                " addDynamicPartition(repositorySelector: $repo, partitionsDefName: $def, partitionKey: $key)"
                " { __typename ... on PythonError { message } ... on UnauthorizedError { message } } }",
                {"repo": repo, "def": "curriculum", "key": partition_key(subject, grade)},
            )["addDynamicPartition"]
            assert added["__typename"] in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"), added

        partitions = [partition_key(s, g) for s, g in SAMPLE_PARTITIONS]
        assert len(partitions) >= 6
        started = time.monotonic()
        launched = server.gql(
            "mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {"
            " __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }"
            " ... on PartitionSetNotFoundError { message } ... on UnauthorizedError { message } } }",
            {
                "params": {
                    "assetSelection": [{"path": [a]} for a in ASSETS],
                    "partitionNames": partitions,
                    "fromFailure": False,
                    "tags": [{"key": "dagster/from_ui", "value": "true"}],
                }
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        most_in_progress, status = 0, "REQUESTED"
        deadline = started + BACKFILL_TIMEOUT_S
        while time.monotonic() < deadline:
            for name, process in (("dagster-daemon", daemon), ("dagster-webserver", webserver)):
                if process.poll() is not None:
                    server.fail(
                        f"{name} exited with {process.returncode}:\n"
                        + (tmp_path / "daemon.log").read_text(errors="replace")[-4000:]
                    )
            with runs_db.cursor() as cur:
                cur.execute("SELECT count(*) FROM runs WHERE status = ANY(%s)", (list(IN_PROGRESS),))
                most_in_progress = max(most_in_progress, cur.fetchone()[0])
            status = server.gql(
                "query($id: String!) { partitionBackfillOrError(backfillId: $id) {"
                " ... on PartitionBackfill { status } } }",
                {"id": backfill_id},
            )["partitionBackfillOrError"]["status"]
            if status not in ("REQUESTED", "CANCELING", "FAILING"):
                break
            time.sleep(0.5)
        wall = time.monotonic() - started
        if status not in ("COMPLETED", "COMPLETED_SUCCESS"):
            server.fail(
                f"backfill {backfill_id} ended as {status} after {wall:.0f} s; daemon log:\n"
                + (tmp_path / "daemon.log").read_text(errors="replace")[-6000:]
            )
        print(
            f"\nbackfill of {len(partitions)} partitions at max_concurrent_runs={MAX_RUNS}: {wall:.0f} s "
            f"wall, at most {most_in_progress} runs in progress"
        )

        assert 1 <= most_in_progress <= MAX_RUNS, f"{most_in_progress} runs in progress, limit {MAX_RUNS}"
        if MAX_RUNS >= 2:
            assert most_in_progress >= 2, "the queue never ran two partitions at once"
        for subject, grade in SAMPLE_PARTITIONS:
            vkp = data_dir / "vkp" / f"{subject}_{grade}_v1.0.0.vkp"
            assert vkp.is_file(), f"{vkp} was not published"
        # The runs are Postgres rows: one successful run per partition, all from this backfill.
        with runs_db.cursor() as cur:
            cur.execute(
                "SELECT r.status, t.value FROM runs r JOIN run_tags t ON t.run_id = r.run_id"
                " WHERE t.key = 'dagster/partition' AND r.run_id IN"
                " (SELECT run_id FROM run_tags WHERE key = 'dagster/backfill' AND value = %s)",
                (backfill_id,),
            )
            rows = cur.fetchall()
        assert sorted(p for s, p in rows if s == "SUCCESS") == sorted(partitions), rows
    finally:
        runs_db.close()
        stop_process_group(daemon)
        stop_process_group(webserver)
