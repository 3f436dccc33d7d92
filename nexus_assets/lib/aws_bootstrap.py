"""Create the bucket and tables aws mode needs, idempotently (`nexus aws bootstrap`).

The bucket gets default encryption, versioning (a published VKP can always be recovered) and a
full public-access block; the tables are on-demand with point-in-time recovery.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from nexus_assets.lib.aws_config import AwsSettings


def _bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise


def _create_bucket(s3: Any, settings: AwsSettings) -> str:
    kwargs: dict[str, Any] = {"Bucket": settings.bucket}
    if settings.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
    try:
        s3.create_bucket(**kwargs)
        return "created"
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
        return "exists"


def _ensure_bucket(s3: Any, settings: AwsSettings) -> str:
    # us-east-1 answers 200 to re-creating one's own bucket, so ask first to report honestly.
    state = "exists" if _bucket_exists(s3, settings.bucket) else _create_bucket(s3, settings)
    rule: dict[str, Any] = {"SSEAlgorithm": settings.sse}
    if settings.kms_key_id:
        rule["KMSMasterKeyID"] = settings.kms_key_id
    s3.put_bucket_encryption(
        Bucket=settings.bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]},
    )
    s3.put_bucket_versioning(Bucket=settings.bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(
        Bucket=settings.bucket,
        PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                        "BlockPublicPolicy": True, "RestrictPublicBuckets": True},
    )
    return state


def _ensure_table(dynamodb: Any, name: str, hash_key: str, range_key: str) -> str:
    try:
        dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": hash_key, "AttributeType": "S"},
                                  {"AttributeName": range_key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": hash_key, "KeyType": "HASH"},
                       {"AttributeName": range_key, "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        state = "created"
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        state = "exists"
    dynamodb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    return state


def bootstrap(settings: AwsSettings) -> dict[str, str]:
    """Make sure the bucket and both tables exist with their protections; returns what was done."""
    s3, dynamodb = settings.client("s3"), settings.client("dynamodb")
    return {
        f"s3://{settings.bucket}": _ensure_bucket(s3, settings),
        f"dynamodb:{settings.records_table}": _ensure_table(dynamodb, settings.records_table, "pk", "sk"),
        f"dynamodb:{settings.jobs_table}": _ensure_table(dynamodb, settings.jobs_table, "job_id", "timestamp"),
    }
