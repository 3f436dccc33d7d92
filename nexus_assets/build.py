"""A partition's build: one path for every way a run of `curriculum_build_job` starts.

`nexus build`, the upload sensors, the weekly schedule and the UI's launchpad all run the same job for
one partition (a `<subject>/<grade>` folder; the UI's asset graph runs the same assets as Dagster's
implicit `__ASSET_JOB`, recorded under the same job name). What surrounds a run lives here, once, over
Dagster's public API:

- **storage**: where PDFs are read and job records written, local files or S3 and DynamoDB, picked
  by the settings' deployment (the definitions pick their resources by the same value);
- **planning** (`plan`): which partitions hold PDFs, checked before anything is registered, and which
  are still current (the fingerprint fast path: an unchanged partition costs about a second and never
  starts Dagster);
- **running in process** (`run_partitions`, for the CLI, which has no daemon): runs of killed builds
  ended, partitions registered, one run per partition, then the catalog refreshed;
- **recording**: every run's job record comes from `run_summary`, the one reader of a run's
  materializations and failures, whether `run_partitions` writes it or the run status sensors do
  (runs the daemon launched).

The daemon refreshes the catalog by its automation condition (`defs/curriculum_catalog.py`).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from nexus_assets.lib.aws.storage import Storage, open_storage
from nexus_assets.lib.core.job_tracking import JobRecord, JobStatus, JobStore, now_iso
from nexus_assets.lib.core.layout import DataLayout, Partition, partition_label

if TYPE_CHECKING:  # imported where used: `nexus --help` and an up-to-date build stay light
    import dagster as dg

    from nexus_assets.cli_schemas import BuiltPartition
    from nexus_assets.settings import Settings

BUILD_JOB = "curriculum_build_job"
CATALOG_JOB = "curriculum_catalog_job"
CLI_TAG = "nexus/launched_by"  # runs of `run_partitions`: recorded here, so the run status sensors skip them
CATALOG_RACE_TAG = "nexus/catalog_race"  # set by vkp_package when a newer run's catalog entry refused ours


class BuildInterrupted(Exception):
    """Ctrl-C stopped a partition's run: it is recorded as failed, the partitions after it were not started
    and the catalog not refreshed. `done` are the partitions whose runs ended before it."""

    def __init__(self, partition: Partition, run_id: str, done: list[Partition]) -> None:
        super().__init__(f"{partition.label} interrupted")
        self.partition, self.run_id, self.done = partition, run_id, done


INTERRUPTS = ("KeyboardInterrupt", "DagsterExecutionInterruptedError")


def was_interrupted(instance: dg.DagsterInstance, run_id: str) -> bool:
    """The run ended on an interrupt (Ctrl-C): Dagster records it as a step or run failure whose error
    is the interrupt (execute_in_process does not re-raise it without raise_on_error)."""
    import dagster as dg

    kinds = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_CANCELED}
    for entry in instance.all_logs(run_id, of_type=kinds):
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        error = getattr(data, "error", None)
        while error is not None:
            if getattr(error, "cls_name", "") in INTERRUPTS:
                return True
            error = getattr(error, "cause", None)
    return False


class BuildRefused(Exception):
    """Nothing may be built as asked (no such partition, no PDFs): nothing was registered or written.

    `skipped` names what the scan passed over on the way (links, bad names, empty folders)."""

    def __init__(self, message: str, skipped: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.skipped = skipped or []


# --- storage --------------------------------------------------------------------------------------------------


def job_store(layout: DataLayout, settings: Settings) -> JobStore:
    return open_storage(layout, settings).job_store()


@contextmanager
def data_dir_env(layout: DataLayout) -> Iterator[None]:
    """Point the Dagster resources at `layout`: they read NEXUS_DATA_DIR when a run starts (the one
    setting read late, so this process can build several data directories in turn)."""
    previous = os.environ.get("NEXUS_DATA_DIR")
    os.environ["NEXUS_DATA_DIR"] = str(layout.root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("NEXUS_DATA_DIR", None)
        else:
            os.environ["NEXUS_DATA_DIR"] = previous


# --- planning -------------------------------------------------------------------------------------------------


@dataclass
class BuildPlan:
    """What a build will do: partitions to run, partitions still current, partitions skipped and why."""

    targets: list[Partition]
    current: list[Partition]
    fingerprints: dict[Partition, str]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    embedder_backend: str = "local"

    @property
    def embeds_locally(self) -> bool:
        """A partition to run has changed inputs (local mode) and the local model embeds its vectors.

        A forced build of unchanged partitions finds every vector in the cache: it needs no model.
        """
        if self.embedder_backend != "local" or not self.fingerprints:
            return False
        return any(part not in self.current for part in self.targets)


def _requested(
    storage: Storage, subject: str | None, grade: str | None, skipped: list[dict[str, Any]]
) -> list[Partition]:
    """The partitions asked for that hold PDFs, checked on the raw keys before anything is registered.

    An explicitly named partition (subject and grade) without PDFs is refused, naming the folder looked
    in and the nearest existing names; among discovered ones, an empty folder is skipped.
    """
    from nexus_assets.lib.core.layout import package_conflict
    from nexus_assets.lib.ingest.build_preflight import check_partitions, nearest, pdf_counts

    source = storage.raw_source()
    found, refused = source.discover(storage.publishes)
    skipped += [{"partition": None, "reason": message} for message in refused]
    raw_root = storage.raw_root_uri()
    keys = storage.raw_keys()
    if subject and grade:
        requested = [Partition(subject, grade)]
        counts = pdf_counts(keys)
        conflict = package_conflict(requested[0], [p for p, n in counts.items() if n], storage.publishes)
        if conflict:  # named explicitly is no reason to overwrite another partition's packages
            raise BuildRefused(f"{subject}/{grade}: {conflict}; nothing was registered or built")
    else:
        requested = [p for p in found if (not subject or p.subject == subject) and (not grade or p.grade == grade)]
    if not requested:
        existing = {p.subject for p in found} if subject else {p.grade for p in found}
        value = subject or grade or ""
        close = nearest(value, existing)
        what = "subject" if subject else "grade"
        hint = (
            f" (did you mean {', '.join(map(repr, close))}?)"
            if close
            else (f" (existing {what} folders: {', '.join(sorted(existing))})" if existing else "")
        )
        looked = f"{raw_root}/{subject or '*'}/{grade or '*'}/" if value else raw_root
        raise BuildRefused(
            f"nothing to build: no partition folder {looked} holds PDFs{hint}; run `nexus "
            "sample-data` or add PDFs as raw-curriculum/<subject>/<grade>/*.pdf"
        )
    checked = check_partitions(requested, pdf_counts(keys), raw_root, folders=found)
    if subject and grade and checked.refused:
        [message] = checked.refused.values()
        raise BuildRefused(f"{subject}/{grade}: {message}; nothing was registered or built")
    skipped += [{"partition": part.label, "reason": message} for part, message in checked.refused.items()]
    if not checked.buildable:
        raise BuildRefused(f"nothing to build: none of the matching partitions holds PDFs under {raw_root}")
    return checked.buildable


def plan(
    layout: DataLayout,
    settings: Settings,
    subject: str | None = None,
    grade: str | None = None,
    options: dict[str, Any] | None = None,
    force: bool = False,
) -> BuildPlan:
    """Decide what to build. Local mode compares each partition's input fingerprint with its last
    successful build; in aws mode the PDFs and outputs live in the bucket, so Dagster always decides."""
    from nexus_assets.lib.core.build_fingerprint import input_fingerprint, up_to_date

    skipped: list[dict[str, Any]] = []
    storage = open_storage(layout, settings)
    try:
        found = _requested(storage, subject, grade, skipped)
    except BuildRefused as exc:
        raise BuildRefused(str(exc), skipped) from None
    prints: dict[Partition, str] = {}
    unchanged: list[Partition] = []
    if storage.outputs_on_this_disk:
        prints = {part: input_fingerprint(layout, part, options, settings.environment) for part in found}
        unchanged = [part for part, fp in prints.items() if up_to_date(layout, part, fp)]
    current = [] if force else unchanged
    targets = sorted(p for p in found if p not in current)
    return BuildPlan(targets, sorted(current), prints, skipped, settings.embedder_backend)


def sync_local_catalog(layout: DataLayout, settings: Settings) -> str | None:
    """With nothing to build, still rebuild a deleted catalog.json from the packages and re-sign a stale one
    (publications do this as they run; aws mode's builds always reach the publication step).
    Returns what was done, or None; raises nothing a build should fail on (the warning is returned)."""
    storage = open_storage(layout, settings)
    if not storage.outputs_on_this_disk or not layout.vkp_dir.is_dir():
        return None
    from nexus_assets.lib.publish.signing import SigningError

    catalog = storage.package_store().catalog
    assert catalog is not None  # the local package store always has its catalog.json
    try:
        if catalog.sync(storage.signer()):
            return f"catalog {catalog.location()}: rebuilt or re-signed from the packages"
    except (SigningError, ValueError, OSError) as exc:
        return f"warning: the VKP catalog could not be refreshed: {exc}"
    return None


# --- what a run did -------------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    """A finished (or running) partition run as its materializations and failures tell it: the job
    table's record of it, and what the CLI shows besides."""

    record: JobRecord
    pages: int = 0
    vkp_version: str | None = None
    published: bool = False

    @property
    def status(self) -> JobStatus:
        return self.record.status

    def job_record(self, timestamp: str | None = None) -> JobRecord:
        """The record to write; `timestamp` is the sort key of the record written at the run's start."""
        record = replace(self.record, errors=list(self.record.errors))
        if timestamp:
            record.timestamp = timestamp
        return record


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds") if ts else None


# Dagster's retry bookkeeping around the step's real error ("Exceeded max_retries of 3").
_RETRY_WRAPPERS = ("RetryRequestedFromPolicy", "RetryRequested")


def _text(message: str) -> str:
    """A message without its leading `ClassName: `."""
    return re.sub(r"^[A-Za-z_]\w*: ", "", message, count=1)


def error_chain(error: object, limit: int = 600) -> str:
    """The error and its causes, outermost first (what the code raised, then what it wrapped), class names
    without their modules; Dagster's retry wrapper becomes a note on the first message."""
    messages: list[str] = []
    retried = ""
    while error is not None:
        lines = (getattr(error, "message", None) or str(error)).strip().splitlines()
        first = lines[0].strip() if lines else ""
        if getattr(error, "cls_name", "") in _RETRY_WRAPPERS:
            retried = first
        elif first:
            short = re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*: )", "", first)
            if not messages or _text(short) != _text(messages[-1]):  # skip a re-raise with the same text
                messages.append(short)
        error = getattr(error, "cause", None)
    if messages and retried:
        count = re.search(r"max_retries of (\d+)", retried)
        n = int(count[1]) if count else 0
        messages[0] += f" (after {n} step retr{'y' if n == 1 else 'ies'})" if count else f" ({retried})"
    return " <- ".join(messages)[:limit] or retried or "failed"


