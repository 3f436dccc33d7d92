"""Small structured values in DynamoDB: one item per asset key × partition key, versioned.

Writes are conditional on a `version` attribute (the writing run's creation time), so a run that
started earlier can never overwrite the result of a newer one, even when it finishes later. Values
over DynamoDB's comfortable item size are stored in S3 with a pointer in the item, transparently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from nexus_assets.lib.aws.s3_store import S3ObjectStore
from nexus_assets.lib.core import hashing

MAX_INLINE_BYTES = 350_000  # DynamoDB items are capped at 400 KB; keep room for the other attributes
OVERFLOW_PREFIX = "processed/_records"


class StaleWriteError(RuntimeError):
    """A write refused because the item already holds a newer run's result."""


@dataclass
class DynamoRecordStore:
    client: Any  # a boto3 DynamoDB client
    table: str
    overflow: S3ObjectStore | None = None

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def _current(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=self.table, Key=self._key(pk, sk), ConsistentRead=True)
        return response.get("Item")

    def put(self, pk: str, sk: str, value: Any, version: int, writer: str = "") -> bool:
        """Store `value` (JSON-able) unless the item already holds a newer version.

        Returns False when the stored value is already identical: nothing is written and the item
        keeps its version, so an unchanged rebuild leaves no new version behind.
        """
        body = json.dumps(value, sort_keys=True, default=str).encode("utf-8")
        digest = hashing.sha256_bytes(body)
        previous = self._current(pk, sk)
        if previous is not None and previous.get("sha256", {}).get("S") == digest:
            return False
        item: dict[str, Any] = {
            **self._key(pk, sk),
            "version": {"N": str(version)},
            "writer": {"S": writer},
            "sha256": {"S": digest},
            "updated_at": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
        }
        if len(body) > MAX_INLINE_BYTES:
            if self.overflow is None:
                raise ValueError(f"{pk} [{sk}]: value of {len(body)} bytes needs an S3 store for overflow")
            key = f"{OVERFLOW_PREFIX}/{pk}/{sk.replace('|', '/')}/v{version}.json"
            self.overflow.put_bytes(key, body, content_type="application/json")
            item["s3_key"] = {"S": key}
        else:
            item["value"] = {"S": body.decode("utf-8")}
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR #v <= :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":v": {"N": str(version)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            if "s3_key" in item and self.overflow is not None:
                self.overflow.delete(item["s3_key"]["S"])
            current = self._current(pk, sk) or {}
            raise StaleWriteError(
                f"refused stale write of {pk} [{sk}] by {writer or 'unknown run'} at version {version}: "
                f"the table already holds version {current.get('version', {}).get('N', '?')} written by "
                f"{current.get('writer', {}).get('S', '?')} (a newer run); rematerialize from the newer run instead"
            ) from exc
        old_key = (previous or {}).get("s3_key", {}).get("S")
        if old_key and old_key != item.get("s3_key", {}).get("S") and self.overflow is not None:
            self.overflow.delete(old_key)
        return True

    def get(self, pk: str, sk: str) -> Any:
        """The stored value, or raise KeyError naming the item."""
        item = self._current(pk, sk)
        if item is None:
            raise KeyError(f"no value for {pk} [{sk}] in DynamoDB table {self.table}")
        if "s3_key" in item:
            if self.overflow is None:
                raise ValueError(f"{pk} [{sk}] is stored in S3 but no S3 store is configured")
            return json.loads(self.overflow.get_bytes(item["s3_key"]["S"]))
        return json.loads(item["value"]["S"])

    def version(self, pk: str, sk: str) -> int | None:
        item = self._current(pk, sk)
        return int(item["version"]["N"]) if item else None
