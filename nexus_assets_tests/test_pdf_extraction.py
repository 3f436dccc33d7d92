import os
from collections.abc import Callable
from pathlib import Path

import pymupdf
import pytest

from nexus_assets.lib.core.hashing import sha256_file
from nexus_assets.lib.ingest.pdf_extraction import (
    EXTRACTOR_VERSION,
    extract_pdf,
    extract_pdfs,
    extraction_cache,
    extraction_from_bytes,
    extractor_version,
    worker_count,
)
from nexus_assets.lib.ingest.sample_data import BROKEN_SAMPLE


def _pdf(path: Path, pages: list[str], **save_kwargs: object) -> Path:
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        if text:
            page.insert_textbox(pymupdf.Rect(72, 100, 520, 700), text, fontsize=11)
    doc.save(path, **save_kwargs)
    return path


def test_text_pdf_is_ok_with_every_page(tmp_path: Path) -> None:
    result = extract_pdf(_pdf(tmp_path / "a.pdf", ["Halaman pertama tentang sel.", "Halaman kedua tentang DNA."]))
    assert result.status == "ok"
    assert [p.page for p in result.pages] == [1, 2]
    assert "sel" in result.pages[0].text and "DNA" in result.pages[1].text
    assert len(result.sha256) == 64


def test_image_only_pages_are_reported_not_dropped(tmp_path: Path) -> None:
    result = extract_pdf(_pdf(tmp_path / "a.pdf", ["Ada teks di sini.", ""]))
    assert result.status == "ok"
    assert result.pages[1].status == "no_text"
    assert "no text layer" in result.pages[1].reason


def test_scanned_file_without_any_text_layer(tmp_path: Path) -> None:
    result = extract_pdf(_pdf(tmp_path / "scan.pdf", ["", ""]))
    assert result.status == "no_text_layer"
    assert "OCR" in result.reason and result.page_count == 2


def test_encrypted_with_a_user_password(tmp_path: Path) -> None:
    path = _pdf(
        tmp_path / "locked.pdf", ["Rahasia."], encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="guru", owner_pw="admin"
    )
    result = extract_pdf(path)
    assert result.status == "encrypted"
    assert "password is required" in result.reason


def test_encrypted_with_an_empty_user_password_opens(tmp_path: Path) -> None:
    path = _pdf(
        tmp_path / "restricted.pdf",
        ["Hanya dibatasi pencetakannya."],
        encryption=pymupdf.PDF_ENCRYPT_AES_256,
        user_pw="",
        owner_pw="admin",
        permissions=pymupdf.PDF_PERM_ACCESSIBILITY,
    )
    result = extract_pdf(path)
    assert result.status == "ok"
    assert "dibatasi" in result.pages[0].text
    assert any("encrypted" in note for note in result.notes)


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"", "empty"),
        (b"%PDF-1.7\n", "truncated"),
        (b"this is not a pdf at all", "not_pdf"),
        (b"%PDF-1.4\n1 0 obj\n<<", "truncated"),
        (b"%PDF-1.3\nThis is not a valid PDF file\n%%EOF\n", "malformed"),
    ],
)
def test_broken_files_get_a_status_and_a_reason(tmp_path: Path, content: bytes, status: str) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(content)
    result = extract_pdf(path)
    assert result.status == status
    assert result.reason
    assert result.pages == []


def test_the_broken_sample_is_truncated(sample_raw_root: Path) -> None:
    subject, grade, name = BROKEN_SAMPLE
    assert extract_pdf(sample_raw_root / subject / grade / name).status == "truncated"


def test_sample_headers_footers_and_hyphenation_are_cleaned(sample_raw_root: Path) -> None:
    result = extract_pdf(sample_raw_root / "informatika/kelas_10/buku_siswa_informatika_kelas_10.pdf")
    text = "\n".join(p.text for p in result.pages)
    assert "Kurikulum Merdeka" not in text, "running header removed"
    assert "Halaman 2" not in text, "page-number footer removed"
    assert "informatika" in text.lower() and "infor-" not in text


