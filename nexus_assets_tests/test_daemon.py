"""The automatic path: `dagster-daemon` with the upload sensor in aws mode against moto.

A PDF dropped into the bucket ends as a new VKP in `vkp/` within a bounded wait, with no other action.
"""

import os
import subprocess
import time
from pathlib import Path

import pytest

from nexus_assets.lib.aws.aws_bootstrap import bootstrap
from nexus_assets.lib.aws.aws_config import AwsSettings
from nexus_assets.lib.ingest.sample_data import generate_sample_corpus
from nexus_assets_tests.support.webserver import daemon_command, start_process, stop_process_group

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 300
RECORD_WAIT_S = 240
READY_WAIT_S = 180


def _wait_for_first_ticks(log: Path, daemon: subprocess.Popen, sensors: tuple[str, ...]) -> None:
    """Block until the daemon's log shows a finished tick of each of `sensors` (at most READY_WAIT_S)."""
    deadline = time.monotonic() + READY_WAIT_S
    while time.monotonic() < deadline:
        text = log.read_text()
        if all(f"Sensor {name} skipped" in text for name in sensors):
            return
        assert daemon.poll() is None, "dagster-daemon exited:\n" + text[-5000:]
        time.sleep(1)
    raise AssertionError(
        f"the daemon did not tick {', '.join(sensors)} within {READY_WAIT_S} s:\n" + log.read_text()[-5000:]
    )


def test_a_dropped_pdf_becomes_a_vkp(aws_env: dict[str, str], tmp_path: Path) -> None:
    settings = AwsSettings.from_env(os.environ)
    bootstrap(settings)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "NEXUS_DATA_DIR": str(tmp_path / "work")}
    daemon = start_process(daemon_command(), env, tmp_path / "daemon.log")
    try:
        samples = generate_sample_corpus(tmp_path / "samples")
        pdf = next(p for p in samples if p.name == "buku_siswa_matematika_kelas_11.pdf")
        # A run status sensor starts from the events after its first tick: a run that ends before it is
        # never recorded. Upload only once the job sensors and the upload sensor have ticked once.
        _wait_for_first_ticks(
            tmp_path / "daemon.log", daemon, ("raw_upload_sensor", "job_started_sensor", "job_succeeded_sensor")
        )
        settings.object_store().upload_file("raw-curriculum/matematika/kelas_11/buku.pdf", pdf)
        key = "vkp/matematika_kelas_11_v1.0.0.vkp"
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and not settings.object_store().exists(key):
            assert daemon.poll() is None, "dagster-daemon exited:\n" + (tmp_path / "daemon.log").read_text()[-5000:]
            time.sleep(3)
        waited = WAIT_S - (deadline - time.monotonic())
        assert settings.object_store().exists(key), (
            f"no {key} after {WAIT_S} s:\n" + (tmp_path / "daemon.log").read_text()[-5000:]
        )
        print(f"dropped PDF became {key} in {waited:.0f} s")
        # The run was recorded by the run status sensors (they need the daemon too). Their ticks are
        # 30 s apart and share the daemon with the upload and catalog sensors: allow a few of them.
        deadline = time.monotonic() + RECORD_WAIT_S
        records = []
        while time.monotonic() < deadline:
            records = [
                r
                for r in settings.job_store().recent(days=1)
                if r.status == "completed" and r.partition == "matematika/kelas_11"
            ]
            if records:
                break
            time.sleep(3)
        assert records, (
            f"no completed job record within {RECORD_WAIT_S} s of the VKP:\n"
            + (tmp_path / "daemon.log").read_text()[-5000:]
        )
        assert records[0].total_chunks > 0
    finally:
        stop_process_group(daemon)
