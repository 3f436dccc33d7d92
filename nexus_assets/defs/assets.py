"""The curriculum assets: raw PDFs → text → chunks → embeddings → Chroma collection → VKP package.

Each asset is partitioned by subject × grade and stays thin: it calls the plain modules in
`nexus_assets.lib` and turns their results into metadata a data engineer reads in the UI.
"""

import time
from contextlib import nullcontext
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from nexus_assets.defs.io_managers import ARTIFACT, RECORD_IO_MANAGER
from nexus_assets.defs.partitions import curriculum_partitions_def, partition_of
from nexus_assets.defs.resources import DataDirResource, EmbedderResource
from nexus_assets.lib.caches import VectorCache
from nexus_assets.lib.chroma_store import build_collection
from nexus_assets.lib.chunking import ChunkingParams, chunk_file
from nexus_assets.lib.embedding import embed_with_cache
from nexus_assets.lib.pdf_extraction import FileExtraction, extract_pdfs, extraction_cache
from nexus_assets.lib.publishing import publish_vkp
from nexus_assets.lib.search import chroma_root
from nexus_assets.lib.tables import (
    chunks_frame,
    embedding_identity,
    embeddings_frame,
    file_status_frame,
    pages_frame,
    readable_pages,
    vectors_of,
)

INGEST, INDEX, PUBLISH = "ingest", "index", "publish"
PREVIEW_CHUNKS = 3
# Steps touch S3, DynamoDB and the disk: a transient outage longer than botocore's own retries gets
# three more tries, 1 s, 2 s, 4 s apart (±jitter, so parallel runs do not retry in lockstep).
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=1, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

def _md_table(frame: pd.DataFrame, limit: int = 50) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_none_")
    shown = frame.head(limit).astype(str).map(lambda s: s.replace("|", "\\|").replace("\n", " "))
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in shown.itertuples(index=False)]
    if len(frame) > limit:
        lines.append(f"\n_{len(frame) - limit} more rows not shown_")
    return dg.MetadataValue.md("\n".join(lines))

@dg.asset(
    partitions_def=curriculum_partitions_def,
    retry_policy=TRANSIENT_RETRY,
    group_name=INGEST,
    kinds={"pdf", "pandas"},
    io_manager_key=RECORD_IO_MANAGER,
    description="Manifest of the partition's PDFs under raw-curriculum/<subject>/<grade>/: path, size, sha256, mtime.",
)
def raw_pdfs(context: dg.AssetExecutionContext, data_dir: DataDirResource) -> dg.Output[pd.DataFrame]:
    part = partition_of(context.partition_key)
    raw_dir = data_dir.layout.raw_dir(part)
    manifest = data_dir.raw_source().manifest(part)
    if manifest.empty:
        context.log.info(f"{part.label}: no PDFs under {raw_dir}: the partition builds empty")
    else:
        context.log.info(f"{part.label}: {len(manifest)} PDFs under {raw_dir}")
    return dg.Output(manifest, metadata={
        "files": len(manifest),
        "total_bytes": int(manifest["size"].sum()) if len(manifest) else 0,
        "source_dir": dg.MetadataValue.path(str(raw_dir)),
        "files_table": _md_table(manifest[["file", "size", "sha256", "mtime"]]),
    })

@dg.asset(
    partitions_def=curriculum_partitions_def,
    retry_policy=TRANSIENT_RETRY,
    group_name=INGEST,
    kinds={"pymupdf", "pandas"},
    description="Cleaned text of every page (NFKC, hyphenation joined, running headers/footers dropped), "
    "with a status per file: ok, encrypted, malformed or no_text_layer.",
)
def pdf_text(
    context: dg.AssetExecutionContext, data_dir: DataDirResource, raw_pdfs: pd.DataFrame
) -> dg.Output[pd.DataFrame]:
    part = partition_of(context.partition_key)
    source = data_dir.raw_source()  # in aws mode, fetches a PDF this machine has not mirrored yet

    def report(result: FileExtraction, cached: bool) -> None:
        if result.status != "ok":
            context.log.warning(f"{part.label}: {result.file}: {result.status}: {result.reason}")
        elif not cached:  # unchanged files get one summary line: each log line is an event in the instance
            pages = f"{result.text_pages}/{result.page_count} pages with text"
            context.log.info(f"{part.label}: {result.file}: ok, {pages}")

    # A PDF is fetched (aws mode) and read only when its sha256 is not in the extraction cache.
    items = [(row.file, row.sha256, lambda path=row.path: source.local_path(path))
             for row in raw_pdfs.itertuples(index=False)]
    extractions, stats = extract_pdfs(items, extraction_cache(data_dir.layout.cache_dir), on_result=report)
    if stats.cached:
        context.log.info(f"{part.label}: {stats.cached} of {stats.files} files unchanged (extraction from the "
                         f"cache); {stats.extracted} extracted with {stats.workers} process(es)")
    pages = pages_frame(extractions)
    files = file_status_frame(pages)
    failed = files[files["status"] != "ok"]
    page_rows = pages[pages["page"].notna()]
    return dg.Output(pages, metadata={
        "files": len(files),
        "files_ok": int((files["status"] == "ok").sum()),
        "files_failed": len(failed),
        "pages": len(page_rows),
        "pages_with_text": int((page_rows["page_status"] == "ok").sum()),
        "pages_without_text": int((page_rows["page_status"] != "ok").sum()),
        "failed_files": _md_table(failed[["file", "status", "reason"]]),
        "file_status": _md_table(files),
        "files_from_cache": stats.cached,
        "extraction_workers": stats.workers,
    })

