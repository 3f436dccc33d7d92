"""What each column of the pipeline's tables holds: name, type and a one-line description.

The column lists themselves live beside the code that builds the frames (`tables.py`,
`curriculum_catalog.py`); this module documents them once, so the Dagster UI's Columns tab
(`defs/table_metadata.py` turns these into a `TableSchema`) explains a table before anyone opens its
parquet file. `frame_type` gives a column's type from a real frame, for ad-hoc tables (a file-status
summary) that have no fixed schema here. Tests hold every schema to the column lists of the frames the assets write.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str


RAW_SCHEMA = (
    Column("file", "string", "PDF file name"),
    Column("path", "string", "path under the data root (the object key in aws mode)"),
    Column("size", "int64", "bytes"),
    Column("sha256", "string", "content hash: the extraction cache key"),
    Column("mtime", "string", "last modified, ISO 8601 UTC"),
)
PAGE_SCHEMA = (
    Column("file", "string", "PDF file name"),
    Column("sha256", "string", "content hash of the file"),
    Column(
        "file_status",
        "string",
        "ok, encrypted, malformed, no_text_layer, empty, not_pdf, truncated, "
        "too_large, too_many_pages, timeout or crashed",
    ),
    Column("file_reason", "string", "why the file is not ok (empty when ok)"),
    Column("notes", "string", "extraction notes, '; '-separated"),
    Column("page", "Int64", "1-based page number; null on a file's row when the file could not be read"),
    Column("page_status", "string", "ok (text layer), ocr (read by Tesseract), no_text or error"),
    Column("page_reason", "string", "why the page has no text"),
    Column("text", "string", "cleaned text (NFKC, hyphenation joined, running headers/footers dropped)"),
)
CHUNK_SCHEMA = (
    Column("chunk_id", "string", "stable id from the chunk's content and source"),
    Column("file", "string", "PDF file name"),
    Column("chunk_index", "int64", "position of the chunk in its file"),
    Column("page_start", "int64", "first page the chunk spans"),
    Column("page_end", "int64", "last page the chunk spans"),
    Column("char_len", "int64", "characters in the chunk"),
    Column("content_sha256", "string", "hash of the text: the vector cache key"),
    Column("ocr", "bool", "holds text of at least one page read by OCR"),
    Column("text", "string", "the chunk's text"),
)
EMBEDDING_SCHEMA = (
    Column("chunk_id", "string", "the chunk this vector embeds (text_chunks.chunk_id)"),
    Column("model_id", "string", "embedding model; the same on every row"),
    Column("dims", "int64", "vector length; the same on every row"),
    Column("embedding", "list<float32>", "the vector (unit length when the model normalises)"),
)
CATALOG_SCHEMA = (
    Column("subject", "string", "partition subject"),
    Column("grade", "string", "partition grade"),
    Column("files", "int64", "PDFs in the last build"),
    Column("files_failed", "int64", "PDFs that could not be read"),
    Column("pages", "int64", "pages of the readable PDFs"),
    Column("pages_ocr", "int64", "pages read by OCR"),
    Column("pages_without_text", "int64", "pages with neither a text layer nor OCR text"),
    Column("chunks", "int64", "chunks indexed"),
    Column("vkp_version", "string", "package version schools get ('-' before the first publication)"),
    Column("last_build", "string", "last materialization of the partition, ISO 8601 UTC ('-' if never)"),
    Column("checks", "string", "quality gates: passed, warn, failed (package held back) or incomplete"),
    Column("failed_checks", "string", "failing blocking checks, comma-separated"),
    Column("warnings", "string", "failing warn-only checks, comma-separated"),
)
SCHEMAS: dict[str, tuple[Column, ...]] = {
    "raw_pdfs": RAW_SCHEMA,
    "pdf_text": PAGE_SCHEMA,
    "text_chunks": CHUNK_SCHEMA,
    "chunk_embeddings": EMBEDDING_SCHEMA,
    "curriculum_catalog": CATALOG_SCHEMA,
}


def frame_type(series: pd.Series) -> str:
    """A column's type name for the UI: pandas' dtype, `string` for text, `object` columns by their first value."""
    if isinstance(series.dtype, pd.StringDtype):  # pandas 3's default `str` dtype included
        return "string"
    if series.dtype != object:
        return str(series.dtype)
    first = series.dropna()
    return "string" if first.empty or isinstance(first.iloc[0], str) else type(first.iloc[0]).__name__


def frame_schema(frame: pd.DataFrame) -> tuple[Column, ...]:
    """Columns of an ad-hoc table, typed from the frame (no descriptions)."""
    return tuple(Column(str(name), frame_type(frame[name]), "") for name in frame.columns)
