"""The bundled model: offline, normalised, every stored chunk fits its window; the fast path and the cache."""

from pathlib import Path

import numpy as np
import pytest

from nexus_assets.lib.caches import VectorCache
from nexus_assets.lib.chunking import ChunkingParams, chunk_file
from nexus_assets.lib.embedding import (
    SentenceTransformerEmbedder,
    bundled_minilm_path,
    choose_precision,
    embed_with_cache,
    length_batches,
)
from nexus_assets.lib.pdf_extraction import extract_pdf


def test_bundled_minilm_gives_normalised_384_dim_vectors(embedder) -> None:
    vectors = embedder.embed(["Fotosintesis terjadi di kloroplas.", "Algoritma adalah urutan langkah."])
    assert embedder.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    same = embedder.embed(["Fotosintesis terjadi di kloroplas."])
    assert float(vectors[0] @ same[0]) > 0.999
    assert float(vectors[0] @ vectors[1]) < 0.9


def test_every_stored_chunk_fits_the_model_window(embedder, sample_raw_root: Path) -> None:
    """Nothing a chunk stores goes unembedded: the model ignores tokens past max_seq_length."""
    params = ChunkingParams(800, 100, max_tokens=embedder.max_tokens)
    checked = 0
    for pdf in sorted(sample_raw_root.rglob("*.pdf")):
        result = extract_pdf(pdf)
        pages = [(p.page, p.text) for p in result.pages if p.status == "ok"]
        for chunk in chunk_file("x/y", pdf.name, pages, params, embedder.count_tokens):
            assert embedder.count_tokens(chunk.text) <= embedder.max_tokens, (pdf.name, chunk.chunk_index)
            checked += 1
    assert checked > 50


# --- the fast path, its fallback, and the vector cache -------------------------------------------------------


@pytest.fixture(scope="module")
def sample_chunks(sample_raw_root: Path) -> list[str]:
    """Every chunk the pipeline makes from the generated sample corpus."""
    counter = SentenceTransformerEmbedder(bundled_minilm_path())
    params = ChunkingParams(800, 100, max_tokens=counter.max_tokens)
    texts = []
    for pdf in sorted(sample_raw_root.rglob("*.pdf")):
        pages = [(p.page, p.text) for p in extract_pdf(pdf).pages if p.status == "ok"]
        texts += [c.text for c in chunk_file("x/y", pdf.name, pages, params, counter.count_tokens)]
    return texts


def test_the_fast_path_stays_within_0999_cosine_of_fp32_sentence_transformers(sample_chunks: list[str]) -> None:
    """The reference is the model as published: sentence-transformers itself in fp32."""
    reference = SentenceTransformerEmbedder(bundled_minilm_path(), precision="fp32", engine="sentence-transformers")
    chosen = SentenceTransformerEmbedder(bundled_minilm_path())  # what a build runs on this CPU
    slim_fp32 = SentenceTransformerEmbedder(bundled_minilm_path(), precision="fp32")
    expected = reference.embed(sample_chunks)
    for embedder, floor in ((chosen, 0.999), (slim_fp32, 0.99999)):
        cosine = np.sum(embedder.embed(sample_chunks) * expected, axis=1)
        print(f"{embedder.engine} {embedder.precision}: mean cosine {cosine.mean():.6f}, min {cosine.min():.6f}")
        assert cosine.mean() >= floor and cosine.min() >= floor - 0.002, (embedder.engine, embedder.precision)
    assert len(sample_chunks) > 50


def test_precision_is_chosen_per_cpu_with_fp32_as_the_safe_default() -> None:
    assert choose_precision("auto", frozenset({"avx512f", "avx512_bf16"})) == "bf16"
    assert choose_precision("auto", frozenset({"amx_bf16", "amx_tile"})) == "bf16"
    assert choose_precision("auto", frozenset({"avx2", "avx512f"})) == "fp32", "emulated bf16 is slower than fp32"
    assert choose_precision("auto", frozenset()) == "fp32"
    assert choose_precision("fp32", frozenset({"avx512_bf16"})) == "fp32"
    with pytest.raises(ValueError, match="unknown embedding precision 'int8'"):
        choose_precision("int8")


def test_bf16_that_drifts_falls_back_to_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    import nexus_assets.lib.embedding as embedding

    monkeypatch.setattr(embedding, "MIN_FAST_PATH_COSINE", 1.5)  # no real vector can pass
    monkeypatch.setattr(embedding, "torch_runs_bf16", lambda: True)  # run the check even where bf16 is emulated
    embedder = SentenceTransformerEmbedder(bundled_minilm_path(), precision="bf16")
    embedder.load()
    assert embedder.precision == "fp32" and "drift" in embedder.fallback_reason


def test_token_counts_match_the_model_tokenizer(sample_chunks: list[str]) -> None:
    st = SentenceTransformerEmbedder(bundled_minilm_path(), engine="sentence-transformers")
    st.load()
    tokenizer = st._model.tokenizer
    for text in sample_chunks[:40] + ["", "anak-anak bermain di Jawa-Bali", "x" * 3000]:
        assert st.count_tokens(text) == len(tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"])


def test_a_vector_does_not_depend_on_the_texts_embedded_with_it(sample_chunks: list[str]) -> None:
    """Same model, precision and text, same bytes: in a cold build, an incremental one or a cache refill."""
    embedder = SentenceTransformerEmbedder(bundled_minilm_path())
    everything = embedder.embed(sample_chunks)
    some = list(range(len(sample_chunks)))[::-3]
    again = embedder.embed([sample_chunks[i] for i in some])
    assert all(again[j].tobytes() == everything[i].tobytes() for j, i in enumerate(some))
    assert length_batches([5, 3, 5, 5, 3], 2) == [[1, 4], [0, 2], [3]]


def test_only_new_chunks_are_embedded_and_a_fully_cached_build_never_loads_the_model(
    tmp_path: Path, sample_chunks: list[str]
) -> None:
    texts = sample_chunks[:30]
    with VectorCache(tmp_path) as cache:
        first = embed_with_cache(SentenceTransformerEmbedder(bundled_minilm_path()), texts, cache)
        assert (first.embedded, first.cached) == (30, 0)
        fresh = SentenceTransformerEmbedder(bundled_minilm_path())
        again = embed_with_cache(fresh, texts, cache)
        assert (again.embedded, again.cached) == (0, 30)
        assert fresh._model is None, "every chunk cached: the model is never loaded"
        assert again.vectors.tobytes() == first.vectors.tobytes()
        changed = [*texts[:29], "Teks yang baru ditambahkan ke buku."]
        third = embed_with_cache(fresh, [*changed, changed[0]], cache)
        assert (third.embedded, third.cached) == (1, 30)
        assert third.vectors[:29].tobytes() == first.vectors[:29].tobytes()
        assert third.vectors[30].tobytes() == third.vectors[0].tobytes()


def test_an_embedder_counts_tokens_without_importing_torch() -> None:
    """A build whose chunks are all cached must not pay torch's import (seconds)."""
    import subprocess
    import sys

    code = ("import sys; from nexus_assets.lib.embedding import default_embedder; e = default_embedder(); "
            "e.count_tokens('Fotosintesis'); e.cache_namespace; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
