"""Retrieval quality against golden questions (question → file and page that answer it).

A question counts as answered when a top-k hit comes from the right file and its page span covers
the answering page. Used by the tests and by `nexus eval`; later by the retrieval asset check.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nexus_assets.lib.core.escaping import shown
from nexus_assets.lib.core.hashing import sha256_text
from nexus_assets.lib.core.input_files import GOLDEN_MAX_BYTES, InputFileError, read_checked
from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.index.embedding import Embedder
from nexus_assets.lib.index.search import MAX_QUERY_CHARS, Hit, SearchMode, search


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


class GoldenFileError(ValueError):
    """A golden questions file that cannot be used: names the file, the line and what is wrong."""


_GOLDEN_TEXT_FIELDS = ("question", "subject", "grade", "file")
# A golden line is one question with its answer's place: well under 1 KB; 64 KiB refuses a runaway line unparsed.
MAX_LINE_BYTES = 64 << 10


def _golden_page(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        page = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        page = int(value)
    else:
        raise ValueError(f"'page' must be a whole page number, got {type(value).__name__} {shown(repr(value), 40)}")
    if page < 1:
        raise ValueError(f"'page' must be 1 or more, got {page}")
    return page


def parse_golden_line(line: str) -> GoldenQuestion:
    """One JSONL line as a question; ValueError (a message, no traceback) for anything else."""
    try:
        row = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(row, dict):
        fields = ", ".join(_GOLDEN_TEXT_FIELDS)
        raise ValueError(f"a JSON object with {fields} and page is expected, got {type(row).__name__}")
    missing = [name for name in (*_GOLDEN_TEXT_FIELDS, "page") if name not in row]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    for name in _GOLDEN_TEXT_FIELDS:
        if not isinstance(row[name], str) or not row[name].strip():
            raise ValueError(f"{name!r} must be a non-empty string, got {type(row[name]).__name__}")
    if len(row["question"]) > MAX_QUERY_CHARS:
        raise ValueError(f"'question' is {len(row['question']):,} characters, over the {MAX_QUERY_CHARS:,} of a query")
    return GoldenQuestion(row["question"], row["subject"], row["grade"], row["file"], _golden_page(row["page"]))


def load_golden(path: Path) -> list[GoldenQuestion]:
    """The questions of a JSONL golden file: a regular file of at most GOLDEN_MAX_BYTES (never `/dev/zero` or a
    FIFO), UTF-8, one object per line; GoldenFileError (a ValueError) naming the file and line otherwise."""
    try:
        data = read_checked(path, "golden questions file", GOLDEN_MAX_BYTES)
    except InputFileError as exc:
        raise GoldenFileError(str(exc)) from None
    questions = []
    # Lines are split at b"\n" only, as an editor counts them (str.splitlines also splits at U+2028, U+0085 and
    # \x1c, which JSON strings may hold, so the line an error named was not the line in the file), each decoded
    # alone: a byte that is not UTF-8 is named by its line, and a line over MAX_LINE_BYTES is refused unparsed.
    for number, raw in enumerate(data.split(b"\n"), 1):
        where = f"{shown(str(path), 200)}:{number}"
        if len(raw) > MAX_LINE_BYTES:
            raise GoldenFileError(
                f"{where}: the line is {len(raw):,} bytes, over the {MAX_LINE_BYTES:,} a golden question may have"
            )
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a BOM (Windows editors) is not an error
        except UnicodeDecodeError as exc:
            raise GoldenFileError(
                f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
            ) from None
        if not line.strip():
            continue
        try:
            questions.append(parse_golden_line(line))
        except (ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise GoldenFileError(f"{where}: not a golden question ({shown(reason, 300)})") from None
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


# --- the harder question set (benchmarks/retrieval_questions.jsonl) and its metrics ---------------------

QUESTION_KINDS = ("paraphrase", "cross_en_id", "cross_id_en", "table", "code", "page_break")
SPLITS = ("tune", "heldout")
HELDOUT_SHARE = 0.4


def split_of(question_id: str) -> str:
    """`heldout` or `tune`, by a stable hash of the id: fixed before any tuning, never moved after."""
    bucket = int(sha256_text(question_id, 8), 16) % 100
    return "heldout" if bucket < HELDOUT_SHARE * 100 else "tune"


@dataclass(frozen=True)
class RetrievalQuestion:
    """A question with every page that answers it and the quoted evidence found on those pages."""

    id: str
    question: str
    subject: str
    grade: str
    file: str
    pages: tuple[int, ...]
    evidence: tuple[str, ...]
    kind: str
    split: str

    def answered_by(self, file: str, page: int, page_end: int) -> bool:
        return file == self.file and any(page <= p <= page_end for p in self.pages)


def load_questions(path: Path) -> list[RetrievalQuestion]:
    """The question set; its `split` must be the one `split_of` gives (a moved question is an error)."""
    questions = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, row in ((n, line) for n, line in enumerate(lines, 1) if line.strip()):
        try:
            row = json.loads(row)
            q = RetrievalQuestion(
                row["id"],
                row["question"],
                row["subject"],
                row["grade"],
                row["file"],
                tuple(int(p) for p in row["pages"]),
                tuple(str(e) for e in row["evidence"]),
                row["kind"],
                row["split"],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a retrieval question ({exc})") from exc
        if q.kind not in QUESTION_KINDS or q.split != split_of(q.id) or not q.pages or not q.evidence:
            raise ValueError(f"{path}:{number}: {q.id}: bad kind {q.kind!r}, split {q.split!r} or empty pages/evidence")
        questions.append(q)
    return questions


@dataclass(frozen=True)
class Scores:
    """recall@1, recall@5 and MRR@10 of a list of ranks (1-based rank of the first answering hit, or None)."""

    questions: int
    recall_at_1: float
    recall_at_5: float
    mrr_at_10: float

    @classmethod
    def of(cls, ranks: Sequence[int | None]) -> Scores:
        n = len(ranks) or 1
        return cls(
            len(ranks),
            sum(1 for r in ranks if r is not None and r <= 1) / n,
            sum(1 for r in ranks if r is not None and r <= 5) / n,
            sum(1 / r for r in ranks if r is not None and r <= 10) / n,
        )

    def row(self) -> str:
        return (
            f"n={self.questions:3d}  R@1 {self.recall_at_1:.3f}  R@5 {self.recall_at_5:.3f}  "
            f"MRR@10 {self.mrr_at_10:.3f}"
        )


def first_answering_rank(question: RetrievalQuestion, hits: Sequence[Hit]) -> int | None:
    return next((i for i, h in enumerate(hits, 1) if question.answered_by(h.file, h.page, h.page_end)), None)
