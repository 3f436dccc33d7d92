"""Injected faults in aws mode (issue 10): throttling and 5xx bursts, long outages, racing writers.

The faults are real HTTP answers from `fault_proxy.FaultProxy`, between the boto3 clients of a real
`nexus build` (subprocess, aws mode) and moto; the tests read what reached the wire from the proxy and
what the run left from moto directly. One bucket and one partition (uji/kelas_1, one-page PDFs) serve
the whole module: a first build under five bursts (`burst_build`), then outages and races. No test
depends on another having run: each starts from a `settled` partition (last run completed, catalog.json
at the pointer's version; one repair build otherwise), adds its own PDF when it needs a new version,
and states the versions it expects relative to the one it started from.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nexus_assets.lib.aws.aws_config import AwsSettings
from nexus_assets.lib.aws.aws_retry import AwsUnavailableError, RetrySettings
from nexus_assets.lib.aws.dynamo_records import DynamoRecordStore
from nexus_assets.lib.distribution.vkp_catalog import CATALOG_KEY
from nexus_assets.settings import Settings
from nexus_assets_tests.support.fault_proxy import FaultProxy, Request
from nexus_assets_tests.support.hardening_helpers import (
    GRADE,
    MAX_ATTEMPTS,
    PARTITION_KEY,
    STEP_RETRIES,
    SUBJECT,
    build,
    catalog_item,
    faultable_aws,
    last_job,
    record_item,
    upload_pdf,
)

pytestmark = pytest.mark.slow  # every test here runs the fault proxy, most run whole builds

VKP = f"vkp/{SUBJECT}_{GRADE}_v{{}}.vkp"


@dataclass
class Stack:
    proxy: FaultProxy
    settings: AwsSettings  # straight at moto: what the tests read is never faulted
    env: dict[str, str]  # the builds' environment: endpoint = the proxy
    data_dir: Path


@pytest.fixture(scope="module")
def stack(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("faults")
    with faultable_aws(moto_endpoint, tmp / "dagster_home") as (proxy, settings, env):
        yield Stack(proxy, settings, env, tmp / "node")


@pytest.fixture(autouse=True)
def _clear_faults(stack: Stack) -> Iterator[None]:
    yield
    stack.proxy.clear()


def _exists(settings: AwsSettings, key: str) -> bool:
    return settings.object_store().exists(key)


def _next_minor(version: str) -> str:
    """The version a build that adds a PDF publishes (a new file is a minor change)."""
    major, minor, _ = (int(x) for x in version.split("."))
    return f"{major}.{minor + 1}.0"


def _served_catalog(settings: AwsSettings) -> dict[str, Any]:
    return json.loads(settings.object_store().get_bytes(CATALOG_KEY))["partitions"][f"{SUBJECT}/{GRADE}"]


def _catalog_files_exist(settings: AwsSettings, entry: dict[str, Any]) -> bool:
    """Every package the served catalog names is in the bucket with the size and sha256 it states."""
    for version in entry["versions"]:
        for ref in filter(None, (version["full"], version.get("delta"))):
            head = settings.object_store().head(f"vkp/{ref['name']}")
            if head is None or head["ContentLength"] != ref["size"] or head["Metadata"]["sha256"] != ref["sha256"]:
                return False
    return True


# --- the retry policy on the wire (no build) -----------------------------------------------------------------


@pytest.mark.reliability("fault", "retry policy of aws-mode clients, read off the wire; an S3 outage on one call")
def test_every_client_sends_the_configured_retry_policy_and_an_outage_names_service_and_operation(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, reliability
) -> None:
    monkeypatch.delenv("NEXUS_AWS_MAX_ATTEMPTS", raising=False)
    default = RetrySettings.from_env({})
    assert (default.mode, default.max_attempts, default.connect_timeout, default.read_timeout) == (
        "standard",
        8,
        10.0,
        60.0,
    )
    through_proxy = AwsSettings(
        bucket=stack.settings.bucket,
        records_table=stack.settings.records_table,
        jobs_table=stack.settings.jobs_table,
        endpoint_url=stack.proxy.endpoint_url,
    )
    config = through_proxy.client("dynamodb").meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 8}
    assert (config.connect_timeout, config.read_timeout) == (10.0, 60.0)
    stack.proxy.reset_log()
    through_proxy.object_store().exists("nothing/here")
    DynamoRecordStore(through_proxy.client("dynamodb"), through_proxy.records_table).version("raw_pdfs", "nothing")
    through_proxy.job_store().recent(days=1)
    wire = {(r.service, r.operation, r.attempt, r.sdk_max) for r in stack.proxy.seen()}
    assert wire == {("s3", "HeadObject", 1, 8), ("dynamodb", "GetItem", 1, 8), ("dynamodb", "Scan", 1, 8)}, wire

    monkeypatch.setenv("NEXUS_AWS_MAX_ATTEMPTS", "3")
    short = AwsSettings(
        bucket=stack.settings.bucket, endpoint_url=stack.proxy.endpoint_url, retry=Settings.from_env().retry
    )
    rule = stack.proxy.inject("s3", "slowdown", match=lambda r: r.method == "PUT")
    with pytest.raises(AwsUnavailableError) as caught:
        short.object_store().put_bytes("processed/probe.bin", b"x")
    message = str(caught.value)
    assert rule.injected == 3 and [(r.attempt, r.sdk_max) for r in rule.requests] == [(1, 3), (2, 3), (3, 3)]
    assert message.startswith("S3 outage: PutObject on s3://") and "processed/probe.bin" in message
    assert "after 3 attempts with backoff (503 SlowDown" in message and "rerun when it recovers" in message
    reliability(
        f"default: {default.describe()}, connect {default.connect_timeout:.0f} s / read "
        f"{default.read_timeout:.0f} s; S3, DynamoDB and job-table requests carried max=8 on the wire; with "
        f"NEXUS_AWS_MAX_ATTEMPTS=3 a put under a lasting SlowDown made "
        f"{rule.injected} attempts (attempt numbers {[r.attempt for r in rule.requests]} on the wire), then "
        f'raised: "{message[:110]}…"'
    )


# --- bursts: retried, the build completes --------------------------------------------------------------------

BURSTS = {
    # name: (service, fault, what the rule answers)
    "s3-slowdown": ("s3", "slowdown", "the first upload under processed/"),
    "s3-internal": ("s3", "internal", "the upload of the package vkp/*.vkp"),
    "dynamodb-throughput": ("dynamodb", "throughput", "the first PutItem on the records table"),
    "dynamodb-throttling": ("dynamodb", "throttling", "the first Query (the catalog, while publishing)"),
    "dynamodb-internal": ("dynamodb", "internal", "the first PutItem on the job table (the CLI's record)"),
}
BURST = 2  # consecutive refusals of one call: under MAX_ATTEMPTS, so botocore alone absorbs them


def _burst_match(name: str, settings: AwsSettings):
    return {
        "s3-slowdown": lambda r: r.method == "PUT" and r.key.startswith("processed/"),
        "s3-internal": lambda r: r.method == "PUT" and r.key.startswith("vkp/") and r.key.endswith(".vkp"),
        "dynamodb-throughput": lambda r: r.operation == "PutItem" and r.table == settings.records_table,
        "dynamodb-throttling": lambda r: r.operation == "Query",
        "dynamodb-internal": lambda r: r.operation == "PutItem" and r.table == settings.jobs_table,
    }[name]


@pytest.fixture(scope="module")
def burst_build(stack: Stack):
    """The partition's first build, with all five bursts armed at once (each hits a different call)."""
    stack.proxy.reset_log()
    rules = {
        name: stack.proxy.inject(service, fault, count=BURST, match=_burst_match(name, stack.settings))
        for name, (service, fault, _) in BURSTS.items()
    }
    proc = build(stack.env, stack.data_dir, check=False)
    stack.proxy.clear()
    # What the burst tests read, taken now: later tests reset the proxy's log.
    retries = {name: stack.proxy.next_try(rule.requests[-1]) if rule.requests else None for name, rule in rules.items()}
    return proc, rules, retries, last_job(stack.settings), catalog_item(stack.settings).get("latest", {}).get("S")


