"""The VKP package format: a zip a school server can verify and load with no network.

Members:
- `manifest.json`: format version, subject, grade, version, embedding model and dims, counts,
  source file hashes, content hash, created_at, and the sha256 of every other member;
- `chunks.parquet`, `embeddings.parquet`: the chunks and their vectors;
- `chroma/...`: the ready-to-load Chroma directory.

Versions: the content hash covers the embedding model and every chunk (id, file, pages, text), not
the vector bytes (a function of model and text), so unchanged content gives the same hash and no
new version; changed content bumps the patch version. Packages are written to a temporary name and
renamed into place, and an existing version is never overwritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow.parquet as pq

from nexus_assets.lib.layout import Partition, parse_semver

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNKS_MEMBER = "chunks.parquet"
EMBEDDINGS_MEMBER = "embeddings.parquet"
CHROMA_PREFIX = "chroma/"
FIRST_VERSION = "1.0.0"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: same content, same bytes
REQUIRED_FIELDS = ("format_version", "subject", "grade", "version", "embedding", "counts", "sources",
                   "content_hash", "created_at", "members")


class VkpError(ValueError):
    """A package that cannot be written or read."""


def content_hash(model_id: str, dims: int, chunks: Iterable[tuple[str, str, int, int, str]]) -> str:
    """Hash of (model, dims, sorted chunks as (chunk_id, file, page_start, page_end, text))."""
    digest = hashlib.sha256(f"vkp-content-v1\x1f{model_id}\x1f{dims}".encode())
    for chunk_id, file, page_start, page_end, text in sorted(chunks):
        digest.update(f"\x1e{chunk_id}\x1f{file}\x1f{page_start}\x1f{page_end}\x1f{text}".encode())
    return digest.hexdigest()


def next_version(latest: str | None) -> str:
    """Patch bump of the latest published version, or the first version."""
    if latest is None:
        return FIRST_VERSION
    major, minor, patch = parse_semver(latest)
    return f"{major}.{minor}.{patch + 1}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def write_vkp(
    path: Path,
    partition: Partition,
    version: str,
    *,
    model_id: str,
    dims: int,
    counts: dict[str, int],
    sources: list[dict[str, Any]],
    content_hash_value: str,
    chunks_parquet: bytes,
    embeddings_parquet: bytes,
    chroma_dir: Path,
    created_at: str | None = None,
) -> dict[str, Any]:
    """Write a package atomically and return its manifest. Refuses to overwrite an existing file."""
    if path.exists():
        raise VkpError(f"{path} already exists: a published version is never overwritten")
    members: dict[str, bytes] = {CHUNKS_MEMBER: chunks_parquet, EMBEDDINGS_MEMBER: embeddings_parquet}
    for file in sorted(p for p in chroma_dir.rglob("*") if p.is_file()):
        members[CHROMA_PREFIX + file.relative_to(chroma_dir).as_posix()] = file.read_bytes()
    manifest = {
        "format_version": FORMAT_VERSION,
        "subject": partition.subject,
        "grade": partition.grade,
        "version": version,
        "embedding": {"model_id": model_id, "dims": dims},
        "counts": counts,
        "sources": sources,
        "content_hash": content_hash_value,
        "created_at": created_at or datetime.now(UTC).isoformat(timespec="seconds"),
        "members": {name: {"sha256": _sha256(data), "size": len(data)} for name, data in sorted(members.items())},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr(_zip_info(MANIFEST), json.dumps(manifest, indent=2, sort_keys=True))
            for name, data in sorted(members.items()):
                archive.writestr(_zip_info(name), data)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        if path.exists():
            raise VkpError(f"{path} appeared while writing: another build published this version")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(MANIFEST))


@dataclass
class VerifyReport:
    path: Path
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _unsafe_member(name: str) -> bool:
    """True for names that could land outside the directory they are extracted into."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or "\\" in name:
        return True
    return ".." in parts or ":" in parts[0]


