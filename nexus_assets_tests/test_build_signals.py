"""SIGTERM stops `nexus build` like Ctrl-C: exit 143, one line, the run recorded failed, nothing published.

Dagster maps SIGTERM onto its SIGINT handler while a run executes, so the step failed and was then
retried under the assets' retry policy: `timeout`, systemd and `docker stop` could not stop a build.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nexus_assets_tests.support import PROJECT_ROOT
from nexus_assets_tests.support.textbook_pdf import long_textbook

pytestmark = pytest.mark.slow

NEXUS = Path(sys.executable).with_name("nexus")


def test_sigterm_during_embedding_ends_the_build_with_143(tmp_path: Path) -> None:
    data = tmp_path / "data"
    long_textbook(data / "raw-curriculum/sejarah/kelas_12/panjang.pdf", pages=60, seed=5)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "NEXUS_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        build = subprocess.Popen(
            [str(NEXUS), "build", "-v", "--subject", "sejarah", "--grade", "kelas_12"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            deadline = time.monotonic() + 400
            while "chunk_embeddings" not in log.read_text(errors="replace"):
                assert build.poll() is None, log.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "the build never reached chunk_embeddings"
                time.sleep(0.2)
            build.send_signal(signal.SIGTERM)
            code = build.wait(timeout=120)
        finally:
            if build.poll() is None:
                build.kill()
    said = log.read_text(errors="replace")
    assert code == 143, said[-3000:]
    errors = [line for line in said.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: SIGTERM: interrupted during sejarah/kelas_12"), errors
    assert "retry" not in said.lower() and "Traceback" not in said, said[-3000:]
    assert not list((data / "vkp").glob("sejarah_kelas_12_*")), "nothing was published"
