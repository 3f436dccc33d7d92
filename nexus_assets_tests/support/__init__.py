"""Helpers the tests share: import them from here (or a submodule), never from another test file.

A test module importing another couples them (one's fixtures and module-level state leak into the
other, and collecting one collects both); conftest.py holds the shared fixtures, this package the
plain helpers. This module stays light (stdlib; pytest imported where used, so scripts/ui_screenshots.py
can use `support.webserver` without the test extras), since conftest.py imports it for every run:

- `support.quality_data`: tables, Chroma builds and packages of sample partitions (quality gates, checks).
- `support.dagster_build`: one partition materialized through Dagster, as `nexus build` would.
- `support.webserver`: a dagster-webserver subprocess, its GraphQL API and its process group.
- `support.http_files`: a loopback HTTP server of static files with Range support and cut connections.
- `support.vkp_helpers`: published packages and their files for the distribution tests.
- `support.hardening_helpers`: the faultable aws-mode stack and builds of the hardening suite.
- `support.fault_proxy`: a fault-injecting HTTP proxy in front of moto.
- `support.fake_bedrock`: a loopback stand-in for Bedrock's Titan embeddings.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def unavailable(reason: str) -> None:
    """Skip a test whose machine lacks a service or tool; fail it in CI, whose machine must have it.

    `make test` installs Tesseract (as root) and this machine runs PostgreSQL: on CI (`CI` set, as every
    CI system does) a missing one is a broken environment, not a reason to pass quietly.
    """
    import pytest

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI is set: the CI machine must provide it)")
    pytest.skip(reason)


def make_aws_env(endpoint: str) -> dict[str, str]:
    """Environment of aws mode against the moto server, with a bucket and tables of its own."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "NEXUS_ENV": "aws",
        "NEXUS_S3_BUCKET": f"nexus-test-{suffix}",
        "NEXUS_DYNAMODB_TABLE": f"NexusAssetRecords-{suffix}",
        "NEXUS_JOBS_TABLE": f"ETLPipelineJobs-{suffix}",
        "NEXUS_AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing-key-id",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
        # moto evaluates a bucket policy's Deny statements without their conditions, so the bootstrap's
        # policy (deny unencrypted puts, plain HTTP) would refuse every object request; the policy has
        # its own test (test_hardening_security.py).
        "NEXUS_S3_BUCKET_POLICY": "off",
    }
