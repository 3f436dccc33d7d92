"""How a cold `nexus build` grows with the corpus, and the memory of one very large PDF (not a test).

    .venv/bin/python benchmarks/bench_scale.py                          # 300, 1,000 and 3,000 pages
    .venv/bin/python benchmarks/bench_scale.py --pages 300 1000 --single-pdf 1000

Each size is a fresh data directory and Dagster instance holding 10 generated books
(benchmarks/corpus.py) with `pages / 10` pages each. `--single-pdf N` also builds one N-page
PDF alone and reports its peak RSS (the issue's bound: under 2 GB for 1,000 pages). Prints
seconds, chunks, seconds per 1,000 chunks and peak RSS per size, and the growth factors.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.corpus import book_pdf, write_corpus
from benchmarks.runner import embedded_counts, run_nexus

SUBJECT = "skala"


def cold_build(work: Path, grade: str, make_pdfs) -> tuple[float, int, int]:
    data, home = work / grade / "data", work / grade / "home"
    shutil.rmtree(work / grade, ignore_errors=True)
    make_pdfs(data / "raw-curriculum" / SUBJECT / grade)
    run = run_nexus(data, home, SUBJECT, grade)
    chunks, _ = embedded_counts(run)
    shutil.rmtree(work / grade, ignore_errors=True)
    return run.seconds, chunks, run.peak_rss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, nargs="*", default=[300, 1000, 3000])
    parser.add_argument("--single-pdf", type=int, default=1000, help="pages of the one-file build (0: skip)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="nexus-bench-scale-"))
    rows = []
    try:
        for pages in args.pages:
            seconds, chunks, rss = cold_build(work, f"p{pages}", lambda d, p=pages: write_corpus(d, 10, p // 10))
            rows.append((f"{pages} pages in 10 PDFs", pages, seconds, chunks, rss))
            print(f"{rows[-1][0]}: {seconds:.1f} s, {chunks} chunks, peak RSS {rss / 1e6:.0f} MB", flush=True)
        if args.single_pdf:

            def one_pdf(target: Path) -> None:
                target.mkdir(parents=True, exist_ok=True)
                (target / "buku_tebal.pdf").write_bytes(book_pdf(0, args.single_pdf))

            seconds, chunks, rss = cold_build(work, "satu", one_pdf)
            rows.append((f"one {args.single_pdf}-page PDF", args.single_pdf, seconds, chunks, rss))
            print(f"{rows[-1][0]}: {seconds:.1f} s, {chunks} chunks, peak RSS {rss / 1e6:.0f} MB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'corpus':<24} {'seconds':>8} {'chunks':>7} {'s per 1k chunks':>16} {'peak RSS MB':>12}")
    for label, _, seconds, chunks, rss in rows:
        print(f"{label:<24} {seconds:>8.1f} {chunks:>7} {1000 * seconds / max(chunks, 1):>16.1f} {rss / 1e6:>12.0f}")
    sized = [r for r in rows if r[0].endswith("in 10 PDFs")]
    for (_, pages_a, s_a, _, _), (_, pages_b, s_b, _, _) in zip(sized, sized[1:], strict=False):
        print(f"{pages_a} -> {pages_b} pages: {pages_b / pages_a:.1f}x the pages took {s_b / s_a:.2f}x the time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
