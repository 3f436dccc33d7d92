"""Where the Dagster instance lives for the CLI and `make ui`, and the profiles the commands read.

`DAGSTER_HOME` defaults to `.dagster_home/` in the project (ignored by git; the working directory
outside a checkout), whose `dagster.yaml` is a link to the instance profile shipped in the package (in
a checkout, the repository's own `dagster.yaml`), so the CLI, the webserver and the daemon share one
instance, runs started from the terminal show up in the UI, and every install keeps telemetry off and
the pool limits.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def profile(*parts: str) -> Path:
    """A file shipped in `nexus_assets/profiles/` (`dagster.yaml`, `deploy/...`), wherever the package is
    installed: the checkout's own file in an editable install, the wheel's copy otherwise."""
    return Path(str(resources.files("nexus_assets.profiles").joinpath(*parts))).resolve()


def project_root() -> Path:
    """The checkout this package runs from (editable install), else the working directory."""
    candidate = PACKAGE_DIR.parent
    return candidate if (candidate / "workspace.yaml").is_file() else Path.cwd()


def configured_dagster_home() -> Path | None:
    """DAGSTER_HOME when it is set, else None: for commands that write into a deployment's instance and so
    must never fall back to the project's default one (`nexus deploy apply-pools`)."""
    value = os.environ.get("DAGSTER_HOME")
    return Path(value) if value else None


def ensure_dagster_home() -> Path:
    """Set DAGSTER_HOME (if unset) and make sure it holds the shipped instance profile (dagster.yaml)."""
    home = Path(os.environ.get("DAGSTER_HOME") or project_root() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    config = home / "dagster.yaml"
    source = profile("dagster.yaml")
    if not config.exists() and not config.is_symlink() and source.is_file():
        config.symlink_to(os.path.relpath(source, home))
    return home
