"""Which version a new build of a partition gets: the release rules, in one place.

- **major** when what a school's reader or index depends on changes: the package format, the
  embedding model id or its dims (old and new vectors cannot be mixed, so no delta is offered);
- **minor** when source files were added or removed;
- **patch** when only chunk content changed;
- nothing when the content hash and format are unchanged.

A version is never reused for different content: the next version counts up from the highest one
ever issued for the partition (the newest package in storage or the catalog's pointer, whichever is
higher), so deleting packages (retention, or by hand) cannot bring an old number back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from nexus_assets.lib.core.layout import parse_semver

FIRST_VERSION = "1.0.0"
Bump = Literal["major", "minor", "patch"]


@dataclass(frozen=True)
class ReleaseIdentity:
    """What the rules compare between two builds of a partition."""

    format_version: int
    model_id: str
    dims: int
    source_files: frozenset[str]
    content_hash: str

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> ReleaseIdentity:
        embedding = manifest.get("embedding", {})
        return cls(
            int(manifest.get("format_version", 1)),
            str(embedding.get("model_id")),
            int(embedding.get("dims", 0)),
            source_set(manifest.get("sources", [])),
            str(manifest.get("content_hash")),
        )


def source_set(sources: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    return frozenset(str(s["file"]) for s in sources)


@dataclass(frozen=True)
class VersionDecision:
    version: str | None  # None: nothing to release
    bump: Bump | None
    reason: str

    @property
    def delta_compatible(self) -> bool:
        """A delta from the previous version is meaningful only within one major version."""
        return self.bump in ("minor", "patch")


def bump(version: str, level: Bump) -> str:
    major, minor, patch = parse_semver(version)
    if level == "major":
        return f"{major + 1}.0.0"
    if level == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def highest(*versions: str | None) -> str | None:
    found = [v for v in versions if v]
    return max(found, key=parse_semver) if found else None


def decide_version(
    previous: ReleaseIdentity | None, current: ReleaseIdentity, issued: Iterable[str | None] = ()
) -> VersionDecision:
    """Apply the rules to the previous release's identity; `issued` are versions already given out."""
    top = highest(*issued)
    if previous is None:
        if top is None:
            return VersionDecision(FIRST_VERSION, None, "first release")
        return VersionDecision(bump(top, "major"), "major", f"no readable previous release; v{top} was issued")
    if previous.content_hash == current.content_hash and previous.format_version == current.format_version:
        return VersionDecision(None, None, "content unchanged")
    if previous.format_version != current.format_version:
        level: Bump = "major"
        why = f"package format {previous.format_version} -> {current.format_version}"
    elif (previous.model_id, previous.dims) != (current.model_id, current.dims):
        level = "major"
        why = f"embedding {previous.model_id}/{previous.dims} -> {current.model_id}/{current.dims}"
    elif previous.source_files != current.source_files:
        level = "minor"
        added = len(current.source_files - previous.source_files)
        removed = len(previous.source_files - current.source_files)
        why = f"source files changed (+{added} -{removed})"
    else:
        level = "patch"
        why = "chunk content changed"
    if top is None:
        return VersionDecision(FIRST_VERSION, level, why)
    return VersionDecision(bump(top, level), level, why)
