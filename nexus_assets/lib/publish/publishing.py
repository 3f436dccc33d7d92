"""Publishing a partition's build: version, signed full package, delta, catalog and retention.

The version history is the set of packages in the package store itself (`vkp/` locally or in S3)
plus the catalog (`lib/distribution/vkp_catalog.py`). The latest package records the content hash and identity
of what it shipped; `lib/publish/versioning.py` decides from it whether this build is a new version and
which part of the version it bumps. A publication then goes, in this order:

1. the full package and (within a major version) the delta from the previous version are written,
   signed, to a staging area;
2. both are committed to the store (never over an existing file);
3. the catalog pointer moves to the new version (never backwards);
4. packages of versions beyond the retention limit are deleted: only after the catalog stopped
   naming them, so a school never finds a catalog entry whose file is gone.

A failure anywhere before step 3 leaves the catalog on the previous version. In aws mode step 3 is
two writes (the DynamoDB pointer, then `catalog.json` generated from the table); an outage between
them leaves `catalog.json` on the previous version, whose files are all still there, and the next
build of the partition, even one with nothing new, rewrites it (`CatalogStore.sync`). A run killed after
step 2 leaves a committed package the catalog does not name yet: the next run finds it as the
latest package with its own content, names it (and its delta) in the catalog and publishes nothing
new. Publications of one partition run under its lock on a machine (`partition_lock`), which also
lets each one sweep the staging files a killed run left; across machines the package commit is a
create-if-absent, and a run that loses that race decides its version again from what won.
"""

from __future__ import annotations

import functools
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from nexus_assets.lib.aws.s3_store import AlreadyExistsError, S3ObjectStore
from nexus_assets.lib.core.fault_points import fault_point
from nexus_assets.lib.core.layout import VKP_PREFIX, DataLayout, Partition, parse_semver
from nexus_assets.lib.core.partition_lock import file_lock
from nexus_assets.lib.core.tables import embedding_identity, frame_to_parquet_bytes, package_order
from nexus_assets.lib.distribution.vkp_catalog import (
    DEFAULT_EXPIRY_DAYS,
    DEFAULT_KEEP_VERSIONS,
    CatalogStore,
    LocalCatalog,
    package_ref,
    release_record,
    with_release,
)
from nexus_assets.lib.publish.signing import Signer
from nexus_assets.lib.publish.versioning import ReleaseIdentity, decide_version, source_set
from nexus_assets.lib.publish.vkp import (
    FORMAT_VERSION,
    VkpError,
    content_hash,
    read_manifest,
    read_signature,
    write_vkp,
)
from nexus_assets.lib.publish.vkp_delta import read_tables, write_delta

CONTENT_HASH_META = "content-hash"
FORMAT_META = "format-version"
STAGING_DIR = ".staging"
PUBLISH_ATTEMPTS = 3  # a lost commit race is decided again from the winner's package; more means a storm


class PublishConflictError(VkpError):
    """The package name was taken between deciding the version and committing it (a racing run)."""


class PackageStore(Protocol):
    """Where published packages live: the version history, the place new ones go, and the catalog."""

    layout: DataLayout
    catalog: CatalogStore

    def names(self, part: Partition) -> list[str]: ...

    def versions(self, part: Partition) -> list[str]: ...

    def quick_identity(self, part: Partition, version: str) -> tuple[str | None, int | None]: ...

    def location(self, name: str) -> str: ...

    def commit(self, name: str, staged: Path, metadata: dict[str, str]) -> str: ...

    def local_copy(self, name: str) -> Any: ...

    def delete(self, name: str) -> None: ...


def _versions_of(part: Partition, names: list[str]) -> list[str]:
    found = {part.package_version(n) for n in names if n.endswith(".vkp")}
    return sorted((v for v in found if v), key=parse_semver)


