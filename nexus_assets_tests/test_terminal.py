"""`nexus build` in a real terminal: tmux runs it on a pseudo-terminal and its screen is read while it runs.

Dagster's compute-log capture points fd 2 at a file during each step and mirrors it back with `tail -F`;
the display holds its own duplicate of the terminal (cli_progress.HeldStderr). What is checked is what a
data engineer sees: bar lines that end with their elapsed time (nothing glued to them), one frame of
bars at a time, the embedding bar moving while the step runs, nothing of the display in the compute
logs; and Ctrl-C ending the build with exit 130 and one line, no traceback.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from nexus_assets_tests.support import PROJECT_ROOT
from nexus_assets_tests.support.textbook_pdf import long_textbook

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"),
]

NEXUS = Path(sys.executable).with_name("nexus")
BAR = "━"
BAR_LINE_END = re.compile(r"\d+:\d\d:\d\d\s*$")  # the elapsed-time column ends every bar line
EMBEDDED = re.compile(r"chunks embedded\s+[━╸╺ ]+\s+(\d+)/(\d+)")
TIMEOUT_S = 400


class Terminal:
    """A detached tmux session of its own (private server socket) running one shell command."""

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.socket = f"nexus-test-{uuid.uuid4().hex[:8]}"
        flags = [arg for k, v in env.items() for arg in ("-e", f"{k}={v}")]
        self._tmux(
            "new-session", "-d", "-x", "120", "-y", "40", "-s", "t", *flags, f"{command}; echo EXIT=$?; sleep 600"
        )

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True, timeout=30
        ).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def scrollback(self) -> str:
        return self._tmux("capture-pane", "-p", "-S", "-", "-t", "t")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def watch(self, until: str, timeout: float = TIMEOUT_S) -> list[str]:
        """Snapshots of the screen every 0.2 s until `until` shows."""
        shots: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shots.append(self.screen())
            if until in shots[-1]:
                return shots
            time.sleep(0.2)
        pytest.fail(f"{until!r} never showed; last screen:\n{shots[-1] if shots else ''}", pytrace=False)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30, check=False)


@pytest.fixture
def workspace(tmp_path: Path, sample_raw_root: Path) -> tuple[Path, dict[str, str]]:
    """The sample PDFs plus two long generated textbooks in partitions of their own."""
    data = tmp_path / "data"
    shutil.copytree(sample_raw_root, data / "raw-curriculum")
    long_textbook(data / "raw-curriculum/informatika/kelas_12/panjang.pdf", pages=60, seed=1)
    long_textbook(data / "raw-curriculum/sejarah/kelas_12/panjang.pdf", pages=60, seed=5)
    env = {"DAGSTER_HOME": str(tmp_path / "home"), "NEXUS_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    return tmp_path, env


def _build(subject: str, grade: str, *flags: str) -> str:
    return f"cd {PROJECT_ROOT} && {NEXUS} build --subject {subject} --grade {grade} {' '.join(flags)}"


def test_build_progress_draws_cleanly_in_a_real_terminal(workspace: tuple[Path, dict[str, str]]) -> None:
    tmp_path, env = workspace
    terminal = Terminal(_build("informatika", "kelas_12", "-v"), env)
    try:
        shots = terminal.watch("EXIT=")
        scrollback = terminal.scrollback()
    finally:
        terminal.close()
    assert "EXIT=0" in shots[-1], shots[-1]
    assert "informatika/kelas_12  completed" in shots[-1]
    for shot in shots:
        lines = shot.splitlines()
        bars = [line for line in lines if BAR in line]
        glued = [line for line in bars if not BAR_LINE_END.search(line)]
        assert not glued, f"text glued to a bar line: {glued}\n{shot}"
        assert sum(line.startswith("partitions") for line in lines) <= 1, f"stale frames piled up:\n{shot}"
    # -v shows the steps' messages above the bars, each on a line of its own.
    assert re.search(r"^\[1/1\] informatika/kelas_12: raw_pdfs: 1 PDFs under ", scrollback, re.M), scrollback[-3000:]
    progress = {(int(m[1]), int(m[2])) for shot in shots for m in EMBEDDED.finditer(shot)}
    moving = {done for done, total in progress if 0 < done < total}
    assert len(moving) >= 2, f"the embedding bar did not move while the step ran: {sorted(progress)}"
    logs = list((tmp_path / "home" / "storage").glob("*/compute_logs/*"))
    assert logs, "the run kept compute logs"
    for log in logs:
        text = log.read_text(errors="replace")
        assert BAR not in text and "chunks embedded " not in text, f"the display leaked into {log}"


def test_ctrl_c_ends_the_build_with_130_and_one_line(workspace: tuple[Path, dict[str, str]]) -> None:
    tmp_path, env = workspace
    terminal = Terminal(_build("sejarah", "kelas_12"), env)
    try:
        terminal.watch("chunks embedded")
        terminal.keys("C-c")
        shots = terminal.watch("EXIT=", timeout=90)
        scrollback = terminal.scrollback()
    finally:
        terminal.close()
    assert "EXIT=130" in shots[-1], shots[-1]
    said = [line for line in scrollback.splitlines() if line.startswith("error:")]
    assert len(said) == 1 and said[0].startswith("error: interrupted during sejarah/kelas_12, step chunk_embeddings")
    assert "kept:" in scrollback.replace("\n", "")
    assert "Traceback" not in scrollback and "KeyboardInterrupt" not in scrollback, scrollback[-3000:]
    assert "step that failed" not in scrollback
    assert not list((tmp_path / "data" / "vkp").glob("sejarah_kelas_12_*")), "nothing was published"
