"""The shared services of a multi-worker deployment, each private to one test or benchmark run.

A fresh Postgres database, a RabbitMQ vhost, a Chroma server on a free port, and celery run workers
(`python -m celery -A dagster_celery.app worker`, each in its own working directory, DAGSTER_HOME and
data directory, so the workers share no disk). Used by test_scale_out.py and benchmarks/bench_scale_out.py;
plain stdlib plus psycopg2 (pytest only in `unavailable`), so the benchmark runs without pytest.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nexus_assets_tests.support import PROJECT_ROOT

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
RABBITMQ = "127.0.0.1:5672"
REDIS = "127.0.0.1:6379"
CELERY_CONFIG_DIR = PROJECT_ROOT / "deploy" / "celery"
IN_PROGRESS = ("STARTING", "STARTED", "CANCELING")


class ServiceUnavailable(RuntimeError):
    """A service this machine should run (Postgres, RabbitMQ, Redis) does not answer."""


def pg_connect(dbname: str = "postgres"):
    """An autocommit psycopg2 connection to the local Postgres (trust auth)."""
    import psycopg2

    try:
        conn = psycopg2.connect(dbname=dbname, connect_timeout=5, **PG)
    except psycopg2.OperationalError as exc:
        raise ServiceUnavailable(f"no PostgreSQL on {PG['host']}:{PG['port']} ({exc})") from exc
    conn.autocommit = True
    return conn


@contextmanager
def fresh_database(prefix: str = "nexus_scale") -> Iterator[str]:
    """A new database, dropped afterwards even while daemons or workers still hold connections."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = pg_connect()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _rabbitmqctl(*args: str) -> None:
    try:
        done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceUnavailable(f"rabbitmqctl {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        raise ServiceUnavailable(f"rabbitmqctl {' '.join(args)} failed: {(done.stderr or done.stdout).strip()[-500:]}")


@contextmanager
def rabbitmq_vhost(prefix: str = "nexus_scale") -> Iterator[str]:
    """A RabbitMQ vhost of its own for guest (the broker URL's path), deleted afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        try:
            _rabbitmqctl("delete_vhost", name)
        except ServiceUnavailable:
            pass


def celery_urls(vhost: str, redis_db: int) -> dict[str, str]:
    """The broker and backend variables deploy/launchers/celery.yaml and dagster_celery_config.py read."""
    return {
        "DAGSTER_CELERY_BROKER_URL": f"pyamqp://guest:guest@{RABBITMQ}/{vhost}",
        "DAGSTER_CELERY_BACKEND_URL": f"redis://{REDIS}/{redis_db}",
    }


def start_process(command: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """`command` in a session of its own (stopped with its children by `stop_group`), output to `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_group(process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """SIGTERM the process group, SIGKILL what is left after `timeout_s`."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@dataclass
class CeleryWorker:
    """One run worker host: its own directory (working dir, DAGSTER_HOME, NEXUS_DATA_DIR) and log."""

    name: str
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def log_path(self) -> Path:
        return self.root / "worker.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def received_task_ids(self) -> set[str]:
        """The celery task ids this worker took (celery logs `Task execute_job[<id>] received`)."""
        return set(re.findall(r"Task execute_job\[([0-9a-f-]+)\] received", self.log()))

    def pool_children(self) -> list[int]:
        """The pids of the worker's pool processes (the ones that execute runs)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in children.read_text().split()]
        except OSError:
            return []


def start_celery_worker(name: str, root: Path, env: dict[str, str], instance_yaml: str) -> CeleryWorker:
    """A celery worker consuming the `dagster` queue, one run at a time, in an empty directory of its own.

    `python -m celery` (not the console script: in a layered venv it points at the base interpreter);
    deploy/celery on PYTHONPATH for dagster_celery_config. The worker's instance is `instance_yaml` in its
    own DAGSTER_HOME; its data directory starts empty, so whatever it needs comes from S3 and DynamoDB.
    """
    home, data = root / "dagster_home", root / "data"
    home.mkdir(parents=True)
    data.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml)
    pythonpath = os.pathsep.join([str(CELERY_CONFIG_DIR), str(PROJECT_ROOT)])
    worker_env = {**env, "DAGSTER_HOME": str(home), "NEXUS_DATA_DIR": str(data), "PYTHONPATH": pythonpath}
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "dagster_celery.app",
        "worker",
        "-Q",
        "dagster",
        "-n",
        f"{name}@%h",
        "--concurrency",
        "1",
        "--prefetch-multiplier",
        "1",
        "--max-tasks-per-child",
        "25",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]
    log_path = root / "worker.log"
    return CeleryWorker(name, root, start_process(command, worker_env, log_path, cwd=root))


def wait_for_workers(workers: list[CeleryWorker], timeout_s: float = 120) -> None:
    """Until every worker logs `ready.` (connected to the broker); RuntimeError with its log otherwise."""
    deadline = time.monotonic() + timeout_s
    pending = list(workers)
    while pending:
        for worker in list(pending):
            if worker.process.poll() is not None:
                raise RuntimeError(f"celery worker {worker.name} exited:\n{worker.log()[-3000:]}")
            if " ready." in worker.log():
                pending.remove(worker)
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"celery worker {pending[0].name} not ready:\n{pending[0].log()[-3000:]}")
        time.sleep(0.3)


@contextmanager
def chroma_server(root: Path, port: int) -> Iterator[str]:
    """`chroma run` (the installed chromadb's server) on loopback; yields its host:port once it answers."""
    import chromadb
    from chromadb.config import Settings

    chroma = Path(sys.executable).with_name("chroma")
    log = root / "chroma.log"
    process = start_process(
        [str(chroma), "run", "--path", str(root / "chroma"), "--host", "127.0.0.1", "--port", str(port)],
        {**os.environ},
        log,
        cwd=root,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                chromadb.HttpClient(
                    host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False)
                ).heartbeat()
                break
            except Exception as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chroma run did not answer:\n{log.read_text()[-3000:]}") from exc
                time.sleep(0.3)
        yield f"127.0.0.1:{port}"
    finally:
        stop_group(process)


def most_runs_in_progress(conn) -> int:
    """Runs the instance counts against max_concurrent_runs right now (waiting in the broker included)."""
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs WHERE status = ANY(%s)", (list(IN_PROGRESS),))
        return int(cur.fetchone()[0])


def nexus_cli(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    """`nexus ARGS` in a subprocess with `env`; its stdout, AssertionError with its output on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "nexus_assets.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"nexus {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def deployment_env(
    database: str, keys: Path, chroma: str | None = None, vhost: str | None = None, redis_db: int = 0
) -> dict[str, str]:
    """The environment every process of a test deployment shares: this one's without its NEXUS_* and
    DAGSTER_* variables, plus the Postgres database, the Chroma server (host:port) and the celery broker
    (a vhost) where given, and one signing key for the deployment (generated into `keys`, as
    `nexus keys generate` writes it: a secret in production), so every worker signs alike."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEXUS_", "DAGSTER_"))}
    nexus_cli(["keys", "generate", "--out", str(keys)], env)
    env.update(
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(PROJECT_ROOT),
        DAGSTER_PG_HOST=str(PG["host"]),
        DAGSTER_PG_PORT=str(PG["port"]),
        DAGSTER_PG_USER=str(PG["user"]),
        DAGSTER_PG_PASSWORD="trust-auth-ignores-it",
        DAGSTER_PG_DB=database,
        NEXUS_SIGNING_KEY=(keys / "nexus-signing.key").read_text(),
    )
    if chroma:
        host, port = chroma.split(":")
        env.update(NEXUS_CHROMA_MODE="server", NEXUS_CHROMA_HOST=host, NEXUS_CHROMA_PORT=port)
    if vhost:
        env.update(celery_urls(vhost, redis_db))
    return env


def dagster_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m dagster ...` (not the console script: layered venvs point it at another interpreter)."""
    return subprocess.run(
        [sys.executable, "-m", "dagster", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180
    )


# Sensors that run by default in aws mode: the upload sensor would build the uploaded partitions itself.
UPLOAD_SENSORS = ("raw_upload_sensor", "sqs_upload_sensor")


def stop_upload_sensors(env: dict[str, str], workspace: Path = PROJECT_ROOT / "workspace.yaml") -> None:
    """Stop the upload sensors in the instance (they default to running in aws mode), so only the
    backfill requests builds."""
    for sensor in UPLOAD_SENSORS:
        stopped = dagster_cli(["sensor", "stop", sensor, "-w", str(workspace), "-l", "nexus_assets"], env)
        if stopped.returncode != 0:
            raise RuntimeError(f"dagster sensor stop {sensor} failed:\n{stopped.stderr[-2000:]}")


def start_daemon(
    env: dict[str, str], log_path: Path, workspace: Path = PROJECT_ROOT / "workspace.yaml"
) -> subprocess.Popen[bytes]:
    """dagster-daemon on `workspace` (`python -m dagster._daemon`, for layered venvs)."""
    command = [sys.executable, "-m", "dagster._daemon", "run", "-w", str(workspace)]
    return start_process(command, env, log_path, cwd=PROJECT_ROOT)


def launch_backfill(
    home: Path, env: dict[str, str], partitions: list, assets: tuple[str, ...], definitions: object = None
) -> str:
    """One asset backfill of `assets` over `partitions`, stored in the instance as the UI's
    launchPartitionBackfill stores it; the daemon does the rest.

    `partitions` are the project's `Partition`s (registered first, keys from `key_of`), or plain
    partition key strings of `definitions` (a `dg.Definitions`; the project's by default)."""
    import dagster as dg
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    from nexus_assets.defs.partitions import key_of, register_partitions

    if definitions is None:
        from nexus_assets.definitions import defs as definitions
    assert isinstance(definitions, dg.Definitions)
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith("DAGSTER_PG_")})
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            project = [p for p in partitions if not isinstance(p, str)]
            if project:
                register_partitions(instance, project)
            backfill = PartitionBackfill.from_asset_partitions(
                backfill_id=make_new_backfill_id(),
                asset_graph=definitions.resolve_asset_graph(),
                partition_names=[p if isinstance(p, str) else str(key_of(p)) for p in partitions],
                asset_selection=[dg.AssetKey(a) for a in assets],
                backfill_timestamp=time.time(),
                tags={},
                dynamic_partitions_store=instance,
                all_partitions=False,
                title="scale-out backfill",
                description=None,
                run_config=None,
            )
            instance.add_backfill(backfill)
            return backfill.backfill_id
    finally:
        os.environ.clear()
        os.environ.update(saved)


def backfill_status(conn, backfill_id: str) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT status FROM bulk_actions WHERE key = %s", (backfill_id,))
        return str(cur.fetchone()[0])


def download_packages(env: dict[str, str], partitions: list, dest: Path) -> list[str]:
    """The newest package of each partition in the aws-mode bucket of `env`, downloaded to `dest`
    (boto3 takes the credentials from os.environ: set for the call only)."""
    from nexus_assets.lib.aws.aws_config import AwsSettings

    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    try:
        store = AwsSettings.from_env(env).object_store()
        files = []
        for p in partitions:
            prefix = f"vkp/{p.subject}_{p.grade}_v"
            names = sorted(o["Key"] for o in store.list_keys(prefix) if o["Key"].endswith(".vkp"))
            if not names:
                raise AssertionError(f"no package of {p} in the bucket (under {prefix})")
            target = dest / Path(names[-1]).name
            store.download_file(names[-1], target)
            files.append(str(target))
        return files
    finally:
        os.environ.clear()
        os.environ.update(saved)
