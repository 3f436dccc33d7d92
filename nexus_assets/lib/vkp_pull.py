"""The school-server side: pull the catalog, fetch what changed, verify it, install it atomically.

`nexus vkp pull --catalog URL_OR_PATH --dest DIR` (from cron) does, per partition in the catalog:

1. compare the installed version with the catalog's latest; if a chain of deltas leads from the
   installed version to the latest and weighs less than the full package, fetch the deltas, else
   the full package;
2. download into `DIR/.downloads/` as `<name>.part`, resuming where an interrupted download stopped
   (HTTP Range, S3 ranged GET, or a seek for a path), then check size and sha256 against the catalog;
3. verify the package's signature with the trusted public key and every member's checksum;
4. build the new release in a staging directory (a full package is extracted safely: no member may
   escape it, oversized or too many members are refused; a delta is applied to the installed tables
   and checked against the target digest, then the Chroma collection is rebuilt from them), and
   only then repoint `DIR/<subject>_<grade>/current` with one atomic rename. Until that rename the
   previous release keeps serving; a failure leaves it in place.

Installed layout: `DIR/<subject>_<grade>/current -> releases/<version>-<id>/` holding `release.json`,
`chunks.parquet`, `embeddings.parquet` and `chroma/` (open it with `chroma_store.open_collection`).
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlparse

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from nexus_assets.lib.chroma_store import (
    CURRENT_LINK,
    CollectionItems,
    model_collection_name,
    swap_current,
    write_build,
)
from nexus_assets.lib.layout import Partition
from nexus_assets.lib.s3_store import sha256_of_file
from nexus_assets.lib.tables import collection_metadatas, vectors_of
from nexus_assets.lib.vkp import (
    CHUNKS_MEMBER,
    EMBEDDINGS_MEMBER,
    ExtractLimits,
    VkpError,
    read_manifest,
    safe_extract,
    verify_vkp,
)
from nexus_assets.lib.vkp_delta import DeltaError, apply_delta, read_tables, verify_delta

RELEASE_FILE = "release.json"
RELEASES_DIR = "releases"
DOWNLOADS_DIR = ".downloads"
CHROMA_DIR = "chroma"
_BLOCK = 256 * 1024
DEFAULT_LIMITS = ExtractLimits()


class PullError(RuntimeError):
    """A catalog or package that cannot be fetched, verified or installed."""


# --- fetching -------------------------------------------------------------------------------------

Opener = Callable[[int], tuple[IO[bytes], bool]]  # offset -> (stream, whether it starts at that offset)


@dataclass
class Source:
    """Where the catalog (and, beside it, the packages) come from: http(s), s3:// or a path."""

    catalog: str
    timeout: float = 30.0
    s3_client: Any = None  # injected for s3:// (tests, custom endpoints); else built from the environment

    def _url(self, name: str) -> str:
        return urljoin(self.catalog, name)

    def opener(self, name: str | None) -> Opener:
        """A function opening the catalog (name None) or a package, from a byte offset."""
        scheme = urlparse(self.catalog).scheme
        if scheme in ("http", "https"):
            url = self._url(name) if name else self.catalog
            return lambda offset: self._open_http(url, offset)
        if scheme == "s3":
            parsed = urlparse(self.catalog)
            key = parsed.path.lstrip("/")
            if name:
                key = f"{key.rsplit('/', 1)[0]}/{name}" if "/" in key else name
            return lambda offset: self._open_s3(parsed.netloc, key, offset)
        path = Path(self.catalog[len("file://"):] if self.catalog.startswith("file://") else self.catalog)
        target = path.parent / name if name else path
        return lambda offset: self._open_path(target, offset)

    def _open_http(self, url: str, offset: int) -> tuple[IO[bytes], bool]:
        request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
        response = urllib.request.urlopen(request, timeout=self.timeout)
        return response, offset == 0 or response.status == 206

    def _open_s3(self, bucket: str, key: str, offset: int) -> tuple[IO[bytes], bool]:
        client = self.s3_client or _s3_client()
        kwargs = {"Range": f"bytes={offset}-"} if offset else {}
        return client.get_object(Bucket=bucket, Key=key, **kwargs)["Body"], True

    @staticmethod
    def _open_path(path: Path, offset: int) -> tuple[IO[bytes], bool]:
        handle = path.open("rb")
        handle.seek(offset)
        return handle, True

    def read_catalog(self) -> dict[str, Any]:
        try:
            stream, _ = self.opener(None)(0)
            with stream:
                catalog = json.loads(stream.read())
        except (OSError, urllib.error.URLError, ValueError, http.client.HTTPException) as exc:
            raise PullError(f"{self.catalog}: cannot read the catalog: {exc}") from None
        except Exception as exc:  # noqa: BLE001 -- botocore errors for s3:// sources, named in the message
            raise PullError(f"{self.catalog}: cannot read the catalog: {exc}") from None
        if not isinstance(catalog, dict) or "partitions" not in catalog:
            raise PullError(f"{self.catalog}: not a VKP catalog (no 'partitions')")
        return catalog


