"""PDF text extraction with PyMuPDF, page by page, with a status per file.

Uploaded PDFs are messy: encrypted, broken, scanned. Extraction never raises for a bad file; it
returns a `FileExtraction` whose `status` says what happened and whose `reason` a data engineer can
act on, so one bad file never fails its partition.

An extraction is a pure function of the PDF's bytes and of this code, so results are cached by the
file's sha256 plus `extractor_version()` (see `extract_pdfs`): an unchanged file is never re-read.
Files that miss the cache are spread over a process pool when there is enough work to pay for it.
PyMuPDF is imported only when a file is really opened, so a build with every file cached does
not pay its import.

Pages without a text layer that show an image are OCRed when an `OcrEngine` is given (see
`nexus_assets.lib.ocr`): their status is `ocr`, not `ok`, so OCRed text stays recognisable down to
the chunks. Without OCR they keep status `no_text` and a reason that says why they were not read.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nexus_assets.lib.caches import BlobCache
from nexus_assets.lib.ocr import OcrEngine, cache_key, legible, needs_ocr, ocr_blocks, ocr_unused_reason
from nexus_assets.lib.text_cleaning import MARGIN_SHARE, Block, clean_document

if TYPE_CHECKING:
    import pymupdf

log = logging.getLogger(__name__)

FileStatus = Literal["ok", "encrypted", "malformed", "no_text_layer"]
PageStatus = Literal["ok", "ocr", "no_text", "error"]
# Pages whose text is indexed: from the text layer (`ok`) or read by OCR (`ocr`).
TEXT_STATUSES = ("ok", "ocr")


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

    @property
    def text_pages(self) -> int:
        return sum(1 for p in self.pages if p.status in TEXT_STATUSES)

    @property
    def ocr_pages(self) -> int:
        return sum(1 for p in self.pages if p.status == "ocr")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def _page_blocks(page: pymupdf.Page, raw_blocks: list | None = None) -> list[Block]:
    """Text blocks in content-stream order, each flagged when it sits in the top or bottom margin."""
    height = page.rect.height or 1.0
    top, bottom = page.rect.y0 + height * MARGIN_SHARE, page.rect.y1 - height * MARGIN_SHARE
    return [
        (b[4], b[3] <= top or b[1] >= bottom)
        for b in (page.get_text("blocks") if raw_blocks is None else raw_blocks)
        if b[6] == 0 and b[4].strip()
    ]


NO_TEXT_REASON = "no text layer (scanned or image-only page)"


def _read_page(page: pymupdf.Page, ocr: OcrEngine | None) -> tuple[list[Block], str | None]:
    """The page's blocks and, for a page without a text layer, why it has none or that OCR read it.

    Returns (blocks, None) for a page with a text layer, (OCR blocks, "ocr") for a scan OCR read, and
    ([], reason) otherwise. Only image-bearing pages are OCRed: blank pages would cost seconds for nothing.
    """
    blocks = _page_blocks(page)
    if blocks:
        return blocks, None
    if not needs_ocr(page):
        return [], "blank page (no text layer, no image)"
    if ocr is None:
        return [], f"{NO_TEXT_REASON}; {ocr_unused_reason()}"
    try:
        read = _page_blocks(page, ocr_blocks(page, ocr))
    except Exception as exc:  # noqa: BLE001 -- an OCR failure must not lose the page's report
        return [], f"{NO_TEXT_REASON}; OCR failed: {exc}"
    if not legible(" ".join(text for text, _ in read)):
        return [], f"{NO_TEXT_REASON}; OCR found no legible text"
    return read, "ocr"


def _mupdf_warnings() -> str:
    import pymupdf

    text = pymupdf.TOOLS.mupdf_warnings(reset=True) or ""
    return "; ".join(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


def extract_pdf(path: Path, sha256: str | None = None, ocr: OcrEngine | None = None) -> FileExtraction:
    """Extract and clean the text of every page of `path`, OCRing scanned pages when `ocr` is given.

    An empty user password is tried first for encrypted files (many textbooks are "encrypted" only
    to restrict printing). Pages with no text layer that OCR cannot read (or without OCR) are kept
    with status `no_text` and a reason, so scanned pages are reported, never silently dropped.
    """
    import pymupdf

    name = path.name
    digest = sha256 or sha256_file(path)
    _mupdf_warnings()  # drop warnings left by earlier files
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:  # noqa: BLE001 -- any open failure means the file is unusable
        return FileExtraction(name, digest, "malformed", f"cannot be opened as a PDF: {exc}")
    with doc:
        notes: list[str] = []
        if doc.needs_pass:
            if not doc.authenticate(""):
                return FileExtraction(
                    name, digest, "encrypted",
                    "encrypted and a user password is required (the empty password was refused); "
                    "upload an unencrypted copy", page_count=doc.page_count,
                )
            notes.append("encrypted; opened with the empty user password")
        elif (doc.metadata or {}).get("encryption"):
            notes.append(f"encrypted ({doc.metadata['encryption']}); opened with the empty user password")
        if doc.page_count == 0:
            warnings = _mupdf_warnings()
            return FileExtraction(
                name, digest, "malformed",
                "no pages could be read (broken page tree)" + (f"; MuPDF: {warnings}" if warnings else ""),
            )
        raw_pages: list[list[Block]] = []
        errors: dict[int, str] = {}
        untexted: dict[int, str] = {}  # page index -> "ocr" or why it has no text
        for index in range(doc.page_count):
            try:
                blocks, note = _read_page(doc[index], ocr)
            except Exception as exc:  # noqa: BLE001 -- a broken page must not lose the others
                blocks, note = [], None
                errors[index] = f"page could not be read: {exc}"
            raw_pages.append(blocks)
            if note:
                untexted[index] = note
        warnings = _mupdf_warnings()
        if warnings:
            notes.append(f"repaired by MuPDF: {warnings[:300]}")
        page_count = doc.page_count

    cleaned = clean_document(raw_pages)
    pages = []
    for index, text in enumerate(cleaned):
        if index in errors:
            pages.append(PageText(index + 1, "", "error", errors[index]))
        elif text and untexted.get(index) == "ocr":
            pages.append(PageText(index + 1, text, "ocr", f"no text layer; read by OCR ({ocr.languages})"))
        elif text:
            pages.append(PageText(index + 1, text, "ok"))
        else:
            why = untexted.get(index) or NO_TEXT_REASON
            if why == "ocr":
                why = f"{NO_TEXT_REASON}; OCR read only running headers or footers"
            pages.append(PageText(index + 1, "", "no_text", why))
    result = FileExtraction(name, digest, "ok", page_count=page_count, pages=pages, notes=notes)
    if result.ocr_pages:
        notes.append(f"{result.ocr_pages} of {page_count} pages read by OCR")
    if result.text_pages == 0:
        result.status = "no_text_layer"
        result.reason = (
            f"none of the {page_count} pages has a text layer (scanned document); it needs OCR before it can be "
            f"indexed ({'OCR found no legible text' if ocr else ocr_unused_reason()})"
        )
    return result


# Bump when extraction or cleaning changes what a file yields in a way the source digest below
# would not show (e.g. a behaviour change in a dependency other than PyMuPDF).
EXTRACTOR_VERSION = 1
_CODE_FILES = ("pdf_extraction.py", "text_cleaning.py", "ocr.py")
# Below this many pages to extract, worker processes cost more than they save: starting two
# (forkserver, each importing PyMuPDF) took ~1.5 s here, while one process extracts and cleans
# ~300-600 pages a second (340 pages: 0.6-1.3 s serial, 1.7-1.9 s with the pool).
POOL_MIN_PAGES = 1200


@cache
def extractor_version() -> str:
    """Version of what extraction yields: the constant, PyMuPDF's version and a digest of this code.

    The code digest makes any edit to extraction or cleaning invalidate cached results, so a stale
    cache can never hide a fix.
    """
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in _CODE_FILES:
        digest.update((here / name).read_bytes())
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


def _page_count(path: Path) -> int:
    import pymupdf

    try:
        with pymupdf.open(path, filetype="pdf") as doc:
            return doc.page_count
    except Exception:  # noqa: BLE001 -- a file that cannot be opened is cheap to "extract"
        return 0


def worker_count(jobs: int, pages: int) -> int:
    """Processes for extracting `jobs` files holding `pages` pages: 1 unless the pool pays for itself."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if jobs < 2 or pages < POOL_MIN_PAGES:
        return 1
    return max(1, min(cores, jobs))


