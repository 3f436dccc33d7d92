"""One partition materialized through Dagster (every asset, model included), as `nexus build` would."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import dagster as dg

from nexus_assets.defs.assets import curriculum_assets
from nexus_assets.defs.io_managers import RECORD_IO_MANAGER, LocalPartitionedIOManager
from nexus_assets.defs.partitions import key_of, register_partitions
from nexus_assets.defs.resources import (
    ChromaResource,
    DataDirResource,
    EmbedderResource,
    ExtractionLimitsResource,
    PublishingResource,
)
from nexus_assets.lib.core.layout import Partition

INFO10 = Partition("informatika", "kelas_10")


def local_resources_at(data_dir: Path, embedder: EmbedderResource | None = None) -> dict[str, Any]:
    """The local deployment's resources, pointed at `data_dir` (as `definitions.local_resources` with the
    data directory fixed), with `embedder` in place of the default one."""
    files = LocalPartitionedIOManager(data_dir=str(data_dir))
    return {
        "data_dir": DataDirResource(data_dir=str(data_dir)),
        "extraction": ExtractionLimitsResource(),
        "publishing": PublishingResource(),
        "embedder": embedder or EmbedderResource(),
        "chroma": ChromaResource(),
        "io_manager": files,
        RECORD_IO_MANAGER: files,
    }


def materialize_info10(
    instance: dg.DagsterInstance, data_dir: Path, cache_vectors: bool = True
) -> dg.ExecuteInProcessResult:
    """Materialize INFO10 in `data_dir` on `instance` (every asset, no checks); the run must succeed."""
    register_partitions(instance, [INFO10])
    result = dg.materialize(
        curriculum_assets,
        partition_key=key_of(INFO10),
        instance=instance,
        resources=local_resources_at(data_dir, EmbedderResource(cache_vectors=cache_vectors)),
    )
    assert result.success
    return result


def build_info10(data_dir: Path, cache_vectors: bool = True) -> dict[str, dict]:
    """Materialize INFO10 in `data_dir`; the metadata of every asset, by asset name."""
    with dg.instance_for_test() as instance:
        result = materialize_info10(instance, data_dir, cache_vectors)
        return {
            mat.asset_key.path[-1]: {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
            for mat in (e.materialization for e in result.get_asset_materialization_events())
        }


def copy_informatika(sample_raw_root: Path, data_dir: Path) -> None:
    shutil.copytree(sample_raw_root / "informatika", data_dir / "raw-curriculum" / "informatika")
