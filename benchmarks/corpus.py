"""Deterministic benchmark corpus: textbook-like Indonesian PDFs of any size.

The sample corpus (`nexus_assets.lib.ingest.sample_data`) has a handful of pages; benchmarks need hundreds
to thousands. This module reuses its sentences, page layout, running header and footer, and fills
every page to the bottom with paragraphs drawn by a seeded random generator from all of its
topics, with numbers and names varied so that pages (and chunks) are distinct, as in a real book.
Same arguments, same bytes.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from functools import cache
from pathlib import Path

import pymupdf

from nexus_assets.lib.ingest import sample_data as sd

_NAMES = ("Ani", "Budi", "Citra", "Dewi", "Eko", "Fajar", "Gita", "Hadi", "Intan", "Joko", "Kartika", "Lestari")
_PLACES = ("Bandung", "Medan", "Makassar", "Ambon", "Kupang", "Palembang", "Pontianak", "Jayapura", "Padang")
_CONNECTIVES = (
    "Selain itu,",
    "Dengan demikian,",
    "Sebagai contoh,",
    "Oleh karena itu,",
    "Di sisi lain,",
    "Pada praktiknya,",
    "Menurut para ahli,",
    "Dalam kehidupan sehari-hari,",
)
_PDF_DATE = "D:20240715080000+07'00'"


def _sentences() -> list[tuple[sd._Topic, str]]:
    return [
        (topic, s.replace(sd._HYPHEN_MARK, "")) for book in sd._BOOKS for topic in book.topics for s in topic.sentences
    ]


def _paragraph(rng: random.Random, pool: list[tuple[sd._Topic, str]]) -> str:
    """Four to seven sentences, some joined by connectives, with a varied example sentence."""
    picked = [rng.choice(pool) for _ in range(rng.randint(4, 7))]
    parts = []
    for i, (_, sentence) in enumerate(picked):
        if i and rng.random() < 0.35:
            sentence = f"{rng.choice(_CONNECTIVES)} {sentence[0].lower()}{sentence[1:]}"
        parts.append(sentence)
    topic = picked[0][0]
    parts.append(
        f"{rng.choice(_NAMES)} dari {rng.choice(_PLACES)} mencatat {rng.randint(3, 97)} contoh "
        f"{rng.choice(topic.terms)} selama {rng.randint(2, 14)} hari dan membandingkannya dengan "
        f"{rng.choice(topic.terms)} pada kelompok {rng.randint(1, 9)}."
    )
    return " ".join(parts)


@cache
def _char_width(char: str) -> float:
    return pymupdf.get_text_length(char, fontname=sd._BODY_FONT, fontsize=sd._BODY_SIZE)


def _wrap(text: str) -> list[str]:
    """Greedy word wrap to the body width (base-14 Helvetica has no kerning: widths add up per character)."""
    lines: list[str] = []
    line, width = "", 0.0
    space = _char_width(" ")
    for word in text.split():
        w = sum(_char_width(c) for c in word)
        if line and width + space + w > sd._TEXT_W:
            lines.append(line)
            line, width = word, w
        else:
            line, width = (f"{line} {word}", width + space + w) if line else (word, w)
    if line:
        lines.append(line)
    return lines


def _fits(writer: sd._PageWriter, lines: list[str]) -> bool:
    return writer.y + len(lines) * sd._BODY_LEADING + 6.0 <= sd._BODY_BOTTOM


def _write(writer: sd._PageWriter, lines: list[str]) -> None:
    for line in lines:
        writer._line(line, sd._BODY_FONT, sd._BODY_SIZE, sd._BODY_LEADING)
    writer.y += 6.0


def _page(doc: pymupdf.Document, book: sd._Book, rng: random.Random, pool: list, number: int) -> None:
    writer = sd._PageWriter(sd._new_page(doc, book))
    topic = rng.choice(pool)[0]
    writer.heading(f"{number}. {topic.title}", size=13, space_before=0)
    while True:
        text = _paragraph(rng, pool)
        lines = _wrap(text)
        if not _fits(writer, lines):
            # Finish the page with a shorter paragraph where one still fits.
            short = _wrap(" ".join(text.split(". ")[:2]).rstrip(".") + ".")
            if _fits(writer, short):
                _write(writer, short)
            break
        _write(writer, lines)
    sd._add_footer(writer.page)


def book_pdf(index: int, pages: int, revision: int = 0, changed_pages: tuple[int, ...] = ()) -> bytes:
    """PDF bytes of benchmark book `index` with `pages` pages.

    `revision > 0` rewrites `changed_pages` (1-based) with other paragraphs, as a revised edition
    would; every other page stays byte-for-byte the same text.
    """
    pool = _sentences()
    base = sd._BOOKS[index % len(sd._BOOKS)]
    book = replace(base, kind="Buku Latihan", subject_label=f"Seri {index + 1:02d}")
    doc = pymupdf.open()
    try:
        for number in range(1, pages + 1):
            seed = f"nexus-bench/{index}/{number}"
            if revision and number in changed_pages:
                seed += f"/r{revision}"
            _page(doc, book, random.Random(seed), pool, number)
        doc.set_metadata(
            {
                "title": f"Buku Latihan {index + 1:02d}",
                "author": "Nexus Assets (benchmark)",
                "creator": "benchmarks/corpus.py",
                "producer": "PyMuPDF",
                "creationDate": _PDF_DATE,
                "modDate": _PDF_DATE,
            }
        )
        return doc.tobytes(garbage=3, deflate=True, no_new_id=True)
    finally:
        doc.close()


def book_name(index: int) -> str:
    return f"buku_latihan_{index + 1:02d}.pdf"


def write_corpus(target: Path, files: int = 10, pages_per_file: int = 36) -> list[Path]:
    """Write `files` books of `pages_per_file` pages into `target` (a partition's raw folder)."""
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(files):
        path = target / book_name(index)
        path.write_bytes(book_pdf(index, pages_per_file))
        paths.append(path)
    return paths


# The typical update: one book revised, a few pages rewritten (a corrected edition).
REVISED_BOOK = 4
REVISED_PAGES = (3, 11, 19, 27)


def revise_one_book(target: Path, pages_per_file: int = 36, revision: int = 1) -> Path:
    path = target / book_name(REVISED_BOOK)
    path.write_bytes(book_pdf(REVISED_BOOK, pages_per_file, revision, REVISED_PAGES))
    return path


def add_shared_corpus(target: Path, shared: Path) -> list[Path]:
    """Copy ../shared/corpus's PDFs into `target`, named after their subject and grade (so names stay unique)."""
    copied = []
    for pdf in sorted(shared.rglob("*.pdf")):
        rel = pdf.relative_to(shared)
        dest = target / ("shared__" + "__".join(rel.parts))
        shutil.copyfile(pdf, dest)
        copied.append(dest)
    return copied
