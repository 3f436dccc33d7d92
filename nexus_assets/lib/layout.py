"""Storage layout: where every input and output of a partition lives.

One layout serves the local data directory and (later) S3 keys, so the paths are built as
POSIX-relative keys first (`raw-curriculum/<subject>/<grade>/x.pdf`) and joined to a root second.
Subjects and grades are lowercase slugs; anything else is refused here, once, with a message that
names the offending folder, so no other module has to re-validate.

Folder names are never normalized: `Informatika/` or `ilmu-komputer/` beside `informatika/` or
`ilmu_komputer/` is not merged into it (two uploaders' folders silently becoming one partition would
publish a package nobody asked for). It is skipped, and the message names the slug it collides with.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

RAW_PREFIX = "raw-curriculum"
PROCESSED_PREFIX = "processed"
VKP_PREFIX = "vkp"

# The key of a stored record (Chroma build) naming a local directory, which remote IO managers mirror.
ARTIFACT = "artifact"

SLUG_RE = re.compile(r"^[a-z0-9_]+$")
SEMVER_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class LayoutError(ValueError):
    """A path or name that does not fit `raw-curriculum/<subject>/<grade>/*.pdf`.

    `folder`, `what` and `where` name the subject or grade folder at fault (and the path or key it was
    seen in), when it is one.
    """

    def __init__(self, message: str, folder: str | None = None, what: str | None = None,
                 where: str | None = None) -> None:
        super().__init__(message)
        self.folder, self.what, self.where = folder, what, where


def normalized_slug(name: str) -> str:
    """The slug a folder name would become if it were normalized (accents dropped, lowercase, `_` for the rest).

    Used only to tell the uploader which slug a refused folder means or collides with: names are never
    normalized for real.
    """
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")


def validate_slug(value: str, what: str, where: str | None = None) -> str:
    """Return `value` if it is a lowercase slug, else raise naming the bad folder and why."""
    if not SLUG_RE.match(value):
        place = f" ({where})" if where else ""
        suggestion = normalized_slug(value)
        rename = f" (e.g. to {suggestion!r})" if suggestion else ""
        raise LayoutError(
            f"invalid {what} folder {value!r}{place}: {what} names must be lowercase slugs "
            f"matching [a-z0-9_]+ (e.g. 'informatika', 'kelas_10'); rename the folder{rename}",
            folder=value, what=what, where=where,
        )
    return value


def refusal(exc: LayoutError, valid: Collection[str]) -> str:
    """The message of a refused folder: a collision when its normalized slug is a valid folder (`valid`)."""
    folder = exc.folder
    slug = normalized_slug(folder) if folder else ""
    if not folder or not slug or slug == folder or slug not in valid:
        return str(exc)
    place = f" ({exc.where})" if exc.where else ""
    return (f"{exc.what} folder {folder!r}{place} collides with {slug!r} after normalization: skipped, not merged "
            f"(folder names are never normalized), so its PDFs are not built; move them into {slug}/")


@dataclass(frozen=True, order=True)
class Partition:
    """A subject × grade pair, the unit every asset is partitioned by."""

    subject: str
    grade: str

    def __post_init__(self) -> None:
        validate_slug(self.subject, "subject")
        validate_slug(self.grade, "grade")

    @property
    def label(self) -> str:
        return f"{self.subject}/{self.grade}"

    # Keys relative to the data root (also S3 keys).
    def raw_prefix(self) -> str:
        return f"{RAW_PREFIX}/{self.subject}/{self.grade}"

    def processed_prefix(self) -> str:
        return f"{PROCESSED_PREFIX}/{self.subject}/{self.grade}"

    def vkp_name(self, version: str) -> str:
        if not SEMVER_RE.match(version):
            raise LayoutError(f"invalid VKP version {version!r}: expected MAJOR.MINOR.PATCH")
        return f"{self.subject}_{self.grade}_v{version}.vkp"

    def vkp_key(self, version: str) -> str:
        return f"{VKP_PREFIX}/{self.vkp_name(version)}"

    def vkpd_name(self, version: str, base: str) -> str:
        """Delta package turning version `base` into `version`."""
        return self.vkp_name(version).removesuffix(".vkp") + f"_from_v{self.vkp_name(base).split('_v')[-1]}d"

    def package_version(self, name: str) -> str | None:
        """The version a package file of this partition delivers (full or delta), None if not one of ours."""
        prefix = f"{self.subject}_{self.grade}_v"
        if not name.startswith(prefix):
            return None
        rest = name[len(prefix):]
        version = rest.removesuffix(".vkp") if rest.endswith(".vkp") else rest.split("_from_v")[0]
        if not (name.endswith(".vkp") or (name.endswith(".vkpd") and "_from_v" in rest)):
            return None
        return version if SEMVER_RE.match(version) else None

    @property
    def collection_name(self) -> str:
        """Chroma collection name: 3+ characters, unique per partition."""
        return f"{self.subject}__{self.grade}"


def parse_semver(version: str) -> tuple[int, int, int]:
    match = SEMVER_RE.match(version)
    if not match:
        raise LayoutError(f"invalid version {version!r}: expected MAJOR.MINOR.PATCH")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


@dataclass(frozen=True)
class DataLayout:
    """The local data directory (`NEXUS_DATA_DIR`, default `./data`)."""

    root: Path

    @classmethod
    def from_env(cls, data_dir: str | os.PathLike[str] | None = None) -> DataLayout:
        chosen = data_dir or os.environ.get("NEXUS_DATA_DIR") or "data"
        return cls(Path(chosen).expanduser().resolve())

    @property
    def raw_root(self) -> Path:
        return self.root / RAW_PREFIX

    @property
    def vkp_dir(self) -> Path:
        return self.root / VKP_PREFIX

    @property
    def cache_dir(self) -> Path:
        """Content-addressed build caches (extractions, vectors): beside the processed data, prunable."""
        return self.root / PROCESSED_PREFIX / "_cache"

    @property
    def jobs_db(self) -> Path:
        """The local job history (aws mode keeps it in DynamoDB instead)."""
        return self.root / PROCESSED_PREFIX / "_jobs.sqlite"

    def raw_dir(self, part: Partition) -> Path:
        return self.root / part.raw_prefix()

    def processed_dir(self, part: Partition) -> Path:
        return self.root / part.processed_prefix()

    def vkp_path(self, part: Partition, version: str) -> Path:
        return self.root / part.vkp_key(version)

    def published_versions(self, part: Partition) -> list[str]:
        """Versions of this partition's VKPs present in `vkp/`, oldest first."""
        if not self.vkp_dir.is_dir():
            return []
        prefix = f"{part.subject}_{part.grade}_v"
        versions = []
        for path in self.vkp_dir.glob(f"{prefix}*.vkp"):
            version = path.name[len(prefix) : -len(".vkp")]
            if SEMVER_RE.match(version):
                versions.append(version)
        return sorted(versions, key=parse_semver)

    def discover_partitions(self) -> tuple[list[Partition], list[str]]:
        """Partitions that have a folder under `raw-curriculum/`, and the folders refused (with reasons).

        A refused folder whose normalized name is a valid sibling (`Informatika/` beside `informatika/`)
        says so: it is skipped, never merged.
        """
        found: list[Partition] = []
        refused: list[str] = []
        if not self.raw_root.is_dir():
            return found, refused
        subjects = sorted(p for p in self.raw_root.iterdir() if p.is_dir())
        valid_subjects = {p.name for p in subjects if SLUG_RE.match(p.name)}
        for subject_dir in subjects:
            try:
                validate_slug(subject_dir.name, "subject", str(subject_dir))
            except LayoutError as exc:
                refused.append(refusal(exc, valid_subjects))
                continue
            grades = sorted(p for p in subject_dir.iterdir() if p.is_dir())
            valid_grades = {p.name for p in grades if SLUG_RE.match(p.name)}
            for grade_dir in grades:
                try:
                    validate_slug(grade_dir.name, "grade", str(grade_dir))
                except LayoutError as exc:
                    refused.append(refusal(exc, valid_grades))
                    continue
                found.append(Partition(subject_dir.name, grade_dir.name))
        return without_ambiguous_packages(found, refused)


def without_ambiguous_packages(found: list[Partition], refused: list[str]) -> tuple[list[Partition], list[str]]:
    """Drop partitions whose packages would share names: `vkp/<subject>_<grade>_v*.vkp` cannot tell
    `informatika/kelas_10` from `informatika_kelas/10`, so neither is built until one folder is renamed."""
    by_stem: dict[str, list[Partition]] = {}
    for part in found:
        by_stem.setdefault(f"{part.subject}_{part.grade}", []).append(part)
    kept = [p for p in found if len(by_stem[f"{p.subject}_{p.grade}"]) == 1]
    for stem, parts in sorted(by_stem.items()):
        if len(parts) > 1:
            labels = " and ".join(p.label for p in sorted(parts))
            refused.append(f"partitions {labels} would publish the same package names ({stem}_v*.vkp): both are "
                           "skipped until one of the folders is renamed")
    return kept, refused