PARTITION_TAG = "dagster/partition"


def build_job_name(run: dg.DagsterRun | None) -> str:
    """The one job name of a partition build, however it was launched: the UI's asset graph starts
    Dagster's implicit `__ASSET_JOB` (by design, dagster#14820), the launchpad, sensors, schedules and the
    CLI `curriculum_build_job`; every nexus surface names them all `curriculum_build_job`."""
    if run is None or run.tags.get(PARTITION_TAG):
        return BUILD_JOB
    return run.job_name


def run_summary(instance: dg.DagsterInstance, run_id: str, finished: bool = True) -> RunSummary:
    """Everything the CLI, the job table and the sensors report of a run, read from the instance once.

    `finished=False` gives the `running` summary of a run that has just started.
    """
    import dagster as dg

    run_record = instance.get_run_record_by_id(run_id)
    run = run_record.dagster_run if run_record else None
    record = JobRecord(
        job_id=run_id,
        timestamp=_iso(run_record.create_timestamp.timestamp() if run_record else None) or now_iso(),
        job_type=build_job_name(run),
        partition=partition_label(run.tags.get(PARTITION_TAG, "")) if run else "",
        config=dict(run.run_config) if run else {},
    )
    summary = RunSummary(record)
    if not finished:
        return summary
    meta: dict[str, dict[str, Any]] = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.dagster_event.event_specific_data.materialization  # type: ignore[union-attr]
        meta[materialization.asset_key.path[-1]] = {
            k: getattr(v, "value", v) for k, v in materialization.metadata.items()
        }
    text, embedding, vkp = meta.get("pdf_text", {}), meta.get("chunk_embeddings", {}), meta.get("vkp_package", {})
    record.total_files = int(text.get("files", meta.get("raw_pdfs", {}).get("files", 0)))
    record.successful_files = int(text.get("files_ok", 0))
    record.failed_files = int(text.get("files_failed", 0))
    record.total_chunks = int(meta.get("text_chunks", {}).get("chunks", 0))
    record.total_embeddings = int(embedding.get("embeddings", 0))
    record.estimated_cost = float(embedding.get("estimated_cost_usd", 0.0))
    record.embedding_model = str(embedding.get("model_id", ""))
    record.input_tokens = int(embedding.get("input_tokens", 0))
    record.embedding_fallback = str(embedding.get("fallback_reason", "")) if embedding.get("fallback") else ""
    summary.pages = int(text.get("pages", 0))
    summary.vkp_version = vkp.get("version") or None
    summary.published = bool(vkp.get("published"))
    step_failures = [
        f"{entry.step_key}: {error_chain(entry.dagster_event.event_specific_data.error)}"  # type: ignore[union-attr]
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    ]
    record.errors = list(step_failures)
    if record.failed_files:
        record.errors.append(f"{record.failed_files} file(s) could not be extracted; see pdf_text's failed_files")
    if run is not None and run.tags.get(CATALOG_RACE_TAG):
        record.errors.append(
            f"vkp_package: {run.tags[CATALOG_RACE_TAG]} was published, but a racing run had already "
            "moved the catalog to a newer version (the conditional write refused ours)"
        )
    if run is None or run.status == dg.DagsterRunStatus.FAILURE or step_failures:
        record.status = "failed"
    else:
        record.status = "partial" if record.failed_files else "completed"
    if run_record and run_record.start_time and run_record.end_time:
        record.processing_time = round(run_record.end_time - run_record.start_time, 3)
    record.completed_at = now_iso()
    return summary


