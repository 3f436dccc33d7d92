"""The school-server side: pull the catalog, fetch what changed, verify it, install it atomically.

`nexus vkp pull --catalog URL_OR_PATH --dest DIR` (from cron) takes the pull lock (a second run exits at
once), removes what a killed pull left, reads the catalog (at most `MAX_CATALOG_BYTES`, within
`FetchSettings.catalog_deadline`, over `http_fetch` for http(s)), refuses it unless it passes its schema,
is signed by a trusted key, unexpired, valid no longer than the maximum window and no older than the
newest catalog this school verified (`CATALOG_STATE`, then updated), then does, per partition in the
catalog, each on its own (one bad partition fails alone, named, and the others are still installed):

1. check the entry (`vkp_catalog.check_entry`: it names its own partition's files, latest is its
   newest version) and compare its latest with the installed version: older is refused (a rollback),
   equal is up to date; if a chain of deltas leads from the installed version to the latest and weighs
   less than the full package, fetch the deltas, else the full package;
2. download into `DIR/.downloads/` as `<name>.part`, resuming where an interrupted download stopped
   (HTTP Range, S3 ranged GET, or a seek for a regular file), never writing more than the catalog's
   size (a longer body is refused), then check sha256 against the catalog;
3. verify the package (sizes, manifest, signature with the trusted public key, then every member's
   checksum, stopping at the first fault) and bind it to its entry: its signed manifest must name the
   same partition, version, kind, base and content hash (`vkp_catalog.binding_problems`);
4. build the new release in a staging directory (a full package is extracted safely: no member may
   escape it, oversized or too many members are refused; a delta is applied to the installed tables
   and checked against the target digest, then the Chroma collection is rebuilt from them), and
   only then repoint `DIR/<subject>_<grade>/current` with one atomic rename. Until that rename the
   previous release keeps serving; a failure leaves it in place.

Fault points `pull.download`, `pull.verify`, `pull.extract`, `pull.swap` and `pull.prune` let the crash
tests kill a pull at each stage (test_pull_crashes.py).

Installed layout: `DIR/<subject>_<grade>/current -> releases/<version>-<id>/` holding `release.json`,
`chunks.parquet`, `embeddings.parquet` and `chroma/` (open it with `chroma_store.open_collection`).
"""

from __future__ import annotations

import errno
import fcntl
import http.client
import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlparse

import numpy as np

from nexus_assets.lib.core.escaping import shown
from nexus_assets.lib.core.fault_points import fault_point
from nexus_assets.lib.core.hashing import sha256_file
from nexus_assets.lib.core.input_files import InputFileError, open_regular, read_checked
from nexus_assets.lib.core.layout import Partition, parse_semver
from nexus_assets.lib.core.tables import collection_metadatas, vectors_of
from nexus_assets.lib.distribution.http_fetch import (
    TRANSIENT_STATUS,
    FetchError,
    FetchSettings,
    HttpClient,
    Metered,
    check_scheme,
    local_path,
    pause_before,
    readable,
    redact,
    retrying,
)
from nexus_assets.lib.distribution.untrusted import Fields, UntrustedError, integer, load_json, semver, text, timestamp
from nexus_assets.lib.distribution.vkp_catalog import (
    DEFAULT_MAX_VALIDITY_DAYS,
    MAX_CATALOG_BYTES,
    CatalogError,
    VerifiedCatalog,
    binding_problems,
    check_entry,
    verify_catalog_bytes,
)
from nexus_assets.lib.index.chroma_store import (
    CURRENT_LINK,
    CollectionItems,
    model_collection_name,
    open_collection,
    swap_current,
    write_build,
)
from nexus_assets.lib.publish.signing import TrustedKeys
from nexus_assets.lib.publish.vkp import (
    CHUNKS_MEMBER,
    EMBEDDINGS_MEMBER,
    ExtractLimits,
    VkpError,
    read_manifest,
    safe_extract,
    verify_vkp,
)
from nexus_assets.lib.publish.vkp_delta import DeltaError, apply_delta, read_tables, verify_delta

RELEASE_FILE = "release.json"
RELEASES_DIR = "releases"
DOWNLOADS_DIR = ".downloads"
STAGING_PREFIX = ".staging-"
CLOCK_SKEW = timedelta(minutes=10)  # how far ahead of the school's clock a recorded signing time may be
CATALOG_STATE = ".catalog-state.json"  # the newest catalog this school verified (TUF's trusted metadata)
CHROMA_DIR = "chroma"
_BLOCK = 256 * 1024
DEFAULT_LIMITS = ExtractLimits()


class PullError(RuntimeError):
    """A catalog or package that cannot be fetched, verified or installed (its message shown safely: it may
    quote what a mirror sent)."""

    def __init__(self, message: str) -> None:
        super().__init__(shown(message))


# --- fetching -------------------------------------------------------------------------------------

Opener = Callable[[int], tuple[IO[bytes], bool]]  # offset -> (stream, whether it starts at that offset)


