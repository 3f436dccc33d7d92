"""The Dagster code location: every asset, check, job, sensor and resource, declared in one place.

`NEXUS_ENV` picks the resources (see `nexus_assets.lib.aws.aws_config`): `local` (default) keeps every
value as files under the data directory; `aws` keeps tables in S3 and records in DynamoDB, with
settings from environment variables. The assets are the same in both.

Runs use the in-process executor by default: the six steps of a partition form a chain, so separate
step processes would add start-up time (each re-imports torch and reloads the model) and little
parallelism. `NEXUS_EXECUTOR=multiprocess` (with `NEXUS_EXECUTOR_MAX_CONCURRENT`, default 2) runs the
steps of a run in separate processes, so a partition's asset checks run beside its next steps on a
run worker with several CPUs; the pools still bound embedding and Chroma writing across all runs.
Partitions themselves run in parallel as separate runs (queued run coordinator, run launcher).

`NEXUS_CHROMA_MODE=server` (with NEXUS_CHROMA_HOST, NEXUS_CHROMA_PORT, NEXUS_CHROMA_SSL and the secret
NEXUS_CHROMA_TOKEN) also publishes every partition's collection to a Chroma server.
"""

from typing import Any

import dagster as dg

from nexus_assets.defs import settings as code_location
from nexus_assets.defs.assets import curriculum_assets
from nexus_assets.defs.aws import AwsDataDirResource, AwsResource, DynamoRecordIOManager, S3TableIOManager
from nexus_assets.defs.checks import curriculum_checks
from nexus_assets.defs.curriculum_catalog import (
    curriculum_catalog,
    curriculum_catalog_automation_sensor,
    curriculum_catalog_job,
)
from nexus_assets.defs.io_managers import RECORD_IO_MANAGER, LocalPartitionedIOManager
from nexus_assets.defs.job_history import job_history_sensors
from nexus_assets.defs.jobs import curriculum_build_job
from nexus_assets.defs.resources import (
    ChromaResource,
    DataDirResource,
    EmbedderResource,
    ExtractionLimitsResource,
    PublishingResource,
)
from nexus_assets.defs.schedules import weekly_full_rebuild_schedule
from nexus_assets.defs.sensors import SqsQueueResource, upload_sensors
from nexus_assets.lib.aws.aws_config import ENV_VARS
from nexus_assets.settings import Settings


def _env(settings: Settings, name: str, default: Any) -> Any:
    """An EnvVar when the variable is set (resolved at run time, shown as such in the UI), else the default."""
    variable = ENV_VARS.get(name, name)
    return dg.EnvVar(variable) if settings.environment.get(variable, "").strip() else default


def chroma_resource(settings: Settings) -> ChromaResource:
    """Chroma mode and server from the settings; the token stays an EnvVar (the UI shows only its name)."""
    return ChromaResource(
        mode=settings.chroma_mode,
        host=settings.chroma_host,
        port=settings.chroma_port,
        ssl=settings.chroma_ssl,
        auth_token=_env(settings, "NEXUS_CHROMA_TOKEN", ""),
    )


def run_executor(settings: Settings) -> dg.ExecutorDefinition:
    """In-process (default) or multiprocess steps (NEXUS_EXECUTOR)."""
    if settings.executor == "in_process":
        return dg.in_process_executor
    return dg.multiprocess_executor.configured({"max_concurrent": settings.executor_max_concurrent})


def local_resources(settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or code_location.SETTINGS
    files = LocalPartitionedIOManager()
    return {
        "data_dir": DataDirResource(),
        "extraction": ExtractionLimitsResource(),
        "publishing": PublishingResource(),
        "embedder": EmbedderResource(),
        "chroma": chroma_resource(settings),
        "io_manager": files,
        RECORD_IO_MANAGER: files,
        "sqs_queue": SqsQueueResource(),
    }


def aws_resources(settings: Settings | None = None) -> dict[str, Any]:
    """aws mode's resources: the AWS values stay EnvVars, so the UI shows which variable set each."""
    settings = settings or code_location.SETTINGS

    def env(name: str, default: Any) -> Any:
        return _env(settings, name, default)

    region = env("region", "us-east-1")
    aws = AwsResource(
        bucket=dg.EnvVar(ENV_VARS["bucket"]),
        records_table=env("records_table", "NexusAssetRecords"),
        jobs_table=env("jobs_table", "ETLPipelineJobs"),
        region=region,
        endpoint_url=env("endpoint_url", ""),
        kms_key_id=env("kms_key_id", ""),
        storage_class=env("storage_class", "STANDARD_IA"),
        cloudfront_distribution_id=env("cloudfront_distribution_id", ""),
    )
    sqs = SqsQueueResource(queue_url=env("sqs_queue_url", ""), region=region, endpoint_url=env("endpoint_url", ""))
    return {
        "data_dir": AwsDataDirResource(aws=aws),
        "extraction": ExtractionLimitsResource(),
        "publishing": PublishingResource(),
        "embedder": EmbedderResource(),
        "chroma": chroma_resource(settings),
        "io_manager": S3TableIOManager(aws=aws),
        RECORD_IO_MANAGER: DynamoRecordIOManager(aws=aws),
        "sqs_queue": sqs,
    }


RESOURCES_BY_DEPLOYMENT = {"local": local_resources, "aws": aws_resources}

defs = dg.Definitions(
    assets=[*curriculum_assets, curriculum_catalog],
    asset_checks=curriculum_checks,
    jobs=[curriculum_build_job, curriculum_catalog_job],
    sensors=[*upload_sensors, *job_history_sensors, curriculum_catalog_automation_sensor],
    schedules=[weekly_full_rebuild_schedule],
    resources=RESOURCES_BY_DEPLOYMENT[code_location.SETTINGS.deployment](code_location.SETTINGS),
    executor=run_executor(code_location.SETTINGS),
)
