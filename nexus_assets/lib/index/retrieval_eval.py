"""Retrieval quality against golden questions (question → file and page that answer it).

A question counts as answered when a top-k hit comes from the right file and its page span covers
the answering page. Used by the tests and by `nexus eval`; later by the retrieval asset check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nexus_assets.lib.core.escaping import shown
from nexus_assets.lib.core.input_files import GOLDEN_MAX_BYTES, InputFileError, read_checked
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


class GoldenFileError(ValueError):
    """A golden questions file that cannot be used: names the file, the line and what is wrong."""


_GOLDEN_TEXT_FIELDS = ("question", "subject", "grade", "file")


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
    return GoldenQuestion(row["question"], row["subject"], row["grade"], row["file"], _golden_page(row["page"]))


def load_golden(path: Path) -> list[GoldenQuestion]:
    """The questions of a JSONL golden file: a regular file of at most GOLDEN_MAX_BYTES (never `/dev/zero` or a
    FIFO), UTF-8, one object per line; GoldenFileError (a ValueError) naming the file and line otherwise."""
    try:
        data = read_checked(path, "golden questions file", GOLDEN_MAX_BYTES)
    except InputFileError as exc:
        raise GoldenFileError(str(exc)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GoldenFileError(f"{shown(str(path))}: not UTF-8 text (byte {exc.start})") from None
    questions = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            questions.append(parse_golden_line(line))
        except (ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            where = f"{shown(str(path))}:{number}"
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
