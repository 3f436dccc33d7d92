"""One partition per `raw-curriculum/<subject>/<grade>/` folder, keyed `<subject>/<grade>`.

A single dynamic dimension, not subject × grade: a MultiPartitionsDefinition of two dynamic dimensions
is their full cross product, so one upload of 7 folders showed 12 partitions, "58% filled" forever, and
backfills of pairs no folder holds. Here a partition exists exactly when its folder does (registered
by `nexus build`, `nexus partitions`, and the `curriculum_folders_sensor` from the first daemon tick),
and its key is what people type and read everywhere: `informatika/kelas_10` in the UI, the CLI, the
`--json` documents, the logs and the job table. `/` is not among the characters Dagster reserves in
partition keys (`|`, `,`, `[`, `]`, `...`) and the slugs never contain it, so the key splits back
unambiguously. See docs/design.md, "One dynamic partition per folder".

`key_of` and `partition_of` are the one place keys are mapped (`Partition.from_label` parses them).
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from nexus_assets.lib.core.layout import Partition

curriculum_partitions_def = dg.DynamicPartitionsDefinition(name="curriculum")


def partition_of(key: str) -> Partition:
    """The subject and grade of a partition key `<subject>/<grade>` (validates both slugs)."""
    return Partition.from_label(str(key))


def key_of(partition: Partition) -> str:
    return partition.label


def register_partitions(instance: dg.DagsterInstance, partitions: Iterable[Partition]) -> list[Partition]:
    """Add the partitions the instance does not know yet; returns those added."""
    known = set(instance.get_dynamic_partitions(curriculum_partitions_def.name))  # type: ignore[arg-type]
    new = sorted({p for p in partitions if key_of(p) not in known})
    if new:
        instance.add_dynamic_partitions(curriculum_partitions_def.name, [key_of(p) for p in new])  # type: ignore[arg-type]
    return new
