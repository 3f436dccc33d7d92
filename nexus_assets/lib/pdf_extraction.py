"""PDF text extraction with PyMuPDF, page by page, with a status per file.

Uploaded PDFs are messy: encrypted, broken, scanned. Extraction never raises for a bad file; it
returns a `FileExtraction` whose `status` says what happened and whose `reason` a data engineer can
act on, so one bad file never fails its partition.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pymupdf

from nexus_assets.lib.text_cleaning import MARGIN_SHARE, Block, clean_document

FileStatus = Literal["ok", "encrypted", "malformed", "no_text_layer"]
PageStatus = Literal["ok", "no_text", "error"]


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
        return sum(1 for p in self.pages if p.status == "ok")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def _page_blocks(page: pymupdf.Page) -> list[Block]:
    """Text blocks in content-stream order, each flagged when it sits in the top or bottom margin."""
    height = page.rect.height or 1.0
    top, bottom = page.rect.y0 + height * MARGIN_SHARE, page.rect.y1 - height * MARGIN_SHARE
    return [
        (b[4], b[3] <= top or b[1] >= bottom)
        for b in page.get_text("blocks")
        if b[6] == 0 and b[4].strip()
    ]


def _mupdf_warnings() -> str:
    text = pymupdf.TOOLS.mupdf_warnings(reset=True) or ""
    return "; ".join(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


def extract_pdf(path: Path, sha256: str | None = None) -> FileExtraction:
    """Extract and clean the text of every page of `path`.

    An empty user password is tried first for encrypted files (many textbooks are "encrypted" only
    to restrict printing). Pages with no text layer are kept with status `no_text` so that scanned
    pages are reported, never silently dropped.
    """
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
        for index in range(doc.page_count):
            try:
                raw_pages.append(_page_blocks(doc[index]))
            except Exception as exc:  # noqa: BLE001 -- a broken page must not lose the others
                raw_pages.append([])
                errors[index] = f"page could not be read: {exc}"
        warnings = _mupdf_warnings()
        if warnings:
            notes.append(f"repaired by MuPDF: {warnings[:300]}")
        page_count = doc.page_count

    cleaned = clean_document(raw_pages)
    pages = []
    for index, text in enumerate(cleaned):
        if index in errors:
            pages.append(PageText(index + 1, "", "error", errors[index]))
        elif text:
            pages.append(PageText(index + 1, text, "ok"))
        else:
            pages.append(PageText(index + 1, "", "no_text", "no text layer (scanned or image-only page)"))
    result = FileExtraction(name, digest, "ok", page_count=page_count, pages=pages, notes=notes)
    if result.text_pages == 0:
        result.status = "no_text_layer"
        result.reason = (
            f"none of the {page_count} pages has a text layer (scanned document); "
            "it needs OCR before it can be indexed"
        )
    return result