@pytest.fixture
def settled(stack: Stack, burst_build) -> str:
    """The partition published and at rest, whatever ran before: the version the catalog points at.

    At rest: the last run completed (nothing uploaded is left unbuilt) and catalog.json serves the
    pointer's version. A test that failed half-way (or a racing test's leftovers) is repaired by one build.
    """
    settings = stack.settings
    pointer = catalog_item(settings).get("latest", {}).get("S")
    if last_job(settings).status != "completed" or pointer is None or _served_catalog(settings)["latest"] != pointer:
        build(stack.env, stack.data_dir)
        pointer = catalog_item(settings)["latest"]["S"]
    assert _served_catalog(settings)["latest"] == pointer and _catalog_files_exist(settings, _served_catalog(settings))
    return pointer


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("s3-slowdown", marks=pytest.mark.reliability("fault", "S3 503 SlowDown burst during a build")),
        pytest.param(
            "s3-internal",
            marks=pytest.mark.reliability("fault", "S3 500 InternalError burst while the package uploads"),
        ),
        pytest.param(
            "dynamodb-throughput",
            marks=pytest.mark.reliability(
                "fault", "DynamoDB 400 ProvisionedThroughputExceededException burst on a record write"
            ),
        ),
        pytest.param(
            "dynamodb-throttling",
            marks=pytest.mark.reliability("fault", "DynamoDB 400 ThrottlingException burst on the catalog query"),
        ),
        pytest.param(
            "dynamodb-internal",
            marks=pytest.mark.reliability("fault", "DynamoDB 500 InternalServerError burst on the job record"),
        ),
    ],
)
def test_a_burst_is_retried_with_backoff_and_the_build_completes(
    name: str, stack: Stack, burst_build, reliability
) -> None:
    proc, rules, retries, record, published = burst_build
    rule = rules[name]
    assert rule.injected == BURST, f"{name}: the proxy answered {rule.injected} requests, expected {BURST}"
    retry = retries[name]
    assert retry is not None and not retry.injected and retry.status == 200, retry
    attempts = [r.attempt for r in rule.requests] + [retry.attempt]
    assert attempts == list(range(1, BURST + 2)), f"the same call retried by botocore: attempts {attempts}"
    waited = retry.at - rule.requests[0].at
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert record.status == "completed" and not record.errors, record
    assert published == "1.0.0" and _exists(stack.settings, VKP.format("1.0.0"))
    first = rule.requests[0]
    what = f"{first.operation} " + (first.key if first.service == "s3" else f"table {first.table}")
    reliability(
        f"proxy answered {rule.injected} × {first.status} {first.injected} to {what}; botocore retried the "
        f"same call (attempts {attempts}, the last succeeded {waited:.2f} s after the first); run completed, "
        f"job record {record.status}, v1.0.0 published"
    )


