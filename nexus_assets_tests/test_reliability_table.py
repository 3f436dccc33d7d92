"""The Reliability table of docs/reliability.md is the one the reliability tests produce, row for row."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from nexus_assets_tests.support import PROJECT_ROOT


def declared_cases(tmp_path: Path) -> set[tuple[str, str, str]]:
    """(kind, case, test) of every reliability test, as pytest collects them (parametrized cases included)."""
    out = tmp_path / "cases.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "reliability", "-p", "no:cacheprovider"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NEXUS_RELIABILITY_CASES_OUT": str(out)},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {(c["kind"], c["case"], _short(c["test"])) for c in json.loads(out.read_text())}


def _short(nodeid: str) -> str:
    path, _, name = nodeid.partition("::")
    return f"{Path(path).name}::{name}"


TABLE_FILE = PROJECT_ROOT / "docs" / "reliability.md"


def table_rows() -> list[list[str]]:
    text = TABLE_FILE.read_text()
    block = text.split("<!-- reliability:start -->", 1)[1].split("<!-- reliability:end -->", 1)[0]
    rows = [line for line in block.strip().splitlines()[2:] if line.startswith("|")]
    return [[cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_every_reliability_test_is_in_the_table_and_passed(tmp_path: Path) -> None:
    rows = table_rows()
    assert rows, "docs/reliability.md has no Reliability table: run scripts/reliability_table.py"
    in_table = {(kind, case, test.strip("`")) for kind, case, _, _, test in rows}
    declared = declared_cases(tmp_path)
    assert len(declared) >= 10
    assert declared == in_table, (
        "the table is stale; rerun scripts/reliability_table.py",
        declared - in_table,
        in_table - declared,
    )
    assert all(row[3] == "passed" for row in rows), [row for row in rows if row[3] != "passed"]
    assert all(row[2] and row[2] != "(nothing recorded)" for row in rows)
