"""The pipeline's job history: one record per run, from start to end, failures included.

Records follow the seed system's `ETLPipelineJobs` table (partition key `job_id`, sort key
`timestamp`). The DynamoDB store serves aws mode; a SQLite file under the data directory serves the
local default, with the same fields, so `nexus jobs` reads either.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

from nexus_assets.lib.aws.aws_retry import with_outage_errors
from nexus_assets.lib.core.layout import partition_label
from nexus_assets.lib.core.sqlite_wal import connect_wal

JobStatus = Literal["running", "completed", "failed", "partial"]
JOBS_TABLE = "ETLPipelineJobs"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class JobRecord:
    job_id: str
    timestamp: str  # start time, ISO 8601 UTC (the sort key)
    job_type: str
    partition: str
    status: JobStatus = "running"
    config: dict[str, Any] = field(default_factory=dict)
    total_files: int = 0
    successful_files: int = 0
    failed_files: int = 0
    total_chunks: int = 0
    total_embeddings: int = 0
    processing_time: float = 0.0
    estimated_cost: float = 0.0  # USD for the embedding tokens a service billed (0 for the local model)
    embedding_model: str = ""  # the model that made every vector of the partition
    input_tokens: int = 0  # tokens billed by the embedding service
    embedding_fallback: str = ""  # why the whole partition was embedded by the fallback model, or ""
    errors: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)
    completed_at: str | None = None


class JobStore(Protocol):
    def put(self, record: JobRecord) -> None:
        """Write `record`. A `running` record only creates: the run status sensors tick independently,
        so the start of a short run may be seen after its end, and must not overwrite it."""
        ...

    def recent(self, days: int) -> list[JobRecord]: ...


def _since(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="milliseconds")


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def _record(data: dict[str, Any]) -> JobRecord:
    known = JobRecord.__dataclass_fields__
    record = JobRecord(**{k: v for k, v in data.items() if k in known})
    record.processing_time = float(record.processing_time)
    record.estimated_cost = float(record.estimated_cost)
    record.partition = partition_label(record.partition)  # records made before `<subject>/<grade>` keys
    return record


@dataclass
class DynamoJobStore:
    """`ETLPipelineJobs` in DynamoDB (a boto3 DynamoDB *resource*)."""

    resource: Any
    table: str = JOBS_TABLE

    @with_outage_errors("dynamodb", "PutItem")
    def put(self, record: JobRecord) -> None:
        item = {k: v for k, v in _to_dynamo(asdict(record)).items() if v is not None}
        if record.status != "running":
            self.resource.Table(self.table).put_item(Item=item)
            return
        from botocore.exceptions import ClientError

        try:
            self.resource.Table(self.table).put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    @with_outage_errors("dynamodb", "Scan")
    def recent(self, days: int) -> list[JobRecord]:
        from boto3.dynamodb.conditions import Attr

        table = self.resource.Table(self.table)
        kwargs: dict[str, Any] = {"FilterExpression": Attr("timestamp").gte(_since(days))}
        items: list[dict[str, Any]] = []
        while True:
            page = table.scan(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted((_record(_from_dynamo(i)) for i in items), key=lambda r: r.timestamp)


@dataclass
class SqliteJobStore:
    """The same records in a SQLite file (local mode); safe for concurrent runs (WAL, upserts)."""

    path: Path

    def _connect(self) -> sqlite3.Connection:
        conn = connect_wal(self.path, busy_ms=30_000)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT, timestamp TEXT, body TEXT, PRIMARY KEY (job_id, timestamp))"
        )
        return conn

    def put(self, record: JobRecord) -> None:
        verb = "INSERT OR IGNORE" if record.status == "running" else "INSERT OR REPLACE"
        with self._connect() as conn:
            conn.execute(
                f"{verb} INTO jobs VALUES (?, ?, ?)", (record.job_id, record.timestamp, json.dumps(asdict(record)))
            )

    def recent(self, days: int) -> list[JobRecord]:
        if not self.path.exists():  # reading never creates the file (nor its directory)
            return []
        with self._connect() as conn:
            rows = conn.execute("SELECT body FROM jobs WHERE timestamp >= ? ORDER BY timestamp", (_since(days),))
            return [_record(json.loads(body)) for (body,) in rows]


def summarize(records: list[JobRecord]) -> dict[str, Any]:
    """Totals for `nexus jobs`: runs by status, chunks, embeddings, billed tokens, fallbacks, time and cost."""
    return {
        "runs": len(records),
        "by_status": dict(Counter(r.status for r in records)),
        "total_chunks": sum(r.total_chunks for r in records),
        "total_embeddings": sum(r.total_embeddings for r in records),
        "input_tokens": sum(r.input_tokens for r in records),
        "fallbacks": sum(1 for r in records if r.embedding_fallback),
        "processing_time_s": float(round(sum(r.processing_time for r in records), 1)),  # 0.0, never int 0
        "estimated_cost_usd": float(round(sum(r.estimated_cost for r in records), 6)),
    }
