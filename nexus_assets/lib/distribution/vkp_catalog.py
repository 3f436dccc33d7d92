"""The catalog school servers pull from: per partition, the latest version and the packages to get it.

`vkp/catalog.json` (in the data directory locally, in the bucket in aws mode, for a CDN to serve):

    {"catalog_format": 2, "updated_at": ..., "expires": ..., "signature": {...},
     "partitions": {"<subject>/<grade>": {
        "subject", "grade", "latest": "1.2.0",
        "versions": [   # newest first, the retained ones only
            {"version", "content_hash", "embedding": {"model_id", "dims"}, "created_at",
             "full":  {"name", "size", "sha256", "signature"},
             "delta": {"name", "from", "size", "sha256", "signature"} | null}, ...]}}}

Package names are relative to the catalog's own location, so one catalog works from a path, an
s3:// URI or a CDN URL. The pointer never moves backwards: locally the update happens under a file
lock and compares versions; in aws mode the DynamoDB item per partition is the source of truth,
written with a condition on the version's rank, and `catalog.json` is regenerated from the table.

The document is signed (Ed25519, `lib/publish/signing.py`) over its canonical JSON without the `signature` field,
and expires `NEXUS_CATALOG_EXPIRY_DAYS` (default 30, at most `NEXUS_CATALOG_MAX_VALIDITY_DAYS`) after
signing; every publication and every catalog sync re-signs it once it is a day old. A school
(`verify_catalog_bytes`, `check_entry`) refuses a catalog that fails its schema, an unsigned, forged or
expired one, one valid for longer than the maximum window, an entry that does not name its own
partition's packages, and binds each package it installs to its entry (`binding_problems`). See
docs/security.md for the threat model.
A deleted local catalog is rebuilt from the packages beside it (`entries_from_packages`).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from nexus_assets.lib.aws.s3_store import S3ObjectStore
from nexus_assets.lib.core.hashing import sha256_bytes, sha256_file
from nexus_assets.lib.core.layout import VKP_PREFIX, Partition, parse_semver
from nexus_assets.lib.core.numbers import parse_number
from nexus_assets.lib.core.partition_lock import file_lock
from nexus_assets.lib.distribution.untrusted import (
    Fields,
    UntrustedError,
    integer,
    is_semver,
    load_json,
    nullable,
    one_of,
    semver,
    sha256_hex,
    signature_record,
    text,
    timestamp,
)
from nexus_assets.lib.publish.signing import Signer, TrustedKeys, canonical_json, key_ids, verify_signature
from nexus_assets.lib.publish.vkp import read_manifest, read_signature

CATALOG_NAME = "catalog.json"
CATALOG_KEY = f"{VKP_PREFIX}/{CATALOG_NAME}"
CATALOG_FORMAT = 2  # 1: unsigned, no expiry (refused by schools since issue 16)
DYNAMO_PK = "vkp_catalog"
DEFAULT_KEEP_VERSIONS = 5
EXPIRY_ENV = "NEXUS_CATALOG_EXPIRY_DAYS"
DEFAULT_EXPIRY_DAYS = 30.0
MAX_VALIDITY_ENV = "NEXUS_CATALOG_MAX_VALIDITY_DAYS"
DEFAULT_MAX_VALIDITY_DAYS = 365.0
ABSOLUTE_MAX_VALIDITY_DAYS = 3650  # ten years: no setting signs or accepts more (and no date overflows)
MAX_PARTITIONS = 50_000
# Values (containers and commas) a catalog may hold: ~6,000 partitions of 5 versions. Measured peak of the
# worst shapes at this bound: under 40 MB (AMD EPYC, test_a_hostile_catalog_stays_within_its_memory_bound).
MAX_CATALOG_VALUES = 1_000_000
RESIGN_AFTER = timedelta(days=1)  # a sync re-signs a catalog signed longer ago than this
MAX_CATALOG_BYTES = 16 * 1024**2  # read cap on a downloaded catalog: ~40 000 partition entries


class CatalogError(ValueError):
    """A catalog (or one entry of it) that a school must not act on."""


def rank(version: str) -> int:
    """A version as one comparable number (for DynamoDB's condition expressions)."""
    major, minor, patch = parse_semver(version)
    return major * 10**12 + minor * 10**6 + patch


def partition_key(part: Partition) -> str:
    return part.label


def package_ref(path: Path, signature: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """What a school needs to fetch and check one package file before opening it."""
    return {
        "name": path.name,
        "size": path.stat().st_size,
        "sha256": sha256_file(path),
        "signature": signature,
        **extra,
    }


def with_release(
    entry: dict[str, Any] | None, part: Partition, release: dict[str, Any], keep: int = DEFAULT_KEEP_VERSIONS
) -> tuple[dict[str, Any], list[str]]:
    """The partition's entry with `release` as latest, trimmed to the `keep` newest versions; and the
    versions that fell out (their packages are to be deleted once the entry is stored)."""
    if keep < 1:
        raise ValueError(f"keep_versions must be at least 1, got {keep}")
    versions = [v for v in (entry or {}).get("versions", []) if v["version"] != release["version"]]
    versions = sorted([release, *versions], key=lambda v: parse_semver(v["version"]), reverse=True)
    kept, dropped = versions[:keep], [v["version"] for v in versions[keep:]]
    new = {"subject": part.subject, "grade": part.grade, "latest": kept[0]["version"], "versions": kept}
    return new, dropped


def release_record(manifest: dict[str, Any], full: dict[str, Any], delta: dict[str, Any] | None) -> dict[str, Any]:
    """One version of an entry: what the manifest says it is and the package references that deliver it."""
    return {
        "version": manifest["version"],
        "content_hash": manifest["content_hash"],
        "embedding": manifest["embedding"],
        "created_at": manifest["created_at"],
        "full": full,
        "delta": delta,
    }


def expiry_days(environ: Mapping[str, str], max_days: float | None = None) -> float:
    """Days a signed catalog stays valid: $NEXUS_CATALOG_EXPIRY_DAYS of the settings' snapshot, else 30; at most
    `max_days` ($NEXUS_CATALOG_MAX_VALIDITY_DAYS, else 365): a school refuses a longer window anyway."""
    limit = max_validity_days(environ) if max_days is None else max_days
    value = environ.get(EXPIRY_ENV) or DEFAULT_EXPIRY_DAYS
    days = parse_number(str(value), EXPIRY_ENV)
    if not days > 0:
        raise ValueError(f"{EXPIRY_ENV} must be a positive number of days, got {value!r}")
    if not days <= limit:
        raise ValueError(
            f"{EXPIRY_ENV}={value!r} is more than the {limit:g} days a catalog may stay valid "
            f"({MAX_VALIDITY_ENV}); a long expiry lets a replayed catalog withhold updates that long"
        )
    return days


def max_validity_days(environ: Mapping[str, str]) -> float:
    """The longest validity window signer and school accept: $NEXUS_CATALOG_MAX_VALIDITY_DAYS, else 365."""
    value = environ.get(MAX_VALIDITY_ENV) or DEFAULT_MAX_VALIDITY_DAYS
    days = parse_number(str(value), MAX_VALIDITY_ENV)
    if not 0 < days <= ABSOLUTE_MAX_VALIDITY_DAYS:
        raise ValueError(f"{MAX_VALIDITY_ENV} must be in 1..{ABSOLUTE_MAX_VALIDITY_DAYS} days, got {value!r}")
    return days


def document(
    entries: dict[str, dict[str, Any]],
    signer: Signer | None = None,
    *,
    now: datetime | None = None,
    days: float | None = None,
) -> dict[str, Any]:
    """The catalog document, signed (and given an expiry) when a signer is given."""
    now = now or datetime.now(UTC)
    days = days or DEFAULT_EXPIRY_DAYS
    if not 0 < days <= ABSOLUTE_MAX_VALIDITY_DAYS:
        raise ValueError(f"a catalog's validity must be in (0, {ABSOLUTE_MAX_VALIDITY_DAYS}] days, got {days!r}")
    doc: dict[str, Any] = {
        "catalog_format": CATALOG_FORMAT,
        "updated_at": now.isoformat(timespec="microseconds"),  # orders catalogs: schools refuse an older one
        "expires": (now + timedelta(days=days)).isoformat(timespec="seconds"),
        "partitions": dict(sorted(entries.items())),
    }
    if signer is not None:
        doc["signature"] = signer.sign(signed_bytes(doc))
    return doc


def signed_bytes(doc: dict[str, Any]) -> bytes:
    """What the catalog signature covers: the whole document but the signature itself."""
    return canonical_json({k: v for k, v in doc.items() if k != "signature"})


def needs_signing(doc: dict[str, Any] | None, signer: Signer | None, now: datetime | None = None) -> bool:
    """True when a publisher holding `signer` should re-sign `doc`: unsigned, another key, or a day old."""
    if signer is None:
        return False
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("signature"), dict)
        or doc["signature"].get("key_id") != signer.key_id
    ):
        return True
    try:
        signed_at = datetime.fromisoformat(doc["updated_at"])
    except (KeyError, TypeError, ValueError):
        return True
    return (now or datetime.now(UTC)) - signed_at >= RESIGN_AFTER


