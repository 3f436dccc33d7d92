"""AWS: aws mode's plumbing and the production deployment.

aws mode's bucket, tables and clients (`aws_config`; parsed with every other setting by
`nexus_assets.settings`), what each deployment means for storage,
local files or the bucket and tables (`storage`, the one home of that choice), one retry policy and
error for throttling and outages (`aws_retry`), objects in S3 under the local layout's keys
(`s3_store`), versioned small records in DynamoDB (`dynamo_records`), creating the bucket and tables
(`aws_bootstrap`), and the production Dagster instance profiles for ECS and Kubernetes
(`deploy_profiles`).
"""
