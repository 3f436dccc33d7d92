"""The `curriculum_catalog` asset: every partition's latest figures and gate verdicts in one table.

Unpartitioned, and it loads no partition's data: the figures are the metadata the partition assets
already recorded, and the verdicts are the checks' latest evaluations, both read from the Dagster
instance, and the verdicts those of each partition's latest build (its run's check evaluations). So it
costs a few queries however large the curriculum, and shows the same numbers the UI shows on each
asset. `nexus build` refreshes it after its partitions; every other build (launchpad, asset graph, backfill,
sensor, schedule) refreshes it through its eager automation condition, evaluated by the
`curriculum_catalog_automation_sensor`, running by default wherever the daemon runs (`make ui` too).
"""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from nexus_assets.defs.assets import PUBLISH, PUBLISH_CODE, TABLES, pdf_text, text_chunks, vkp_package
from nexus_assets.defs.checks import curriculum_checks
from nexus_assets.defs.io_managers import STORED_AS
from nexus_assets.defs.partitions import curriculum_partitions_def, partition_of
from nexus_assets.defs.table_metadata import frame_table, schema_metadata, table_output_metadata
from nexus_assets.lib.publish.curriculum_catalog import STORED_AS as CATALOG_FILE
from nexus_assets.lib.publish.curriculum_catalog import (
    CheckState,
    catalog_frame,
    catalog_row,
    catalog_summary,
)

CHECK_KEYS = [key for check in curriculum_checks for key in check.check_keys]
FIGURES = ("files", "files_failed", "pages", "pages_ocr", "pages_without_text", "chunks", "version")
# Refreshed once the partition runs in flight have ended, after any partition's text, chunks or package
# changed (a run whose blocking check failed still rewrote its text): Dagster's eager condition, minus
# its wait for every upstream partition, since a registered partition may never have been built.
CATALOG_AUTOMATION = (
    dg.AutomationCondition.eager()
    .without(~dg.AutomationCondition.any_deps_missing())
    .with_label("eager, after the partition runs in flight")
)


def _latest(instance: dg.DagsterInstance, asset: dg.AssetsDefinition, partition: str) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset.key, asset_partitions=[partition]), limit=1
    ).records
    return records[0] if records and records[0].asset_materialization is not None else None


def _check_states(instance: dg.DagsterInstance, run_id: str) -> list[CheckState]:
    """The verdicts of the partition's latest build: the checks run in the same run as the assets."""
    states = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if evaluation is None or not hasattr(evaluation, "passed"):
            continue
        severity = "error" if evaluation.severity == dg.AssetCheckSeverity.ERROR else "warn"
        states[evaluation.check_name] = CheckState(evaluation.check_name, bool(evaluation.passed), severity)
    return list(states.values())


def _when(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds") if timestamp else None


@dg.asset(
    group_name=PUBLISH,
    kinds={"pandas", TABLES},
    deps=[pdf_text, text_chunks, vkp_package],  # it reads their latest metadata
    automation_condition=CATALOG_AUTOMATION,
    code_version=PUBLISH_CODE,
    metadata={STORED_AS: CATALOG_FILE, **schema_metadata("curriculum_catalog")},
    description="One row per partition (<subject>/<grade> folder): files, pages (and pages read by OCR), "
    "chunks, the VKP version schools get, last build time and the quality gates' status; stored as "
    "processed/catalog.parquet.",
)
def curriculum_catalog(context: dg.AssetExecutionContext) -> dg.Output[pd.DataFrame]:
    instance = context.instance
    rows = []
    for key in curriculum_partitions_def.get_partition_keys(dynamic_partitions_store=instance):
        part = partition_of(key)
        figures: dict = {}
        latest = [record for asset in (pdf_text, text_chunks, vkp_package) if (record := _latest(instance, asset, key))]
        for record in latest:
            metadata = {k: getattr(v, "value", v) for k, v in record.asset_materialization.metadata.items()}  # type: ignore[union-attr]
            figures.update({k: v for k, v in metadata.items() if k in FIGURES})
        newest = max(latest, key=lambda r: r.timestamp, default=None)
        figures["last_build"] = _when(newest.timestamp) if newest else None
        checks = _check_states(instance, newest.run_id) if newest else []
        rows.append(catalog_row(part.subject, part.grade, figures, checks, len(CHECK_KEYS)))
    frame = catalog_frame(rows)
    shown = frame.drop(columns=["failed_checks", "warnings"]).assign(
        checks=[
            f"{c}: {f or w}" if f or w else c
            for c, f, w in zip(frame["checks"], frame["failed_checks"], frame["warnings"], strict=True)
        ]
    )
    table = frame_table(shown, limit=200)
    return dg.Output(
        frame,
        metadata={
            **table_output_metadata("curriculum_catalog", frame, partitioned=False),
            **catalog_summary(frame),
            "catalog": table,
        },
    )


curriculum_catalog_job = dg.define_asset_job(
    "curriculum_catalog_job",
    selection=dg.AssetSelection.assets(curriculum_catalog),
    description="Refresh the catalog of partitions from the instance (no partition data is read).",
)


curriculum_catalog_automation_sensor = dg.AutomationConditionSensorDefinition(
    "curriculum_catalog_automation_sensor",
    target=dg.AssetSelection.assets(curriculum_catalog),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates the catalog's automation condition: refreshes it after every partition build the "
    "daemon sees (launchpad, asset graph, backfills, sensors, schedules; `nexus build` refreshes it itself). "
    "Running by default in every deployment.",
)