@dataclass(frozen=True)
class VerifiedCatalog:
    """A catalog that passed `verify_catalog`: the document, when it was signed and until when it holds."""

    doc: dict[str, Any]
    updated_at: datetime
    expires: datetime
    sha256: str
    key_id: str


def catalog_schema(doc: Any, where: str) -> dict[str, Any]:
    """The catalog's own fields checked strictly (entries are checked one by one by `check_entry`, so one bad
    entry fails its partition only): format, times, signature record, partitions keyed by SUBJECT/GRADE."""
    fields = Fields(doc, where, "")
    fmt = fields.value.get("catalog_format")
    if fmt != CATALOG_FORMAT or isinstance(fmt, bool) or "signature" not in fields.value:
        raise CatalogError(
            f"{where}: unsigned catalog (format {str(fmt)[:20]!r}, "
            f"{'a' if 'signature' in fields.value else 'no'} signature; schools need format {CATALOG_FORMAT}, "
            "signed): refused; the publisher signs it with `nexus vkp catalog`"
        )
    fields.get("catalog_format", one_of(CATALOG_FORMAT))
    fields.get("updated_at", timestamp)
    fields.get("expires", timestamp)
    fields.get("signature", signature_record)
    partitions = fields.get("partitions", lambda v, w, f: Fields(v, w, f).value)
    if len(partitions) > MAX_PARTITIONS:
        raise UntrustedError(where, "partitions", f"more than {MAX_PARTITIONS} partitions")
    # Each key's form is checked with its entry (`check_entry`): one malformed key fails that partition only.
    return fields.done()


