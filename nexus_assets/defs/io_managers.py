"""IO manager that keeps every partition's asset values as files in the storage layout.

`processed/<subject>/<grade>/<asset>.parquet` for tables, `<asset>.json` for small records (the
Chroma build and the VKP publication). No pickles: every value is readable by any tool, and the S3
IO manager uses the same keys. Files are written to a temporary name and renamed into place, so a
crashed run never leaves a half-written value behind.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from nexus_assets.defs.partitions import partition_of
from nexus_assets.lib.core.layout import ARTIFACT, DataLayout
from nexus_assets.lib.core.parquet_io import read_frame

__all__ = ["ARTIFACT", "RECORD_IO_MANAGER", "STORED_AS", "LocalPartitionedIOManager", "stored_name"]

# Assets whose values are small records (partition manifest, Chroma build, catalog entry) use this key;
# tables use the default `io_manager`. Locally both are files; in aws mode DynamoDB and S3.
RECORD_IO_MANAGER = "record_io_manager"
# Definition metadata naming an asset's stored file when it differs from the asset's name
# (`curriculum_catalog` is stored as processed/catalog.parquet).
STORED_AS = "nexus/stored_as"


def stored_name(context: dg.OutputContext | dg.InputContext) -> str:
    """The file name (without suffix) an asset's value is stored under: `STORED_AS`, else the asset's name."""
    owner = context.upstream_output if isinstance(context, dg.InputContext) else context
    metadata = (owner.definition_metadata if owner is not None else None) or {}
    return str(metadata.get(STORED_AS) or context.asset_key.path[-1])


class LocalPartitionedIOManager(dg.ConfigurableIOManager):
    """Parquet (DataFrames) and JSON (dicts) under `<data_dir>/processed/<subject>/<grade>/`."""

    data_dir: str = Field(default="", description="Empty: $NEXUS_DATA_DIR (read when the run starts) or ./data.")

    def _base(self, context: dg.OutputContext | dg.InputContext) -> Path:
        layout = DataLayout.from_env(self.data_dir or None)
        name = stored_name(context)
        if not context.has_asset_partitions:
            return layout.root / "processed" / name
        return layout.processed_dir(partition_of(context.asset_partition_key)) / name

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        base = self._base(context)
        base.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(obj, pd.DataFrame):
            path = base.with_suffix(".parquet")
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            obj.to_parquet(tmp, index=False, compression="zstd")
        elif isinstance(obj, dict):
            path = base.with_suffix(".json")
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
        else:
            raise TypeError(
                f"{context.asset_key.to_user_string()}: this IO manager stores DataFrames and dicts only, "
                f"got {type(obj).__name__}"
            )
        os.replace(tmp, path)
        context.add_output_metadata({"stored_at": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> Any:
        base = self._base(context)
        for suffix, reader in ((".parquet", read_frame), (".json", lambda p: json.loads(Path(p).read_text()))):
            path = base.with_suffix(suffix)
            if path.exists():
                return reader(path)
        raise FileNotFoundError(
            f"{context.asset_key.to_user_string()}: no stored value at {base}.parquet or .json; "
            "materialize the upstream asset for this partition first"
        )
