"""Parquet reads start no Arrow pool threads (the cause of aborts at exit in short commands).

Counted in a fresh interpreter: in the test process earlier tests may already have started the pools.
"""

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import os, sys
import pandas as pd
from nexus_assets.lib.core.parquet_io import read_arrow, read_frame
from nexus_assets.lib.core.tables import frame_to_parquet_bytes
frame = pd.DataFrame({"chunk_id": [f"c{i}" for i in range(5000)], "n": range(5000)})
data = frame_to_parquet_bytes(frame)
open(sys.argv[1], "wb").write(data)
threads = lambda: set(os.listdir("/proc/self/task"))  # thread ids: one that ends is not one started
before = threads()
assert read_frame(data).equals(frame)
assert read_frame(sys.argv[1]).equals(frame)
assert read_arrow(data, columns=["n"]).column("n").to_pylist() == list(range(5000))
after_ours = threads()
pd.read_parquet(sys.argv[1])
print(len(after_ours - before), len(threads() - after_ours))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counting native threads needs Linux /proc")
def test_reads_round_trip_without_starting_threads(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "t.parquet")], capture_output=True, text=True, check=True
    ).stdout
    started_by_ours, started_by_pandas = map(int, out.split())
    assert started_by_ours == 0, f"our parquet reads started {started_by_ours} native threads"
    # The probe can see the difference: pandas' default read does start Arrow's pools.
    assert started_by_pandas > 0