def verify_vkp(path: Path) -> VerifyReport:
    """Check a package end to end; every mismatch is listed, none raises."""
    report = VerifyReport(Path(path))
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        report.problems.append(f"not a readable zip file: {exc}")
        return report
    with archive:
        names = [i.filename for i in archive.infolist() if not i.is_dir()]
        unsafe = [n for n in names if _unsafe_member(n)]
        if unsafe:
            report.problems.append(f"unsafe member paths (escape the package directory): {unsafe[:5]}")
            return report
        if MANIFEST not in names:
            report.problems.append(f"no {MANIFEST} in the package")
            return report
        try:
            manifest = json.loads(archive.read(MANIFEST))
        except (ValueError, zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            report.problems.append(f"{MANIFEST} is unreadable or not valid JSON: {exc}")
            return report
        report.manifest = manifest
        missing_fields = [f for f in REQUIRED_FIELDS if f not in manifest]
        if missing_fields:
            report.problems.append(f"manifest lacks fields: {missing_fields}")
            return report
        if manifest["format_version"] != FORMAT_VERSION:
            report.problems.append(
                f"format_version {manifest['format_version']} is not supported (this reader knows {FORMAT_VERSION})"
            )
        try:
            expected_name = Partition(manifest["subject"], manifest["grade"]).vkp_name(manifest["version"])
            if Path(path).name != expected_name:
                report.problems.append(f"file name {Path(path).name!r} does not match its manifest ({expected_name!r})")
        except ValueError as exc:
            report.problems.append(f"manifest identity is invalid: {exc}")
        listed = manifest["members"]
        present = set(names) - {MANIFEST}
        for name in sorted(set(listed) - present):
            report.problems.append(f"member {name} is listed in the manifest but missing")
        for name in sorted(present - set(listed)):
            report.problems.append(f"member {name} is present but not listed in the manifest")
        for name in sorted(set(listed) & present):
            try:
                data = archive.read(name)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                report.problems.append(f"member {name}: unreadable (corrupted or tampered): {exc}")
                continue
            if _sha256(data) != listed[name].get("sha256"):
                report.problems.append(f"member {name}: sha256 mismatch (corrupted or tampered)")
        if report.problems:
            return report
        _check_tables(archive, manifest, report)
    return report


def _check_tables(archive: zipfile.ZipFile, manifest: dict[str, Any], report: VerifyReport) -> None:
    counts = manifest["counts"]
    dims = manifest["embedding"]["dims"]
    chunks = pq.read_table(io.BytesIO(archive.read(CHUNKS_MEMBER)))
    embeddings = pq.read_table(io.BytesIO(archive.read(EMBEDDINGS_MEMBER)))
    if chunks.num_rows != counts.get("chunks"):
        report.problems.append(f"{CHUNKS_MEMBER} has {chunks.num_rows} rows, manifest says {counts.get('chunks')}")
    if embeddings.num_rows != chunks.num_rows:
        report.problems.append(f"{embeddings.num_rows} embeddings for {chunks.num_rows} chunks")
    if embeddings.num_rows:
        first = embeddings.column("embedding")[0].as_py()
        if len(first) != dims:
            report.problems.append(f"embeddings have {len(first)} dims, manifest says {dims}")
    if set(embeddings.column("chunk_id").to_pylist()) != set(chunks.column("chunk_id").to_pylist()):
        report.problems.append("embedding ids differ from chunk ids")
    rows = zip(*(chunks.column(c).to_pylist() for c in ("chunk_id", "file", "page_start", "page_end", "text")),
               strict=True)
    if content_hash(manifest["embedding"]["model_id"], dims, rows) != manifest["content_hash"]:
        report.problems.append("content_hash does not match the packaged chunks")
    if not any(n.startswith(CHROMA_PREFIX) for n in manifest["members"]):
        report.problems.append("no Chroma directory in the package")


def extract_chroma(path: Path, dest: Path) -> Path:
    """Unpack the package's Chroma directory into `dest` (after checking member paths)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.startswith(CHROMA_PREFIX) or info.is_dir():
                continue
            if _unsafe_member(info.filename):
                raise VkpError(f"{path}: unsafe member path {info.filename!r}")
            target = dest / info.filename[len(CHROMA_PREFIX):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
    return dest
