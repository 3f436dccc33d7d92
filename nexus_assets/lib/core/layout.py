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
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from nexus_assets.lib.core.escaping import quoted, shown

RAW_PREFIX = "raw-curriculum"
PROCESSED_PREFIX = "processed"
VKP_PREFIX = "vkp"

# The key of a stored record (Chroma build) naming a local directory, which remote IO managers mirror.
ARTIFACT = "artifact"

# Lowercase words joined by single underscores: no leading, trailing or doubled `_` (Chroma names, the
# `<subject>__<grade>` collection name and the platform's own `_x` names stay unambiguous).
# Anchored with \A and \Z (`$` also matches before a final newline, so `kelas_10\n` passed), ASCII classes
# only (`\d` matches any script's digits: `١.٠.٠`). Use `is_slug`/`is_semver` (fullmatch) to test a name.
SLUG_RE = re.compile(r"\A[a-z0-9]+(?:_[a-z0-9]+)*\Z", re.ASCII)
SLUG_RULE = "[a-z0-9]+(_[a-z0-9]+)*"
# What the platform itself keeps directly under processed/ (beside the <subject>/ folders): caches, the
# job history, oversized records, the curriculum catalog table. No subject may be named like them.
PLATFORM_NAMES = ("_cache", "_jobs.sqlite", "_records", "catalog.parquet")
RESERVED_SLUGS = frozenset(name.split(".")[0] for name in PLATFORM_NAMES)
SEMVER_RE = re.compile(r"\A([0-9]+)\.([0-9]+)\.([0-9]+)\Z", re.ASCII)
# Longest subject or grade slug. Every name derived from a partition must stay within its system's limit:
# the delta package `<subject>_<grade>_v<version>_from_v<base>.vkpd`, staged as `<8 hex>-<name>`, within a file
# name's NAME_MAX of 255 bytes, and the Chroma collection `<subject>__<grade>__<model slug, <= 200>-<dims>d`
# within Chroma's 512 characters (CHROMA_NAME_MAX). Two slugs of 64 leave a delta name 100 bytes for its two
# versions and the collection name 30 characters of room; real names are 5-20 characters.
MAX_SLUG_CHARS = 64
NAME_MAX_BYTES = 255
CHROMA_NAME_MAX = 512


def is_slug(value: object) -> bool:
    """A lowercase ASCII slug, the whole string (see SLUG_RULE)."""
    return isinstance(value, str) and SLUG_RE.fullmatch(value) is not None


def is_semver(value: object) -> bool:
    """MAJOR.MINOR.PATCH in ASCII digits, the whole string."""
    return isinstance(value, str) and SEMVER_RE.fullmatch(value) is not None


class LayoutError(ValueError):
    """A path or name that does not fit `raw-curriculum/<subject>/<grade>/*.pdf`.

    `folder`, `what` and `where` name the subject or grade folder at fault (and the path or key it was
    seen in), when it is one.
    """

    def __init__(
        self, message: str, folder: str | None = None, what: str | None = None, where: str | None = None
    ) -> None:
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
    place = f" ({shown(where, 300)})" if where else ""  # a path holding the folder's name: shown escaped
    if isinstance(value, str) and len(value) > MAX_SLUG_CHARS and is_slug(value):
        raise LayoutError(
            f"invalid {what} folder {quoted(value)}{place}: {len(value)} characters, over the limit of "
            f"{MAX_SLUG_CHARS} per {what} name (the package file name <subject>_<grade>_v<version>.vkp(d) must fit "
            f"a file name's {NAME_MAX_BYTES} bytes and the Chroma collection name {CHROMA_NAME_MAX} characters); "
            "rename the folder to a shorter name",
            folder=value,
            what=what,
            where=where,
        )
    if not is_slug(value):
        suggestion = normalized_slug(value) if isinstance(value, str) else ""
        rename = f" (e.g. to {quoted(suggestion)})" if suggestion else ""
        raise LayoutError(
            f"invalid {what} folder {quoted(value)}{place}: {what} names must be lowercase slugs "
            f"matching {SLUG_RULE} (e.g. 'informatika', 'kelas_10'; no leading, trailing or doubled '_'); "
            f"rename the folder{rename}",
            folder=value,
            what=what,
            where=where,
        )
    if value in RESERVED_SLUGS:
        raise LayoutError(
            f"invalid {what} folder {value!r}{place}: the platform keeps its own {value!r} under "
            f"{PROCESSED_PREFIX}/; rename the folder",
            folder=value,
            what=what,
            where=where,
        )
    return value


