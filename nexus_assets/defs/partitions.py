"""Subject × grade partitions.

Both dimensions are dynamic: a subject or grade becomes a partition when PDFs for it first appear
(`nexus build`, and later the upload sensors, register it), so the partition set mirrors the data
and new grade schemes (e.g. `smk_1`) need no code change. Keys are validated slugs.
"""

from __future__ import annotations

import dagster as dg

from nexus_assets.lib.core.layout import Partition

subject_partitions_def = dg.DynamicPartitionsDefinition(name="subjects")
grade_partitions_def = dg.DynamicPartitionsDefinition(name="grades")

curriculum_partitions_def = dg.MultiPartitionsDefinition(
    {"subject": subject_partitions_def, "grade": grade_partitions_def}
)


def partition_of(key: str | dg.MultiPartitionKey) -> Partition:
    """The subject × grade of a Dagster partition key (validates both slugs)."""
    dims = key.keys_by_dimension if isinstance(key, dg.MultiPartitionKey) else _split(key)
    return Partition(dims["subject"], dims["grade"])


def _split(key: str) -> dict[str, str]:
    # MultiPartitionKey strings join dimensions sorted by name: "<grade>|<subject>".
    grade, _, subject = key.partition("|")
    return {"grade": grade, "subject": subject}


def key_of(partition: Partition) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"subject": partition.subject, "grade": partition.grade})


def register_partitions(instance: dg.DagsterInstance, partitions: list[Partition]) -> None:
    """Add the subjects and grades of `partitions` to the instance's dynamic partitions."""
    subjects = sorted({p.subject for p in partitions})
    grades = sorted({p.grade for p in partitions})
    known_subjects = set(instance.get_dynamic_partitions(subject_partitions_def.name))
    known_grades = set(instance.get_dynamic_partitions(grade_partitions_def.name))
    if new := [s for s in subjects if s not in known_subjects]:
        instance.add_dynamic_partitions(subject_partitions_def.name, new)
    if new := [g for g in grades if g not in known_grades]:
        instance.add_dynamic_partitions(grade_partitions_def.name, new)
