"""The `--json` documents of `nexus`: one typed model per schema, and the JSON Schema published from them.

Each document is a TypedDict named after its schema (`nexus.<command>/1`); docs/cli.md says what each
field means and `docs/cli-schemas.json` is the JSON Schema generated from these models
(`python -m nexus_assets.cli_schemas > docs/cli-schemas.json`; a test checks it is current and that
real documents of the commands validate against it). New fields may appear without a version change
(`additionalProperties` stays open); renaming, removing or retyping one bumps the version.

Plain typing only here: pydantic (which Dagster ships) is imported to render the schema, not when a
command runs.
"""

from __future__ import annotations

import json
import sys
from typing import (
    Any,
    Literal,
    NotRequired,  # pydantic needs its TypedDict on Python < 3.12
)

from typing_extensions import TypedDict

SCHEMA_VERSION = 1
Figure = int | float | str | bool | None


class Document(TypedDict):
    schema: NotRequired[str]  # nexus.<command>/<version>: set by `emit` (required in the published schema)
    ok: bool  # the command succeeded (exit code 0)


class ErrorDocument(Document):
    """A command refused or failed before it could report (exit 1, 2 or 130)."""

    error: str
    exit_code: int


class SampleFile(TypedDict):
    key: str
    uri: str


class SampleData(Document):
    raw_root: str
    files: list[SampleFile]
    broken: str


class Skipped(TypedDict):
    partition: str | None
    reason: str


class BuiltPartition(TypedDict):
    partition: str  # <subject>/<grade>
    status: Literal["completed", "partial", "failed", "up to date"]
    files: int | None
    failed_files: int | None
    pages: int | None
    chunks: int | None
    vkp_version: str | None
    published: bool
    run_id: str | None


class Build(Document):
    data_dir: str
    dagster_home: str | None
    partitions: list[BuiltPartition]
    skipped: list[Skipped]
    catalog_refreshed: bool


class Hit(TypedDict):
    rank: int
    file: str
    page: int
    page_end: int
    score: float
    text: str
    chunk_id: str
    dense_rank: int | None
    lexical_rank: int | None
    ocr: bool


class Search(Document):
    query: str
    partition: str
    k: int
    model_id: str | None
    release: str | None  # with --installed: the installed release directory searched
    hits: list[Hit]


class Check(TypedDict):
    name: str
    asset: str
    verdict: Literal["PASS", "WARN", "FAIL", "N/A"]
    passed: bool
    severity: Literal["error", "warn"]
    applicable: bool
    summary: str
    figures: dict[str, Figure]


class ReportedPartition(TypedDict):
    partition: str
    built: bool
    error: str | None
    checks: list[Check]


class Report(Document):
    partitions: list[ReportedPartition]
    blocking_failures: list[str]
    not_built: list[str]


class Job(TypedDict):
    job_id: str
    timestamp: str
    job_type: str
    partition: str
    status: Literal["running", "completed", "partial", "failed"]
    total_files: int
    successful_files: int
    failed_files: int
    total_chunks: int
    total_embeddings: int
    processing_time: float
    estimated_cost: float
    embedding_model: str
    embedding_fallback: str
    input_tokens: int
    errors: list[str]
    completed_at: str | None


class JobsSummary(TypedDict):
    runs: int
    by_status: dict[str, int]
    total_chunks: int
    total_embeddings: int
    input_tokens: int
    fallbacks: int
    processing_time_s: float
    estimated_cost_usd: float


class Jobs(Document):
    days: int
    jobs: list[Job]
    summary: JobsSummary


class VerifiedPackage(TypedDict):
    file: str
    ok: bool
    kind: Literal["vkp", "vkpd"] | None
    subject: str | None
    grade: str | None
    version: str | None
    chunks: int | None
    members: int
    signature: Literal["valid", "invalid", "unsigned", "unchecked"]
    problems: list[str]


class VkpVerify(Document):
    trusted_key: str | None
    packages: list[VerifiedPackage]


PulledPartition = TypedDict(
    "PulledPartition",
    {
        "partition": str,
        "from": str | None,  # a Python keyword: hence the functional form
        "to": str | None,
        "via": str,  # up to date, delta, deltas (N), full, failed
        "downloaded_bytes": int,
        "problems": list[str],
    },
)


class VkpPull(Document):
    catalog: str
    dest: str
    trusted_key: str
    partitions: list[PulledPartition]


class VkpCatalog(Document):
    location: str
    partitions: list[str]
    signed_by: str
    key_id: str
    expires: str


class KeysGenerate(Document):
    private_key: str
    public_key: str
    key_id: str


class PrunedCache(TypedDict):
    location: str
    blobs_removed: int
    blob_bytes_removed: int
    blobs_kept: int
    vectors_removed: int
    vectors_kept: int
    bytes_before: int
    bytes_after: int
    spans_removed: int


class CachePrune(Document):
    local: PrunedCache | None
    bucket: PrunedCache | None


class BootstrappedResource(TypedDict):
    target: str
    state: str


class AwsBootstrap(Document):
    resources: list[BootstrappedResource]


class DeployRenderInstance(Document):
    instance: dict[str, Any]


class DeployApplyPools(Document):
    pools: dict[str, int]


MODELS: dict[str, type] = {
    "sample-data": SampleData,
    "build": Build,
    "search": Search,
    "report": Report,
    "jobs": Jobs,
    "vkp.verify": VkpVerify,
    "vkp.pull": VkpPull,
    "vkp.catalog": VkpCatalog,
    "keys.generate": KeysGenerate,
    "cache.prune": CachePrune,
    "aws.bootstrap": AwsBootstrap,
    "deploy.render-instance": DeployRenderInstance,
    "deploy.apply-pools": DeployApplyPools,
}


def schema_name(command: str) -> str:
    return f"nexus.{command}/{SCHEMA_VERSION}"


def json_schemas() -> dict[str, Any]:
    """One JSON Schema document: each command's document, and the error document, under `$defs`-free
    top-level keys named by schema (`nexus.build/1`, ..., `error`)."""
    from pydantic import TypeAdapter

    out: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "nexus --json documents",
        "description": "Generated from nexus_assets/cli_schemas.py; field meanings in docs/cli.md.",
        "documents": {},
    }
    for command, model in MODELS.items():
        schema = TypeAdapter(model).json_schema()
        schema["properties"]["schema"] = {"const": schema_name(command), "title": "Schema", "type": "string"}
        schema["required"] = ["schema", *schema["required"]]
        out["documents"][schema_name(command)] = schema
    error = TypeAdapter(ErrorDocument).json_schema()
    error["properties"]["ok"] = {"const": False, "title": "Ok", "type": "boolean"}
    error["properties"]["schema"] = {"pattern": r"^nexus\.[a-z.-]+/\d+$", "title": "Schema", "type": "string"}
    error["required"] = ["schema", *error["required"]]
    out["documents"]["error"] = error
    return out


if __name__ == "__main__":
    json.dump(json_schemas(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