@dataclass(frozen=True)
class ExtractionStats:
    files: int
    cached: int
    extracted: int
    workers: int


def extract_pdfs(
    items: Sequence[tuple[str, str, Callable[[], Path]]],
    cache: BlobCache | None = None,
    on_result: Callable[[FileExtraction, bool], None] | None = None,
    ocr: OcrEngine | None = None,
) -> tuple[list[FileExtraction], ExtractionStats]:
    """Extract `(file name, sha256, local path getter)` items, in order, reusing cached results.

    The path getter is called only for files that miss the cache (in aws mode it downloads the
    PDF). Misses run in a process pool sized to the cores when there are enough pages; results are
    written to the cache as they arrive. `on_result(result, from_cache)` reports each file. `cache`
    must be `extraction_cache(root, ocr)` for the same `ocr`.
    """
    results: list[FileExtraction | None] = [None] * len(items)
    misses: list[tuple[int, Path]] = []
    for index, (file, sha256, local_path) in enumerate(items):
        data = cache.get(sha256) if cache else None
        if data is not None:
            try:
                results[index] = extraction_from_bytes(data, file)
            except (ValueError, TypeError, KeyError, OSError, EOFError):
                cache.discard(sha256)  # written by an incompatible version: extract again
        if results[index] is None:
            misses.append((index, local_path()))
        elif on_result:
            on_result(results[index], True)

    def store(index: int, result: FileExtraction) -> None:
        result.file = items[index][0]
        results[index] = result
        if cache:
            cache.put(items[index][1], extraction_to_bytes(result))
        if on_result:
            on_result(result, False)

    pages = sum(_page_count(path) for _, path in misses) if len(misses) > 1 else 0
    workers = worker_count(len(misses), pages)
    if workers > 1:
        try:
            # forkserver: never fork a parent that may hold torch's or Dagster's threads.
            with ProcessPoolExecutor(workers, mp_context=get_context("forkserver")) as pool:
                futures = {index: pool.submit(extract_pdf, path, items[index][1], ocr) for index, path in misses}
                for index, future in futures.items():
                    store(index, future.result())
        except (BrokenProcessPool, OSError, RuntimeError) as exc:
            # No worker processes here (e.g. a __main__ without the import guard): one process does it all.
            log.warning("PDF extraction pool failed (%s); extracting in this process", exc)
            workers = 1
    for index, path in misses:
        if results[index] is None:
            store(index, extract_pdf(path, items[index][1], ocr))
    done = [r for r in results if r is not None]
    return done, ExtractionStats(len(items), len(items) - len(misses), len(misses), workers)