@dataclass
class LocalPackageStore:
    """Packages in `<data>/vkp/`, committed from a staging directory by a no-overwrite hard link."""

    layout: DataLayout
    expiry_days: float = DEFAULT_EXPIRY_DAYS  # of the signed catalog.json
    catalog: CatalogStore = field(init=False)

    def __post_init__(self) -> None:
        self.catalog = LocalCatalog(self.layout.vkp_dir / "catalog.json", self.expiry_days)

    def names(self, part: Partition) -> list[str]:
        if not self.layout.vkp_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.layout.vkp_dir.glob(f"{part.subject}_{part.grade}_v*") if part.package_version(p.name)
        )

    def versions(self, part: Partition) -> list[str]:
        return _versions_of(part, self.names(part))

    def quick_identity(self, part: Partition, version: str) -> tuple[str | None, int | None]:
        manifest = read_manifest(self.layout.vkp_path(part, version))
        return manifest.get("content_hash"), int(manifest.get("format_version", 1))

    def location(self, name: str) -> str:
        return str(self.layout.vkp_dir / name)

    def commit(self, name: str, staged: Path, metadata: dict[str, str]) -> str:
        target = self.layout.vkp_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(staged, target)  # fails if the name exists: a published file is never replaced
        except FileExistsError:
            raise PublishConflictError(f"{target} already exists: a published version is never overwritten") from None
        finally:
            staged.unlink(missing_ok=True)
        return str(target)

    @contextmanager
    def local_copy(self, name: str) -> Iterator[Path]:
        yield self.layout.vkp_dir / name

    def delete(self, name: str) -> None:
        (self.layout.vkp_dir / name).unlink(missing_ok=True)


@dataclass
class S3PackageStore:
    """Packages at `s3://<bucket>/vkp/`, content hash and format in each object's metadata."""

    store: S3ObjectStore
    layout: DataLayout  # for the local staging directory
    catalog: CatalogStore | None = None  # DynamoCatalog in aws mode

    def __post_init__(self) -> None:
        if self.catalog is None:
            raise ValueError("S3PackageStore needs a catalog (DynamoCatalog in aws mode)")

    def names(self, part: Partition) -> list[str]:
        prefix = f"{VKP_PREFIX}/{part.subject}_{part.grade}_v"
        names = [obj["Key"][len(VKP_PREFIX) + 1 :] for obj in self.store.list_keys(prefix)]
        return sorted(n for n in names if part.package_version(n))

    def versions(self, part: Partition) -> list[str]:
        return _versions_of(part, self.names(part))

    def quick_identity(self, part: Partition, version: str) -> tuple[str | None, int | None]:
        meta = (self.store.head(part.vkp_key(version)) or {}).get("Metadata", {})
        return meta.get(CONTENT_HASH_META), int(meta.get(FORMAT_META, 1))

    def location(self, name: str) -> str:
        return self.store.uri(f"{VKP_PREFIX}/{name}")

    def commit(self, name: str, staged: Path, metadata: dict[str, str]) -> str:
        key = f"{VKP_PREFIX}/{name}"
        try:
            # Create-if-absent (If-None-Match: *): two machines committing the same name cannot both win.
            # Packages are downloaded by every school: keep them in STANDARD, not the processed data's class.
            self.store.create_file(key, staged, storage_class="STANDARD", metadata=metadata)
        except AlreadyExistsError:
            raise PublishConflictError(
                f"{self.store.uri(key)} already exists: a published version is never overwritten"
            ) from None
        finally:
            staged.unlink(missing_ok=True)
        return self.store.uri(key)

    @contextmanager
    def local_copy(self, name: str) -> Iterator[Path]:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=self.layout.root) as scratch:
            local = Path(scratch) / name
            self.store.download_file(f"{VKP_PREFIX}/{name}", local)
            yield local

    def delete(self, name: str) -> None:
        self.store.delete(f"{VKP_PREFIX}/{name}")


@dataclass(frozen=True)
class PublishResult:
    published: bool
    version: str | None
    location: str | None
    content_hash: str | None
    reason: str
    bump: str | None = None
    delta_location: str | None = None
    catalog_location: str | None = None
    removed: tuple[str, ...] = ()  # package files deleted by retention
    catalog_updated: bool = False

    def catalog_entry(self) -> dict[str, Any]:
        """The partition's current package: stable while the content is unchanged."""
        return {"version": self.version, "location": self.location, "content_hash": self.content_hash}


