"""Lexical retrieval (BM25) and rank fusion.

The bundled MiniLM is an English model while most of the curriculum is Indonesian: exact terms
(names, numbers, technical words) are often ranked poorly by the vectors alone. BM25 over the same
chunks catches them. Both are merged by relative score fusion: each ranking's scores are min-max
scaled over the candidates and averaged. Reciprocal rank fusion (kept here for comparison) uses
ranks only and gives nothing for a list a document is missing from: an exact term that BM25 ranks
first by a wide margin, and the English model cannot see, lost to chunks ranked mid-way in both
lists (on the shared golden questions RRF answered 25 of 27, score fusion 26).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)
RRF_K = 60  # the constant of Cormack et al.; damps the weight of the very first ranks


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens; single letters dropped (they carry no signal), numbers kept."""
    return [t for t in TOKEN_RE.findall(text.lower()) if len(t) > 1 or t.isdigit()]


class BM25Index:
    """Okapi BM25 over a fixed list of documents."""

    def __init__(self, documents: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._tfs = [Counter(tokenize(d)) for d in documents]
        self._lengths = np.array([sum(tf.values()) for tf in self._tfs], dtype=np.float64)
        self._avg = float(self._lengths.mean()) if len(documents) else 0.0
        df: Counter[str] = Counter()
        for tf in self._tfs:
            df.update(tf.keys())
        n = len(documents)
        self._idf = {term: math.log(1 + (n - f + 0.5) / (f + 0.5)) for term, f in df.items()}
        self._postings: dict[str, list[int]] = {}
        for i, tf in enumerate(self._tfs):
            for term in tf:
                self._postings.setdefault(term, []).append(i)

    def __len__(self) -> int:
        return len(self._tfs)

    def scores(self, query: str) -> np.ndarray:
        scores = np.zeros(len(self._tfs), dtype=np.float64)
        if not self._tfs:
            return scores
        norm = self.k1 * (1 - self.b + self.b * self._lengths / (self._avg or 1.0))
        for term in set(tokenize(query)):
            idf = self._idf.get(term)
            if idf is None:
                continue
            for i in self._postings[term]:
                tf = self._tfs[i][term]
                scores[i] += idf * tf * (self.k1 + 1) / (tf + norm[i])
        return scores

    def top(self, query: str, n: int) -> list[int]:
        """Indices of the `n` best documents with a non-zero score, best first."""
        return self.top_of(self.scores(query), n)

    @staticmethod
    def top_of(scores: np.ndarray, n: int) -> list[int]:
        """`top` of scores already computed."""
        order = np.argsort(-scores, kind="stable")[:n]
        return [int(i) for i in order if scores[i] > 0]

    def coverage(self, query: str, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Share of the query's idf weight each of `indices`' documents holds (each term once, 0..1).

        BM25 saturates a term's frequency and divides by length; coverage only asks which of the
        question's words the chunk has, weighted by how rare they are: the chunk that states the fact
        holds the rare words of the question together, a neighbouring page only some of them.
        """
        terms = [t for t in set(tokenize(query)) if t in self._idf]
        total = sum(self._idf[t] for t in terms)
        out = np.zeros(len(indices), dtype=np.float64)
        if not total:
            return out
        for j, i in enumerate(indices):
            tf = self._tfs[int(i)]
            out[j] = sum(self._idf[t] for t in terms if t in tf) / total
        return out


def min_max(values: np.ndarray) -> np.ndarray:
    """`values` scaled to 0..1 over themselves; all zeros when they do not spread (no signal)."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return values
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def relative_score_fusion(
    scores: Sequence[Mapping[str, float]], weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Merge scored candidates: each mapping's scores are min-max scaled to 0..1 over ITS candidates,
    then the weighted mean is taken (equal weights by default). Every mapping must score the same
    ids (score the union of the candidate lists in every modality first). Ties keep first-seen order.
    """
    weights = list(weights) if weights is not None else [1.0 / len(scores)] * len(scores)
    if len(weights) != len(scores):
        raise ValueError(f"{len(weights)} weights for {len(scores)} score mappings")
    ids = list(dict.fromkeys(cid for mapping in scores for cid in mapping))
    fused = dict.fromkeys(ids, 0.0)
    for mapping, weight in zip(scores, weights, strict=True):
        missing = [cid for cid in ids if cid not in mapping]
        if missing:
            raise ValueError(f"score mapping lacks {len(missing)} of the candidates (e.g. {missing[0]!r})")
        low, high = min(mapping.values()), max(mapping.values())
        for cid in ids:
            fused[cid] += weight * ((mapping[cid] - low) / (high - low) if high > low else 0.0)
    return sorted(fused.items(), key=lambda kv: -kv[1])


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Merge rankings of ids into one: score(id) = Σ 1 / (k + rank). Ties keep first-seen order."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda kv: -kv[1])
