"""Cross-language query expansion (glossary) and the reranking pieces it feeds (pure logic)."""

import numpy as np
import pytest

from nexus_assets.lib.index.glossary import Glossary, en_stem, glossary, id_stem, id_stems
from nexus_assets.lib.index.lexical import BM25Index, char_grams
from nexus_assets.lib.index.search import Ranking, SearchIndex

SMALL = """
# a comment line
answer, answers = jawaban, jawab
visit = mengunjungi, kunjungi
computer science = informatika
"""


def test_expansion_goes_both_ways_and_skips_words_the_query_has() -> None:
    g = Glossary.parse(SMALL)
    assert g.expand("Where is the answer?").indonesian == ("jawab", "jawaban")
    assert g.expand("Apa jawaban soal ini?").english == ("answer", "answers")
    assert g.expand("answer jawaban").words == ("jawab", "answers")
    # a phrase is not a key word by word: "science" alone means nothing here
    assert g.expand("science").words == ()
    assert g.expand("informatika").english == ("computer", "science")


def test_lookup_forgives_inflections_on_both_sides() -> None:
    g = Glossary.parse(SMALL)
    assert id_stem("dikunjungi") == "kunjung" and "kunjung" in id_stems("mengunjungi")
    assert "tulis" in id_stems("menulis") and id_stem("pengguna") == "guna"
    assert id_stems("jawabannya") == ("jawaban", "jawab")
    assert en_stem("visits") == "visit" and en_stem("visited") == "visit"
    assert g.expand("Siapa yang dikunjungi?").english == ("visit",)
    assert g.expand("He visited").indonesian == ("kunjungi", "mengunjungi")


def test_a_malformed_glossary_line_is_refused_with_its_number() -> None:
    with pytest.raises(ValueError, match=r"g:3: expected 'english words = indonesian words'"):
        Glossary.parse("answer = jawaban\n\nno equals sign here\n", "g")
    with pytest.raises(ValueError, match=r"g:1: a side has no content word"):
        Glossary.parse("the = yang\n", "g")  # both are function words: nothing to translate


def test_the_shipped_glossary_parses_and_translates_school_words() -> None:
    g = glossary()
    assert len(g.to_id) > 300 and len(g.to_en) > 300
    assert "siswa" in g.expand("How many students took part?").indonesian
    assert "answer" in g.expand("Apa jawabannya?").english


def _index(texts: list[str], pages: list[tuple[str, int]]) -> SearchIndex:
    vectors = np.eye(len(texts), 4, dtype=np.float32)
    metadatas = [{"file": f, "page": p, "page_end": p} for f, p in pages]
    return SearchIndex(
        None,  # type: ignore[arg-type]
        "m",
        [f"c{i}" for i in range(len(texts))],
        texts,
        metadatas,
        vectors,
        BM25Index(texts),
        BM25Index(texts, analyzer=char_grams),
    )


def test_page_aggregation_lifts_the_page_two_of_whose_chunks_match() -> None:
    texts = [
        "jawaban soal pertama ditulis terurut",  # page 5, with a second matching chunk below
        "jawaban soal",  # page 7: one short chunk, BM25's best on its own
        "soal pertama jawaban ditulis abjad",  # page 5 again
        "soal lain tentang buku perpustakaan sekolah",  # page 9
    ]
    index = _index(texts, [("a.pdf", 5), ("a.pdf", 7), ("a.pdf", 5), ("a.pdf", 9)])
    assert index.best_other_of_page(np.array([0, 1, 2, 3]), np.array([0.5, 0.6, 0.4, 0.1])).tolist() == [
        0.4,
        0.0,
        0.5,
        0.0,
    ]
    zero = np.zeros(4, dtype=np.float32)
    without = index.rank("jawaban soal", zero, 4, "hybrid", Ranking(0.0, 1.0))
    with_pages = index.rank("jawaban soal", zero, 4, "hybrid", Ranking(0.0, 1.0, page_weight=1.0))
    assert without[0][0] == 1
    assert {with_pages[0][0], with_pages[1][0]} == {0, 2}  # the page with two matching chunks first


def test_gloss_signal_finds_the_page_in_the_other_language() -> None:
    texts = ["jawaban soal ditulis terurut abjad", "siswa membaca buku di perpustakaan"]
    index = _index(texts, [("a.pdf", 1), ("a.pdf", 2)])
    query = "Where are the answers written?"
    zero = np.zeros(4, dtype=np.float32)
    assert [score for _, score, _, _ in index.rank(query, zero, 2, "hybrid", Ranking(0.0, 1.0))] == [0.0, 0.0]
    ranked = index.rank(query, zero, 2, "hybrid", Ranking(0.0, 1.0, gloss_weight=1.0))
    assert ranked[0][0] == 0
