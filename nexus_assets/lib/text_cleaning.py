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

_CONTROL_RE = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u00ad\u200b\ufeff]")
_HYPHEN_BREAK_RE = re.compile(r"([^\W\d_]+)[-\u2010\u2011][ \t]*\n[ \t]*([^\W\d_]+)")
_SPACES_RE = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u3000]+")
_DIGITS_RE = re.compile(r"\d+")

# A block is a running header/footer candidate when it is among the first or last blocks of a
# page and repeats (digits ignored) on at least this share of the file's pages.
EDGE_BLOCKS = 2
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


def repeated_edge_blocks(pages: list[list[str]]) -> set[str]:
    """Signatures of blocks that repeat at the top or bottom of many pages (headers, footers)."""
    if len(pages) < MIN_PAGES_FOR_REPEATS:
        return set()
    counts: Counter[str] = Counter()
    for blocks in pages:
        edges = blocks[:EDGE_BLOCKS] + blocks[-EDGE_BLOCKS:]
        counts.update({_signature(b) for b in edges if len(b) <= MAX_HEADER_CHARS})
    threshold = max(MIN_PAGES_FOR_REPEATS, REPEAT_SHARE * len(pages))
    return {sig for sig, count in counts.items() if count >= threshold}


def clean_document(raw_pages: list[list[str]]) -> list[str]:
    """Clean every page of one file; returns one string per page, paragraphs split by blank lines."""
    pages = [[clean_block(b) for b in blocks] for blocks in raw_pages]
    pages = [[b for b in blocks if b] for blocks in pages]
    repeated = repeated_edge_blocks(pages)
    cleaned = []
    for blocks in pages:
        last = len(blocks) - 1
        kept = [
            b for i, b in enumerate(blocks)
            if not ((i < EDGE_BLOCKS or i > last - EDGE_BLOCKS) and _signature(b) in repeated)
        ]
        cleaned.append("\n\n".join(kept))
    return cleaned
