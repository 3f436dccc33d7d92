"""The wheel on its own: built from the checkout, installed into a fresh virtualenv, run outside the checkout.

The new venv gets the project's already-installed dependencies through a `.pth` line (the lock, without
downloading or copying 2.5 GB again; the editable install's own hook is not run, so `nexus_assets` comes
only from the wheel), then `pip install --no-deps` of the wheel. Commands run from an empty directory:
what they need besides code (the instance profile, the deploy profiles) must be inside the wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from nexus_assets.lib.aws.deploy_profiles import LAUNCHERS, pool_limits, render_instance
from nexus_assets_tests.support import PROJECT_ROOT

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_the_wheel_installs_and_builds_outside_the_checkout(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEXUS_", "DAGSTER_", "PYTHON"))}
    env["HF_HUB_OFFLINE"] = "1"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), "."],
        PROJECT_ROOT,
        env,
    )
    [wheel] = wheels.glob("nexus_assets-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # Every profile a command reads: the instance, the production profile, the pools and each launcher
    # `nexus deploy render-instance --launcher` accepts (a new one must be in [tool.setuptools.package-data]).
    launchers = [f"deploy/launchers/{name}.yaml" for name in LAUNCHERS if name != "default"]
    for shipped in ("dagster.yaml", "deploy/dagster.yaml", "deploy/pools.yaml", *launchers):
        assert f"nexus_assets/profiles/{shipped}" in names, shipped
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env).strip()
    )
    (site / "_locked_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], tmp_path, env)

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([str(python), "-c", "import nexus_assets; print(nexus_assets.__file__)"], work, env)
    assert where.startswith(str(site)), f"nexus_assets imported from {where}, not the wheel"
    nexus = str(venv / "bin" / "nexus")
    assert _run([nexus, "--version"], work, env).startswith("nexus 0.1.0 (nexus-assets; dagster 1.13.")
    assert "run_coordinator" in _run([nexus, "deploy", "render-instance"], work, env)
    for launcher in LAUNCHERS:  # the wheel's copies render what the checkout's files do
        rendered = json.loads(_run([nexus, "deploy", "render-instance", "--launcher", launcher, "--json"], work, env))
        assert rendered["instance"] == render_instance(PROJECT_ROOT / "deploy", launcher), launcher
    pools_home = tmp_path / "deployment_home"  # apply-pools writes into the instance DAGSTER_HOME names
    pools_home.mkdir()
    applied = _run([nexus, "deploy", "apply-pools", "--json"], work, {**env, "DAGSTER_HOME": str(pools_home)})
    assert json.loads(applied)["pools"] == pool_limits(PROJECT_ROOT / "deploy")
    _run([nexus, "--data-dir", "data", "sample-data"], work, env)
    out = _run([nexus, "--data-dir", "data", "build", "--subject", "informatika", "--grade", "kelas_10"], work, env)
    assert "informatika/kelas_10  completed" in out
    instance = (work / ".dagster_home" / "dagster.yaml").read_text()
    assert "enabled: false" in instance and "max_concurrent_runs" in instance, "the shipped instance profile is used"