def link_refusal(path: Path, root: Path) -> str:
    """The message of a symbolic link found in the input tree (never followed: its target is outside
    the uploader's folder, perhaps outside the data directory, and is never read, not even to sniff it)."""
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    return (
        f"{shown} is a symbolic link: skipped, links under {RAW_PREFIX}/ are never followed; copy the file "
        "itself into the folder"
    )


def scan_files(base: Path, root: Path) -> tuple[list[Path], list[str]]:
    """Regular files under `base` (sorted), without following any link; and a message for each link or
    special file (fifo, device, socket) met, which is skipped. `root` is what messages are relative to."""
    files: list[Path] = []
    refused: list[str] = []
    for folder in (base, *base.parents):  # a linked subject or grade folder counts as a link too
        if folder == root or not folder.is_relative_to(root):
            break
        if folder.is_symlink():
            return files, [link_refusal(folder, root)]
    stack = [base] if base.is_dir() else []
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                path = Path(entry.path)
                if entry.is_symlink():
                    refused.append(link_refusal(path, root))
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif entry.is_file(follow_symlinks=False):
                    files.append(path)
                else:
                    refused.append(f"{path.relative_to(root).as_posix()} is not a regular file: skipped")
    return sorted(files), sorted(refused)


def refusal(exc: LayoutError, valid: Collection[str]) -> str:
    """The message of a refused folder: a collision when its normalized slug is a valid folder (`valid`)."""
    folder = exc.folder
    slug = normalized_slug(folder) if folder else ""
    if not folder or not slug or slug == folder or slug not in valid:
        return str(exc)
    place = f" ({shown(exc.where)})" if exc.where else ""
    return (
        f"{exc.what} folder {folder!r}{place} collides with {slug!r} after normalization: skipped, not merged "
        f"(folder names are never normalized), so its PDFs are not built; move them into {slug}/"
    )


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
        """`<subject>/<grade>`: how people name a partition, and its key in Dagster and every surface."""
        return f"{self.subject}/{self.grade}"

    @classmethod
    def from_label(cls, label: str) -> Partition:
        """The partition of `<subject>/<grade>` (LayoutError naming the label when it is not one).

        Also reads the `<grade>|<subject>` keys of the subject × grade MultiPartitionsDefinition used
        before, so older runs and job records still name their partition.
        """
        if "|" in label and "/" not in label:
            grade, _, subject = label.partition("|")
        else:
            subject, sep, grade = label.partition("/")
            if not sep or "/" in grade:
                raise LayoutError(
                    f"invalid partition {label!r}: expected <subject>/<grade>, e.g. 'informatika/kelas_10'"
                )
        return cls(subject, grade)

    # Keys relative to the data root (also S3 keys).
    def raw_prefix(self) -> str:
        return f"{RAW_PREFIX}/{self.subject}/{self.grade}"

    def processed_prefix(self) -> str:
        return f"{PROCESSED_PREFIX}/{self.subject}/{self.grade}"

    def vkp_name(self, version: str) -> str:
        if not is_semver(version):
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
        rest = name[len(prefix) :]
        version = rest.removesuffix(".vkp") if rest.endswith(".vkp") else rest.split("_from_v")[0]
        if not (name.endswith(".vkp") or (name.endswith(".vkpd") and "_from_v" in rest)):
            return None
        return version if is_semver(version) else None

    @property
    def collection_name(self) -> str:
        """Chroma collection name: 3+ characters, unique per partition."""
        return f"{self.subject}__{self.grade}"


def partition_label(key: str) -> str:
    """`<subject>/<grade>` of a recorded partition key, also of the `<grade>|<subject>` keys of runs and
    job records made before the single partition dimension; the key itself when it is neither."""
    try:
        return Partition.from_label(key).label if key else ""
    except LayoutError:
        return key


