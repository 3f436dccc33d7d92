"""Search over a partition's published Chroma collection: dense, lexical (BM25) and fused.

Hybrid is the default: the dense MiniLM ranking and a BM25 ranking over the same chunks, merged by
reciprocal rank fusion. Each hit says where it came from, so a data engineer can see which signal
found it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from nexus_assets.lib.chroma_store import collection_contents, current_build, query_collection
from nexus_assets.lib.embedding import Embedder
from nexus_assets.lib.layout import DataLayout, Partition
from nexus_assets.lib.lexical import BM25Index, reciprocal_rank_fusion

CHROMA_DIRNAME = "chroma"
CANDIDATES = 50  # per ranking, before fusion
SearchMode = Literal["hybrid", "dense", "lexical"]


class NoCollectionError(LookupError):
    """The partition has not been built yet."""


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    file: str
    page: int
    page_end: int
    score: float  # fused RRF score (hybrid), cosine similarity (dense) or BM25 rank score (lexical)
    text: str
    dense_rank: int | None
    lexical_rank: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "page": self.page, "page_end": self.page_end, "score": round(self.score, 6),
                "text": self.text, "chunk_id": self.chunk_id, "dense_rank": self.dense_rank,
                "lexical_rank": self.lexical_rank}


def chroma_root(layout: DataLayout, partition: Partition) -> Path:
    return layout.processed_dir(partition) / CHROMA_DIRNAME


@lru_cache(maxsize=8)
def _lexical_index(build_dir: Path) -> tuple[list[str], list[str], list[dict[str, Any]], BM25Index]:
    ids, documents, metadatas = collection_contents(build_dir)
    return ids, documents, metadatas, BM25Index(documents)


def search(
    layout: DataLayout, partition: Partition, query: str, embedder: Embedder, k: int = 5,
    mode: SearchMode = "hybrid",
) -> list[Hit]:
    build = current_build(chroma_root(layout, partition))
    if build is None:
        raise NoCollectionError(
            f"no Chroma collection for {partition.label} under {chroma_root(layout, partition)}: "
            f"build it first (nexus build --subject {partition.subject} --grade {partition.grade})"
        )
    ids, documents, metadatas, bm25 = _lexical_index(build)
    by_id = {cid: (doc, meta) for cid, doc, meta in zip(ids, documents, metadatas, strict=True)}
    dense: list[str] = []
    cosine: dict[str, float] = {}
    if mode != "lexical":
        vector = embedder.embed([query])[0]
        for hit in query_collection(build, vector, max(k, CANDIDATES), expected_model_id=embedder.model_id):
            dense.append(hit["id"])
            cosine[hit["id"]] = hit["score"]
    lexical = [ids[i] for i in bm25.top(query, max(k, CANDIDATES))] if mode != "dense" else []
    if mode == "dense":
        ranked = [(cid, cosine[cid]) for cid in dense]
    elif mode == "lexical":
        ranked = [(cid, 1.0 / (rank + 1)) for rank, cid in enumerate(lexical)]
    else:
        ranked = reciprocal_rank_fusion([dense, lexical])
    dense_rank = {cid: i for i, cid in enumerate(dense, 1)}
    lexical_rank = {cid: i for i, cid in enumerate(lexical, 1)}
    hits = []
    for cid, score in ranked[:k]:
        doc, meta = by_id[cid]
        hits.append(Hit(cid, meta["file"], int(meta["page"]), int(meta.get("page_end", meta["page"])), score, doc,
                        dense_rank.get(cid), lexical_rank.get(cid)))
    return hits
