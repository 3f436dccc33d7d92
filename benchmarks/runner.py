"""Shared pieces of the build benchmarks: timed subprocesses with their peak memory, and the two pipelines.

Peak RSS is sampled with psutil every 50 ms over the whole process tree (a pool's workers count
too), which is what the machine has to hold; `resource.getrusage` would only give the largest
single process.
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


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run `cmd`, returning wall time, the tree's peak RSS and its output; raise if it fails."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}, cwd=cwd
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.is_set():
            try:
                total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                total = 0
            peak = max(peak, total)
            done.wait(SAMPLE_EVERY_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed with exit code {proc.returncode}:\n{output[-3000:]}")
    return Run(seconds, peak, output)


def run_peer(raw_root: Path, output: Path) -> Run:
    """The seed pipeline over `raw_root` into a fresh `output` (it rebuilds everything every time)."""
    shutil.rmtree(output, ignore_errors=True)
    return timed([str(PYTHON), str(PEER), "--input", str(raw_root), "--output", str(output)])


def peer_chunks(run: Run) -> int:
    match = re.search(r"chunks=(\d+) seconds=", run.output)
    return int(match.group(1)) if match else 0


def run_nexus(data_dir: Path, dagster_home: Path, subject: str, grade: str, force: bool = False) -> Run:
    """`nexus build` of one partition, as a data engineer runs it (Dagster instance included).

    `force` makes it run through Dagster even when the partition's inputs are unchanged."""
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
        env={"DAGSTER_HOME": str(dagster_home), "NEXUS_DATA_DIR": str(data_dir)},
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
