"""The Dagster code location: every asset, check, job, sensor and resource, declared in one place.

`NEXUS_ENV` picks the resources (see `nexus_assets.lib.aws_config`): `local` (default) keeps every
value as files under the data directory; `aws` keeps tables in S3 and records in DynamoDB, with
settings from environment variables. The assets are the same in both.

Runs use the in-process executor: the six steps of a partition form a chain, so separate step
processes would add start-up time (each re-imports torch and reloads the model) and no parallelism.
"""

import os
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from nexus_assets.defs.assets import curriculum_assets
from nexus_assets.defs.aws import AwsDataDirResource, AwsResource, DynamoRecordIOManager, S3TableIOManager
from nexus_assets.defs.checks import curriculum_checks
from nexus_assets.defs.io_managers import RECORD_IO_MANAGER, LocalPartitionedIOManager
from nexus_assets.defs.job_history import job_history_sensors
from nexus_assets.defs.jobs import curriculum_build_job
from nexus_assets.defs.resources import DataDirResource, EmbedderResource
from nexus_assets.defs.schedules import weekly_full_rebuild_schedule
from nexus_assets.defs.sensors import SqsQueueResource, upload_sensors
from nexus_assets.lib.aws_config import ENV_VARS, deployment


def _env(name: str, default: Any) -> Any:
    """An EnvVar when the variable is set (resolved at run time, shown as such in the UI), else the default."""
    return dg.EnvVar(ENV_VARS.get(name, name)) if os.environ.get(ENV_VARS.get(name, name)) else default


def local_resources() -> dict[str, Any]:
    files = LocalPartitionedIOManager()
    return {"data_dir": DataDirResource(), "embedder": EmbedderResource(), "io_manager": files,
            RECORD_IO_MANAGER: files, "sqs_queue": SqsQueueResource()}


def aws_resources() -> dict[str, Any]:
    region = _env("region", "us-east-1")
    endpoint = _env("endpoint_url", None)
    aws = AwsResource(
        s3=S3Resource(region_name=region, endpoint_url=endpoint, max_attempts=8),
        bucket=dg.EnvVar(ENV_VARS["bucket"]),
        records_table=_env("records_table", "NexusAssetRecords"),
        jobs_table=_env("jobs_table", "ETLPipelineJobs"),
        region=region,
        endpoint_url=_env("endpoint_url", ""),
        kms_key_id=_env("kms_key_id", ""),
        storage_class=_env("storage_class", "STANDARD_IA"),
        cloudfront_distribution_id=_env("cloudfront_distribution_id", ""),
    )
    sqs = SqsQueueResource(queue_url=_env("sqs_queue_url", ""), region=region, endpoint_url=_env("endpoint_url", ""))
    return {"data_dir": AwsDataDirResource(aws=aws), "embedder": EmbedderResource(),
            "io_manager": S3TableIOManager(aws=aws), RECORD_IO_MANAGER: DynamoRecordIOManager(aws=aws),
            "sqs_queue": sqs}


RESOURCES_BY_DEPLOYMENT = {"local": local_resources, "aws": aws_resources}

defs = dg.Definitions(
    assets=curriculum_assets,
    asset_checks=curriculum_checks,
    jobs=[curriculum_build_job],
    sensors=[*upload_sensors, *job_history_sensors],
    schedules=[weekly_full_rebuild_schedule],
    resources=RESOURCES_BY_DEPLOYMENT[deployment()](),
    executor=dg.in_process_executor,
)
