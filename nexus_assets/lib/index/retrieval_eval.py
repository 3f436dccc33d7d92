"""Retrieval quality against golden questions (question → file and page that answer it).

A question counts as answered when a top-k hit comes from the right file and its page span covers
the answering page. Used by the tests and by `nexus eval`; later by the retrieval asset check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.index.embedding import Embedder
from nexus_assets.lib.index.search import SearchMode, search


@dataclass(frozen=True)
class GoldenQuestion:
    question: str
    subject: str
    grade: str
    file: str
    page: int


@dataclass(frozen=True)
class GoldenResult:
    question: GoldenQuestion
    rank: int | None  # 1-based rank of the first answering hit, None when not in the top k

    @property
    def found(self) -> bool:
        return self.rank is not None


def load_golden(path: Path) -> list[GoldenQuestion]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question = GoldenQuestion(row["question"], row["subject"], row["grade"], row["file"], int(row["page"]))
            questions.append(question)
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{path}:{number}: not a golden question ({exc})") from exc
    return questions


def evaluate(
    layout: DataLayout,
    questions: list[GoldenQuestion],
    embedder: Embedder,
    k: int = 5,
    mode: SearchMode = "hybrid",
) -> list[GoldenResult]:
    results = []
    for q in questions:
        hits = search(layout, Partition(q.subject, q.grade), q.question, embedder, k=k, mode=mode)
        rank = next((i for i, h in enumerate(hits, 1) if h.file == q.file and h.page <= q.page <= h.page_end), None)
        results.append(GoldenResult(q, rank))
    return results