def parse_semver(version: str) -> tuple[int, int, int]:
    match = SEMVER_RE.fullmatch(version) if isinstance(version, str) else None
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
        return self.root / PROCESSED_PREFIX / PLATFORM_NAMES[0]

    @property
    def jobs_db(self) -> Path:
        """The local job history (aws mode keeps it in DynamoDB instead)."""
        return self.root / PROCESSED_PREFIX / PLATFORM_NAMES[1]

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
            if is_semver(version):
                versions.append(version)
        return sorted(versions, key=parse_semver)

    def discover_partitions(self, publishes: Publishes | None = None) -> tuple[list[Partition], list[str]]:
        """Partitions that have a folder under `raw-curriculum/`, and the folders refused (with reasons).

        A refused folder whose normalized name is a valid sibling (`Informatika/` beside `informatika/`)
        says so: it is skipped, never merged. Partitions whose packages would share names are refused as
        `package_conflict` says (`publishes` tells the one that already publishes them).
        """
        found: list[Partition] = []
        refused: list[str] = []
        if not self.raw_root.is_dir():
            return found, refused
        subjects = self._folders(self.raw_root, refused)
        valid_subjects = {p.name for p in subjects if is_slug(p.name)}
        for subject_dir in subjects:
            try:
                validate_slug(subject_dir.name, "subject", str(subject_dir))
            except LayoutError as exc:
                refused.append(refusal(exc, valid_subjects))
                continue
            grades = self._folders(subject_dir, refused)
            valid_grades = {p.name for p in grades if is_slug(p.name)}
            for grade_dir in grades:
                try:
                    validate_slug(grade_dir.name, "grade", str(grade_dir))
                except LayoutError as exc:
                    refused.append(refusal(exc, valid_grades))
                    continue
                found.append(Partition(subject_dir.name, grade_dir.name))
        return without_ambiguous_packages(found, refused, publishes)

    def _folders(self, parent: Path, refused: list[str]) -> list[Path]:
        """The real sub-folders of `parent`; a link to a folder is refused, never followed."""
        folders = []
        for path in sorted(parent.iterdir()):
            if path.is_symlink():
                refused.append(link_refusal(path, self.root))
            elif path.is_dir():
                folders.append(path)
        return folders


def package_rivals(part: Partition) -> list[Partition]:
    """The other partitions whose packages would bear `part`'s names: `vkp/<subject>_<grade>_v*.vkp` cannot tell
    `informatika/kelas_10` from `informatika_kelas/10` (every other split of the stem into two valid slugs)."""
    words = f"{part.subject}_{part.grade}".split("_")
    rivals = []
    for cut in range(1, len(words)):
        subject, grade = "_".join(words[:cut]), "_".join(words[cut:])
        if subject == part.subject:
            continue
        try:
            rivals.append(Partition(subject, grade))
        except LayoutError:  # a reserved or over-long slug: no folder can hold that partition
            continue
    return rivals


Publishes = Callable[["Partition"], bool]


def package_conflict(part: Partition, present: Collection[Partition], publishes: Publishes | None = None) -> str | None:
    """Why `part` may not be built because another partition in `present` would publish under the same package
    names, or None. `publishes(p)` tells a partition that already publishes (it has a catalog entry; asked only
    when there is a rival): that owner keeps building and a newcomer is refused, so a second folder can neither
    take over nor stop a published partition. With no owner among them, all are refused until one folder is
    renamed. Every message names the folders."""
    rivals = [r for r in package_rivals(part) if r in present]
    if not rivals:
        return None
    owners = {p for p in (part, *rivals) if publishes is not None and publishes(p)}
    if part in owners:
        return None
    folders = " and ".join(f"{r.raw_prefix()}/" for r in sorted([part, *rivals]))
    names = f"{VKP_PREFIX}/{part.subject}_{part.grade}_v*.vkp"
    owner = next((r for r in sorted(rivals) if r in owners), None)
    if owner is not None:
        return (
            f"{part.label} would publish the same package names ({names}) as {owner.label}, which already publishes "
            f"them (folders {folders}): {part.label} is not built, so it cannot overwrite {owner.label}'s packages; "
            f"rename {part.raw_prefix()}/"
        )
    return (
        f"partitions {' and '.join(p.label for p in sorted([part, *rivals]))} would publish the same package names "
        f"({names}; folders {folders}): none of them is built until one of the folders is renamed"
    )


def without_ambiguous_packages(
    found: list[Partition], refused: list[str], publishes: Publishes | None = None
) -> tuple[list[Partition], list[str]]:
    """`found` without the partitions `package_conflict` refuses, whose messages join `refused` (once each)."""
    kept = []
    for part in found:
        message = package_conflict(part, found, publishes)
        if message is None:
            kept.append(part)
        elif message not in refused:
            refused.append(message)
    return kept, refused
