"""Where the Dagster instance lives for the CLI and `make ui`.

`DAGSTER_HOME` defaults to `.dagster_home/` in the project (ignored by git), whose `dagster.yaml`
is a link to the repository's own, so the CLI, the webserver and the daemon share one instance and
runs started from the terminal show up in the UI.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout this package runs from (editable install), else the working directory."""
    candidate = PACKAGE_DIR.parent
    return candidate if (candidate / "workspace.yaml").is_file() else Path.cwd()


def ensure_dagster_home() -> Path:
    """Set DAGSTER_HOME (if unset) and make sure it holds the project's dagster.yaml."""
    root = project_root()
    home = Path(os.environ.get("DAGSTER_HOME") or root / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    config = home / "dagster.yaml"
    source = root / "dagster.yaml"
    if not config.exists() and not config.is_symlink() and source.is_file():
        config.symlink_to(os.path.relpath(source, home))
    return home
