"""Cleaning of extracted page text before chunking.

Three things hurt retrieval in textbook PDFs: compatibility characters (ligatures, full-width
forms), words hyphenated across line ends, and boilerplate repeated on many pages (running headers
and footers, licence boxes, margin strips: see `boilerplate`), which would otherwise dominate many
chunks. Cleaning works on the text blocks of each page so
paragraph boundaries survive as blank lines for the chunker.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from nexus_assets.lib.ingest.boilerplate import MARGIN_SHARE, Block, BoilerplateReport, as_block, find_boilerplate

# Removed from the indexed text: C0 and C1 controls, DEL, soft hyphens, zero-width spaces, byte-order marks, and
# Unicode tag characters (U+E0000-E007F). None carries meaning in a textbook's text, and tags are invisible
# copies of ASCII: "ASCII smuggling" would carry hidden instructions inside a chunk to any language model the
# package feeds. Bidirectional controls (U+202A-202E, U+2066-2069) are kept: Arabic passages (religion books)
# may need them; every display escapes them (lib/core/escaping.py).
_CONTROL_RE = re.compile(
    r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u00ad\u200b\ufeff\U000e0000-\U000e007f]"
)
_HYPHEN_BREAK_RE = re.compile(r"([^\W\d_]+)[-\u2010\u2011][ \t]*\n[ \t]*([^\W\d_]+)")
_SPACES_RE = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u3000]+")


def normalize(text: str) -> str:
    """NFKC plus removal of control characters (C0, C1), soft hyphens, zero-width marks and tag characters."""
    return _CONTROL_RE.sub("", unicodedata.normalize("NFKC", text))


def join_hyphenation(text: str) -> str:
    """Join `infor-\\nmatika` into `informatika`.

    Kept hyphenated: compounds whose second part is capitalised (`Jawa-\\nBali`) and Indonesian
    reduplication (`anak-\\nanak`), where the hyphen is part of the word.
    """

    def repl(match: re.Match[str]) -> str:
        head, tail = match.group(1), match.group(2)
        if not tail[0].islower() or tail.lower().startswith(head.lower()):
            return f"{head}-{tail}"
        return head + tail

    return _HYPHEN_BREAK_RE.sub(repl, text)


def clean_block(block: str) -> str:
    """One paragraph: normalized, hyphenation joined, line breaks folded into spaces."""
    text = join_hyphenation(normalize(block))
    lines = (_SPACES_RE.sub(" ", line).strip() for line in text.splitlines())
    return " ".join(line for line in lines if line)


def clean_document_report(raw_pages: Sequence[Sequence[Sequence]]) -> tuple[list[str], BoilerplateReport]:
    """Clean every page of one file; returns one string per page (paragraphs split by blank lines) and
    what boilerplate was removed (`boilerplate.find_boilerplate`: running headers and footers, repeated
    blocks, text at the same place on many pages, rotated or side-margin strips).

    Each block is a `boilerplate.Block` (or the older `(text, in_margin)` pair, whose position is unknown).
    """
    pages = [[(b := as_block(raw))._replace(text=normalize(b.text)) for raw in blocks] for blocks in raw_pages]
    kept, report = find_boilerplate(pages)
    cleaned = []
    for texts in kept:
        paragraphs = (clean_block(text) for text in texts if text is not None)
        cleaned.append("\n\n".join(p for p in paragraphs if p))
    return cleaned, report


def clean_document(raw_pages: Sequence[Sequence[Sequence]]) -> list[str]:
    """`clean_document_report` without the report."""
    return clean_document_report(raw_pages)[0]


__all__ = ["MARGIN_SHARE", "Block", "clean_block", "clean_document", "clean_document_report", "normalize"]