@dataclass
class Source:
    """Where the catalog (and, beside it, the packages) come from: http(s), s3:// or a path.

    http(s) goes through `http_fetch.HttpClient` (deadline, minimum rate, same-origin redirects only);
    a scheme not in `fetch.schemes` is refused before anything is requested."""

    catalog: str
    fetch: FetchSettings = field(default_factory=FetchSettings)
    s3_client: Any = None  # for s3://: the CLI's, from the settings; else boto3's own configuration
    _http: HttpClient | None = field(default=None, init=False, repr=False)

    @property
    def shown(self) -> str:
        """The catalog's location fit for messages (credentials masked)."""
        return redact(self.catalog)

    def _url(self, name: str) -> str:
        return urljoin(self.catalog, name)

    def _client(self) -> HttpClient:
        if self._http is None:
            self._http = HttpClient(self.catalog, self.fetch)
        return self._http

    def opener(self, name: str | None, deadline: float | None = None) -> Opener:
        """A function opening the catalog (name None) or a package, from a byte offset."""
        try:
            scheme = check_scheme(self.catalog, self.fetch)
        except FetchError as exc:
            raise PullError(str(exc)) from None
        if scheme in ("http", "https"):
            url = self._url(name) if name else self.catalog
            return lambda offset: self._open_http(url, offset, deadline)
        if scheme == "s3":
            parsed = urlparse(self.catalog)
            key = parsed.path.lstrip("/")
            if name:
                key = f"{key.rsplit('/', 1)[0]}/{name}" if "/" in key else name
            return lambda offset: self._open_s3(parsed.netloc, key, offset, deadline)
        try:
            path = local_path(self.catalog)
        except FetchError as exc:
            raise PullError(str(exc)) from None
        target = path.parent / name if name else path
        what, most = ("package", DEFAULT_LIMITS.max_package_bytes) if name else ("the catalog", MAX_CATALOG_BYTES)
        return lambda offset: self._open_path(target, offset, what, most)

    def _open_http(self, url: str, offset: int, deadline: float | None) -> tuple[IO[bytes], bool]:
        """A Range request from `offset`; resumed only when the server answered 206 from that very byte (a 200,
        or a 206 from byte 0, is the whole file: it starts over; a 206 from any other byte is refused)."""
        body = self._client().open(url, offset, deadline)
        if offset == 0 or body.status != 206:
            return body, offset == 0  # type: ignore[return-value]
        start = _range_start(body.headers.get("Content-Range"))
        if start == offset:
            return body, True  # type: ignore[return-value]
        if start == 0:
            return body, False  # type: ignore[return-value]
        body.close()
        raise FetchError(
            f"{redact(url)}: asked for bytes {offset}- and the mirror answered "
            f"{'Content-Range ' + repr(body.headers.get('Content-Range'))[:80] if start is None else f'bytes {start}-'}"
            ": refused",
            transient=True,
        )

    def _open_s3(self, bucket: str, key: str, offset: int, deadline: float | None) -> tuple[IO[bytes], bool]:
        """A ranged GET of the object, its body read under the request's deadline and minimum rate (the client's
        own timeouts and single attempt come from the same settings: `s3_client`)."""
        if self.s3_client is None:
            self.s3_client = s3_client(self.fetch)
        deadline = deadline if deadline is not None else time.monotonic() + self.fetch.request_deadline
        kwargs = {"Range": f"bytes={offset}-"} if offset else {}
        where = f"s3://{bucket}/{key}"
        try:
            body = self.s3_client.get_object(Bucket=bucket, Key=key, **kwargs)["Body"]
        except Exception as exc:  # noqa: BLE001 -- botocore's errors, in words
            raise s3_error(exc, where) from None
        if time.monotonic() >= deadline:
            body.close()
            raise FetchError(f"{where}: the request passed its deadline", transient=True)
        return Metered(body, where, self.fetch, deadline), True  # type: ignore[return-value]

    @staticmethod
    def _open_path(path: Path, offset: int, what: str, max_bytes: int) -> tuple[IO[bytes], bool]:
        """Open a regular file only (`open_regular`: a FIFO, device or directory, even behind a link, is
        refused before anything could block on it); a refusal is final, not retried."""
        try:
            handle = open_regular(path, what, max_bytes)
        except InputFileError as exc:
            raise FetchError(str(exc)) from None
        handle.seek(offset)
        return handle, True

    def read_catalog_bytes(self) -> bytes:
        """The catalog's bytes, at most MAX_CATALOG_BYTES, within `fetch.catalog_deadline` (retries included:
        transient failures are retried with jitter, honouring Retry-After). Raises PullError."""
        deadline = time.monotonic() + self.fetch.catalog_deadline
        opener = self.opener(None, deadline)

        def attempt() -> bytes:
            try:
                stream, _ = opener(0)
                with stream:
                    _refuse_longer(stream, MAX_CATALOG_BYTES, "the catalog", None)
                    chunks, size = [], 0
                    while block := stream.read(min(_BLOCK, MAX_CATALOG_BYTES + 1 - size)):
                        chunks.append(block)
                        size += len(block)
                        if size > MAX_CATALOG_BYTES:
                            raise PullError(
                                f"{self.shown}: the catalog is larger than {MAX_CATALOG_BYTES} bytes: refused"
                            )
                        if time.monotonic() >= deadline:
                            raise FetchError(f"{self.shown}: the catalog passed its deadline", transient=True)
                    return b"".join(chunks)
            except (FetchError, PullError):
                raise
            except OSError as exc:
                raise FetchError(f"{self.shown}: {readable(exc)}", transient=True) from None

        try:
            return retrying(attempt, self.shown, self.fetch, deadline=deadline)
        except FetchError as exc:
            raise PullError(f"cannot read the catalog: {exc}") from None

    def read_catalog(
        self, public_key: TrustedKeys, now: datetime | None = None, max_validity_days: float = DEFAULT_MAX_VALIDITY_DAYS
    ) -> dict[str, Any]:
        """The catalog, refused unless signed by a trusted key and unexpired (no freshness record: see `pull`)."""
        return self.verified_catalog(public_key, now, max_validity_days).doc

    def verified_catalog(
        self, public_key: TrustedKeys, now: datetime | None = None, max_validity_days: float = DEFAULT_MAX_VALIDITY_DAYS
    ) -> VerifiedCatalog:
        raw = self.read_catalog_bytes()
        try:
            return verify_catalog_bytes(raw, public_key, self.shown, now, max_validity_days=max_validity_days)
        except CatalogError as exc:
            raise PullError(str(exc)) from None


