"""The tables passed between pipeline steps, as pandas DataFrames with fixed columns.

One home for the schemas so the assets, the IO managers, the VKP writer and the tests agree on
column names and types. Every table round-trips through parquet unchanged.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.layout import LayoutError, scan_files
from nexus_assets.lib.index.chunking import Chunk
from nexus_assets.lib.ingest.boilerplate import NOTE_PREFIX
from nexus_assets.lib.ingest.pdf_extraction import TEXT_STATUSES, FileExtraction
from nexus_assets.lib.ingest.upload_tracking import partition_of_key

RAW_COLUMNS = ["file", "path", "size", "sha256", "mtime"]
PAGE_COLUMNS = ["file", "sha256", "file_status", "file_reason", "notes", "page", "page_status", "page_reason", "text"]
CHUNK_COLUMNS = [
    "chunk_id",
    "file",
    "chunk_index",
    "page_start",
    "page_end",
    "char_len",
    "content_sha256",
    "ocr",
    "text",
]
EMBEDDING_COLUMNS = ["chunk_id", "model_id", "dims", "embedding"]


def raw_manifest_frame(raw_dir: Path, data_root: Path, skipped: list[str] | None = None) -> pd.DataFrame:
    """One row per `*.pdf` directly in `raw_dir`: name, path under the data root, size, sha256, mtime.

    Files are judged by their key under the data root with the sensors' rule (`partition_of_key`), so
    what a sensor skips is never built: other suffixes, subfolders, hidden `.x.pdf` files and names that
    decode to a traversal are left out, each with a message appended to `skipped`, and so are symbolic
    links (never followed: a link could ship a file from outside the data directory). Hidden files that are
    not PDFs (the S3 mirror's `.x.pdf.etag` records, editor lock files) are left out silently.
    """
    rows = []
    pdfs = []
    files, refused = scan_files(raw_dir, data_root if raw_dir.is_relative_to(data_root) else raw_dir)
    if skipped is not None:
        skipped.extend(refused)  # links are never followed, not even to read a name or a size
        skipped.extend(_pdf_named_folders(raw_dir, data_root))
    if files:
        for path in files:
            if path.name.startswith(".") and not path.name.lower().endswith(".pdf"):
                continue
            if path.is_relative_to(data_root):
                try:
                    partition_of_key(path.relative_to(data_root).as_posix())
                except LayoutError as exc:
                    if skipped is not None:
                        skipped.append(str(exc))
                    continue
            elif path.parent != raw_dir or path.suffix.lower() != ".pdf":
                continue
            pdfs.append(path)
        for pdf in pdfs:
            stat = pdf.stat()
            rows.append(
                {
                    "file": pdf.name,
                    "path": pdf.relative_to(data_root).as_posix() if pdf.is_relative_to(data_root) else str(pdf),
                    "size": int(stat.st_size),
                    "sha256": hashing.sha256_file(pdf),
                    "mtime": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds"),
                }
            )
    return pd.DataFrame(rows, columns=RAW_COLUMNS).astype({"size": "int64"})


def _pdf_named_folders(raw_dir: Path, data_root: Path) -> list[str]:
    """A message for each folder named like a PDF (`Bab1.pdf/`), which a careless upload makes and the scan,
    finding no file in it, passed over without a word."""
    if not raw_dir.is_dir() or raw_dir.is_symlink():
        return []
    found = []
    with os.scandir(raw_dir) as entries:
        for entry in entries:
            if entry.name.lower().endswith(".pdf") and entry.is_dir(follow_symlinks=False):
                where = Path(entry.path)
                shown = where.relative_to(data_root).as_posix() if where.is_relative_to(data_root) else str(where)
                found.append(f"{shown} is a folder, not a PDF: skipped; upload the PDF file itself")
    return sorted(found)


def pages_frame(extractions: Sequence[FileExtraction]) -> pd.DataFrame:
    """One row per page of every readable file, one row with no page for a file that failed."""
    rows = []
    for ex in extractions:
        base = {
            "file": ex.file,
            "sha256": ex.sha256,
            "file_status": ex.status,
            "file_reason": ex.reason,
            "notes": "; ".join(ex.notes),
        }
        if not ex.pages:
            rows.append(
                {
                    **base,
                    "page": pd.NA,
                    "page_status": "error" if ex.status != "ok" else "no_text",
                    "page_reason": ex.reason,
                    "text": "",
                }
            )
        for page in ex.pages:
            rows.append(
                {**base, "page": page.page, "page_status": page.status, "page_reason": page.reason, "text": page.text}
            )
    return pd.DataFrame(rows, columns=PAGE_COLUMNS).astype({"page": "Int64"})


def file_status_frame(pages: pd.DataFrame) -> pd.DataFrame:
    """Per-file summary of a pages table: status, reason, pages, pages with text and pages read by OCR."""
    if pages.empty:
        return pd.DataFrame(columns=["file", "status", "reason", "pages", "text_pages", "ocr_pages"])
    grouped = pages.groupby("file", sort=True)
    return pd.DataFrame(
        {
            "status": grouped["file_status"].first(),
            "reason": grouped["file_reason"].first(),
            "pages": grouped["page"].count(),
            "text_pages": grouped["page_status"].apply(lambda s: int(s.isin(TEXT_STATUSES).sum())),
            "ocr_pages": grouped["page_status"].apply(lambda s: int((s == "ocr").sum())),
        }
    ).reset_index()


def boilerplate_frame(pages: pd.DataFrame) -> pd.DataFrame:
    """Per file, the boilerplate extraction removed (counts per rule and an example), from its notes:
    what a data engineer audits in the UI (`boilerplate.BoilerplateReport.note`)."""
    if pages.empty:
        return pd.DataFrame(columns=["file", "removed"])
    notes = pages.groupby("file", sort=True)["notes"].first().fillna("")
    removed = {
        file: next((n for n in str(note).split("; ") if n.startswith(NOTE_PREFIX)), "") for file, note in notes.items()
    }
    return pd.DataFrame(
        [{"file": f, "removed": r.removeprefix(NOTE_PREFIX).strip()} for f, r in removed.items() if r],
        columns=["file", "removed"],
    )


def has_text(pages: pd.DataFrame) -> pd.Series:
    """Rows whose text is indexed: a text layer or OCR."""
    return pages["page_status"].isin(TEXT_STATUSES)


def readable_pages(pages: pd.DataFrame, file: str, statuses: Sequence[str] = TEXT_STATUSES) -> list[tuple[int, str]]:
    """(page, text) of a file's pages with one of `statuses` (default: every page with text)."""
    rows = pages[(pages["file"] == file) & pages["page_status"].isin(statuses)]
    return [(int(p), str(t)) for p, t in zip(rows["page"], rows["text"], strict=True)]


def ocr_pages_of(pages: pd.DataFrame) -> set[tuple[str, int]]:
    """(file, page) of every page whose text came from OCR."""
    rows = pages[pages["page_status"] == "ocr"]
    return {(str(f), int(p)) for f, p in zip(rows["file"], rows["page"], strict=True)}


def chunks_frame(chunks: Sequence[Chunk], ocr_pages: set[tuple[str, int]] | frozenset = frozenset()) -> pd.DataFrame:
    """The chunks table; `ocr` marks a chunk holding text of at least one OCRed page (`ocr_pages_of`)."""
    rows = [
        {
            "chunk_id": c.chunk_id,
            "file": c.file,
            "chunk_index": c.chunk_index,
            "page_start": c.page_start,
            "page_end": c.page_end,
            "char_len": len(c.text),
            "content_sha256": c.content_sha256,
            "ocr": any((c.file, page) in ocr_pages for page in range(c.page_start, c.page_end + 1)),
            "text": c.text,
        }
        for c in chunks
    ]
    return pd.DataFrame(rows, columns=CHUNK_COLUMNS).astype(
        {"chunk_index": "int64", "page_start": "int64", "page_end": "int64", "char_len": "int64", "ocr": "bool"}
    )


def embeddings_frame(chunk_ids: Sequence[str], vectors: np.ndarray, model_id: str, dims: int) -> pd.DataFrame:
    """Vectors with the model id and dims on every row, so they never travel without them."""
    if vectors.shape != (len(chunk_ids), dims):
        raise ValueError(f"{len(chunk_ids)} chunk ids but vectors of shape {vectors.shape} (expected dims {dims})")
    return pd.DataFrame(
        {
            "chunk_id": pd.Series(list(chunk_ids), dtype="object"),
            "model_id": pd.Series([model_id] * len(chunk_ids), dtype="object"),
            "dims": pd.Series([dims] * len(chunk_ids), dtype="int64"),
            "embedding": pd.Series(list(vectors.astype(np.float32)), dtype="object"),
        },
        columns=EMBEDDING_COLUMNS,
    )


def vectors_of(embeddings: pd.DataFrame) -> np.ndarray:
    """The embedding column as a 2-D float32 array (0 rows keeps the frame's dims)."""
    if embeddings.empty:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([np.asarray(v, dtype=np.float32) for v in embeddings["embedding"]])


def embedding_identity(embeddings: pd.DataFrame) -> tuple[str, int]:
    """(model_id, dims) of a table that must hold vectors of exactly one model."""
    models = embeddings[["model_id", "dims"]].drop_duplicates()
    if len(models) != 1:
        raise ValueError(f"embeddings must come from exactly one model, found {models.to_dict('records')}")
    return str(models.iloc[0]["model_id"]), int(models.iloc[0]["dims"])


def frame_to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Deterministic parquet bytes (no index, zstd)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue()


def collection_metadatas(subject: str, grade: str, chunks: pd.DataFrame) -> list[dict]:
    """The Chroma metadata of each chunk: one definition, so a school's collection rebuilt from a delta
    holds exactly what the build's collection holds."""
    return [
        {
            "subject": subject,
            "grade": grade,
            "file": r.file,
            "page": int(r.page_start),
            "page_end": int(r.page_end),
            "chunk_index": int(r.chunk_index),
            "ocr": bool(getattr(r, "ocr", False)),
        }
        for r in chunks.itertuples()
    ]


def package_order(chunks: pd.DataFrame) -> pd.DataFrame:
    """Chunks in the order a package stores them (file, then position in the file), whatever the input order."""
    return chunks.sort_values(["file", "chunk_index", "chunk_id"], kind="stable").reset_index(drop=True)
