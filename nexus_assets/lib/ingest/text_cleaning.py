"""Cleaning of extracted page text before chunking.

Three things hurt retrieval in textbook PDFs: compatibility characters (ligatures, full-width
forms), words hyphenated across line ends, and running headers/footers repeated on every page
(which would otherwise dominate many chunks). Cleaning works on the text blocks of each page so
paragraph boundaries survive as blank lines for the chunker.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

Block = tuple[str, bool]  # (text, lies in the top or bottom page margin)

_CONTROL_RE = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u00ad\u200b\ufeff]")
_HYPHEN_BREAK_RE = re.compile(r"([^\W\d_]+)[-\u2010\u2011][ \t]*\n[ \t]*([^\W\d_]+)")
_SPACES_RE = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u3000]+")
_DIGITS_RE = re.compile(r"\d+")

# A block is a running header/footer candidate when it lies in the top or bottom margin of its
# page and repeats (digits ignored) on at least this share of the file's pages. Position matters:
# a templated line in the body ("Soal 1", "Soal 2") repeats too but is content.
MARGIN_SHARE = 0.12
REPEAT_SHARE = 0.5
MIN_PAGES_FOR_REPEATS = 3
MAX_HEADER_CHARS = 200


def normalize(text: str) -> str:
    """NFKC plus removal of control characters, soft hyphens and zero-width marks."""
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


def _signature(block: str) -> str:
    return _DIGITS_RE.sub("#", block.lower())


def repeated_margin_blocks(pages: list[list[Block]]) -> set[str]:
    """Signatures of margin blocks that repeat on many pages (running headers, footers, page numbers)."""
    if len(pages) < MIN_PAGES_FOR_REPEATS:
        return set()
    counts: Counter[str] = Counter()
    for blocks in pages:
        counts.update({_signature(text) for text, in_margin in blocks if in_margin and len(text) <= MAX_HEADER_CHARS})
    threshold = max(MIN_PAGES_FOR_REPEATS, REPEAT_SHARE * len(pages))
    return {sig for sig, count in counts.items() if count >= threshold}


def clean_document(raw_pages: list[list[Block]]) -> list[str]:
    """Clean every page of one file; returns one string per page, paragraphs split by blank lines.

    Each block is `(text, in_margin)`: `in_margin` says the block lies in the page's top or bottom
    margin (see `MARGIN_SHARE`), where running headers and footers live.
    """
    pages = [[(clean_block(text), in_margin) for text, in_margin in blocks] for blocks in raw_pages]
    pages = [[b for b in blocks if b[0]] for blocks in pages]
    repeated = repeated_margin_blocks(pages)
    return [
        "\n\n".join(text for text, in_margin in blocks if not (in_margin and _signature(text) in repeated))
        for blocks in pages
    ]
