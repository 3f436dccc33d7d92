"""`nexus`: the command line of the platform (sample data, builds, search, package checks)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nexus_assets.lib.layout import DataLayout, LayoutError, Partition, validate_slug


def _layout(args: argparse.Namespace) -> DataLayout:
    return DataLayout.from_env(args.data_dir)


def _aws_settings():
    from nexus_assets.lib.aws_config import AwsSettings, deployment

    return AwsSettings.from_env() if deployment() == "aws" else None


def _raw_source(layout: DataLayout):
    from nexus_assets.lib.raw_sources import LocalRawSource, S3RawSource

    settings = _aws_settings()
    return S3RawSource(settings.object_store(), layout) if settings else LocalRawSource(layout)


def _job_store(layout: DataLayout):
    from nexus_assets.lib.job_tracking import SqliteJobStore

    settings = _aws_settings()
    return settings.job_store() if settings else SqliteJobStore(layout.jobs_db)


@contextmanager
def _data_dir_env(layout: DataLayout) -> Iterator[None]:
    """Point the Dagster resources (which read NEXUS_DATA_DIR when a run starts) at `layout`."""
    previous = os.environ.get("NEXUS_DATA_DIR")
    os.environ["NEXUS_DATA_DIR"] = str(layout.root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("NEXUS_DATA_DIR", None)
        else:
            os.environ["NEXUS_DATA_DIR"] = previous


def cmd_sample_data(args: argparse.Namespace) -> int:
    from nexus_assets.lib.sample_data import BROKEN_SAMPLE, generate_sample_corpus

    layout = _layout(args)
    paths = generate_sample_corpus(layout.raw_root)
    settings = _aws_settings()
    store = settings.object_store() if settings else None
    for path in paths:
        key = path.relative_to(layout.root).as_posix()
        if store:
            store.upload_file(key, path, storage_class="STANDARD")
            print(f"uploaded {store.uri(key)}")
        else:
            print(f"wrote {key}")
    print(f"{len(paths)} sample PDFs under {layout.raw_root} "
          f"({'/'.join(BROKEN_SAMPLE)} is broken on purpose: it must be reported, not crash the build)")
    return 0


def _metadata_value(value: Any) -> Any:
    return getattr(value, "value", value)


def _summarise(result: Any) -> dict[str, Any]:
    """Figures of one partition run, read from its materialization events."""
    row: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        meta = {k: _metadata_value(v) for k, v in event.materialization.metadata.items()}
        row[event.asset_key.path[-1]] = meta
    text = row.get("pdf_text", {})
    chunks = row.get("text_chunks", {})
    vkp = row.get("vkp_package", {})
    return {
        "files": text.get("files", 0),
        "failed": text.get("files_failed", 0),
        "pages": text.get("pages", 0),
        "chunks": chunks.get("chunks", 0),
        "vkp": (f"v{vkp['version']}" + ("" if vkp.get("published") else " (unchanged)")) if vkp.get("version")
        else "-",
    }


def cmd_build(args: argparse.Namespace) -> int:
    from nexus_assets.instance import ensure_dagster_home

    home = ensure_dagster_home()
    import dagster as dg

    from nexus_assets.definitions import defs
    from nexus_assets.defs.job_history import CLI_TAG, finished_record
    from nexus_assets.defs.partitions import curriculum_partitions_def, key_of, partition_of, register_partitions
    from nexus_assets.lib.job_tracking import JobRecord, now_iso

    layout = _layout(args)
    try:
        wanted_subject = validate_slug(args.subject, "subject") if args.subject else None
        wanted_grade = validate_slug(args.grade, "grade") if args.grade else None
    except LayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found, refused = _raw_source(layout).discover()
    for message in refused:
        print(f"skipped: {message}", file=sys.stderr)
    if wanted_subject and wanted_grade:
        found = [Partition(wanted_subject, wanted_grade)]
    with dg.DagsterInstance.get() as instance:
        register_partitions(instance, found)
        all_keys = curriculum_partitions_def.get_partition_keys(dynamic_partitions_store=instance)
        keys = [partition_of(k) for k in all_keys]
        targets = sorted(p for p in keys if (not wanted_subject or p.subject == wanted_subject)
                         and (not wanted_grade or p.grade == wanted_grade))
        if not targets:
            print(f"error: no partition matches under {layout.raw_root}; run `nexus sample-data` or add PDFs "
                  "as raw-curriculum/<subject>/<grade>/*.pdf", file=sys.stderr)
            return 2
        print(f"building {len(targets)} partition(s) from {layout.root} (Dagster instance: {home})", flush=True)
        job = defs.resolve_job_def("curriculum_build_job")
        run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
        if args.chunk_size or args.chunk_overlap:
            chunk_cfg = {k: v for k, v in (("chunk_size", args.chunk_size), ("chunk_overlap", args.chunk_overlap)) if v}
            run_config["ops"] = {"text_chunks": {"config": chunk_cfg}}
        jobs = _job_store(layout)
        rows = []
        for part in targets:
            print(f"== {part.label}", flush=True)
            run_id = str(uuid.uuid4())
            started = now_iso()
            jobs.put(JobRecord(run_id, started, job.name, str(key_of(part)), config=run_config))
            with _data_dir_env(layout):
                result = job.execute_in_process(
                    instance=instance, partition_key=key_of(part), run_config=run_config, raise_on_error=False,
                    tags={CLI_TAG: "cli"}, run_id=run_id,
                )
            record = finished_record(instance, run_id, timestamp=started)
            jobs.put(record)
            row = {"partition": part.label, "status": record.status, **_summarise(result), "run_id": run_id[:8]}
            rows.append(row)
    _print_table(rows)
    failed = [r["partition"] for r in rows if r["status"] == "failed"]
    if failed:
        print(f"{len(failed)} partition run(s) failed: {', '.join(failed)}; open the run in the UI (make ui) "
              "for the step that failed and its error", file=sys.stderr)
        return 1
    return 0


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print()
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def cmd_search(args: argparse.Namespace) -> int:
    from nexus_assets.lib.embedding import default_embedder
    from nexus_assets.lib.search import NoCollectionError, search

    try:
        partition = Partition(args.subject, args.grade)
    except LayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        hits = search(_layout(args), partition, args.query, default_embedder(), k=args.k)
    except NoCollectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for rank, hit in enumerate(hits, 1):
        if args.json:
            print(json.dumps({"rank": rank, **hit.as_dict()}, ensure_ascii=False))
        else:
            pages = f"p.{hit.page}" + (f"-{hit.page_end}" if hit.page_end != hit.page else "")
            snippet = " ".join(hit.text.split())[:200]
            print(f"{rank}. [{hit.score:.3f}] {hit.file} {pages}\n   {snippet}")
    return 0


def cmd_vkp_verify(args: argparse.Namespace) -> int:
    from nexus_assets.lib.vkp import verify_vkp

    status = 0
    for file in args.files:
        report = verify_vkp(Path(file))
        if report.ok:
            manifest = report.manifest or {}
            print(f"OK {file}: {manifest['subject']}/{manifest['grade']} v{manifest['version']}, "
                  f"{manifest['counts'].get('chunks')} chunks, {len(manifest['members'])} members verified")
        else:
            status = 1
            print(f"FAILED {file}:", file=sys.stderr)
            for problem in report.problems:
                print(f"  - {problem}", file=sys.stderr)
    return status


def cmd_jobs(args: argparse.Namespace) -> int:
    from nexus_assets.lib.job_tracking import summarize

    records = _job_store(_layout(args)).recent(args.days)
    rows = [{"started": r.timestamp[:19], "job_id": r.job_id[:8], "partition": r.partition, "status": r.status,
             "files": f"{r.successful_files}/{r.total_files}", "chunks": r.total_chunks,
             "seconds": round(r.processing_time, 1), "cost_usd": f"{r.estimated_cost:.6f}",
             "errors": "; ".join(r.errors)[:80]} for r in records]
    if not rows:
        print(f"no jobs in the last {args.days} days")
        return 0
    _print_table(rows)
    summary = summarize(records)
    print(f"\n{summary['runs']} run(s) in {args.days} days: "
          + ", ".join(f"{k} {v}" for k, v in sorted(summary["by_status"].items()))
          + f"; {summary['total_chunks']} chunks, {summary['total_embeddings']} embeddings, "
          f"{summary['processing_time_s']} s, estimated cost ${summary['estimated_cost_usd']:.6f}")
    return 0


def cmd_aws_bootstrap(args: argparse.Namespace) -> int:
    from nexus_assets.lib.aws_bootstrap import bootstrap
    from nexus_assets.lib.aws_config import AwsSettings

    try:
        settings = AwsSettings.from_env()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for target, state in bootstrap(settings).items():
        print(f"{state:8} {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nexus", description=__doc__)
    parser.add_argument("--data-dir", help="data directory (default: $NEXUS_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample-data", help="write the generated sample PDFs under raw-curriculum/")
    p.set_defaults(func=cmd_sample_data)

    p = sub.add_parser("build", help="materialize every (or the chosen) partition through the Dagster instance")
    p.add_argument("--subject")
    p.add_argument("--grade")
    p.add_argument("--chunk-size", type=int)
    p.add_argument("--chunk-overlap", type=int)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("search", help="semantic search in one partition's collection")
    p.add_argument("query")
    p.add_argument("--subject", required=True)
    p.add_argument("--grade", required=True)
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--json", action="store_true", help="one JSON object per hit")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("jobs", help="recent pipeline runs from the job table, with a cost summary")
    p.add_argument("--days", type=int, default=7)
    p.set_defaults(func=cmd_jobs)

    aws = sub.add_parser("aws", help="aws mode tools").add_subparsers(dest="aws_command", required=True)
    p = aws.add_parser("bootstrap", help="create the bucket and tables (idempotent)")
    p.set_defaults(func=cmd_aws_bootstrap)

    vkp = sub.add_parser("vkp", help="knowledge package tools").add_subparsers(dest="vkp_command", required=True)
    p = vkp.add_parser("verify", help="check a package's manifest, checksums and tables; non-zero on any mismatch")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_vkp_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