class ChunkingConfig(dg.Config):
    """Chunk size and overlap in characters; chunks are also capped to the model's token window."""

    chunk_size: int = 800
    chunk_overlap: int = 100
    cap_to_model_window: bool = True

@dg.asset(
    partitions_def=curriculum_partitions_def,
    retry_policy=TRANSIENT_RETRY,
    group_name=INDEX,
    kinds={"pandas"},
    description="Overlapping chunks ending on paragraph or sentence boundaries, each with file, page span "
    "and a stable chunk_id derived from its content and source.",
)
def text_chunks(
    context: dg.AssetExecutionContext, config: ChunkingConfig, embedder: EmbedderResource, pdf_text: pd.DataFrame
) -> dg.Output[pd.DataFrame]:
    part = partition_of(context.partition_key)
    model = embedder.get_embedder() if config.cap_to_model_window else None
    params = ChunkingParams(config.chunk_size, config.chunk_overlap, model.max_tokens if model else None)
    chunks = []
    for file in sorted(pdf_text.loc[pdf_text["page_status"] == "ok", "file"].unique()):
        file_chunks = chunk_file(part.label, file, readable_pages(pdf_text, file), params,
                                 model.count_tokens if model else None)
        context.log.info(f"{part.label}: {file}: {len(file_chunks)} chunks")
        chunks.extend(file_chunks)
    frame = chunks_frame(chunks)
    lengths = frame["char_len"]
    preview = "\n\n".join(
        f"**{r.file}** p.{r.page_start}–{r.page_end} `{r.chunk_id[:10]}`\n\n> {r.text[:300]}…"
        for r in frame.head(PREVIEW_CHUNKS).itertuples()
    )
    return dg.Output(frame, metadata={
        "chunks": len(frame),
        "chunk_size": config.chunk_size,
        "chunk_overlap": config.chunk_overlap,
        "max_tokens": params.max_tokens or 0,
        "chunk_len_min": int(lengths.min()) if len(frame) else 0,
        "chunk_len_median": float(lengths.median()) if len(frame) else 0.0,
        "chunk_len_max": int(lengths.max()) if len(frame) else 0,
        "preview": dg.MetadataValue.md(preview or "_no chunks_"),
    })

