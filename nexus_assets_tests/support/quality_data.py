"""Tables, Chroma builds and packages of the sample partitions, as the assets build them.

Used by test_quality.py (the rules as plain functions) and test_checks.py (the same cases through
Dagster). Tables come from the generated sample PDFs through the same pure functions the assets call.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.core.tables import chunks_frame, pages_frame, readable_pages
from nexus_assets.lib.index.chroma_store import CollectionItems, build_collection
from nexus_assets.lib.index.chunking import ChunkingParams, chunk_file
from nexus_assets.lib.index.search import chroma_root
from nexus_assets.lib.ingest.pdf_extraction import extract_pdf
from nexus_assets.lib.publish.publishing import LocalPackageStore, publish_vkp
from nexus_assets.lib.publish.signing import development_signer
from nexus_assets.lib.publish.vkp import CHUNKS_MEMBER

BIO10 = Partition("biologi", "kelas_10")  # one book, every page with text
BIO11 = Partition("biologi", "kelas_11")  # one book and rusak.pdf, which cannot be opened
MAT10 = Partition("matematika", "kelas_10")  # its last page is a scan without a text layer
MODEL_ID, DIMS = "sentence-transformers/all-MiniLM-L6-v2", 384


def sample_pages(raw_root: Path, part: Partition) -> pd.DataFrame:
    """The pdf_text table of a sample partition, as the asset builds it."""
    return pages_frame([extract_pdf(p) for p in sorted((raw_root / part.subject / part.grade).glob("*.pdf"))])


def sample_chunks(pages: pd.DataFrame, part: Partition) -> pd.DataFrame:
    """The text_chunks table of a partition's pages (800/100 characters, as the asset's defaults)."""
    params = ChunkingParams(800, 100)
    chunks = []
    for file in sorted(pages.loc[pages["page_status"] == "ok", "file"].unique()):
        chunks.extend(chunk_file(part.label, file, readable_pages(pages, file), params))
    return chunks_frame(chunks)


def unit_vectors(n: int, dims: int = DIMS, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dims)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def chroma_build(layout: DataLayout, part: Partition, chunks: pd.DataFrame, vectors: np.ndarray) -> Path:
    """The partition's Chroma build from chunks and vectors, as the chroma_collection asset writes it."""
    metadatas = [
        {
            "subject": part.subject,
            "grade": part.grade,
            "file": r.file,
            "page": int(r.page_start),
            "page_end": int(r.page_end),
            "chunk_index": int(r.chunk_index),
        }
        for r in chunks.itertuples()
    ]
    info = build_collection(
        chroma_root(layout, part),
        part.collection_name,
        CollectionItems(
            chunks["chunk_id"].tolist(), vectors, chunks["text"].tolist(), metadatas, MODEL_ID, vectors.shape[1]
        ),
    )
    return info.path


def publish(layout: DataLayout, part: Partition, chunks: pd.DataFrame, embeddings: pd.DataFrame, build: Path) -> dict:
    """Publish the partition's VKP and return its catalog entry (the vkp_package value)."""
    counts = {"files": 1, "files_ok": 1, "pages": 4, "chunks": len(chunks), "embeddings": len(embeddings)}
    result = publish_vkp(
        LocalPackageStore(layout), part, chunks, embeddings, build, [], counts, signer=development_signer(layout.root)
    )
    assert result.published
    return result.catalog_entry()


def tamper(package: Path) -> None:
    """Change bytes of the chunks member inside a package, keeping its size and leaving its manifest as it
    was (an edit after publication that only the member's sha256 can reveal: the size check cannot)."""
    with zipfile.ZipFile(package) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    data = bytearray(members[CHUNKS_MEMBER])
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    members[CHUNKS_MEMBER] = bytes(data)
    with zipfile.ZipFile(package, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def golden_rows(pages: pd.DataFrame, part: Partition) -> list[dict]:
    """A golden question per page with text: its longest sentence, answered by that file and page."""
    rows = []
    for r in pages[pages["page_status"] == "ok"].itertuples():
        sentences = [
            s.strip() for s in re.split(r"(?<=[.?!])\s+", " ".join(str(r.text).split())) if len(s.split()) >= 8
        ]
        if sentences:
            rows.append(
                {
                    "question": max(sentences, key=len),
                    "subject": part.subject,
                    "grade": part.grade,
                    "file": r.file,
                    "page": int(r.page),
                }
            )
    return rows


def unanswerable_rows(part: Partition, file: str = "rusak.pdf") -> list[dict]:
    """Golden questions whose answers are in a file the build could not read: no build can answer them."""
    questions = [
        "Bagaimana proses respirasi sel menghasilkan energi?",
        "Apa fungsi mitokondria di dalam sel?",
        "Sebutkan tahapan pembelahan mitosis.",
        "Apa perbedaan sel hewan dan sel tumbuhan?",
    ]
    return [
        {"question": q, "subject": part.subject, "grade": part.grade, "file": file, "page": i}
        for i, q in enumerate(questions, 1)
    ]


def write_golden(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
