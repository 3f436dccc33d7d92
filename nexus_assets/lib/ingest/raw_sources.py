"""Where a partition's PDFs come from: the local data directory, or S3 under the same keys.

In aws mode the PDFs are mirrored from `s3://<bucket>/raw-curriculum/<subject>/<grade>/` into the
local data directory (only new or changed objects are downloaded), so extraction reads local files
on whichever machine runs the step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from nexus_assets.lib.aws.s3_store import S3ObjectStore
from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.layout import (
    RAW_PREFIX,
    DataLayout,
    LayoutError,
    Partition,
    Publishes,
    package_conflict,
    package_rivals,
    scan_files,
    without_ambiguous_packages,
)
from nexus_assets.lib.core.tables import raw_manifest_frame
from nexus_assets.lib.ingest.upload_tracking import Listed, partition_of_key, skip_message

# sha256 of local files by (path, size, mtime_ns): a sensor tick re-hashes only what changed.
_SHA_MEMO: dict[tuple[str, int, int], str] = {}


class RawSource(Protocol):
    def discover(self, publishes: Publishes | None = None) -> tuple[list[Partition], list[str]]:
        """The partitions found and the refusals; `publishes` as `layout.package_conflict` takes it."""
        ...

    def listing(self, prefix: str = RAW_PREFIX + "/") -> Iterator[Listed]: ...

    def manifest(self, part: Partition, skipped: list[str] | None = None) -> pd.DataFrame:
        """The partition's PDFs; files in its folder outside the layout are left out, each with a message
        appended to `skipped`."""
        ...

    def holds_pdfs(self, part: Partition) -> bool:
        """The partition's folder holds a PDF a build would read (cheap: no file is hashed or downloaded)."""
        ...

    def local_path(self, relative_path: str) -> Path: ...

    def uri(self, relative_path: str) -> str:
        """Where a source file lives, for links in the UI (file:// locally, s3:// in aws mode)."""
        ...


@dataclass
class LocalRawSource:
    layout: DataLayout

    def discover(self, publishes: Publishes | None = None) -> tuple[list[Partition], list[str]]:
        return self.layout.discover_partitions(publishes)

    def listing(self, prefix: str = RAW_PREFIX + "/") -> Iterator[Listed]:
        """Every regular file under `prefix` (no link followed), with its sha256 as the ETag (hashed again only
        when size or mtime change)."""
        base = self.layout.root / prefix
        if not base.is_dir():
            return
        files, _ = scan_files(base, self.layout.root)  # links are never followed (the build reports them)
        for path in (p for p in files if not p.name.startswith(".")):
            stat = path.stat()
            memo = (str(path), stat.st_size, stat.st_mtime_ns)
            if memo not in _SHA_MEMO:
                _SHA_MEMO[memo] = hashing.sha256_file(path)
            yield Listed(path.relative_to(self.layout.root).as_posix(), _SHA_MEMO[memo])

    def manifest(self, part: Partition, skipped: list[str] | None = None) -> pd.DataFrame:
        return raw_manifest_frame(self.layout.raw_dir(part), self.layout.root, skipped)

    def holds_pdfs(self, part: Partition) -> bool:
        files, _ = scan_files(self.layout.raw_dir(part), self.layout.root)
        return _any_pdf(path.relative_to(self.layout.root).as_posix() for path in files)

    def local_path(self, relative_path: str) -> Path:
        return self.layout.root / relative_path

    def uri(self, relative_path: str) -> str:
        return (self.layout.root / relative_path).as_uri()


@dataclass
class S3RawSource:
    """PDFs in S3, mirrored into the local layout before use."""

    store: S3ObjectStore
    layout: DataLayout

    def discover(self, publishes: Publishes | None = None) -> tuple[list[Partition], list[str]]:
        found: set[Partition] = set()
        errors: list[LayoutError] = []
        for item in self.listing():
            try:
                found.add(partition_of_key(item.key))
            except LayoutError as exc:
                errors.append(exc)
        refused = sorted({skip_message(exc, found) for exc in errors})
        return without_ambiguous_packages(sorted(found), refused, publishes)

    def listing(self, prefix: str = RAW_PREFIX + "/") -> Iterator[Listed]:
        for obj in self.store.list_keys(prefix):
            yield Listed(obj["Key"], obj["ETag"].strip('"'))

    def sync(self, part: Partition) -> None:
        """Mirror the partition's PDFs: download new or changed objects, drop local files gone from S3."""
        local_dir = self.layout.raw_dir(part)
        local_dir.mkdir(parents=True, exist_ok=True)
        remote = {}
        for obj in self.store.list_keys(part.raw_prefix() + "/"):
            try:
                partition_of_key(obj["Key"])  # the sensors' rule: a key they skip is never downloaded
            except LayoutError:
                continue
            remote[obj["Key"].rsplit("/", 1)[-1]] = obj
        for name, obj in remote.items():
            target = local_dir / name
            etag_file = local_dir / f".{name}.etag"
            etag = obj["ETag"].strip('"')
            if target.is_symlink():  # never write through a link planted in the mirror
                target.unlink()
            elif target.exists() and etag_file.exists() and etag_file.read_text() == etag:
                continue
            self.store.download_file(obj["Key"], target)
            etag_file.write_text(etag)
        for pdf in local_dir.glob("*"):
            if pdf.is_file() and pdf.suffix.lower() == ".pdf" and pdf.name not in remote:
                pdf.unlink()
                (local_dir / f".{pdf.name}.etag").unlink(missing_ok=True)

    def holds_pdfs(self, part: Partition) -> bool:
        return _any_pdf(obj["Key"] for obj in self.store.list_keys(part.raw_prefix() + "/"))

    def manifest(self, part: Partition, skipped: list[str] | None = None) -> pd.DataFrame:
        self.sync(part)
        return raw_manifest_frame(self.layout.raw_dir(part), self.layout.root, skipped)

    def local_path(self, relative_path: str) -> Path:
        path = self.layout.root / relative_path
        if not path.exists():
            self.store.download_file(relative_path, path)
        return path

    def uri(self, relative_path: str) -> str:
        return self.store.uri(relative_path)


def _any_pdf(keys: Iterable[str]) -> bool:
    """Some key is a PDF of its partition by the sensors' rule (`partition_of_key`)."""
    for key in keys:
        try:
            partition_of_key(key)
        except LayoutError:
            continue
        return True
    return False


def package_refusal(source: RawSource, part: Partition, publishes: Publishes) -> str | None:
    """`layout.package_conflict` for one partition about to be built: only its rivals' folders are looked at.

    Checked by the run itself (raw_pdfs), whoever started it (a sensor, the launchpad, `nexus build --subject
    --grade`), so no path can build a partition whose packages would overwrite another's."""
    rivals = package_rivals(part)
    if not rivals:
        return None
    return package_conflict(part, [r for r in rivals if source.holds_pdfs(r)], publishes)
