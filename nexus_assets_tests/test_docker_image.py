"""The production image built and run, with no Docker Hub: the CLI, one partition, a DockerRunLauncher backfill.

The engine is the one that answers or a private dockerd (support/containers.py); the base is the
debootstrapped bookworm from scripts/build_base_image.sh; the packages are requirements.lock's wheels,
served on loopback to `docker build --network host` (PIP_INSTALL_ARGS), so the build reaches only
loopback and Debian's mirror (Tesseract). In the image: `nexus --version`, then a one-partition build
and `vkp verify` in a container. Then the daemon on this host, with `nexus deploy render-instance
--launcher docker`, backfills two sample partitions, each run in its own container of the image on
the host network (Postgres and moto are on loopback), in aws mode.

Skipped, with the reason, only where no container engine can run at all. Cost (printed): cold, the
base (debootstrap, about 3 minutes) and the image (the lock's 670 MB of wheels); warm, docker's layer
cache under ~/.cache/nexus-assets/docker keeps both, and only changed layers are rebuilt.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from nexus_assets_tests.support import PROJECT_ROOT, make_aws_env
from nexus_assets_tests.support.containers import (
    DEBIAN_PYTHON_EXTRAS,
    NoContainerEngine,
    container_engine,
    offline_base_image,
    serve_directory,
    wheelhouse,
)
from nexus_assets_tests.support.services import (
    ServiceUnavailable,
    deployment_env,
    download_packages,
    fresh_database,
    launch_backfill,
    nexus_cli,
    pg_connect,
    start_daemon,
    stop_group,
    stop_upload_sensors,
)
from nexus_assets_tests.support.webserver import ASSETS

pytestmark = pytest.mark.slow

IMAGE = "nexus-assets:test"
MODEL_CACHE_VOLUME = "nexus-model-cache"
BACKFILL_TIMEOUT_S = 900


def docker(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_the_image_builds_and_runs_the_cli_a_partition_and_a_docker_backfill(
    moto_endpoint: str, tmp_path: Path
) -> None:
    try:
        with container_engine() as env:
            _build_and_run(env, moto_endpoint, tmp_path)
    except NoContainerEngine as exc:
        pytest.skip(f"no container engine can run here: {exc}")


def _build_and_run(env: dict[str, str], moto_endpoint: str, tmp_path: Path) -> None:
    started = time.monotonic()
    base = offline_base_image(env)
    based = time.monotonic()
    wheels = wheelhouse()
    with serve_directory(wheels) as url:
        # The build stage tagged too: untagged, it would be a dangling image, pruned below with its
        # cache (the lock's layer); tagged, only superseded images are pruned.
        build_args = [
            "--force-rm",  # no containers left behind by a failed step
            "--network",
            "host",
            "--build-arg",
            f"BASE={base}",
            "--build-arg",
            f"PIP_INSTALL_ARGS=--no-index --find-links {url}/index.html {' '.join(DEBIAN_PYTHON_EXTRAS)}",
        ]
        stage = docker(
            ["build", *build_args, "--target", "build", "-t", f"{IMAGE}-build", str(PROJECT_ROOT)], env, 3600
        )
        assert stage.returncode == 0, stage.stdout[-4000:] + stage.stderr[-4000:]
        build = docker(
            [
                "build",
                *build_args,
                "-t",
                IMAGE,
                str(PROJECT_ROOT),
            ],
            env,
            timeout=3600,
        )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    built = time.monotonic()
    cached = stage.stdout.count("Using cache") + build.stdout.count("Using cache")
    print(f"\nimage: base {based - started:.0f} s, build {built - based:.0f} s ({cached} cached steps)")
    try:
        version = docker(["run", "--rm", IMAGE, "nexus", "--version"], env, timeout=120)
        assert version.returncode == 0 and "nexus" in version.stdout.lower(), version.stdout + version.stderr
        # A throwaway SQLite instance and data dir: the image's own home is the Postgres profile.
        partition = docker(
            [
                "run",
                "--rm",
                "-e",
                "DAGSTER_HOME=/tmp/home",
                "-e",
                "NEXUS_DATA_DIR=/tmp/data",
                # The volume the launcher gives every run (deploy/launchers/docker.yaml): the backfill's runs
                # load the engine this build measured.
                "-v",
                f"{MODEL_CACHE_VOLUME}:/opt/dagster/cache",
                IMAGE,
                "sh",
                "-ec",
                "mkdir -p /tmp/home && nexus sample-data && nexus build --subject informatika --grade kelas_10"
                " && nexus vkp verify /tmp/data/vkp/informatika_kelas_10_v1.0.0.vkp",
            ],
            env,
        )
        assert partition.returncode == 0, partition.stdout[-4000:] + partition.stderr[-4000:]
        assert "OK /tmp/data/vkp/informatika_kelas_10_v1.0.0.vkp" in partition.stdout, partition.stdout[-3000:]
        cache = docker(
            [
                "run",
                "--rm",
                "-v",
                f"{MODEL_CACHE_VOLUME}:/opt/dagster/cache",
                IMAGE,
                "ls",
                "/opt/dagster/cache/engine-choices",
            ],
            env,
            timeout=120,
        )
        assert cache.returncode == 0 and ".json" in cache.stdout, f"no engine measurement kept in the volume: {cache}"
        one = time.monotonic()
        print(f"image: nexus --version and a one-partition build in a container {one - built:.0f} s")
        try:
            with fresh_database("nexus_docker") as database:
                _docker_backfill(env, database, moto_endpoint, tmp_path)
        except ServiceUnavailable as exc:
            pytest.fail(f"the image was built and run, but the backfill needs Postgres: {exc}")
        print(f"image: DockerRunLauncher backfill of two partitions {time.monotonic() - one:.0f} s")
    finally:
        docker(["image", "prune", "-f"], env, timeout=300)  # dangling layers of earlier builds; the tag stays


def _docker_backfill(docker_env: dict[str, str], database: str, moto_endpoint: str, tmp_path: Path) -> None:
    from nexus_assets.defs.partitions import key_of
    from nexus_assets.lib.core.layout import Partition
    from nexus_assets.lib.ingest.sample_data import SAMPLE_PARTITIONS

    partitions = [Partition(subject, grade) for subject, grade in SAMPLE_PARTITIONS[:2]]
    keys = tmp_path / "keys"
    home = tmp_path / "daemon_home"
    home.mkdir()
    env = {
        **deployment_env(database, keys),
        **make_aws_env(moto_endpoint),
        "DOCKER_HOST": docker_env.get("DOCKER_HOST", ""),
        "DAGSTER_HOME": str(home),
        "NEXUS_DATA_DIR": str(tmp_path / "daemon_data"),
        "NEXUS_RUN_IMAGE": IMAGE,
        "NEXUS_RUN_NETWORK": "host",  # dockerd runs with --bridge none; Postgres and moto are on loopback
        # Local Chroma (its archive goes to the bucket); the launcher passes every listed name on.
        "NEXUS_CHROMA_MODE": "local",
        "NEXUS_CHROMA_HOST": "127.0.0.1",
        "NEXUS_CHROMA_PORT": "8000",
        "NEXUS_CHROMA_TOKEN": "",
    }
    if not env["DOCKER_HOST"]:
        del env["DOCKER_HOST"]
    config = yaml.safe_load(nexus_cli(["deploy", "render-instance", "--launcher", "docker"], env))
    assert config["run_launcher"]["class"] == "DockerRunLauncher"
    volumes = config["run_launcher"]["config"]["container_kwargs"]["volumes"]
    assert f"{MODEL_CACHE_VOLUME}:/opt/dagster/cache" in volumes, volumes
    config["run_monitoring"]["poll_interval_seconds"] = 5
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    nexus_cli(["aws", "bootstrap"], env)
    nexus_cli(["--data-dir", str(tmp_path / "uploader"), "sample-data"], env)
    nexus_cli(["deploy", "apply-pools"], env)
    stop_upload_sensors(env)
    daemon = start_daemon(env, tmp_path / "daemon.log")
    runs_db = pg_connect(database)
    try:
        backfill_id = launch_backfill(home, env, partitions, ASSETS)
        deadline, status = time.monotonic() + BACKFILL_TIMEOUT_S, "REQUESTED"
        while time.monotonic() < deadline and status in ("REQUESTED", "CANCELING", "FAILING"):
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text(errors="replace")[-4000:]
            time.sleep(1)
            with runs_db.cursor() as cur:
                cur.execute("SELECT status FROM bulk_actions WHERE key = %s", (backfill_id,))
                [(status,)] = cur.fetchall()
        with runs_db.cursor() as cur:
            cur.execute(
                "SELECT r.status, p.value, c.value FROM runs r"
                " JOIN run_tags p ON p.run_id = r.run_id AND p.key = 'dagster/partition'"
                " LEFT JOIN run_tags c ON c.run_id = r.run_id AND c.key = 'docker/container_id'"
            )
            runs = cur.fetchall()
        logs = ""
        for _, _, container in runs:
            if container:
                logs += docker(["logs", "--tail", "40", container], docker_env, timeout=60).stderr[-3000:]
        assert status == "COMPLETED_SUCCESS", (
            f"backfill {status}: {runs}\n{logs}\n" + (tmp_path / "daemon.log").read_text(errors="replace")[-4000:]
        )
        assert sorted(p for s, p, _ in runs if s == "SUCCESS") == sorted(str(key_of(p)) for p in partitions), runs
        containers = {c for _, _, c in runs}
        assert None not in containers and len(containers) == len(runs), f"every run in a container of its own: {runs}"
        for container in containers:
            inspect = docker(["inspect", "-f", "{{.Config.Image}} {{.State.ExitCode}}", container], docker_env, 60)
            assert inspect.stdout.split() == [IMAGE, "0"], inspect.stdout + inspect.stderr
        vkps = download_packages(env, partitions, tmp_path / "downloads")
        verify_env = {k: v for k, v in env.items() if k != "NEXUS_SIGNING_KEY"}
        verified = nexus_cli(["vkp", "verify", "--public-key", str(keys / "nexus-signing.pub"), *vkps], verify_env)
        assert verified.count("OK ") == len(vkps), verified
    finally:
        runs_db.close()
        stop_group(daemon)
        listed = docker(["ps", "-aq", "--filter", "label=project=nexus-assets"], docker_env, 60).stdout.split()
        if listed:
            docker(["rm", "-f", *listed], docker_env, 120)
