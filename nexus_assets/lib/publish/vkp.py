"""The VKP package format: a zip a school server can verify and load with no network.

Members:
- `manifest.json`: format version, subject, grade, version, embedding model and dims, counts,
  source file hashes, content hash, created_at, and the sha256 of every other member;
- `chunks.parquet`, `embeddings.parquet`: the chunks and their vectors;
- `chroma/...`: the ready-to-load Chroma directory;
- `manifest.sig`: the Ed25519 signature of the exact `manifest.json` bytes (`lib/publish/signing.py`), which
  through the member checksums covers the whole package.

Versions: the content hash covers the embedding model and every chunk (id, file, pages, text), not
the vector bytes (a function of model and text), so unchanged content gives the same hash and no
new version; which part of the version a change bumps is decided in `lib/publish/versioning.py`. Packages
are written to a temporary name and renamed into place, and an existing version is never
overwritten. The archive helpers here (signed write, verify, safe extraction) also serve the delta
packages of `lib/publish/vkp_delta.py`.

Format versions: 1 had no signature; 2 adds `manifest.sig`, `kind` and `previous_version`.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any, Literal

from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.layout import Partition
from nexus_assets.lib.core.parquet_io import read_arrow
from nexus_assets.lib.distribution.untrusted import (
    is_semver,
    load_json,
    member_name_problem,
    member_names_problem,
    signature_record,
)
from nexus_assets.lib.publish.signing import Signer, TrustedKeys, canonical_json, verify_signature

FORMAT_VERSION = 2
SUPPORTED_FORMATS = (1, 2)  # 1: unsigned packages from before signing (accepted only with allow_unsigned)
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
MAX_SIGNATURE_BYTES = 4096  # a signature record is ~150 bytes
KIND_FULL = "full"
CHUNKS_MEMBER = "chunks.parquet"
EMBEDDINGS_MEMBER = "embeddings.parquet"
CHROMA_PREFIX = "chroma/"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: same content, same bytes
REQUIRED_FIELDS = (
    "format_version",
    "subject",
    "grade",
    "version",
    "embedding",
    "counts",
    "sources",
    "content_hash",
    "created_at",
    "members",
)


class VkpError(ValueError):
    """A package that cannot be written or read."""


def content_hash(model_id: str, dims: int, chunks: Iterable[tuple[str, str, int, int, str]]) -> str:
    """Hash of (model, dims, sorted chunks as (chunk_id, file, page_start, page_end, text))."""
    digest = hashing.RecordDigest("vkp-content-v1", model_id, dims)
    for chunk_id, file, page_start, page_end, text in sorted(chunks):
        digest.record(chunk_id, file, page_start, page_end, text)
    return digest.hexdigest()


# Deflate at level 1: zlib's default 6 took 2.2 s against 1.2 s to pack a 40 MB package of 2,979 chunks
# (mostly Chroma's SQLite file) for a package 3.5% smaller (23.3 against 24.1 MB), and every build pays it,
# an incremental one included (Intel Xeon Emerald Rapids, 2026-12-06). Parquet members are deflated too:
# the pandas schema in a small table's footer compresses well, and deltas are mostly small tables.
DEFLATE_LEVEL = 1


def _write_member(archive: zipfile.ZipFile, name: str, data: bytes | str) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data, compresslevel=DEFLATE_LEVEL)


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
    signer: Signer | None = None,
    previous_version: str | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    """Write a package atomically and return its manifest. Refuses to overwrite an existing file."""
    members: dict[str, bytes] = {CHUNKS_MEMBER: chunks_parquet, EMBEDDINGS_MEMBER: embeddings_parquet}
    for file in sorted(p for p in chroma_dir.rglob("*") if p.is_file()):
        members[CHROMA_PREFIX + file.relative_to(chroma_dir).as_posix()] = file.read_bytes()
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": KIND_FULL,
        "subject": partition.subject,
        "grade": partition.grade,
        "version": version,
        "previous_version": previous_version,
        "embedding": {"model_id": model_id, "dims": dims},
        "counts": counts,
        "sources": sources,
        "content_hash": content_hash_value,
        "created_at": created_at or datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return write_signed_archive(path, manifest, members, signer)


def write_signed_archive(
    path: Path, manifest: dict[str, Any], members: dict[str, bytes], signer: Signer | None
) -> dict[str, Any]:
    """Zip `members` with a manifest listing their checksums (and its signature), atomically, never over a file."""
    if path.exists():
        raise VkpError(f"{path} already exists: a published version is never overwritten")
    manifest = {
        **manifest,
        "members": {
            name: {"sha256": hashing.sha256_bytes(data), "size": len(data)} for name, data in sorted(members.items())
        },
    }
    manifest_bytes = canonical_json(manifest)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as archive:
            _write_member(archive, MANIFEST, manifest_bytes)
            if signer is not None:
                _write_member(archive, SIGNATURE, json.dumps(signer.sign(manifest_bytes), sort_keys=True))
            for name, data in sorted(members.items()):
                _write_member(archive, name, data)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        if path.exists():
            raise VkpError(f"{path} appeared while writing: another build published this version")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def read_signature(path: Path) -> dict[str, Any] | None:
    """The package's signature record (bounded, schema-checked), or None for an unsigned package."""
    with zipfile.ZipFile(path) as archive:
        if SIGNATURE not in archive.namelist():
            return None
        raw = read_member(archive, SIGNATURE, MAX_SIGNATURE_BYTES)
        return signature_record(load_json(raw, f"{path}: {SIGNATURE}", max_bytes=MAX_SIGNATURE_BYTES), str(path))


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a package (after a size cap: never a member inflated past what a manifest may weigh)."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(read_member(archive, MANIFEST, ExtractLimits().max_manifest_bytes))


