"""Build benchmark: `nexus build` against the seed pipeline on the same PDFs (not a test).

    .venv/bin/python benchmarks/bench_build.py            # full: warm-up + 3 alternating rounds
    .venv/bin/python benchmarks/bench_build.py --quick    # generated corpus only, 1 round (~5 min)
    .venv/bin/python benchmarks/bench_build.py --worker-cost --rounds 3   # the forced extraction worker's cost

The corpus is generated deterministically (benchmarks/corpus.py: 10 textbook-like Indonesian PDFs
of 36 pages) plus, where present, every PDF of ../shared/corpus, all in one partition
`benchmark/kelas_10`, so both pipelines read exactly the same files. Each round, alternating:

1. peer: `python ../shared/peers/seed_etl.py --input DIR --output DIR2` (fresh output);
2. cold: `nexus build` in a fresh data directory with a fresh DAGSTER_HOME (empty caches);
   and the same with `NEXUS_OCR=off` (`cold_no_ocr`): the peer's work, scanned pages skipped as the
   peer skips them, to tell what OCR costs (reported; the target is `cold_ratio`, OCR included);
3. incremental: the same after one of the 10 PDFs is revised (4 of its pages rewritten);
4. no change: the same again with nothing changed (`nexus build` sees the same PDFs, code and
   settings as the last successful build and does not start Dagster);
5. no change, forced: `nexus build --force`, a full Dagster run whose every step finds its cache
   (what the UI, a sensor or a schedule costs when nothing changed). Reported, not a target.

Times are wall-clock of the whole command (interpreter start, imports, Dagster included); peak
RSS is summed over each command's process tree (with the tree's PSS at that peak beside it: a sum
of RSS counts pages shared by a parent and its forked child twice). The last lines are for machines:
cold_ratio, cold_no_ocr_ratio, incremental_ratio, nochange_ratio (our median over the peer's median full run),
rss_ratio (our peak over the peer's), pss_ratio (the same in PSS at those peaks),
embed_chunks_per_s and cosine_vs_fp32 (from
benchmarks/bench_embedding.py on the benchmark chunks).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.corpus import REVISED_BOOK, add_shared_corpus, book_name, revise_one_book, write_corpus
from benchmarks.runner import (
    PYTHON,
    SHARED_CORPUS,
    Run,
    embedded_counts,
    fresh_copy,
    peer_chunks,
    run_nexus,
    run_peer,
    timed,
)
from nexus_assets.lib.core.cpu_info import cpu_generation, cpu_kind
from nexus_assets.lib.ingest.pdf_extraction import MAX_EXTRACTION_MEMORY_MB_ENV

SUBJECT, GRADE = "benchmark", "kelas_10"
CASES = ("peer", "cold", "cold_no_ocr", "incremental", "nochange", "nochange_forced")


def build_corpus(root: Path, pages_per_file: int, shared: bool) -> Path:
    """`root/raw-curriculum/benchmark/kelas_10/` with the generated books (+ the shared corpus)."""
    raw = root / "raw-curriculum"
    target = raw / SUBJECT / GRADE
    write_corpus(target, pages_per_file=pages_per_file)
    if shared and (SHARED_CORPUS / "MANIFEST.md").is_file():
        add_shared_corpus(target, SHARED_CORPUS)
    return raw


def one_round(raw: Path, work: Path, pages_per_file: int, label: str) -> dict[str, Run]:
    """Peer, then our cold, incremental and no-change builds, each on fresh state where it should be."""
    runs: dict[str, Run] = {}
    runs["peer"] = run_peer(raw, work / "peer-out")
    data, home = work / "data", work / "dagster_home"
    same_work_data, same_work_home = work / "data-no-ocr", work / "dagster_home-no-ocr"
    for stale in (data, home, same_work_data, same_work_home):  # cold: no tables, caches, packages or history
        shutil.rmtree(stale, ignore_errors=True)
    fresh_copy(raw, same_work_data / "raw-curriculum")
    runs["cold_no_ocr"] = run_nexus(same_work_data, same_work_home, SUBJECT, GRADE, ocr=False)
    shutil.rmtree(same_work_data, ignore_errors=True)
    fresh_copy(raw, data / "raw-curriculum")
    runs["cold"] = run_nexus(data, home, SUBJECT, GRADE)
    revise_one_book(data / "raw-curriculum" / SUBJECT / GRADE, pages_per_file)
    runs["incremental"] = run_nexus(data, home, SUBJECT, GRADE)
    runs["nochange"] = run_nexus(data, home, SUBJECT, GRADE)
    runs["nochange_forced"] = run_nexus(data, home, SUBJECT, GRADE, force=True)
    _check(runs, data, label)
    return runs


def _check(runs: dict[str, Run], data: Path, label: str) -> None:
    """Fail loudly if a case did not do what it is timed as doing."""
    cold, _ = embedded_counts(runs["cold"])
    changed, reused = embedded_counts(runs["incremental"])
    none, cached = embedded_counts(runs["nochange_forced"])
    if cold <= 0 or not 0 < changed < cold // 5 or none != 0 or cached <= 0:
        raise RuntimeError(
            f"{label}: unexpected embedding counts cold={cold} incremental={changed} nochange (forced)={none}"
        )
    if embedded_counts(runs["cold_no_ocr"])[0] <= 0 or "OCR disabled" not in runs["cold_no_ocr"].output:
        raise RuntimeError(f"{label}: the cold build with OCR off did not embed, or did not run without OCR")
    if "up to date" not in runs["nochange"].output:
        raise RuntimeError(f"{label}: the no-change build did not find the partition up to date")
    if "(unchanged)" not in runs["nochange_forced"].output:
        raise RuntimeError(f"{label}: the forced no-change build published a new package")
    print(
        f"  {label}: peer {runs['peer'].seconds:.1f} s ({peer_chunks(runs['peer'])} chunks), cold "
        f"{runs['cold'].seconds:.1f} s ({cold} chunks; {runs['cold_no_ocr'].seconds:.1f} s with OCR off), "
        f"incremental {runs['incremental'].seconds:.1f} s "
        f"({changed} embedded, {reused} cached), no change {runs['nochange'].seconds:.1f} s, forced "
        f"{runs['nochange_forced'].seconds:.1f} s",
        flush=True,
    )


def embedding_figures(limit: int, rounds: int) -> dict[str, dict]:
    with tempfile.TemporaryDirectory(prefix="nexus-bench-embed-") as tmp:
        out = Path(tmp) / "embed.json"
        run = timed(
            [
                str(PYTHON),
                str(Path(__file__).with_name("bench_embedding.py")),
                "--backends",
                "seed,fp32,auto",
                "--limit",
                str(limit),
                "--rounds",
                str(rounds),
                "--json",
                str(out),
            ]
        )
        print(re.sub(r"(?m)^(?!cpu: |auto: |back end|seed |fp32 |auto ).*\n?", "", run.output).rstrip(), flush=True)
        return json.loads(out.read_text())["results"]


def worker_cost(work: Path, rounds: int, pages_per_file: int) -> int:
    """`--worker-cost`: what the memory budget's forced extraction worker costs an incremental build.

    One cold build of the generated corpus, then `rounds` times: one book revised and an incremental build with
    the default budget (NEXUS_MAX_EXTRACTION_MEMORY_MB=4096: the changed file is read in a worker process), and
    the same revision again with the budget off (=0: read in the step's own process), alternating. The peer is
    not needed. Prints the medians and their difference."""
    raw = build_corpus(work / "corpus", pages_per_file, shared=False)
    data, home = work / "data", work / "dagster_home"
    fresh_copy(raw, data / "raw-curriculum")
    run_nexus(data, home, SUBJECT, GRADE)
    times: dict[str, list[float]] = {"worker": [], "in_process": []}
    target = data / "raw-curriculum" / SUBJECT / GRADE
    for number in range(rounds):
        for offset, (case, budget) in enumerate((("worker", "4096"), ("in_process", "0"))):
            revise_one_book(target, pages_per_file, revision=2 * number + offset + 1)  # a cache miss each time
            os.environ[MAX_EXTRACTION_MEMORY_MB_ENV] = budget
            try:
                run = run_nexus(data, home, SUBJECT, GRADE)
            finally:
                os.environ.pop(MAX_EXTRACTION_MEMORY_MB_ENV, None)
            workers = re.search(r"extracted with (\d+) process", run.output)
            print(f"  round {number + 1} {case}: {run.seconds:.2f} s ({workers.group(0) if workers else '?'})")
            times[case].append(run.seconds)
    worker, inline = (statistics.median(times[c]) for c in ("worker", "in_process"))
    print(f"incremental_worker_s={worker:.2f}")
    print(f"incremental_in_process_s={inline:.2f}")
    print(f"forced_worker_cost_s={worker - inline:.2f}")
    print(f"cpu={cpu_kind()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="generated corpus only, one round after the warm-up")
    parser.add_argument("--rounds", type=int, help="timed rounds after the warm-up (default 3, quick 1)")
    parser.add_argument("--pages-per-file", type=int, default=36)
    parser.add_argument("--work", type=Path, help="work directory (default: a temporary one, removed after)")
    parser.add_argument(
        "--worker-cost", action="store_true", help="only the forced extraction worker's cost on incremental builds"
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    work = args.work or Path(tempfile.mkdtemp(prefix="nexus-bench-build-"))
    if args.worker_cost:
        try:
            return worker_cost(work, rounds, args.pages_per_file)
        finally:
            if not args.work:
                shutil.rmtree(work, ignore_errors=True)
    try:
        raw = build_corpus(work / "corpus", args.pages_per_file, shared=not args.quick)
        pdfs = sorted((raw / SUBJECT / GRADE).glob("*.pdf"))
        print(
            f"corpus: {len(pdfs)} PDFs ({sum(p.stat().st_size for p in pdfs) / 1e6:.1f} MB) in {raw}; "
            f"revised each round: {book_name(REVISED_BOOK)}",
            flush=True,
        )
        print("warm-up round (not counted)", flush=True)
        one_round(raw, work / "run", args.pages_per_file, "warm-up")
        results: dict[str, list[Run]] = {case: [] for case in CASES}
        for number in range(1, rounds + 1):
            for case, run in one_round(raw, work / "run", args.pages_per_file, f"round {number}").items():
                results[case].append(run)
        embedding = embedding_figures(limit=300 if args.quick else 600, rounds=2 if args.quick else 3)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    median = {case: statistics.median(r.seconds for r in runs) for case, runs in results.items()}
    top = {case: max(runs, key=lambda r: r.peak_rss) for case, runs in results.items()}
    peak = {case: run.peak_rss for case, run in top.items()}
    peer = median["peer"]
    print(f"\n{'case':<16} {'median s':>9} {'runs (s)':>26} {'vs peer':>8} {'peak RSS MB':>12} {'its PSS MB':>11}")
    for case in CASES:
        runs = " ".join(f"{r.seconds:.1f}" for r in results[case])
        print(
            f"{case:<16} {median[case]:>9.1f} {runs:>26} {median[case] / peer:>8.3f} {peak[case] / 1e6:>12.0f} "
            f"{top[case].peak_pss / 1e6:>11.0f}"
        )
    for case in CASES:
        print(f"  at the {case} peak: {top[case].peak_detail}")
    ours = max(("cold", "cold_no_ocr", "incremental", "nochange", "nochange_forced"), key=lambda case: peak[case])
    ours_peak = peak[ours]
    print(f"\ncold_ratio={median['cold'] / peer:.3f}")
    print(f"cold_no_ocr_ratio={median['cold_no_ocr'] / peer:.3f}")
    print(f"incremental_ratio={median['incremental'] / peer:.3f}")
    print(f"nochange_ratio={median['nochange'] / peer:.3f}")
    print(f"nochange_forced_ratio={median['nochange_forced'] / peer:.3f}")
    print(f"rss_ratio={ours_peak / peak['peer']:.3f}")
    if top["peer"].peak_pss and top[ours].peak_pss:
        print(f"pss_ratio={top[ours].peak_pss / top['peer'].peak_pss:.3f}")
    print(f"embed_chunks_per_s={embedding['auto']['chunks_per_s']:.1f}")
    print(f"embed_ratio_vs_seed={embedding['auto']['vs_seed']:.2f}")
    print(f"embed_engine={embedding['auto']['runs']}")
    print(f"cosine_vs_fp32={embedding['auto']['mean_cosine']:.6f}")
    print(f"deterministic={'yes' if embedding['auto']['deterministic'] else 'no'}")
    print(f"cpu={cpu_kind()}")
    print(f"cpu_generation={cpu_generation()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
