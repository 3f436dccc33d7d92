"""Is a partition's last successful local build still current? Then `nexus build` has nothing to do.

A build's outputs are decided by its PDFs, the code, the installed libraries that shape them, the
OCR engine and the NEXUS_* settings. After a successful run their digest is written beside the
processed tables, with the outputs the run left. A later `nexus build` whose digest matches, and whose
outputs are all still there, skips the partition without starting Dagster: a no-change rebuild is
then about a second, not the ~13 s of a Dagster run that finds every step cached. `--force` rebuilds
anyway; the UI, sensors and schedules always materialize (the caches make that cheap too).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.layout import DataLayout, Partition, scan_files

RECORD_NAME = "_build_inputs.json"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # nexus_assets/
# Libraries whose version can change what a build writes (text, chunks, vectors, collections, packages).
LIBRARIES = (
    "dagster",
    "chromadb",
    "pymupdf",
    "torch",
    "sentence-transformers",
    "tokenizers",
    "pyarrow",
    "pandas",
    "numpy",
    "cryptography",
)


def code_digest(root: Path = PACKAGE_ROOT) -> str:
    """sha256 over the package's Python sources: any code change makes every partition stale."""
    digest = hashing.new()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return str(digest.hexdigest())


def code_version(*folders: str) -> str:
    """A short digest of the sources under `folders` (relative to nexus_assets/): Dagster's `code_version`
    of an asset, so the UI marks its partitions stale when the code that computes them changes."""
    digest = hashing.new()
    for folder in folders:
        digest.update(folder.encode() + b"\0" + code_digest(PACKAGE_ROOT / folder).encode())
    return str(digest.hexdigest())[:16]


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def input_fingerprint(
    layout: DataLayout,
    part: Partition,
    options: Mapping[str, Any] | None,
    environ: Mapping[str, str],
) -> str:
    """Digest of everything a build of `part` depends on; `options` are the command's own settings and
    `environ` the settings' snapshot of NEXUS_* variables (`Settings.environment`)."""
    raw_dir = layout.raw_dir(part)
    files = [p for p in scan_files(raw_dir, layout.root)[0] if not p.name.startswith(".")]  # links: never followed
    inputs = {
        "partition": part.label,
        "files": {p.relative_to(raw_dir).as_posix(): hashing.sha256_file(p) for p in files},
        "code": code_digest(),
        "libraries": _library_versions(),
        "tesseract": [shutil.which("tesseract") or "", environ.get("TESSDATA_PREFIX", "")],
        "settings": {k: v for k, v in sorted(environ.items()) if k.startswith("NEXUS_")},
        "options": dict(sorted((options or {}).items())),
    }
    return hashing.sha256_json(inputs)


def _record_path(layout: DataLayout, part: Partition) -> Path:
    return layout.processed_dir(part) / RECORD_NAME


def current_outputs(layout: DataLayout, part: Partition) -> list[str]:
    """What a finished build leaves: the processed tables, the served Chroma build, the latest VKP."""
    processed = layout.processed_dir(part)
    outputs = [p for p in processed.iterdir() if p.is_file() and p.name != RECORD_NAME] if processed.is_dir() else []
    served = processed / "chroma" / "current"  # a symlink to the served build: name its target
    if served.exists():
        outputs.append(Path(os.path.realpath(served)))
    versions = layout.published_versions(part)
    if versions:
        outputs.append(layout.vkp_path(part, versions[-1]))
    root = os.path.realpath(layout.root)
    return sorted(Path(os.path.relpath(os.path.realpath(p), root)).as_posix() for p in outputs)


def record_build(layout: DataLayout, part: Partition, fingerprint: str, run_id: str) -> None:
    """Remember a successful build (written atomically: a torn record would only cost a rebuild)."""
    path = _record_path(layout, part)
    body = {
        "fingerprint": fingerprint,
        "run_id": run_id,
        "recorded_at": datetime.now(UTC).isoformat(),
        "outputs": current_outputs(layout, part),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body, indent=2))
    os.replace(tmp, path)


def forget_build(layout: DataLayout, part: Partition) -> None:
    """Drop the record (before a run: a failed or interrupted run must never look current)."""
    _record_path(layout, part).unlink(missing_ok=True)


def up_to_date(layout: DataLayout, part: Partition, fingerprint: str) -> dict[str, Any] | None:
    """The record of the build `fingerprint` describes, if it is still complete on disk; else None."""
    try:
        record = json.loads(_record_path(layout, part).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
        return None
    outputs: Iterable[str] = record.get("outputs") or []
    if not outputs or not all((layout.root / rel).exists() for rel in outputs):
        return None
    if sorted(outputs) != current_outputs(layout, part):
        return None  # something was added or replaced since (another writer): let Dagster decide
    return record
