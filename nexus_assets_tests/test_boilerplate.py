"""Layout-based boilerplate removal on real PDFs written with PyMuPDF (the kinds issue 29 found in real books)."""

from pathlib import Path

import pymupdf
import pytest

from nexus_assets.lib.ingest.boilerplate import Block, find_boilerplate
from nexus_assets.lib.ingest.pdf_extraction import extract_pdf, extractor_version
from nexus_assets.lib.ingest.text_cleaning import clean_document_report

LICENCE = (
    "Authorship: Bebras International Task Force.\n"
    "License: This work is licensed under a Creative Commons\n"
    "Attribution-ShareAlike 4.0 International License.\n"
)
STRIP = "Downloaded from https://journals.example.org on 12 March 2021. See the Terms and Conditions of use."


def _topic(number: int) -> str:
    words = ["graf", "simpul", "sisi", "bobot", "jalur", "antrian", "tumpukan", "pohon", "larik", "rekursi"]
    return (
        f"Soal {number} membahas {words[number % 10]} dan {words[(number * 3) % 10]} dengan contoh nomor "
        f"{number * 7}: berang-berang ke-{number} mencari jalan terpendek di antara {number + 2} kota."
    )


def _book(path: Path, pages: int, licence_every: int = 0, strip: bool = False, unique_rotated: int = 0) -> Path:
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=595, height=842)
        assert page.insert_textbox(pymupdf.Rect(60, 150, 520, 380), _topic(number), fontsize=11) > 0
        if licence_every and number % licence_every == 0:
            body = LICENCE.replace("Task Force", f"Task Force, task {number}") if number % 2 else LICENCE
            assert page.insert_textbox(pymupdf.Rect(60, 400, 540, 520), body, fontsize=9) > 0
        if strip:
            page.insert_text((575, 800), STRIP, fontsize=7, rotate=90)
        if number == unique_rotated:
            page.insert_text((300, 700), "Gambar 3: sumbu waktu", fontsize=8, rotate=90)
    doc.save(path)
    doc.close()
    return path


def test_a_licence_block_repeated_inside_the_page_body_is_removed_and_reported(tmp_path: Path) -> None:
    ex = extract_pdf(_book(tmp_path / "contest.pdf", 30, licence_every=1))
    text = " ".join(p.text for p in ex.pages)
    assert "Creative Commons" not in text and "Attribution-ShareAlike" not in text
    for number in range(1, 31):
        assert f"Soal {number} membahas" in ex.pages[number - 1].text, "the page's own text stays"
        # Odd pages carry a near-duplicate (the task number inside): its shared lines go, its own line stays.
        assert ("Authorship" in ex.pages[number - 1].text) == bool(number % 2)
    note = next(n for n in ex.notes if n.startswith("boilerplate removed"))
    assert "repeated body blocks" in note and "Authorship" in note


def test_near_duplicate_copies_keep_the_lines_they_alone_have() -> None:
    pages = []
    for number in range(12):
        own = f"Judul soal unik nomor {number}: menara Hanoi dengan {number + 3} cakram\n"
        pages.append([Block(f"Isi halaman {number} tentang pencarian biner.", False), Block(own + LICENCE, False)])
    cleaned, report = clean_document_report(pages)
    for number, page in enumerate(cleaned):
        assert f"menara Hanoi dengan {number + 3} cakram" in page
        assert "Creative Commons" not in page
    assert report.counts["repeated_block"] == 12


def test_a_rotated_margin_strip_on_every_page_is_removed(tmp_path: Path) -> None:
    ex = extract_pdf(_book(tmp_path / "article.pdf", 6, strip=True, unique_rotated=4))
    text = " ".join(p.text for p in ex.pages)
    assert "Downloaded from" not in text and "Terms and Conditions" not in text
    assert "Gambar 3: sumbu waktu" in ex.pages[3].text, "rotated text that appears once is never dropped"
    assert all(p.text.startswith("Soal") for p in ex.pages), "the strip is not glued onto the first paragraph"
    assert any("rotated or side-margin text" in n and "Downloaded from" in n for n in ex.notes)


def test_text_that_appears_once_or_twice_is_never_dropped() -> None:
    long = "Definisi: algoritma adalah urutan langkah logis untuk menyelesaikan masalah secara sistematis."
    pages = [[Block(f"halaman {i} isi khusus", False, (0.1, 0.2, 0.9, 0.3))] for i in range(10)]
    pages[2].append(Block(long, False, (0.1, 0.5, 0.9, 0.6)))
    pages[7].append(Block(long, False, (0.1, 0.5, 0.9, 0.6)))
    pages[5].append(Block("Catatan samping", False, (0.93, 0.4, 0.99, 0.5), rotated=True))
    keep, report = find_boilerplate(pages)
    assert keep == [[b.text for b in blocks] for blocks in pages]
    assert not report


def test_templated_short_lines_at_the_same_place_with_other_numbers_stay() -> None:
    # "Soal 1", "Soal 2", ... at the same place on every page: content, not a header (numbers differ).
    pages = [[Block(f"Soal {i}", False, (0.1, 0.3, 0.3, 0.32)), Block("Jawaban:", False)] for i in range(8)]
    cleaned, report = clean_document_report(pages)
    assert cleaned == [f"Soal {i}\n\nJawaban:" for i in range(8)]
    assert not report


def test_the_same_box_at_the_same_place_on_most_pages_is_removed() -> None:
    pages = [
        [Block("Modul Informatika", False, (0.02, 0.5, 0.07, 0.6)), Block(f"isi {i}", False, (0.1, 0.3, 0.9, 0.4))]
        for i in range(8)
    ]
    cleaned, report = clean_document_report(pages)
    assert cleaned == [f"isi {i}" for i in range(8)]
    assert report.counts["same_place"] == 8


def test_the_extraction_cache_key_follows_the_boilerplate_code() -> None:
    assert extractor_version().startswith("v2-"), "bumped with layout-based boilerplate removal"


@pytest.mark.parametrize("pages", [1, 2])
def test_short_files_keep_everything(pages: int) -> None:
    blocks = [[Block(LICENCE, False, (0.1, 0.5, 0.9, 0.6), rotated=True)] for _ in range(pages)]
    keep, report = find_boilerplate(blocks)
    assert all(k == [LICENCE] for k in keep) and not report


def test_the_removed_boilerplate_is_listed_per_file_for_the_ui(tmp_path: Path) -> None:
    from nexus_assets.lib.core.tables import boilerplate_frame, pages_frame

    pages = pages_frame(
        [extract_pdf(_book(tmp_path / "article.pdf", 6, strip=True)), extract_pdf(_book(tmp_path / "plain.pdf", 6))]
    )
    frame = boilerplate_frame(pages)
    assert frame["file"].tolist() == ["article.pdf"], "a file with nothing removed has no row"
    assert frame["removed"].iloc[0].startswith("6 rotated or side-margin text (e.g. 'Downloaded from")


def test_a_repeated_paragraph_that_is_all_of_its_page_stays() -> None:
    text = "Paragraf yang sama tentang algoritma pengurutan dan pencarian dalam buku latihan ini."
    pages = [[Block(text, False, (0.1, 0.2 + 0.01 * (i % 3), 0.9, 0.4))] for i in range(12)]
    pages[0].append(Block("Isi lain halaman pertama yang hanya muncul sekali di berkas ini.", False))
    cleaned, report = clean_document_report(pages)
    assert cleaned[0] == "Isi lain halaman pertama yang hanya muncul sekali di berkas ini."
    assert all(page == text for page in cleaned[1:])
    assert report.counts["same_place"] + report.counts["repeated_block"] == 1
