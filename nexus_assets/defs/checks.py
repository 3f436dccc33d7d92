"""Asset checks: the quality gates of every subject × grade partition, wired to Dagster.

The rules live in `nexus_assets.lib.publish.quality`; each check here loads the asset value it judges
through the asset's own IO manager (local files or S3/DynamoDB alike) and turns the verdict into an
`AssetCheckResult` whose metadata explains it (figures and Markdown tables of the offending rows).

Blocking: in Dagster 1.13 a check declared `blocking=True` that fails with ERROR severity fails its
step (`DagsterAssetCheckFailedError`), and the assets downstream of the checked asset in the same run
are not started. The checks on the VKP's inputs (chunk health, embedding sanity, collection
consistency, retrieval quality) are blocking, so `vkp_package` does not run and the previous
version stays the latest. Coverage and duplicates only warn: they never stop a curriculum update.
Package integrity judges the package `vkp_package` has just published (or kept), so it cannot stop
that publication; it is blocking so that the run fails and nothing added downstream of the package
later (a catalog) runs on a package that does not verify.
"""

import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from nexus_assets.defs import settings as code_location
from nexus_assets.defs.assets import chroma_collection, chunk_embeddings, pdf_text, raw_pdfs, text_chunks, vkp_package
from nexus_assets.defs.aws import AwsDataDirResource
from nexus_assets.defs.io_managers import ARTIFACT
from nexus_assets.defs.partitions import curriculum_partitions_def, partition_of
from nexus_assets.defs.resources import DataDirResource, EmbedderResource, PublishingResource
from nexus_assets.defs.table_metadata import markdown_metadata
from nexus_assets.lib.core.escaping import shown
from nexus_assets.lib.index.retrieval_eval import load_golden
from nexus_assets.lib.publish import quality

SEVERITY = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}


def partitioned_check(**kwargs) -> Callable[[Callable[..., dg.AssetCheckResult]], dg.AssetChecksDefinition]:
    """`@dg.asset_check` on the subject × grade partitions, so every partition keeps its own verdict.

    `partitions_def` on a check is a preview feature in Dagster 1.13 and warns at every import (UI,
    CLI, each test). Dagster is pinned to an exact patch version here (pyproject) and the checks'
    tests run through Dagster, so a breaking change would show on upgrade: the warning is silenced.
    """

    def decorate(fn: Callable[..., dg.AssetCheckResult]) -> dg.AssetChecksDefinition:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def.*")
            return dg.asset_check(partitions_def=curriculum_partitions_def, **kwargs)(fn)

    return decorate


def check_result(verdict: quality.Verdict) -> dg.AssetCheckResult:
    """A verdict as Dagster shows it: the summary first, then figures, then the offending rows."""
    summary = shown(verdict.summary)  # may quote a golden file's path or an upload's name
    metadata: dict[str, dg.RawMetadataValue] = {"verdict": summary, "applicable": verdict.applicable}
    for name, value in verdict.figures.items():
        if value is not None:
            metadata[name] = value
    for name, frame in verdict.tables.items():
        metadata[name] = markdown_metadata(frame)
    return dg.AssetCheckResult(
        passed=verdict.passed, severity=SEVERITY[verdict.severity], metadata=metadata, description=summary
    )


