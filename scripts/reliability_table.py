"""Render the Reliability table of docs/reliability.md from what the reliability tests observed.

    .venv/bin/python scripts/reliability_table.py            # runs `pytest -m reliability`, rewrites the table
    .venv/bin/python scripts/reliability_table.py --from F   # renders a saved run (NEXUS_RELIABILITY_OUT=F)

Each row is one `@pytest.mark.reliability(kind, case)` test: what was tried, the outcome the test
recorded from the real run (statuses, reasons, versions, counts), and the test's verdict. The table
sits between the `reliability:start` / `reliability:end` markers of docs/reliability.md; nothing else
in that file is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"
TABLE_FILE = ROOT / "docs" / "reliability.md"
KIND_ORDER = ("bad input", "fault", "crash", "concurrency", "determinism", "security")


def render(rows: list[dict[str, str]]) -> str:
    def order(row: dict[str, str]) -> tuple[int, str]:
        kind = row["kind"]
        return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), row["test"])

    lines = [
        "| kind | what was tried | what happened (recorded by the test) | verdict | test |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in sorted(rows, key=order):
        outcome = (row["outcome"] or "(nothing recorded)").replace("|", "\\|").replace("\n", " ")
        test = row["test"].split("::", 1)
        lines.append(
            f"| {row['kind']} | {row['case']} | {outcome} | {row['result'] or 'not run'} | "
            f"`{Path(test[0]).name}::{test[1] if len(test) > 1 else ''}` |"
        )
    return "\n".join(lines)


def replace_block(page: str, table: str) -> str:
    if START not in page or END not in page:
        raise SystemExit(f"{TABLE_FILE.relative_to(ROOT)} lacks the {START} ... {END} markers")
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="a saved NEXUS_RELIABILITY_OUT file")
    parser.add_argument("--print", action="store_true", help="print the table instead of rewriting the file")
    args = parser.parse_args(argv)
    source = args.source
    if source is None:
        source = Path(tempfile.mkdtemp()) / "reliability.json"
        env = {**os.environ, "NEXUS_RELIABILITY_OUT": str(source)}
        code = subprocess.call(
            [sys.executable, "-m", "pytest", "-m", "reliability", "-q", "-p", "no:cacheprovider"], cwd=ROOT, env=env
        )
        if not source.is_file():
            print("the reliability tests recorded nothing", file=sys.stderr)
            return code or 1
    rows = json.loads(source.read_text())
    table = render(rows)
    if args.print:
        print(table)
    else:
        TABLE_FILE.write_text(replace_block(TABLE_FILE.read_text(), table))
        print(f"{TABLE_FILE.relative_to(ROOT)}: Reliability table rewritten ({len(rows)} cases)")
    failed = [r["test"] for r in rows if r["result"] != "passed"]
    for test in failed:
        print(f"not passed: {test}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
