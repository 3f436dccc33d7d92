"""The curriculum catalog: one row per subject × grade, the state of its latest build at a glance.

Not the VKP distribution catalog (what schools download): this is the data engineer's table of
partitions, with files, pages (and how many were read by OCR), chunks, the VKP version schools get,
when the partition was last built and how its quality gates stand. The Dagster asset
`curriculum_catalog` gathers the figures from the instance; this module only shapes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

CATALOG_COLUMNS = [
    "subject",
    "grade",
    "files",
    "files_failed",
    "pages",
    "pages_ocr",
    "pages_without_text",
    "chunks",
    "vkp_version",
    "last_build",
    "checks",
    "failed_checks",
    "warnings",
]
STORED_AS = "catalog"  # processed/catalog.parquet (S3 in aws mode)


@dataclass(frozen=True)
class CheckState:
    """The latest verdict of one check on one partition."""

    name: str
    passed: bool
    severity: str  # "error" or "warn"


def check_status(states: Sequence[CheckState], expected: int) -> tuple[str, list[str], list[str]]:
    """(one-word status, failed error checks, failed warning checks) of a partition's latest verdicts.

    `failed` when an error-severity check fails (blocking: the package is held back), `warn` when only
    warnings fail, `passed` when all `expected` checks ran and passed, `incomplete` when some never ran.
    """
    failed = sorted(s.name for s in states if not s.passed and s.severity == "error")
    warned = sorted(s.name for s in states if not s.passed and s.severity != "error")
    if failed:
        return "failed", failed, warned
    if warned:
        return "warn", failed, warned
    if len(states) < expected:
        return "incomplete", failed, warned
    return "passed", failed, warned


def catalog_row(
    subject: str, grade: str, figures: Mapping[str, Any], states: Sequence[CheckState], expected_checks: int
) -> dict[str, Any]:
    """One partition's row from its latest asset figures (`pdf_text`, `text_chunks`, `vkp_package` metadata)."""
    status, failed, warned = check_status(states, expected_checks)
    return {
        "subject": subject,
        "grade": grade,
        "files": int(figures.get("files", 0)),
        "files_failed": int(figures.get("files_failed", 0)),
        "pages": int(figures.get("pages", 0)),
        "pages_ocr": int(figures.get("pages_ocr", 0)),
        "pages_without_text": int(figures.get("pages_without_text", 0)),
        "chunks": int(figures.get("chunks", 0)),
        "vkp_version": str(figures.get("version") or "-"),
        "last_build": str(figures.get("last_build") or "-"),
        "checks": status,
        "failed_checks": ", ".join(failed),
        "warnings": ", ".join(warned),
    }


def catalog_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The catalog table, sorted by subject and grade, with fixed columns and types."""
    frame = pd.DataFrame(list(rows), columns=CATALOG_COLUMNS)
    ints = ["files", "files_failed", "pages", "pages_ocr", "pages_without_text", "chunks"]
    return frame.astype({c: "int64" for c in ints}).sort_values(["subject", "grade"]).reset_index(drop=True)


def catalog_summary(frame: pd.DataFrame) -> dict[str, int]:
    """Totals shown beside the table: partitions, and how many are held back by a failing gate."""
    return {
        "partitions": len(frame),
        "partitions_failed": int((frame["checks"] == "failed").sum()),
        "partitions_warn": int((frame["checks"] == "warn").sum()),
        "files": int(frame["files"].sum()),
        "pages": int(frame["pages"].sum()),
        "pages_ocr": int(frame["pages_ocr"].sum()),
        "chunks": int(frame["chunks"].sum()),
    }
