"""Stored digests never change: known inputs give the digests the code gave before lib/core/hashing.py.

Cache keys, chunk ids, content hashes of published packages, upload and collection fingerprints and
object checksums are written down (caches, catalogs, manifests, S3 metadata). The expected values
below were computed by the helpers each module had before they moved into `lib/core/hashing.py`; a
change here would make every cache miss and every published content hash differ.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.lib.core import caches, hashing
from nexus_assets.lib.core.build_fingerprint import code_digest
from nexus_assets.lib.index import chroma_store, chunking, embedding, embedding_engines
from nexus_assets.lib.ingest import ocr, upload_tracking
from nexus_assets.lib.publish import signing, vkp, vkp_delta

TEXT = "Fotosintesis — daun hijau menyerap cahaya.\nBab 2: ½ dan ﬁ"
CHUNKS = [("c2", "b.pdf", 3, 4, "dua"), ("c1", "a.pdf", 1, 2, TEXT)]

EXPECTED = {
    "chunk.content_sha256": "00e73e6f536ddf0ee3d641911d26a613494dfa3ae6be2f0c0d0da7d4f457cfa9",
    "chunk_id_for": "456b64fc6866970c4d6eccf0",
    "chunk_id_for.ocr": "c87c1ff389679f2acb4290b9",
    "span_key": "057bace57f0b8ee07741fe7054457c983dab1e9370b99dcc58edaf2e233f72b8",
    "sha256_file": "7d471e4af16db5a30ce10aebbc29f5178b2edbad6c7dc2e8ff8ee6e4848a726f",
    "vkp.content_hash": "50373ee862be03b59fa5e086779f90738143b06db9f7a3e579a76752a0e98c91",
    "vkp.member": "00e73e6f536ddf0ee3d641911d26a613494dfa3ae6be2f0c0d0da7d4f457cfa9",
    "delta.row_digests": "c1=6fecb294cc211e4bcad8f296b4e509a8dbf8ce8c11976a404361ff908c6b501d"
    "|c2=91ba547feb8aadcc878ab5b8cdac83b7d4d92c9500b89fcce5b9dd2580f4a151",
    "delta.tables_digest": "56c62f8f2028256850833042faf37d2ba4c95eaeffc31d9a309d9c8e8923734a",
    "upload.fingerprint": "035d9ad92637c77d719d",
    "upload.fingerprint.empty": "3321d5388c291c176d55",
    "chroma.item_digests": "c1=03927116415abc9492adca3f0c5a7771|c2=fcfcbb1a763128caf2463e19d6e403d1",
    "chroma.build_fingerprint": "abe5cf6a511fbb0229e0e1bd7794c9f52e88550327d465a4286ca7a962eca225",
    "chroma.build_fingerprint.no_vectors": "ef07b6ea6e806906bdb44197fdd5dc6e8deb3698e734cc507eda99fb15e1e1d9",
    "caches.namespace_digest": "ce2381b51f7acd94b88793c9",
    "signing.key_id": "56475aa75463474c",
    "embedding.content_key": "00e73e6f536ddf0ee3d641911d26a613494dfa3ae6be2f0c0d0da7d4f457cfa9",
    "weights_digest": "491bc6719e8c947f4ae5e7cbbb7b26a43617c4f55cddcf5abb69b4dbf2a3cfbe",
    "ocr.cache_key": "ocr-ind+eng-300dpi-3ed492bc",
    "build.code_digest": "b54962090b8d37a0bce8481eb760a7d2285f19b22622eb3305e36baaa96599ce",
}


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    chunks = pd.DataFrame(
        [
            {
                "chunk_id": cid,
                "file": file,
                "chunk_index": i,
                "page_start": a,
                "page_end": b,
                "char_len": len(text),
                "content_sha256": hashing.sha256_text(text),
                "ocr": i == 1,
                "text": text,
            }
            for i, (cid, file, a, b, text) in enumerate(CHUNKS)
        ]
    )
    vectors = [np.linspace(-1, 1, 4, dtype="float32"), np.arange(4, dtype="float32") / 7]
    embeddings = pd.DataFrame({"chunk_id": [c[0] for c in CHUNKS], "model_id": "m", "dims": 4, "embedding": vectors})
    return chunks, embeddings


def digests(tmp_path) -> dict[str, str]:
    """What the pipeline's digest functions give for fixed inputs (files written under tmp_path)."""
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 5000)  # > 1 MiB: the streamed path reads several blocks
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 4}')
    (model / "model.safetensors").write_bytes(b"\x00weights" * 100)
    tessdata = tmp_path / "tessdata"
    tessdata.mkdir()
    for language in ("ind", "eng"):
        (tessdata / f"{language}.traineddata").write_bytes(language.encode() * 10)
        os.utime(tessdata / f"{language}.traineddata", (1_700_000_000, 1_700_000_000))
    code = tmp_path / "code"
    (code / "sub").mkdir(parents=True)
    (code / "a.py").write_text("x = 1\n")
    (code / "sub" / "b.py").write_text("y = 2\n")
    chunks, embeddings = _frames()
    vectors = np.stack(embeddings["embedding"].to_list())
    metas = [{"file": c[1], "page_start": c[2]} for c in CHUNKS]
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key()
    return {
        "chunk.content_sha256": chunking.Chunk("c1", "a.pdf", 0, 1, 2, TEXT).content_sha256,
        "chunk_id_for": chunking.chunk_id_for("ipa/kelas-7", "a.pdf", TEXT, 2),
        "chunk_id_for.ocr": chunking.chunk_id_for("ipa/kelas-7", "a.pdf", TEXT, 0, stream="ocr"),
        "span_key": chunking.SpanCache(None, "tok-1").key(TEXT, chunking.ChunkingParams()),  # type: ignore[arg-type]
        "sha256_file": hashing.sha256_file(blob),  # was pdf_extraction.sha256_file and s3_store.sha256_of_file
        "vkp.content_hash": vkp.content_hash("minilm", 384, CHUNKS),
        "vkp.member": hashing.sha256_bytes(TEXT.encode()),  # was vkp._sha256
        "delta.row_digests": "|".join(f"{k}={v}" for k, v in sorted(vkp_delta.row_digests(chunks, embeddings).items())),
        "delta.tables_digest": vkp_delta.tables_digest(chunks, embeddings),
        "upload.fingerprint": upload_tracking.fingerprint([("b.pdf", '"etag-2"'), ("a.pdf", "e1")]),
        "upload.fingerprint.empty": upload_tracking.fingerprint([]),
        "chroma.item_digests": "|".join(
            f"{k}={v}"
            for k, v in sorted(
                chroma_store.item_digests([c[0] for c in CHUNKS], [c[4] for c in CHUNKS], metas, vectors).items()
            )
        ),
        "chroma.build_fingerprint": chroma_store.build_fingerprint(
            [c[0] for c in CHUNKS], [c[4] for c in CHUNKS], metas, "minilm", 4, vectors
        ),
        "chroma.build_fingerprint.no_vectors": chroma_store.build_fingerprint(
            [c[0] for c in CHUNKS], [c[4] for c in CHUNKS], metas, "minilm", 4
        ),
        "caches.namespace_digest": caches.namespace_digest("model=minilm|dims=384|engine=torch"),
        "signing.key_id": signing.key_id(key),
        "embedding.content_key": embedding.content_key(TEXT),
        "weights_digest": embedding_engines.weights_digest(str(model)),
        "ocr.cache_key": ocr.OcrEngine(str(tessdata), "ind+eng", 300).cache_key,
        "build.code_digest": code_digest(code),
    }


