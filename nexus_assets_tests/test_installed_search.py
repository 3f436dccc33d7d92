"""The school side searches what it installed: a pulled release, ranked as the build side ranks it."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.cli import main
from nexus_assets.lib.core.layout import DataLayout
from nexus_assets.lib.core.tables import chunks_frame, collection_metadatas, embeddings_frame
from nexus_assets.lib.distribution.vkp_pull import Source, installed_release, pull
from nexus_assets.lib.index.chroma_store import CollectionItems, build_collection, model_collection_name
from nexus_assets.lib.index.chunking import Chunk
from nexus_assets.lib.index.installed_search import InstalledSearch, NoReleaseError
from nexus_assets.lib.index.search import search_build
from nexus_assets.lib.publish.publishing import LocalPackageStore, publish_vkp
from nexus_assets.lib.publish.signing import Signer
from nexus_assets_tests.support.vkp_helpers import PART

SIGNER = Signer(Ed25519PrivateKey.generate(), "test key")
BOOKS = {
    "algoritma.pdf": [
        "Algoritma Dijkstra mencari rute terpendek pada graf berbobot dari satu simpul ke semua simpul lain.",
        "Pencarian biner membagi dua daftar yang terurut pada setiap langkah sampai elemen ditemukan.",
        "Pengurutan gelembung menukar dua elemen bertetangga yang urutannya salah berulang kali.",
    ],
    "jaringan.pdf": [
        "Protokol TCP menjamin data tiba berurutan dan utuh dengan konfirmasi dan pengiriman ulang.",
        "Alamat IP versi 4 terdiri dari 32 bit yang ditulis sebagai empat bilangan desimal.",
        "Router meneruskan paket antarjaringan berdasarkan tabel rute yang dimilikinya.",
    ],
}


def _publish(root: Path, embedder) -> tuple[DataLayout, Path]:
    """A real package of real MiniLM vectors (what `nexus build` publishes), and its build's Chroma dir."""
    layout = DataLayout(root / "publisher")
    chunks = []
    for file, texts in sorted(BOOKS.items()):
        for page, text in enumerate(texts, 1):
            cid = hashlib.sha256(f"{file}\x1f{text}".encode()).hexdigest()[:24]
            chunks.append(Chunk(cid, file, page - 1, page, page, text))
    frame = chunks_frame(chunks)
    vectors = np.asarray(embedder.embed(frame["text"].tolist()), dtype=np.float32)
    dims = vectors.shape[1]
    embeddings = embeddings_frame(frame["chunk_id"].tolist(), vectors, embedder.model_id, dims)
    items = CollectionItems(
        frame["chunk_id"].tolist(),
        vectors,
        frame["text"].tolist(),
        collection_metadatas(PART.subject, PART.grade, frame),
        embedder.model_id,
        dims,
    )
    name = model_collection_name(PART.collection_name, embedder.model_id, dims)
    info = build_collection(layout.root / "processed" / "chroma", name, items)
    sources = [{"file": f, "sha256": "0" * 64, "size": 1, "status": "ok"} for f in sorted(BOOKS)]
    counts = {"files": len(BOOKS), "chunks": len(frame), "embeddings": len(embeddings)}
    publish_vkp(LocalPackageStore(layout), PART, frame, embeddings, info.path, sources, counts, signer=SIGNER)
    return layout, info.path


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("installed")
    layout, build_dir = _publish(root, embedder)
    school = root / "school"
    [outcome] = pull(Source(str(layout.vkp_dir / "catalog.json")), school, SIGNER.public_key)
    assert outcome.installed_after == "1.0.0"
    return school, build_dir


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_an_installed_release_is_ranked_exactly_as_the_build_side_ranks_it(pulled, embedder, mode) -> None:
    school, build_dir = pulled
    searcher = InstalledSearch.open(school, PART.subject, PART.grade, embedder=embedder)
    assert searcher.release == installed_release(school, PART)
    for query in ("rute terpendek graf berbobot", "How many bits does an IPv4 address have?", "urutan paket TCP"):
        school_hits = searcher.search(query, k=4, mode=mode)
        build_hits = search_build(build_dir, query, embedder, k=4, mode=mode)
        assert [(h.chunk_id, round(h.score, 6), h.dense_rank, h.lexical_rank) for h in school_hits] == [
            (h.chunk_id, round(h.score, 6), h.dense_rank, h.lexical_rank) for h in build_hits
        ]
    top = searcher.search("Algoritma apa yang mencari rute terpendek pada graf?", k=1, mode=mode)[0]
    assert (top.file, top.page) == ("algoritma.pdf", 1)


def test_nexus_search_installed_searches_the_pulled_release(pulled, capsys) -> None:
    school, _ = pulled
    query = "Berapa bit panjang alamat IP versi 4?"
    code = main(
        ["--json", "search", query, "--subject", PART.subject, "--grade", PART.grade, "--installed", str(school)]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["release"] == str(installed_release(school, PART))
    assert (doc["hits"][0]["file"], doc["hits"][0]["page"]) == ("jaringan.pdf", 2)


def test_nothing_installed_is_a_clear_error(tmp_path: Path, capsys) -> None:
    code = main(["search", "graf", "--subject", PART.subject, "--grade", PART.grade, "--installed", str(tmp_path)])
    assert code != 0
    err = capsys.readouterr().err
    assert "no release of informatika/kelas_10 is installed" in err and "nexus vkp pull" in err
    with pytest.raises(NoReleaseError, match="pull it first"):
        InstalledSearch.open(tmp_path, PART.subject, PART.grade)
