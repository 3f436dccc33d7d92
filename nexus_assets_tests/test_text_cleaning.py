from nexus_assets.lib.ingest.text_cleaning import clean_block, clean_document, join_hyphenation, normalize


def test_nfkc_and_invisible_characters() -> None:
    assert normalize("ﬁsika\u00ad\u200b ２０２４") == "fisika 2024"


def test_hyphenation_across_line_ends_is_joined() -> None:
    assert join_hyphenation("infor-\nmatika") == "informatika"
    assert join_hyphenation("pem-  \n  belajaran") == "pembelajaran"


def test_real_hyphens_survive() -> None:
    assert join_hyphenation("anak-\nanak") == "anak-anak"  # Indonesian reduplication
    assert join_hyphenation("Jawa-\nBali") == "Jawa-Bali"
    assert join_hyphenation("tahun 1945-\n1949") == "tahun 1945-\n1949"


def test_block_lines_fold_into_one_paragraph() -> None:
    assert clean_block("Algoritma adalah\nurutan   langkah\n\n") == "Algoritma adalah urutan langkah"


def test_running_headers_and_footers_are_dropped() -> None:
    pages = [
        [("Buku Siswa Informatika", True), (f"Isi halaman {i} tentang topik {i}.", False), (f"Halaman {i}", True)]
        for i in range(1, 6)
    ]
    assert clean_document(pages) == [f"Isi halaman {i} tentang topik {i}." for i in range(1, 6)]


def test_repeated_body_lines_are_content() -> None:
    # The same templated line in the body of every page is not a header: it stays.
    pages = [[("Judul Bab", True), (f"Soal {i}", False), ("Kerjakan dengan teliti.", False)] for i in range(5)]
    assert all("Soal" in page and "Kerjakan" in page for page in clean_document(pages))
    assert not any("Judul" in page for page in clean_document(pages))


def test_short_files_keep_their_edges() -> None:
    # Two pages are too few to tell a running header from a real repeated line.
    pages = [[("Judul", True), ("isi satu", False)], [("Judul", True), ("isi dua", False)]]
    assert clean_document(pages) == ["Judul\n\nisi satu", "Judul\n\nisi dua"]


def test_margin_lines_that_do_not_repeat_are_kept() -> None:
    pages = [[(f"Bab {i}: topik unik nomor {chr(65 + i)}", True), ("isi", False)] for i in range(5)]
    assert all(page.startswith("Bab") for page in clean_document(pages))
