"""Incremental Chroma (patch a copy of the current build) against a fresh write (not a test).

    .venv/bin/python benchmarks/bench_chroma.py [--items 2800] [--changed 60] [--rounds 3]

Both keep the guarantee that readers only ever see complete builds (written aside, then the
`current` symlink is swapped). Times `build_collection` in one process, alternating, after a
warm-up (Chroma is imported once), for: a fresh build with add() batches of 1,000 and of 5,000
items, and an incremental build where `--changed` items changed text (new ids) and as many old
ones were removed, as after a revised PDF.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nexus_assets.lib.index import chroma_store
from nexus_assets.lib.index.chroma_store import CollectionItems as Items


def corpus(items: int, changed: int, dims: int = 384):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(items + changed, dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"chunk{i:06d}" for i in range(items + changed)]
    docs = [f"Potongan teks nomor {i}. " * 30 for i in range(items + changed)]
    metas = [{"file": f"buku_{i % 10}.pdf", "page": i // 7 + 1, "chunk_index": i} for i in range(items + changed)]
    before = (ids[:items], vectors[:items], docs[:items], metas[:items])
    after = (ids[changed : items + changed], vectors[changed:], docs[changed:], metas[changed:])
    return before, after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2800)
    parser.add_argument("--changed", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    (ids, vectors, docs, metas), (ids2, vectors2, docs2, metas2) = corpus(args.items, args.changed)
    times: dict[str, list[float]] = {"fresh, batches of 1,000": [], "fresh, batches of 5,000": [], "incremental": []}
    work = Path(tempfile.mkdtemp(prefix="nexus-bench-chroma-"))
    try:
        for number in range(args.rounds + 1):  # round 0 is the warm-up
            for case in times:
                root = work / f"{number}-{case[:5]}-{len(times[case])}"
                if case == "incremental":
                    chroma_store.build_collection(root, "bench__chroma", Items(ids, vectors, docs, metas, "m", 384))
                    started = time.perf_counter()
                    changed = Items(ids2, vectors2, docs2, metas2, "m", 384)
                    info = chroma_store.build_collection(root, "bench__chroma", changed)
                    assert info.mode == "incremental", info
                else:
                    chroma_store.ADD_BATCH = 1000 if "1,000" in case else 5000
                    started = time.perf_counter()
                    chroma_store.build_collection(
                        root, "bench__chroma", Items(ids2, vectors2, docs2, metas2, "m", 384), incremental=False
                    )
                    chroma_store.ADD_BATCH = 5000
                if number:
                    times[case].append(time.perf_counter() - started)
                shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.items} items, {args.changed} changed and {args.changed} removed; median of {args.rounds}")
    for case, values in times.items():
        print(f"{case:<26} {statistics.median(values):6.2f} s   ({' '.join(f'{v:.2f}' for v in values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