# --- running in process ---------------------------------------------------------------------------------------


class BuildObserver(Protocol):
    """What `run_partitions` tells as it goes (the CLI's progress display)."""

    def partition_started(self, label: str) -> None: ...

    def partition_finished(self, status: str, seconds: float) -> None: ...

    def phase(self, label: str) -> None: ...

    def line(self, text: str, level: int = ...) -> None: ...


@dataclass
class PartitionOutcome:
    partition: Partition
    summary: RunSummary
    recorded: bool

    def as_dict(self) -> BuiltPartition:
        s, r = self.summary, self.summary.record
        return {
            "partition": self.partition.label,
            "status": "failed" if r.status == "running" else r.status,  # a run's summary is read once it ended
            "files": r.total_files,
            "failed_files": r.failed_files,
            "pages": s.pages,
            "chunks": r.total_chunks,
            "vkp_version": s.vkp_version,
            "published": s.published,
            "run_id": r.job_id,
        }


@dataclass
class BuildOutcome:
    partitions: list[PartitionOutcome]
    catalog_refreshed: bool
    orphans: list[str]


def _put(jobs: JobStore, record: JobRecord, observer: BuildObserver) -> bool:
    """Record a run in the job table; an outage of the table is reported, and must not hide the build's result."""
    import logging

    from nexus_assets.lib.aws.aws_retry import AwsUnavailableError

    try:
        jobs.put(record)
        return True
    except AwsUnavailableError as exc:
        observer.line(f"error: job {record.job_id[:8]} ({record.status}) not recorded: {exc}", logging.ERROR)
        return False