def s3_client(fetch: FetchSettings, **client_args: Any) -> Any:
    """An S3 client for an s3:// catalog, bounded by the pull's own settings (NEXUS_PULL_*): its connect and
    read timeouts, and one attempt per call, since the pull's retry loop (jitter, attempts, deadline) makes
    the attempts, as it does for http. `client_args`: endpoint_url, region_name (the CLI's settings)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=fetch.connect_timeout,
        read_timeout=fetch.read_timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    return boto3.client("s3", config=config, **{k: v for k, v in client_args.items() if v})


_S3_TRANSIENT_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError"})


def s3_error(exc: BaseException, where: str) -> FetchError:
    """A botocore error in words; transient for throttling, 5xx, timeouts and connection failures."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        missing = code in ("NoSuchKey", "NoSuchBucket", "404") or status == 404
        return FetchError(
            f"{where}: {code or 'error'} (HTTP {status}){' (not found on the mirror)' if missing else ''}",
            transient=status in TRANSIENT_STATUS or code in _S3_TRANSIENT_CODES,
        )
    if isinstance(exc, BotoCoreError):
        name = type(exc).__name__
        timed_out = "Timeout" in name
        return FetchError(f"{where}: {'timed out' if timed_out else readable(exc)} ({name})", transient=True)
    return FetchError(f"{where}: {type(exc).__name__}: {str(exc)[:200]}", transient=True)


_TRANSIENT = (OSError, http.client.HTTPException, TimeoutError)


def download(
    opener: Opener,
    dest: Path,
    size: int,
    sha256: str,
    *,
    attempts: int = 5,
    pause: float = 0.2,
    what: str = "",
    max_bytes: int = DEFAULT_LIMITS.max_package_bytes,
    on_bytes: Callable[[int, int], None] | None = None,
    fetch: FetchSettings | None = None,
) -> int:
    """Fetch into `dest`, resuming from `dest.part` (left by this or an earlier, interrupted pull).

    Returns the bytes transferred by this call. `size` (the catalog's) is checked before anything is
    written (at most `max_bytes`, and it must fit on the disk) and bounds every write: a source with
    more to give is refused on the spot, the partial file discarded. The result must match `sha256`.
    A transient failure is retried (resuming) after a jittered pause or the server's Retry-After.
    `on_bytes(present, size)` is called after every block (a progress bar's feed).
    """
    what = what or dest.name
    settings = fetch or FetchSettings(attempts=attempts, backoff=pause)
    attempts = settings.attempts
    if size > max_bytes:
        raise PullError(f"{what}: the catalog declares {size} bytes, more than the {max_bytes} allowed: refused")
    part = dest.with_name(dest.name + ".part")
    own_dir(dest.parent, "the downloads directory", create=True)
    if part.is_symlink():  # planted: resuming would append to whatever it points at
        part.unlink()
    transferred = 0
    last: BaseException | None = None
    for attempt in range(attempts):
        offset = part.stat().st_size if part.exists() else 0
        if offset > size:
            part.unlink()
            offset = 0
        if offset == size:
            break
        free = shutil.disk_usage(dest.parent).free
        if free < size - offset:
            raise PullError(f"{what}: {size - offset} bytes to download but only {free} free under {dest.parent}")
        try:
            stream, resumed = opener(offset)
            mode = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if resumed else os.O_TRUNC)
            with stream, open_regular(part, "the partial download", flags=mode, follow_links=False) as out:
                remaining = size - (offset if resumed else 0)
                _refuse_longer(stream, remaining, what, part)
                while remaining and (block := stream.read(min(_BLOCK, remaining))):
                    try:
                        out.write(block)
                    except OSError as exc:  # the school's disk, not the network: not retried
                        raise PullError(f"{what}: cannot write {part} ({local_problem(exc)})") from None
                    transferred += len(block)
                    remaining -= len(block)
                    if on_bytes:
                        on_bytes(size - remaining, size)
                    fault_point("pull.download")
                if not remaining and stream.read(1):
                    raise _overflow(what, size, part)
        except InputFileError as exc:
            raise PullError(f"{what}: {exc}") from None
        except FetchError as exc:
            if not exc.transient:
                raise PullError(f"{what}: {exc}") from None
            last = exc
            if attempt + 1 < attempts:
                time.sleep(pause_before(attempt, exc, settings))
            continue
        except _TRANSIENT as exc:  # cut connection, timeout: resume from what arrived
            last = FetchError(readable(exc), transient=True)
            if attempt + 1 < attempts:
                time.sleep(pause_before(attempt, None, settings))
            continue
        last = None
    if not part.exists() or part.stat().st_size != size:
        why = last or "the source ended before the catalog's size (a short or empty body)"
        raise PullError(
            f"{what}: download incomplete after {attempts} attempt{'s' if attempts != 1 else ''} "
            f"({part.stat().st_size if part.exists() else 0}/{size} bytes): {why}"
        )
    if sha256_file(part) != sha256:
        part.unlink()
        raise PullError(f"{what}: sha256 differs from the catalog's (corrupted or tampered); discarded")
    os.replace(part, dest)
    return transferred


