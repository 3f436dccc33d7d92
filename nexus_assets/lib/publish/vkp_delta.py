"""Delta packages: what changed between two versions of a partition, for schools on slow links.

`<subject>_<grade>_v1.2.0_from_v1.1.0.vkpd` is a zip like a full package (signed manifest listing
member checksums, see `lib/publish/vkp.py`) holding only the chunks and vectors that are new or changed
(`upsert_chunks.parquet`, `upsert_embeddings.parquet`) and the ids that left (`removed_ids.json`).
Its manifest names the base version and the base's content hash (a delta applied to the wrong base is
refused) and a digest of the target tables, so the result of applying it is checked to be exactly
the full build's chunks and vectors before anything is installed. The Chroma collection is then
rebuilt from those tables with the same metadata the build uses (`tables.collection_metadatas`).

Deltas exist only within one major version (same model, dims and format): across a major bump the
vectors are not comparable and a school downloads the full package.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.layout import Partition
from nexus_assets.lib.core.parquet_io import read_frame
from nexus_assets.lib.core.tables import CHUNK_COLUMNS, EMBEDDING_COLUMNS, frame_to_parquet_bytes, package_order
from nexus_assets.lib.publish.signing import Signer, TrustedKeys
from nexus_assets.lib.publish.vkp import (
    CHUNKS_MEMBER,
    EMBEDDINGS_MEMBER,
    FORMAT_VERSION,
    MANIFEST,
    ExtractLimits,
    VerifyReport,
    VkpError,
    open_verified_archive,
    read_member,
    write_signed_archive,
)

KIND_DELTA = "delta"
UPSERT_CHUNKS = "upsert_chunks.parquet"
UPSERT_EMBEDDINGS = "upsert_embeddings.parquet"
REMOVED = "removed_ids.json"
DELTA_FIELDS = (
    "format_version",
    "kind",
    "subject",
    "grade",
    "version",
    "base_version",
    "base_content_hash",
    "content_hash",
    "tables_digest",
    "embedding",
    "counts",
    "created_at",
    "members",
)


class DeltaError(VkpError):
    """A delta that does not fit its base, or whose result is not the version it claims."""


def row_digests(chunks: pd.DataFrame, embeddings: pd.DataFrame) -> dict[str, str]:
    """Per chunk id, a digest of every chunk column and the vector's bytes: what 'changed' means."""
    vectors = dict(zip(embeddings["chunk_id"], embeddings["embedding"], strict=True))
    out = {}
    for row in chunks[CHUNK_COLUMNS].itertuples(index=False):
        values = [v if isinstance(v, str) else int(v) for v in row]
        vector = np.ascontiguousarray(np.asarray(vectors[row.chunk_id], dtype="<f4")).tobytes()
        out[row.chunk_id] = hashing.sha256_bytes(json.dumps(values, ensure_ascii=False).encode() + b"\x1f" + vector)
    return out


def tables_digest(chunks: pd.DataFrame, embeddings: pd.DataFrame) -> str:
    """Order-independent digest of a version's chunks and vectors."""
    digest = hashing.RecordDigest("vkp-tables-v1")
    for cid, row in sorted(row_digests(chunks, embeddings).items()):
        digest.record(cid, row)
    return digest.hexdigest()