# --- long outages: the run fails cleanly, nothing published is lost, a later run completes -------------------


@pytest.mark.reliability(
    "fault", "S3 outage: every PutObject answered 503 SlowDown until cleared, during a build with a new PDF"
)
def test_a_long_s3_outage_fails_the_run_with_the_reason_and_a_later_run_completes(
    stack: Stack, settled: str, reliability
) -> None:
    settings = stack.settings
    start, new = settled, _next_minor(settled)
    before = settings.object_store().head(VKP.format(start))
    upload_pdf(settings, "jaringan", unique=True)
    rule = stack.proxy.inject("s3", "slowdown", match=lambda r: r.method == "PUT")
    failed = build(stack.env, stack.data_dir, check=False)
    stack.proxy.clear()
    record = last_job(settings)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert record.status == "failed" and record.completed_at, record
    reason = " ".join(record.errors)
    assert "S3 outage: PutObject on s3://" in reason and f"still failed after {MAX_ATTEMPTS} attempts" in reason, reason
    assert "503 SlowDown" in reason and "rerun when it recovers" in reason
    assert f"failed: {record.errors[0][:60]}" in failed.stderr, "the CLI prints the recorded reason"
    assert f"(after {STEP_RETRIES} step retr" in reason, "the step's own retries are part of the reason"
    assert max(r.attempt for r in rule.requests) == MAX_ATTEMPTS
    assert rule.injected >= MAX_ATTEMPTS * (STEP_RETRIES + 1), "botocore's attempts, for each try of the step"
    # Nothing already published is lost: the same package object, the catalog and pointer untouched.
    after = settings.object_store().head(VKP.format(start))
    assert after is not None and after["ETag"] == before["ETag"]
    assert catalog_item(settings)["latest"]["S"] == start and _served_catalog(settings)["latest"] == start
    assert _catalog_files_exist(settings, _served_catalog(settings))
    recovered = build(stack.env, stack.data_dir)
    assert last_job(settings).status == "completed"
    assert catalog_item(settings)["latest"]["S"] == new and _served_catalog(settings)["latest"] == new
    assert f"v{new}" in recovered.stdout
    reliability(
        f"{rule.injected} PUTs refused ({MAX_ATTEMPTS} attempts per call, step tried "
        f'{STEP_RETRIES + 1}×); run failed, exit 1, job record failed: "{record.errors[0][:150]}…"; '
        f"v{start}, the catalog pointer and catalog.json unchanged; after clearing, the next run completed "
        f"and published v{new}"
    )