def chunk_content_hash(chunks: pd.DataFrame, model_id: str, dims: int) -> str:
    rows = zip(
        chunks["chunk_id"],
        chunks["file"],
        chunks["page_start"].astype(int),
        chunks["page_end"].astype(int),
        chunks["text"],
        strict=True,
    )
    return content_hash(model_id, dims, rows)


def _staging(layout: DataLayout, name: str) -> Path:
    directory = layout.root / STAGING_DIR
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{uuid.uuid4().hex[:8]}-{name}"


def _sweep_staging(layout: DataLayout, part: Partition) -> list[str]:
    """Remove this partition's staged files (called under its lock: any found is a killed run's)."""
    directory = layout.root / STAGING_DIR
    swept = []
    for path in directory.glob("*-*") if directory.is_dir() else ():
        if part.package_version(path.name.split("-", 1)[1]):
            path.unlink(missing_ok=True)
            swept.append(path.name)
    return swept


def _serialized(publish: Callable[..., PublishResult]) -> Callable[..., PublishResult]:
    """Run a publication under its partition's lock, after sweeping what killed runs staged, and decide
    it again (up to PUBLISH_ATTEMPTS times) when a racing machine committed the version first."""

    @functools.wraps(publish)
    def serialized(store: PackageStore, partition: Partition, *args: Any, **kwargs: Any) -> PublishResult:
        lock = store.layout.root / ".locks" / f"publish-{partition.subject}--{partition.grade}.lock"
        with file_lock(lock, f"publishing {partition.label}"):
            _sweep_staging(store.layout, partition)
            for attempt in range(1, PUBLISH_ATTEMPTS + 1):
                try:
                    return publish(store, partition, *args, **kwargs)
                except PublishConflictError:
                    if attempt == PUBLISH_ATTEMPTS:
                        raise
        raise AssertionError("unreachable")

    return serialized


@_serialized
def publish_vkp(
    store: PackageStore,
    partition: Partition,
    chunks: pd.DataFrame,
    embeddings: pd.DataFrame,
    chroma_dir: Path,
    sources: list[dict[str, Any]],
    counts: dict[str, int],
    *,
    signer: Signer,
    keep_versions: int = DEFAULT_KEEP_VERSIONS,
) -> PublishResult:
    """Publish a new version if the content changed since the latest package; never rewrite one."""
    if chunks.empty:
        return PublishResult(False, None, None, None, "no chunks: nothing to publish for an empty partition")
    model_id, dims = embedding_identity(embeddings)
    digest = chunk_content_hash(chunks, model_id, dims)
    versions = store.versions(partition)
    latest = versions[-1] if versions else None
    entry = store.catalog.get(partition)
    if latest is not None and store.quick_identity(partition, latest) == (digest, FORMAT_VERSION):
        updated = _backfill_catalog(store, partition, latest, entry, keep_versions, signer)
        return PublishResult(
            False,
            latest,
            store.location(partition.vkp_name(latest)),
            digest,
            f"content unchanged since v{latest}",
            catalog_location=store.catalog.location(),
            catalog_updated=updated,
        )
    chunks = package_order(chunks)
    ordered = embeddings.set_index("chunk_id").loc[chunks["chunk_id"]].reset_index()
    current = ReleaseIdentity(FORMAT_VERSION, model_id, dims, source_set(sources), digest)
    with _previous_release(store, partition, latest) as previous:
        previous_manifest = read_manifest(previous) if previous else None
        decision = decide_version(
            ReleaseIdentity.from_manifest(previous_manifest) if previous_manifest else None,
            current,
            [latest, (entry or {}).get("latest")],
        )
        if decision.version is None:  # same content and format, metadata just missing (S3 objects of old builds)
            return PublishResult(
                False,
                latest,
                store.location(partition.vkp_name(latest or "")),
                digest,
                f"content unchanged since v{latest}",
            )
        version = decision.version
        full_staged = _staging(store.layout, partition.vkp_name(version))
        staged = [full_staged]
        try:
            manifest = write_vkp(
                full_staged,
                partition,
                version,
                model_id=model_id,
                dims=dims,
                counts=counts,
                sources=sources,
                content_hash_value=digest,
                chunks_parquet=frame_to_parquet_bytes(chunks),
                embeddings_parquet=frame_to_parquet_bytes(ordered),
                chroma_dir=chroma_dir,
                signer=signer,
                previous_version=latest,
            )
            delta_staged = None
            if previous_manifest is not None and decision.delta_compatible:
                delta_staged = _staging(store.layout, partition.vkpd_name(version, previous_manifest["version"]))
                staged.append(delta_staged)
                write_delta(
                    delta_staged,
                    partition,
                    manifest,
                    previous_manifest,
                    read_tables(previous),
                    (chunks, ordered),
                    signer,
                )
            full_ref = package_ref(full_staged, read_signature(full_staged), name=partition.vkp_name(version))
            delta_ref = None
            if delta_staged is not None:
                delta_ref = package_ref(
                    delta_staged,
                    read_signature(delta_staged),
                    name=partition.vkpd_name(version, previous_manifest["version"]),
                    **{"from": previous_manifest["version"]},
                )
            metadata = {CONTENT_HASH_META: digest, FORMAT_META: str(FORMAT_VERSION)}
            fault_point("publish.staged")
            # The full package first: its name is what claims the version (a racing run loses here, before
            # anything else of it is visible), and a run killed before the delta leaves a valid release.
            location = store.commit(partition.vkp_name(version), full_staged, metadata)
            delta_location = None
            if delta_staged is not None and delta_ref is not None:
                delta_location = store.commit(delta_ref["name"], delta_staged, metadata)
        finally:
            for path in staged:
                path.unlink(missing_ok=True)
    fault_point("publish.committed")
    new_entry, dropped = with_release(entry, partition, release_record(manifest, full_ref, delta_ref), keep_versions)
    if not store.catalog.put(partition, new_entry, signer):
        return PublishResult(
            True,
            version,
            location,
            digest,
            f"v{version} published but the catalog already points at a newer version",
            decision.bump,
            delta_location,
            store.catalog.location(),
        )
    removed = apply_retention(store, partition, new_entry)
    return PublishResult(
        True,
        version,
        location,
        digest,
        f"new {decision.bump or 'first'} version: {decision.reason} (previous: {latest or 'none'})",
        decision.bump,
        delta_location,
        store.catalog.location(),
        tuple(removed),
        True,
    )


