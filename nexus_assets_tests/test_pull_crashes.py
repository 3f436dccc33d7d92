"""`nexus vkp pull` killed with SIGKILL at each named stage of an install (issue 25).

For each fault point (download, verify, extract, swap, prune) a real `nexus vkp pull` process is stopped
there by lib/core/fault_points.py and killed. Then: the release that was serving still serves, byte for
byte (or, killed after the swap, the new release serves complete); the next pull installs the right
version; after it, no staging directory and no `.part` file is left, and the release that served before
the update is the one kept as the previous release (a leftover staging directory never counts as one).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.lib.core.layout import DataLayout
from nexus_assets.lib.distribution.vkp_catalog import document
from nexus_assets.lib.distribution.vkp_pull import installed_release, installed_version, partition_dir
from nexus_assets.lib.publish.signing import Signer, public_pem
from nexus_assets_tests.support.vkp_helpers import PART, files_of, publish

SIGNER = Signer(Ed25519PrivateKey.generate(), "publisher key")
POINTS = ("pull.download", "pull.verify", "pull.extract", "pull.swap", "pull.prune")
KILL_WAIT_S = 120


def _tree(release: Path) -> dict[str, str]:
    """Every file of a release and its sha256: what 'serves byte for byte' compares."""
    return {
        str(p.relative_to(release)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(release.rglob("*"))
        if p.is_file()
    }


def _pull_cmd(catalog: Path, dest: Path, key: Path) -> list[str]:
    return [sys.executable, "-m", "nexus_assets.cli", "vkp", "pull", "--catalog", str(catalog), "--dest", str(dest),
            "--public-key", str(key), "--quiet"]  # fmt: skip


def _killed_at(cmd: list[str], point: str, marker: Path) -> None:
    marker.unlink(missing_ok=True)
    env = {**os.environ, "NEXUS_FAULT_POINT": point, "NEXUS_FAULT_MARKER": str(marker)}
    log = marker.with_suffix(".log")
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + KILL_WAIT_S
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the pull ended (exit {proc.returncode}) before {point}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"the pull did not reach {point} within {KILL_WAIT_S} s")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.reliability(
    "crash", "`nexus vkp pull` SIGKILLed at each install stage: download, verify, extract, swap, prune"
)
@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("kind", ["delta", "full"])
def test_a_pull_killed_at_any_stage_loses_nothing(tmp_path: Path, point: str, kind: str, reliability) -> None:
    layout = DataLayout(tmp_path / "publisher")
    publish(layout, files_of(2), SIGNER)
    key = tmp_path / "publisher.pub"
    key.write_bytes(public_pem(SIGNER.public_key))
    catalog, dest = layout.vkp_dir / "catalog.json", tmp_path / "school"
    first = subprocess.run(_pull_cmd(catalog, dest, key), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    serving = installed_release(dest, PART)
    assert serving is not None
    before = _tree(serving)
    publish(layout, files_of(2, changed={0: "baru"}), SIGNER)
    if kind == "full":  # no delta offered: the full package is extracted
        for delta in layout.vkp_dir.glob("*.vkpd"):
            delta.unlink()
        partitions = json.loads(catalog.read_text())["partitions"]
        partitions[PART.label]["versions"][0]["delta"] = None
        catalog.write_text(json.dumps(document(partitions, SIGNER)))

    _killed_at(_pull_cmd(catalog, dest, key), point, tmp_path / "marker")

    now = installed_release(dest, PART)
    if now == serving:
        assert _tree(serving) == before, f"killed at {point}: the serving release changed"
    else:  # killed after the swap: the new release serves, complete
        assert point == "pull.prune", f"killed at {point}, the current link moved"
        assert installed_version(dest, PART) == "1.0.1"
    again = subprocess.run(_pull_cmd(catalog, dest, key), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert installed_version(dest, PART) == "1.0.1"
    releases = partition_dir(dest, PART) / "releases"
    assert not list(releases.glob(".staging-*")), "a staging directory was left"
    downloads = dest / ".downloads"
    assert not downloads.is_dir() or not any(downloads.iterdir()), f"left: {list(downloads.iterdir())}"
    kept = sorted(p.name for p in releases.iterdir())
    assert serving.name in kept, f"the release serving before the update was pruned: {kept}"
    assert len(kept) == 2, kept
    assert _tree(serving) == before
    reliability(
        f"killed at {point} ({kind}): old release intact, next pull exit 0 -> v1.0.1, "
        f"kept {len(kept)} releases, nothing left"
    )
