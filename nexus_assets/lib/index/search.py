"""Search over a partition's published Chroma collection: dense, lexical (BM25) and fused.

Hybrid is the default: the dense MiniLM ranking and a BM25 ranking over the same chunks, merged by
relative score fusion (`lexical.relative_score_fusion`: both scores scaled over the candidates and
averaged). Each hit says where it came from, so a data engineer can see which signal
found it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.index.chroma_store import collection_contents, cosine_of, current_build, query_collection
from nexus_assets.lib.index.embedding import Embedder
from nexus_assets.lib.index.lexical import BM25Index, relative_score_fusion

CHROMA_DIRNAME = "chroma"
CANDIDATES = 50  # per ranking, before fusion
MAX_K = 1000  # hits one query may ask for
SearchMode = Literal["hybrid", "dense", "lexical"]


class NoCollectionError(LookupError):
    """The partition has not been built yet."""


class InvalidQueryError(ValueError):
    """A query that has no meaningful answer (empty text, a hit count outside 1..MAX_K)."""


def check_query(query: str, k: int) -> None:
    """Refuse what would otherwise return arbitrary hits (a blank query) or a slice (k <= 0)."""
    if not query.strip():
        raise InvalidQueryError("the query is empty: give the words to search for")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidQueryError(f"-k must be a whole number of hits from 1 to {MAX_K}, got {k!r}")


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    file: str
    page: int
    page_end: int
    score: float  # fused 0..1 score (hybrid), cosine similarity (dense) or BM25 score (lexical)
    text: str
    dense_rank: int | None
    lexical_rank: int | None
    ocr: bool = False  # the text (partly) comes from OCR of a scanned page: expect misread words

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "page": self.page,
            "page_end": self.page_end,
            "score": round(self.score, 6),
            "text": self.text,
            "chunk_id": self.chunk_id,
            "dense_rank": self.dense_rank,
            "lexical_rank": self.lexical_rank,
            "ocr": self.ocr,
        }


def chroma_root(layout: DataLayout, partition: Partition) -> Path:
    return layout.processed_dir(partition) / CHROMA_DIRNAME


@lru_cache(maxsize=8)
def _lexical_index(build_dir: Path) -> tuple[list[str], list[str], list[dict[str, Any]], BM25Index]:
    ids, documents, metadatas = collection_contents(build_dir)
    return ids, documents, metadatas, BM25Index(documents)


def search(
    layout: DataLayout,
    partition: Partition,
    query: str,
    embedder: Embedder,
    k: int = 5,
    mode: SearchMode = "hybrid",
) -> list[Hit]:
    check_query(query, k)
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
    vector = None
    if mode != "lexical":
        vector = embedder.embed([query])[0]
        for hit in query_collection(build, vector, max(k, CANDIDATES), expected_model_id=embedder.model_id):
            dense.append(hit["id"])
            cosine[hit["id"]] = hit["score"]
    lexical: list[str] = []
    bm25_score: dict[str, float] = {}
    if mode != "dense":
        all_scores = bm25.scores(query)
        lexical = [ids[i] for i in bm25.top(query, max(k, CANDIDATES))]
        bm25_score = {cid: float(all_scores[i]) for i, cid in enumerate(ids)}
    if mode == "dense":
        ranked = [(cid, cosine[cid]) for cid in dense]
    elif mode == "lexical":
        ranked = [(cid, bm25_score[cid]) for cid in lexical]
    else:
        # Score the union of both candidate lists in both modalities, then fuse the scores.
        candidates = list(dict.fromkeys([*dense, *lexical]))
        cosine.update(cosine_of(build, [c for c in candidates if c not in cosine], vector))
        ranked = relative_score_fusion([{c: cosine[c] for c in candidates}, {c: bm25_score[c] for c in candidates}])
    dense_rank = {cid: i for i, cid in enumerate(dense, 1)}
    lexical_rank = {cid: i for i, cid in enumerate(lexical, 1)}
    hits = []
    for cid, score in ranked[:k]:
        doc, meta = by_id[cid]
        hits.append(
            Hit(
                cid,
                meta["file"],
                int(meta["page"]),
                int(meta.get("page_end", meta["page"])),
                score,
                doc,
                dense_rank.get(cid),
                lexical_rank.get(cid),
                bool(meta.get("ocr", False)),
            )
        )
    return hits