@contextmanager
def _previous_release(store: PackageStore, part: Partition, latest: str | None) -> Iterator[Path | None]:
    if latest is None:
        yield None
        return
    with store.local_copy(part.vkp_name(latest)) as path:
        yield path


def _backfill_catalog(
    store: PackageStore, part: Partition, latest: str, entry: dict[str, Any] | None, keep: int, signer: Signer
) -> bool:
    """Name the latest package in the catalog when the catalog lost it (deleted, or older than the catalog),
    and bring the served catalog document up to its source of truth (signed, fresh) when it lags."""
    if entry is not None and entry.get("latest") == latest:
        return store.catalog.sync(signer)
    name = part.vkp_name(latest)
    with store.local_copy(name) as path:
        manifest = read_manifest(path)
        full = package_ref(path, read_signature(path), name=name)
    delta = None
    base = manifest.get("previous_version")
    if base and (delta_name := part.vkpd_name(latest, base)) in store.names(part):
        with store.local_copy(delta_name) as path:  # committed by a run killed before the catalog moved
            delta = package_ref(path, read_signature(path), name=delta_name, **{"from": base})
    new_entry, _ = with_release(entry, part, release_record(manifest, full, delta), keep)
    return store.catalog.put(part, new_entry, signer)


def apply_retention(store: PackageStore, part: Partition, entry: dict[str, Any]) -> list[str]:
    """Delete every package file of the partition that delivers a version the catalog no longer keeps
    and is older than the oldest kept one (never a newer file some racing build is publishing)."""
    kept = {v["version"] for v in entry["versions"]}
    oldest = min(kept, key=parse_semver)
    removed = []
    for name in store.names(part):
        version = part.package_version(name)
        if version and version not in kept and parse_semver(version) < parse_semver(oldest):
            store.delete(name)
            removed.append(name)
    return removed