def read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A member's bytes, refused before inflating when its declared size exceeds `limit`, and cut off if
    the stream holds more than it declared (a forged central directory)."""
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise VkpError(f"member {name} declares {info.file_size} bytes, more than the {limit} allowed")
    out = io.BytesIO()
    _copy(archive.open(info), out, min(info.file_size, limit), f"member {name}")
    return out.getvalue()


# valid | invalid | unsigned | unchecked (signed, but no key to check it); `nexus vkp verify --json` says it.
Signature = Literal["valid", "invalid", "unsigned", "unchecked"]


@dataclass
class VerifyReport:
    path: Path
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    signature: Signature = "unchecked"

    @property
    def ok(self) -> bool:
        return not self.problems


def _unsafe_member(name: str) -> bool:
    """True for names that could land outside the directory they are extracted into."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or "\\" in name:
        return True
    return ".." in parts or ":" in parts[0]


def verify_vkp(
    path: Path,
    public_key: TrustedKeys | None = None,
    *,
    allow_unsigned: bool = False,
    limits: ExtractLimits | None = None,
) -> VerifyReport:
    """Check a full package end to end; no malformed package raises, each fault is reported.

    Unsigned packages are refused unless `allow_unsigned`; a signature is checked when a trusted
    `public_key` is given (callers that install, like `nexus vkp pull`, always give one). Checks stop at
    the first fatal fault, in order of cost: sizes from the central directory, the manifest, the
    signature, then each member streamed through its checksum, then the tables (read under a size cap).
    """
    report = VerifyReport(Path(path))
    limits = limits or ExtractLimits()
    with open_verified_archive(report, public_key, allow_unsigned, KIND_FULL, limits=limits) as archive:
        if archive is None:
            return report
        manifest = report.manifest or {}
        try:
            expected_name = Partition(manifest["subject"], manifest["grade"]).vkp_name(manifest["version"])
            if Path(path).name != expected_name:
                report.problems.append(f"file name {Path(path).name!r} does not match its manifest ({expected_name!r})")
        except ValueError as exc:
            report.problems.append(f"manifest identity is invalid: {exc}")
        if not report.problems:
            _check_tables(archive, manifest, report, limits)
    return report


@contextmanager
def open_verified_archive(
    report: VerifyReport,
    public_key: TrustedKeys | None,
    allow_unsigned: bool,
    kind: str,
    required: tuple[str, ...] = REQUIRED_FIELDS,
    limits: ExtractLimits | None = None,
) -> Iterator[zipfile.ZipFile | None]:
    """Open `report.path` and check what every package kind shares: sizes and safe member names, the
    manifest and its fields, the signature, every member's checksum. Yields None (with problems) on failure."""
    try:
        archive = zipfile.ZipFile(report.path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        report.problems.append(f"not a readable zip file: {exc}")
        yield None
        return
    with archive:
        if not _check_archive(archive, report, public_key, allow_unsigned, kind, required, limits or ExtractLimits()):
            yield None
            return
        yield archive


# The type of every manifest field a reader uses: a wrong type is a refused package, never a traceback.
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "kind": str,
    "subject": str,
    "grade": str,
    "version": str,
    "embedding": dict,
    "counts": dict,
    "sources": list,
    "content_hash": str,
    "created_at": str,
    "members": dict,
    "previous_version": (str, type(None)),
    "base_version": str,
    "base_content_hash": str,
    "tables_digest": str,
}


