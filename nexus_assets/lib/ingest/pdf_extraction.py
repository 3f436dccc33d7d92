"""PDF text extraction with PyMuPDF, page by page, with a status per file.

Uploaded PDFs are messy: encrypted, broken, scanned. Extraction never raises for a bad file; it
returns a `FileExtraction` whose `status` says what happened and whose `reason` a data engineer can
act on, so one bad file never fails its partition.

An extraction is a pure function of the PDF's bytes and of this code, so results are cached by the
file's sha256 plus `extractor_version()` (see `extract_pdfs`): an unchanged file is never re-read.
Files that miss the cache are spread over a process pool when there is enough work to pay for it;
a file with scanned pages is read in parts, one per core (OCR runs in one thread).
PyMuPDF is imported only when a file is really opened, so a build with every file cached does
not pay its import.

Pages without a text layer that show an image are OCRed when an `OcrEngine` is given (see
`nexus_assets.lib.ingest.ocr`): their status is `ocr`, not `ok`, so OCRed text stays recognisable down to
the chunks. Without OCR they keep status `no_text` and a reason that says why they were not read.

Hostile or broken uploads are refused before MuPDF reads them where a few bytes tell (`empty`,
`not_pdf`, `truncated`, `too_large`), and bounded while it reads them (`too_many_pages`,
`timeout`) by `ExtractionLimits`: the size, page count and extraction time of one file, from
NEXUS_MAX_PDF_MB, NEXUS_MAX_PDF_PAGES and NEXUS_MAX_EXTRACTION_SECONDS. The time limit is checked
before every page in any process (cooperative); in the worker pool a file still running past it
(stuck inside one page) has its worker killed (hard), and a worker that dies on a file gives that
file the status `crashed`, never the build. A refused or timed-out file yields no pages at all:
half a book is never indexed as if it were the whole.

What a file yields is bounded too (docs/pipeline.md, Budgets): text per page and per file
(NEXUS_MAX_PAGE_CHARS, NEXUS_MAX_FILE_CHARS; checked after each page, status `too_much_text`, reading stops),
and each worker's address space (NEXUS_MAX_EXTRACTION_MEMORY_MB, RLIMIT_AS set in the worker; status
`out_of_memory`). With a memory limit set every file read goes to a worker process, however small the work.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import metadata
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.caches import BlobCache
from nexus_assets.lib.core.cpu_info import cpu_threads
from nexus_assets.lib.core.numbers import parse_number
from nexus_assets.lib.ingest.boilerplate import page_blocks
from nexus_assets.lib.ingest.ocr import (
    OcrEngine,
    cache_key,
    legible,
    needs_ocr,
    ocr_blocks,
    ocr_resolution,
    ocr_unused_reason,
)
from nexus_assets.lib.ingest.text_cleaning import Block, clean_document_report

if TYPE_CHECKING:
    import pymupdf

log = logging.getLogger(__name__)

FileStatus = Literal[
    "ok",
    "encrypted",
    "malformed",
    "no_text_layer",
    "empty",
    "not_pdf",
    "truncated",
    "too_large",
    "too_many_pages",
    "timeout",
    "crashed",
    "too_much_text",
    "out_of_memory",
    "changed",
]
PageStatus = Literal["ok", "ocr", "no_text", "error"]
# Pages whose text is indexed: from the text layer (`ok`) or read by OCR (`ocr`).
TEXT_STATUSES = ("ok", "ocr")
# Outcomes that depend on the limits or on the machine, not only on the file's bytes: never cached, so a
# raised limit (or a run on a quieter machine) reads the file again.
UNCACHED_STATUSES = (
    "too_large",
    "too_many_pages",
    "timeout",
    "crashed",
    "too_much_text",
    "out_of_memory",
    "changed",  # the file changed while the build read it: read again by the next build
)

MIB = 1 << 20
MAX_PDF_MB_ENV = "NEXUS_MAX_PDF_MB"
MAX_PDF_PAGES_ENV = "NEXUS_MAX_PDF_PAGES"
MAX_EXTRACTION_SECONDS_ENV = "NEXUS_MAX_EXTRACTION_SECONDS"
MAX_PAGE_CHARS_ENV = "NEXUS_MAX_PAGE_CHARS"
MAX_FILE_CHARS_ENV = "NEXUS_MAX_FILE_CHARS"
MAX_EXTRACTION_MEMORY_MB_ENV = "NEXUS_MAX_EXTRACTION_MEMORY_MB"
# A textbook PDF is 5-100 MB (image-heavy scans up to ~300 MB): 500 MiB leaves room for those while a
# multi-GB upload (a video renamed .pdf, a disk image) is refused before it is opened.
DEFAULT_MAX_PDF_MB = 500
# School books run to 200-600 pages, the longest references ~1,000 (bench_scale.py builds one): 2,000
# pages refuses the "thousands of pages" file, which would take ~3 h of OCR if it were scanned.
DEFAULT_MAX_PDF_PAGES = 2000
# Text layers are read at 300-600 pages/s, OCR at 5-6 s per page: 30 minutes per file admits a fully
# scanned 300-page book and still ends a runaway file well within a production run's 2 h limit.
DEFAULT_MAX_EXTRACTION_SECONDS = 1800.0
# A dense textbook page holds 3,000-6,000 characters (a dictionary or index page up to ~15,000): 50,000 is ten
# times a dense page, and refuses the page of invisible or repeated text that made a 100-page, 227 KB PDF yield
# 69 MB. Text per file bounds what one upload costs downstream: 10 M characters are ~14,000 chunks of 800
# (minutes of embedding on a 2-core machine, not hours), about three times the longest school book.
DEFAULT_MAX_PAGE_CHARS = 50_000
DEFAULT_MAX_FILE_CHARS = 10_000_000
# Address space of one extraction worker (RLIMIT_AS): a worker with PyMuPDF loaded maps ~550 MiB (measured),
# a large scanned page rendered for OCR ~0.5 GiB more; 4 GiB admits that with room, and stops the 85 KB PDF
# whose one page of overlaid text (a compressed content stream) took 2 GB and 17 s to read, or a page that
# decodes to gigabytes, before it takes the build machine down. 0: no limit (and no forced worker).
DEFAULT_MAX_EXTRACTION_MEMORY_MB = 4096
# The pool kills a worker this long after the cooperative limit: time for the page in progress to end.
HARD_LIMIT_GRACE_S = 10.0
WORKER_START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ExtractionLimits:
    """What one file may cost: bytes on disk, pages, and seconds of extraction (OCR included)."""

    max_bytes: int = DEFAULT_MAX_PDF_MB * MIB
    max_pages: int = DEFAULT_MAX_PDF_PAGES
    max_seconds: float = DEFAULT_MAX_EXTRACTION_SECONDS
    max_page_chars: int = DEFAULT_MAX_PAGE_CHARS
    max_file_chars: int = DEFAULT_MAX_FILE_CHARS
    max_memory_mb: int = DEFAULT_MAX_EXTRACTION_MEMORY_MB  # 0: unlimited

    @classmethod
    def from_settings(
        cls, max_pdf_mb: float = 0, max_pages: int = 0, max_seconds: float = 0, *, environ: Mapping[str, str]
    ) -> ExtractionLimits:
        """A value > 0 (resource config) wins, else the NEXUS_* variable of `environ` (the settings'
        snapshot), else the default."""

        def pick(value: float, variable: str, default: float) -> float:
            raw = value if value and value > 0 else (environ.get(variable, "").strip() or default)
            # nan fails every comparison (`elapsed > nan` is False: no time limit at all), inf cannot be an int.
            number = parse_number(str(raw), variable)
            if number <= 0:
                raise ValueError(f"{variable}={raw!r}: a limit must be a positive, finite number")
            return number

        return cls(
            max_bytes=int(pick(max_pdf_mb, MAX_PDF_MB_ENV, DEFAULT_MAX_PDF_MB) * MIB),
            max_pages=int(pick(max_pages, MAX_PDF_PAGES_ENV, DEFAULT_MAX_PDF_PAGES)),
            max_seconds=pick(max_seconds, MAX_EXTRACTION_SECONDS_ENV, DEFAULT_MAX_EXTRACTION_SECONDS),
            max_page_chars=int(pick(0, MAX_PAGE_CHARS_ENV, DEFAULT_MAX_PAGE_CHARS)),
            max_file_chars=int(pick(0, MAX_FILE_CHARS_ENV, DEFAULT_MAX_FILE_CHARS)),
            max_memory_mb=_memory_mb(environ),
        )

    def describe(self) -> str:
        memory = f"{self.max_memory_mb:,} MiB of memory per worker" if self.max_memory_mb else "no memory limit"
        return (
            f"at most {self.max_bytes / MIB:g} MiB, {self.max_pages} pages, {self.max_seconds:g} s of "
            f"extraction, {self.max_page_chars:,} characters per page and {self.max_file_chars:,} per file; "
            f"{memory}"
        )


def _memory_mb(environ: Mapping[str, str]) -> int:
    """NEXUS_MAX_EXTRACTION_MEMORY_MB: MiB, 0 for no limit; small values are refused (a worker maps ~550)."""
    raw = environ.get(MAX_EXTRACTION_MEMORY_MB_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_EXTRACTION_MEMORY_MB
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_EXTRACTION_MEMORY_MB:
        raise ValueError(
            f"{MAX_EXTRACTION_MEMORY_MB_ENV}={raw!r} is not a whole number of MiB (ASCII digits, at most "
            f"{MAX_EXTRACTION_MEMORY_MB:,})"
        )
    value = int(raw)
    if value != 0 and value < MIN_EXTRACTION_MEMORY_MB:
        raise ValueError(
            f"{MAX_EXTRACTION_MEMORY_MB_ENV}={raw!r}: at least {MIN_EXTRACTION_MEMORY_MB} MiB (a worker with PyMuPDF "
            "loaded maps ~550), or 0 for no limit"
        )
    return value


MIN_EXTRACTION_MEMORY_MB = 1024
MAX_EXTRACTION_MEMORY_MB = 1 << 20  # 1 TiB: beyond it a typo, and setrlimit would overflow


@dataclass
class PageText:
    page: int  # 1-based, as printed in a PDF viewer
    text: str
    status: PageStatus
    reason: str = ""


@dataclass
class FileExtraction:
    file: str
    sha256: str
    status: FileStatus
    reason: str = ""
    page_count: int = 0
    pages: list[PageText] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    size: int = 0  # bytes on disk (a cached result is checked against the current size limit)

    @property
    def text_pages(self) -> int:
        return sum(1 for p in self.pages if p.status in TEXT_STATUSES)

    @property
    def ocr_pages(self) -> int:
        return sum(1 for p in self.pages if p.status == "ocr")


def _page_blocks(page: pymupdf.Page, raw_blocks: list | None = None) -> list[Block]:
    """Text blocks in content-stream order with their place on the page (`boilerplate.page_blocks`)."""
    return page_blocks(page, raw_blocks)


NO_TEXT_REASON = "no text layer (scanned or image-only page)"
WORDLESS_REASON = (
    "its text layer holds no letter or digit (only punctuation, symbols or invisible characters): not indexed"
)


def _has_word_characters(text: str) -> bool:
    """Some letter or digit of any script: a page of `. . . .` or of word joiners and private-use glyphs (which
    cleaning keeps: ZWJ and its kin are needed in some scripts) is a page without text to search."""
    return any(c.isalnum() for c in text)


def _read_page(page: pymupdf.Page, ocr: OcrEngine | None) -> tuple[list[Block], str | None]:
    """The page's blocks and, for a page without a text layer, why it has none or that OCR read it.

    Returns (blocks, None) for a page with a text layer, (OCR blocks, "ocr") for a scan OCR read, and
    ([], reason) otherwise. Only image-bearing pages are OCRed: blank pages would cost seconds for nothing.
    A page too large to render within OCR's pixel budget at a legible resolution is not OCRed.
    """
    blocks = _page_blocks(page)
    if blocks:
        return blocks, None
    if not needs_ocr(page):
        return [], "blank page (no text layer, no image)"
    if ocr is None:
        return [], f"{NO_TEXT_REASON}; {ocr_unused_reason()}"
    dpi, too_large = ocr_resolution(page.rect.width, page.rect.height, ocr)
    if dpi is None:
        return [], f"{NO_TEXT_REASON}; {too_large}"
    try:
        read = _page_blocks(page, ocr_blocks(page, ocr, dpi))
    except Exception as exc:  # noqa: BLE001 -- an OCR failure must not lose the page's report
        return [], f"{NO_TEXT_REASON}; OCR failed: {exc}"
    if not legible(" ".join(block.text for block in read)):
        return [], f"{NO_TEXT_REASON}; OCR found no legible text"
    return read, "ocr"


def _mupdf_warnings() -> str:
    from nexus_assets.lib.ingest.mupdf import pymupdf

    text = pymupdf.TOOLS.mupdf_warnings(reset=True) or ""
    return "; ".join(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


# What a file that is not a PDF usually is, by its first bytes (for a reason the uploader can act on).
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (e.g. a .docx, .pptx or .odt document)"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document (.doc, .ppt, .xls)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"{\\rtf", "an RTF document"),
    (b"%!PS", "a PostScript file"),
    (b"\x00\x05\x16\x07", "a macOS resource fork (AppleDouble '._' file)"),
)
# The PDF header may follow some bytes of junk, and the %%EOF marker be followed by some: both within
# 1,024 bytes of their end of the file, as Acrobat accepts them (PDF 32000-1, 7.5.2 and 7.5.5).
SNIFF_BYTES = 1024


def _what_it_is(head: bytes) -> str:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    text = head.lstrip()[:200]
    if text.lower().startswith((b"<!doctype html", b"<html")):
        return "an HTML page (often a download's error page saved as .pdf)"
    # The file's own bytes are never quoted: reasons land in tables, logs and the UI, and a careless upload
    # (a configuration file, a key) must not be copied there.
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown kind"
    if decoded and sum(c.isprintable() or c.isspace() for c in decoded) / len(decoded) > 0.95:
        return "plain text"
    return "binary data of an unknown kind"


def sniff_pdf(path: Path, limits: ExtractionLimits) -> tuple[FileStatus, str] | None:
    """(status, reason) for a file refused before MuPDF opens it, None when it may be a PDF.

    Only the size and at most 2 KB of the file are read: an empty upload, a file over the size limit,
    something else named `.pdf`, or a PDF without its end-of-file marker (cut short in transfer: MuPDF
    would "repair" it into the pages before the cut, and half a book would be published as the book).
    """
    size = path.stat().st_size
    if size == 0:
        return "empty", "zero-byte file: the upload is empty; upload the PDF again"
    if size > limits.max_bytes:
        return "too_large", (
            f"{size / MIB:.1f} MiB, over the limit of {limits.max_bytes / MIB:g} MiB per file "
            f"({MAX_PDF_MB_ENV}): not opened; split the PDF or raise the limit"
        )
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
        handle.seek(max(0, size - SNIFF_BYTES))
        tail = handle.read(SNIFF_BYTES)
    if b"%PDF-" not in head:
        return "not_pdf", (
            f"not a PDF although named .pdf: {_what_it_is(head)} (a PDF starts with %PDF-); "
            "export or save it as PDF and upload it again"
        )
    if b"%%EOF" not in tail:
        return "truncated", (
            f"truncated: the file ends after {size:,} bytes without the %%EOF end-of-file "
            "marker (an interrupted upload or download); upload the complete file again"
        )
    return None


def apply_limits(result: FileExtraction, limits: ExtractionLimits) -> FileExtraction:
    """A cached extraction judged against the current limits (which may be lower than when it was made)."""
    if result.size > limits.max_bytes:
        return FileExtraction(
            result.file,
            result.sha256,
            "too_large",
            (
                f"{result.size / MIB:.1f} MiB, over the limit of {limits.max_bytes / MIB:g} MiB per file "
                f"({MAX_PDF_MB_ENV}): not indexed; split the PDF or raise the limit"
            ),
            size=result.size,
        )
    if result.page_count > limits.max_pages:
        return _too_many_pages(result.file, result.sha256, result.page_count, limits, result.size)
    read = PdfRead(result.file, result.sha256, result.size, result.page_count, 0, [])
    for page in result.pages:
        if len(page.text) > limits.max_page_chars:
            return _too_much_text(read, f"page {page.page} alone yields {len(page.text):,} characters", "page", limits)
    total = sum(len(page.text) for page in result.pages)
    if total > limits.max_file_chars:
        return _too_much_text(read, f"its pages yield {total:,} characters", "file", limits)
    return result


def _too_many_pages(name: str, sha256: str, pages: int, limits: ExtractionLimits, size: int) -> FileExtraction:
    return FileExtraction(
        name,
        sha256,
        "too_many_pages",
        (
            f"{pages:,} pages, over the limit of {limits.max_pages:,} pages per file ({MAX_PDF_PAGES_ENV}): not read; "
            "split the PDF or raise the limit"
        ),
        page_count=pages,
        size=size,
    )


def _no_text_detail(pages: list[PageText]) -> str:
    """Why a file's pages have no text, in a few words (the pages' own reasons, deduplicated)."""
    reasons = dict.fromkeys(p.reason.removeprefix(NO_TEXT_REASON).removeprefix("; ") for p in pages if p.reason)
    return "; ".join(r for r in reasons if r)[:400]


@dataclass
class PdfRead:
    """A file's pages as read, before cleaning: the whole file, or a part of it read in another process.

    Cleaning (running headers, hyphenation) looks across pages, so parts are merged first (`merge`) and
    cleaned once (`finish`): a file read in parts gives the same extraction as one read whole.
    """

    file: str
    sha256: str
    size: int
    page_count: int
    first: int  # index of the first page in `blocks`
    blocks: list[list[Block]]
    untexted: dict[int, str] = field(default_factory=dict)  # page index -> "ocr" or why it has no text
    errors: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @staticmethod
    def merge(parts: Sequence[PdfRead]) -> PdfRead:
        """The parts of one file (in any order) as one read; notes said by several parts kept once."""
        ordered = sorted(parts, key=lambda part: part.first)
        head = ordered[0]
        return PdfRead(
            head.file,
            head.sha256,
            head.size,
            head.page_count,
            head.first,
            [blocks for part in ordered for blocks in part.blocks],
            {k: v for part in ordered for k, v in part.untexted.items()},
            {k: v for part in ordered for k, v in part.errors.items()},
            list(dict.fromkeys(note for part in ordered for note in part.notes)),
        )

    def finish(self, ocr: OcrEngine | None, limits: ExtractionLimits | None = None) -> FileExtraction:
        """Clean the pages across the file and give each its status: the file's extraction.

        The parts of a file read in parallel each kept within the file's text budget; merged, they are
        judged against it again."""
        limits = limits or ExtractionLimits()
        total = sum(len(block.text) for blocks in self.blocks for block in blocks)
        if total > limits.max_file_chars:
            return _too_much_text(self, f"its pages yield {total:,} characters", "file", limits)
        cleaned, removed = clean_document_report(self.blocks)
        pages = []
        for index, text in enumerate(cleaned, self.first):
            if index in self.errors:
                pages.append(PageText(index + 1, "", "error", self.errors[index]))
            elif text and self.untexted.get(index) == "ocr":
                languages = ocr.languages if ocr else "?"
                pages.append(PageText(index + 1, text, "ocr", f"no text layer; read by OCR ({languages})"))
            elif text and _has_word_characters(text):
                pages.append(PageText(index + 1, text, "ok"))
            elif text:  # a text layer of dots, symbols or invisible characters: nothing to index or search
                pages.append(PageText(index + 1, "", "no_text", WORDLESS_REASON))
            else:
                why = self.untexted.get(index) or NO_TEXT_REASON
                if why == "ocr":
                    why = f"{NO_TEXT_REASON}; OCR read only running headers or footers"
                pages.append(PageText(index + 1, "", "no_text", why))
        notes = list(self.notes) + ([removed.note()] if removed else [])
        result = FileExtraction(
            self.file, self.sha256, "ok", page_count=self.page_count, pages=pages, notes=notes, size=self.size
        )
        if result.ocr_pages:
            notes.append(f"{result.ocr_pages} of {self.page_count} pages read by OCR")
        if result.text_pages == 0:
            result.status = "no_text_layer"
            detail = _no_text_detail(pages) or ("OCR found no legible text" if ocr else ocr_unused_reason())
            count = self.page_count
            which = f"none of the {count} pages has a" if count > 1 else "its only page has no"
            result.reason = f"{which} text layer (scanned document); it needs OCR before it can be indexed ({detail})"
        return result


def extract_pdf(
    path: Path, sha256: str | None = None, ocr: OcrEngine | None = None, limits: ExtractionLimits | None = None
) -> FileExtraction:
    """Extract and clean the text of every page of `path`, OCRing scanned pages when `ocr` is given.

    An empty user password is tried first for encrypted files (many textbooks are "encrypted" only
    to restrict printing). Pages with no text layer that OCR cannot read (or without OCR) are kept
    with status `no_text` and a reason, so scanned pages are reported, never silently dropped.
    `limits` (default: `ExtractionLimits()`) bound the file's size, pages and extraction time; the time
    is checked before each page, and a file over it yields status `timeout` and no pages.
    """
    read = read_pdf(path, sha256, ocr, limits)
    return read if isinstance(read, FileExtraction) else read.finish(ocr, limits)


def read_pdf(
    path: Path,
    sha256: str | None = None,
    ocr: OcrEngine | None = None,
    limits: ExtractionLimits | None = None,
    pages: tuple[int, int] | None = None,
) -> FileExtraction | PdfRead:
    """Read the pages `[start, stop)` of `path` (all by default), uncleaned; a FileExtraction when refused.

    The file's checks (size, header, password, page tree, page count) run for a part too, so each part
    refuses a bad file as the whole would. The time limit applies to each part: parts run in parallel.

    The bytes read are the bytes hashed: the file is opened once and every later read (the hash, the sniff,
    MuPDF) goes through that open file (`/proc/self/fd/N`), so a file renamed over it meanwhile is not read;
    when its hash is not `sha256` (the listing's), or the open file changes while it is read, the result is
    `changed`, never text under a hash it was not read from (which the cache would then serve for good).
    """
    limits = limits or ExtractionLimits()
    with path.open("rb") as handle:
        pinned = _pinned(path, handle.fileno())
        before = os.fstat(handle.fileno())
        digest = hashing.sha256_file(pinned)
        if sha256 and digest != sha256:
            return _changed(path.name, sha256, digest, before.st_size, "since the build listed it")
        result = _read_opened(pinned, path.name, digest, ocr, limits, pages)
        after = os.fstat(handle.fileno())
        # Size and mtime: a write changes them; a rename over the name does not (it changes the ctime only).
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            return _changed(path.name, sha256 or digest, "(rewritten in place)", after.st_size, "while it was read")
        return result


def _pinned(path: Path, fd: int) -> Path:
    """A path to the file open as `fd` (Linux's /proc/self/fd), whatever `path` names by now; `path` elsewhere."""
    proc = Path(f"/proc/self/fd/{fd}")
    return proc if proc.exists() else path


def _changed(name: str, listed: str, read: str, size: int, when: str) -> FileExtraction:
    return FileExtraction(
        name,
        listed,
        "changed",
        (
            f"the file changed {when} (sha256 {listed[:12]}… when listed, {read[:12]}… when read: re-uploaded "
            "or rewritten during the build): not indexed in this build, so no package pairs one upload's hash with "
            "another's text; the next build reads it again"
        ),
        size=size,
    )


def _read_opened(
    path: Path,
    name: str,
    digest: str,
    ocr: OcrEngine | None,
    limits: ExtractionLimits,
    pages: tuple[int, int] | None,
) -> FileExtraction | PdfRead:
    """`read_pdf`'s reading of the open file at `path` (named `name`, of sha256 `digest`)."""
    size = path.stat().st_size
    refused = sniff_pdf(path, limits)
    if refused:
        return FileExtraction(name, digest, refused[0], refused[1], size=size)
    from nexus_assets.lib.ingest.mupdf import pymupdf

    started = time.monotonic()  # the file's own time: not the (first) import of PyMuPDF
    _mupdf_warnings()  # drop warnings left by earlier files
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:  # noqa: BLE001 -- any open failure means the file is unusable
        return FileExtraction(name, digest, "malformed", f"cannot be opened as a PDF: {exc}", size=size)
    with doc:
        notes: list[str] = []
        if doc.needs_pass:
            if not doc.authenticate(""):
                return FileExtraction(
                    name,
                    digest,
                    "encrypted",
                    "encrypted and a user password is required (the empty password was refused); "
                    "upload an unencrypted copy",
                    page_count=doc.page_count,
                    size=size,
                )
            notes.append("encrypted; opened with the empty user password")
        elif (doc.metadata or {}).get("encryption"):
            notes.append(f"encrypted ({doc.metadata['encryption']}); opened with the empty user password")
        if doc.page_count == 0:
            warnings = _mupdf_warnings()
            return FileExtraction(
                name,
                digest,
                "malformed",
                "no pages could be read (broken page tree)" + (f"; MuPDF: {warnings}" if warnings else ""),
                size=size,
            )
        if doc.page_count > limits.max_pages:
            return _too_many_pages(name, digest, doc.page_count, limits, size)
        start, stop = (max(0, pages[0]), min(doc.page_count, pages[1])) if pages else (0, doc.page_count)
        read = PdfRead(name, digest, size, doc.page_count, start, [], notes=notes)
        total = 0  # characters read so far: reading stops at the first page over a budget, not at the end
        for index in range(start, stop):
            elapsed = time.monotonic() - started
            if elapsed > limits.max_seconds:
                return _timed_out(read, index, stop, elapsed, limits)
            try:
                blocks, note = _read_page(doc[index], ocr)
            except Exception as exc:  # noqa: BLE001 -- a broken page must not lose the others
                if _out_of_memory(exc):
                    return _over_memory(read, index, limits)
                blocks, note = [], None
                read.errors[index] = f"page could not be read: {exc}"
            chars = sum(len(block.text) for block in blocks)
            total += chars
            if chars > limits.max_page_chars:
                return _too_much_text(read, f"page {index + 1} alone yields {chars:,} characters", "page", limits)
            if total > limits.max_file_chars:
                return _too_much_text(read, f"pages up to {index + 1} yield {total:,} characters", "file", limits)
            read.blocks.append(blocks)
            if note:
                read.untexted[index] = note
        warnings = _mupdf_warnings()
        if warnings:
            notes.append(f"repaired by MuPDF: {warnings[:300]}")
    return read


def _too_much_text(read: PdfRead, what: str, per: Literal["page", "file"], limits: ExtractionLimits) -> FileExtraction:
    """Refused, not cut: a cut book would be published as if whole (the same rule as `timeout`)."""
    budget, variable = (
        (limits.max_page_chars, MAX_PAGE_CHARS_ENV) if per == "page" else (limits.max_file_chars, MAX_FILE_CHARS_ENV)
    )
    return FileExtraction(
        read.file,
        read.sha256,
        "too_much_text",
        (
            f"{what}, over the budget of {budget:,} characters per {per} ({variable}): reading stopped, "
            "not indexed (a textbook page holds ~5,000; this is repeated or hidden text, or not a book); "
            "fix the PDF or raise the budget"
        ),
        page_count=read.page_count,
        size=read.size,
    )


def _out_of_memory(exc: BaseException) -> bool:
    """MemoryError, or MuPDF's own out-of-memory error (a failed malloc under the worker's RLIMIT_AS)."""
    if isinstance(exc, MemoryError):
        return True
    text = f"{type(exc).__name__} {exc}".lower()  # MuPDF: "code=2: calloc (4104 x 1 bytes) failed"
    return "fzerrormemory" in text or "out of memory" in text or ("alloc" in text and "failed" in text)


def _over_memory(read: PdfRead, index: int, limits: ExtractionLimits) -> FileExtraction:
    return FileExtraction(
        read.file,
        read.sha256,
        "out_of_memory",
        (
            f"page {index + 1} needed more memory than the extraction budget of {limits.max_memory_mb:,} MiB per "
            f"worker ({MAX_EXTRACTION_MEMORY_MB_ENV}): not indexed (a compressed stream or image that decodes to "
            "gigabytes); fix the PDF or raise the budget"
        ),
        page_count=read.page_count,
        size=read.size,
    )


def _timed_out(read: PdfRead, index: int, stop: int, elapsed: float, limits: ExtractionLimits) -> FileExtraction:
    ocred = sum(1 for note in read.untexted.values() if note == "ocr")
    slow = f"; {ocred} page(s) OCRed so far (OCR is the slow part)" if ocred else ""
    part = (
        f" (pages {read.first + 1}-{stop}, one part of the file read in parallel)"
        if stop - read.first < read.page_count
        else ""
    )
    return FileExtraction(
        read.file,
        read.sha256,
        "timeout",
        (
            f"extraction stopped after {elapsed:.1f} s, over the limit of {limits.max_seconds:g} s "
            f"per file ({MAX_EXTRACTION_SECONDS_ENV}), with {index - read.first} of {stop - read.first} pages "
            f"read{part}{slow}: not indexed (part of a book is never published as the book); split the PDF or "
            "raise the limit"
        ),
        page_count=read.page_count,
        size=read.size,
    )


# Bump when extraction or cleaning changes what a file yields in a way the source digest below
# would not show (e.g. a behaviour change in a dependency other than PyMuPDF).
EXTRACTOR_VERSION = 2  # 2: layout-based boilerplate removal (boilerplate.py)
_CODE_FILES = ("pdf_extraction.py", "text_cleaning.py", "boilerplate.py", "ocr.py")


@cache
def extractor_version() -> str:
    """Version of what extraction yields: the constant, PyMuPDF's version and a digest of this code.

    The code digest makes any edit to extraction or cleaning invalidate cached results, so a stale
    cache can never hide a fix.
    """
    here = Path(__file__).resolve().parent
    digest = hashing.new()
    for name in _CODE_FILES:
        hashing.update_from_file(digest, here / name)
    return f"v{EXTRACTOR_VERSION}-pymupdf{metadata.version('pymupdf')}-{digest.hexdigest()[:12]}"


def extraction_cache(cache_root: Path, ocr: OcrEngine | None = None) -> BlobCache:
    """Cached extractions of this code with this OCR setting: a no-OCR result never serves an OCR run."""
    return BlobCache(cache_root, f"extraction-{cache_key(ocr)}-{extractor_version()}")


def extraction_to_bytes(result: FileExtraction) -> bytes:
    """Deterministic gzip'd JSON (fixed gzip mtime: same extraction, same bytes)."""
    body = json.dumps(asdict(result), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    return gzip.compress(body, compresslevel=6, mtime=0)


def extraction_from_bytes(data: bytes, file: str) -> FileExtraction:
    """Inverse of `extraction_to_bytes`; `file` renames it (the same bytes may be uploaded under another name)."""
    raw = json.loads(gzip.decompress(data))
    pages = [PageText(**p) for p in raw.pop("pages")]
    raw["file"] = file
    return FileExtraction(**raw, pages=pages)


# What extraction costs, to plan the worker processes (measured on 2-core EPYC and Xeon machines): a
# text-layer page is read and cleaned in 2-4 ms, a scanned page takes 3-6 s of OCR at 300 dpi, in one
# thread (Tesseract inside MuPDF). Starting two worker programs, each importing PyMuPDF, costs ~1.5 s:
# below POOL_MIN_SECONDS of estimated work one process is faster (340 text pages: 0.6-1.3 s serial,
# 1.7-1.9 s with the pool).
TEXT_PAGE_S = 0.003
OCR_PAGE_S = 5.0
POOL_MIN_SECONDS = 3.0


@dataclass(frozen=True)
class FilePlan:
    """The work one file will be: its pages, and those that look scanned (OCR, 1,000 times the cost).

    An estimate from the page resources (no font, an image), read without parsing the pages' content:
    it only decides how the work is spread, never what a page yields.
    """

    pages: int  # 0 for a file refused on opening (cheap to "extract")
    scans: tuple[int, ...] = ()  # indices of the pages that look scanned, when OCR is on

    def seconds(self, start: int = 0, stop: int | None = None) -> float:
        stop = self.pages if stop is None else stop
        return (stop - start) * TEXT_PAGE_S + sum(start <= i < stop for i in self.scans) * OCR_PAGE_S

    def parts(self, workers: int) -> list[tuple[int, int] | None]:
        """Page ranges to read in parallel, each with an equal share of the scanned pages; [None]: whole.

        OCR runs in one thread: a scanned book read whole keeps one core busy while the others idle."""
        parts = min(workers, len(self.scans))
        if parts < 2:
            return [None]
        cuts = [self.scans[len(self.scans) * k // parts] for k in range(1, parts)]
        bounds = [0, *cuts, self.pages]
        return [(start, stop) for start, stop in zip(bounds, bounds[1:], strict=False)]


def plan_file(path: Path, limits: ExtractionLimits, ocr: OcrEngine | None) -> FilePlan:
    """How much work `path` will be (see FilePlan); pages are only counted scanned when OCR is on."""
    from nexus_assets.lib.ingest.mupdf import pymupdf

    try:
        if sniff_pdf(path, limits):
            return FilePlan(0)
        with pymupdf.open(path, filetype="pdf") as doc:
            if doc.needs_pass and not doc.authenticate(""):
                return FilePlan(0)
            if doc.page_count > limits.max_pages:
                return FilePlan(0)
            if ocr is None:
                return FilePlan(doc.page_count)
            scans = tuple(i for i in range(doc.page_count) if not doc.get_page_fonts(i) and doc.get_page_images(i))
            return FilePlan(doc.page_count, scans)
    except Exception:  # noqa: BLE001 -- a file that cannot be opened or planned is cheap to "extract"
        return FilePlan(0)


def worker_count(jobs: int, seconds: float) -> int:
    """Processes for `jobs` tasks estimated at `seconds` of work in all: 1 unless the pool pays for itself."""
    if jobs < 2 or seconds < POOL_MIN_SECONDS:
        return 1
    return max(1, min(cpu_threads(), jobs))


@dataclass(frozen=True)
class ExtractionStats:
    files: int
    cached: int
    extracted: int
    workers: int


# --- the worker pool: one long-lived process per core, each killable on its own --------------------------------
# Not a ProcessPoolExecutor: its tasks cannot be cancelled once running, and one worker dying breaks the
# whole pool. Here a worker stuck past the time limit is killed and replaced, and a worker that dies on a
# file (a MuPDF crash, the OOM killer) costs that file its status, not the partition its build.

# (file, sha256, OCR, limits, page range or None for the whole file)
Task = tuple[Path, str, "OcrEngine | None", ExtractionLimits, "tuple[int, int] | None"]


def limit_memory(megabytes: int) -> None:
    """Cap this process's address space (RLIMIT_AS, soft limit) at `megabytes` MiB; 0 lifts the soft cap.

    Only ever called in an extraction worker: an allocation past the cap fails (MemoryError in Python, an
    out-of-memory error in MuPDF), so one file can cost its worker, never the machine. RLIMIT_AS needs no
    cgroup and works unprivileged on Linux; the hard limit is left as it is, so each task may set its own.
    """
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = megabytes * MIB if megabytes > 0 else hard
    if hard != resource.RLIM_INFINITY and soft > hard:
        soft = hard
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _worker_main(conn: Connection) -> None:
    conn.send("ready")
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        path, sha256, ocr, limits, pages = task
        limit_memory(limits.max_memory_mb)
        try:
            result: FileExtraction | PdfRead | Exception = (
                extract_pdf(path, sha256, ocr, limits) if pages is None else read_pdf(path, sha256, ocr, limits, pages)
            )
        except MemoryError:  # outside a page (opening the file, cleaning): the file's status, not a bug
            result = _over_memory(PdfRead(path.name, sha256, 0, 0, 0, []), 0, limits)
        except Exception as exc:  # noqa: BLE001 -- a bug, not a bad file: raised again in the parent
            result = exc
        conn.send(result)


class PoolUnavailable(RuntimeError):
    """Worker processes cannot be started here (the interpreter cannot be run as a program, say)."""


@dataclass
class _Worker:
    process: _Spawned
    conn: Connection

    def stop(self, kill: bool = False) -> None:
        proc = self.process
        if not kill:
            try:
                self.conn.send(None)
            except (OSError, ValueError):
                kill = True
        if not kill:
            proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        self.conn.close()


class _Spawned:
    """A worker run as a program (`subprocess`), with the process interface `_Worker` uses.

    A daemon process (a celery prefork child, say) may not start multiprocessing children, but it may run
    programs: so the memory budget and the hard time limit hold there too (the in-process fallback has neither)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen

    def join(self, timeout: float | None = None) -> None:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        self.popen.kill()

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()  # negative: the signal that ended it, as multiprocessing reports it


def _spawn(target: Callable[[Connection], None]) -> _Worker:
    """A worker process started as `python -c ...`, talking over a socket pair it inherits."""
    parent, child = Pipe(duplex=True)
    fd = child.fileno()
    os.set_inheritable(fd, True)
    root = str(Path(__file__).resolve().parents[3])  # where nexus_assets (and a test's target) is imported from
    code = (
        "import sys; sys.path.insert(0, sys.argv[3]); "
        "from nexus_assets.lib.ingest.pdf_extraction import _spawned_main; _spawned_main()"
    )
    try:
        popen = subprocess.Popen(
            [sys.executable, "-c", code, str(fd), f"{target.__module__}:{target.__qualname__}", root],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
        )
    finally:
        child.close()
    return _Worker(_Spawned(popen), parent)


def _spawned_main() -> None:
    """The program `_spawn` runs: the worker's main function (named by module:qualname) on the inherited socket."""
    import importlib

    fd, ref = int(sys.argv[1]), sys.argv[2]
    module, _, name = ref.partition(":")
    target = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    target(Connection(fd))  # type: ignore[operator]


def _start_workers(count: int, target: Callable[[Connection], None] = _worker_main) -> list[_Worker]:
    """`count` worker programs (`_spawn`), started together, each ready before any is used.

    Programs, not multiprocessing children: a fork would copy a parent that may hold torch's or Dagster's threads,
    a daemon process (a celery prefork child) may not have multiprocessing children at all, and the forkserver
    re-imports the parent's `__main__` in every worker (in a Dagster step process, Dagster itself: measured
    7.0-9.8 s to the first file read against 2.5-4.0 s for a program, Intel Xeon with AMX, 2 cores shared)."""
    started: list[_Worker] = []
    try:
        for _ in range(count):
            started.append(_spawn(target))
        for worker in started:
            if not worker.conn.poll(WORKER_START_TIMEOUT_S) or worker.conn.recv() != "ready":
                raise PoolUnavailable(f"an extraction worker did not start within {WORKER_START_TIMEOUT_S:g} s")
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        for worker in started:
            worker.stop(kill=True)
        if isinstance(exc, PoolUnavailable):
            raise
        raise PoolUnavailable(str(exc) or type(exc).__name__) from exc
    return started


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def run_pool(
    tasks: Sequence[tuple[int, Task]],
    workers: int,
    store: Callable[[int, FileExtraction | PdfRead], None],
    target: Callable[[Connection], None] = _worker_main,
) -> None:
    """Extract `(index, task)` pairs in `workers` processes, calling `store(index, result)` as each ends
    (a FileExtraction for a whole file or a refused one, a PdfRead for a part that was read).

    A task still running `HARD_LIMIT_GRACE_S` after its file's time limit has its worker killed (status
    `timeout`); a worker that dies gives its file the status `crashed`; either is replaced. Raises
    PoolUnavailable when no worker can be started: the caller extracts what is left in its own process.
    `target` is the worker's main function (tests substitute misbehaving ones).
    """
    pending = deque(tasks)
    idle = _start_workers(workers, target)
    busy: dict[Connection, tuple[_Worker, int, Task, float]] = {}
    try:
        while pending or busy:
            while pending and idle:
                worker = idle.pop()
                index, task = pending.popleft()
                try:
                    worker.conn.send(task)
                except (OSError, ValueError):  # it died while idle: the task goes to another one
                    pending.appendleft((index, task))
                    worker.stop(kill=True)
                    idle.extend(_replacement(target))
                    continue
                busy[worker.conn] = (worker, index, task, time.monotonic())
            if not busy:
                raise PoolUnavailable("no extraction worker is left (none could be replaced)")
            now = time.monotonic()
            next_deadline = min(
                started + task[3].max_seconds + HARD_LIMIT_GRACE_S for _, _, task, started in busy.values()
            )
            for conn in wait(list(busy), timeout=max(0.0, next_deadline - now)):
                worker, index, task, started = busy.pop(conn)  # type: ignore[index]
                try:
                    result = conn.recv()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    worker.process.join(5)
                    code = worker.process.exitcode
                    worker.stop(kill=True)
                    store(
                        index,
                        FileExtraction(
                            task[0].name,
                            task[1],
                            "crashed",
                            (
                                f"the extraction process died while reading this file ({_exit_text(code)}): "
                                "not indexed; the file may trigger a bug in MuPDF, or the machine ran out of memory"
                            ),
                        ),
                    )
                    if pending:
                        idle.extend(_replacement(target))
                    continue
                idle.append(worker)
                if isinstance(result, Exception):
                    raise result
                store(index, result)
            now = time.monotonic()
            for conn, (worker, index, task, started) in list(busy.items()):
                limit = task[3].max_seconds
                if now - started > limit + HARD_LIMIT_GRACE_S:
                    del busy[conn]
                    worker.stop(kill=True)
                    store(
                        index,
                        FileExtraction(
                            task[0].name,
                            task[1],
                            "timeout",
                            (
                                f"extraction killed after {now - started:.1f} s, over the limit of {limit:g} s "
                                f"per file ({MAX_EXTRACTION_SECONDS_ENV}) plus {HARD_LIMIT_GRACE_S:g} s of grace: a "
                                "single page (or opening the file) never finished; not indexed; split the PDF or "
                                "raise the limit"
                            ),
                            size=task[0].stat().st_size if task[0].exists() else 0,
                        ),
                    )
                    if pending:
                        idle.extend(_replacement(target))
    finally:
        for worker in idle:
            worker.stop()
        for worker, *_ in busy.values():
            worker.stop(kill=True)


def _replacement(target: Callable[[Connection], None]) -> list[_Worker]:
    """A worker in place of one killed or dead; none if it cannot start (the others carry on)."""
    try:
        return _start_workers(1, target)
    except PoolUnavailable as exc:
        log.warning("could not replace an extraction worker (%s); going on with fewer", exc)
        return []


def extract_pdfs(
    items: Sequence[tuple[str, str, Callable[[], Path]]],
    cache: BlobCache | None = None,
    on_result: Callable[[FileExtraction, bool], None] | None = None,
    ocr: OcrEngine | None = None,
    limits: ExtractionLimits | None = None,
) -> tuple[list[FileExtraction], ExtractionStats]:
    """Extract `(file name, sha256, local path getter)` items, in order, reusing cached results.

    The path getter is called only for files that miss the cache (in aws mode it downloads the
    PDF). Misses run in a process pool sized to the cores when the estimated work pays for it (see
    `plan_file`), a file with scanned pages split into page ranges read in parallel; results are
    written to the cache as they arrive (except outcomes of the limits, see `UNCACHED_STATUSES`), and
    cached results are judged against the current `limits`. `on_result(result, from_cache)` reports
    each file. `cache` must be `extraction_cache(root, ocr)` for the same `ocr`.
    """
    limits = limits or ExtractionLimits()
    results: list[FileExtraction | None] = [None] * len(items)
    misses: list[tuple[int, Path]] = []
    for index, (file, sha256, local_path) in enumerate(items):
        data = cache.get(sha256) if cache else None
        if data is not None:
            try:
                results[index] = apply_limits(extraction_from_bytes(data, file), limits)
            except (ValueError, TypeError, KeyError, OSError, EOFError):
                cache.discard(sha256)  # written by an incompatible version: extract again
        if results[index] is None:
            misses.append((index, local_path()))
        elif on_result:
            on_result(results[index], True)

    def store(index: int, result: FileExtraction) -> None:
        result.file = items[index][0]
        results[index] = result
        if cache and result.status not in UNCACHED_STATUSES:
            cache.put(items[index][1], extraction_to_bytes(result))
        if on_result:
            on_result(result, False)

    # Plan only where it can change something: several files, or one that OCR may split.
    plans = {index: plan_file(path, limits, ocr) for index, path in misses} if len(misses) > 1 or ocr else {}
    possible = sum(len(plan.parts(cpu_threads())) for plan in plans.values())
    workers = worker_count(possible, sum(plan.seconds() for plan in plans.values()))
    # The memory budget can only be set in a process of its own: with one, every file read goes to a worker
    # (3.6-4.4 s to start one and import PyMuPDF on a busy 2-core EPYC), however little work there is: a deflate
    # bomb is a small file.
    if workers > 1 or (misses and limits.max_memory_mb):
        tasks: list[tuple[int, Task]] = []
        owner: list[int] = []  # task number -> index of its file in `items`
        cost: list[float] = []
        for index, path in misses:
            plan = plans.get(index, FilePlan(0))
            for part in plan.parts(workers):
                owner.append(index)
                cost.append(plan.seconds(*part) if part else plan.seconds())
                tasks.append((len(tasks), (path, items[index][1], ocr, limits, part)))
        tasks.sort(key=lambda task: -cost[task[0]])  # the longest first: no core left alone with a big book
        expected = Counter(owner)
        parts_read: dict[int, list[PdfRead]] = defaultdict(list)

        def collect(number: int, result: FileExtraction | PdfRead) -> None:
            index = owner[number]
            if results[index] is not None:
                return  # another part of the file already failed it
            if isinstance(result, FileExtraction):
                parts_read.pop(index, None)
                store(index, result)
                return
            parts_read[index].append(result)
            if len(parts_read[index]) == expected[index]:
                store(index, PdfRead.merge(parts_read.pop(index)).finish(ocr, limits))

        try:
            run_pool(tasks, workers, collect)
        except PoolUnavailable as exc:
            # No worker processes here (no program could be started): one process does the rest.
            log.warning("PDF extraction pool failed (%s); extracting in this process", exc)
            workers = 1
    for index, path in misses:
        if results[index] is None:
            store(index, extract_pdf(path, items[index][1], ocr, limits))
    done = [r for r in results if r is not None]
    return done, ExtractionStats(len(items), len(items) - len(misses), len(misses), workers)
