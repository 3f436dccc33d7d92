import pytest

from nexus_assets.lib.index.chunking import ChunkingParams, chunk_file, split_text

SENTENCES = [f"Kalimat nomor {i} menjelaskan konsep algoritma dan struktur data secara singkat." for i in range(60)]
TEXT = " ".join(SENTENCES[:20]) + "\n\n" + " ".join(SENTENCES[20:40]) + "\n\n" + " ".join(SENTENCES[40:])


def test_chunks_respect_size_and_overlap() -> None:
    params = ChunkingParams(800, 100)
    spans = split_text(TEXT, params)
    assert len(spans) > 3
    for (s1, e1), (s2, _) in zip(spans, spans[1:], strict=False):
        assert e1 - s1 <= 800
        assert s2 < e1, "consecutive chunks overlap"
        assert e1 - s2 <= 100 + 1
    # Nothing is lost: every character of the text is inside some chunk (whitespace aside).
    covered = set()
    for s, e in spans:
        covered.update(range(s, e))
    assert all(i in covered or TEXT[i].isspace() for i in range(len(TEXT)))


def test_boundaries_prefer_paragraph_then_sentence_ends() -> None:
    for _s, e in split_text(TEXT, ChunkingParams(800, 100))[:-1]:
        assert TEXT[e - 1] == ".", f"chunk ends mid-sentence: {TEXT[e - 20 : e]!r}"
    paragraph_end = TEXT.index("\n\n")
    ends = [e for _, e in split_text(TEXT, ChunkingParams(1800, 100))]
    assert ends[0] == paragraph_end


def test_chunks_start_on_word_boundaries() -> None:
    for s, _ in split_text(TEXT, ChunkingParams(300, 60)):
        assert s == 0 or TEXT[s - 1].isspace()


def test_token_cap_shrinks_chunks_until_they_fit() -> None:
    def count_tokens(text: str) -> int:
        return len(text.split()) + 2  # a crude tokenizer: words plus special tokens

    spans = split_text(TEXT, ChunkingParams(800, 100, max_tokens=60), count_tokens)
    assert spans
    assert all(count_tokens(TEXT[s:e]) <= 60 for s, e in spans)


def test_a_text_without_spaces_is_cut_hard() -> None:
    spans = split_text("x" * 2000, ChunkingParams(800, 100))
    assert [e - s for s, e in spans] == [800, 800, 600]


@pytest.mark.parametrize(("size", "overlap"), [(40, 0), (800, 400), (800, -1)])
def test_invalid_params_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk_"):
        ChunkingParams(size, overlap)


def test_page_spans_and_stable_ids() -> None:
    pages = [(1, " ".join(SENTENCES[:15])), (2, " ".join(SENTENCES[15:30])), (3, " ".join(SENTENCES[30:45]))]
    params = ChunkingParams(800, 100)
    chunks = chunk_file("informatika/kelas_10", "buku.pdf", pages, params)
    assert chunks[0].page_start == 1
    assert chunks[-1].page_end == 3
    assert any(c.page_start != c.page_end for c in chunks), "a chunk crossing a page break spans both pages"
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    # Editing the last page keeps the ids of the chunks that did not change.
    edited = pages[:2] + [(3, "Halaman ini ditulis ulang seluruhnya. " * 20)]
    again = chunk_file("informatika/kelas_10", "buku.pdf", edited, params)
    unchanged = {c.chunk_id for c in chunks if c.page_end <= 2}
    assert unchanged and unchanged <= {c.chunk_id for c in again}
    # The same text in another file or partition gets another id.
    other = chunk_file("informatika/kelas_11", "buku.pdf", pages, params)
    assert not {c.chunk_id for c in other} & {c.chunk_id for c in chunks}


def test_repeated_text_gets_distinct_ids() -> None:
    pages = [(i, "Bagian ini sama persis di setiap halaman.") for i in range(1, 4)]
    chunks = chunk_file("p/q", "f.pdf", pages, ChunkingParams(50, 0))
    assert len(chunks) == 3
    assert len({c.chunk_id for c in chunks}) == 3


def test_empty_pages_give_no_chunks() -> None:
    assert chunk_file("p/q", "f.pdf", [(1, ""), (2, "   ")], ChunkingParams()) == []


def test_cached_spans_are_the_spans_and_are_keyed_by_text_params_and_tokenizer(tmp_path) -> None:
    from nexus_assets.lib.index.chunking import SpanCache, split_text

    calls = []

    def count(text: str) -> int:
        calls.append(text)
        return len(text.split())

    text = " ".join(f"Kalimat nomor {i} tentang algoritma." for i in range(400))
    params = ChunkingParams(300, 40, max_tokens=40)
    cache = SpanCache.under(tmp_path, "tok-a")
    first = cache.spans(text, params, count)
    assert first == split_text(text, params, count) and calls
    calls.clear()
    assert SpanCache.under(tmp_path, "tok-a").spans(text, params, count) == first
    assert calls == [], "an unchanged text is not counted again"
    SpanCache.under(tmp_path, "tok-b").spans(text, params, count)
    assert calls, "another tokenizer never reuses spans"
    calls.clear()
    cache.spans(text, ChunkingParams(300, 40, max_tokens=30), count)
    assert calls, "other parameters never reuse spans"