def _range_start(value: str | None) -> int | None:
    """The first byte of a `Content-Range: bytes START-END/TOTAL` header, None when it is not one."""
    unit, _, rest = (value or "").strip().partition(" ")
    start = rest.partition("-")[0]
    return int(start[:20]) if unit == "bytes" and start.isascii() and start.isdigit() else None


def _refuse_longer(stream: Any, remaining: int, what: str, part: Path | None) -> None:
    """Refuse up front a response whose Content-Length says it is longer than what is left to fetch."""
    headers = getattr(stream, "headers", None)  # an HTTP response (S3 bodies and files have none)
    length = headers.get("Content-Length") if headers is not None else None
    if isinstance(length, str) and length.isascii() and length.isdigit() and int(length[:20]) > remaining:
        raise _overflow(
            what, remaining, part, f"announces {length[:20]} bytes, more than the {remaining} left to fetch"
        )


def _overflow(what: str, size: int, part: Path | None, how: str = "") -> PullError:
    if part is not None:
        part.unlink(missing_ok=True)
    how = how or f"sent more than the catalog's {size} bytes"
    return PullError(f"{what}: the source {how}: refused and discarded (a wrong or hostile mirror)")


# --- planning -------------------------------------------------------------------------------------


def plan(entry: dict[str, Any], installed: str | None) -> list[dict[str, Any]]:
    """The package references to fetch, in order: a chain of deltas from `installed` when one exists
    and weighs less than the full package, else the latest full package; [] when up to date. Each
    reference carries the `version` it delivers (to bind the package to it)."""
    latest = entry["latest"]
    if installed == latest:
        return []
    by_version = {v["version"]: v for v in entry["versions"]}
    full = {**by_version[latest]["full"], "version": latest}
    if installed is None:
        return [full]
    chain: list[dict[str, Any]] = []
    version = latest
    while version != installed:
        delta = (by_version.get(version) or {}).get("delta")
        usable = delta and (delta["from"] == installed or delta["from"] in by_version)
        if not usable or len(chain) > len(by_version):
            return [full]
        chain.append({**delta, "version": version})
        version = delta["from"]
    if sum(d["size"] for d in chain) >= full["size"]:
        return [full]
    return list(reversed(chain))


# --- installing -----------------------------------------------------------------------------------


def partition_dir(dest: Path, part: Partition) -> Path:
    return dest / f"{part.subject}_{part.grade}"


