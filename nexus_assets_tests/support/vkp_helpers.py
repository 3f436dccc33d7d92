"""Small synthetic partitions for the distribution tests: real packages, fake (deterministic) vectors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.core.tables import chunks_frame, collection_metadatas, embeddings_frame
from nexus_assets.lib.index.chroma_store import (
    CollectionItems,
    build_collection,
    model_collection_name,
    open_collection,
)
from nexus_assets.lib.index.chunking import Chunk
from nexus_assets.lib.publish.publishing import LocalPackageStore, PublishResult, publish_vkp
from nexus_assets.lib.publish.signing import Signer

PART = Partition("informatika", "kelas_10")


def vector_of(text: str, dims: int) -> np.ndarray:
    """The same text always gets the same unit vector (as the real vector cache guarantees)."""
    rng = np.random.default_rng(int(hashlib.sha256(text.encode()).hexdigest()[:8], 16))
    vector = rng.normal(size=dims).astype(np.float32)
    return vector / np.linalg.norm(vector)


def build(
    root: Path, files: dict[str, list[str]], model_id: str = "test-model", dims: int = 8
) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    chunks = []
    for file in sorted(files):
        for index, text in enumerate(files[file]):
            cid = hashlib.sha256(f"{file}\x1f{text}".encode()).hexdigest()[:24]
            chunks.append(Chunk(cid, file, index, index + 1, index + 1, text))
    frame = chunks_frame(chunks)
    vectors = np.stack([vector_of(t, dims) for t in frame["text"]]) if len(frame) else np.zeros((0, dims))
    embeddings = embeddings_frame(frame["chunk_id"].tolist(), vectors.astype(np.float32), model_id, dims)
    name = model_collection_name(PART.collection_name, model_id, dims)  # as the chroma_collection asset names it
    info = build_collection(
        root / "chroma",
        name,
        CollectionItems(
            frame["chunk_id"].tolist(),
            vectors.astype(np.float32),
            frame["text"].tolist(),
            collection_metadatas(PART.subject, PART.grade, frame),
            model_id,
            dims,
        ),
    )
    return frame, embeddings, info.path


def publish(
    layout: DataLayout,
    files: dict[str, list[str]],
    signer: Signer,
    keep: int = 5,
    model_id: str = "test-model",
    dims: int = 8,
) -> PublishResult:
    chunks, embeddings, chroma = build(layout.root / "processed", files, model_id, dims)
    sources = [{"file": f, "sha256": "0" * 64, "size": 1, "status": "ok"} for f in sorted(files)]
    counts = {"files": len(files), "chunks": len(chunks), "embeddings": len(embeddings)}
    return publish_vkp(
        LocalPackageStore(layout), PART, chunks, embeddings, chroma, sources, counts, signer=signer, keep_versions=keep
    )


def collection_snapshot(build_dir: Path) -> dict[str, tuple]:
    """Every item of a Chroma build: id -> (document, metadata, vector bytes)."""
    got = open_collection(build_dir).get(include=["documents", "metadatas", "embeddings"])
    return {
        cid: (doc, tuple(sorted(meta.items())), np.asarray(vec, dtype="<f4").tobytes())
        for cid, doc, meta, vec in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True)
    }


def files_of(n: int, chunks_per_file: int = 6, changed: dict[int, str] | None = None) -> dict[str, list[str]]:
    changed = changed or {}
    return {
        f"buku_{i:02d}.pdf": [
            f"Bab {j} buku {i}: {changed.get(i, 'isi asli')} " + "kata " * 40 for j in range(chunks_per_file)
        ]
        for i in range(n)
    }
