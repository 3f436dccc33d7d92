"""`nexus report`: the quality gates' verdicts of built partitions, on the terminal.

The same rules as the asset checks (`nexus_assets.lib.publish.quality`), applied to the values the
pipeline stored under `processed/<subject>/<grade>/` (the local IO manager's files), so a data
engineer who does not open the UI reads the same verdicts and figures. Golden questions and the
recall threshold come from the same settings as the retrieval check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nexus_assets.lib.core.escaping import shown
from nexus_assets.lib.core.layout import ARTIFACT, DataLayout, Partition
from nexus_assets.lib.core.parquet_io import read_frame
from nexus_assets.lib.index.embedding import Embedder
from nexus_assets.lib.index.retrieval_eval import load_golden
from nexus_assets.lib.publish import quality


class NotBuiltError(LookupError):
    """A partition without the stored values a report needs."""


@dataclass(frozen=True)
class StoredPartition:
    """What a build left under `processed/<subject>/<grade>/`."""

    raw_pdfs: pd.DataFrame
    pdf_text: pd.DataFrame
    text_chunks: pd.DataFrame
    chunk_embeddings: pd.DataFrame
    chroma_collection: dict[str, Any]
    vkp_package: dict[str, Any] | None  # None: the package step never ran (e.g. held back by a gate)


def load_stored(layout: DataLayout, part: Partition) -> StoredPartition:
    base = layout.processed_dir(part)

    def read(name: str, required: bool = True) -> Any:
        for suffix, reader in ((".parquet", read_frame), (".json", lambda p: json.loads(Path(p).read_text()))):
            if (base / f"{name}{suffix}").exists():
                return reader(base / f"{name}{suffix}")
        if required:
            raise NotBuiltError(
                f"{part.label}: no stored {name} under {base}: build it first "
                f"(nexus build --subject {part.subject} --grade {part.grade})"
            )
        return None

    return StoredPartition(
        read("raw_pdfs"),
        read("pdf_text"),
        read("text_chunks"),
        read("chunk_embeddings"),
        read("chroma_collection"),
        read("vkp_package", required=False),
    )


def partition_verdicts(
    stored: StoredPartition,
    part: Partition,
    embedder: Embedder,
    golden: str = "",
    min_recall: float | None = None,
    chunk_size: int = quality.DEFAULT_CHUNK_SIZE,
    k: int = quality.RECALL_K,
    environ: Mapping[str, str] | None = None,
) -> Iterator[tuple[str, str, quality.Verdict]]:
    """(check name, asset it judges, verdict) for each of the seven gates, in pipeline order; `environ`
    (the settings' snapshot) names the golden questions and recall when `golden`/`min_recall` do not."""
    yield "text_coverage", "pdf_text", quality.text_coverage(stored.pdf_text)
    yield "chunk_health", "text_chunks", quality.chunk_health(stored.text_chunks, target_size=chunk_size)
    yield "duplicate_rate", "text_chunks", quality.duplicate_rate(stored.text_chunks)
    model_id = dims = None
    if not stored.chunk_embeddings.empty:
        model_id, dims = embedder.model_id, embedder.dims
    yield (
        "embedding_sanity",
        "chunk_embeddings",
        quality.embedding_sanity(stored.chunk_embeddings, stored.text_chunks, model_id, dims),
    )
    build = Path(stored.chroma_collection[ARTIFACT])
    yield "collection_consistency", "chroma_collection", quality.collection_consistency(build, stored.text_chunks)
    yield (
        "retrieval_quality",
        "chroma_collection",
        _retrieval(build, stored, part, embedder, golden, min_recall, k, environ or {}),
    )
    entry = stored.vkp_package or {}
    location = entry.get("location")
    local = Path(location) if location and not str(location).startswith("s3://") else None
    problem = (
        f"{location} is in S3: verify it with `nexus vkp verify` on a downloaded copy"
        if location and not local
        else None
    )
    yield "package_integrity", "vkp_package", quality.package_integrity(entry, local, problem)


def _retrieval(
    build: Path,
    stored: StoredPartition,
    part: Partition,
    embedder: Embedder,
    golden: str,
    min_recall: float | None,
    k: int,
    environ: Mapping[str, str],
) -> quality.Verdict:
    path = quality.golden_path(golden, environ)
    if path is None:
        return quality.not_configured()
    threshold = quality.min_recall(min_recall, environ)
    try:
        questions = load_golden(path)
    except (OSError, ValueError) as exc:
        return quality.unreadable_golden(path, exc)
    asked, stale = quality.golden_for_partition(questions, part, list(stored.raw_pdfs["file"]))
    results = quality.evaluate_build(build, part, asked, embedder, k=k) if asked else []
    return quality.retrieval_quality(results, stale, threshold, k=k, source=str(path))


def verdict_label(verdict: quality.Verdict) -> str:
    """PASS, WARN (a failed warning), FAIL (a failed error: blocking) or N/A (nothing to judge)."""
    if not verdict.applicable:
        return "N/A"
    if verdict.passed:
        return "PASS"
    return "FAIL" if verdict.severity == "error" else "WARN"


def format_verdict(name: str, asset: str, verdict: quality.Verdict, details: bool = True) -> list[str]:
    """Lines for the terminal: the verdict, its figures, and the first offending rows of each table (of a
    passed verdict, only the tables it marks `always_show`)."""
    lines = [f"  {verdict_label(verdict):4} {name} ({asset}): {shown(verdict.summary)}"]
    figures = ", ".join(f"{k}={v}" for k, v in verdict.figures.items() if v is not None)
    if figures:
        lines.append(f"         {figures}")
    if details:
        for table, frame in verdict.tables.items():
            if frame.empty or (verdict.passed and table not in verdict.always_show):
                continue
            lines.append(f"         {table}:")
            cells = frame.head(10).astype(str).map(shown)  # file names and text from uploads: escaped
            lines += [f"           {line}" for line in cells.to_string(index=False).splitlines()]
            if len(frame) > 10:
                lines.append(f"           ... {len(frame) - 10} more")
    return lines
