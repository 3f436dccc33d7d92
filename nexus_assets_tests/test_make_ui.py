"""`make ui` as a newcomer runs it: `dg dev` (not the superseded `dagster dev`), quiet until something is wrong.

The target is run for real (make, dg, webserver, daemon) on a fresh DAGSTER_HOME and a free port; the
test waits for the webserver and the daemon, lets the daemon tick, stops it with Ctrl-C (SIGINT to the
process group, as a terminal does) and reads everything `make ui` printed: the one line saying where the
UI is, and nothing of our own making (no supersession notice, no "dagster.yaml ... will not be used",
no line per sensor tick, no traceback on Ctrl-C).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from nexus_assets_tests.support import PROJECT_ROOT
from nexus_assets_tests.support.webserver import free_port

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT_S = 240
TICKS_S = 45  # more than one 30 s sensor interval: a line per sensor tick would show


def _daemon_running(home: Path) -> bool:
    """The daemon has written its heartbeat into the instance (dagster's own check, as the UI shows it)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        return bool(instance.get_daemon_heartbeats())


def test_make_ui_starts_dg_dev_without_warnings_of_its_own_making(tmp_path: Path) -> None:
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NEXUS_", "DAGSTER_"))},
        "DAGSTER_HOME": str(home),
        "NEXUS_DATA_DIR": str(data),
        "HF_HUB_OFFLINE": "1",
    }
    log = tmp_path / "make_ui.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "ui", f"UI_PORT={port}"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            assert make.poll() is None, f"make ui exited with {make.returncode}:\n{log.read_text()[-4000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as answer:
                    assert b"dagster_webserver_version" in answer.read()
                if _daemon_running(home):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"no webserver and daemon on {port}:\n{log.read_text()[-4000:]}"
            time.sleep(2)
        time.sleep(TICKS_S)
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C in the terminal: make, dg, webserver and daemon
        make.wait(timeout=120)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=30)
    text = log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    assert any(re.search(rf"/dg dev -w \S+/workspace.yaml -h 127.0.0.1 -p {port}", line) for line in lines), text
    assert f"Dagster UI: http://127.0.0.1:{port}" in text
    for unwanted in ("superseded", "will not be used", "Traceback", "DeprecationWarning", "sensor", "Warning"):
        assert unwanted not in text, f"{unwanted!r} in make ui's output:\n{text}"
    assert (home / "dagster.yaml").is_symlink(), "make ui used the repository's instance profile"
