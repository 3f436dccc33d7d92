"""Reading parquet without Arrow's thread pools.

`pq.read_table` / `pd.read_parquet` start Arrow's IO and CPU pool threads. A short command that
exits right after its first read (`nexus vkp verify` under load) can abort at interpreter exit
with "terminate called without an active exception" while those threads are still starting
(apache/arrow#34314). Our tables are small enough that one thread reads them as fast, so every
read in the project goes through here and never starts a pool.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

Source = bytes | str | Path


def _native(source: Source) -> pa.BufferReader:
    # Opening a path lets Arrow start its IO pool; reading the bytes ourselves does not.
    return pa.BufferReader(source if isinstance(source, bytes) else Path(source).read_bytes())


def read_arrow(source: Source, columns: list[str] | None = None) -> pa.Table:
    """A parquet file (path or bytes) as an Arrow table, read on the calling thread."""
    return pq.ParquetFile(_native(source)).read(columns=columns, use_threads=False)


def read_frame(source: Source | io.BytesIO) -> pd.DataFrame:
    """A parquet file (path, bytes or BytesIO) as a DataFrame, read on the calling thread."""
    if isinstance(source, io.BytesIO):
        source = source.getvalue()
    return read_arrow(source).to_pandas(use_threads=False)
