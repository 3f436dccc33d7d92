"""The `curriculum_catalog` asset: every partition's latest figures and gate verdicts in one table.

Unpartitioned, and it loads no partition's data: the figures are the metadata the partition assets
already recorded, and the verdicts are the checks' latest evaluations, both read from the Dagster
instance. So it costs a few queries however large the curriculum, and shows the same numbers the UI
shows on each asset. `nexus build` refreshes it after its partitions; in the UI, materialize it (or
turn on the `curriculum_catalog_after_*` sensors, on by default in aws mode) after partition runs.
"""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from nexus_assets.defs.assets import PUBLISH, TABLES, pdf_text, text_chunks, vkp_package
from nexus_assets.defs.checks import curriculum_checks
from nexus_assets.defs.io_managers import STORED_AS
from nexus_assets.defs.jobs import curriculum_build_job
from nexus_assets.defs.partitions import curriculum_partitions_def, partition_of
from nexus_assets.defs.table_metadata import frame_table, schema_metadata, table_output_metadata
from nexus_assets.lib.aws.aws_config import deployment
from nexus_assets.lib.publish.curriculum_catalog import STORED_AS as CATALOG_FILE
from nexus_assets.lib.publish.curriculum_catalog import (
    CheckState,
    catalog_frame,
    catalog_row,
    catalog_summary,
)

CHECK_KEYS = [key for check in curriculum_checks for key in check.check_keys]


def _latest_metadata(
    instance: dg.DagsterInstance, asset: dg.AssetsDefinition, partition: str
) -> tuple[dict, float | None]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset.key, asset_partitions=[partition]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return {}, None
    metadata = {k: getattr(v, "value", v) for k, v in records[0].asset_materialization.metadata.items()}
    return metadata, records[0].timestamp


def _check_states(instance: dg.DagsterInstance, partition: str) -> list[CheckState]:
    from dagster._core.event_api import PartitionKeyFilter  # the storage API of partitioned checks (1.13)

    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        CHECK_KEYS, partition_filter=PartitionKeyFilter(key=partition)
    )
    states = []
    for key, record in latest.items():
        evaluation = (
            record.event.dagster_event.event_specific_data if record.event and record.event.dagster_event else None
        )
        if evaluation is None or not hasattr(evaluation, "passed"):
            continue  # planned, never evaluated
        severity = "error" if evaluation.severity == dg.AssetCheckSeverity.ERROR else "warn"
        states.append(CheckState(key.name, bool(evaluation.passed), severity))
    return states


def _when(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds") if timestamp else None


@dg.asset(
    group_name=PUBLISH,
    kinds={"pandas", TABLES},
    deps=[vkp_package],
    metadata={STORED_AS: CATALOG_FILE, **schema_metadata("curriculum_catalog")},
    description="One row per subject × grade: files, pages (and pages read by OCR), chunks, the VKP version "
    "schools get, last build time and the quality gates' status; stored as processed/catalog.parquet.",
)
def curriculum_catalog(context: dg.AssetExecutionContext) -> dg.Output[pd.DataFrame]:
    instance = context.instance
    rows = []
    for key in curriculum_partitions_def.get_partition_keys(dynamic_partitions_store=instance):
        part = partition_of(key)
        figures: dict = {}
        built: list[float] = []
        for asset in (pdf_text, text_chunks, vkp_package):
            metadata, timestamp = _latest_metadata(instance, asset, key)
            figures.update(
                {
                    k: v
                    for k, v in metadata.items()
                    if k in ("files", "files_failed", "pages", "pages_ocr", "pages_without_text", "chunks", "version")
                }
            )
            built += [timestamp] if timestamp else []
        figures["last_build"] = _when(max(built)) if built else None
        rows.append(catalog_row(part.subject, part.grade, figures, _check_states(instance, key), len(CHECK_KEYS)))
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


def _catalog_refresh_sensor(status: dg.DagsterRunStatus, outcome: str) -> dg.SensorDefinition:
    """Refresh the catalog after a partition run ends with `status` (a failed run changes the gates' column)."""

    @dg.run_status_sensor(
        name=f"curriculum_catalog_after_{outcome}_sensor",
        run_status=status,
        monitored_jobs=[curriculum_build_job],
        request_job=curriculum_catalog_job,
        default_status=dg.DefaultSensorStatus.RUNNING if deployment() == "aws" else dg.DefaultSensorStatus.STOPPED,
        description=f"After a partition build {outcome}, refresh the curriculum catalog.",
    )
    def refresh(context: dg.RunStatusSensorContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"catalog-after-{context.dagster_run.run_id}")

    return refresh


curriculum_catalog_sensors = [
    _catalog_refresh_sensor(dg.DagsterRunStatus.SUCCESS, "success"),
    _catalog_refresh_sensor(dg.DagsterRunStatus.FAILURE, "failure"),
]
