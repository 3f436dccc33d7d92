"""The bundled model: offline, normalised, and every stored chunk fits its window."""

from pathlib import Path

import numpy as np

from nexus_assets.lib.chunking import ChunkingParams, chunk_file
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
