"""A generated textbook long enough (about 150 chunks) for a build to spend a while embedding it."""

from __future__ import annotations

from pathlib import Path


def long_textbook(path: Path, pages: int, seed: int) -> None:
    """A textbook long enough (about 150 chunks) for the embedding bar to be seen moving."""
    from nexus_assets.lib.ingest.mupdf import pymupdf

    words = "sel jaringan organ sistem energi gerak gaya usaha data algoritma jaringan struktur sejarah".split()
    doc = pymupdf.open()
    for number in range(pages):
        page = doc.new_page()
        sentences = [
            f"Bab {number + 1}, bagian {k + 1}: "
            + " ".join(words[(seed + number * 7 + k * 3 + i) % len(words)] for i in range(12))
            + f" ({seed}-{number}-{k})."
            for k in range(14)
        ]
        page.insert_textbox(pymupdf.Rect(50, 50, 550, 800), " ".join(sentences), fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