def own_dir(path: Path, what: str, create: bool = False) -> Path:
    """`path` when it is a real directory (not a link, nor reached through one from its parent): the pull
    writes, prunes and deletes only in directories of its own, never in one a planted link points at."""
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            pass  # a file or a link where the directory should be: named below
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise PullError(f"{path}: {what} is missing") from None
    if stat.S_ISLNK(info.st_mode):
        raise PullError(
            f"{path}: {what} is a symbolic link (to {_link_target(path)}): refused, the pull writes and deletes "
            "only in its own directories; remove the link and pull again"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise PullError(f"{path}: {what} is not a directory: refused; remove it and pull again")
    return path


def _link_target(path: Path) -> str:
    try:
        return os.readlink(path)[:200]
    except OSError:
        return "?"


def installed_release(dest: Path, part: Partition) -> Path | None:
    """The release `current` points at, or None when there is none. `current` must be a link to a finished
    release directly under `<partition>/releases/` (what `swap_current` writes): one pointing anywhere
    else (planted, or hand-made) is refused with PullError, never read as the serving release nor
    written beside or pruned."""
    return _current_release(partition_dir(dest, part))


def _current_release(root: Path) -> Path | None:
    """`installed_release` for the partition directory `root`."""
    link = root / CURRENT_LINK
    if not link.is_symlink():
        if os.path.lexists(link):
            raise PullError(f"{link}: not a symbolic link to a release: refused; remove it and pull again")
        return None
    own_dir(root, "the partition directory")
    releases = root / RELEASES_DIR
    if os.path.lexists(releases):
        own_dir(releases, "the releases directory")
    target = Path(os.path.normpath(root / os.readlink(link)))
    inside = target.parent == Path(os.path.normpath(releases)) and not target.name.startswith(STAGING_PREFIX)
    if not inside or target.is_symlink() or (target.exists() and not _is_release(target)):
        raise PullError(
            f"{link} points at {_link_target(link)}, not at a release in {root / RELEASES_DIR}: refused "
            "(a planted or hand-made link is never read, written or pruned); remove it and pull again"
        )
    return target if target.exists() else None  # a release that is gone (a dangling link): reinstall


MAX_STATE_BYTES = 64 * 1024  # a school state file (release.json, the catalog record): a few hundred bytes


def release_state(release: Path) -> dict[str, Any]:
    """A release's `release.json`, bounded and schema-checked (a disk a killed process or a person edited
    is input too). Raises PullError naming the file and the field."""
    path = release / RELEASE_FILE
    try:
        raw = read_checked(path, "release state", MAX_STATE_BYTES, follow_links=False)
        fields = Fields(load_json(raw, str(path), max_bytes=MAX_STATE_BYTES, max_depth=3), str(path), "")
        fields.get("version", semver)
        fields.get("content_hash", text(128))
        fields.get("embedding", _embedding_state)
        fields.get("installed_from", text(400), optional=True)
        fields.get("installed_at", timestamp, optional=True)
        return fields.done()
    except (UntrustedError, InputFileError) as exc:
        raise PullError(f"{exc} (delete that release directory and pull again)") from None
    except OSError as exc:
        raise PullError(f"{path}: cannot read it ({readable(exc)})") from None


def _embedding_state(value: Any, where: str, field: str) -> dict[str, Any]:
    fields = Fields(value, where, field)
    fields.get("model_id", text(256))
    fields.get("dims", integer(1, 65536))
    return fields.done()


def installed_version(dest: Path, part: Partition) -> str | None:
    release = installed_release(dest, part)
    return release_state(release)["version"] if release else None


def _new_release_dir(root: Path, version: str) -> Path:
    own_dir(root, "the partition directory", create=True)
    releases = own_dir(root / RELEASES_DIR, "the releases directory", create=True)
    staging = releases / f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    return staging


def check_collection(release: Path, manifest: dict[str, Any]) -> None:
    """Open the release's Chroma collection as the school's search will, before it is swapped in: it must open
    with the manifest's model and hold the manifest's chunk count. Checksums prove the bytes are the ones the
    publisher signed, not that they work: a buggy or compromised build whose database does not open would
    otherwise replace a working release and report success. Raises PullError."""
    expected = (manifest.get("counts") or {}).get("chunks")
    try:
        count = open_collection(release / CHROMA_DIR, manifest["embedding"]["model_id"]).count()
    except Exception as exc:  # noqa: BLE001 -- chromadb's and sqlite's errors alike: the release does not work
        raise PullError(
            f"v{manifest.get('version')}: its Chroma collection does not open ({type(exc).__name__}: "
            f"{str(exc)[:160]}): not installed, the previous release keeps serving"
        ) from None
    if isinstance(expected, int) and not isinstance(expected, bool) and count != expected:
        raise PullError(
            f"v{manifest.get('version')}: its Chroma collection holds {count} items, the manifest says {expected} "
            "chunks: not installed, the previous release keeps serving"
        )


def _finish_release(root: Path, staging: Path, manifest: dict[str, Any], source: str, keep_previous: int) -> Path:
    check_collection(staging, manifest)
    (staging / RELEASE_FILE).write_text(
        json.dumps(
            {
                "version": manifest["version"],
                "content_hash": manifest["content_hash"],
                "embedding": manifest["embedding"],
                "installed_from": source,
                "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            indent=2,
            sort_keys=True,
        )
    )
    final = staging.with_name(staging.name.removeprefix(STAGING_PREFIX))
    previous = _current_release(root)
    os.replace(staging, final)
    fault_point("pull.swap")
    try:
        swap_current(root, final)
    except OSError as exc:  # never served: removed, so failing runs do not pile up copies of a release
        shutil.rmtree(final, ignore_errors=True)
        raise PullError(f"{root / CURRENT_LINK}: cannot point it at the new release ({readable(exc)})") from None
    fault_point("pull.prune")
    _prune_releases(root, final, keep_previous, previous)
    return final


def _is_release(path: Path) -> bool:
    """A finished release: a directory with its release.json, not a staging directory a killed pull left."""
    return (
        not path.is_symlink()
        and path.is_dir()
        and not path.name.startswith(STAGING_PREFIX)
        and (path / RELEASE_FILE).is_file()
    )


def _prune_releases(root: Path, current: Path, keep_previous: int, previous: Path | None = None) -> None:
    """Keep the current release and `keep_previous` others, the one that served before this swap first;
    remove the rest, leftover staging directories and unfinished releases included. Releases are told apart
    by name (all are direct children of releases/): comparing resolved paths with unresolved ones counted
    the serving release as stale whenever --dest lay under a symbolic link (/srv -> /data/srv)."""
    entries = [p for p in (root / RELEASES_DIR).iterdir() if p.name != current.name]
    finished = sorted((p for p in entries if _is_release(p)), key=lambda p: p.lstat().st_mtime, reverse=True)
    if previous is not None:
        finished.sort(key=lambda p: p.name != previous.name)  # stable: the previous one first, then by age
    for stale in [p for p in entries if not _is_release(p)] + finished[keep_previous:]:
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def clean_leftovers(dest: Path, keep_parts: set[str] = frozenset()) -> list[Path]:  # type: ignore[assignment]
    """Remove what a killed pull left (run under the pull lock, so nothing else is writing): staging
    directories under every partition's releases/, and downloads other than the `.part` files named in
    `keep_parts` (kept so a failed download resumes next time). Returns what was removed."""
    removed: list[Path] = []
    for root in dest.iterdir():
        releases = root / RELEASES_DIR
        if root.is_symlink() or releases.is_symlink() or not releases.is_dir():
            continue  # never look behind a link: what it points at is not the pull's to delete
        for staging in releases.glob(f"{STAGING_PREFIX}*"):
            if staging.is_dir() and not staging.is_symlink():
                shutil.rmtree(staging, ignore_errors=True)
            else:
                staging.unlink(missing_ok=True)
            removed.append(staging)
    downloads = dest / DOWNLOADS_DIR
    if not os.path.lexists(downloads):
        return removed
    own_dir(downloads, "the downloads directory")
    for leftover in downloads.iterdir():
        regular = stat.S_ISREG(os.lstat(leftover).st_mode)
        if regular and leftover.name in keep_parts:
            continue
        if regular or leftover.is_symlink():  # a link is removed, never what it points at
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


def install_full(
    package: Path, dest: Path, part: Partition, limits: ExtractLimits = DEFAULT_LIMITS, keep_previous: int = 1
) -> Path:
    """Extract a verified full package into a new release and swap it in."""
    root = partition_dir(dest, part)
    manifest = read_manifest(package)
    staging = _new_release_dir(root, manifest["version"])
    try:
        fault_point("pull.extract")
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
    base_manifest = release_state(current)
    chunks, vectors, manifest = apply_delta(read_tables(current), base_manifest, delta)
    staging = _new_release_dir(root, manifest["version"])
    try:
        fault_point("pull.extract")
        chunks.to_parquet(staging / CHUNKS_MEMBER, index=False, compression="zstd")
        vectors.to_parquet(staging / EMBEDDINGS_MEMBER, index=False, compression="zstd")
        model_id, dims = manifest["embedding"]["model_id"], int(manifest["embedding"]["dims"])
        array = vectors_of(vectors) if len(vectors) else np.zeros((0, dims), dtype=np.float32)
        name = model_collection_name(part.collection_name, model_id, dims)  # as the full build names it
        write_build(
            staging / CHROMA_DIR,
            name,
            CollectionItems(
                chunks["chunk_id"].tolist(),
                np.asarray(array, dtype=np.float32),
                chunks["text"].tolist(),
                collection_metadatas(part.subject, part.grade, chunks),
                model_id,
                dims,
            ),
        )
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
        return {
            "partition": self.partition,
            "from": self.installed_before or "-",
            "to": self.installed_after or "-",
            "via": self.via,
            "downloaded": self.bytes_downloaded,
            "problems": "; ".join(self.problems),
        }


@dataclass(frozen=True)
class PullEvent:
    """What `pull` reports as it goes, for a progress display.

    kind: `partition` (one starts: index of total), `download` (bytes `done` of `size` of package `name`),
    `verify`, `install` (of `name`), `done` (with its `outcome`).
    """

    kind: str
    partition: str
    index: int = 0
    total: int = 0
    name: str = ""
    done: int = 0
    size: int = 0
    outcome: PullOutcome | None = None


PullListener = Callable[[PullEvent], None]


def _ignore(_event: PullEvent) -> None:
    pass


LOCK_FILE = ".pull.lock"


@contextmanager
def _dest_lock(dest: Path) -> Iterator[None]:
    """The pull lock: `<dest>/.pull.lock`, opened without following a link and never truncated (a link
    planted there would otherwise make the pull create or truncate whatever file it points at)."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PullError(f"{dest}: cannot create the install directory ({local_problem(exc)})") from None
    try:
        lock = open_regular(dest / LOCK_FILE, "the pull lock", flags=os.O_RDWR | os.O_CREAT, follow_links=False)
    except InputFileError as exc:
        raise PullError(
            f"{exc}; it must be a plain file the pull's user may write (a first pull run by another user, such "
            f"as root, leaves {dest} owned by it: run every pull as one user, or give {dest} to it)"
        ) from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PullError(f"{dest}: another pull is running (lock {dest / LOCK_FILE})") from None
        yield


def pull(
    source: Source,
    dest: Path,
    public_key: TrustedKeys,
    *,
    partitions: list[str] | None = None,
    limits: ExtractLimits = DEFAULT_LIMITS,
    attempts: int | None = None,
    max_validity_days: float = DEFAULT_MAX_VALIDITY_DAYS,
    notify: PullListener = _ignore,
) -> list[PullOutcome]:
    """Bring every (or the chosen) partition of the catalog up to its latest version under `dest`.

    Under the pull lock (a second pull exits at once: the catalog read has a deadline, so cron runs never
    pile up): leftovers of a killed pull are removed, the catalog is read and verified, and refused when
    older than the newest one this school verified (`CATALOG_STATE`), which it then records. A catalog
    that cannot be trusted raises PullError; past that, each partition succeeds or fails on its own (its
    outcome names why), so one bad entry or package never keeps the others from installing. `.part`
    files of failed downloads are kept to resume; every other leftover is gone when the pull ends.
    `notify` receives a PullEvent at each stage (a progress display; nothing else depends on it).
    """
    # Absolute from here on: a relative `--dest` left a delta install's `current` link pointing at a release
    # staged relative to the wrong directory (found by the independent attack, issue 25).
    dest = Path(dest).absolute()
    fetch = source.fetch if attempts is None else replace(source.fetch, attempts=attempts)
    outcomes = []
    with _dest_lock(dest):
        clean_leftovers(dest, keep_parts={p.name for p in (dest / DOWNLOADS_DIR).glob("*.part")})
        verified = source.verified_catalog(public_key, max_validity_days=max_validity_days)
        record_fresh_catalog(dest, verified, source.shown)
        entries = verified.doc["partitions"]
        keep_parts: set[str] = set()
        chosen = [label for label in sorted(entries) if not partitions or label in partitions]
        sharing = _sharing_install_dirs(entries)
        for index, label in enumerate(chosen, 1):
            notify(PullEvent("partition", shown(label), index, len(chosen)))
            try:
                if label in sharing:
                    raise PullError(sharing[label])
                outcome = _pull_partition(
                    source, dest, label, entries[label], public_key, limits, fetch, notify, keep_parts
                )
            except Exception as exc:  # noqa: BLE001 -- isolation: a fault in one partition must not stop the rest
                serving = _installed_or_none(dest, label)
                reason = str(exc)[:300] if isinstance(exc, PullError) else f"{type(exc).__name__}: {str(exc)[:300]}"
                outcome = PullOutcome(label, serving, serving, "failed", problems=[f"{label}: {reason}"])
            outcome.problems = [shown(p) for p in outcome.problems]  # they may quote a mirror's bytes
            outcome.partition = shown(outcome.partition)  # a signed key need not be well formed (check_entry)
            outcomes.append(outcome)
            notify(PullEvent("done", shown(label), index, len(chosen), outcome=outcome))
        for label in sorted(set(partitions or ()) - set(entries)):
            outcomes.append(PullOutcome(label, None, None, "failed", problems=[f"{label} is not in the catalog"]))
        if partitions:  # a partial pull keeps the other partitions' resumable downloads
            keep_parts |= {p.name for p in (dest / DOWNLOADS_DIR).glob("*.part")}
        clean_leftovers(dest, keep_parts)
    return outcomes


def local_problem(exc: OSError) -> str:
    """A local file system error in words, with what usually causes it."""
    hint = {
        errno.ENOSPC: "the disk is full: free space and pull again",
        errno.EDQUOT: "the disk quota is used up",
        errno.EACCES: "permission denied: is it owned by another user? run every pull as one user",
        errno.EPERM: "not permitted: is it owned by another user? run every pull as one user",
        errno.EROFS: "the file system is read-only",
    }.get(exc.errno or 0)
    return hint or readable(exc)


def _problem(exc: BaseException) -> str:
    """A partition's failure in words: an OSError (disk full, permissions) names its file and the cause."""
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{local_problem(exc)} (while installing; the previous release keeps serving)"
    return str(exc)


def _sharing_install_dirs(entries: dict[str, Any]) -> dict[str, str]:
    """Why each partition whose install directory (and package names) `<subject>_<grade>` another partition
    of the catalog shares is refused: `ilmu/komputer_kelas_10` and `ilmu_komputer/kelas_10` would install
    over each other. The publisher never builds such a pair (`layout.without_ambiguous_packages`); a catalog
    listing one is refused for both, never resolved by order."""
    by_dir: dict[str, list[str]] = {}
    for label in entries:
        by_dir.setdefault(label.replace("/", "_", 1), []).append(label)
    return {
        label: (
            f"partitions {' and '.join(sorted(labels))} would install into the same directory {name}/ and share "
            "package names: both refused (the publisher must rename one)"
        )
        for name, labels in by_dir.items()
        if len(labels) > 1
        for label in labels
    }


def _installed_or_none(dest: Path, label: str) -> str | None:
    """The installed version of `label` for a failed partition's row (None when it cannot be told)."""
    try:
        return installed_version(dest, Partition.from_label(label))
    except Exception:  # noqa: BLE001 -- a report's detail: the failure itself is already recorded
        return None


def catalog_state(dest: Path) -> dict[str, Any] | None:
    """The newest catalog this school verified (`<dest>/.catalog-state.json`), schema-checked; None if none."""
    path = dest / CATALOG_STATE
    if not os.path.lexists(path):
        return None
    try:
        raw = read_checked(path, "the catalog record", MAX_STATE_BYTES, follow_links=False)
    except InputFileError as exc:
        raise PullError(f"{exc}; delete {path} to trust the next valid catalog") from None
    except OSError as exc:
        raise PullError(f"{path}: cannot read it ({readable(exc)})") from None
    try:
        fields = Fields(load_json(raw, str(path), max_bytes=MAX_STATE_BYTES, max_depth=2), str(path), "")
        fields.get("state_format", lambda v, w, f: integer(1, 1)(v, w, f))
        fields.get("updated_at", timestamp)
        fields.get("expires", timestamp)
        fields.get("sha256", text(64, r"[0-9a-f]{64}", "64 hex digits"))
        fields.get("key_id", text(64))
        fields.get("verified_at", timestamp)
        fields.get("source", text(4096), optional=True)
        state = fields.done()
        datetime.fromisoformat(state["updated_at"])
    except UntrustedError as exc:
        raise PullError(
            f"{exc}: the record of the newest catalog verified here is damaged; delete {path} to trust the "
            "next valid catalog (a replay of an older one is then refused from that one on)"
        ) from None
    except ValueError as exc:
        raise PullError(f"{path}: updated_at: {exc}; delete {path} to trust the next valid catalog") from None
    return state


def record_fresh_catalog(dest: Path, verified: VerifiedCatalog, source: str, now: datetime | None = None) -> None:
    """Refuse a catalog signed before the newest one this school verified (a replay, or a mirror stuck in
    the past: TUF's freeze and rollback attacks on metadata), else record it as the newest, atomically.

    What is recorded is the signing time, but never later than the school's own clock plus `CLOCK_SKEW`: a
    catalog signed in the future (a publisher whose clock ran ahead, then was corrected) would otherwise make
    every honest catalog signed before that date a "replay" at every school until the date passed; capped,
    the lock-out lasts at most the skew."""
    state = catalog_state(dest)
    now = now or datetime.now(UTC)
    if state is not None:
        newest = datetime.fromisoformat(state["updated_at"])
        if verified.updated_at < newest:
            raise PullError(
                f"{source}: the catalog was signed at {verified.doc['updated_at']}, before the newest catalog "
                f"this school has verified (signed {state['updated_at']}): a replayed or stale copy; refused"
            )
        if verified.updated_at == newest and verified.sha256 == state["sha256"]:
            return
    latest = now + CLOCK_SKEW
    signed = verified.doc["updated_at"] if verified.updated_at <= latest else latest.isoformat(timespec="microseconds")
    record = {
        "state_format": 1,
        "updated_at": signed,
        "expires": verified.doc["expires"],
        "sha256": verified.sha256,
        "key_id": verified.key_id,
        "verified_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source[:4096],
    }
    path = dest / CATALOG_STATE
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:
        raise PullError(
            f"{path}: cannot record the newest catalog verified ({local_problem(exc)}): nothing was installed; "
            "the record before is intact"
        ) from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _pull_partition(
    source: Source,
    dest: Path,
    label: str,
    entry: Any,
    public_key: TrustedKeys,
    limits: ExtractLimits,
    fetch: FetchSettings,
    notify: PullListener = _ignore,
    keep_parts: set[str] | None = None,
) -> PullOutcome:
    try:
        part = check_entry(label, entry, limits.max_package_bytes)
    except CatalogError as exc:
        serving = _installed_or_none(dest, label)  # what still serves, as every other failed row says
        return PullOutcome(label, serving, serving, "failed", problems=[str(exc)])
    before = installed_version(dest, part)
    outcome = PullOutcome(label, before, before, "up to date")
    if before is not None and parse_semver(entry["latest"]) < parse_semver(before):
        outcome.via = "failed"
        outcome.problems.append(
            f"{label}: the catalog's latest v{entry['latest']} is older than the installed "
            f"v{before}: refused (versions never move backwards; a replayed or rolled-back "
            "catalog)"
        )
        return outcome
    steps = plan(entry, before)
    if not steps:
        return outcome
    by_version = {v["version"]: v for v in entry["versions"]}
    if all("from" in s for s in steps):
        try:
            for ref in steps:
                outcome.bytes_downloaded += _fetch_verified(
                    source,
                    dest,
                    part,
                    by_version[ref["version"]],
                    ref,
                    public_key,
                    fetch,
                    limits,
                    install=lambda p: install_delta(p, dest, part),
                    notify=notify,
                    keep_parts=keep_parts,
                )
            outcome.via = "delta" if len(steps) == 1 else f"deltas ({len(steps)})"
            outcome.installed_after = installed_version(dest, part)
            return outcome
        except (PullError, VkpError, OSError) as exc:
            outcome.problems.append(f"delta path failed, falling back to the full package: {_problem(exc)}")
        steps = plan(entry, None)
    try:
        outcome.bytes_downloaded += _fetch_verified(
            source,
            dest,
            part,
            by_version[steps[0]["version"]],
            steps[0],
            public_key,
            fetch,
            limits,
            install=lambda p: install_full(p, dest, part, limits),
            notify=notify,
            keep_parts=keep_parts,
        )
        outcome.via = "full"
    except (PullError, VkpError, OSError) as exc:
        outcome.via = "failed"
        outcome.problems.append(_problem(exc))
    outcome.installed_after = installed_version(dest, part)
    return outcome


def _fetch_verified(
    source: Source,
    dest: Path,
    part: Partition,
    version: dict[str, Any],
    ref: dict[str, Any],
    public_key: TrustedKeys,
    fetch: FetchSettings,
    limits: ExtractLimits,
    *,
    install: Callable[[Path], Path],
    notify: PullListener = _ignore,
    keep_parts: set[str] | None = None,
) -> int:
    """Download one package of `part` (its name was checked by `check_entry`), verify it, bind it to its
    catalog entry, install it; the downloaded file is removed whatever happens."""
    name = ref["name"]
    local = dest / DOWNLOADS_DIR / name
    label = part.label
    try:
        got = download(
            source.opener(name),
            local,
            ref["size"],
            ref["sha256"],
            what=name,
            max_bytes=limits.max_package_bytes,
            on_bytes=lambda done, size: notify(PullEvent("download", label, name=name, done=done, size=size)),
            fetch=fetch,
        )
    except BaseException:
        if keep_parts is not None:
            keep_parts.add(f"{name}.part")  # resumed by the next pull
        raise
    try:
        notify(PullEvent("verify", label, name=name))
        fault_point("pull.verify")
        report = (verify_delta if "from" in ref else verify_vkp)(local, public_key, limits=limits)
        if not report.ok:
            raise PullError(f"{name} failed verification: {'; '.join(report.problems)}")
        mismatch = binding_problems(report.manifest or {}, part, version, ref)
        if mismatch:
            raise PullError(
                f"{name} is not the package the catalog entry of {part.label} describes: {'; '.join(mismatch)}: refused"
            )
        notify(PullEvent("install", label, name=name))
        install(local)
    finally:
        local.unlink(missing_ok=True)
    return got
