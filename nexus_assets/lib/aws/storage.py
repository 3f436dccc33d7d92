"""Where a deployment keeps its data: local files, or S3 and DynamoDB with the data directory as a mirror.

The one home of what "local" and "aws" mean for storage. `LocalStorage` keeps PDFs, packages, caches
and job records under the data directory; `AwsStorage` reads PDFs from the bucket, publishes packages
to it with the catalog in DynamoDB, shares the caches through it, records jobs in DynamoDB and signs
with the Secrets Manager key when one is named. `open_storage` picks one by the settings' deployment;
Dagster's resources build the same classes, so a run and a command outside a run see the same storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nexus_assets.lib.core.caches import BlobCache, MirroredBlobCache, MirroredVectorCache, VectorCache
from nexus_assets.lib.core.job_tracking import JobStore, SqliteJobStore
from nexus_assets.lib.core.layout import RAW_PREFIX, DataLayout, Partition

if TYPE_CHECKING:  # imported where used: `nexus --help` and an up-to-date build stay light
    from nexus_assets.lib.aws.aws_config import AwsSettings
    from nexus_assets.lib.core.caches import PruneResult
    from nexus_assets.lib.ingest.ocr import OcrEngine
    from nexus_assets.lib.ingest.raw_sources import RawSource
    from nexus_assets.lib.publish.publishing import LocalPackageStore, S3PackageStore
    from nexus_assets.lib.publish.signing import Signer
    from nexus_assets.settings import Settings

    # What each mode hands out: the bucket-backed kinds wrap or replace the local ones.
    ExtractionCache = BlobCache | MirroredBlobCache
    Vectors = VectorCache | MirroredVectorCache
    Packages = LocalPackageStore | S3PackageStore


@dataclass(frozen=True)
class LocalStorage:
    """Everything under the data directory (`raw-curriculum/`, `processed/`, `vkp/`)."""

    layout: DataLayout
    settings: Settings

    @property
    def outputs_on_this_disk(self) -> bool:
        """A build's outputs live under the data directory, so its fingerprint can tell it is current
        (the fast path of `nexus build`); in aws mode they live in the bucket and Dagster decides."""
        return True

    def raw_root_uri(self) -> str:
        """Where the PDFs are looked for, as a data engineer would type it."""
        return str(self.layout.raw_root)

    def raw_keys(self) -> list[str]:
        """Every file under raw-curriculum/, as keys relative to the data directory (links not followed)."""
        from nexus_assets.lib.ingest.build_preflight import local_raw_keys

        return local_raw_keys(self.layout.root)

    def add_raw(self, key: str, path: Path) -> str:
        """Make the file at `path` (already under the data directory as `key`) an input; its location."""
        return str(path)

    def prune_caches(self, older_than_days: float, everything: bool = False) -> dict[str, PruneResult]:
        """Drop cache entries no table references and unused for `older_than_days`: {location: result}."""
        from nexus_assets.lib.core.caches import prune_data_cache

        return {str(self.layout.cache_dir): prune_data_cache(self.layout, older_than_days, everything=everything)}

    def raw_source(self) -> RawSource:
        from nexus_assets.lib.ingest.raw_sources import LocalRawSource

        return LocalRawSource(self.layout)

    def package_store(self) -> Packages:
        from nexus_assets.lib.publish.publishing import LocalPackageStore

        return LocalPackageStore(self.layout, self.settings.catalog_expiry_days)

    def publishes(self, part: Partition) -> bool:
        """`part` has an entry in the package catalog: it owns its package names (`layout.package_conflict`).
        A catalog that cannot be read owns nothing: then every rival is refused, never one overwritten."""
        try:
            return self.package_store().catalog.get(part) is not None  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 -- unreadable or unreachable: the safe answer, refusal, follows
            return False

    def extraction_cache(self, ocr: OcrEngine | None = None) -> ExtractionCache:
        """Extraction results by PDF sha256 (and OCR setting), under processed/_cache/."""
        from nexus_assets.lib.ingest.pdf_extraction import extraction_cache

        return extraction_cache(self.layout.cache_dir, ocr)

    def vector_cache(self) -> Vectors:
        """Vectors by (model namespace, chunk hash); the caller closes it (it is a context manager)."""
        return VectorCache(self.layout.cache_dir)

    def job_store(self) -> JobStore:
        return SqliteJobStore(self.layout.jobs_db)

    def signer(self, key_file: str = "") -> Signer:
        """The package signing key: `key_file`, else the settings' key file or PEM, else a development key
        under keys/ (its origin is logged, never the key)."""
        from nexus_assets.lib.publish.signing import resolve_signer

        s = self.settings
        return resolve_signer(self.layout.root, key_file=key_file or s.signing_key_file, key_pem=s.signing_key)

    def invalidate_cdn(self, paths: list[str]) -> str | None:
        """No CDN in front of a local directory."""
        return None


@dataclass(frozen=True)
class AwsStorage(LocalStorage):
    """PDFs in and packages out through the bucket; the data directory is the working mirror."""

    @property
    def aws(self) -> AwsSettings:
        if self.settings.aws is None:
            raise ValueError("AwsStorage needs aws mode's settings (NEXUS_ENV=aws with NEXUS_S3_BUCKET)")
        return self.settings.aws

    @property
    def outputs_on_this_disk(self) -> bool:
        return False

    def raw_root_uri(self) -> str:
        return self.aws.object_store().uri(RAW_PREFIX + "/")

    def raw_keys(self) -> list[str]:
        return [item.key for item in self.raw_source().listing()]

    def add_raw(self, key: str, path: Path) -> str:
        """Upload it to the bucket, where the sensors and builds of aws mode look."""
        store = self.aws.object_store()
        store.upload_file(key, path, storage_class="STANDARD")
        return store.uri(key)

    def prune_caches(self, older_than_days: float, everything: bool = False) -> dict[str, PruneResult]:
        """The local mirror, then the bucket's shared cache."""
        from nexus_assets.lib.core.caches import prune_bucket_cache

        store = self.aws.object_store()
        pruned = super().prune_caches(older_than_days, everything)
        pruned[store.uri("processed/_cache/")] = prune_bucket_cache(store, older_than_days, everything=everything)
        return pruned

    def raw_source(self) -> RawSource:
        from nexus_assets.lib.ingest.raw_sources import S3RawSource

        return S3RawSource(self.aws.object_store(), self.layout)

    def package_store(self) -> Packages:
        from nexus_assets.lib.distribution.vkp_catalog import DynamoCatalog
        from nexus_assets.lib.publish.publishing import S3PackageStore

        objects = self.aws.object_store()
        catalog = DynamoCatalog(
            self.aws.client("dynamodb"), self.aws.records_table, objects, self.settings.catalog_expiry_days
        )
        return S3PackageStore(objects, self.layout, catalog)

    def extraction_cache(self, ocr: OcrEngine | None = None) -> ExtractionCache:
        """Shared through the bucket, so a task on a fresh disk still skips unchanged PDFs."""
        from nexus_assets.lib.ingest.pdf_extraction import extraction_cache

        return MirroredBlobCache(extraction_cache(self.layout.cache_dir, ocr), self.aws.object_store())

    def vector_cache(self) -> Vectors:
        return MirroredVectorCache(VectorCache(self.layout.cache_dir), self.aws.object_store())

    def job_store(self) -> JobStore:
        return self.aws.job_store()

    def signer(self, key_file: str = "") -> Signer:
        """As locally, plus the Secrets Manager secret the settings name."""
        from nexus_assets.lib.publish.signing import resolve_signer, secrets_manager_reader

        s = self.settings
        return resolve_signer(
            self.layout.root,
            key_file=key_file or s.signing_key_file,
            key_pem=s.signing_key,
            secret_id=s.signing_key_secret_id,
            secret_reader=secrets_manager_reader(self.aws.client("secretsmanager")),
        )

    def invalidate_cdn(self, paths: list[str]) -> str | None:
        from nexus_assets.lib.distribution.cdn import invalidate

        if not self.aws.cloudfront_distribution_id:
            return None
        return invalidate(self.aws.client("cloudfront"), self.aws.cloudfront_distribution_id, paths)


Storage = LocalStorage | AwsStorage


def open_storage(layout: DataLayout, settings: Settings) -> Storage:
    """The storage of the deployment the settings name."""
    return AwsStorage(layout, settings) if settings.deployment == "aws" else LocalStorage(layout, settings)
