"""Lexical retrieval (BM25) and rank fusion.

The bundled MiniLM is an English model while most of the curriculum is Indonesian: exact terms
(names, numbers, technical words) are often ranked poorly by the vectors alone. BM25 over the same
chunks catches them (function words aside: `STOPWORDS`), and BM25 over character 4-grams
(`char_grams`) catches cognates across the two languages. The rankings are merged by relative score
fusion: each ranking's scores are min-max scaled over the candidates and added with weights
(`search.fuse`). Reciprocal rank fusion (kept here for comparison) uses
ranks only and gives nothing for a list a document is missing from: an exact term that BM25 ranks
first by a wide margin, and the English model cannot see, lost to chunks ranked mid-way in both
lists (on the shared golden questions RRF answered 25 of 27, score fusion 26).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np

TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)
RRF_K = 60  # the constant of Cormack et al.; damps the weight of the very first ranks


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens; single letters dropped (they carry no signal), numbers kept."""
    return [t for t in TOKEN_RE.findall(text.lower()) if len(t) > 1 or t.isdigit()]


# Function words of English and Indonesian. A partition mixes languages (an English summary beside
# Indonesian books), so within it an English "the", "how", "many" is rare, gets a high idf and makes
# every English chunk a strong BM25 match for any English question about an Indonesian page (and the
# reverse with "yang", "berapa"): issue 29's cross-language misses. Only these closed-class words
# are dropped; every content word, name and number stays.
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers him his how i if in into is it its itself just me more most my no nor not now of off on
    once only or other our out over own same she should so some such than that the their them then there
    these they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours many much
    ada adalah agar akan antara apa apakah atau bagaimana bagi bahwa banyak beberapa belum berapa bisa boleh
    dalam dan dapat dari daripada dengan di dia hal hanya harus ia ini itu jika juga kami kamu karena ke
    kepada ketika kita lain lebih maka mana masih melalui mereka namun oleh pada para saat sangat saja
    sebagai sebelum sedang sehingga sejak selain semua sendiri seperti serta setelah setiap siapa sudah
    supaya tanpa telah tentang tersebut tetapi tidak untuk yaitu yakni yang
    """.split()
)


def content_tokens(text: str) -> list[str]:
    """`tokenize` without the function words of `STOPWORDS`: what BM25 matches on."""
    return [t for t in tokenize(text) if t not in STOPWORDS]


GRAM = 4  # character n-grams of the subword index


def char_grams(text: str, n: int = GRAM) -> list[str]:
    """Character n-grams of each word padded with spaces (`" algo"`, `"algo"`, ... `"tma "`).

    Indonesian technical words are mostly cognates of the English ones (algoritma/algorithm,
    protokol/protocol, konstanta/constant, piksel/pixel): they share n-grams where they share no word,
    which gives an English question over an Indonesian page (and the reverse) a lexical signal.
    """
    grams = []
    for word in content_tokens(text):
        padded = f" {word} "
        if len(padded) <= n:
            grams.append(padded)
        else:
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


class BM25Index:
    """Okapi BM25 over a fixed list of documents (`analyzer`: word tokens, or `char_grams` for subwords).

    Each document's term weights are computed once into a sparse matrix, so a query is a sum of a few
    of its columns: a few milliseconds for thousands of chunks.
    """

    def __init__(
        self,
        documents: Sequence[str],
        k1: float = 1.5,
        b: float = 0.75,
        analyzer: Callable[[str], list[str]] = content_tokens,
    ) -> None:
        from scipy import sparse

        self.k1, self.b, self.analyzer = k1, b, analyzer
        self._tfs = [Counter(analyzer(d)) for d in documents]
        lengths = np.array([sum(tf.values()) for tf in self._tfs], dtype=np.float64)
        avg = float(lengths.mean()) if len(documents) else 0.0
        df: Counter[str] = Counter()
        for tf in self._tfs:
            df.update(tf.keys())
        n = len(documents)
        self._idf = {term: math.log(1 + (n - f + 0.5) / (f + 0.5)) for term, f in df.items()}
        self._column = {term: j for j, term in enumerate(self._idf)}
        self._idf_array = np.fromiter(self._idf.values(), dtype=np.float64, count=len(self._idf))
        rows, cols, weights = [], [], []
        norm = k1 * (1 - b + b * lengths / (avg or 1.0))
        for i, tf in enumerate(self._tfs):
            for term, count in tf.items():
                rows.append(i)
                cols.append(self._column[term])
                weights.append(self._idf[term] * count * (k1 + 1) / (count + norm[i]))
        self._weights = sparse.csc_matrix((weights, (rows, cols)), shape=(n, len(self._column)), dtype=np.float64)
        self._present = self._weights.copy()
        self._present.data = np.ones_like(self._present.data)

    def __len__(self) -> int:
        return len(self._tfs)

    def _columns(self, query: str) -> list[int]:
        return sorted({self._column[t] for t in self.analyzer(query) if t in self._column})

    def scores(self, query: str) -> np.ndarray:
        columns = self._columns(query)
        if not self._tfs or not columns:
            return np.zeros(len(self._tfs), dtype=np.float64)
        return np.asarray(self._weights[:, columns].sum(axis=1)).ravel()

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
        columns = self._columns(query)
        rows = np.asarray(indices, dtype=np.int64)
        if not columns or not len(rows):
            return np.zeros(len(rows), dtype=np.float64)
        idf = self._idf_array[columns]
        present = self._present[:, columns][rows]
        return np.asarray(present @ idf).ravel() / float(idf.sum())


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