@dg.asset(
    partitions_def=curriculum_partitions_def,
    retry_policy=TRANSIENT_RETRY,
    group_name=INDEX,
    kinds={"pytorch", "pandas"},
    pool="embedding",  # CPU-bound: one embedding step at a time on this machine (dagster.yaml pools)
    description="Normalised sentence embeddings of every chunk; the model id and dims travel with the vectors.",
)
def chunk_embeddings(
    context: dg.AssetExecutionContext, data_dir: DataDirResource, embedder: EmbedderResource,
    text_chunks: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    part = partition_of(context.partition_key)
    model = embedder.get_embedder()
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        context.log.info(f"{part.label}: embedded {done}/{total} new or changed chunks")

    # Only chunks whose text is not in the vector cache are embedded; the model loads only if there are any.
    with VectorCache(data_dir.layout.cache_dir) if embedder.cache_vectors else nullcontext() as cache:
        result = embed_with_cache(model, text_chunks["text"].tolist(), cache, progress,
                                  keys=text_chunks["content_sha256"].tolist())
    seconds = time.perf_counter() - started
    if model.fallback_reason:
        context.log.warning(f"{part.label}: embedding fell back to fp32: {model.fallback_reason}")
    context.log.info(f"{part.label}: {result.embedded} chunks embedded ({result.precision}), "
                     f"{result.cached} from the cache")
    frame = embeddings_frame(text_chunks["chunk_id"].tolist(), result.vectors, model.model_id, model.dims)
    return dg.Output(frame, metadata={
        "embeddings": len(frame),
        "model_id": model.model_id,
        "dims": model.dims,
        "precision": result.precision,
        "embedded": result.embedded,
        "from_cache": result.cached,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(result.embedded / seconds, 1) if result.embedded and seconds else 0.0,
    })

@dg.asset(
    partitions_def=curriculum_partitions_def,
    retry_policy=TRANSIENT_RETRY,
    group_name=INDEX,
    kinds={"chromadb"},
    pool="chroma_writer",
    io_manager_key=RECORD_IO_MANAGER,
    description="Persistent Chroma collection of the partition, built aside and swapped in atomically; "
    "ids are chunk ids, metadata subject, grade, file and page.",
)
def chroma_collection(
    context: dg.AssetExecutionContext,
    data_dir: DataDirResource,
    embedder: EmbedderResource,
    text_chunks: pd.DataFrame,
    chunk_embeddings: pd.DataFrame,
) -> dg.Output[dict]:
    part = partition_of(context.partition_key)
    if chunk_embeddings.empty:
        model = embedder.get_embedder()
        model_id, dims, vectors = model.model_id, model.dims, np.zeros((0, model.dims), dtype=np.float32)
    else:
        model_id, dims = embedding_identity(chunk_embeddings)
        ordered = chunk_embeddings.set_index("chunk_id").loc[text_chunks["chunk_id"]].reset_index()
        vectors = vectors_of(ordered)
    metadatas = [
        {"subject": part.subject, "grade": part.grade, "file": r.file, "page": int(r.page_start),
         "page_end": int(r.page_end), "chunk_index": int(r.chunk_index)}
        for r in text_chunks.itertuples()
    ]
    info = build_collection(
        chroma_root(data_dir.layout, part), part.collection_name, text_chunks["chunk_id"].tolist(), vectors,
        text_chunks["text"].tolist(), metadatas, model_id, dims,
    )
    how = {"reused": "unchanged", "incremental": f"updated in a copy (+{info.upserted} upserted, -{info.deleted} "
           "deleted)", "fresh": "written fresh"}[info.mode]
    context.log.info(f"{part.label}: collection {info.name} {how}, {info.count} items")
    # How the build was made is metadata only: the record stays the same for the same content.
    record = {k: v for k, v in info.as_dict().items() if k not in ("path", "reused", "mode", "upserted", "deleted")}
    return dg.Output({**record, ARTIFACT: str(info.path)}, metadata={
        "collection": info.name,
        "items": info.count,
        "reused": info.reused,
        "build_mode": info.mode,
        "upserted": info.upserted,
        "deleted": info.deleted,
        "path": dg.MetadataValue.path(str(info.path)),
        "model_id": model_id,
    })

@dg.asset(
    partitions_def=curriculum_partitions_def,
    retry_policy=TRANSIENT_RETRY,
    group_name=PUBLISH,
    kinds={"zip"},
    io_manager_key=RECORD_IO_MANAGER,
    description="Versioned knowledge package vkp/<subject>_<grade>_v<semver>.vkp; a new patch version only "
    "when the content changed.",
)
def vkp_package(
    context: dg.AssetExecutionContext,
    data_dir: DataDirResource,
    raw_pdfs: pd.DataFrame,
    pdf_text: pd.DataFrame,
    text_chunks: pd.DataFrame,
    chunk_embeddings: pd.DataFrame,
    chroma_collection: dict,
) -> dg.Output[dict]:
    part = partition_of(context.partition_key)
    files = file_status_frame(pdf_text)
    status_by_file = dict(zip(files["file"], files["status"], strict=True))
    sources = [
        {"file": r.file, "sha256": r.sha256, "size": int(r.size), "status": status_by_file.get(r.file, "missing")}
        for r in raw_pdfs.itertuples()
    ]
    counts = {
        "files": len(raw_pdfs),
        "files_ok": int((files["status"] == "ok").sum()),
        "pages": int(pdf_text["page"].notna().sum()),
        "chunks": len(text_chunks),
        "embeddings": len(chunk_embeddings),
    }
    result = publish_vkp(data_dir.package_store(), part, text_chunks, chunk_embeddings,
                         Path(chroma_collection[ARTIFACT]), sources, counts)
    context.log.info(f"{part.label}: {'published v' + result.version if result.published else result.reason}")
    metadata: dict = {"published": result.published, "reason": result.reason, **counts}
    if result.version:
        metadata["version"] = result.version
        metadata["vkp_path"] = dg.MetadataValue.path(str(result.location))
    if result.published:
        invalidation = data_dir.invalidate_cdn(["/vkp/*", f"/{part.processed_prefix()}/*"])
        if invalidation:
            metadata["cdn_invalidation"] = invalidation
            context.log.info(f"{part.label}: CloudFront invalidation {invalidation} for /vkp/* and processed data")
    # The value is the partition's catalog entry: unchanged content gives an unchanged entry.
    return dg.Output(result.catalog_entry(), metadata=metadata)


curriculum_assets = [raw_pdfs, pdf_text, text_chunks, chunk_embeddings, chroma_collection, vkp_package]