def _built_chunk_size(context: dg.AssetCheckExecutionContext) -> int:
    """The chunk size the partition's chunks were built with (launchpad config), from their materialization."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=text_chunks.key, asset_partitions=[context.partition_key]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    value = materialization.metadata.get("chunk_size") if materialization else None
    return int(value.value) if value is not None else quality.DEFAULT_CHUNK_SIZE


@partitioned_check(
    asset=pdf_text,
    description="Share of pages with a text layer; warns below 90% and lists the pages and files without one.",
)
def text_coverage(pdf_text: pd.DataFrame) -> dg.AssetCheckResult:
    return check_result(quality.text_coverage(pdf_text))


@partitioned_check(
    asset=text_chunks,
    blocking=True,
    description="No empty chunks and no repeated chunk ids (blocking); length min/median/max and the "
    "share of chunks shorter than 20% of the chunk size.",
)
def chunk_health(context: dg.AssetCheckExecutionContext, text_chunks: pd.DataFrame) -> dg.AssetCheckResult:
    return check_result(quality.chunk_health(text_chunks, target_size=_built_chunk_size(context)))


@partitioned_check(
    asset=text_chunks, description="Exact duplicate chunks (same text hash) across the partition; warns above 5%."
)
def duplicate_rate(text_chunks: pd.DataFrame) -> dg.AssetCheckResult:
    return check_result(quality.duplicate_rate(text_chunks))


@partitioned_check(
    asset=chunk_embeddings,
    blocking=True,
    additional_ins={"text_chunks": dg.AssetIn(key=text_chunks.key)},
    description="Vectors have the model's dims, are finite, unit-norm and non-zero, one per chunk (blocking).",
)
def embedding_sanity(
    embedder: EmbedderResource, chunk_embeddings: pd.DataFrame, text_chunks: pd.DataFrame
) -> dg.AssetCheckResult:
    model_id = dims = None
    if not chunk_embeddings.empty:  # an empty partition needs no model
        # The configured back end that made them (the fallback after a fallback); else the primary's identity.
        model = embedder.embedder_for(str(chunk_embeddings["model_id"].iloc[0]))
        model_id, dims = model.model_id, model.dims
    return check_result(quality.embedding_sanity(chunk_embeddings, text_chunks, model_id, dims))


@partitioned_check(
    asset=chroma_collection,
    blocking=True,
    additional_ins={"text_chunks": dg.AssetIn(key=text_chunks.key)},
    description="The Chroma build holds exactly the chunk ids of the build (blocking).",
)
def collection_consistency(chroma_collection: dict, text_chunks: pd.DataFrame) -> dg.AssetCheckResult:
    return check_result(quality.collection_consistency(Path(chroma_collection[ARTIFACT]), text_chunks))


class RetrievalQualityConfig(dg.Config):
    """Where the golden questions are and how many must be answered; the deployment sets env vars."""

    golden_questions: str = Field(
        default="",
        description=f"JSONL of question/subject/grade/file/page rows; empty: "
        f"${quality.GOLDEN_QUESTIONS_ENV}; neither: the check is not applicable",
    )
    min_recall: float | None = Field(
        default=None,
        description=f"recall@k threshold; empty: ${quality.MIN_RECALL_ENV} or "
        f"{quality.DEFAULT_MIN_RECALL}. Lower it for one run to publish a build deliberately.",
    )
    k: int = Field(default=quality.RECALL_K, description="hits per question")


@partitioned_check(
    asset=chroma_collection,
    blocking=True,
    additional_ins={"raw_pdfs": dg.AssetIn(key=raw_pdfs.key)},
    description="Hybrid-search recall@5 of the partition's golden questions (answering file and page) "
    "at or above the threshold (blocking); not applicable without golden questions.",
)
def retrieval_quality(
    context: dg.AssetCheckExecutionContext,
    config: RetrievalQualityConfig,
    embedder: EmbedderResource,
    chroma_collection: dict,
    raw_pdfs: pd.DataFrame,
) -> dg.AssetCheckResult:
    path = quality.golden_path(config.golden_questions, code_location.SETTINGS.environment)
    if path is None:
        return check_result(quality.not_configured())
    threshold = quality.min_recall(config.min_recall, code_location.SETTINGS.environment)
    try:
        questions = load_golden(path)
    except (OSError, ValueError) as exc:
        return check_result(quality.unreadable_golden(path, exc))
    part = partition_of(context.partition_key)
    asked, stale = quality.golden_for_partition(questions, part, list(raw_pdfs["file"]))
    results = []
    if asked:
        query_model = embedder.embedder_for(str(chroma_collection.get("model_id", "")))
        results = quality.evaluate_build(Path(chroma_collection[ARTIFACT]), part, asked, query_model, k=config.k)
    return check_result(quality.retrieval_quality(results, stale, threshold, k=config.k, source=str(path)))


@contextmanager
def _package_file(data_dir: DataDirResource, location: str) -> Iterator[tuple[Path | None, str | None]]:
    """A local copy of the package at `location` (an S3 URI is downloaded to a scratch file), or why not."""
    if not location.startswith("s3://"):
        yield Path(location), None
        return
    if not isinstance(data_dir, AwsDataDirResource):
        yield None, f"{location} is in S3 but this deployment has no S3 access (NEXUS_ENV is not aws)"
        return
    key = urlparse(location).path.lstrip("/")
    with tempfile.TemporaryDirectory(prefix="nexus-vkp-") as scratch:
        local = Path(scratch) / Path(key).name
        try:
            data_dir.aws.object_store().download_file(key, local)
        except (OSError, BotoCoreError, ClientError) as exc:  # missing, unreachable or tampered in S3
            yield None, f"cannot fetch {location}: {exc}"
            return
        yield local, None


@partitioned_check(
    asset=vkp_package,
    blocking=True,
    description="The partition's current VKP verifies (manifest, member checksums, tables, content "
    "hash) and matches its catalog entry.",
)
def package_integrity(
    data_dir: DataDirResource, publishing: PublishingResource, vkp_package: dict
) -> dg.AssetCheckResult:
    location = vkp_package.get("location")
    if not vkp_package.get("version") or not location:
        return check_result(quality.package_integrity(vkp_package, None))
    with _package_file(data_dir, str(location)) as (local, problem):
        # A development key is per data directory (per machine in aws mode): only a configured key is
        # expected to have signed every package, so only then is the signature checked here.
        signer = publishing.signer(data_dir.storage())
        trusted = None if signer.development else signer.public_key
        return check_result(quality.package_integrity(vkp_package, local, problem, trusted))


curriculum_checks = [
    text_coverage,
    chunk_health,
    duplicate_rate,
    embedding_sanity,
    collection_consistency,
    retrieval_quality,
    package_integrity,
]
