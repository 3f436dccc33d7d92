"""aws mode's bucket, tables and clients.

`AwsSettings` holds the bucket, tables, region, optional endpoint (moto, LocalStack, S3-compatible
stores), KMS key and CloudFront distribution; `nexus_assets.settings.Settings.from_env` parses them
with everything else (its `aws`, None in local mode). Credentials are never read
here: boto3's standard chain finds them, so they never reach logs, metadata or errors. Every client
comes from `AwsSettings.client()`, with the one retry policy of `lib/aws/aws_retry.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nexus_assets.lib.aws.aws_retry import RetrySettings, guard_client
from nexus_assets.lib.aws.s3_store import S3ObjectStore
from nexus_assets.lib.core.job_tracking import DynamoJobStore

ENV_VARS = {
    "bucket": "NEXUS_S3_BUCKET",
    "records_table": "NEXUS_DYNAMODB_TABLE",
    "jobs_table": "NEXUS_JOBS_TABLE",
    "region": "AWS_REGION",
    "endpoint_url": "NEXUS_AWS_ENDPOINT_URL",
    "kms_key_id": "NEXUS_KMS_KEY_ID",
    "storage_class": "NEXUS_S3_STORAGE_CLASS",
    "cloudfront_distribution_id": "NEXUS_CLOUDFRONT_DISTRIBUTION_ID",
    "sqs_queue_url": "NEXUS_SQS_QUEUE_URL",
    "default_region": "AWS_DEFAULT_REGION",
    # Bedrock has its own endpoint: moto/LocalStack serving S3 and DynamoDB at NEXUS_AWS_ENDPOINT_URL
    # do not implement Titan, so tests point this at nexus_assets_tests/fake_bedrock.py instead.
    "bedrock_endpoint_url": "NEXUS_BEDROCK_ENDPOINT_URL",
    "embedder_backend": "NEXUS_EMBEDDER_BACKEND",  # local (default), bedrock or bedrock_fallback
    # `nexus aws bootstrap` sets the bucket policy (deny unencrypted puts and plain HTTP) unless this is off.
    "bucket_policy": "NEXUS_S3_BUCKET_POLICY",
}


def _on_off(value: str | None, variable: str) -> bool:
    choice = (value or "on").lower()
    if choice not in ("on", "1", "true", "yes", "off", "0", "false", "no"):
        raise ValueError(f"{variable}={value!r}: use on (default) or off")
    return choice in ("on", "1", "true", "yes")


@dataclass(frozen=True)
class AwsSettings:
    bucket: str
    records_table: str = "NexusAssetRecords"
    jobs_table: str = "ETLPipelineJobs"
    region: str = "us-east-1"
    endpoint_url: str | None = None
    kms_key_id: str | None = None
    storage_class: str = "STANDARD_IA"  # processed data is read rarely after a build
    cloudfront_distribution_id: str | None = None
    bedrock_endpoint_url: str | None = None  # embedding back end `bedrock` (bedrock_embedding.py)
    bucket_policy: bool = True  # `nexus aws bootstrap` sets the deny-unencrypted/plain-HTTP policy
    # Retries, backoff and timeouts of every client (NEXUS_AWS_MAX_ATTEMPTS, ...): see lib/aws/aws_retry.py.
    retry: RetrySettings = field(default_factory=RetrySettings)

    @property
    def sse(self) -> str:
        return "aws:kms" if self.kms_key_id else "AES256"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], retry: RetrySettings | None = None) -> AwsSettings:
        """Parsed from `environ` by `nexus_assets.settings.Settings.from_env` (its `aws` in aws mode)."""

        def get(name: str) -> str | None:
            return environ.get(ENV_VARS[name], "").strip() or None

        bucket = get("bucket")
        if not bucket:
            raise ValueError(
                f"aws mode needs {ENV_VARS['bucket']} (the bucket holding raw-curriculum/, processed/, vkp/)"
            )
        return cls(
            bucket=bucket,
            records_table=get("records_table") or cls.records_table,
            jobs_table=get("jobs_table") or cls.jobs_table,
            region=get("region") or get("default_region") or cls.region,
            endpoint_url=get("endpoint_url"),
            kms_key_id=get("kms_key_id"),
            storage_class=get("storage_class") or cls.storage_class,
            cloudfront_distribution_id=get("cloudfront_distribution_id"),
            bedrock_endpoint_url=get("bedrock_endpoint_url"),
            bucket_policy=_on_off(get("bucket_policy"), ENV_VARS["bucket_policy"]),
            retry=retry or RetrySettings.from_env(environ),
        )

    def client(self, service: str) -> Any:
        """A boto3 client with aws mode's one retry policy (lib/aws/aws_retry.py), reporting outages as
        `AwsUnavailableError`."""
        import boto3

        client = boto3.client(
            service, region_name=self.region, endpoint_url=self.endpoint_url, config=self.retry.config()
        )
        return guard_client(client, service, self.retry)

    def resource(self, service: str) -> Any:
        import boto3

        return boto3.resource(
            service, region_name=self.region, endpoint_url=self.endpoint_url, config=self.retry.config()
        )

    def object_store(self, client: Any = None) -> S3ObjectStore:
        """The bucket with this deployment's encryption and storage class."""
        return S3ObjectStore(client or self.client("s3"), self.bucket, self.sse, self.kms_key_id, self.storage_class)

    def job_store(self) -> DynamoJobStore:
        return DynamoJobStore(self.resource("dynamodb"), self.jobs_table)