# --- the extraction cache and the process pool ---------------------------------------------------------------


def _items(paths: list[Path]) -> list[tuple[str, str, Callable[[], Path]]]:
    return [(p.name, sha256_file(p), lambda p=p: p) for p in paths]


def test_an_unchanged_file_is_never_read_again(tmp_path: Path, sample_raw_root: Path) -> None:
    paths = sorted(sample_raw_root.rglob("*.pdf"))
    cache = extraction_cache(tmp_path / "cache")
    first, stats = extract_pdfs(_items(paths), cache)
    assert (stats.cached, stats.extracted) == (0, len(paths))

    def never(path: Path) -> Callable[[], Path]:
        def fetch() -> Path:
            raise AssertionError(f"{path.name} was fetched although it is cached")

        return fetch

    renamed = [(f"copy_of_{p.name}", sha256_file(p), never(p)) for p in paths]
    seen: list[tuple[str, bool]] = []
    again, stats = extract_pdfs(renamed, cache, on_result=lambda r, cached: seen.append((r.file, cached)))
    assert (stats.cached, stats.extracted) == (len(paths), 0)
    assert [r.file for r in again] == [f"copy_of_{p.name}" for p in paths], "a hit takes the file's current name"
    assert seen == [(f"copy_of_{p.name}", True) for p in paths]
    for before, after in zip(first, again, strict=True):
        assert (before.status, before.reason, before.pages, before.sha256) == (
            after.status,
            after.reason,
            after.pages,
            after.sha256,
        )


def test_a_damaged_cache_entry_is_extracted_again(tmp_path: Path, sample_raw_root: Path) -> None:
    pdf = sample_raw_root / "informatika/kelas_10/buku_siswa_informatika_kelas_10.pdf"
    cache = extraction_cache(tmp_path)
    extract_pdfs(_items([pdf]), cache)
    cache.put(sha256_file(pdf), b"not gzip")
    [result], stats = extract_pdfs(_items([pdf]), cache)
    assert stats.extracted == 1 and result.status == "ok"
    assert extraction_from_bytes(cache.get(sha256_file(pdf)), pdf.name) == result


def test_the_cache_key_follows_the_extraction_code() -> None:
    assert extractor_version().startswith(f"v{EXTRACTOR_VERSION}-pymupdf")
    assert extraction_cache(Path("x")).namespace.endswith(extractor_version())


def test_the_process_pool_gives_the_same_results_as_one_process(
    tmp_path: Path, sample_raw_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nexus_assets.lib.ingest.pdf_extraction as pdf_extraction

    paths = sorted(sample_raw_root.rglob("*.pdf"))
    serial, stats = extract_pdfs(_items(paths))
    assert stats.workers == 1, "a few small files are not worth worker processes"
    monkeypatch.setattr(pdf_extraction, "POOL_MIN_SECONDS", 0)
    pooled, stats = extract_pdfs(_items(paths))
    assert stats.workers == worker_count(len(paths), 10**6)
    if (os.cpu_count() or 1) > 1:
        assert stats.workers > 1
    assert pooled == serial


def test_reading_pdfs_leaves_out_pymupdfs_unused_addons(tmp_path: Path) -> None:
    """`import pymupdf` alone starts an ONNX Runtime session for a layout model no step uses (0.5 s and
    90 MB per process); the extraction modules import PyMuPDF without it, and read text all the same."""
    import subprocess
    import sys

    pdf = _pdf(tmp_path / "a.pdf", ["Halaman pertama tentang sel."])
    probe = (
        "import sys\n"
        "from nexus_assets.lib.ingest.pdf_extraction import extract_pdf\n"
        f"result = extract_pdf(__import__('pathlib').Path({str(pdf)!r}))\n"
        "print(result.status, 'sel' in result.pages[0].text, sorted(m for m in ('onnxruntime', 'pymupdf4llm', "
        "'pymupdf.layout') if sys.modules.get(m) is not None), 'pymupdf' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["ok", "True", "[]", "True"], out.stdout + out.stderr
