"""Quality gates of a partition's build: one verdict per check, with the figures and rows behind it.

Plain Python, no Dagster: each function takes the tables (or paths) an asset stored and returns a
`Verdict` saying whether the data passes, how serious a failure is, and the evidence a data engineer
needs to act on it (figures, offending files, pages and ids). `nexus_assets.defs.checks` turns
verdicts into Dagster asset check results; the tests call these functions directly on data built to
break them.

Severity is policy and lives here, next to the rule: `error` for what would make the VKP wrong
(empty chunks, broken vectors, a collection that does not hold the build, a package that does not
verify, a build that cannot answer its golden questions), `warn` for what a human should look at but
must not stop a curriculum update (pages without a text layer, duplicated content).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from nexus_assets.lib.core import escaping, hashing
from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.core.tables import has_text
from nexus_assets.lib.index.chroma_store import CURRENT_LINK, CollectionError, open_collection, read_build_info
from nexus_assets.lib.index.embedding import Embedder
from nexus_assets.lib.index.retrieval_eval import GoldenQuestion, GoldenResult, evaluate
from nexus_assets.lib.index.search import SearchMode, chroma_root
from nexus_assets.lib.publish.vkp import verify_vkp

Severity = Literal["error", "warn"]

MIN_TEXT_COVERAGE = 0.9
SHORT_CHUNK_FRACTION = 0.2
DEFAULT_CHUNK_SIZE = 800  # the chunker's default, used when the build's own chunk size is unknown
MAX_DUPLICATE_RATE = 0.05
NORM_TOLERANCE = 1e-3  # float32 vectors normalised by the model land within ~1e-6 of 1
DEFAULT_MIN_RECALL = 0.7
RECALL_K = 5
GOLDEN_QUESTIONS_ENV = "NEXUS_GOLDEN_QUESTIONS"
MIN_RECALL_ENV = "NEXUS_GOLDEN_MIN_RECALL"
TABLE_LIMIT = 50


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: passed or not, the severity a failure carries, and the evidence.

    `summary` is the one sentence shown first in the UI; `figures` are scalars (plotted over time by
    Dagster); `tables` are the offending rows, so nobody has to reopen the data to find them.
    `applicable` is False when the check had nothing to judge (an empty partition, no golden
    questions): it then passes and says so rather than pretending to have measured something.
    `always_show` names tables worth reading even when the check passes (`nexus report` prints them).
    """

    passed: bool
    severity: Severity
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    applicable: bool = True
    always_show: tuple[str, ...] = ()


