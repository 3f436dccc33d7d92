"""Objects in S3 under the same keys as the local layout, encrypted, checksummed and streamed.

Every put carries server-side encryption (AES256, or aws:kms with a key id) and a storage class,
and records the sha256 of the body in the object's metadata; every read verifies it. Files go up in
multipart uploads and come down streamed to disk, so a large artifact never sits in memory.
Works with any S3-compatible endpoint (moto, LocalStack, MinIO) through `endpoint_url`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from nexus_assets.lib.core import hashing

SHA256_META = "sha256"
MIB = 1024 * 1024
# Memory stays bounded by concurrency × part size (plus a small write queue), whatever the object size.
UPLOAD_CONFIG = TransferConfig(multipart_threshold=16 * MIB, multipart_chunksize=16 * MIB, max_concurrency=4)
DOWNLOAD_CONFIG = TransferConfig(
    multipart_threshold=16 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4, max_io_queue=16
)


SINGLE_PUT_LIMIT = 5 * 1024 * MIB  # S3's largest single PUT


class ChecksumMismatchError(IOError):
    """What was read back is not what was written."""


class AlreadyExistsError(FileExistsError):
    """A create-if-absent put found the key taken."""


@dataclass
class S3ObjectStore:
    """One bucket, with the encryption and storage class every put must carry."""

    client: Any  # a boto3 S3 client
    bucket: str
    sse: str = "AES256"  # or "aws:kms"
    kms_key_id: str | None = None
    storage_class: str = "STANDARD"

    def _extra(self, sha256: str, storage_class: str | None, metadata: dict[str, str] | None) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "ServerSideEncryption": self.sse,
            "StorageClass": storage_class or self.storage_class,
            "Metadata": {**(metadata or {}), SHA256_META: sha256},
        }
        if self.sse == "aws:kms" and self.kms_key_id:
            extra["SSEKMSKeyId"] = self.kms_key_id
        return extra

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        storage_class: str | None = None,
        metadata: dict[str, str] | None = None,
        content_type: str = "application/octet-stream",
    ) -> str:
        """Put a small object; returns its sha256."""
        sha256 = hashing.sha256_bytes(data)
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            **self._extra(sha256, storage_class, metadata),
        )
        return sha256

    def upload_file(
        self, key: str, path: Path, *, storage_class: str | None = None, metadata: dict[str, str] | None = None
    ) -> str:
        """Upload a file (multipart above 16 MiB); returns its sha256."""
        sha256 = hashing.sha256_file(path)
        self.client.upload_file(
            str(path), self.bucket, key, ExtraArgs=self._extra(sha256, storage_class, metadata), Config=UPLOAD_CONFIG
        )
        return sha256

    def create_file(
        self, key: str, path: Path, *, storage_class: str | None = None, metadata: dict[str, str] | None = None
    ) -> str:
        """Upload a file only if `key` does not exist yet (If-None-Match: *, one atomic PUT streamed from
        disk); raises AlreadyExistsError when it does. Returns the sha256."""
        sha256 = hashing.sha256_file(path)
        if path.stat().st_size > SINGLE_PUT_LIMIT:  # beyond one PUT: check, then multipart (not atomic)
            if self.exists(key):
                raise AlreadyExistsError(f"{self.uri(key)} already exists")
            return self.upload_file(key, path, storage_class=storage_class, metadata=metadata)
        try:
            with path.open("rb") as body:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    IfNoneMatch="*",
                    **self._extra(sha256, storage_class, metadata),
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise AlreadyExistsError(f"{self.uri(key)} already exists") from None
            raise
        return sha256

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def get_bytes(self, key: str) -> bytes:
        """Read a small object and verify it against the checksum written with it."""
        response = self.client.get_object(Bucket=self.bucket, Key=key)
        data = response["Body"].read()
        expected = response.get("Metadata", {}).get(SHA256_META)
        if expected and hashing.sha256_bytes(data) != expected:
            raise ChecksumMismatchError(f"{self.uri(key)}: content does not match its recorded sha256 {expected}")
        return data

    def download_file(self, key: str, dest: Path) -> str:
        """Stream an object to `dest` (atomically) and verify its checksum; returns the sha256."""
        head = self.head(key)
        if head is None:
            raise FileNotFoundError(f"{self.uri(key)} does not exist")
        expected = head.get("Metadata", {}).get(SHA256_META)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            self.client.download_file(self.bucket, key, str(tmp), Config=DOWNLOAD_CONFIG)
            actual = hashing.sha256_file(tmp)
            if expected and actual != expected:
                raise ChecksumMismatchError(f"{self.uri(key)}: downloaded sha256 {actual} != recorded {expected}")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return actual

    def list_keys(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every object under `prefix` (Key, Size, ETag, LastModified), paginated."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)
