"""The catalog school servers pull from: per partition, the latest version and the packages to get it.

`vkp/catalog.json` (in the data directory locally, in the bucket in aws mode, for a CDN to serve):

    {"catalog_format": 1, "updated_at": ..., "partitions": {"<subject>/<grade>": {
        "subject", "grade", "latest": "1.2.0",
        "versions": [   # newest first, the retained ones only
            {"version", "content_hash", "embedding": {"model_id", "dims"}, "created_at",
             "full":  {"name", "size", "sha256", "signature"},
             "delta": {"name", "from", "size", "sha256", "signature"} | null}, ...]}}}

Package names are relative to the catalog's own location, so one catalog works from a path, an
s3:// URI or a CDN URL. The pointer never moves backwards: locally the update happens under a file
lock and compares versions; in aws mode the DynamoDB item per partition is the source of truth,
written with a condition on the version's rank, and `catalog.json` is regenerated from the table.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from nexus_assets.lib.layout import VKP_PREFIX, Partition, parse_semver
from nexus_assets.lib.partition_lock import file_lock
from nexus_assets.lib.s3_store import S3ObjectStore, sha256_of_file

CATALOG_NAME = "catalog.json"
CATALOG_KEY = f"{VKP_PREFIX}/{CATALOG_NAME}"
CATALOG_FORMAT = 1
DYNAMO_PK = "vkp_catalog"
DEFAULT_KEEP_VERSIONS = 5


def rank(version: str) -> int:
    """A version as one comparable number (for DynamoDB's condition expressions)."""
    major, minor, patch = parse_semver(version)
    return major * 10**12 + minor * 10**6 + patch


def partition_key(part: Partition) -> str:
    return part.label


def package_ref(path: Path, signature: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """What a school needs to fetch and check one package file before opening it."""
    return {"name": path.name, "size": path.stat().st_size, "sha256": sha256_of_file(path),
            "signature": signature, **extra}


def with_release(entry: dict[str, Any] | None, part: Partition, release: dict[str, Any],
                 keep: int = DEFAULT_KEEP_VERSIONS) -> tuple[dict[str, Any], list[str]]:
    """The partition's entry with `release` as latest, trimmed to the `keep` newest versions; and the
    versions that fell out (their packages are to be deleted once the entry is stored)."""
    if keep < 1:
        raise ValueError(f"keep_versions must be at least 1, got {keep}")
    versions = [v for v in (entry or {}).get("versions", []) if v["version"] != release["version"]]
    versions = sorted([release, *versions], key=lambda v: parse_semver(v["version"]), reverse=True)
    kept, dropped = versions[:keep], [v["version"] for v in versions[keep:]]
    new = {"subject": part.subject, "grade": part.grade, "latest": kept[0]["version"], "versions": kept}
    return new, dropped


def document(entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"catalog_format": CATALOG_FORMAT, "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "partitions": dict(sorted(entries.items()))}


class CatalogStore(Protocol):
    def get(self, part: Partition) -> dict[str, Any] | None: ...

    def put(self, part: Partition, entry: dict[str, Any]) -> bool:
        """Store the entry unless the catalog already points at a newer version (then False)."""
        ...

    def location(self) -> str: ...

    def sync(self) -> bool:
        """Make the served document match the source of truth (True when it had to be rewritten)."""
        ...


@dataclass
class LocalCatalog:
    """`<data>/vkp/catalog.json`, updated under an exclusive lock and replaced atomically."""

    path: Path

    def location(self) -> str:
        return str(self.path)

    def read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return document({})
        try:
            return json.loads(self.path.read_text())
        except ValueError as exc:
            raise ValueError(f"{self.path}: the catalog is not valid JSON ({exc}); restore it or delete it to "
                             "rebuild it on the next publication") from None

    def get(self, part: Partition) -> dict[str, Any] | None:
        return self.read()["partitions"].get(partition_key(part))

    def _locked(self):
        return file_lock(self.path.with_name(f".{CATALOG_NAME}.lock"), f"the catalog {self.path}")

    def sync(self) -> bool:
        return False  # the file is the source of truth, replaced atomically under the lock

    def put(self, part: Partition, entry: dict[str, Any]) -> bool:
        with self._locked():
            catalog = self.read()
            current = catalog["partitions"].get(partition_key(part))
            if current and rank(current["latest"]) > rank(entry["latest"]):
                return False
            entries = {**catalog["partitions"], partition_key(part): entry}
            tmp = self.path.with_name(f".{CATALOG_NAME}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                tmp.write_text(json.dumps(document(entries), indent=2, sort_keys=True))
                os.replace(tmp, self.path)
            finally:
                tmp.unlink(missing_ok=True)
        return True


@dataclass
class DynamoCatalog:
    """One item per partition (pk `vkp_catalog`, sk `<subject>/<grade>`) in the records table, written
    conditionally on the version's rank; `vkp/catalog.json` in the bucket is regenerated from it."""

    client: Any  # boto3 DynamoDB client
    table: str
    objects: S3ObjectStore
    converge_rounds: int = 3

    def location(self) -> str:
        return self.objects.uri(CATALOG_KEY)

    def _key(self, part: Partition) -> dict[str, Any]:
        return {"pk": {"S": DYNAMO_PK}, "sk": {"S": partition_key(part)}}

    def get(self, part: Partition) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table, Key=self._key(part), ConsistentRead=True).get("Item")
        return json.loads(item["entry"]["S"]) if item else None

    def put(self, part: Partition, entry: dict[str, Any]) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={**self._key(part), "entry": {"S": json.dumps(entry, sort_keys=True)},
                      "latest": {"S": entry["latest"]}, "rank": {"N": str(rank(entry["latest"]))},
                      "updated_at": {"S": datetime.now(UTC).isoformat(timespec="seconds")}},
                ConditionExpression="attribute_not_exists(pk) OR #rank <= :rank",
                ExpressionAttributeNames={"#rank": "rank"},
                ExpressionAttributeValues={":rank": {"N": str(rank(entry["latest"]))}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        self.publish_document()
        return True

    def entries(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(TableName=self.table, KeyConditionExpression="pk = :pk",
                                       ExpressionAttributeValues={":pk": {"S": DYNAMO_PK}}, ConsistentRead=True):
            for item in page.get("Items", []):
                found[item["sk"]["S"]] = json.loads(item["entry"]["S"])
        return found

    def sync(self) -> bool:
        """Rewrite catalog.json when it lags the table: a write of it that failed after the pointer moved
        (an S3 outage between the two) is repaired by the next build, even one with nothing new."""
        try:
            served = json.loads(self.objects.get_bytes(CATALOG_KEY)).get("partitions")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            served = None
        except ValueError:  # unreadable JSON: regenerate it
            served = None
        if served == self.entries():
            return False
        self.publish_document()
        return True

    def publish_document(self) -> dict[str, Any]:
        """Write catalog.json from the table; re-read after writing and rewrite if another writer moved a
        pointer meanwhile, so the file ends up matching the table whichever writer finishes last."""
        entries = self.entries()
        for _ in range(self.converge_rounds):
            self.objects.put_bytes(CATALOG_KEY, json.dumps(document(entries), indent=2, sort_keys=True).encode(),
                                   storage_class="STANDARD", content_type="application/json")
            again = self.entries()
            if again == entries:
                break
            entries = again
        return document(entries)
