"""Semantic search over a partition's published Chroma collection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexus_assets.lib.chroma_store import current_build, query_collection
from nexus_assets.lib.embedding import Embedder
from nexus_assets.lib.layout import DataLayout, Partition

CHROMA_DIRNAME = "chroma"


class NoCollectionError(LookupError):
    """The partition has not been built yet (or built empty)."""


@dataclass(frozen=True)
class Hit:
    file: str
    page: int
    page_end: int
    score: float
    text: str
    chunk_id: str

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "page": self.page, "page_end": self.page_end, "score": self.score,
                "text": self.text, "chunk_id": self.chunk_id}


def chroma_root(layout: DataLayout, partition: Partition) -> Path:
    return layout.processed_dir(partition) / CHROMA_DIRNAME


def search(layout: DataLayout, partition: Partition, query: str, embedder: Embedder, k: int = 5) -> list[Hit]:
    build = current_build(chroma_root(layout, partition))
    if build is None:
        raise NoCollectionError(
            f"no Chroma collection for {partition.label} under {chroma_root(layout, partition)}: "
            f"build it first (nexus build --subject {partition.subject} --grade {partition.grade})"
        )
    vector = embedder.embed([query])[0]
    hits = query_collection(build, vector, k, expected_model_id=embedder.model_id)
    return [
        Hit(h["metadata"]["file"], int(h["metadata"]["page"]), int(h["metadata"].get("page_end", h["metadata"]["page"])),
            h["score"], h["text"], h["id"])
        for h in hits
    ]
