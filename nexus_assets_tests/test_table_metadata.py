"""Table metadata in Dagster's types: documented schemas that match the frames, typed tables, the histogram."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from nexus_assets.defs.table_metadata import (
    COLUMN_SCHEMA,
    PARTITION_ROW_COUNT,
    ROW_COUNT,
    frame_table,
    histogram_table,
    markdown_metadata,
    markdown_text,
    schema_metadata,
    table_output_metadata,
)
from nexus_assets.lib.core.table_schemas import SCHEMAS
from nexus_assets.lib.core.tables import CHUNK_COLUMNS, EMBEDDING_COLUMNS, PAGE_COLUMNS, RAW_COLUMNS
from nexus_assets.lib.publish.curriculum_catalog import CATALOG_COLUMNS
from nexus_assets.lib.publish.quality import length_bins

FRAME_COLUMNS = {
    "raw_pdfs": RAW_COLUMNS,
    "pdf_text": PAGE_COLUMNS,
    "text_chunks": CHUNK_COLUMNS,
    "chunk_embeddings": EMBEDDING_COLUMNS,
    "curriculum_catalog": CATALOG_COLUMNS,
}


@pytest.mark.parametrize("table", sorted(FRAME_COLUMNS))
def test_every_table_documents_exactly_its_frames_columns(table: str) -> None:
    assert [c.name for c in SCHEMAS[table]] == list(FRAME_COLUMNS[table])
    assert all(c.type and c.description for c in SCHEMAS[table])


def test_table_assets_carry_their_schema_in_the_definition() -> None:
    from nexus_assets.defs.assets import curriculum_assets
    from nexus_assets.defs.curriculum_catalog import curriculum_catalog

    specs = {a.key.to_user_string(): a.specs_by_key[a.key] for a in [*curriculum_assets, curriculum_catalog]}
    for table in FRAME_COLUMNS:
        schema = specs[table].metadata[COLUMN_SCHEMA]
        assert isinstance(schema, dg.TableSchemaMetadataValue), table
        assert [c.name for c in schema.schema.columns] == list(FRAME_COLUMNS[table])
    assert COLUMN_SCHEMA not in specs["chroma_collection"].metadata, "records are not tables"


def test_output_metadata_has_schema_and_row_counts() -> None:
    frame = pd.DataFrame({"chunk_id": ["a", "b", "c"]})
    meta = table_output_metadata("text_chunks", frame)
    assert isinstance(meta[ROW_COUNT], dg.IntMetadataValue) and meta[ROW_COUNT].value == 3
    assert meta[PARTITION_ROW_COUNT].value == 3
    assert meta[COLUMN_SCHEMA] == schema_metadata("text_chunks")[COLUMN_SCHEMA]
    assert PARTITION_ROW_COUNT not in table_output_metadata("curriculum_catalog", frame, partitioned=False)


def test_frame_tables_are_typed_and_convert_numpy_and_missing_values() -> None:
    frame = pd.DataFrame(
        {
            "file": ["a.pdf", "b.pdf"],
            "pages": np.array([3, 0], dtype="int64"),
            "share": [0.5, np.nan],
            "ok": [True, False],
        }
    ).astype({"pages": "Int64"})
    frame.loc[1, "pages"] = pd.NA
    value = frame_table(frame)
    assert isinstance(value, dg.TableMetadataValue)
    assert [(c.name, c.type) for c in value.schema.columns] == [
        ("file", "string"),
        ("pages", "Int64"),
        ("share", "float64"),
        ("ok", "bool"),
    ]
    assert [r.data for r in value.records] == [
        {"file": "a.pdf", "pages": 3, "share": 0.5, "ok": True},
        {"file": "b.pdf", "pages": None, "share": None, "ok": False},
    ]
    assert len(frame_table(pd.concat([frame] * 40), limit=50).records) == 50


def test_the_chunk_length_histogram_is_a_table_with_every_chunk_once() -> None:
    lengths = [30, 100, 200, 500, 650, 780, 790, 799, 800, 800]
    value = histogram_table(length_bins(lengths))
    assert isinstance(value, dg.TableMetadataValue)
    assert [c.name for c in value.schema.columns] == ["chars_min", "chars_max", "chunks", "percent"]
    rows = [r.data for r in value.records]
    assert len(rows) == 8 and sum(r["chunks"] for r in rows) == len(lengths)
    assert rows[0]["chars_min"] == 30 and rows[-1]["chars_max"] >= 800
    assert rows[-1]["chunks"] == 5 and rows[-1]["percent"] == 50.0
    assert all(a["chars_max"] + 1 == b["chars_min"] for a, b in zip(rows, rows[1:], strict=False))
    assert histogram_table(length_bins([])).records == []


def test_an_empty_list_is_plain_text_not_a_markdown_link() -> None:
    """The UI shows Markdown metadata behind a "[Show Markdown]" link: nothing to list is the text "none"."""
    frame = pd.DataFrame({"file": ["a.pdf", "b|c.pdf"], "pages": [1, 2]})
    table = markdown_metadata(frame)
    assert isinstance(table, dg.MarkdownMetadataValue) and "b\\|c.pdf" in table.value
    assert markdown_metadata(frame.iloc[:0]) == dg.MetadataValue.text("none")
    assert markdown_text("") == dg.MetadataValue.text("none")
    assert markdown_text("  \n", empty="no chunks") == dg.MetadataValue.text("no chunks")
    assert markdown_text("- a.pdf") == dg.MetadataValue.md("- a.pdf")