def run_partitions(
    instance: dg.DagsterInstance,
    layout: DataLayout,
    settings: Settings,
    build: BuildPlan,
    observer: BuildObserver,
    logger: dg.LoggerDefinition,
    options: dict[str, Any] | None = None,
) -> BuildOutcome:
    """Run `build.targets` in this process, one run of the build job each, then refresh the catalog.

    The runs read `settings` (the command's) and `layout`'s data directory while they execute.

    Runs of earlier builds whose process was killed are ended first (their pool slots freed). Each run is
    recorded in the job table (`running`, then its final record) and, when it succeeded in local mode,
    its fingerprint, so the next unchanged build skips it.
    """
    import logging

    from nexus_assets.definitions import defs
    from nexus_assets.defs import settings as code_location
    from nexus_assets.defs.orphaned_runs import (
        JOB_TIMESTAMP_TAG,
        fail_orphaned_runs,
        free_slots_of_finished_runs,
        process_tags,
    )
    from nexus_assets.defs.partitions import key_of, register_partitions
    from nexus_assets.lib.core.build_fingerprint import forget_build, record_build

    jobs = job_store(layout, settings)
    orphans = []
    for orphan in fail_orphaned_runs(instance):
        orphans.append(orphan.run_id)
        observer.line(
            f"warning: run {orphan.run_id[:8]} of {orphan.partition or '?'}: {orphan.reason}", logging.WARNING
        )
        if orphan.job_timestamp:  # a partition build: close its `running` job record
            record = run_summary(instance, orphan.run_id).job_record(orphan.job_timestamp)
            record.errors.append(orphan.reason)
            _put(jobs, record, observer)
    register_partitions(instance, build.targets)
    job = defs.resolve_job_def(BUILD_JOB).with_logger_defs({"console": logger})
    # The stored run config names Dagster's console logger (a UI re-execution uses the real one); this
    # process puts `logger` in its place.
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    chunk_cfg = {k: v for k, v in (options or {}).items() if v is not None}
    if chunk_cfg:
        run_config["ops"] = {"text_chunks": {"config": chunk_cfg}}
    outcomes: list[PartitionOutcome] = []
    for part in build.targets:
        observer.partition_started(part.label)
        started_at = time.monotonic()
        run_id, started = str(uuid.uuid4()), now_iso()
        recorded = _put(jobs, JobRecord(run_id, started, BUILD_JOB, key_of(part), config=run_config), observer)
        if part in build.fingerprints:
            forget_build(layout, part)
        try:
            with data_dir_env(layout), code_location.using(settings):
                result = job.execute_in_process(
                    instance=instance,
                    partition_key=key_of(part),
                    run_config=run_config,
                    raise_on_error=False,
                    tags={CLI_TAG: "cli", JOB_TIMESTAMP_TAG: started, **process_tags()},
                    run_id=run_id,
                )
        finally:  # however the run ended (an interrupt included), it holds no pool slot any more
            free_slots_of_finished_runs(instance, [run_id])
        summary = run_summary(instance, run_id)
        if was_interrupted(instance, run_id):
            summary.record.errors = [f"interrupted (Ctrl-C) during {'; '.join(summary.record.errors) or 'the run'}"]
            _put(jobs, summary.job_record(started), observer)
            raise BuildInterrupted(part, run_id, [o.partition for o in outcomes])
        recorded = _put(jobs, summary.job_record(started), observer) and recorded
        observer.partition_finished(summary.status, time.monotonic() - started_at)
        if summary.status == "failed":
            observer.line(
                f"{part.label}: run {run_id[:8]} failed: {'; '.join(summary.record.errors) or 'see the run in the UI'}",
                logging.ERROR,
            )
        if result.success and part in build.fingerprints:
            record_build(layout, part, build.fingerprints[part], run_id)
        outcomes.append(PartitionOutcome(part, summary, recorded))
    observer.phase("catalog")
    # the catalog of partitions (processed/catalog.parquet) reflects these runs
    with data_dir_env(layout), code_location.using(settings):
        catalog = (
            defs.resolve_job_def(CATALOG_JOB)
            .with_logger_defs({"console": logger})
            .execute_in_process(instance=instance, raise_on_error=False, tags={CLI_TAG: "cli", **process_tags()})
        )
    return BuildOutcome(outcomes, bool(catalog.success), orphans)


def record_sensed_run(instance: dg.DagsterInstance, run_id: str, jobs: JobStore, finished: bool) -> JobRecord | None:
    """The run status sensors' duty: record a run the daemon launched (the UI, sensors, schedules).

    Runs of `run_partitions` carry CLI_TAG and are recorded there; None for them. A start seen after the
    run ended (the sensors tick apart) records the end: the job table never shows a finished run running.
    """
    run = instance.get_run_by_id(run_id)
    if run is not None and (run.tags.get(CLI_TAG) == "cli" or not run.tags.get(PARTITION_TAG)):
        return None  # the CLI's own runs, or not a partition build (the catalog's refresh)
    finished = finished or run is None or run.is_finished
    record = run_summary(instance, run_id, finished=finished).job_record()
    jobs.put(record)
    return record
