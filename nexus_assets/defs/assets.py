"""The curriculum assets: raw PDFs → text → chunks → embeddings → Chroma collection → VKP package.

Each asset is partitioned by folder (`<subject>/<grade>`, defs/partitions.py) and stays thin: it calls
the plain modules in `nexus_assets.lib` and turns their results into metadata a data engineer reads in
the UI.
"""

import time
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import numpy as np
import pandas as pd

from nexus_assets.build import CATALOG_RACE_TAG
from nexus_assets.defs import settings as code_location
from nexus_assets.defs.io_managers import ARTIFACT, RECORD_IO_MANAGER
from nexus_assets.defs.partitions import curriculum_partitions_def, partition_of
from nexus_assets.defs.resources import (
    ChromaResource,
    DataDirResource,
    EmbedderResource,
    ExtractionLimitsResource,
    PublishingResource,
)
from nexus_assets.defs.table_metadata import (
    frame_table,
    histogram_table,
    markdown_metadata,
    markdown_text,
    schema_metadata,
    table_output_metadata,
)
from nexus_assets.lib.core.build_fingerprint import code_version
from nexus_assets.lib.core.escaping import markdown, one_line, shown
from nexus_assets.lib.core.tables import (
    boilerplate_frame,
    chunks_frame,
    collection_metadatas,
    embedding_identity,
    embeddings_frame,
    file_status_frame,
    has_text,
    ocr_pages_of,
    pages_frame,
    readable_pages,
    vectors_of,
)
from nexus_assets.lib.index.chroma_store import (
    CollectionItems,
    build_collection,
    model_collection_name,
    promote_build,
    publish_to_server,
)
from nexus_assets.lib.index.chunking import ChunkingParams, SpanCache, chunk_streams, within_budget
from nexus_assets.lib.index.embedding import embed_partition
from nexus_assets.lib.index.search import chroma_root
from nexus_assets.lib.ingest.ocr import find_ocr
from nexus_assets.lib.ingest.pdf_extraction import FileExtraction, extract_pdfs
from nexus_assets.lib.ingest.raw_sources import package_refusal
from nexus_assets.lib.ingest.upload_tracking import UPLOAD_FINGERPRINT, partition_fingerprint
from nexus_assets.lib.publish.publishing import publish_vkp
from nexus_assets.lib.publish.quality import length_bins
from nexus_assets.lib.publish.signing import SigningError

INGEST, INDEX, PUBLISH = "ingest", "index", "publish"
# Kinds name where each value lives, so the lineage graph reads like the architecture in either mode.
_AWS = code_location.SETTINGS.deployment == "aws"
TABLES = "s3" if _AWS else "parquet"  # DataFrames: S3TableIOManager / local parquet
RECORDS = "dynamodb" if _AWS else "json"  # small records: DynamoRecordIOManager / local json
PREVIEW_CHUNKS = 3
# Each asset's code_version digests the code that computes it: the Dagster wiring and the lib stage it
# calls. Dagster derives data versions from it and the inputs', so the UI marks partitions stale
# when either changes.
_WIRING = ("defs", "lib/core")
INGEST_CODE = code_version(*_WIRING, "lib/ingest")
INDEX_CODE = code_version(*_WIRING, "lib/index")
PUBLISH_CODE = code_version(*_WIRING, "lib/publish", "lib/distribution")


