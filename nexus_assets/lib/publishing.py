"""Deciding whether a partition's build becomes a new VKP version, and writing it.

The version history is the set of packages in `vkp/` itself: the latest one's manifest holds the
content hash of what it shipped. Same hash: nothing is published. Different: the patch version is
bumped and the package written atomically next to the old ones, which stay untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nexus_assets.lib.layout import DataLayout, Partition
from nexus_assets.lib.tables import embedding_identity, frame_to_parquet_bytes
from nexus_assets.lib.vkp import content_hash, next_version, read_manifest, write_vkp


@dataclass(frozen=True)
class PublishResult:
    published: bool
    version: str | None
    path: Path | None
    content_hash: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"published": self.published, "version": self.version,
                "path": str(self.path) if self.path else None, "content_hash": self.content_hash,
                "reason": self.reason}


def chunk_content_hash(chunks: pd.DataFrame, model_id: str, dims: int) -> str:
    rows = zip(chunks["chunk_id"], chunks["file"], chunks["page_start"].astype(int),
               chunks["page_end"].astype(int), chunks["text"], strict=True)
    return content_hash(model_id, dims, rows)


def publish_vkp(
    layout: DataLayout,
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
    versions = layout.published_versions(partition)
    latest = versions[-1] if versions else None
    if latest is not None:
        latest_path = layout.vkp_path(partition, latest)
        if read_manifest(latest_path).get("content_hash") == digest:
            return PublishResult(False, latest, latest_path, digest, f"content unchanged since v{latest}")
    version = next_version(latest)
    path = layout.vkp_path(partition, version)
    ordered = embeddings.set_index("chunk_id").loc[chunks["chunk_id"]].reset_index()
    write_vkp(
        path, partition, version, model_id=model_id, dims=dims, counts=counts, sources=sources,
        content_hash_value=digest, chunks_parquet=frame_to_parquet_bytes(chunks),
        embeddings_parquet=frame_to_parquet_bytes(ordered), chroma_dir=chroma_dir,
    )
    return PublishResult(True, version, path, digest, f"new version (previous: {latest or 'none'})")
