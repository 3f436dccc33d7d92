"""The README's Reliability table is the one the reliability tests produce, row for row."""

from __future__ import annotations

import re

from nexus_assets_tests.conftest import PROJECT_ROOT

MARKER_RE = re.compile(r'@pytest\.mark\.reliability\(\s*"([^"]+)",\s*((?:"[^"]*"\s*)+)\)', re.S)


def declared_cases() -> set[tuple[str, str]]:
    """(kind, case) of every reliability test, read from the test files' markers."""
    cases = set()
    for path in sorted((PROJECT_ROOT / "nexus_assets_tests").glob("test_*.py")):
        for kind, parts in MARKER_RE.findall(path.read_text()):
            cases.add((kind, "".join(re.findall(r'"([^"]*)"', parts))))
    return cases


def readme_rows() -> list[list[str]]:
    text = (PROJECT_ROOT / "README.md").read_text()
    block = text.split("<!-- reliability:start -->", 1)[1].split("<!-- reliability:end -->", 1)[0]
    rows = [line for line in block.strip().splitlines()[2:] if line.startswith("|")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_every_reliability_test_is_in_the_readme_table_and_passed() -> None:
    rows = readme_rows()
    assert rows, "the README has no Reliability table: run scripts/reliability_table.py"
    in_readme = {(kind, case) for kind, case, *_ in rows}
    declared = declared_cases()
    assert len(declared) >= 10
    assert declared == in_readme, ("the table is stale; rerun scripts/reliability_table.py",
                                   declared - in_readme, in_readme - declared)
    assert all(row[3] == "passed" for row in rows), [row for row in rows if row[3] != "passed"]
    assert all(row[2] and row[2] != "(nothing recorded)" for row in rows)
