"""Table metadata in Dagster's own types, so the UI shows tables as tables.

Every table asset carries its column schema (`dagster/column_schema`, a `TableSchema`) in its
definition, so the Columns tab explains it before the first run, and again with each
materialization together with the rows written (`dagster/row_count`; for partitioned assets also
`dagster/partition_row_count`: each partition is its own parquet file, so both are that file's rows).
Small result tables (file statuses, the chunk-length histogram) are `MetadataValue.table`s with a
schema instead of Markdown (the UI shows their cells as text; control characters in them are shown escaped,
see lib/core/escaping.py). The keys are spelled out: `TableMetadataSet` is not public in dagster 1.13.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg
import pandas as pd

from nexus_assets.lib.core.escaping import shown
from nexus_assets.lib.core.table_schemas import SCHEMAS, Column, frame_schema
from nexus_assets.lib.publish.quality import LengthBin, markdown_table

COLUMN_SCHEMA = "dagster/column_schema"
ROW_COUNT = "dagster/row_count"
PARTITION_ROW_COUNT = "dagster/partition_row_count"
TABLE_ROWS_SHOWN = 50
# What an empty list or table is shown as: plain text. Markdown (even "_none_") is a "[Show Markdown]"
# link in the UI's metadata tables, one click to read that there was nothing.
NOTHING = "none"


def table_schema(columns: Sequence[Column]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(c.name, c.type, description=c.description or None) for c in columns])


def schema_metadata(table: str) -> dict[str, dg.MetadataValue]:
    """Definition metadata of the table asset `table`: its documented column schema."""
    return {COLUMN_SCHEMA: dg.MetadataValue.table_schema(table_schema(SCHEMAS[table]))}


def table_output_metadata(table: str, frame: pd.DataFrame, partitioned: bool = True) -> dict[str, dg.MetadataValue]:
    """Materialization metadata of a table asset: column schema and the rows written."""
    rows = dg.MetadataValue.int(len(frame))
    return {**schema_metadata(table), ROW_COUNT: rows, **({PARTITION_ROW_COUNT: rows} if partitioned else {})}


def _cell(value: Any) -> str | int | float | bool | None:
    """A TableRecord field: str, int, float, bool or None (numpy scalars and pandas NA converted)."""
    if value is None or (not isinstance(value, list | tuple) and pd.isna(value)):
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, bool | int | float):
        return value
    return shown(value)  # text from uploads (names, reasons): control characters shown escaped


def frame_table(frame: pd.DataFrame, limit: int = TABLE_ROWS_SHOWN) -> dg.TableMetadataValue:
    """The first `limit` rows of `frame` as a UI table, typed from the frame (the row count says how many)."""
    records = [
        dg.TableRecord({str(k): _cell(v) for k, v in row.items()}) for row in frame.head(limit).to_dict("records")
    ]
    return dg.MetadataValue.table(records=records, schema=table_schema(frame_schema(frame)))


HISTOGRAM_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("chars_min", "int", description="shortest chunk length in the bin (characters)"),
        dg.TableColumn("chars_max", "int", description="longest chunk length in the bin (characters)"),
        dg.TableColumn("chunks", "int", description="chunks in the bin"),
        dg.TableColumn("percent", "float", description="share of the partition's chunks, %"),
    ]
)


def histogram_table(bins: Sequence[LengthBin]) -> dg.TableMetadataValue:
    """The chunk-length histogram as a table: one row per equal-width bin."""
    total = sum(b.chunks for b in bins) or 1
    records = [
        dg.TableRecord(
            {"chars_min": b.low, "chars_max": b.high, "chunks": b.chunks, "percent": round(100 * b.chunks / total, 1)}
        )
        for b in bins
    ]
    return dg.MetadataValue.table(records=records, schema=HISTOGRAM_SCHEMA)


def markdown_metadata(
    frame: pd.DataFrame, limit: int = TABLE_ROWS_SHOWN, markup: Sequence[str] = ()
) -> dg.MetadataValue:
    """Offending rows as a Markdown table (`quality.markdown_table`), or the plain text "none" when there
    are none, so an empty list reads as such in the UI instead of behind a link."""
    if frame.empty:
        return dg.MetadataValue.text(NOTHING)
    return dg.MetadataValue.md(markdown_table(frame, limit=limit, markup=markup))


def markdown_text(text: str, empty: str = NOTHING) -> dg.MetadataValue:
    """Markdown text (a list, a preview), or the plain text `empty` when there is nothing to show."""
    return dg.MetadataValue.md(text) if text.strip() else dg.MetadataValue.text(empty)