def read_tables(source: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(chunks, embeddings) of a full package file, or of an installed release directory."""
    if Path(source).is_dir():
        return read_frame(source / CHUNKS_MEMBER), read_frame(source / EMBEDDINGS_MEMBER)
    with zipfile.ZipFile(source) as archive:
        return read_frame(archive.read(CHUNKS_MEMBER)), read_frame(archive.read(EMBEDDINGS_MEMBER))


def write_delta(
    path: Path,
    partition: Partition,
    target_manifest: dict[str, Any],
    base_manifest: dict[str, Any],
    base: tuple[pd.DataFrame, pd.DataFrame],
    target: tuple[pd.DataFrame, pd.DataFrame],
    signer: Signer | None,
) -> dict[str, Any]:
    """Write the signed delta turning the base version's tables into the target's."""
    if target_manifest["embedding"] != base_manifest.get("embedding"):
        raise DeltaError(
            f"{path}: base v{base_manifest.get('version')} was embedded with "
            f"{base_manifest.get('embedding')}, not {target_manifest['embedding']}: no delta across "
            "models"
        )
    before, after = row_digests(*base), row_digests(*target)
    upsert = [cid for cid, digest in after.items() if before.get(cid) != digest]
    removed = sorted(set(before) - set(after))
    chunks, embeddings = target
    chunk_rows = package_order(chunks[chunks["chunk_id"].isin(set(upsert))])
    vector_rows = embeddings.set_index("chunk_id").loc[chunk_rows["chunk_id"]].reset_index()[EMBEDDING_COLUMNS]
    members = {
        UPSERT_CHUNKS: frame_to_parquet_bytes(chunk_rows),
        UPSERT_EMBEDDINGS: frame_to_parquet_bytes(vector_rows),
        REMOVED: json.dumps(removed).encode(),
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": KIND_DELTA,
        "subject": partition.subject,
        "grade": partition.grade,
        "version": target_manifest["version"],
        "base_version": base_manifest["version"],
        "base_content_hash": base_manifest["content_hash"],
        "content_hash": target_manifest["content_hash"],
        "tables_digest": tables_digest(chunks, embeddings),
        "embedding": target_manifest["embedding"],
        "counts": {"chunks": len(chunks), "upserted": len(upsert), "removed": len(removed)},
        "sources": target_manifest.get("sources", []),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return write_signed_archive(path, manifest, members, signer)


def verify_delta(
    path: Path,
    public_key: TrustedKeys | None = None,
    *,
    allow_unsigned: bool = False,
    limits: ExtractLimits | None = None,
) -> VerifyReport:
    """Signature, member checksums and name of a delta (its result is checked when it is applied)."""
    report = VerifyReport(Path(path))
    with open_verified_archive(report, public_key, allow_unsigned, KIND_DELTA, DELTA_FIELDS, limits) as archive:
        if archive is None:
            return report
        manifest = report.manifest or {}
        try:
            expected = Partition(manifest["subject"], manifest["grade"]).vkpd_name(
                manifest["version"], manifest["base_version"]
            )
            if Path(path).name != expected:
                report.problems.append(f"file name {Path(path).name!r} does not match its manifest ({expected!r})")
        except ValueError as exc:
            report.problems.append(f"manifest identity is invalid: {exc}")
    return report


def apply_delta(
    base: tuple[pd.DataFrame, pd.DataFrame], base_manifest: dict[str, Any], delta_path: Path
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The target version's (chunks, embeddings, delta manifest); refuses a wrong base or a wrong result.

    Verify the delta (`verify_delta`) before applying it: this reads its members as they are.
    """
    limits = ExtractLimits()
    with zipfile.ZipFile(delta_path) as archive:
        manifest = json.loads(read_member(archive, MANIFEST, limits.max_manifest_bytes))
        upsert_chunks = read_frame(read_member(archive, UPSERT_CHUNKS, limits.max_table_bytes))
        upsert_vectors = read_frame(read_member(archive, UPSERT_EMBEDDINGS, limits.max_table_bytes))
        removed = set(json.loads(read_member(archive, REMOVED, limits.max_table_bytes)))
    if (base_manifest.get("version"), base_manifest.get("content_hash")) != (
        manifest["base_version"],
        manifest["base_content_hash"],
    ):
        raise DeltaError(
            f"{delta_path}: applies to v{manifest['base_version']}, but the installed version is "
            f"v{base_manifest.get('version')} (or its content differs)"
        )
    base_chunks, base_vectors = base
    replaced = removed | set(upsert_chunks["chunk_id"])
    chunks = package_order(
        pd.concat([base_chunks[~base_chunks["chunk_id"].isin(replaced)], upsert_chunks], ignore_index=True)[
            CHUNK_COLUMNS
        ]
    )
    vectors = pd.concat([base_vectors[~base_vectors["chunk_id"].isin(replaced)], upsert_vectors], ignore_index=True)
    vectors = vectors.set_index("chunk_id").loc[chunks["chunk_id"]].reset_index()[EMBEDDING_COLUMNS]
    chunks = chunks.astype(base_chunks.dtypes.to_dict())
    if tables_digest(chunks, vectors) != manifest["tables_digest"]:
        raise DeltaError(
            f"{delta_path}: applying it to v{manifest['base_version']} does not give the tables of "
            f"v{manifest['version']} (digest mismatch): install the full package instead"
        )
    return chunks, vectors, manifest
