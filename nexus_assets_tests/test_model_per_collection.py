"""One embedding model per collection: a model change is a new collection and a new major VKP version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.core.tables import chunks_frame, embeddings_frame
from nexus_assets.lib.index.chroma_store import (
    CollectionError,
    CollectionItems,
    build_collection,
    current_build,
    model_collection_name,
    open_collection,
    read_build_info,
)
from nexus_assets.lib.index.chunking import Chunk
from nexus_assets.lib.publish.publishing import LocalPackageStore, publish_vkp
from nexus_assets.lib.publish.signing import development_signer
from nexus_assets.lib.publish.vkp import read_manifest, verify_vkp

PART = Partition("informatika", "kelas_10")
MINILM, TITAN = ("sentence-transformers/all-MiniLM-L6-v2", 384), ("amazon.titan-embed-text-v2:0", 1024)


def _vectors(n: int, dims: int) -> np.ndarray:
    vectors = np.random.default_rng(dims).normal(size=(n, dims)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _build(root: Path, model: tuple[str, int], texts: list[str], name: str | None = None):
    ids = [f"id{i}" for i in range(len(texts))]
    name = name or model_collection_name(PART.collection_name, *model)
    return build_collection(
        root,
        name,
        CollectionItems(
            ids, _vectors(len(texts), model[1]), texts, [{"file": "buku.pdf", "page": 1}] * len(texts), *model
        ),
    )


def test_collection_names_carry_model_and_dims_and_chroma_accepts_them(tmp_path: Path) -> None:
    names = {model_collection_name(PART.collection_name, m, d) for m, d in (MINILM, TITAN, (TITAN[0], 256))}
    assert names == {
        "informatika__kelas_10__sentence-transformers-all-minilm-l6-v2-384d",
        "informatika__kelas_10__amazon.titan-embed-text-v2-0-1024d",
        "informatika__kelas_10__amazon.titan-embed-text-v2-0-256d",
    }
    info = _build(tmp_path / "chroma", TITAN, ["satu", "dua"])
    collection = open_collection(info.path)
    assert collection.name == model_collection_name(PART.collection_name, *TITAN)
    assert collection.metadata == {"model_id": TITAN[0], "dims": TITAN[1]}


def test_vectors_of_another_model_are_refused_and_the_collection_stays_as_it_was(tmp_path: Path) -> None:
    root = tmp_path / "chroma"
    first = _build(root, MINILM, ["satu", "dua"], name="informatika__kelas_10")
    with pytest.raises(
        CollectionError,
        match=r"holds vectors of .*MiniLM.* \(384 dims\); refusing to load "
        r"vectors of amazon\.titan.* \(1024 dims\)",
    ):
        _build(root, TITAN, ["satu", "dua"], name="informatika__kelas_10")
    with pytest.raises(CollectionError, match="256 dims"):
        _build(root, (MINILM[0], 256), ["satu", "dua"], name="informatika__kelas_10")
    assert current_build(root) == first.path and read_build_info(first.path)["model_id"] == MINILM[0]


def _publish(layout: DataLayout, root: Path, model: tuple[str, int], texts: list[str]):
    info = _build(root, model, texts)
    chunks = chunks_frame([Chunk(f"id{i}", "buku.pdf", i, 1, 1, t) for i, t in enumerate(texts)])
    embeddings = embeddings_frame(chunks["chunk_id"].tolist(), _vectors(len(texts), model[1]), *model)
    sources = [{"file": "buku.pdf", "sha256": "0" * 64, "size": 1, "status": "ok"}]
    counts = {"files": 1, "chunks": len(chunks), "embeddings": len(embeddings)}
    return info, publish_vkp(
        LocalPackageStore(layout),
        PART,
        chunks,
        embeddings,
        info.path,
        sources,
        counts,
        signer=development_signer(layout.root),
    )


def test_a_model_change_makes_a_new_collection_and_a_major_version(tmp_path: Path) -> None:
    layout, root = DataLayout(tmp_path), tmp_path / "chroma"
    minilm, v1 = _publish(layout, root, MINILM, ["satu", "dua"])
    _, v101 = _publish(layout, root, MINILM, ["satu", "dua diubah"])
    titan, v2 = _publish(layout, root, TITAN, ["satu", "dua diubah"])
    assert (v1.version, v101.version, v2.version) == ("1.0.0", "1.0.1", "2.0.0")
    assert "embedding sentence-transformers/all-MiniLM-L6-v2/384 -> amazon.titan-embed-text-v2:0/1024" in v2.reason
    assert titan.name != minilm.name and titan.mode == "fresh"
    manifest = read_manifest(Path(v2.location))
    assert manifest["embedding"] == {"model_id": TITAN[0], "dims": TITAN[1]}
    assert verify_vkp(Path(v2.location), development_signer(layout.root).public_key).ok
    _, v201 = _publish(layout, root, TITAN, ["satu", "dua", "tiga"])
    assert v201.version == "2.0.1", "the same model again: a patch"
    _, dims_changed = _publish(layout, root, (TITAN[0], 256), ["satu", "dua", "tiga"])
    assert dims_changed.version == "3.0.0", "other dims are another vector space: a major version"
