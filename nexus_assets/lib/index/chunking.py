"""Chunking of cleaned page text into overlapping windows that end on natural boundaries.

Defaults follow the seed pipeline (800 characters, 100 overlap) so results stay comparable, but a
window ends at the last paragraph break, else sentence end, else word break in its final stretch,
so chunks do not cut words or sentences in half. A chunk may also be capped in tokens
(`max_tokens` with a `count_tokens` function from the embedder): the model silently ignores
anything past its window, so every character a chunk stores must fit in it.

Each chunk keeps its file, page span and a `chunk_id` derived from its partition, file name and
text, so an unchanged chunk keeps its id across builds even when other pages of the file change.

Counting tokens is most of chunking's time (~0.3 ms per chunk), and an unchanged file's text always
yields the same spans: a `SpanCache` keeps them by (text, parameters, tokenizer), so a rebuild after
one file changed re-counts only that file.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.caches import SPANS_DIR, BlobCache

PARAGRAPH_RE = re.compile(r"\n\s*\n")
SENTENCE_RE = re.compile(r"[.!?…:;][\"'”’)\]]*\s")
WORD_RE = re.compile(r"\s")

# Only look for a boundary in the last part of a window, so chunks stay near the target size.
BOUNDARY_SEARCH_SHARE = 0.35


@dataclass(frozen=True)
class ChunkingParams:
    chunk_size: int = 800
    chunk_overlap: int = 100
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.chunk_size < 50:
            raise ValueError(f"chunk_size must be at least 50 characters, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size // 2:
            raise ValueError(
                f"chunk_overlap must be between 0 and half the chunk size ({self.chunk_size // 2}), "
                f"got {self.chunk_overlap}"
            )


MAX_FILE_CHUNKS_ENV = "NEXUS_MAX_FILE_CHUNKS"
MAX_PARTITION_CHUNKS_ENV = "NEXUS_MAX_PARTITION_CHUNKS"
# Embedding runs at ~50-150 chunks/s on a 2-core build machine. The longest school book gives ~3,000 chunks of
# 800 characters: 20,000 per file is six such books' worth (minutes of embedding), and 150,000 per partition
# (40 long books) bounds one partition's embedding to well under an hour, so partitions queued behind it run.
DEFAULT_MAX_FILE_CHUNKS = 20_000
DEFAULT_MAX_PARTITION_CHUNKS = 150_000


@dataclass(frozen=True)
class ChunkBudget:
    """Chunks one file, and one partition, may have: what an upload can claim of the embedding step."""

    max_file_chunks: int = DEFAULT_MAX_FILE_CHUNKS
    max_partition_chunks: int = DEFAULT_MAX_PARTITION_CHUNKS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ChunkBudget:
        def pick(variable: str, default: int) -> int:
            raw = environ.get(variable, "").strip()
            if not raw:
                return default
            if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
                raise ValueError(f"{variable}={raw!r}: a budget is a whole number of chunks, at least 1")
            return int(raw)

        return cls(
            pick(MAX_FILE_CHUNKS_ENV, DEFAULT_MAX_FILE_CHUNKS),
            pick(MAX_PARTITION_CHUNKS_ENV, DEFAULT_MAX_PARTITION_CHUNKS),
        )

    def describe(self) -> str:
        return f"at most {self.max_file_chunks:,} chunks per file and {self.max_partition_chunks:,} per partition"


@dataclass(frozen=True)
class OverBudget:
    """A file whose chunks were left out of the partition, and why (names the file and the budget)."""

    file: str
    chunks: int
    status: str  # "too_many_chunks" (the file's budget) or "partition_full" (the partition's)
    reason: str


def within_budget(
    files: Sequence[tuple[str, Sequence[Chunk]]], budget: ChunkBudget
) -> tuple[list[Chunk], list[OverBudget]]:
    """The chunks of `files` (in the order given: sorted by name, so the choice is the same every build) that
    fit the budget, and the files refused whole.

    A file over the per-file budget is refused; a file that would take the partition past its budget is
    refused and the next files are still tried, so one huge upload costs only itself. Never cut: part of a
    book indexed as the book would answer questions as if the rest did not exist.
    """
    kept: list[Chunk] = []
    refused: list[OverBudget] = []
    for file, chunks in files:
        if len(chunks) > budget.max_file_chunks:
            refused.append(
                OverBudget(
                    file,
                    len(chunks),
                    "too_many_chunks",
                    f"{len(chunks):,} chunks, over the budget of {budget.max_file_chunks:,} per file "
                    f"({MAX_FILE_CHUNKS_ENV}): not indexed; split the PDF or raise the budget",
                )
            )
        elif len(kept) + len(chunks) > budget.max_partition_chunks:
            refused.append(
                OverBudget(
                    file,
                    len(chunks),
                    "partition_full",
                    f"{len(chunks):,} chunks would take the partition past its budget of "
                    f"{budget.max_partition_chunks:,} chunks ({MAX_PARTITION_CHUNKS_ENV}; {len(kept):,} already "
                    "taken by the files before it by name): not indexed; move files to another partition or raise "
                    "the budget",
                )
            )
        else:
            kept.extend(chunks)
    return kept, refused


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    file: str
    chunk_index: int
    page_start: int
    page_end: int
    text: str

    @property
    def content_sha256(self) -> str:
        return hashing.sha256_text(self.text)


def _last_match_end(pattern: re.Pattern[str], text: str, lo: int, hi: int) -> int | None:
    best = None
    for match in pattern.finditer(text, lo, hi):
        best = match.end()
    return best


def _window_end(text: str, start: int, size: int) -> int:
    """End of the window starting at `start`: the best natural boundary within `size` characters."""
    hard_end = start + size
    if hard_end >= len(text):
        return len(text)
    lo = start + int(size * (1 - BOUNDARY_SEARCH_SHARE))
    for pattern in (PARAGRAPH_RE, SENTENCE_RE, WORD_RE):
        end = _last_match_end(pattern, text, lo, hard_end)
        if end is not None and end > start:
            return end
    return hard_end


def _next_start(text: str, end: int, overlap: int, prev_start: int) -> int:
    """Start of the next window: `overlap` characters back, moved forward to a word start."""
    start = max(end - overlap, prev_start + 1)
    if start <= 0 or overlap == 0:
        return max(start, 0)
    match = WORD_RE.search(text, start - 1, end)
    if match and match.end() < end:
        return match.end()
    return start


def split_text(
    text: str,
    params: ChunkingParams,
    count_tokens: Callable[[str], int] | None = None,
) -> list[tuple[int, int]]:
    """Character spans `(start, end)` of the chunks of `text`; spans of pure whitespace are dropped."""
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        size = params.chunk_size
        end = _window_end(text, start, size)
        if params.max_tokens and count_tokens:
            while (tokens := count_tokens(text[start:end])) > params.max_tokens and end - start > 20:
                size = max(20, min(end - start - 1, int((end - start) * params.max_tokens / tokens * 0.95)))
                end = _window_end(text, start, size)
        # Trim surrounding whitespace so stored text is exactly what gets embedded.
        s, e = start, end
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
        if end >= len(text):
            break
        start = _next_start(text, end, params.chunk_overlap, start)
    return spans


@cache
def _code_digest() -> str:
    return hashing.sha256_file(Path(__file__), 12)


@dataclass(frozen=True)
class SpanCache:
    """Chunk spans of a text by (text, chunking parameters, tokenizer), in a content-addressed blob cache.

    `tokenizer_id` must change whenever token counts could (the embedder's cache namespace does); the
    namespace names this module's code, so a change to the chunking rules never reuses old spans.
    """

    blobs: BlobCache
    tokenizer_id: str

    @classmethod
    def under(cls, cache_root: Path, tokenizer_id: str) -> SpanCache:
        return cls(BlobCache(cache_root / SPANS_DIR, _code_digest()), tokenizer_id)

    def key(self, text: str, params: ChunkingParams) -> str:
        identity = f"{self.tokenizer_id}\x1f{params.chunk_size}\x1f{params.chunk_overlap}\x1f{params.max_tokens}\x1f"
        return hashing.sha256_text(identity + text)

    def spans(
        self, text: str, params: ChunkingParams, count_tokens: Callable[[str], int] | None
    ) -> list[tuple[int, int]]:
        key = self.key(text, params)
        if (data := self.blobs.get(key)) is not None:
            try:
                return [(int(a), int(b)) for a, b in json.loads(data)]
            except (ValueError, TypeError):
                self.blobs.discard(key)
        spans = split_text(text, params, count_tokens)
        self.blobs.put(key, json.dumps(spans, separators=(",", ":")).encode())
        return spans


def chunk_id_for(partition_label: str, file: str, text: str, occurrence: int, stream: str = "") -> str:
    """Stable id: same partition, file and text (and n-th repeat of that text) give the same id.

    `stream` names a separately chunked part of the file (e.g. "ocr"); the main stream ("") keeps the
    ids it always had.
    """
    key = f"{partition_label}\x1f{file}\x1f{occurrence}\x1f{text}" + (f"\x1f{stream}" if stream else "")
    return hashing.sha256_text(key, 24)


def chunk_file(
    partition_label: str,
    file: str,
    pages: Sequence[tuple[int, str]],
    params: ChunkingParams,
    count_tokens: Callable[[str], int] | None = None,
    stream: str = "",
    first_index: int = 0,
    span_cache: SpanCache | None = None,
) -> list[Chunk]:
    """Chunk the cleaned pages `(page_number, text)` of one file, across page breaks.

    `stream` and `first_index` let one file be chunked as several streams (see `chunk_streams`).
    """
    parts: list[str] = []
    offsets: list[int] = []
    numbers: list[int] = []
    cursor = 0
    for number, page_text in pages:
        if not page_text.strip():
            continue
        if parts:
            parts.append("\n\n")
            cursor += 2
        offsets.append(cursor)
        numbers.append(number)
        parts.append(page_text)
        cursor += len(page_text)
    text = "".join(parts)
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    spans = span_cache.spans(text, params, count_tokens) if span_cache else split_text(text, params, count_tokens)
    for index, (start, end) in enumerate(spans):
        body = text[start:end]
        occurrence = seen.get(body, 0)
        seen[body] = occurrence + 1
        first = numbers[bisect.bisect_right(offsets, start) - 1]
        last = numbers[bisect.bisect_right(offsets, end - 1) - 1]
        chunks.append(
            Chunk(
                chunk_id_for(partition_label, file, body, occurrence, stream),
                file,
                first_index + index,
                first,
                last,
                body,
            )
        )
    return chunks


def chunk_streams(
    partition_label: str,
    file: str,
    streams: Sequence[tuple[str, Sequence[tuple[int, str]]]],
    params: ChunkingParams,
    count_tokens: Callable[[str], int] | None = None,
    span_cache: SpanCache | None = None,
) -> list[Chunk]:
    """Chunk each `(stream name, pages)` of one file on its own: no chunk mixes two streams.

    Used to keep OCR text (stream "ocr") apart from the text layer (stream ""): OCR of a scanned cover
    must not shift the windows, ids and vectors of every text-layer chunk after it, and a chunk is
    then either all OCR or not OCR at all. Indexes run on across streams.
    """
    chunks: list[Chunk] = []
    for name, pages in streams:
        chunks += chunk_file(
            partition_label,
            file,
            pages,
            params,
            count_tokens,
            stream=name,
            first_index=len(chunks),
            span_cache=span_cache,
        )
    return chunks
