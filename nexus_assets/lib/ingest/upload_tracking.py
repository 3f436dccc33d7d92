"""Detecting which partitions changed since the last look, from a listing of their PDFs.

The cursor holds one fingerprint (and a change count) per partition: a hash of the sorted (file name, ETag or sha256)
pairs of its PDFs. Comparing a fresh listing with it catches every new, re-uploaded and deleted
file, whatever its key sorts like and however many land in the same second, with no watermark to
skip past: the traps of `since_key` and `since_last_modified` listing (dagster issue 22892,
one-second LastModified) do not exist here. The cursor grows with the number of partitions, not
objects (100,000 PDFs in 500 partitions is a 500-entry cursor).

S3 event notifications (SQS mode) are parsed here too, into the partitions they touch.
"""

from __future__ import annotations

import json
import os
import unicodedata
import urllib.parse
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.escaping import quoted
from nexus_assets.lib.core.layout import (
    NAME_MAX_BYTES,
    RAW_PREFIX,
    LayoutError,
    Partition,
    refusal,
    validate_slug,
)

CURSOR_VERSION = 1
# raw_pdfs' metadata entry holding `partition_fingerprint` of the PDFs it read.
UPLOAD_FINGERPRINT = "upload_fingerprint"


@dataclass(frozen=True)
class Listed:
    key: str  # raw-curriculum/<subject>/<grade>/<file>.pdf
    etag: str  # S3 ETag, or the sha256 of a local file


def _decodings(segment: str, rounds: int = 3) -> list[str]:
    """A key segment and what it becomes when URL-decoded once, twice, ... (catches %2e%2e and %252e%252e)."""
    seen = [segment]
    for _ in range(rounds):
        decoded = urllib.parse.unquote(seen[-1])
        if decoded == seen[-1]:
            break
        seen.append(decoded)
    return seen


def _escapes(segment: str) -> bool:
    for form in _decodings(segment):
        folded = unicodedata.normalize("NFKC", form)  # fullwidth dots (U+FF0E) fold to '.'
        if form in ("", ".", "..") or folded in (".", "..") or "/" in folded or "\\" in folded:
            return True
    return False


def partition_of_key(key: str) -> Partition:
    """The partition a raw key belongs to; LayoutError (naming the key) when it is outside the layout.

    Refused: absolute keys, empty, `.` and `..` segments, backslashes, all of these URL-encoded (once or
    more) or in fullwidth forms, control characters, hidden files (`.x.pdf`, macOS `._x.pdf`), wrong
    depth, other suffixes and non-slug folders. Every refusal names the key.
    """
    if any(unicodedata.category(c) == "Cs" for c in key):  # a local name of invalid UTF-8 (surrogateescape)
        raw = os.fsencode(key)
        try:
            raw.decode("utf-8")
            where = ""
        except UnicodeDecodeError as exc:
            where = f"byte 0x{raw[exc.start]:02x} at {exc.start}: "
        readable = raw.decode("utf-8", "backslashreplace")
        raise LayoutError(
            f"{readable!r} is not a valid UTF-8 name ({where}written in another encoding, e.g. "
            "Latin-1 or a Windows code page): skipped; rename the file or folder"
        )
    if any(unicodedata.category(c) == "Cc" for c in key):
        raise LayoutError(f"{key!r} contains control characters: skipped")
    parts = key.split("/")
    if key.startswith("/") or any(_escapes(p) for p in parts):
        raise LayoutError(f"{key!r} tries to escape the {RAW_PREFIX}/ layout: skipped")
    if len(parts) != 4 or parts[0] != RAW_PREFIX or not parts[3].lower().endswith(".pdf"):
        raise LayoutError(f"{key!r} is not {RAW_PREFIX}/<subject>/<grade>/<file>.pdf: skipped")
    if len(os.fsencode(parts[3])) > NAME_MAX_BYTES:  # an S3 key may have 1,024 bytes; the local mirror cannot
        raise LayoutError(
            f"{quoted(key)}: the file name is {len(os.fsencode(parts[3])):,} bytes, over the {NAME_MAX_BYTES} a "
            "file name may have on disk: skipped; rename the file"
        )
    if parts[3].startswith("."):
        raise LayoutError(
            f"{key!r} is a hidden file (its name starts with '.', e.g. a macOS '._' resource fork): skipped"
        )
    validate_slug(parts[1], "subject", key)
    validate_slug(parts[2], "grade", key)
    return Partition(parts[1], parts[2])


def skip_message(exc: LayoutError, partitions: Collection[Partition]) -> str:
    """The message of a skipped key, naming the slug a non-slug folder collides with among `partitions`."""
    if exc.what == "subject":
        return refusal(exc, {p.subject for p in partitions})
    if exc.what == "grade":
        return refusal(exc, {p.grade for p in partitions})
    return str(exc)