@pytest.mark.reliability(
    "fault",
    "DynamoDB throttling beyond the retries: every request to the records table "
    "answered ProvisionedThroughputExceededException until cleared",
)
def test_dynamodb_throttling_beyond_the_retries_fails_the_run_with_the_reason_and_a_later_run_completes(
    stack: Stack, settled: str, reliability
) -> None:
    settings = stack.settings
    before = settled
    table = settings.records_table
    rule = stack.proxy.inject("dynamodb", "throughput", match=lambda r: r.table == table)
    failed = build(stack.env, stack.data_dir, check=False)
    stack.proxy.clear()
    record = last_job(settings)
    assert failed.returncode == 1 and record.status == "failed", failed.stdout + failed.stderr
    reason = " ".join(record.errors)
    assert record.errors[0].startswith("raw_pdfs: "), record.errors
    assert f"DynamoDB outage: GetItem on table {table} still failed after {MAX_ATTEMPTS} attempts" in reason, reason
    assert "ProvisionedThroughputExceededException" in reason
    assert rule.injected >= MAX_ATTEMPTS * (STEP_RETRIES + 1)
    assert catalog_item(settings)["latest"]["S"] == before
    recovered = build(stack.env, stack.data_dir)
    assert last_job(settings).status == "completed" and "(unchanged)" in recovered.stdout
    reliability(
        f"{rule.injected} requests refused; run failed at raw_pdfs, job record failed: "
        f'"{record.errors[0][:140]}…"; catalog still v{before}; after clearing, the next run completed '
        "(content unchanged, nothing republished)"
    )


@pytest.mark.reliability(
    "fault",
    "S3 outage in the middle of a publication: catalog.json cannot be written after "
    "the new package and the DynamoDB pointer",
)
def test_an_outage_between_the_catalog_pointer_and_catalog_json_loses_nothing_and_is_repaired(
    stack: Stack, settled: str, reliability
) -> None:
    settings = stack.settings
    start, new = settled, _next_minor(settled)
    upload_pdf(settings, "basis_data", unique=True)
    served_before = _served_catalog(settings)["latest"]
    rule = stack.proxy.inject("s3", "slowdown", match=lambda r: r.method == "PUT" and r.key == CATALOG_KEY)
    failed = build(stack.env, stack.data_dir, check=False)
    stack.proxy.clear()
    record = last_job(settings)
    assert failed.returncode == 1 and record.status == "failed", failed.stdout + failed.stderr
    assert any(
        e.startswith("vkp_package: ") and f"PutObject on s3://{settings.bucket}/{CATALOG_KEY}" in e
        for e in record.errors
    ), record.errors
    # The pointer moved to the new package, which is in the bucket; catalog.json still names the previous
    # version, whose files are all there: a school pulling now gets a complete, older release.
    pointer = catalog_item(settings)["latest"]["S"]
    assert pointer == new and _exists(settings, VKP.format(new))
    stale = _served_catalog(settings)
    assert stale["latest"] == served_before == start and _catalog_files_exist(settings, stale)
    assert rule.injected >= MAX_ATTEMPTS * (STEP_RETRIES + 1), "the step's retry tried to repair catalog.json too"
    recovered = build(stack.env, stack.data_dir)
    assert last_job(settings).status == "completed" and "(unchanged)" in recovered.stdout
    repaired = _served_catalog(settings)
    assert repaired["latest"] == new and _catalog_files_exist(settings, repaired)
    reliability(
        f"run failed, job record failed ({record.errors[0][:90]}…); the DynamoDB pointer was at v{pointer} "
        f"with its package in the bucket while catalog.json still served v{stale['latest']} (all its files "
        f"present); the next run (nothing new to build) rewrote catalog.json to v{new}"
    )


# --- racing writers: conditional-check failures are reported, not swallowed ----------------------------------