def _time(value: str, where: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UntrustedError(where, field, f"{value!r} is not a valid time ({exc})") from None
    if parsed.tzinfo is None:
        raise UntrustedError(where, field, f"{value!r} has no time zone")
    return parsed


def verify_catalog(
    raw: bytes,
    public_key: TrustedKeys,
    where: str,
    now: datetime | None = None,
    *,
    max_validity_days: float = DEFAULT_MAX_VALIDITY_DAYS,
) -> dict[str, Any]:
    """The catalog document a school may act on (see `verify_catalog_bytes`)."""
    return verify_catalog_bytes(raw, public_key, where, now, max_validity_days=max_validity_days).doc


def verify_catalog_bytes(
    raw: bytes,
    public_key: TrustedKeys,
    where: str,
    now: datetime | None = None,
    *,
    max_validity_days: float = DEFAULT_MAX_VALIDITY_DAYS,
) -> VerifiedCatalog:
    """The catalog a school may act on, from its downloaded bytes: bounded JSON, the strict schema of its own
    fields, signed by a trusted key, valid no longer than `max_validity_days`, not expired. Canonical JSON
    is built for the signature check only after the schema held (so its size is bounded by the bytes').
    Raises CatalogError naming `where` and the field (never a traceback on bad input)."""
    try:
        doc = catalog_schema(load_json(raw, where, max_bytes=MAX_CATALOG_BYTES, max_values=MAX_CATALOG_VALUES), where)
    except UntrustedError as exc:
        raise CatalogError(f"{exc}: refused") from None
    problem = verify_signature(public_key, signed_bytes(doc), doc["signature"], "the catalog")
    if problem:
        raise CatalogError(f"{where}: {problem}: refused (key id {key_ids(public_key)} trusted)")
    try:
        updated_at = _time(doc["updated_at"], where, "updated_at")
        expires = _time(doc["expires"], where, "expires")
    except UntrustedError as exc:
        raise CatalogError(f"{exc}: refused") from None
    window = expires - updated_at
    if not timedelta(0) < window <= timedelta(days=max_validity_days):
        raise CatalogError(
            f"{where}: the catalog is valid from {doc['updated_at']} to {doc['expires']}, not within the "
            f"{max_validity_days:g} days a school accepts ({MAX_VALIDITY_ENV}): refused"
        )
    if (now or datetime.now(UTC)) >= expires:
        raise CatalogError(
            f"{where}: the catalog expired at {doc['expires']} (signed {doc.get('updated_at')}): "
            "a stale or replayed copy; refused until the publisher re-signs it"
        )
    return VerifiedCatalog(doc, updated_at, expires, sha256_bytes(bytes(raw)), doc["signature"]["key_id"])


MAX_VERSIONS = 1000  # versions listed per partition entry


def check_entry(label: str, entry: Any, max_package_bytes: int) -> Partition:
    """The partition a signed catalog entry describes, after a strict schema check (every field's type,
    length and form; unknown fields refused) and a check that it names only its own packages: `latest`
    is its newest version, each reference is that partition's file for that version, with a sha256 and a
    size within `max_package_bytes`, and each delta goes forward. Raises CatalogError naming the field."""
    where = f"catalog entry {label!r}"

    def fail(reason: str) -> CatalogError:
        return CatalogError(f"{where}: {reason}")

    try:
        text(200, r"[a-z0-9_]{1,96}/[a-z0-9_]{1,96}", "SUBJECT/GRADE")(label, "the catalog", "partitions key")
        fields = Fields(entry, where, "")
        subject = fields.get("subject", text(96))
        grade = fields.get("grade", text(96))
        latest = fields.get("latest", semver)
        versions = fields.get("versions", _versions_list)
        fields.done()
        part = Partition(subject, grade)
    except UntrustedError as exc:
        raise CatalogError(str(exc)) from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    if part.label != label:
        raise fail(f"describes {part.label}, not the partition it is listed as")
    numbers = [v["version"] for v in versions]
    if len(set(numbers)) != len(numbers):
        raise fail(f"versions must be distinct MAJOR.MINOR.PATCH texts, got {numbers[:5]}")
    if latest not in numbers:
        raise fail(f"latest {latest!r} is not among its versions {numbers[:5]}")
    if max(numbers, key=parse_semver) != latest:
        raise fail(f"latest {latest} is not its newest version ({max(numbers, key=parse_semver)})")
    for version in versions:
        number = version["version"]
        _check_ref(fail, version["full"], part.vkp_name(number), max_package_bytes)
        delta = version["delta"]
        if delta is not None:
            base = delta.get("from")
            if not is_semver(base) or parse_semver(base) >= parse_semver(number):
                raise fail(f"the delta of v{number} must come from an older version, not {str(base)[:40]!r}")
            _check_ref(fail, delta, part.vkpd_name(number, base), max_package_bytes)
    return part


def _versions_list(value: Any, where: str, field: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or len(value) > MAX_VERSIONS:
        raise UntrustedError(where, field, f"must be a list of 1..{MAX_VERSIONS} version objects")
    return [_version_record(v, where, f"{field}[{i}]") for i, v in enumerate(value)]


def _version_record(value: Any, where: str, field: str) -> dict[str, Any]:
    fields = Fields(value, where, field)
    fields.get("version", semver)
    fields.get("content_hash", text(128, r"[0-9a-f]{16,128}", "a hex content hash"))
    fields.get("created_at", text(64))
    fields.get("embedding", _embedding)
    fields.get("full", _ref)
    fields.get("delta", nullable(_ref))
    return fields.done()


def _embedding(value: Any, where: str, field: str) -> dict[str, Any]:
    fields = Fields(value, where, field)
    fields.get("model_id", text(256))
    fields.get("dims", integer(1, 65536))
    return fields.done()


def _ref(value: Any, where: str, field: str) -> dict[str, Any]:
    fields = Fields(value, where, field)
    fields.get("name", text(400))
    fields.get("size", integer(0, 2**63 - 1))
    fields.get("sha256", sha256_hex)
    fields.get("signature", nullable(signature_record))
    fields.get("from", semver, optional=True)
    return fields.done()


def _check_ref(fail: Any, ref: dict[str, Any], expected_name: str, max_bytes: int) -> None:
    if ref["name"] != expected_name:
        raise fail(f"names package file {ref['name']!r} where {expected_name!r} was expected")
    size = ref["size"]
    if not 0 < size <= max_bytes:
        raise fail(f"{expected_name}: size {size!r} is not a whole number of bytes in 1..{max_bytes}")


def binding_problems(
    manifest: dict[str, Any], part: Partition, version: dict[str, Any], ref: dict[str, Any]
) -> list[str]:
    """How a verified package's own signed manifest differs from the catalog entry that led to it (a
    genuine package of another partition, version or kind served in its place)."""
    expected = {
        "subject": part.subject,
        "grade": part.grade,
        "version": version["version"],
        "kind": "delta" if "from" in ref else "full",
        "content_hash": version["content_hash"],
    }
    if "from" in ref:
        expected["base_version"] = ref["from"]
    found = {"kind": "full", **manifest}  # format 1 manifests have no kind
    return [
        f"manifest {key} is {found.get(key)!r}, the catalog entry says {value!r}"
        for key, value in expected.items()
        if found.get(key) != value
    ]


def entries_from_packages(directory: Path, keep: int = DEFAULT_KEEP_VERSIONS) -> dict[str, dict[str, Any]]:
    """Catalog entries rebuilt from the full packages (and their deltas) in `directory`: what a deleted
    catalog listed, for every partition, not only those rebuilt since. Unreadable files are left out."""
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.vkp")) if directory.is_dir() else ():
        try:
            manifest = read_manifest(path)
            part = Partition(manifest["subject"], manifest["grade"])
            if path.name != part.vkp_name(manifest["version"]):
                continue
            full = package_ref(path, read_signature(path))
            release = release_record(manifest, full, None)
        except (OSError, ValueError, KeyError, TypeError):  # zip and JSON errors are ValueErrors too
            continue
        base = manifest.get("previous_version")
        delta_path = directory / part.vkpd_name(manifest["version"], base) if isinstance(base, str) else None
        if delta_path is not None and delta_path.is_file():
            release["delta"] = package_ref(delta_path, read_signature(delta_path), **{"from": base})
        entries[part.label], _ = with_release(entries.get(part.label), part, release, keep)
    return entries


class CatalogStore(Protocol):
    def get(self, part: Partition) -> dict[str, Any] | None: ...

    def put(self, part: Partition, entry: dict[str, Any], signer: Signer | None = None) -> bool:
        """Store the entry unless the catalog already points at a newer version (then False); the served
        document is signed with `signer`."""
        ...

    def location(self) -> str: ...

    def sync(self, signer: Signer | None = None) -> bool:
        """Make the served document match the source of truth, signed and fresh (True when rewritten)."""
        ...

    def refresh(self, signer: Signer) -> dict[str, Any]:
        """Rewrite the served document now, signed with a fresh expiry (rebuilt when it was deleted)."""
        ...


@dataclass
class LocalCatalog:
    """`<data>/vkp/catalog.json`, updated under an exclusive lock and replaced atomically."""

    path: Path
    expiry_days: float = DEFAULT_EXPIRY_DAYS

    def location(self) -> str:
        return str(self.path)

    def read(self) -> dict[str, Any]:
        """The stored document; when the file is missing, one rebuilt from the packages beside it."""
        if not self.path.is_file():
            return document(entries_from_packages(self.path.parent), days=self.expiry_days)
        try:
            doc = json.loads(self.path.read_text())
        except ValueError as exc:
            raise ValueError(
                f"{self.path}: the catalog is not valid JSON ({exc}); restore it, or delete it: it is "
                f"rebuilt from the packages in {self.path.parent} by the next publication or "
                "`nexus vkp catalog`"
            ) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("partitions"), dict):
            raise ValueError(
                f"{self.path}: not a VKP catalog (no 'partitions' object); delete it to rebuild it "
                f"from the packages in {self.path.parent}"
            )
        return doc

    def get(self, part: Partition) -> dict[str, Any] | None:
        return self.read()["partitions"].get(partition_key(part))

    def _locked(self):
        return file_lock(self.path.with_name(f".{CATALOG_NAME}.lock"), f"the catalog {self.path}")

    def sync(self, signer: Signer | None = None) -> bool:
        """Rebuild a deleted catalog from the packages and re-sign one that is unsigned or a day old."""
        with self._locked():
            missing = not self.path.is_file()
            catalog = self.read()
            if not missing and not needs_signing(catalog, signer):
                return False
            self._write(document(catalog["partitions"], signer, days=self.expiry_days))
        return True

    def refresh(self, signer: Signer) -> dict[str, Any]:
        with self._locked():
            doc = document(self.read()["partitions"], signer, days=self.expiry_days)
            self._write(doc)
        return doc

    def put(self, part: Partition, entry: dict[str, Any], signer: Signer | None = None) -> bool:
        with self._locked():
            catalog = self.read()
            current = catalog["partitions"].get(partition_key(part))
            if current and rank(current["latest"]) > rank(entry["latest"]):
                return False
            self._write(document({**catalog["partitions"], partition_key(part): entry}, signer, days=self.expiry_days))
        return True

    def _write(self, doc: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{CATALOG_NAME}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_text(json.dumps(doc, indent=2, sort_keys=True))
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)


@dataclass
class DynamoCatalog:
    """One item per partition (pk `vkp_catalog`, sk `<subject>/<grade>`) in the records table, written
    conditionally on the version's rank; `vkp/catalog.json` in the bucket is regenerated from it."""

    client: Any  # boto3 DynamoDB client
    table: str
    objects: S3ObjectStore
    expiry_days: float = DEFAULT_EXPIRY_DAYS
    converge_rounds: int = 3

    def location(self) -> str:
        return self.objects.uri(CATALOG_KEY)

    def _key(self, part: Partition) -> dict[str, Any]:
        return {"pk": {"S": DYNAMO_PK}, "sk": {"S": partition_key(part)}}

    def get(self, part: Partition) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table, Key=self._key(part), ConsistentRead=True).get("Item")
        return json.loads(item["entry"]["S"]) if item else None

    def put(self, part: Partition, entry: dict[str, Any], signer: Signer | None = None) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **self._key(part),
                    "entry": {"S": json.dumps(entry, sort_keys=True)},
                    "latest": {"S": entry["latest"]},
                    "rank": {"N": str(rank(entry["latest"]))},
                    "updated_at": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
                },
                ConditionExpression="attribute_not_exists(pk) OR #rank <= :rank",
                ExpressionAttributeNames={"#rank": "rank"},
                ExpressionAttributeValues={":rank": {"N": str(rank(entry["latest"]))}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        self.publish_document(signer)
        return True

    def entries(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": DYNAMO_PK}},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                found[item["sk"]["S"]] = json.loads(item["entry"]["S"])
        return found

    def sync(self, signer: Signer | None = None) -> bool:
        """Rewrite catalog.json when it lags the table (a write of it that failed after the pointer moved, an
        S3 outage between the two, is repaired by the next build, even one with nothing new), or when it is
        unsigned or was signed a day ago or more (so a weekly build keeps it from expiring)."""
        try:
            served = json.loads(self.objects.get_bytes(CATALOG_KEY))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            served = None
        except ValueError:  # unreadable JSON: regenerate it
            served = None
        partitions = served.get("partitions") if isinstance(served, dict) else None
        if partitions == self.entries() and not needs_signing(served, signer):
            return False
        self.publish_document(signer)
        return True

    def refresh(self, signer: Signer) -> dict[str, Any]:
        return self.publish_document(signer)

    def publish_document(self, signer: Signer | None = None) -> dict[str, Any]:
        """Write catalog.json from the table; re-read after writing and rewrite if another writer moved a
        pointer meanwhile, so the file ends up matching the table whichever writer finishes last."""
        entries = self.entries()
        for _ in range(self.converge_rounds):
            doc = document(entries, signer, days=self.expiry_days)
            self.objects.put_bytes(
                CATALOG_KEY,
                json.dumps(doc, indent=2, sort_keys=True).encode(),
                storage_class="STANDARD",
                content_type="application/json",
            )
            again = self.entries()
            if again == entries:
                break
            entries = again
        return doc
