"""AWS: aws mode's plumbing and the production deployment.

Which deployment runs and its AWS settings (`aws_config`), what each deployment means for storage,
local files or the bucket and tables (`storage`, the one home of that choice), one retry policy and
error for throttling and outages (`aws_retry`), objects in S3 under the local layout's keys
(`s3_store`), versioned small records in DynamoDB (`dynamo_records`), creating the bucket and tables
(`aws_bootstrap`), and the production Dagster instance profiles for ECS and Kubernetes
(`deploy_profiles`).
"""
