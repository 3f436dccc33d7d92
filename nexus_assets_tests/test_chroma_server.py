"""Chroma server mode against a real `chroma run` (from the installed chromadb) on a free loopback port.

Two partitions are written at the same time, each to its own collection, while a reader keeps
resolving both pointers: it only ever sees nothing yet or a complete build. Afterwards both are
complete and queryable, a rewrite swaps in a new build and removes the old one's predecessor, and
the auth token appears nowhere in what the store prints or raises.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nexus_assets.lib.index.chroma_store import (
    BUILD_INFIX,
    ChromaServer,
    CollectionError,
    CollectionItems,
    open_server_collection,
    publish_to_server,
    query_server_collection,
)

pytestmark = pytest.mark.slow

DIMS = 384
ITEMS = 3000  # enough that a write takes several requests, so the reader overlaps it
TOKEN = "s3cret-token-never-logged"
PARTITIONS = ("informatika__kelas_10", "biologi__kelas_11")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    port = _free_port()
    chroma = Path(sys.executable).with_name("chroma")
    log = (tmp_path / "chroma.log").open("wb")
    process = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "chroma"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = ChromaServer(host="127.0.0.1", port=port, token=TOKEN)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                server.client().heartbeat()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("chroma run did not answer:\n" + (tmp_path / "chroma.log").read_text()[-3000:])
                time.sleep(0.3)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _items(name: str, seed: int) -> tuple[list[str], np.ndarray, list[str], list[dict]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(ITEMS, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"{name}-{i:05d}" for i in range(ITEMS)]
    return ids, vectors, [f"teks {name} {i}" for i in range(ITEMS)], [{"chunk_index": i} for i in range(ITEMS)]


def test_two_partitions_written_concurrently_are_complete_and_queryable(chroma_server: ChromaServer) -> None:
    items = {name: _items(name, seed) for seed, name in enumerate(PARTITIONS)}
    results: dict[str, object] = {}
    seen: list[tuple[str, int]] = []
    done = threading.Event()

    def write(name: str) -> None:
        try:  # one client per writer, as separate runs would have
            content = CollectionItems(*items[name], "minilm", DIMS)
            results[name] = publish_to_server(chroma_server.client(), name, content)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[name] = exc

    def read() -> None:
        client = chroma_server.client()
        while not done.is_set():
            for name in PARTITIONS:
                try:
                    seen.append((name, open_server_collection(client, name).count()))
                except CollectionError:
                    seen.append((name, -1))  # no pointer yet: nothing published
            time.sleep(0.05)

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(name,)) for name in PARTITIONS]
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=300)
    done.set()
    reader.join(timeout=30)

    for name in PARTITIONS:
        assert not isinstance(results[name], Exception), results[name]
        assert results[name].count == ITEMS and not results[name].reused
    assert seen, "the reader never ran"
    assert {count for _, count in seen} <= {-1, ITEMS}, "a reader saw a half-written collection"

    client = chroma_server.client()
    for name, (ids, vectors, documents, _) in items.items():
        hits = query_server_collection(client, name, vectors[7], k=3, expected_model_id="minilm")
        assert hits[0]["id"] == ids[7] and hits[0]["text"] == documents[7] and hits[0]["score"] > 0.999
    with pytest.raises(CollectionError, match="built with minilm"):
        open_server_collection(client, PARTITIONS[0], expected_model_id="other-model")

    # Same content: nothing written. Changed content: a new build swapped in, the oldest pruned.
    name = PARTITIONS[0]
    first = results[name].path.name
    again = publish_to_server(client, name, CollectionItems(*items[name], "minilm", DIMS))
    assert again.reused and again.path.name == first
    ids, vectors, documents, metadatas = items[name]
    second = publish_to_server(
        client, name, CollectionItems(ids[:-1], vectors[:-1], documents[:-1], metadatas[:-1], "minilm", DIMS)
    )
    third = publish_to_server(
        client, name, CollectionItems(ids[:-2], vectors[:-2], documents[:-2], metadatas[:-2], "minilm", DIMS)
    )
    assert open_server_collection(client, name).count() == ITEMS - 2
    builds = {c.name for c in client.list_collections() if c.name.startswith(name + BUILD_INFIX)}
    assert builds == {second.path.name, third.path.name}, "the current build and its predecessor remain"


def test_the_token_is_sent_but_never_shown(chroma_server: ChromaServer) -> None:
    assert chroma_server.headers() == {"Authorization": f"Bearer {TOKEN}"}
    assert TOKEN not in repr(chroma_server)
    unreachable = ChromaServer(host="127.0.0.1", port=_free_port(), token=TOKEN)
    with pytest.raises(Exception) as failure:  # whatever chromadb raises must not hold the token
        unreachable.client().heartbeat()
    assert TOKEN not in str(failure.value) and TOKEN not in repr(failure.value)
