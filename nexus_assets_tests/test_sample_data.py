"""Tests for the synthetic textbook corpus: it must really contain the cases the pipeline has to handle."""

from __future__ import annotations

import re
from pathlib import Path

import pymupdf
import pytest

from nexus_assets.lib.ingest.sample_data import BROKEN_SAMPLE, SAMPLE_PARTITIONS, generate_sample_corpus

_SLUG = re.compile(r"^[a-z0-9_]+$")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("raw")
    return root, generate_sample_corpus(root)


def _broken_path(root: Path) -> Path:
    return root.joinpath(*BROKEN_SAMPLE)


def _good_pdfs(root: Path, paths: list[Path]) -> list[Path]:
    return [p for p in paths if p != _broken_path(root)]


def _page_texts(path: Path) -> list[str]:
    with pymupdf.open(path) as doc:
        return [page.get_text() for page in doc]


def test_layout_and_partitions(corpus: tuple[Path, list[Path]]) -> None:
    root, paths = corpus
    assert paths == sorted(paths)
    assert all(p.is_file() and p.suffix == ".pdf" for p in paths)
    found = {(p.parent.parent.name, p.parent.name) for p in paths}
    for p in paths:
        assert p.relative_to(root).parts[:2] == (p.parent.parent.name, p.parent.name)
    assert found == set(SAMPLE_PARTITIONS)
    subjects = {s for s, _ in found}
    assert len(subjects) >= 3
    for subject in subjects:
        assert len({g for s, g in found if s == subject}) >= 2
    assert all(_SLUG.match(s) and _SLUG.match(g) for s, g in found)
    for partition in found:
        assert 1 <= sum((p.parent.parent.name, p.parent.name) == partition for p in _good_pdfs(root, paths)) <= 2
    assert sum(p.stat().st_size for p in paths) < 2_000_000


def test_good_pdfs_have_text_header_and_footer(corpus: tuple[Path, list[Path]]) -> None:
    root, paths = corpus
    good = _good_pdfs(root, paths)
    assert len(good) >= 6
    for path in good:
        with pymupdf.open(path) as doc:
            assert 4 <= doc.page_count <= 8
            assert all(page.rect.width == pytest.approx(595, abs=1) for page in doc)
            assert doc.metadata["creationDate"] and doc.metadata["creationDate"] == doc.metadata["modDate"]
        texts = _page_texts(path)
        text_pages = [(i, t) for i, t in enumerate(texts) if t.strip()]
        assert len(text_pages) >= 4, path
        headers = {t.splitlines()[0] for _, t in text_pages}
        assert len(headers) == 1, f"running header differs between pages of {path}"
        header = headers.pop()
        assert "Kelas" in header and "Kurikulum Merdeka" in header
        for i, text in text_pages:
            assert f"Halaman {i + 1}" in text.splitlines()
            assert "Bab " in text
            assert 1_500 <= len(text) <= 2_600, (path, i, len(text))


def test_subjects_have_distinct_content(corpus: tuple[Path, list[Path]]) -> None:
    root, paths = corpus
    full = {p.relative_to(root).as_posix(): "\n".join(_page_texts(p)) for p in _good_pdfs(root, paths)}
    joined = "\n".join(full.values())
    for term in (
        "algoritma",
        "jaringan",
        "basis data",
        "fungsi kuadrat",
        "trigonometri",
        "statistika",
        "sel eukariotik",
        "fotosintesis",
        "pencernaan",
        "ekosistem",
    ):
        assert term in joined.lower(), term
    # Text is built from varied sentences, not a repeated one.
    for text in full.values():
        sentences = [s for s in re.split(r"(?<=[.?!])\s+", text.replace("\n", " ")) if len(s) > 40]
        assert len(set(sentences)) >= 0.8 * len(sentences)


def test_hyphenated_line_break(corpus: tuple[Path, list[Path]]) -> None:
    root, paths = corpus
    joined = "\n".join(t for p in _good_pdfs(root, paths) for t in _page_texts(p))
    assert re.search(r"[a-z]-\n[a-z]", joined)
    assert "infor-\nmatika" in joined


def test_table_page(corpus: tuple[Path, list[Path]]) -> None:
    root, paths = corpus
    cells = ("Nama Algoritma", "Kompleksitas", "Binary Search", "O(log n)", "Merge Sort", "O(n log n)")
    found = []
    for path in _good_pdfs(root, paths):
        with pymupdf.open(path) as doc:
            for page in doc:
                if all(c in page.get_text() for c in cells):
                    found.append(page.find_tables().tables)
    assert len(found) == 1
    tables = found[0]
    assert tables, "ruled grid should be detected as a table"
    rows = tables[0].extract()
    assert rows[0] == ["Nama Algoritma", "Kompleksitas", "Contoh Penggunaan"]
    assert ["Binary Search", "O(log n)", "Mencari kata di kamus terurut"] in rows


def test_image_only_page(corpus: tuple[Path, list[Path]]) -> None:
    root, paths = corpus
    image_only = []
    for path in _good_pdfs(root, paths):
        with pymupdf.open(path) as doc:
            image_only += [(path, p.number) for p in doc if not p.get_text().strip() and p.get_images()]
    assert len(image_only) >= 1


def test_broken_file_is_unusable(corpus: tuple[Path, list[Path]]) -> None:
    root, paths = corpus
    broken = _broken_path(root)
    assert broken in paths
    assert broken.read_bytes().startswith(b"%PDF-")
    try:
        doc = pymupdf.open(broken)
    except (pymupdf.FileDataError, RuntimeError):
        return
    with doc:
        if doc.page_count:
            with pytest.raises(Exception):  # noqa: B017 - any load error counts as unusable
                doc.load_page(0).get_text()


def test_deterministic_and_idempotent(corpus: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, paths = corpus
    foreign = tmp_path / "informatika" / "kelas_10" / "milik_orang_lain.pdf"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"not ours")
    first = generate_sample_corpus(tmp_path)
    second = generate_sample_corpus(tmp_path)
    assert first == second
    assert foreign.read_bytes() == b"not ours"
    assert [p.relative_to(tmp_path) for p in first] == [p.relative_to(root) for p in paths]
    for a, b in zip(first, paths, strict=True):
        assert a.read_bytes() == b.read_bytes()
    for p in _good_pdfs(tmp_path, first):
        assert _page_texts(p) == _page_texts(root / p.relative_to(tmp_path))