def test_known_inputs_keep_their_digests(tmp_path):
    assert digests(tmp_path) == EXPECTED


@pytest.mark.parametrize("value", [{"b": [1, "é"], "a": None}, [3, {"z": 1, "y": 2}], "text"])
def test_sha256_json_is_the_sorted_json_the_records_hashed(value):
    import hashlib
    import json

    assert hashing.sha256_json(value) == hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
    assert (
        hashing.sha256_json(value, default=str)
        == hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    )


def test_record_digest_frames_fields_and_records():
    import hashlib

    expected = hashlib.sha256(b"head\x1f7")
    expected.update(b"\x1ea\x1f1\x1e\xc3\xa9\x1f")
    assert hashing.RecordDigest("head", 7).record("a", 1).record("é", "").hexdigest() == expected.hexdigest()
    assert hashing.RecordDigest("raw-v1").hexdigest(20) == hashlib.sha256(b"raw-v1").hexdigest()[:20]


def test_only_the_hashing_module_uses_hashlib():
    from pathlib import Path

    lib = Path(hashing.__file__).resolve().parents[1]
    users = sorted(
        str(p.relative_to(lib))
        for p in lib.rglob("*.py")
        if "hashlib" in p.read_text(encoding="utf-8") and p.name != "hashing.py"
    )
    assert not users, f"use nexus_assets.lib.core.hashing instead of hashlib in: {users}"