def _s3_client() -> Any:
    import boto3

    from nexus_assets.lib.aws_retry import RetrySettings

    return boto3.client("s3", endpoint_url=os.environ.get("NEXUS_AWS_ENDPOINT_URL") or None,
                        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
                        config=RetrySettings.from_env().config())


_TRANSIENT = (OSError, urllib.error.URLError, http.client.HTTPException, TimeoutError)


def download(opener: Opener, dest: Path, size: int, sha256: str, *, attempts: int = 5,
             pause: float = 0.2, what: str = "") -> int:
    """Fetch into `dest`, resuming from `dest.part` (left by this or an earlier, interrupted pull).

    Returns the bytes transferred by this call. The result is checked against `size` and `sha256`;
    a mismatch discards the partial file so the next try starts clean.
    """
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    transferred = 0
    last: BaseException | None = None
    for attempt in range(attempts):
        offset = part.stat().st_size if part.exists() else 0
        if offset > size:
            part.unlink()
            offset = 0
        if offset == size:
            break
        try:
            stream, resumed = opener(offset)
            with stream, part.open("ab" if resumed else "wb") as out:
                while block := stream.read(_BLOCK):
                    out.write(block)
                    transferred += len(block)
        except _TRANSIENT as exc:  # cut connection, timeout: resume from what arrived
            last = exc
            time.sleep(pause * (2 ** attempt))
            continue
        last = None
    if not part.exists() or part.stat().st_size != size:
        raise PullError(f"{what or dest.name}: download incomplete after {attempts} attempts "
                        f"({part.stat().st_size if part.exists() else 0}/{size} bytes): {last}")
    if sha256_of_file(part) != sha256:
        part.unlink()
        raise PullError(f"{what or dest.name}: sha256 differs from the catalog's (corrupted or tampered); discarded")
    os.replace(part, dest)
    return transferred


# --- planning -------------------------------------------------------------------------------------

def plan(entry: dict[str, Any], installed: str | None) -> list[dict[str, Any]]:
    """The package references to fetch, in order: a chain of deltas from `installed` when one exists
    and weighs less than the full package, else the latest full package; [] when up to date."""
    latest = entry["latest"]
    if installed == latest:
        return []
    by_version = {v["version"]: v for v in entry["versions"]}
    full = by_version[latest]["full"]
    if installed is None:
        return [full]
    chain: list[dict[str, Any]] = []
    version = latest
    while version != installed:
        delta = (by_version.get(version) or {}).get("delta")
        usable = delta and (delta["from"] == installed or delta["from"] in by_version)
        if not usable or len(chain) > len(by_version):
            return [full]
        chain.append(delta)
        version = delta["from"]
    if sum(d["size"] for d in chain) >= full["size"]:
        return [full]
    return list(reversed(chain))


# --- installing -----------------------------------------------------------------------------------

def partition_dir(dest: Path, part: Partition) -> Path:
    return dest / f"{part.subject}_{part.grade}"


def installed_release(dest: Path, part: Partition) -> Path | None:
    link = partition_dir(dest, part) / CURRENT_LINK
    if not link.exists():
        return None
    target = link.resolve()
    return target if (target / RELEASE_FILE).is_file() else None


def installed_version(dest: Path, part: Partition) -> str | None:
    release = installed_release(dest, part)
    return json.loads((release / RELEASE_FILE).read_text())["version"] if release else None


def _new_release_dir(root: Path, version: str) -> Path:
    staging = root / RELEASES_DIR / f".staging-{version}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    return staging