def transient_retry_policy() -> dg.RetryPolicy:
    """Steps touch S3, DynamoDB and the disk: a transient outage longer than botocore's own retries
    (lib/aws/aws_retry.py) gets NEXUS_STEP_RETRIES more tries (default 3), NEXUS_STEP_RETRY_DELAY seconds
    apart (default 1), doubling, ±jitter so parallel runs do not retry in lockstep."""
    return dg.RetryPolicy(
        max_retries=code_location.SETTINGS.step_retries,
        delay=code_location.SETTINGS.step_retry_delay,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


TRANSIENT_RETRY = transient_retry_policy()


@dg.asset(
    partitions_def=curriculum_partitions_def,
    retry_policy=TRANSIENT_RETRY,
    group_name=INGEST,
    code_version=INGEST_CODE,
    kinds={"pdf", RECORDS},
    io_manager_key=RECORD_IO_MANAGER,
    metadata=schema_metadata("raw_pdfs"),
    description="Manifest of the partition's PDFs under raw-curriculum/<subject>/<grade>/: path, size, sha256, mtime.",
)
def raw_pdfs(context: dg.AssetExecutionContext, data_dir: DataDirResource) -> dg.Output[pd.DataFrame]:
    part = partition_of(context.partition_key)
    raw_dir = data_dir.layout.raw_dir(part)
    # Whoever started the run (a sensor, the launchpad, the CLI), a partition whose packages would bear another
    # partition's names is not built: a failure of the upload's, not retried.
    conflict = package_refusal(data_dir.raw_source(), part, data_dir.storage().publishes)
    if conflict:
        raise dg.Failure(description=shown(conflict), allow_retries=False)
    skipped: list[str] = []  # files in the folder outside the layout (hidden, nested, not .pdf, traversal)
    manifest = data_dir.raw_source().manifest(part, skipped)
    for message in skipped:
        context.log.warning(f"{part.label}: {shown(message)}")
    if manifest.empty:
        context.log.info(f"{part.label}: no PDFs under {raw_dir}: the partition builds empty")
    else:
        context.log.info(f"{part.label}: {len(manifest)} PDFs under {raw_dir}")
    source = data_dir.raw_source()
    # The link text is the escaped name, the target our own URI of the file, percent-encoded: an uploader's
    # name can neither add markup nor end the link early.
    linked = manifest.assign(
        file=[f"[{markdown(r.file)}](<{quote(source.uri(r.path), safe=':/%')}>)" for r in manifest.itertuples()]
    )
    return dg.Output(
        manifest,
        metadata={
            **table_output_metadata("raw_pdfs", manifest),
            "files": len(manifest),
            "total_bytes": int(manifest["size"].sum()) if len(manifest) else 0,
            "source_dir": dg.MetadataValue.path(str(raw_dir)),
            "files_table": markdown_metadata(linked[["file", "size", "sha256", "mtime"]], markup=("file",)),
            "files_skipped": len(skipped),
            "skipped_files": markdown_metadata(pd.DataFrame({"skipped": skipped})),
            # what the upload sensors compare against: a sensor switched on later skips this build's PDFs
            UPLOAD_FINGERPRINT: partition_fingerprint(source.listing(part.raw_prefix() + "/"), part),
        },
    )


@dg.asset(
    partitions_def=curriculum_partitions_def,
    retry_policy=TRANSIENT_RETRY,
    group_name=INGEST,
    code_version=INGEST_CODE,
    kinds={"pymupdf", "tesseract", TABLES},
    metadata=schema_metadata("pdf_text"),
    description="Cleaned text of every page (NFKC, hyphenation joined, running headers/footers dropped), "
    "with a status per file (ok, encrypted, malformed, no_text_layer, empty, not_pdf, truncated, too_large, "
    "too_many_pages, timeout, crashed, too_much_text, out_of_memory, changed: re-uploaded while read) and per "
    "page (ok, ocr: a scan read by Tesseract, no_text, error).",
)
def pdf_text(
    context: dg.AssetExecutionContext,
    data_dir: DataDirResource,
    extraction: ExtractionLimitsResource,
    raw_pdfs: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    part = partition_of(context.partition_key)
    source = data_dir.raw_source()  # in aws mode, fetches a PDF this machine has not mirrored yet
    ocr = find_ocr(code_location.SETTINGS.ocr_languages, code_location.SETTINGS.ocr)
    limits = extraction.limits()
    context.log.info(f"{part.label}: {ocr.reason}; {limits.describe()}")

    def report(result: FileExtraction, cached: bool) -> None:
        if result.status != "ok":
            reason = result.reason
            said = reason if reason.startswith(f"{result.status}:") else f"{result.status}: {reason}"
            context.log.warning(
                f"{part.label}: {shown(result.file)}: {shown(said)}"
            )  # never "truncated: truncated: ..."
        elif not cached:  # unchanged files get one summary line: each log line is an event in the instance
            pages = f"{result.text_pages}/{result.page_count} pages with text"
            by_ocr = f" ({result.ocr_pages} by OCR)" if result.ocr_pages else ""
            context.log.info(f"{part.label}: {shown(result.file)}: ok, {pages}{by_ocr}")

    # A PDF is fetched (aws mode) and read only when its sha256 is not in the extraction cache (whose
    # namespace names the OCR setting: results read without OCR do not serve an OCR-capable run).
    items = [
        (row.file, row.sha256, lambda path=row.path: source.local_path(path))
        for row in raw_pdfs.itertuples(index=False)
    ]
    extractions, stats = extract_pdfs(
        items, data_dir.extraction_cache(ocr.engine), on_result=report, ocr=ocr.engine, limits=limits
    )
    if stats.cached:
        context.log.info(
            f"{part.label}: {stats.cached} of {stats.files} files unchanged (extraction from the "
            f"cache); {stats.extracted} extracted with {stats.workers} process(es)"
        )
    pages = pages_frame(extractions)
    files = file_status_frame(pages)
    failed = files[files["status"] != "ok"]
    page_rows = pages[pages["page"].notna()]
    return dg.Output(
        pages,
        metadata={
            **table_output_metadata("pdf_text", pages),
            "files": len(files),
            "files_ok": int((files["status"] == "ok").sum()),
            "files_failed": len(failed),
            "pages": len(page_rows),
            "pages_with_text": int(has_text(page_rows).sum()),
            "pages_ocr": int((page_rows["page_status"] == "ocr").sum()),
            "pages_without_text": int((~has_text(page_rows)).sum()),
            "ocr": ocr.reason,
            "limits": limits.describe(),
            "failed_files": frame_table(failed[["file", "status", "reason"]]),
            "file_status": frame_table(files),
            "boilerplate_removed": frame_table(boilerplate_frame(pages)),
            "files_from_cache": stats.cached,
            "extraction_workers": stats.workers,
        },
    )


class ChunkingConfig(dg.Config):
    """Chunk size and overlap in characters; chunks are also capped to the model's token window."""

    chunk_size: int = ChunkingParams.chunk_size  # the chunker's defaults, one home (`nexus build` checks the same)
    chunk_overlap: int = ChunkingParams.chunk_overlap
    cap_to_model_window: bool = True


@dg.asset(
    partitions_def=curriculum_partitions_def,
    retry_policy=TRANSIENT_RETRY,
    group_name=INDEX,
    code_version=INDEX_CODE,
    kinds={"pandas", TABLES},
    metadata=schema_metadata("text_chunks"),
    description="Overlapping chunks ending on paragraph or sentence boundaries, each with file, page span "
    "and a stable chunk_id derived from its content and source.",
)
def text_chunks(
    context: dg.AssetExecutionContext,
    config: ChunkingConfig,
    data_dir: DataDirResource,
    embedder: EmbedderResource,
    pdf_text: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    part = partition_of(context.partition_key)
    try:
        ChunkingParams(config.chunk_size, config.chunk_overlap)  # before the model loads: a bad config fails at once
    except ValueError as exc:  # the run's configuration, not a transient fault: retrying cannot fix it
        raise dg.Failure(description=f"invalid chunking config: {exc}", allow_retries=False) from None
    model = embedder.chunking_embedder() if config.cap_to_model_window else None
    params = ChunkingParams(config.chunk_size, config.chunk_overlap, model.max_tokens if model else None)
    # Unchanged files' spans come from the cache: token counting is most of chunking's time.
    spans = SpanCache.under(data_dir.layout.cache_dir, model.cache_namespace) if model else None
    per_file = []
    for file in sorted(pdf_text.loc[has_text(pdf_text), "file"].unique()):
        # OCR text is chunked apart from the text layer (see chunk_streams): a scanned cover read by
        # OCR leaves the file's other chunks, their ids and cached vectors as they were.
        streams = [("", readable_pages(pdf_text, file, ("ok",))), ("ocr", readable_pages(pdf_text, file, ("ocr",)))]
        file_chunks = chunk_streams(
            part.label, file, streams, params, model.count_tokens if model else None, span_cache=spans
        )
        context.log.info(f"{part.label}: {shown(file)}: {len(file_chunks)} chunks")
        per_file.append((file, file_chunks))
    budget = code_location.SETTINGS.chunk_budget
    chunks, refused = within_budget(per_file, budget)
    for over in refused:
        context.log.warning(f"{part.label}: {shown(over.file)}: {over.status}: {over.reason}")
    frame = chunks_frame(chunks, ocr_pages_of(pdf_text))
    lengths = frame["char_len"]
    preview = "\n\n".join(
        f"**{markdown(r.file)}** p.{r.page_start}–{r.page_end} `{r.chunk_id[:10]}`\n\n"
        f"> {markdown(one_line(r.text[:300]))}…"
        for r in frame.head(PREVIEW_CHUNKS).itertuples()
    )
    return dg.Output(
        frame,
        metadata={
            **table_output_metadata("text_chunks", frame),
            "chunks": len(frame),
            "chunk_size": config.chunk_size,
            "chunk_overlap": config.chunk_overlap,
            "max_tokens": params.max_tokens or 0,
            "chunk_len_min": int(lengths.min()) if len(frame) else 0,
            "chunk_len_median": float(lengths.median()) if len(frame) else 0.0,
            "chunk_len_max": int(lengths.max()) if len(frame) else 0,
            "chunks_ocr": int(frame["ocr"].sum()),
            "chunk_length_histogram": histogram_table(length_bins(lengths.tolist())),
            "preview": markdown_text(preview, empty="no chunks"),
            "chunk_budget": budget.describe(),
            "files_over_budget": len(refused),
            "over_budget": frame_table(
                pd.DataFrame([vars(o) for o in refused], columns=["file", "chunks", "status", "reason"])
            ),
        },
    )


@dg.asset(
    partitions_def=curriculum_partitions_def,
    retry_policy=TRANSIENT_RETRY,
    group_name=INDEX,
    code_version=INDEX_CODE,
    kinds={"pytorch", TABLES},
    metadata=schema_metadata("chunk_embeddings"),
    pool="embedding",  # CPU-bound: one embedding step at a time on this machine (dagster.yaml pools)
    description="Normalised sentence embeddings of every chunk from one model (local MiniLM or Bedrock Titan, "
    "with fallback for whole partitions); the model id and dims travel with the vectors; cost in metadata.",
)
def chunk_embeddings(
    context: dg.AssetExecutionContext,
    data_dir: DataDirResource,
    embedder: EmbedderResource,
    text_chunks: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    part = partition_of(context.partition_key)
    model = embedder.get_embedder()
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        context.log.info(f"{part.label}: embedded {done}/{total} new or changed chunks")

    # Only chunks whose text is not in the vector cache are embedded; the model loads only if there are any.
    # With a fallback back end, a failing primary hands the WHOLE partition over: never a mix of models.
    with data_dir.vector_cache() if embedder.cache_vectors else nullcontext() as cache:
        result = embed_partition(
            model,
            text_chunks["text"].tolist(),
            cache,
            progress,
            keys=text_chunks["content_sha256"].tolist(),
            fallback=embedder.get_fallback(),
            prices_per_1k=embedder.price_per_1k_tokens,
        )
    seconds = time.perf_counter() - started
    used = result.embedder
    if result.fell_back:
        context.log.warning(
            f"{part.label}: {result.fallback_reason}; the whole partition was embedded with "
            f"the local model {used.model_id} instead"
        )
        context.instance.add_run_tags(context.run.run_id, {"nexus/embedding_fallback": used.model_id})
    if result.usage.split_inputs:
        context.log.warning(
            f"{part.label}: {result.usage.split_inputs} chunk(s) exceeded {used.model_id}'s input "
            "limit and were embedded in pieces (token-weighted mean of the pieces' vectors)"
        )
    engine = getattr(used, "engine", used.backend)
    if result.embedded and getattr(used, "ruled_out", ""):
        context.log.info(f"{part.label}: engines ruled out on this machine: {used.ruled_out}")
    context.log.info(
        f"{part.label}: {result.embedded} chunks embedded ({used.backend}, {used.model_id}, "
        f"{engine}/{used.precision}), {result.cached} from the cache; {result.usage.input_tokens} billed "
        f"tokens, estimated ${result.cost_usd:.6f}"
    )
    frame = embeddings_frame(text_chunks["chunk_id"].tolist(), result.vectors, used.model_id, used.dims)
    return dg.Output(
        frame,
        metadata={
            **table_output_metadata("chunk_embeddings", frame),
            "embeddings": len(frame),
            "backend": used.backend,
            "model_id": used.model_id,
            "dims": used.dims,
            "engine": engine,
            "precision": used.precision,
            "embedded": result.embedded,
            "from_cache": result.cached,
            "fallback": result.fell_back,
            "fallback_reason": result.fallback_reason,
            "input_tokens": result.usage.input_tokens,
            "requests": result.usage.requests,
            "retries": result.usage.retries,
            "split_inputs": result.usage.split_inputs,
            "estimated_cost_usd": round(result.cost_usd, 8),
            "seconds": round(seconds, 2),
            "chunks_per_s": round(result.embedded / seconds, 1) if result.embedded and seconds else 0.0,
        },
    )


@dg.asset(
    partitions_def=curriculum_partitions_def,
    retry_policy=TRANSIENT_RETRY,
    group_name=INDEX,
    code_version=INDEX_CODE,
    kinds={"chromadb", RECORDS},
    pool="chroma_writer",
    io_manager_key=RECORD_IO_MANAGER,
    description="Persistent Chroma collection of the partition, built aside (in Chroma server mode also "
    "published to the server behind a pointer swap); search serves it (atomic swap of `current`) only once the "
    "blocking checks passed and vkp_package ran. Ids are chunk ids; metadata subject, grade, file, page and ocr.",
)
def chroma_collection(
    context: dg.AssetExecutionContext,
    data_dir: DataDirResource,
    embedder: EmbedderResource,
    chroma: ChromaResource,
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
    metadatas = collection_metadatas(part.subject, part.grade, text_chunks)
    # One model per collection: the model and dims are part of the name, so a model change is a new collection.
    name = model_collection_name(part.collection_name, model_id, dims)
    items = CollectionItems(
        text_chunks["chunk_id"].tolist(), vectors, text_chunks["text"].tolist(), metadatas, model_id, dims
    )
    # Not promoted here: the blocking checks on this build run after this step, and search must not
    # serve a build they reject. vkp_package (which runs only when they pass) promotes it.
    info = build_collection(chroma_root(data_dir.layout, part), name, items, promote=False)
    served = {}
    if (server := chroma.server()) is not None:  # server mode: also publish to the shared Chroma server
        on_server = publish_to_server(server.client(), name, items)
        context.log.info(
            f"{part.label}: Chroma server {server.url}: {on_server.path} "
            f"({'unchanged' if on_server.reused else 'written and swapped in'}), {on_server.count} items"
        )
        served = {"server_url": server.url, "server_collection": str(on_server.path), "server_reused": on_server.reused}
    how = {
        "reused": "unchanged",
        "incremental": f"updated in a copy (+{info.upserted} upserted, -{info.deleted} deleted)",
        "fresh": "written fresh",
    }[info.mode]
    context.log.info(f"{part.label}: collection {info.name} {how}, {info.count} items")
    # How the build was made is metadata only: the record stays the same for the same content.
    record = {k: v for k, v in info.as_dict().items() if k not in ("path", "reused", "mode", "upserted", "deleted")}
    return dg.Output(
        {**record, ARTIFACT: str(info.path)},
        metadata={
            "collection": info.name,
            "items": info.count,
            "reused": info.reused,
            "build_mode": info.mode,
            "upserted": info.upserted,
            "deleted": info.deleted,
            "path": dg.MetadataValue.path(str(info.path)),
            "model_id": model_id,
            **served,
        },
    )


def _over_chunk_budget(context: dg.AssetExecutionContext) -> dict[str, str]:
    """{shown file name: status} of the files text_chunks refused by the chunk budget (`too_many_chunks`,
    `partition_full`), from the `over_budget` table of the materialization of text_chunks this step read (its
    latest for the partition): they were read `ok` but are not in the package, and its `sources` must say so."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=text_chunks.key, asset_partitions=[context.partition_key]), limit=1
    ).records
    table = records[0].asset_materialization.metadata.get("over_budget") if records else None
    if not isinstance(table, dg.TableMetadataValue):
        return {}
    return {str(row.data["file"]): str(row.data["status"]) for row in table.records}


@dg.asset(
    partitions_def=curriculum_partitions_def,
    retry_policy=TRANSIENT_RETRY,
    group_name=PUBLISH,
    code_version=PUBLISH_CODE,
    kinds={"zip", "s3" if _AWS else "file"},
    io_manager_key=RECORD_IO_MANAGER,
    description="Signed, versioned knowledge package vkp/<subject>_<grade>_v<semver>.vkp (a new version only when "
    "the content changed), the delta from the previous version, the catalog entry, retention of old versions.",
)
def vkp_package(
    context: dg.AssetExecutionContext,
    data_dir: DataDirResource,
    publishing: PublishingResource,
    raw_pdfs: pd.DataFrame,
    pdf_text: pd.DataFrame,
    text_chunks: pd.DataFrame,
    chunk_embeddings: pd.DataFrame,
    chroma_collection: dict,
) -> dg.Output[dict]:
    part = partition_of(context.partition_key)
    files = file_status_frame(pdf_text)
    status_by_file = dict(zip(files["file"], files["status"], strict=True))
    over_budget = _over_chunk_budget(context)  # read as ok, then left out by the chunk budget
    sources = [
        {
            "file": r.file,
            "sha256": r.sha256,
            "size": int(r.size),
            "status": over_budget.get(shown(r.file)) or status_by_file.get(r.file, "missing"),
        }
        for r in raw_pdfs.itertuples()
    ]
    counts = {
        "files": len(raw_pdfs),
        "files_ok": int((files["status"] == "ok").sum()),
        "pages": int(pdf_text["page"].notna().sum()),
        "chunks": len(text_chunks),
        "embeddings": len(chunk_embeddings),
    }
    try:
        signer = publishing.signer(data_dir.storage())
    except SigningError as exc:  # the deployment's key setting: a retry cannot fix it
        raise dg.Failure(description=shown(f"the signing key cannot be used: {exc}"), allow_retries=False) from None
    if signer.development:
        context.log.warning(
            f"{part.label}: signing with the {signer.origin} (key id {signer.key_id}): fine for a "
            "demo, never for schools; set NEXUS_SIGNING_KEY_FILE (see README, Distributing to schools)"
        )
    result = publish_vkp(
        data_dir.package_store(),
        part,
        text_chunks,
        chunk_embeddings,
        Path(chroma_collection[ARTIFACT]),
        sources,
        counts,
        signer=signer,
        keep_versions=publishing.retention(),
    )
    if result.published and not result.catalog_updated:
        # A racing run moved the catalog to a newer version first (the conditional write refused ours):
        # the package is published, but schools are pointed at the newer one. Say so, loudly.
        context.log.warning(f"{part.label}: {result.reason}")
        context.instance.add_run_tags(context.run.run_id, {CATALOG_RACE_TAG: f"v{result.version}"})  # for run_summary
    else:
        context.log.info(f"{part.label}: {'published v' + result.version if result.published else result.reason}")
    # The gates passed (this step runs only then): search now serves the build the package was made from.
    served = promote_build(chroma_root(data_dir.layout, part), Path(chroma_collection[ARTIFACT]))
    if served:
        context.log.info(f"{part.label}: search now serves Chroma build {Path(chroma_collection[ARTIFACT]).name}")
    metadata: dict = {
        "published": result.published,
        "reason": result.reason,
        "search_build_promoted": served,
        **counts,
        "signing_key_id": signer.key_id,
        "development_key": signer.development,
    }
    if result.version:
        metadata["version"] = result.version
        metadata["vkp_path"] = dg.MetadataValue.path(str(result.location))
    if result.bump:
        metadata["bump"] = result.bump
    if result.delta_location:
        metadata["delta_path"] = dg.MetadataValue.path(result.delta_location)
    if result.catalog_location:
        metadata["catalog"] = dg.MetadataValue.path(result.catalog_location)
        metadata["catalog_updated"] = result.catalog_updated
    if result.removed:
        metadata["retention_removed"] = markdown_text("\n".join(f"- {markdown(n)}" for n in result.removed))
    if result.published:
        invalidation = data_dir.invalidate_cdn(["/vkp/*", f"/{part.processed_prefix()}/*"])
        if invalidation:
            metadata["cdn_invalidation"] = invalidation
            context.log.info(f"{part.label}: CloudFront invalidation {invalidation} for /vkp/* and processed data")
    # The value is the partition's catalog entry: unchanged content gives an unchanged entry.
    return dg.Output(result.catalog_entry(), metadata=metadata)


curriculum_assets = [raw_pdfs, pdf_text, text_chunks, chunk_embeddings, chroma_collection, vkp_package]
