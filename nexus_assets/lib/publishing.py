"""Deciding whether a partition's build becomes a new VKP version, and writing it.

The version history is the set of packages in the package store itself (`vkp/` locally or in
S3): the latest one records the content hash of what it shipped. Same hash: nothing is published.
Different: the patch version is bumped and the package written atomically next to the old ones,
which stay untouched.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from nexus_assets.lib.layout import SEMVER_RE, VKP_PREFIX, DataLayout, Partition, parse_semver
from nexus_assets.lib.s3_store import S3ObjectStore
from nexus_assets.lib.tables import embedding_identity, frame_to_parquet_bytes
from nexus_assets.lib.vkp import VkpError, content_hash, next_version, read_manifest, write_vkp

CONTENT_HASH_META = "content-hash"


class PackageStore(Protocol):
    """Where published packages live: the version history and the place new ones go."""

    def versions(self, part: Partition) -> list[str]: ...

    def content_hash(self, part: Partition, version: str) -> str | None: ...

    def location(self, part: Partition, version: str) -> str: ...

    def staging_path(self, part: Partition, version: str) -> Path: ...

    def commit(self, part: Partition, version: str, staged: Path, digest: str) -> str: ...


@dataclass
class LocalPackageStore:
    """Packages in `<data>/vkp/`; a package is written in place (atomically, never overwritten)."""

    layout: DataLayout

    def versions(self, part: Partition) -> list[str]:
        return self.layout.published_versions(part)

    def content_hash(self, part: Partition, version: str) -> str | None:
        return read_manifest(self.layout.vkp_path(part, version)).get("content_hash")

    def location(self, part: Partition, version: str) -> str:
        return str(self.layout.vkp_path(part, version))

    def staging_path(self, part: Partition, version: str) -> Path:
        return self.layout.vkp_path(part, version)

    def commit(self, part: Partition, version: str, staged: Path, digest: str) -> str:
        return str(staged)


@dataclass
class S3PackageStore:
    """Packages at `s3://<bucket>/vkp/`, the content hash kept in each object's metadata."""

    store: S3ObjectStore
    layout: DataLayout  # for the local staging directory

    def versions(self, part: Partition) -> list[str]:
        prefix = f"{VKP_PREFIX}/{part.subject}_{part.grade}_v"
        found = []
        for obj in self.store.list_keys(prefix):
            version = obj["Key"][len(prefix):].removesuffix(".vkp")
            if obj["Key"].endswith(".vkp") and SEMVER_RE.match(version):
                found.append(version)
        return sorted(found, key=parse_semver)

    def content_hash(self, part: Partition, version: str) -> str | None:
        head = self.store.head(part.vkp_key(version))
        return (head or {}).get("Metadata", {}).get(CONTENT_HASH_META)

    def location(self, part: Partition, version: str) -> str:
        return self.store.uri(part.vkp_key(version))

    def staging_path(self, part: Partition, version: str) -> Path:
        return self.layout.root / ".staging" / f"{uuid.uuid4().hex[:8]}-{part.vkp_name(version)}"

    def commit(self, part: Partition, version: str, staged: Path, digest: str) -> str:
        key = part.vkp_key(version)
        try:
            if self.store.exists(key):
                raise VkpError(f"{self.store.uri(key)} already exists: a published version is never overwritten")
            # Packages are downloaded by every school: keep them in STANDARD, not the processed data's class.
            self.store.upload_file(key, staged, storage_class="STANDARD", metadata={CONTENT_HASH_META: digest})
        finally:
            staged.unlink(missing_ok=True)
        return self.store.uri(key)


@dataclass(frozen=True)
class PublishResult:
    published: bool
    version: str | None
    location: str | None
    content_hash: str | None
    reason: str

    def catalog_entry(self) -> dict[str, Any]:
        """The partition's current package: stable while the content is unchanged."""
        return {"version": self.version, "location": self.location, "content_hash": self.content_hash}


def chunk_content_hash(chunks: pd.DataFrame, model_id: str, dims: int) -> str:
    rows = zip(chunks["chunk_id"], chunks["file"], chunks["page_start"].astype(int),
               chunks["page_end"].astype(int), chunks["text"], strict=True)
    return content_hash(model_id, dims, rows)


def publish_vkp(
    store: PackageStore,
    partition: Partition,
    chunks: pd.DataFrame,
    embeddings: pd.DataFrame,
    chroma_dir: Path,
    sources: list[dict[str, Any]],
    counts: dict[str, int],
) -> PublishResult:
    """Publish a new version if the content changed since the latest package; never rewrite one."""
    if chunks.empty:
        return PublishResult(False, None, None, None, "no chunks: nothing to publish for an empty partition")
    model_id, dims = embedding_identity(embeddings)
    digest = chunk_content_hash(chunks, model_id, dims)
    versions = store.versions(partition)
    latest = versions[-1] if versions else None
    if latest is not None and store.content_hash(partition, latest) == digest:
        return PublishResult(False, latest, store.location(partition, latest), digest,
                             f"content unchanged since v{latest}")
    version = next_version(latest)
    staged = store.staging_path(partition, version)
    ordered = embeddings.set_index("chunk_id").loc[chunks["chunk_id"]].reset_index()
    write_vkp(
        staged, partition, version, model_id=model_id, dims=dims, counts=counts, sources=sources,
        content_hash_value=digest, chunks_parquet=frame_to_parquet_bytes(chunks),
        embeddings_parquet=frame_to_parquet_bytes(ordered), chroma_dir=chroma_dir,
    )
    location = store.commit(partition, version, staged, digest)
    return PublishResult(True, version, location, digest, f"new version (previous: {latest or 'none'})")
