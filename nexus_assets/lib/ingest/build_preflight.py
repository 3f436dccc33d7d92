"""Which partitions a build may start: checked before anything is registered, signed or written.

A typo'd `--grade kelas_99` used to run a full build of an empty folder: Dagster registered the partition
for good, a signing key and an empty Chroma build were created, and the run reported "completed". The
check here runs first, on the raw keys alone (a local scan or one S3 listing), and names the folder it
looked in and the nearest existing slugs, so nothing is created for a partition that has no PDFs.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nexus_assets.lib.core.layout import RAW_PREFIX, LayoutError, Partition, scan_files
from nexus_assets.lib.ingest.upload_tracking import partition_of_key


def local_raw_keys(root: Path) -> list[str]:
    """Every regular file under `<root>/raw-curriculum/` as a key relative to `root` (links never followed)."""
    base = root / RAW_PREFIX
    if not base.is_dir():
        return []
    files, _ = scan_files(base, root)
    return [path.relative_to(root).as_posix() for path in files]


def pdf_counts(keys: Iterable[str]) -> Counter[Partition]:
    """PDFs per partition among `keys`, by the sensors' rule: what a build would actually read."""
    counts: Counter[Partition] = Counter()
    for key in keys:
        try:
            counts[partition_of_key(key)] += 1
        except LayoutError:
            continue
    return counts


def nearest(value: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The existing slugs closest to a mistyped one (difflib ratio >= 0.6), best first."""
    return difflib.get_close_matches(value, sorted(set(candidates)), n=limit, cutoff=0.6)


@dataclass
class Preflight:
    """The partitions to build and, for every one refused, why (a message naming the folder looked in)."""

    buildable: list[Partition] = field(default_factory=list)
    refused: dict[Partition, str] = field(default_factory=dict)


def _hint(part: Partition, known: set[Partition]) -> str:
    """' (did you mean ...?)' for a subject or grade folder that does not exist."""
    subjects = {p.subject for p in known}
    if part.subject not in subjects:
        close = nearest(part.subject, subjects)
        what, options = "subject", close or sorted(subjects)
    else:
        grades = {p.grade for p in known if p.subject == part.subject}
        if part.grade in grades:
            return ""
        close = nearest(part.grade, grades)
        what, options = f"grade of {part.subject}", close or sorted(grades)
    if not options:
        return ""
    lead = "did you mean" if close else f"existing {what} folders:"
    return f" ({lead} {', '.join(repr(o) for o in options[:6])}{'?' if close else ''})"


def check_partitions(
    requested: Iterable[Partition], counts: Counter[Partition], raw_root: str, folders: Collection[Partition] = ()
) -> Preflight:
    """Split `requested` into partitions holding at least one PDF and refused ones.

    `counts` is `pdf_counts` of the raw keys; `raw_root` is how messages show the raw-curriculum folder
    (a local path or an s3:// URI); `folders` are the partitions whose folder exists. An existing folder
    without PDFs and a missing folder are both refused: building either would only register an empty
    partition and publish nothing.
    """
    known = {p for p, n in counts.items() if n}
    result = Preflight()
    for part in requested:
        if counts.get(part, 0):
            result.buildable.append(part)
            continue
        folder = f"{raw_root.rstrip('/')}/{part.subject}/{part.grade}/"
        if part in folders:
            where = "the folder exists; PDFs go directly in it, not in sub-folders"
            result.refused[part] = f"no PDFs in {folder} ({where})"
        else:
            result.refused[part] = f"no PDFs in {folder}{_hint(part, known)}"
    return result
