"""The harder question set (benchmarks/retrieval_questions.jsonl): every quote is on its pages, the split is fixed."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from nexus_assets.lib.index.retrieval_eval import (
    QUESTION_KINDS,
    RetrievalQuestion,
    Scores,
    first_answering_rank,
    load_questions,
    split_of,
)
from nexus_assets.lib.index.search import Hit
from nexus_assets.lib.ingest.pdf_extraction import extract_pdf

QUESTIONS = Path(__file__).resolve().parents[1] / "benchmarks" / "retrieval_questions.jsonl"


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def test_the_set_is_large_and_covers_every_kind_both_ways() -> None:
    questions = load_questions(QUESTIONS)
    kinds = Counter(q.kind for q in questions)
    assert len(questions) >= 40 and set(kinds) == set(QUESTION_KINDS), kinds
    assert kinds["cross_en_id"] >= 5 and kinds["cross_id_en"] >= 5, "cross-language both ways"
    assert len({q.id for q in questions}) == len(questions)
    splits = Counter(q.split for q in questions)
    assert splits["heldout"] >= 20 and splits["tune"] >= 20, splits


def test_a_question_moved_to_the_other_split_is_refused(tmp_path: Path) -> None:
    row = json.loads(QUESTIONS.read_text(encoding="utf-8").splitlines()[0])
    row["split"] = "tune" if split_of(row["id"]) == "heldout" else "heldout"
    moved = tmp_path / "moved.jsonl"
    moved.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="moved.jsonl:1: .*bad kind .*split"):
        load_questions(moved)


@pytest.mark.shared_corpus
def test_every_evidence_quote_is_on_the_answering_pages_as_extracted(shared_corpus: Path) -> None:
    """Checked against the project's own extraction (boilerplate removed, hyphenation joined)."""
    questions = load_questions(QUESTIONS)
    pages: dict[str, dict[int, str]] = {}
    for q in questions:
        key = f"{q.subject}/{q.grade}/{q.file}"
        if key not in pages:
            ex = extract_pdf(shared_corpus / key)
            pages[key] = {p.page: _norm(p.text) for p in ex.pages}
        for quote in q.evidence:
            assert any(_norm(quote) in pages[key].get(p, "") for p in q.pages), (q.id, quote, q.pages)


def test_ranks_and_scores() -> None:
    q = RetrievalQuestion("x", "?", "s", "g", "a.pdf", (3, 4), ("e",), "page_break", split_of("x"))

    def hit(file: str, page: int, page_end: int) -> Hit:
        return Hit("c", file, page, page_end, 0.0, "", None, None)

    assert first_answering_rank(q, [hit("b.pdf", 3, 3), hit("a.pdf", 1, 2), hit("a.pdf", 2, 3)]) == 3
    assert first_answering_rank(q, [hit("a.pdf", 5, 6)]) is None
    scores = Scores.of([1, 2, None, 10])
    assert (scores.recall_at_1, scores.recall_at_5) == (0.25, 0.5)
    assert scores.mrr_at_10 == pytest.approx((1 + 0.5 + 0.1) / 4)
