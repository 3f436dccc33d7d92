"""psutil-backed process identities and filelock-backed partition locks keep the hand-written versions' rules."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nexus_assets.lib.core.partition_lock import LockTimeoutError, file_lock
from nexus_assets.lib.core.process_identity import current_identity, is_gone

HOST = socket.gethostname()


def _child_identity() -> str:
    code = "from nexus_assets.lib.core.process_identity import current_identity; print(current_identity())"
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def test_this_process_is_alive_and_an_ended_one_is_gone() -> None:
    identity = current_identity()
    host, pid, created = identity.rsplit(":", 2)
    assert (host, int(pid)) == (HOST, os.getpid()) and float(created) > 0
    assert current_identity() == identity, "the same on every reading"
    assert not is_gone(identity)
    ended = _child_identity()
    assert ended.rsplit(":", 2)[1] != pid and is_gone(ended)


def test_a_reused_pid_is_not_the_same_process() -> None:
    host, pid, created = current_identity().rsplit(":", 2)
    assert is_gone(f"{host}:{pid}:{float(created) - 3600:.2f}")


def test_what_cannot_be_judged_from_here_is_never_declared_dead() -> None:
    pid = _child_identity().rsplit(":", 2)[1]  # a pid that no longer runs
    assert not is_gone(f"another-host:{pid}:123.45")
    assert not is_gone(f"{HOST}:{pid}:?")
    assert not is_gone("garbage") and not is_gone(f"{HOST}:not-a-pid:1.00")


def test_identities_written_before_psutil_are_judged_by_the_pid() -> None:
    # host:pid:clock-ticks from /proc: alive while the pid runs, gone once it does not.
    assert not is_gone(f"{HOST}:{os.getpid()}:123456")
    assert is_gone(f"{HOST}:{_child_identity().rsplit(':', 2)[1]}:123456")


def test_a_second_holder_waits_then_times_out_naming_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "p.lock"
    with file_lock(path, "chroma build of informatika/kelas_10"):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError, match="chroma build of informatika/kelas_10: another run has held"):
            with file_lock(path, "chroma build of informatika/kelas_10", timeout_s=0.5):
                pass
        assert time.monotonic() - started >= 0.45
    assert path.is_file(), "the lock file stays beside the data"
    with file_lock(path, "again", timeout_s=0):
        pass


def test_a_killed_holder_never_leaves_a_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / "p.lock"
    code = (
        "import sys, time; from pathlib import Path; from nexus_assets.lib.core.partition_lock import file_lock\n"
        "with file_lock(Path(sys.argv[1]), 'child'):\n    print('held', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeoutError):
            with file_lock(path, "parent", timeout_s=0.3):
                pass
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        with file_lock(path, "parent", timeout_s=5):
            pass
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_plain_flock_holder_excludes_filelock(tmp_path: Path) -> None:
    """A run still on the hand-written lock (fcntl.flock on the same file) and a new one exclude each other."""
    path = tmp_path / "p.lock"
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LockTimeoutError):
            with file_lock(path, "new", timeout_s=0.3):
                pass
        fcntl.flock(handle, fcntl.LOCK_UN)
    with file_lock(path, "new", timeout_s=0):
        pass