def markdown_table(frame: pd.DataFrame, limit: int = TABLE_LIMIT, markup: Collection[str] = ()) -> str:
    """A Markdown table of the first `limit` rows, with a note of what was left out.

    Every cell is literal text (`escaping.markdown`: file names and reasons come from uploads), except the
    columns named in `markup`, which the caller built as Markdown from escaped parts (a link to the file).
    """
    if frame.empty:
        return "_none_"
    shown = frame.head(limit).astype(str)
    for column in shown.columns:
        if column not in markup:
            shown[column] = shown[column].map(escaping.markdown)
    lines = ["| " + " | ".join(escaping.markdown(c) for c in shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in shown.itertuples(index=False)]
    if len(frame) > limit:
        lines.append(f"\n_{len(frame) - limit} more rows not shown_")
    return "\n".join(lines)


@dataclass(frozen=True)
class LengthBin:
    """Chunks whose length is in `low`..`high` characters (both inclusive)."""

    low: int
    high: int
    chunks: int


def length_bins(lengths: Sequence[int], bins: int = 8) -> list[LengthBin]:
    """Equal-width integer bins from the shortest to the longest length; every value is in exactly one."""
    values = np.asarray(list(lengths), dtype=np.int64)
    if values.size == 0:
        return []
    lo, hi = int(values.min()), int(values.max())
    step = -(-(hi - lo + 1) // bins)  # ceil: integer bins covering lo..hi
    edges = np.arange(lo, hi + step + 1, step)[: bins + 1]
    counts, _ = np.histogram(values, bins=edges)
    return [LengthBin(int(edges[i]), int(edges[i + 1]) - 1, int(c)) for i, c in enumerate(counts)]


def length_histogram(lengths: Sequence[int], bins: int = 8, width: int = 30) -> str:
    """A compact text histogram (a Markdown code block) of chunk lengths, for a terminal.

    The UI gets `length_bins` as a table instead (defs/assets.py); one line per bin: range, bar, count.
    """
    counted = length_bins(lengths, bins)
    if not counted:
        return "_no chunks_"
    top = max(max(b.chunks for b in counted), 1)
    lines = [f"{b.low:>5}–{b.high:<5} {'█' * round(width * b.chunks / top):<{width}} {b.chunks}" for b in counted]
    return "```\nchars        chunks\n" + "\n".join(lines) + "\n```"


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _pages_label(frame: pd.DataFrame) -> pd.Series:
    start, end = frame["page_start"].astype(int).astype(str), frame["page_end"].astype(int).astype(str)
    return ("p." + start).where(start == end, "p." + start + "–" + end)


# --- text coverage (pdf_text) ---------------------------------------------------------------------------


def text_coverage(pages: pd.DataFrame, min_share: float = MIN_TEXT_COVERAGE) -> Verdict:
    """Share of pages with text (a text layer, or OCR of a scan); a warning below `min_share`.

    Pages without text are not searchable and not in the VKP: scans where OCR is unavailable or read
    nothing, blank pages. It warns rather than blocks, because the rest of the partition is still worth
    publishing. Pages read by OCR count as text but are listed (their text is noisier). Files that could
    not be opened at all have no pages to count; they are listed beside the pages so nothing is lost,
    and every file not indexed (whatever its status: empty, not_pdf, truncated, too_large, timeout, ...)
    is named with its status in the summary and listed with its reason in `failed_files`.
    """
    page_rows = pages[pages["page"].notna()]
    without = page_rows[~has_text(page_rows)]
    ocred = page_rows[page_rows["page_status"] == "ocr"]
    unreadable = pages[pages["page"].isna()]
    total, with_text = len(page_rows), len(page_rows) - len(without)
    share = _share(with_text, total)
    files = pages.drop_duplicates("file").sort_values("file", kind="stable")
    failed = files[files["file_status"] != "ok"][["file", "file_status", "file_reason"]].reset_index(drop=True)
    figures: dict[str, Any] = {
        "pages": total,
        "pages_with_text": with_text,
        "pages_ocr": len(ocred),
        "pages_without_text": len(without),
        "text_coverage": share,
        "min_text_coverage": min_share,
        "files_without_pages": len(unreadable),
        "files_failed": len(failed),
    }
    tables = {
        "pages_without_text": without[["file", "page", "page_status", "page_reason"]].reset_index(drop=True),
        "pages_read_by_ocr": ocred[["file", "page"]].reset_index(drop=True),
        "files_without_pages": unreadable[["file", "file_status", "file_reason"]].reset_index(drop=True),
        "failed_files": failed,
    }
    shown = ("failed_files",)
    named = ", ".join(f"{r.file} ({r.file_status})" for r in failed.itertuples())
    if total == 0:
        if unreadable.empty:
            return Verdict(True, "warn", "not applicable: the partition has no PDFs", figures, tables, applicable=False)
        return Verdict(
            False,
            "warn",
            f"no readable page: {len(unreadable)} file(s) could not be read: {named}",
            figures,
            tables,
            always_show=shown,
        )
    not_indexed = f"; {len(failed)} file(s) not indexed: {named}" if len(failed) else ""
    ocr_note = f", {len(ocred)} of them by OCR" if len(ocred) else ""
    if share < min_share:
        names = ", ".join(sorted(without["file"].unique()))
        return Verdict(
            False,
            "warn",
            f"{share:.1%} of {total} pages have text{ocr_note} (below {min_share:.0%}); "
            f"pages without text in: {names}{not_indexed}",
            figures,
            tables,
            always_show=shown,
        )
    return Verdict(
        True,
        "warn",
        f"{share:.1%} of {total} pages have text{ocr_note} (at least {min_share:.0%}){not_indexed}",
        figures,
        tables,
        always_show=shown,
    )


# --- chunk health and duplicates (text_chunks) -----------------------------------------------------------


def chunk_health(
    chunks: pd.DataFrame, target_size: int = DEFAULT_CHUNK_SIZE, short_fraction: float = SHORT_CHUNK_FRACTION
) -> Verdict:
    """No empty chunks and no repeated chunk ids; length figures and the share of very short chunks.

    An empty (or whitespace-only) chunk is embedded to a meaningless vector that matches random
    queries, and a repeated id makes Chroma refuse the batch or the VKP ambiguous: both are errors.
    Chunks shorter than `short_fraction` of the target size are reported, not failed: the last
    chunk of a short page is legitimately short, but a high share points at bad extraction.
    """
    lengths = chunks["text"].astype(str).str.len()
    empty = chunks[chunks["text"].astype(str).str.strip() == ""]
    repeated = chunks[chunks["chunk_id"].duplicated(keep=False)]
    short_limit = max(1, int(target_size * short_fraction))
    short = chunks[(lengths < short_limit) & (chunks["text"].astype(str).str.strip() != "")]
    figures: dict[str, Any] = {
        "chunks": len(chunks),
        "empty_chunks": len(empty),
        "repeated_chunk_ids": int(repeated["chunk_id"].nunique()),
        "chunk_len_min": int(lengths.min()) if len(chunks) else 0,
        "chunk_len_median": float(lengths.median()) if len(chunks) else 0.0,
        "chunk_len_max": int(lengths.max()) if len(chunks) else 0,
        "target_chunk_size": target_size,
        "short_chunk_limit": short_limit,
        "short_chunks": len(short),
        "short_chunk_share": _share(len(short), len(chunks)),
    }

    def located(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.assign(
            pages=_pages_label(frame),
            length=frame["text"].astype(str).str.len(),
            preview=frame["text"].astype(str).str.slice(0, 80),
        )
        return out[["chunk_id", "file", "pages", "length", "preview"]].reset_index(drop=True)

    tables = {
        "empty_chunks": located(empty),
        "repeated_chunk_ids": located(repeated),
        "short_chunks": located(short.sort_values("text", key=lambda s: s.str.len())),
    }
    if chunks.empty:
        return Verdict(True, "error", "not applicable: the partition has no chunks", figures, tables, applicable=False)
    problems = []
    if len(empty):
        problems.append(f"{len(empty)} empty chunk(s) in {', '.join(sorted(empty['file'].unique()))}")
    if len(repeated):
        problems.append(f"{figures['repeated_chunk_ids']} chunk id(s) used more than once")
    stats = (
        f"{len(chunks)} chunks, length {figures['chunk_len_min']}/{figures['chunk_len_median']:g}/"
        f"{figures['chunk_len_max']} (min/median/max), {figures['short_chunk_share']:.1%} shorter than "
        f"{short_limit} characters"
    )
    if problems:
        return Verdict(False, "error", "; ".join(problems) + f" ({stats})", figures, tables)
    return Verdict(True, "error", stats, figures, tables)


def duplicate_rate(chunks: pd.DataFrame, max_rate: float = MAX_DUPLICATE_RATE) -> Verdict:
    """Exact duplicate chunks across the partition (by sha256 of the text); a warning above `max_rate`.

    Duplicates usually mean the same book uploaded twice under two names, or boilerplate that
    survived cleaning: they crowd the top hits with copies. They do not make the package wrong,
    so this warns and does not block.
    """
    hashes = chunks["text"].astype(str).map(hashing.sha256_text)
    copies = int(len(chunks) - hashes.nunique())
    rate = _share(copies, len(chunks))
    figures: dict[str, Any] = {
        "chunks": len(chunks),
        "unique_chunks": int(hashes.nunique()),
        "duplicate_chunks": copies,
        "duplicate_rate": rate,
        "max_duplicate_rate": max_rate,
    }
    duplicated = chunks.assign(content_hash=hashes, where=chunks["file"] + " " + _pages_label(chunks))
    duplicated = duplicated[duplicated["content_hash"].duplicated(keep=False)]
    groups = (
        duplicated.groupby("content_hash", sort=False)
        .agg(
            copies=("chunk_id", "size"),
            files=("file", lambda s: ", ".join(sorted(set(s)))),
            locations=("where", lambda s: "; ".join(s)),
            preview=("text", lambda s: str(s.iloc[0])[:80]),
        )
        .reset_index()
        .assign(content_hash=lambda f: f["content_hash"].str.slice(0, 12))
        .sort_values("copies", ascending=False, kind="stable")
    )
    tables = {"duplicate_groups": groups.reset_index(drop=True)}
    if chunks.empty:
        return Verdict(True, "warn", "not applicable: the partition has no chunks", figures, tables, applicable=False)
    detail = f"{copies} of {len(chunks)} chunks are exact copies of another ({rate:.1%})"
    if rate > max_rate:
        files = ", ".join(sorted(duplicated["file"].unique()))
        return Verdict(
            False, "warn", f"{detail}, above {max_rate:.0%}; duplicated content in: {files}", figures, tables
        )
    return Verdict(True, "warn", f"{detail}, at most {max_rate:.0%}", figures, tables)


# --- embedding sanity (chunk_embeddings) -----------------------------------------------------------------


def embedding_sanity(
    embeddings: pd.DataFrame,
    chunks: pd.DataFrame,
    expected_model_id: str | None = None,
    expected_dims: int | None = None,
    norm_tolerance: float = NORM_TOLERANCE,
) -> Verdict:
    """Every vector has the right dims, is finite, unit-norm and not all zero; one vector per chunk.

    A single NaN poisons cosine search for the whole collection, a zero vector matches nothing, a
    vector that is not unit-norm skews cosine scores, and a chunk without a vector is invisible to
    search: each would ship broken in the VKP, so any of them is an error. `expected_*` are the
    configured model's identity: vectors made by another model cannot be queried with this one.
    """
    models = sorted({(str(m), int(d)) for m, d in zip(embeddings["model_id"], embeddings["dims"], strict=True)})
    dims = expected_dims if expected_dims is not None else (models[0][1] if len(models) == 1 else None)
    rows: list[dict[str, Any]] = []
    norms: list[float] = []
    for chunk_id, raw in zip(embeddings["chunk_id"], embeddings["embedding"], strict=True):
        vector = np.asarray(raw, dtype=np.float64).ravel()
        finite = bool(np.isfinite(vector).all())
        norm = float(np.linalg.norm(vector)) if finite else math.nan
        if finite:
            norms.append(norm)
        if dims is not None and vector.size != dims:
            kind, detail = "wrong_dims", f"{vector.size} dims, expected {dims}"
        elif not finite:
            kind, detail = "non_finite", f"{int((~np.isfinite(vector)).sum())} NaN/inf value(s)"
        elif not vector.any():
            kind, detail = "all_zero", "all zeros"
        elif abs(norm - 1.0) > norm_tolerance:
            kind, detail = "not_unit_norm", f"norm {norm:.6f}, not 1"
        else:
            continue
        rows.append(
            {
                "chunk_id": chunk_id,
                "kind": kind,
                "problem": detail,
                "length": vector.size,
                "norm": "nan" if math.isnan(norm) else f"{norm:.6f}",
            }
        )
    bad = pd.DataFrame(rows, columns=["chunk_id", "kind", "problem", "length", "norm"])
    chunk_ids = pd.Series(list(chunks["chunk_id"]), dtype="object")
    vector_ids = pd.Series(list(embeddings["chunk_id"]), dtype="object")
    missing = sorted(set(chunk_ids) - set(vector_ids))
    extra = sorted(set(vector_ids) - set(chunk_ids))
    repeated = sorted(vector_ids[vector_ids.duplicated()].unique())
    id_rows = (
        [{"chunk_id": c, "problem": "chunk without a vector"} for c in missing]
        + [{"chunk_id": c, "problem": "vector without a chunk"} for c in extra]
        + [{"chunk_id": c, "problem": "more than one vector"} for c in repeated]
    )
    kinds = bad["kind"].value_counts()
    figures: dict[str, Any] = {
        "vectors": len(embeddings),
        "chunks": len(chunks),
        "dims": dims if dims is not None else 0,
        "model_id": ", ".join(m for m, _ in models) or "-",
        **{kind: int(kinds.get(kind, 0)) for kind in ("wrong_dims", "non_finite", "all_zero", "not_unit_norm")},
        "norm_min": round(min(norms), 6) if norms else 0.0,
        "norm_max": round(max(norms), 6) if norms else 0.0,
        "chunks_without_vector": len(missing),
        "vectors_without_chunk": len(extra),
        "repeated_vector_ids": len(repeated),
    }
    tables = {
        "bad_vectors": bad.drop(columns="kind"),
        "id_mismatches": pd.DataFrame(id_rows, columns=["chunk_id", "problem"]),
    }
    problems = []
    if len(models) > 1:
        problems.append(f"vectors from {len(models)} models: {models}")
    if expected_model_id and models and any(m != expected_model_id for m, _ in models):
        problems.append(f"vectors made by {figures['model_id']}, but the configured model is {expected_model_id}")
    if expected_dims is not None and any(d != expected_dims for _, d in models):
        problems.append(f"dims column says {sorted({d for _, d in models})}, the model has {expected_dims}")
    for key, label in (
        ("wrong_dims", "with wrong dims"),
        ("non_finite", "with NaN/inf"),
        ("all_zero", "all zeros"),
        ("not_unit_norm", "not unit-norm"),
    ):
        if figures[key]:
            problems.append(f"{figures[key]} vector(s) {label}")
    if len(embeddings) != len(chunks):
        problems.append(f"{len(embeddings)} vectors for {len(chunks)} chunks")
    if missing or extra or repeated:
        problems.append(
            f"ids differ from the chunks ({len(missing)} without a vector, {len(extra)} without a "
            f"chunk, {len(repeated)} repeated)"
        )
    if problems:
        return Verdict(False, "error", "; ".join(problems), figures, tables)
    if embeddings.empty:
        return Verdict(True, "error", "not applicable: the partition has no chunks", figures, tables, applicable=False)
    return Verdict(
        True, "error", f"{len(embeddings)} finite unit-norm vectors of {dims} dims, one per chunk", figures, tables
    )


# --- collection consistency (chroma_collection) ----------------------------------------------------------


def collection_ids(build_dir: Path) -> list[str]:
    """Every id stored in a complete Chroma build (ids only: no documents or vectors are read)."""
    return list(open_collection(build_dir).get(include=[])["ids"])


def collection_consistency(build_dir: Path, chunks: pd.DataFrame) -> Verdict:
    """The Chroma collection of the build holds exactly the chunk ids of the build, no more, no fewer.

    The collection is what schools query: a missing id is a chunk that can never be found, an extra
    id serves text the build no longer has (a deleted book), and a count that differs from the build
    record means the directory was changed after it was built. All are errors.
    """
    figures: dict[str, Any] = {"chunks": len(chunks), "build": str(build_dir)}
    empty_tables = {
        "missing_ids": pd.DataFrame(columns=["chunk_id", "file", "pages"]),
        "extra_ids": pd.DataFrame(columns=["chunk_id"]),
    }
    try:
        stored = collection_ids(build_dir)
        recorded = int(read_build_info(build_dir).get("count", -1))
    except (CollectionError, OSError, ValueError) as exc:
        return Verdict(False, "error", f"the Chroma build cannot be read: {exc}", figures, empty_tables)
    wanted = set(chunks["chunk_id"])
    missing_ids, extra_ids = wanted - set(stored), sorted(set(stored) - wanted)
    missing = chunks[chunks["chunk_id"].isin(missing_ids)]
    missing = missing.assign(pages=_pages_label(missing))[["chunk_id", "file", "pages"]].reset_index(drop=True)
    figures.update(
        {
            "collection_items": len(stored),
            "recorded_count": recorded,
            "missing_ids": len(missing_ids),
            "extra_ids": len(extra_ids),
        }
    )
    tables = {"missing_ids": missing, "extra_ids": pd.DataFrame({"chunk_id": extra_ids}, columns=["chunk_id"])}
    problems = []
    if missing_ids:
        problems.append(
            f"{len(missing_ids)} chunk id(s) missing from the collection "
            f"(in {', '.join(sorted(missing['file'].unique()))})"
        )
    if extra_ids:
        problems.append(f"{len(extra_ids)} id(s) in the collection that the build does not have")
    if recorded != len(stored):
        problems.append(f"the build record says {recorded} items, Chroma holds {len(stored)}")
    if problems:
        return Verdict(False, "error", "; ".join(problems), figures, tables)
    return Verdict(
        True, "error", f"the collection holds exactly the {len(wanted)} chunk ids of the build", figures, tables
    )


# --- package integrity (vkp_package) ----------------------------------------------------------------------


def package_integrity(
    entry: Mapping[str, Any], package: Path | None, fetch_problem: str | None = None, public_key: Any = None
) -> Verdict:
    """The partition's current VKP verifies end to end and is the package its catalog entry names.

    `entry` is the vkp_package value (version, location, content_hash); `package` a local copy of the
    file at `location` (None with `fetch_problem` when it could not be fetched). Beyond `verify_vkp`
    (checksums, tables, content hash, and the signature when `public_key` is given), the manifest must
    carry the entry's version and content hash, so a package swapped for another valid one is caught too.
    """
    version, location = entry.get("version"), entry.get("location")
    figures: dict[str, Any] = {"version": version or "-", "location": str(location or "-")}
    if not version:
        return Verdict(
            True,
            "error",
            "not applicable: nothing is published for this partition",
            figures,
            {"problems": pd.DataFrame(columns=["problem"])},
            applicable=False,
        )
    problems: list[str] = []
    if package is None:
        problems.append(fetch_problem or f"the package at {location} could not be fetched")
    else:
        report = verify_vkp(package, public_key)
        problems.extend(report.problems)
        manifest = report.manifest or {}
        if manifest and manifest.get("version") != version:
            problems.append(f"manifest version {manifest.get('version')} is not the published {version}")
        if manifest and manifest.get("content_hash") != entry.get("content_hash"):
            problems.append("manifest content hash differs from the one recorded at publication")
        if manifest:
            counts = manifest.get("counts", {})
            figures.update(
                {
                    "chunks": int(counts.get("chunks", 0)),
                    "members": len(manifest.get("members", {})),
                    "bytes": package.stat().st_size,
                }
            )
    figures["problems"] = len(problems)
    tables = {"problems": pd.DataFrame({"problem": problems}, columns=["problem"])}
    if problems:
        return Verdict(
            False,
            "error",
            f"v{version} does not verify: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            figures,
            tables,
        )
    return Verdict(
        True, "error", f"v{version} verifies: manifest, member checksums, tables and content hash", figures, tables
    )


# --- retrieval quality (chroma_collection) ----------------------------------------------------------------


def golden_path(configured: str, environ: Mapping[str, str]) -> Path | None:
    """The golden question file: the check's config, else $NEXUS_GOLDEN_QUESTIONS, else none."""
    chosen = configured or environ.get(GOLDEN_QUESTIONS_ENV, "")
    return Path(chosen).expanduser() if chosen else None


def min_recall(configured: float | None, environ: Mapping[str, str]) -> float:
    """The recall threshold: the check's config, else $NEXUS_GOLDEN_MIN_RECALL, else 0.7."""
    if configured is not None:
        value = float(configured)
    else:
        raw = environ.get(MIN_RECALL_ENV, "")
        try:
            value = float(raw) if raw else DEFAULT_MIN_RECALL
        except ValueError as exc:
            raise ValueError(f"{MIN_RECALL_ENV}={raw!r} is not a number between 0 and 1") from exc
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"minimum recall must be between 0 and 1, got {value}")
    return value


def golden_for_partition(
    questions: Sequence[GoldenQuestion], partition: Partition, source_files: Sequence[str]
) -> tuple[list[GoldenQuestion], list[GoldenQuestion]]:
    """(questions to ask, stale questions) of a partition.

    A question is stale when its answering file is no longer among the partition's source PDFs: the
    file was removed on purpose, and the golden set is behind. Stale questions are listed, not
    counted, so deleting a book does not block its partition. A file that is present but did not
    extract still counts: then the build really lost the answer.
    """
    mine = [q for q in questions if (q.subject, q.grade) == (partition.subject, partition.grade)]
    present = set(source_files)
    return [q for q in mine if q.file in present], [q for q in mine if q.file not in present]


def evaluate_build(
    build_dir: Path,
    partition: Partition,
    questions: Sequence[GoldenQuestion],
    embedder: Embedder,
    k: int = RECALL_K,
    mode: SearchMode = "hybrid",
) -> list[GoldenResult]:
    """`retrieval_eval.evaluate` against one given Chroma build rather than the live `current` one.

    The check judges the build it was handed: a scratch layout whose `current` link points at that
    build makes `evaluate` (and `search`) read exactly it, whatever the live link points at.
    """
    with tempfile.TemporaryDirectory(prefix="nexus-golden-") as scratch:
        layout = DataLayout(Path(scratch))
        root = chroma_root(layout, partition)
        root.mkdir(parents=True)
        (root / CURRENT_LINK).symlink_to(Path(build_dir).resolve(), target_is_directory=True)
        return evaluate(layout, list(questions), embedder, k=k, mode=mode)


def retrieval_quality(
    results: Sequence[GoldenResult],
    stale: Sequence[GoldenQuestion],
    threshold: float,
    k: int = RECALL_K,
    source: str = "",
) -> Verdict:
    """recall@k of the golden questions (answering file and page in the top k) against `threshold`.

    An error below the threshold: schools keep a package for months without a network, so a build
    that no longer finds what the curated questions ask is held back and the previous version stays
    in service. No golden question for the partition: passes as not applicable.
    """
    found = sum(r.found for r in results)
    recall = _share(found, len(results))
    rows = [
        {
            "question": r.question.question,
            "file": r.question.file,
            "page": r.question.page,
            "rank": r.rank if r.found else f"not in top {k}",
        }
        for r in results
    ]
    figures: dict[str, Any] = {
        "questions": len(results),
        "answered": found,
        f"recall_at_{k}": recall,
        "min_recall": threshold,
        "stale_questions": len(stale),
        "golden_file": source or "-",
    }
    tables = {
        "missed_questions": pd.DataFrame(
            [r for r in rows if not isinstance(r["rank"], int)], columns=["question", "file", "page", "rank"]
        ),
        "answered_questions": pd.DataFrame(
            [r for r in rows if isinstance(r["rank"], int)], columns=["question", "file", "page", "rank"]
        ),
        "stale_questions": pd.DataFrame(
            [{"question": q.question, "file": q.file, "page": q.page} for q in stale],
            columns=["question", "file", "page"],
        ),
    }
    if not results:
        why = (
            f"all {len(stale)} golden question(s) name files no longer in the partition"
            if stale
            else "no golden question for this partition"
        )
        return Verdict(True, "error", f"not applicable: {why}", figures, tables, applicable=False)
    detail = f"recall@{k} {recall:.0%} ({found}/{len(results)} golden questions answered)"
    if recall < threshold:
        return Verdict(False, "error", f"{detail}, below {threshold:.0%}", figures, tables)
    return Verdict(True, "error", f"{detail}, at least {threshold:.0%}", figures, tables)


def not_configured() -> Verdict:
    """The verdict when the deployment has no golden question file."""
    return Verdict(
        True,
        "error",
        f"not applicable: no golden question file configured (${GOLDEN_QUESTIONS_ENV})",
        {"questions": 0},
        applicable=False,
    )


def unreadable_golden(path: Path, exc: Exception) -> Verdict:
    """A configured golden file that cannot be read is an error: a gate that silently passes is worse."""
    return Verdict(
        False,
        "error",
        f"golden question file {escaping.shown(str(path))} is configured but cannot be read: {escaping.shown(exc)}",
        {"questions": 0, "golden_file": str(path)},
    )
