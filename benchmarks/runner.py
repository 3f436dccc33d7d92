"""Shared pieces of the build benchmarks: timed subprocesses with their peak memory, and the two pipelines.

Peak RSS is sampled with psutil every 50 ms over the whole process tree (a pool's workers count
too), which is what the machine has to hold; `resource.getrusage` would only give the largest
single process. A sum of RSS counts twice the pages a forked child still shares with its parent, so
at each new peak the tree's PSS (each shared page split among its sharers) is read too, with which
processes held what: `peak_pss` and `peak_detail` say whether a peak was memory or double counting.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

PROJECT = Path(__file__).resolve().parents[1]
PYTHON = PROJECT / ".venv" / "bin" / "python"
PEER = PROJECT.parent / "shared" / "peers" / "seed_etl.py"
SHARED_CORPUS = PROJECT.parent / "shared" / "corpus"
SAMPLE_EVERY_S = 0.05


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss: int  # bytes, summed over the process tree
    output: str
    peak_pss: int = 0  # bytes, the tree's PSS at the RSS peak (0 where the system gives no PSS)
    peak_detail: str = ""  # the processes at the RSS peak: "name rss/pss MB, ..."


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run `cmd`, returning wall time, the tree's peak RSS and its output; raise if it fails."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}, cwd=cwd
    )
    peak = peak_pss = 0
    detail = ""
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_pss, detail
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                total = sum(p.memory_info().rss for p in tree)
            except psutil.Error:
                total = 0
            if total > peak:
                peak = total
                peak_pss, detail = _tree_pss(tree)  # only at a new peak: reading smaps costs more
            done.wait(SAMPLE_EVERY_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed with exit code {proc.returncode}:\n{output[-3000:]}")
    return Run(seconds, peak, output, peak_pss, detail)


def _tree_pss(tree: list[psutil.Process]) -> tuple[int, str]:
    """The tree's summed PSS and each process's RSS/PSS in MB (PSS 0 where it cannot be read)."""
    total, parts = 0, []
    for process in tree:
        try:
            full = process.memory_full_info()
            pss = getattr(full, "pss", 0)
            parts.append(f"{process.name()} {full.rss / 1e6:.0f}/{pss / 1e6:.0f}")
            total += pss
        except psutil.Error:
            continue
    return total, ", ".join(parts)


def run_peer(raw_root: Path, output: Path) -> Run:
    """The seed pipeline over `raw_root` into a fresh `output` (it rebuilds everything every time)."""
    shutil.rmtree(output, ignore_errors=True)
    return timed([str(PYTHON), str(PEER), "--input", str(raw_root), "--output", str(output)])


def peer_chunks(run: Run) -> int:
    match = re.search(r"chunks=(\d+) seconds=", run.output)
    return int(match.group(1)) if match else 0


def run_nexus(
    data_dir: Path, dagster_home: Path, subject: str, grade: str, force: bool = False, ocr: bool = True
) -> Run:
    """`nexus build` of one partition, as a data engineer runs it (Dagster instance included).

    `force` makes it run through Dagster even when the partition's inputs are unchanged; `ocr=False`
    builds with `NEXUS_OCR=off`, skipping scanned pages as the seed peer does."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    return timed(
        [
            str(PROJECT / ".venv" / "bin" / "nexus"),
            "--data-dir",
            str(data_dir),
            "build",
            "--subject",
            subject,
            "--grade",
            grade,
            *(["--force"] if force else []),
        ],
        env={
            "DAGSTER_HOME": str(dagster_home),
            "NEXUS_DATA_DIR": str(data_dir),
            **({} if ocr else {"NEXUS_OCR": "off"}),
        },
        cwd=PROJECT,
    )


def embedded_counts(run: Run) -> tuple[int, int]:
    """(chunks embedded, chunks from the cache) as the chunk_embeddings step logged them."""
    match = re.search(r"(\d+) chunks embedded \([^)]*\), (\d+) from the cache", run.output)
    return (int(match.group(1)), int(match.group(2))) if match else (-1, -1)


def fresh_copy(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)


def python_env() -> None:
    """Let benchmark scripts import `benchmarks.*` and the project when run as plain scripts."""
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
