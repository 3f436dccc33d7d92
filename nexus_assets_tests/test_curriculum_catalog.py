"""The curriculum catalog's shaping rules and the chunk-length histogram (pure; the asset is tested in test_checks)."""

import pandas as pd

from nexus_assets.lib.publish.curriculum_catalog import (
    CATALOG_COLUMNS,
    CheckState,
    catalog_frame,
    catalog_row,
    check_status,
)
from nexus_assets.lib.publish.quality import length_histogram


def test_a_failing_error_check_outranks_warnings_and_missing_checks() -> None:
    states = [
        CheckState("text_coverage", False, "warn"),
        CheckState("embedding_sanity", False, "error"),
        CheckState("chunk_health", True, "error"),
    ]
    assert check_status(states, expected=7) == ("failed", ["embedding_sanity"], ["text_coverage"])
    assert check_status(states[::2], expected=7) == ("warn", [], ["text_coverage"])
    assert check_status(states[2:], expected=7)[0] == "incomplete", "checks that never ran are not a pass"
    assert check_status([CheckState(str(i), True, "error") for i in range(7)], expected=7)[0] == "passed"


def test_catalog_rows_are_typed_sorted_and_say_what_was_never_built() -> None:
    rows = [
        catalog_row(
            "matematika",
            "kelas_10",
            {
                "files": 2,
                "pages": 10,
                "pages_ocr": 1,
                "chunks": 26,
                "version": "1.0.3",
                "last_build": "2026-01-01T00:00:00+00:00",
            },
            [CheckState("text_coverage", False, "warn")],
            7,
        ),
        catalog_row("biologi", "kelas_10", {}, [], 7),
    ]
    frame = catalog_frame(rows)
    assert list(frame.columns) == CATALOG_COLUMNS
    assert frame["subject"].tolist() == ["biologi", "matematika"]
    assert frame.loc[0, ["vkp_version", "last_build", "checks"]].tolist() == ["-", "-", "incomplete"]
    assert frame.loc[1, ["pages_ocr", "vkp_version", "checks", "warnings"]].tolist() == [
        1,
        "1.0.3",
        "warn",
        "text_coverage",
    ]
    assert frame["pages"].dtype == "int64"
    assert catalog_frame([]).empty


def test_the_length_histogram_counts_every_chunk_once() -> None:
    lengths = [30, 100, 200, 500, 650, 780, 790, 799, 800, 800]
    text = length_histogram(lengths)
    rows = [line for line in text.splitlines() if "–" in line]
    assert sum(int(line.split()[-1]) for line in rows) == len(lengths)
    assert rows[0].split()[0].startswith("30") and rows[-1].split()[-1] == "5", "the 709–800 bin holds five"
    assert length_histogram(pd.Series([], dtype="int64")) == "_no chunks_"