def fingerprint(files: Iterable[tuple[str, str]]) -> str:
    """Hash of a partition's (file name, ETag) pairs; the empty partition has a fingerprint too."""
    digest = hashing.RecordDigest("raw-v1")
    for name, etag in sorted(files):
        digest.record(name, etag)
    return digest.hexdigest(20)


@dataclass
class ListingDiff:
    fingerprints: dict[Partition, str]  # every partition present now (or just emptied)
    changed: list[Partition]
    skipped: list[str] = field(default_factory=list)  # keys outside the layout, with the reason


def diff_listing(listing: Iterable[Listed], previous: dict[str, Any]) -> ListingDiff:
    """Partitions whose PDFs differ from the cursor's fingerprints (new, changed or deleted files)."""
    files: dict[Partition, list[tuple[str, str]]] = {}
    refused: list[LayoutError] = []
    for item in listing:
        try:
            part = partition_of_key(item.key)
        except LayoutError as exc:
            refused.append(exc)
            continue
        files.setdefault(part, []).append((item.key.rsplit("/", 1)[-1], item.etag))
    skipped = [skip_message(exc, files) for exc in refused]
    fingerprints = {part: fingerprint(pairs) for part, pairs in files.items()}
    for label in previous:  # partitions whose last PDF was deleted
        part = partition_of_label(label)
        if part is not None and part not in fingerprints:
            fingerprints[part] = fingerprint([])
    changed = sorted(p for p, fp in fingerprints.items() if cursor_fingerprint(previous.get(p.label)) != fp)
    return ListingDiff(fingerprints, changed, skipped)


def partition_fingerprint(listing: Iterable[Listed], part: Partition) -> str:
    """The fingerprint the sensors compute for `part` from a listing of its folder.

    `raw_pdfs` records it with every build (metadata `UPLOAD_FINGERPRINT`), so a sensor switched on
    later, with no cursor yet, tells a folder built since its last change from one never built.
    """
    return diff_listing(listing, {}).fingerprints.get(part, fingerprint([]))


def partition_of_label(label: str) -> Partition | None:
    """The partition of a cursor entry `<subject>/<grade>`, None for an entry no longer valid."""
    try:
        return Partition.from_label(label)
    except LayoutError:
        return None


def dump_cursor(
    fingerprints: dict[Partition, str], previous: dict[str, Any], extra: dict[str, Any] | None = None
) -> str:
    """Cursor text: per partition its fingerprint and how many changes were seen (the run key's
    sequence number). Empty partitions are dropped once their rebuild has been requested."""
    empty = fingerprint([])
    partitions = {}
    for part, fp in sorted(fingerprints.items()):
        old = previous.get(part.label)
        seq = _seq(old) + (1 if cursor_fingerprint(old) != fp else 0)
        if fp != empty:
            partitions[part.label] = [fp, seq]
    return json.dumps({"v": CURSOR_VERSION, "partitions": partitions, **(extra or {})}, sort_keys=True)


def cursor_fingerprint(entry: Any) -> str | None:
    """The fingerprint of a cursor entry `[fingerprint, change count]`."""
    return entry[0] if isinstance(entry, list) else None


def _seq(entry: Any) -> int:
    return int(entry[1]) if isinstance(entry, list) else 0


def load_cursor(text: str | None) -> dict[str, Any]:
    if not text:
        return {"v": CURSOR_VERSION, "partitions": {}}
    data = json.loads(text)
    if data.get("v") != CURSOR_VERSION:
        return {"v": CURSOR_VERSION, "partitions": {}}  # an old cursor format: relist everything once
    return data


def run_key(part: Partition, fp: str, previous: dict[str, Any]) -> str:
    """Derived from the partition's content and its change count: a tick evaluated twice gives the
    same key (Dagster never launches the duplicate), while content that returns to an earlier state
    (a file deleted, then uploaded again) still gets a new one."""
    old = previous.get(part.label)
    seq = _seq(old) + (1 if cursor_fingerprint(old) != fp else 0)
    return f"{part.subject}|{part.grade}|{fp}|{seq}"


@dataclass(frozen=True)
class S3Event:
    key: str
    event_name: str
    etag: str | None


def parse_s3_event_message(body: str) -> list[S3Event] | None:
    """Records of an S3 event notification (directly or wrapped by SNS); [] for S3's test event,
    None when the body is not an S3 notification at all."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and "Message" in data and isinstance(data["Message"], str):
            data = json.loads(data["Message"])  # delivered through SNS
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("Event") == "s3:TestEvent":
        return []
    records = data.get("Records")
    if not isinstance(records, list):
        return None
    events = []
    for record in records:
        try:
            obj = record["s3"]["object"]
            key = urllib.parse.unquote_plus(obj["key"])
            events.append(S3Event(key, str(record.get("eventName", "")), obj.get("eTag")))
        except (KeyError, TypeError):
            return None
    return events
