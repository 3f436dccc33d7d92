"""BM25 and the fusion of dense and lexical scores (pure logic)."""

import pytest

from nexus_assets.lib.index.lexical import BM25Index, reciprocal_rank_fusion, relative_score_fusion, tokenize


def test_tokenize_keeps_words_and_numbers_and_drops_single_letters() -> None:
    assert tokenize("Algoritma Dijkstra, a 2 kali_lipat!") == ["algoritma", "dijkstra", "2", "kali", "lipat"]


def test_bm25_ranks_the_document_holding_the_rare_term_first() -> None:
    docs = [
        "algoritma pengurutan data",
        "algoritma pencarian biner pada data terurut",
        "rute tercepat dengan algoritma dijkstra",
        "data dan informasi",
    ]
    index = BM25Index(docs)
    assert index.top("algoritma dijkstra", 2)[0] == 2
    assert index.top("fotosintesis", 3) == []  # no shared term: no candidate at all


def test_score_fusion_keeps_a_decisive_lexical_match_that_rank_fusion_buries() -> None:
    # "exact" is BM25's clear first (score 9 vs <=2) and only in the middle of the dense scores;
    # "a".."d" are high in both lists, "e" low in both.
    dense = {"a": 0.62, "b": 0.61, "c": 0.60, "d": 0.59, "exact": 0.45, "e": 0.30}
    lexical = {"a": 2.0, "b": 1.9, "c": 1.8, "d": 1.7, "exact": 9.0, "e": 0.5}
    fused = [cid for cid, _ in relative_score_fusion([dense, lexical])]
    assert fused[0] == "exact"
    by_rank = [
        cid
        for cid, _ in reciprocal_rank_fusion(
            [sorted(dense, key=dense.get, reverse=True), sorted(lexical, key=lexical.get, reverse=True)]
        )
    ]
    assert by_rank.index("exact") > 0


def test_score_fusion_scales_each_modality_and_honours_weights() -> None:
    dense = {"x": 0.9, "y": 0.5}
    lexical = {"x": 0.0, "y": 30.0}
    assert dict(relative_score_fusion([dense, lexical])) == {"x": 0.5, "y": 0.5}
    assert relative_score_fusion([dense, lexical], weights=[0.8, 0.2])[0] == ("x", 0.8)
    assert dict(relative_score_fusion([{"x": 1.0, "y": 1.0}])) == {"x": 0.0, "y": 0.0}  # no spread, no signal


def test_score_fusion_refuses_candidates_scored_in_one_modality_only() -> None:
    with pytest.raises(ValueError, match="lacks 1 of the candidates"):
        relative_score_fusion([{"x": 1.0, "y": 0.5}, {"x": 3.0}])
    with pytest.raises(ValueError, match="2 weights for 1"):
        relative_score_fusion([{"x": 1.0}], weights=[0.5, 0.5])


def test_function_words_of_either_language_do_not_match() -> None:
    # An English question over a mixed partition: "how many ... the" must not pull English chunks up.
    docs = [
        "The summary of the act: how the many provisions apply to the service providers.",
        "Pameran berlian dihadiri oleh 2000 orang pengunjung yang masuk satu per satu.",
    ]
    index = BM25Index(docs)
    assert index.top("How many visitors came to the diamond exhibition?", 2) == []
    assert index.top("Berapa pengunjung pameran berlian?", 2) == [1]


def test_character_grams_match_cognates_across_languages() -> None:
    from nexus_assets.lib.index.lexical import char_grams

    assert char_grams("Algoritma") == [" alg", "algo", "lgor", "gori", "orit", "ritm", "itma", "tma "]
    docs = ["Protokol ini dikembangkan oleh Dojo Foundation", "Konstanta ditulis dengan huruf besar semua"]
    grams = BM25Index(docs, analyzer=char_grams)
    assert BM25Index(docs).top("Which protocol did the Dojo people develop?", 2) == [0]
    assert grams.top("naming convention for constants", 2)[0] == 1  # konstanta ~ constants, no shared word


def test_coverage_is_the_share_of_the_query_idf_a_chunk_holds() -> None:
    index = BM25Index(["graf berbobot dijkstra", "graf saja", "lain sekali"])
    cover = index.coverage("dijkstra graf", [0, 1, 2])
    assert cover[0] == pytest.approx(1.0) and 0 < cover[1] < 0.5 and cover[2] == 0
