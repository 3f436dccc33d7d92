"""Search over a Chroma build: dense, lexical (BM25) and the shipped hybrid ranking.

One ranking serves the build side (`search`: a partition's live collection under the data directory)
and the school side (`installed_search`: a release `nexus vkp pull` installed): both call
`search_build`, which loads a build once (`load_index`: ids, texts, metadata, unit vectors, BM25) and
ranks every query against it in memory.

Hybrid is the default. Candidates are the best `Ranking.candidates` chunks by cosine similarity, by
BM25 over words, by BM25 over character 4-grams (cognates across Indonesian and English) and by BM25
(words and 4-grams) over the query's translations from a small generic school glossary (`glossary`:
an English question over an Indonesian page, or the reverse); their scores are min-max scaled over
the candidates and added with the weights of `SHIPPED`, chosen by MRR@10 on the tuning split of
benchmarks/retrieval_questions.jsonl and reported on its held-out split (docs/design.md "Retrieval
quality"). Reranking features measured and not shipped (weight 0): `coverage_weight` (the share of
the query's idf weight a chunk holds) and `page_weight` (page-level aggregation). The glossary is
code, so build side and school side rank alike with no change to the package. Each hit says where it
came from (its dense and word-BM25 ranks), so a data engineer can see which signal found it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.index.chroma_store import CollectionError, current_build, open_collection, read_build_info
from nexus_assets.lib.index.embedding import Embedder
from nexus_assets.lib.index.glossary import glossary
from nexus_assets.lib.index.lexical import BM25Index, char_grams, min_max

CHROMA_DIRNAME = "chroma"
CANDIDATES = 50  # per ranking, before fusion
MAX_K = 1000  # hits one query may ask for
# A question is a sentence or two; the model reads 128-512 tokens of it. 4,000 characters is a long paragraph:
# beyond it a query (typed, or a golden file's line) only costs BM25 and tokenizing time for nothing.
MAX_QUERY_CHARS = 4000
SearchMode = Literal["hybrid", "dense", "lexical"]


class NoCollectionError(LookupError):
    """The partition has not been built yet."""


class InvalidQueryError(ValueError):
    """A query that has no meaningful answer (empty text, a hit count outside 1..MAX_K)."""


def check_query(query: str, k: int) -> None:
    """Refuse what would otherwise return arbitrary hits (a blank query) or a slice (k <= 0), or cost for nothing
    (a query longer than MAX_QUERY_CHARS)."""
    if not query.strip():
        raise InvalidQueryError("the query is empty: give the words to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidQueryError(
            f"the query is {len(query):,} characters, over the {MAX_QUERY_CHARS:,} a query may have"
        )
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidQueryError(f"-k must be a whole number of hits from 1 to {MAX_K}, got {k!r}")


@dataclass(frozen=True)
class Ranking:
    """The knobs of the hybrid ranking: weights of the scaled dense and BM25 scores (words, 4-grams, and
    both over the query's glossary translations), of the query-term coverage and of page aggregation,
    and how many candidates each signal contributes."""

    dense_weight: float = 0.5
    lexical_weight: float = 0.5
    coverage_weight: float = 0.0
    candidates: int = CANDIDATES
    subword_weight: float = 0.0  # BM25 over character 4-grams (cognates across Indonesian and English)
    gloss_weight: float = 0.0  # BM25 over the glossary's translations of the query's words (`glossary`)
    gloss_subword_weight: float = 0.0  # BM25 over the character 4-grams of those translations
    page_weight: float = 0.0  # share of the best other candidate of the same page added (the answer is a page)


# The ranking both sides ship: the best MRR@10 on the tuning split of benchmarks/retrieval_questions.jsonl
# (bench_retrieval.py --tune; the held-out split was not looked at to choose). Coverage, page aggregation,
# an English gloss embedded with the query and a sentence-level max-sim rerank each lost on the tuning
# split (docs/design.md "Retrieval quality"): they ship at 0 or not at all.
SHIPPED = Ranking(
    dense_weight=0.3,
    lexical_weight=1.0,
    coverage_weight=0.0,
    candidates=50,
    subword_weight=0.8,
    gloss_weight=0.8,
    gloss_subword_weight=0.8,
    page_weight=0.0,
)


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    file: str
    page: int
    page_end: int
    score: float  # fused score (hybrid), cosine similarity (dense) or BM25 score (lexical)
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


@dataclass(frozen=True)
class SearchIndex:
    """One build's chunks held for searching: loaded once, then every query is a few matrix products."""

    build_dir: Path
    model_id: str
    ids: list[str]
    documents: list[str]
    metadatas: list[dict[str, Any]]
    vectors: np.ndarray  # (chunks, dims) float32, unit length
    bm25: BM25Index
    grams: BM25Index  # BM25 over character n-grams

    def __len__(self) -> int:
        return len(self.ids)

    def dense_scores(self, query_vector: np.ndarray) -> np.ndarray:
        if not len(self.ids):
            return np.zeros(0, dtype=np.float32)
        # einsum, not BLAS: a matrix-vector product of a few thousand rows is well under a millisecond in
        # one thread, while OpenBLAS's threads, on a busy 2-core server, took 4-15 ms to synchronise.
        return np.einsum("ij,j->i", self.vectors, np.asarray(query_vector, dtype=np.float32))

    def rank(
        self,
        query: str,
        query_vector: np.ndarray | None,
        k: int,
        mode: SearchMode = "hybrid",
        ranking: Ranking = SHIPPED,
    ) -> list[tuple[int, float, int | None, int | None]]:
        """(chunk index, score, dense rank, lexical rank) of the best `k` chunks."""
        if not len(self.ids):
            return []
        take = max(k, ranking.candidates)
        dense_order: np.ndarray = np.zeros(0, dtype=np.int64)
        cosine = np.zeros(0)
        if mode != "lexical":
            if query_vector is None:
                raise ValueError("dense and hybrid search need the query's vector")
            cosine = self.dense_scores(query_vector)
            dense_order = np.argsort(-cosine, kind="stable")[:take]
        bm25 = np.zeros(0)
        lexical_order: list[int] = []
        if mode != "dense":
            bm25 = self.bm25.scores(query)
            lexical_order = self.bm25.top_of(bm25, take)
        # The extra lexical signals of hybrid search: (weight, scores of every chunk), each adding its
        # best `take` chunks to the candidates.
        extra: list[tuple[float, np.ndarray]] = []
        if mode == "hybrid":
            translated = glossary().expand(query).lexical_query()
            for weight, bm25_index, text in (
                (ranking.subword_weight, self.grams, query),
                (ranking.gloss_weight, self.bm25, translated),
                (ranking.gloss_subword_weight, self.grams, translated),
            ):
                if weight and text:
                    extra.append((weight, bm25_index.scores(text)))
        dense_rank = {int(i): r for r, i in enumerate(dense_order, 1)}
        lexical_rank = {i: r for r, i in enumerate(lexical_order, 1)}
        if mode == "dense":
            scored = [(int(i), float(cosine[i])) for i in dense_order[:k]]
        elif mode == "lexical":
            scored = [(i, float(bm25[i])) for i in lexical_order[:k]]
        else:
            extra_orders = [self.bm25.top_of(scores, take) for _, scores in extra]
            ordered = dict.fromkeys([*map(int, dense_order), *lexical_order, *(i for o in extra_orders for i in o)])
            candidates = np.array(list(ordered), dtype=np.int64)
            coverage = self.bm25.coverage(query, candidates) if ranking.coverage_weight else np.zeros(len(candidates))
            fused = fuse(
                cosine[candidates], bm25[candidates], coverage, ranking, [(w, x[candidates]) for w, x in extra]
            )
            if ranking.page_weight:
                fused = fused + ranking.page_weight * self.best_other_of_page(candidates, fused)
            order = np.argsort(-fused, kind="stable")[:k]
            scored = [(int(candidates[j]), float(fused[j])) for j in order]
        return [(i, s, dense_rank.get(i), lexical_rank.get(i)) for i, s in scored]

    def best_other_of_page(self, candidates: np.ndarray, fused: np.ndarray) -> np.ndarray:
        """Per candidate, the best fused score of ANOTHER candidate sharing one of its pages (0 if none).

        The answer is a page: a page two of whose chunks match the question is likelier the answer
        than a page with one matching chunk and nothing else, which a neighbour page often is.
        """
        by_page: dict[tuple[str, int], list[int]] = {}
        for j, i in enumerate(candidates):
            meta = self.metadatas[int(i)]
            for page in range(int(meta["page"]), int(meta.get("page_end", meta["page"])) + 1):
                by_page.setdefault((meta["file"], page), []).append(j)
        best = np.zeros(len(candidates))
        for members in by_page.values():
            if len(members) < 2:
                continue
            for j in members:
                best[j] = max(best[j], max(fused[m] for m in members if m != j))
        return best

    def hits(self, ranked: list[tuple[int, float, int | None, int | None]]) -> list[Hit]:
        hits = []
        for i, score, dense_rank, lexical_rank in ranked:
            meta = self.metadatas[i]
            hits.append(
                Hit(
                    self.ids[i],
                    meta["file"],
                    int(meta["page"]),
                    int(meta.get("page_end", meta["page"])),
                    score,
                    self.documents[i],
                    dense_rank,
                    lexical_rank,
                    bool(meta.get("ocr", False)),
                )
            )
        return hits


def fuse(
    cosine: np.ndarray,
    bm25: np.ndarray,
    coverage: np.ndarray,
    ranking: Ranking,
    extra: Sequence[tuple[float, np.ndarray]] = (),
) -> np.ndarray:
    """The hybrid score of each candidate: scaled cosine and BM25 (relative score fusion) plus coverage,
    plus each `extra` signal (weight, scores: 4-grams, glossary translations) scaled the same way.

    Min-max scaling over the candidates puts every modality on 0..1, so a decisive BM25 match the
    English model cannot see still wins (reciprocal rank fusion would bury it: see `lexical`).
    """
    fused = (
        ranking.dense_weight * min_max(cosine)
        + ranking.lexical_weight * min_max(bm25)
        + ranking.coverage_weight * coverage
    )
    for weight, scores in extra:
        fused = fused + weight * min_max(scores)
    return fused


def query_vector(embedder: Embedder, text: str) -> np.ndarray:
    """One query's unit vector: through the embedder's single-text path where it has one (`embed_query`:
    a one-row pass, a quarter of the work of the build's four-row passes), else `embed`."""
    embed_query = getattr(embedder, "embed_query", None)
    if callable(embed_query):
        return np.asarray(embed_query(text), dtype=np.float32)
    return embedder.embed([text])[0]


@lru_cache(maxsize=8)
def load_index(build_dir: Path) -> SearchIndex:
    """Everything a search of `build_dir` reads, loaded once per process (builds never change once complete)."""
    info = read_build_info(build_dir)
    got = open_collection(build_dir).get(include=["documents", "metadatas", "embeddings"])
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    if vectors.ndim != 2:
        vectors = vectors.reshape(0, int(info.get("dims") or 0))
    documents = list(got["documents"])
    return SearchIndex(
        build_dir,
        info["model_id"],
        list(got["ids"]),
        documents,
        list(got["metadatas"]),
        vectors,
        BM25Index(documents),
        BM25Index(documents, analyzer=char_grams),
    )


def search_build(
    build_dir: Path,
    query: str,
    embedder: Embedder | None,
    k: int = 5,
    mode: SearchMode = "hybrid",
    ranking: Ranking = SHIPPED,
) -> list[Hit]:
    """Search one complete Chroma build (a partition's live build or an installed release's `chroma/`)."""
    check_query(query, k)
    index = load_index(Path(build_dir).resolve())
    vector = None
    if mode != "lexical":
        if embedder is None:
            raise ValueError(f"{mode} search needs an embedder for {index.model_id}")
        if embedder.model_id != index.model_id:
            raise CollectionError(
                f"collection in {build_dir} was built with {index.model_id}, not {embedder.model_id}: "
                "query it with the model it was built with"
            )
        vector = query_vector(embedder, query)
    return index.hits(index.rank(query, vector, k, mode, ranking))


def search(
    layout: DataLayout,
    partition: Partition,
    query: str,
    embedder: Embedder,
    k: int = 5,
    mode: SearchMode = "hybrid",
    ranking: Ranking = SHIPPED,
) -> list[Hit]:
    """Search a partition's live collection under the data directory."""
    check_query(query, k)
    build = current_build(chroma_root(layout, partition))
    if build is None:
        raise NoCollectionError(
            f"no Chroma collection for {partition.label} under {chroma_root(layout, partition)}: "
            f"build it first (nexus build --subject {partition.subject} --grade {partition.grade})"
        )
    return search_build(build, query, embedder, k, mode, ranking)
