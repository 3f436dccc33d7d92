"""OCR of scanned pages: a generated image-only page is read by Tesseract, flagged and cached apart.

The OCR tests skip (fail when `CI` is set) with the reason `find_ocr` gives when Tesseract's language data is absent
(`make ocr` installs it); the tests of what happens without OCR run everywhere.
"""

from collections.abc import Callable
from pathlib import Path

import pymupdf
import pytest

from nexus_assets.lib.core.hashing import sha256_file
from nexus_assets.lib.core.tables import chunks_frame, file_status_frame, ocr_pages_of, pages_frame, readable_pages
from nexus_assets.lib.index.chunking import ChunkingParams, chunk_file, chunk_streams
from nexus_assets.lib.ingest import pdf_extraction
from nexus_assets.lib.ingest.ocr import OcrEngine, find_ocr
from nexus_assets.lib.ingest.pdf_extraction import (
    ExtractionLimits,
    extract_pdf,
    extract_pdfs,
    extraction_cache,
    plan_file,
)
from nexus_assets.lib.publish import quality
from nexus_assets_tests.support import unavailable

SCANNED_TEXT = (
    "Fotosintesis adalah proses tumbuhan hijau mengubah cahaya matahari menjadi energi kimia. "
    "Klorofil menyerap cahaya merah dan biru."
)


def _ocr() -> OcrEngine:
    status = find_ocr()
    if status.engine is None:
        unavailable(f"Tesseract is not usable here: {status.reason}")
    return status.engine


def _scanned_pdf(path: Path, text_pages: list[str], scanned: str) -> Path:
    """Text pages followed by one image-only page: `scanned` rendered to pixels, as a scanner would."""
    source = pymupdf.open()
    page = source.new_page(width=420, height=300)
    page.insert_textbox(pymupdf.Rect(30, 30, 390, 270), scanned, fontsize=14)
    pixmap = page.get_pixmap(dpi=200)
    doc = pymupdf.open()
    for text in text_pages:
        doc.new_page(width=420, height=300).insert_textbox(pymupdf.Rect(30, 30, 390, 270), text, fontsize=11)
    doc.new_page(width=420, height=300).insert_image(pymupdf.Rect(0, 0, 420, 300), pixmap=pixmap)
    doc.save(path)
    assert not doc[-1].get_text().strip(), "the scanned page has no text layer"
    return path


@pytest.fixture(scope="module")
def scanned_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _scanned_pdf(
        tmp_path_factory.mktemp("scan") / "scan.pdf", ["Halaman pertama tentang sel tumbuhan."], SCANNED_TEXT
    )


@pytest.fixture(scope="module")
def ocr_extraction(scanned_pdf: Path):
    return extract_pdf(scanned_pdf, ocr=_ocr())


def test_a_scanned_page_is_read_by_ocr_and_flagged(ocr_extraction) -> None:
    text_page, scan = ocr_extraction.pages
    assert ocr_extraction.status == "ok" and ocr_extraction.ocr_pages == 1
    assert text_page.status == "ok", "pages with a text layer are never OCRed"
    assert scan.status == "ocr" and "OCR" in scan.reason
    words = scan.text.lower()
    assert "fotosintesis" in words and "klorofil" in words, scan.text
    assert any("read by OCR" in note for note in ocr_extraction.notes)


def test_without_ocr_the_scanned_page_is_reported_with_the_reason(scanned_pdf: Path) -> None:
    result = extract_pdf(scanned_pdf)
    scan = result.pages[-1]
    assert scan.status == "no_text" and scan.text == ""
    assert "no text layer" in scan.reason and "OCR" in scan.reason
    pages = pages_frame([result])
    verdict = quality.text_coverage(pages)
    assert verdict.figures["pages_without_text"] == 1 and verdict.figures["pages_ocr"] == 0
    assert "scan.pdf" in verdict.tables["pages_without_text"]["file"].tolist()


def test_ocr_text_is_chunked_and_marked_in_chunk_metadata(ocr_extraction) -> None:
    pages = pages_frame([ocr_extraction])
    files = file_status_frame(pages)
    assert files.loc[0, ["text_pages", "ocr_pages"]].tolist() == [2, 1]
    params = ChunkingParams(50, 10)
    text_layer = readable_pages(pages, "scan.pdf", ("ok",))
    chunks = chunk_streams(
        "biologi/kelas_10", "scan.pdf", [("", text_layer), ("ocr", readable_pages(pages, "scan.pdf", ("ocr",)))], params
    )
    frame = chunks_frame(chunks, ocr_pages_of(pages))
    assert frame["chunk_id"].is_unique and frame["chunk_index"].tolist() == list(range(len(frame)))
    assert not ((frame["page_start"] == 1) & (frame["page_end"] == 2)).any(), "no chunk mixes OCR and text layer"
    alone = chunk_file("biologi/kelas_10", "scan.pdf", text_layer, params)
    assert [c.chunk_id for c in chunks[: len(alone)]] == [c.chunk_id for c in alone], (
        "reading a scan by OCR leaves the text-layer chunks (ids, hence cached vectors) as they were"
    )
    on_scan = frame[frame["page_end"] == 2]
    assert len(on_scan) and on_scan["ocr"].all(), "every chunk holding OCRed text says so"
    assert not frame[frame["page_end"] == 1]["ocr"].any(), "text-layer chunks are not marked"
    verdict = quality.text_coverage(pages)
    assert verdict.passed and verdict.figures["pages_ocr"] == 1 and "by OCR" in verdict.summary