@pytest.mark.reliability(
    "fault", "DynamoDB conditional-check failure: a racing run writes the raw_pdfs record first, during a build"
)
def test_a_racing_run_s_newer_record_fails_the_run_at_once_and_names_both_runs(
    stack: Stack, settled: str, reliability
) -> None:
    settings = stack.settings
    upload_pdf(settings, "keamanan", unique=True)  # left unbuilt: the next `settled` builds it
    racer = f"racing-run-{uuid.uuid4().hex[:8]}"
    direct = DynamoRecordStore(settings.client("dynamodb"), settings.records_table)

    def race(request: Request) -> None:  # just before our PutItem reaches moto, a newer run's lands
        item = request.item()
        direct.client.put_item(
            TableName=settings.records_table,
            Item={**item, "version": {"N": str(int(item["version"]["N"]) + 1)}, "writer": {"S": racer}},
        )

    def ours(r: Request) -> bool:
        return (
            r.operation == "PutItem"
            and r.table == settings.records_table
            and r.item().get("pk", {}).get("S") == "raw_pdfs"
        )

    stack.proxy.reset_log()
    stack.proxy.before(ours, race)
    failed = build(stack.env, stack.data_dir, check=False)
    record = last_job(settings)
    assert failed.returncode == 1 and record.status == "failed", failed.stdout + failed.stderr
    reason = next(e for e in record.errors if e.startswith("raw_pdfs: "))
    assert f"refused stale write of raw_pdfs [{PARTITION_KEY}] by {record.job_id}" in reason, reason
    assert f"written by {racer} (a newer run)" in reason
    puts = stack.proxy.seen(ours)
    assert len(puts) == 1, f"a stale write is not retried: {len(puts)} PutItem requests"
    stored = record_item(settings, "raw_pdfs")
    assert stored["writer"]["S"] == racer, "the newer run's record was kept"
    reliability(
        f"the racer's record landed first; our conditional PutItem was refused once (no retry of the "
        f'step), run failed, job record failed: "{reason[:160]}…"; the racer\'s record kept'
    )


@pytest.mark.reliability(
    "fault",
    "DynamoDB conditional-check failure on the catalog pointer: a racing run points "
    "the catalog at a newer version while this run publishes",
)
def test_a_racing_catalog_update_is_reported_and_the_pointer_never_moves_back(
    stack: Stack, settled: str, reliability
) -> None:
    settings = stack.settings
    ours = _next_minor(settled)
    major, minor, _ = ours.split(".")
    newer = f"{major}.{minor}.1"  # the racer's: newer than what this run publishes
    upload_pdf(settings, "pemrograman", unique=True)
    intercepted: list[dict[str, Any]] = []

    def race(request: Request) -> None:
        item = request.item()
        intercepted.append(item)
        entry = json.loads(item["entry"]["S"])
        entry["latest"] = newer
        settings.client("dynamodb").put_item(
            TableName=settings.records_table,
            Item={
                **item,
                "entry": {"S": json.dumps(entry)},
                "latest": {"S": newer},
                "rank": {"N": str(int(item["rank"]["N"]) + 1)},
            },
        )

    stack.proxy.before(lambda r: r.operation == "PutItem" and r.item().get("pk", {}).get("S") == "vkp_catalog", race)
    try:
        proc = build(stack.env, stack.data_dir)  # this run is newer than the racer's record: it builds and publishes
        record = last_job(settings)
        assert record.status == "completed", record
        assert any(f"v{ours} was published, but a racing run had already moved the catalog" in e for e in record.errors)
        warning = f"v{ours} published but the catalog already points at a newer version"
        assert warning in proc.stderr, proc.stderr[-2000:]
        assert catalog_item(settings)["latest"]["S"] == newer, "the pointer never moves backwards"
        assert _exists(settings, VKP.format(ours))
    finally:
        stack.proxy.clear()
        if intercepted:  # the racer's version exists nowhere: point the catalog back at what was really published
            settings.client("dynamodb").put_item(TableName=settings.records_table, Item=intercepted[-1])
    reliability(
        f"run completed; v{ours} published, but the conditional write of the pointer was refused: a WARNING "
        f'in the run\'s log, run tag nexus/catalog_race=v{ours}, job record note "{record.errors[-1][:80]}…"; '
        f"the pointer stayed at the racer's v{newer}"
    )