def manifest_problems(manifest: dict[str, Any], required: tuple[str, ...]) -> list[str]:
    """What makes a manifest unusable: missing fields, wrong types, a malformed members table."""
    missing = [f for f in required if f not in manifest]
    if missing:
        return [f"manifest lacks fields: {missing}"]
    problems = []
    for name, expected in _FIELD_TYPES.items():
        value = manifest.get(name)
        if name in manifest and (not isinstance(value, expected) or isinstance(value, bool)):
            problems.append(f"manifest field {name!r} is {type(value).__name__}, not {_type_names(expected)}")
    if problems:
        return problems
    embedding = manifest.get("embedding", {})
    if (
        not isinstance(embedding.get("model_id"), str)
        or not _is_int(embedding.get("dims"))
        or embedding.get("dims") < 1
    ):
        problems.append("manifest field 'embedding' needs a model_id (text) and dims (a positive integer)")
    if any(not _is_int(v) for v in manifest.get("counts", {}).values()):
        problems.append("manifest field 'counts' holds a value that is not an integer")
    for name in ("version", "base_version", "previous_version"):
        if manifest.get(name) is not None and not is_semver(manifest[name]):
            problems.append(
                f"manifest field {name!r} is {str(manifest[name])[:40]!r}, not MAJOR.MINOR.PATCH (ASCII digits)"
            )
    for name, entry in manifest["members"].items():
        if member_name_problem(name):
            problems.append(f"manifest lists member {name[:80]!r}: {member_name_problem(name)}")
            break
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"], re.ASCII) is not None
            and _is_int(entry.get("size"))
            and entry["size"] >= 0
        ):
            problems.append(
                f"manifest entry of member {name!r} is not {{'sha256': 64 hex digits, 'size': integer >= 0}}"
            )
            break
    return problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_names(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def _check_archive(
    archive: zipfile.ZipFile,
    report: VerifyReport,
    public_key: TrustedKeys | None,
    allow_unsigned: bool,
    kind: str,
    required: tuple[str, ...],
    limits: ExtractLimits,
) -> bool:
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        report.problems.append(f"{len(infos)} members, more than the {limits.max_members} allowed")
        return False
    files = {i.filename: i for i in infos if not i.is_dir()}
    names = list(files)
    if len(files) != sum(1 for i in infos if not i.is_dir()):
        report.problems.append("a member name appears twice (which copy is checked and which installed is ambiguous)")
        return False
    unsafe = [n for n in names if _unsafe_member(n)]
    if unsafe:
        report.problems.append(f"unsafe member paths (escape the package directory): {unsafe[:5]}")
        return False
    named = member_names_problem([i.filename for i in infos])
    if named:
        report.problems.append(f"{named}: refused")
        return False
    encrypted = [i.filename for i in infos if i.flag_bits & 0x1]
    if encrypted:
        report.problems.append(f"encrypted members {encrypted[:3]}: refused (a package is never encrypted)")
        return False
    oversized = [n for n, i in files.items() if i.file_size > limits.max_member_bytes]
    total = sum(i.file_size for i in files.values())
    if oversized or total > limits.max_total_bytes:
        report.problems.append(
            f"members declare more than allowed ({oversized[:3] or f'{total} bytes in all'}; "
            f"limits {limits.max_member_bytes} per member, {limits.max_total_bytes} in all)"
        )
        return False
    if MANIFEST not in names:
        report.problems.append(f"no {MANIFEST} in the package")
        return False
    try:
        manifest_bytes = read_member(archive, MANIFEST, limits.max_manifest_bytes)
        manifest = load_json(manifest_bytes, MANIFEST, max_bytes=limits.max_manifest_bytes, max_values=5_000_000)
    except (ValueError, zipfile.BadZipFile, OSError, EOFError, zlib.error, RecursionError) as exc:
        report.problems.append(f"{MANIFEST} is unreadable or not valid JSON: {exc}")
        return False
    if not isinstance(manifest, dict):
        report.problems.append(f"{MANIFEST} is not a JSON object")
        return False
    report.manifest = manifest
    if "format_version" in manifest and manifest["format_version"] not in SUPPORTED_FORMATS:
        report.problems.append(
            f"format_version {manifest['format_version']!r} is not supported (this reader knows "
            f"{', '.join(map(str, SUPPORTED_FORMATS))})"
        )
        return False
    problems = manifest_problems(manifest, required)
    if problems:
        report.problems.extend(problems)
        return False
    if manifest.get("kind", KIND_FULL) != kind:
        report.problems.append(f"manifest kind {manifest.get('kind')!r} where a {kind!r} package was expected")
        return False
    if not _check_signature(archive, manifest_bytes, names, report, public_key, allow_unsigned, limits):
        return False  # nothing the manifest lists is trusted (or inflated) after a failed signature
    listed = manifest["members"]
    present = set(names) - {MANIFEST, SIGNATURE}
    for name in sorted(set(listed) - present):
        report.problems.append(f"member {name} is listed in the manifest but missing")
    for name in sorted(present - set(listed)):
        report.problems.append(f"member {name} is present but not listed in the manifest")
    for name in sorted(set(listed) & present):
        if files[name].file_size != listed[name]["size"]:
            report.problems.append(
                f"member {name}: the archive declares {files[name].file_size} bytes, the manifest "
                f"{listed[name]['size']} (corrupted or tampered)"
            )
    if report.problems:
        return False
    for name in sorted(listed):
        try:
            digest = _stream_sha256(archive, files[name])
        except (VkpError, zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
            report.problems.append(f"member {name}: unreadable (corrupted or tampered): {exc}")
            return False
        if digest != listed[name]["sha256"]:
            report.problems.append(f"member {name}: sha256 mismatch (corrupted or tampered)")
            return False
    return True


def _stream_sha256(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """sha256 of a member read block by block, never more bytes than it declares (the manifest agreed)."""
    digest = hashing.new()
    with archive.open(info) as source:
        _copy(source, SimpleNamespace(write=digest.update), info.file_size, f"member {info.filename}")
    return str(digest.hexdigest())


def _check_signature(
    archive: zipfile.ZipFile,
    manifest_bytes: bytes,
    names: list[str],
    report: VerifyReport,
    public_key: TrustedKeys | None,
    allow_unsigned: bool,
    limits: ExtractLimits,
) -> bool:
    """Record the signature's state; False when it makes the package unacceptable."""
    if SIGNATURE not in names:
        report.signature = "unsigned"
        if not allow_unsigned:
            report.problems.append(
                f"unsigned package (no {SIGNATURE}): refused unless unsigned packages are "
                "explicitly allowed (--allow-unsigned)"
            )
            return False
        return True
    if public_key is None:
        report.signature = "unchecked"
        return True
    try:
        record = load_json(
            read_member(archive, SIGNATURE, MAX_SIGNATURE_BYTES), SIGNATURE, max_bytes=MAX_SIGNATURE_BYTES
        )
    except (ValueError, zipfile.BadZipFile, OSError, EOFError, zlib.error, RecursionError) as exc:
        report.problems.append(f"{SIGNATURE} is unreadable: {exc}")
        report.signature = "invalid"
        return False
    problem = verify_signature(public_key, manifest_bytes, record)
    report.signature = "invalid" if problem else "valid"
    if problem:
        report.problems.append(f"{SIGNATURE}: {problem}")
        return False
    return True


# What a table member that parses as something else raises (pyarrow's errors are ArrowException).
_TABLE_ERRORS = (ValueError, KeyError, TypeError, IndexError, OverflowError, OSError)


def _check_tables(
    archive: zipfile.ZipFile, manifest: dict[str, Any], report: VerifyReport, limits: ExtractLimits
) -> None:
    import pyarrow as pa

    try:
        _compare_tables(archive, manifest, report, limits)
    except (*_TABLE_ERRORS, pa.ArrowException, VkpError) as exc:
        report.problems.append(f"the tables cannot be read ({type(exc).__name__}: {str(exc)[:200]})")


def _compare_tables(
    archive: zipfile.ZipFile, manifest: dict[str, Any], report: VerifyReport, limits: ExtractLimits
) -> None:
    counts = manifest["counts"]
    dims = manifest["embedding"]["dims"]
    for member in (CHUNKS_MEMBER, EMBEDDINGS_MEMBER):
        if member not in manifest["members"]:
            report.problems.append(f"no {member} in the package")
            return
    chunks = read_arrow(read_member(archive, CHUNKS_MEMBER, limits.max_table_bytes))
    embeddings = read_arrow(read_member(archive, EMBEDDINGS_MEMBER, limits.max_table_bytes))
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
    rows = zip(
        *(chunks.column(c).to_pylist() for c in ("chunk_id", "file", "page_start", "page_end", "text")), strict=True
    )
    if content_hash(manifest["embedding"]["model_id"], dims, rows) != manifest["content_hash"]:
        report.problems.append("content_hash does not match the packaged chunks")
    if not any(n.startswith(CHROMA_PREFIX) for n in manifest["members"]):
        report.problems.append("no Chroma directory in the package")


@dataclass(frozen=True)
class ExtractLimits:
    """What a package may declare before anything is inflated or written: bounds on memory, disk and files.

    Checked against the central directory (and the signed manifest) before any member is read; a member
    holding more bytes than it declares is cut off at its declared size.
    """

    max_members: int = 20_000
    max_member_bytes: int = 2 * 1024**3
    max_total_bytes: int = 8 * 1024**3
    max_manifest_bytes: int = 32 * 1024**2  # manifest.json and manifest.sig, read into memory
    max_table_bytes: int = 1024**3  # chunks/embeddings parquet, read into memory by verification
    max_package_bytes: int = 8 * 1024**3  # a download's declared size (the catalog's)


def safe_extract(
    path: Path, dest: Path, limits: ExtractLimits | None = None, prefix: str = "", strip_prefix: bool = False
) -> list[Path]:
    """Extract the members (under `prefix`) into `dest`, refusing the whole archive first if any member
    would escape `dest` (`..`, absolute, drive letters, links), declares an oversized size, or the
    archive holds too many members. Never writes more bytes than a member declared."""
    dest = Path(dest)
    limits = limits or ExtractLimits()
    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir() and i.filename.startswith(prefix)]
        if len(archive.infolist()) > limits.max_members:
            raise VkpError(f"{path}: {len(archive.infolist())} members, more than the {limits.max_members} allowed")
        total = 0
        for info in infos:
            if _unsafe_member(info.filename) or _is_link(info):
                raise VkpError(f"{path}: unsafe member path {info.filename!r} (would escape {dest})")
            if info.file_size > limits.max_member_bytes:
                raise VkpError(
                    f"{path}: member {info.filename!r} declares {info.file_size} bytes, more than the "
                    f"{limits.max_member_bytes} allowed"
                )
            total += info.file_size
        if total > limits.max_total_bytes:
            raise VkpError(
                f"{path}: members declare {total} bytes in all, more than the {limits.max_total_bytes} allowed"
            )
        aliasing = member_names_problem([i.filename for i in archive.infolist()])
        if aliasing:
            raise VkpError(f"{path}: {aliasing}: refused")
        root = dest.resolve()
        written = []
        for info in infos:
            name = info.filename[len(prefix) :] if strip_prefix else info.filename
            target = (dest / name).resolve()
            if root not in target.parents:
                raise VkpError(f"{path}: member {info.filename!r} resolves outside {dest}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as out:
                _copy(source, out, info.file_size, f"{path}: member {info.filename!r}")
            written.append(target)
    return written


def _copy(source: Any, out: Any, limit: int, what: str) -> int:
    """Stream a member, refusing more bytes than declared (zipfile already stops there; this says so)."""
    copied = 0
    while block := source.read(1024 * 1024):
        copied += len(block)
        if copied > limit:
            raise VkpError(f"{what} holds more bytes than it declares")
        out.write(block)
    return copied


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def extract_chroma(path: Path, dest: Path) -> Path:
    """Unpack the package's Chroma directory into `dest` (after checking member paths and sizes)."""
    safe_extract(path, dest, prefix=CHROMA_PREFIX, strip_prefix=True)
    return dest
