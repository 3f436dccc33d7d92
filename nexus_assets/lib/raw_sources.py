"""Where a partition's PDFs come from: the local data directory, or S3 under the same keys.

In aws mode the PDFs are mirrored from `s3://<bucket>/raw-curriculum/<subject>/<grade>/` into the
local data directory (only new or changed objects are downloaded), so extraction reads local files
on whichever machine runs the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from nexus_assets.lib.layout import RAW_PREFIX, DataLayout, LayoutError, Partition, validate_slug
from nexus_assets.lib.s3_store import S3ObjectStore
from nexus_assets.lib.tables import raw_manifest_frame


class RawSource(Protocol):
    def discover(self) -> tuple[list[Partition], list[str]]: ...

    def manifest(self, part: Partition) -> pd.DataFrame: ...

    def local_path(self, relative_path: str) -> Path: ...


@dataclass
class LocalRawSource:
    layout: DataLayout

    def discover(self) -> tuple[list[Partition], list[str]]:
        return self.layout.discover_partitions()

    def manifest(self, part: Partition) -> pd.DataFrame:
        return raw_manifest_frame(self.layout.raw_dir(part), self.layout.root)

    def local_path(self, relative_path: str) -> Path:
        return self.layout.root / relative_path


@dataclass
class S3RawSource:
    """PDFs in S3, mirrored into the local layout before use."""

    store: S3ObjectStore
    layout: DataLayout

    def discover(self) -> tuple[list[Partition], list[str]]:
        found: set[Partition] = set()
        refused: set[str] = set()
        for obj in self.store.list_keys(f"{RAW_PREFIX}/"):
            parts = obj["Key"].split("/")
            if len(parts) != 4 or not parts[3].lower().endswith(".pdf"):
                refused.add(f"{self.store.uri(obj['Key'])}: not raw-curriculum/<subject>/<grade>/<file>.pdf")
                continue
            try:
                validate_slug(parts[1], "subject", self.store.uri(obj["Key"]))
                validate_slug(parts[2], "grade", self.store.uri(obj["Key"]))
            except LayoutError as exc:
                refused.add(str(exc))
                continue
            found.add(Partition(parts[1], parts[2]))
        return sorted(found), sorted(refused)

    def sync(self, part: Partition) -> None:
        """Mirror the partition's PDFs: download new or changed objects, drop local files gone from S3."""
        local_dir = self.layout.raw_dir(part)
        local_dir.mkdir(parents=True, exist_ok=True)
        remote = {}
        for obj in self.store.list_keys(part.raw_prefix() + "/"):
            name = obj["Key"].rsplit("/", 1)[-1]
            if "/" in obj["Key"][len(part.raw_prefix()) + 1:] or not name.lower().endswith(".pdf"):
                continue
            remote[name] = obj
        for name, obj in remote.items():
            target = local_dir / name
            etag_file = local_dir / f".{name}.etag"
            etag = obj["ETag"].strip('"')
            if target.exists() and etag_file.exists() and etag_file.read_text() == etag:
                continue
            self.store.download_file(obj["Key"], target)
            etag_file.write_text(etag)
        for pdf in local_dir.glob("*"):
            if pdf.is_file() and pdf.suffix.lower() == ".pdf" and pdf.name not in remote:
                pdf.unlink()
                (local_dir / f".{pdf.name}.etag").unlink(missing_ok=True)

    def manifest(self, part: Partition) -> pd.DataFrame:
        self.sync(part)
        return raw_manifest_frame(self.layout.raw_dir(part), self.layout.root)

    def local_path(self, relative_path: str) -> Path:
        path = self.layout.root / relative_path
        if not path.exists():
            self.store.download_file(relative_path, path)
        return path
