"""What one fresh extraction worker costs until its first file is read: a forkserver child or a program (not a test).

    .venv/bin/python benchmarks/bench_extraction_workers.py [--rounds 3]
    HEAVY_MAIN=1 .venv/bin/python benchmarks/bench_extraction_workers.py   # __main__ imports Dagster

The memory budget (NEXUS_MAX_EXTRACTION_MEMORY_MB) sends every changed file to a worker process, so this is
what an incremental build pays on top of the read itself. `forkserver` is how workers were started before
(multiprocessing's forkserver re-runs the parent's `__main__` in every worker); `program` is how
`pdf_extraction._start_workers` starts them now (`python -c`, the worker code only). HEAVY_MAIN=1 imports
Dagster at the top of `__main__` (so the forkserver's re-run of `__main__` imports it too), as in a step process
Dagster launched; `nexus build`'s `__main__` is the light console script. Each round times both, alternating.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nexus_assets.lib.core.cpu_info import cpu_kind
from nexus_assets.lib.ingest import pdf_extraction as pe

if os.environ.get("HEAVY_MAIN"):
    import dagster  # noqa: F401 -- what the __main__ of a step process Dagster launched has imported


def first_read(kind: str, pdf: Path) -> float:
    """Seconds from starting one worker to its first extraction's result."""
    started = time.perf_counter()
    if kind == "program":
        worker = pe._spawn(pe._worker_main)
    else:
        ctx = get_context("forkserver")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=pe._worker_main, args=(child,))
        proc.start()
        child.close()
        worker = pe._Worker(proc, parent)  # type: ignore[arg-type]
    assert worker.conn.poll(120) and worker.conn.recv() == "ready"
    worker.conn.send((pdf, "bench", None, pe.ExtractionLimits(), None))
    result = worker.conn.recv()
    seconds = time.perf_counter() - started
    assert result.status == "ok", result
    worker.stop()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import pymupdf

    with tempfile.TemporaryDirectory(prefix="nexus-bench-workers-") as tmp:
        pdf = Path(tmp) / "satu.pdf"
        doc = pymupdf.open()
        doc.new_page().insert_text((72, 72), "Satu halaman untuk mengukur pekerja ekstraksi.")
        doc.save(pdf)
        times: dict[str, list[float]] = {"forkserver": [], "program": []}
        for number in range(args.rounds):
            for kind in ("forkserver", "program") if number % 2 == 0 else ("program", "forkserver"):
                times[kind].append(first_read(kind, pdf))
                print(f"  round {number + 1} {kind}: {times[kind][-1]:.2f} s", flush=True)
    for kind, values in times.items():
        print(f"{kind}_first_read_s={statistics.median(values):.2f}")
    print(f"main={'dagster' if os.environ.get('HEAVY_MAIN') else 'light'}")
    print(f"cpu={cpu_kind()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