def _finish_release(root: Path, staging: Path, manifest: dict[str, Any], source: str, keep_previous: int) -> Path:
    (staging / RELEASE_FILE).write_text(json.dumps({
        "version": manifest["version"], "content_hash": manifest["content_hash"], "embedding": manifest["embedding"],
        "installed_from": source, "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }, indent=2, sort_keys=True))
    final = staging.with_name(staging.name.removeprefix(".staging-"))
    os.replace(staging, final)
    swap_current(root, final)
    _prune_releases(root, final, keep_previous)
    return final


def _prune_releases(root: Path, current: Path, keep_previous: int) -> None:
    releases = sorted((p for p in (root / RELEASES_DIR).iterdir() if p.is_dir() and p.resolve() != current),
                      key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in releases[keep_previous:]:
        shutil.rmtree(stale, ignore_errors=True)


def install_full(package: Path, dest: Path, part: Partition, limits: ExtractLimits = DEFAULT_LIMITS,
                 keep_previous: int = 1) -> Path:
    """Extract a verified full package into a new release and swap it in."""
    root = partition_dir(dest, part)
    manifest = read_manifest(package)
    staging = _new_release_dir(root, manifest["version"])
    try:
        safe_extract(package, staging, limits)
        return _finish_release(root, staging, manifest, package.name, keep_previous)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install_delta(delta: Path, dest: Path, part: Partition, keep_previous: int = 1) -> Path:
    """Apply a verified delta to the installed release's tables, rebuild Chroma aside, swap it in."""
    root = partition_dir(dest, part)
    current = installed_release(dest, part)
    if current is None:
        raise DeltaError(f"{delta}: no installed release of {part.label} to apply it to")
    base_manifest = json.loads((current / RELEASE_FILE).read_text())
    chunks, vectors, manifest = apply_delta(read_tables(current), base_manifest, delta)
    staging = _new_release_dir(root, manifest["version"])
    try:
        chunks.to_parquet(staging / CHUNKS_MEMBER, index=False, compression="zstd")
        vectors.to_parquet(staging / EMBEDDINGS_MEMBER, index=False, compression="zstd")
        model_id, dims = manifest["embedding"]["model_id"], int(manifest["embedding"]["dims"])
        array = vectors_of(vectors) if len(vectors) else np.zeros((0, dims), dtype=np.float32)
        name = model_collection_name(part.collection_name, model_id, dims)  # as the full build names it
        write_build(staging / CHROMA_DIR, name, CollectionItems(
            chunks["chunk_id"].tolist(), np.asarray(array, dtype=np.float32), chunks["text"].tolist(),
            collection_metadatas(part.subject, part.grade, chunks), model_id, dims))
        return _finish_release(root, staging, manifest, delta.name, keep_previous)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- the pull -------------------------------------------------------------------------------------

@dataclass
class PullOutcome:
    partition: str
    installed_before: str | None
    installed_after: str | None
    via: str  # up to date | delta | deltas (n) | full | failed
    bytes_downloaded: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"partition": self.partition, "from": self.installed_before or "-", "to": self.installed_after or "-",
                "via": self.via, "downloaded": self.bytes_downloaded, "problems": "; ".join(self.problems)}


@contextmanager
def _dest_lock(dest: Path) -> Iterator[None]:
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / ".pull.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PullError(f"{dest}: another pull is running (lock {dest / '.pull.lock'})") from None
        yield


def pull(source: Source, dest: Path, public_key: Ed25519PublicKey, *, partitions: list[str] | None = None,
         limits: ExtractLimits = DEFAULT_LIMITS, attempts: int = 5) -> list[PullOutcome]:
    """Bring every (or the chosen) partition of the catalog up to its latest version under `dest`."""
    catalog = source.read_catalog()
    outcomes = []
    with _dest_lock(dest):
        for label, entry in sorted(catalog["partitions"].items()):
            if partitions and label not in partitions:
                continue
            outcomes.append(_pull_partition(source, dest, label, entry, public_key, limits, attempts))
    return outcomes


def _pull_partition(source: Source, dest: Path, label: str, entry: dict[str, Any], public_key: Ed25519PublicKey,
                    limits: ExtractLimits, attempts: int) -> PullOutcome:
    try:
        part = Partition(entry["subject"], entry["grade"])
    except (KeyError, ValueError) as exc:
        return PullOutcome(label, None, None, "failed", problems=[f"catalog entry is invalid: {exc}"])
    before = installed_version(dest, part)
    outcome = PullOutcome(label, before, before, "up to date")
    steps = plan(entry, before)
    if not steps:
        return outcome
    if all("from" in s for s in steps):
        try:
            for ref in steps:
                outcome.bytes_downloaded += _fetch_verified(source, dest, ref, public_key, attempts, delta=True,
                                                            install=lambda p: install_delta(p, dest, part))
            outcome.via = "delta" if len(steps) == 1 else f"deltas ({len(steps)})"
            outcome.installed_after = installed_version(dest, part)
            return outcome
        except (PullError, VkpError, OSError) as exc:
            outcome.problems.append(f"delta path failed, falling back to the full package: {exc}")
        steps = plan(entry, None)
    try:
        outcome.bytes_downloaded += _fetch_verified(source, dest, steps[0], public_key, attempts, delta=False,
                                                    install=lambda p: install_full(p, dest, part, limits))
        outcome.via = "full"
    except (PullError, VkpError, OSError) as exc:
        outcome.via = "failed"
        outcome.problems.append(str(exc))
    outcome.installed_after = installed_version(dest, part)
    return outcome


def _fetch_verified(source: Source, dest: Path, ref: dict[str, Any], public_key: Ed25519PublicKey, attempts: int,
                    *, delta: bool, install: Callable[[Path], Path]) -> int:
    name = ref["name"]
    if Path(name).name != name or name.startswith("."):
        raise PullError(f"catalog names an unsafe package file {name!r}")
    local = dest / DOWNLOADS_DIR / name
    got = download(source.opener(name), local, int(ref["size"]), ref["sha256"], attempts=attempts, what=name)
    try:
        report = (verify_delta if delta else verify_vkp)(local, public_key)
        if not report.ok:
            raise PullError(f"{name} failed verification: {'; '.join(report.problems)}")
        install(local)
    finally:
        local.unlink(missing_ok=True)
    return got
