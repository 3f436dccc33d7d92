"""sha256 digests, in one place: of bytes, text, files (streamed), JSON values and framed records.

Every digest the project writes down goes through here: cache keys, chunk ids, content hashes of
published packages, fingerprints of uploads and builds, object checksums. They are stored (in caches,
catalogs, manifests, S3 metadata, DynamoDB items), so each helper reproduces the exact bytes its
callers hashed before it existed; `nexus_assets_tests/test_hashing.py` pins known inputs to their
digests. Change a helper's output and every cache misses and every published content hash changes.

- `sha256_bytes` / `sha256_text` (UTF-8) / `sha256_file` (streamed in 1 MiB blocks), each with an
  optional `length` for a short hex prefix (ids, namespaces, key fingerprints).
- `sha256_json`: of `json.dumps(value, sort_keys=True)`, the canonical form of build inputs and records.
- `RecordDigest`: a header, then records whose fields are joined by US (0x1f), each led by RS (0x1e):
  the framing of content hashes and fingerprints, so no two different inputs concatenate alike.
- `new()` / `update_from_file()`: an incremental sha256 for the digests that combine their own parts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIELD_SEP = "\x1f"  # ASCII unit separator: between the fields of a record
RECORD_SEP = "\x1e"  # ASCII record separator: before each record
BLOCK_SIZE = 1 << 20


def new(data: bytes = b"") -> Any:
    """An incremental sha256 (hashlib's object: `update`, `hexdigest`)."""
    return hashlib.sha256(data)


def _hex(digest: Any, length: int | None) -> str:
    text: str = digest.hexdigest()
    return text if length is None else text[:length]


def sha256_bytes(data: bytes, length: int | None = None) -> str:
    """Hex sha256 of `data`; its first `length` characters when given."""
    return _hex(hashlib.sha256(data), length)


def sha256_text(text: str, length: int | None = None) -> str:
    """Hex sha256 of `text` encoded as UTF-8; its first `length` characters when given."""
    return _hex(hashlib.sha256(text.encode("utf-8")), length)


def update_from_file(digest: Any, path: Path, block_size: int = BLOCK_SIZE) -> Any:
    """Feed a file's bytes into `digest` block by block (never the whole file in memory); returns it."""
    with Path(path).open("rb") as handle:
        while block := handle.read(block_size):
            digest.update(block)
    return digest


def sha256_file(path: Path, length: int | None = None) -> str:
    """Hex sha256 of a file's content, streamed."""
    return _hex(update_from_file(hashlib.sha256(), path), length)


def sha256_json(value: Any, length: int | None = None, default: Callable[[Any], Any] | None = None) -> str:
    """Hex sha256 of `json.dumps(value, sort_keys=True, default=default)` (Python's default separators)."""
    return sha256_bytes(json.dumps(value, sort_keys=True, default=default).encode("utf-8"), length)


class RecordDigest:
    """sha256 of a header and records: `h1 US h2`, then per record `RS f1 US f2 ...`, fields as `str()`.

    `update(bytes)` appends raw bytes (vectors) between or after records.
    """

    def __init__(self, *header: object) -> None:
        self._digest = hashlib.sha256(FIELD_SEP.join(map(str, header)).encode("utf-8"))

    def record(self, *fields: object) -> RecordDigest:
        self._digest.update((RECORD_SEP + FIELD_SEP.join(map(str, fields))).encode("utf-8"))
        return self

    def update(self, data: bytes) -> RecordDigest:
        self._digest.update(data)
        return self

    def hexdigest(self, length: int | None = None) -> str:
        return _hex(self._digest, length)
