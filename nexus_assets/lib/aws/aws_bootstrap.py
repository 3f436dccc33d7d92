"""Create the bucket and tables aws mode needs, idempotently (`nexus aws bootstrap`).

The bucket gets default encryption, versioning (a published VKP can always be recovered), a full
public-access block and a bucket policy that denies object uploads without server-side encryption
(the `x-amz-server-side-encryption` header absent, or neither AES256 nor aws:kms) and any request
over plain HTTP (`aws:SecureTransport` false). Statements of the bucket's policy that are not ours
are kept. `NEXUS_S3_BUCKET_POLICY=off` leaves the policy out, for local emulators that evaluate bucket
policies without their conditions (moto then refuses every object request, encrypted or not). The
tables are on-demand with point-in-time recovery.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from nexus_assets.lib.aws.aws_config import ENV_VARS, AwsSettings


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
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return state


def _ensure_policy(s3: Any, bucket: str, wanted_on: bool) -> str:
    if not wanted_on:
        return f"skipped ({ENV_VARS['bucket_policy']}=off)"
    current = _current_policy(s3, bucket)
    wanted = bucket_policy(bucket, current)
    if current == wanted:
        return "exists"
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(wanted))
    return "set"


SSE_VALUES = ["AES256", "aws:kms"]
POLICY_SIDS = ("DenyIncorrectEncryptionHeader", "DenyUnencryptedObjectUploads", "DenyInsecureTransport")


def bucket_policy(bucket: str, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bucket policy of aws mode: `current`'s other statements plus the three deny statements.

    Every put of the project names its encryption (`S3ObjectStore`; multipart uploads name it when they
    are created), so only a put that bypasses the project, or forgets, is refused.
    """
    objects, whole = f"arn:aws:s3:::{bucket}/*", f"arn:aws:s3:::{bucket}"
    ours = [
        {
            "Sid": "DenyIncorrectEncryptionHeader",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": SSE_VALUES}},
        },
        {
            "Sid": "DenyUnencryptedObjectUploads",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}},
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [whole, objects],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]
    others = [st for st in (current or {}).get("Statement", []) if st.get("Sid") not in POLICY_SIDS]
    return {"Version": "2012-10-17", "Statement": [*others, *ours]}


def _current_policy(s3: Any, bucket: str) -> dict[str, Any] | None:
    try:
        return json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchBucketPolicy", "404"):
            return None
        raise


def _ensure_table(dynamodb: Any, name: str, hash_key: str, range_key: str) -> str:
    try:
        dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": hash_key, "AttributeType": "S"},
                {"AttributeName": range_key, "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": range_key, "KeyType": "RANGE"},
            ],
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
    """Make sure the bucket and both tables exist with their protections; returns what was done.

    `settings.bucket_policy` False ($NEXUS_S3_BUCKET_POLICY=off) leaves the bucket's policy alone."""
    s3, dynamodb = settings.client("s3"), settings.client("dynamodb")
    return {
        f"s3://{settings.bucket}": _ensure_bucket(s3, settings),
        f"s3://{settings.bucket} policy (deny unencrypted puts, plain HTTP)": _ensure_policy(
            s3, settings.bucket, settings.bucket_policy
        ),
        f"dynamodb:{settings.records_table}": _ensure_table(dynamodb, settings.records_table, "pk", "sk"),
        f"dynamodb:{settings.jobs_table}": _ensure_table(dynamodb, settings.jobs_table, "job_id", "timestamp"),
    }