HEADER = "Biologi untuk SMA Kelas X"


def _book_with_scans(path: Path, layout: str) -> Path:
    """A book whose pages follow `layout`: `t` a text page under a running header, `s` a scanned page."""
    source = pymupdf.open()
    doc = pymupdf.open()
    for number, kind in enumerate(layout, 1):
        text = f"Halaman {number}: {SCANNED_TEXT if kind == 's' else 'Sel tumbuhan memiliki dinding sel.'}"
        page = doc.new_page(width=420, height=300)
        if kind == "t":
            page.insert_text((30, 20), HEADER, fontsize=9)
            page.insert_textbox(pymupdf.Rect(30, 60, 390, 270), text, fontsize=11)
        else:
            scan = source.new_page(width=420, height=300)
            scan.insert_textbox(pymupdf.Rect(30, 30, 390, 270), text, fontsize=14)
            page.insert_image(page.rect, pixmap=scan.get_pixmap(dpi=150))
    doc.save(path)
    return path


def test_a_scanned_book_is_read_in_parts_as_it_would_be_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OCR runs in one thread: a book's scanned pages are split over the cores, and the result (pages,
    statuses, running headers removed across the parts) is the same as the book read in one process."""
    engine = _ocr()
    book = _book_with_scans(tmp_path / "book.pdf", "tsttssts")
    plan = plan_file(book, ExtractionLimits(), engine)
    assert plan.pages == 8 and plan.scans == (1, 4, 5, 7), "the scanned pages are planned as OCR work"
    assert plan.parts(2) == [(0, 5), (5, 8)], "each part holds half of the scanned pages"
    assert plan_file(book, ExtractionLimits(), None).scans == (), "without OCR no page costs OCR"

    whole = extract_pdf(book, ocr=engine)
    assert [p.status for p in whole.pages] == ["ok" if kind == "t" else "ocr" for kind in "tsttssts"]
    assert all(HEADER not in p.text for p in whole.pages), "the running header is cleaned"

    ranges: list[object] = []
    real_pool = pdf_extraction.run_pool

    def recording_pool(tasks, workers, store, *args):  # type: ignore[no-untyped-def]
        ranges.extend(task[4] for _, task in tasks)
        return real_pool(tasks, workers, store, *args)

    monkeypatch.setattr(pdf_extraction, "run_pool", recording_pool)
    monkeypatch.setattr(pdf_extraction, "cpu_threads", lambda: 2)  # the split is what is tested, on any machine
    [parts], stats = extract_pdfs([(book.name, sha256_file(book), lambda: book)], ocr=engine)
    assert stats.workers == 2 and sorted(ranges) == [(0, 5), (5, 8)], ranges
    assert parts == whole


def test_a_blank_page_is_not_ocred(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page()
    doc.save(tmp_path / "blank.pdf")
    ocr = OcrEngine("/nonexistent/tessdata")  # would fail loudly if it were used
    result = extract_pdf(tmp_path / "blank.pdf", ocr=ocr)
    assert result.pages[0].status == "no_text" and "blank page" in result.pages[0].reason


def test_an_ocr_failure_is_reported_not_raised(scanned_pdf: Path) -> None:
    result = extract_pdf(scanned_pdf, ocr=OcrEngine("/nonexistent/tessdata"))
    assert result.pages[0].status == "ok"
    assert result.pages[1].status == "no_text" and "OCR failed" in result.pages[1].reason


def test_a_no_ocr_cached_result_never_serves_an_ocr_run(tmp_path: Path, scanned_pdf: Path) -> None:
    engine = _ocr()
    assert extraction_cache(tmp_path).namespace != extraction_cache(tmp_path, engine).namespace
    assert engine.cache_key.startswith(f"ocr-{engine.languages}-{engine.dpi}dpi")

    def item() -> list[tuple[str, str, Callable[[], Path]]]:
        return [(scanned_pdf.name, sha256_file(scanned_pdf), lambda: scanned_pdf)]

    [plain], stats = extract_pdfs(item(), extraction_cache(tmp_path))
    assert plain.pages[-1].status == "no_text" and stats.extracted == 1
    [read], stats = extract_pdfs(item(), extraction_cache(tmp_path, engine), ocr=engine)
    assert stats.extracted == 1, "the no-OCR result in the cache was not reused"
    assert read.pages[-1].status == "ocr"
    [again], stats = extract_pdfs(item(), extraction_cache(tmp_path, engine), ocr=engine)
    assert stats.cached == 1 and again.pages == read.pages, "OCR runs once per file and setting"


def test_ocr_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    status = find_ocr(enabled=False)
    assert status.engine is None and "disabled" in status.reason
    missing = find_ocr(languages="xx_nonexistent")
    assert missing.engine is None and ("xx_nonexistent" in missing.reason or "not found" in missing.reason)
