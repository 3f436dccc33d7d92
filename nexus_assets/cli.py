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


def _partition_filter(args: argparse.Namespace):
    """`--subject`/`--grade` as a predicate on partitions; raises LayoutError for an invalid slug."""
    subject = validate_slug(args.subject, "subject") if args.subject else None
    grade = validate_slug(args.grade, "grade") if args.grade else None
    return lambda p: (not subject or p.subject == subject) and (not grade or p.grade == grade)


def _current_partitions(layout: DataLayout, found: list[Partition],
                        options: dict[str, Any]) -> tuple[dict[Partition, str], list[Partition]]:
    """(fingerprint of every partition to build, those whose last build is still current).

    Local mode only: in aws mode the PDFs and outputs live in the bucket, so Dagster always decides.
    """
    from nexus_assets.lib.build_fingerprint import input_fingerprint, up_to_date

    if _aws_settings() is not None:
        return {}, []
    prints = {part: input_fingerprint(layout, part, options) for part in found}
    return prints, [part for part, fp in prints.items() if up_to_date(layout, part, fp)]


def _will_embed_locally(found: list[Partition], prints: dict[Partition, str], unchanged: list[Partition]) -> bool:
    """True when a partition to build has changed inputs (local mode) and the local model embeds.

    A forced build of unchanged partitions finds every vector in the cache: it needs no model.
    """
    from nexus_assets.lib.aws_config import setting

    if (setting("embedder_backend") or "local") != "local" or not prints:
        return False
    return any(part not in unchanged for part in found)


def cmd_build(args: argparse.Namespace) -> int:
    from nexus_assets.instance import ensure_dagster_home

    layout = _layout(args)
    try:
        wanted = _partition_filter(args)
    except LayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found, refused = _raw_source(layout).discover()
    for message in refused:
        print(f"skipped: {message}", file=sys.stderr)
    if args.subject and args.grade:
        found = [Partition(args.subject, args.grade)]
    found = [p for p in found if wanted(p)]
    prints, unchanged = _current_partitions(
        layout, found, {"chunk_size": args.chunk_size, "chunk_overlap": args.chunk_overlap})
    current = [] if args.force else unchanged
    for part in current:
        print(f"== {part.label}: up to date (same PDFs, code and settings as its last successful build; "
              "--force rebuilds)", flush=True)
    if found and len(current) == len(found):
        return 0

    if _will_embed_locally(found, prints, unchanged):
        from nexus_assets.lib.embedding import prefetch_local_model

        prefetch_local_model()  # overlaps torch's import with Dagster's start and the first steps
    home = ensure_dagster_home()
    import dagster as dg

    from nexus_assets.definitions import defs
    from nexus_assets.defs.job_history import CLI_TAG, finished_record
    from nexus_assets.defs.orphaned_runs import JOB_TIMESTAMP_TAG, fail_orphaned_runs, process_tags
    from nexus_assets.defs.partitions import curriculum_partitions_def, key_of, partition_of, register_partitions
    from nexus_assets.lib.build_fingerprint import forget_build, record_build
    from nexus_assets.lib.job_tracking import JobRecord, now_iso

    with dg.DagsterInstance.get() as instance:
        for orphan in fail_orphaned_runs(instance):
            print(f"warning: run {orphan.run_id[:8]} of {orphan.partition or '?'}: {orphan.reason}", file=sys.stderr)
            if orphan.job_timestamp:  # a partition build: close its `running` job record
                record = finished_record(instance, orphan.run_id, timestamp=orphan.job_timestamp)
                record.errors.append(orphan.reason)
                _job_store(layout).put(record)
        register_partitions(instance, found)
        all_keys = curriculum_partitions_def.get_partition_keys(dynamic_partitions_store=instance)
        keys = [partition_of(k) for k in all_keys]
        targets = sorted(p for p in keys if wanted(p) and p not in current)
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
        unrecorded = []
        for part in targets:
            print(f"== {part.label}", flush=True)
            run_id = str(uuid.uuid4())
            started = now_iso()
            if not _put_job(jobs, JobRecord(run_id, started, job.name, str(key_of(part)), config=run_config)):
                unrecorded.append(part.label)
            if part in prints:
                forget_build(layout, part)
            with _data_dir_env(layout):
                result = job.execute_in_process(
                    instance=instance, partition_key=key_of(part), run_config=run_config, raise_on_error=False,
                    tags={CLI_TAG: "cli", JOB_TIMESTAMP_TAG: started, **process_tags()}, run_id=run_id,
                )
            record = finished_record(instance, run_id, timestamp=started)
            if not _put_job(jobs, record) and part.label not in unrecorded:
                unrecorded.append(part.label)
            if record.status == "failed":
                print(f"{part.label}: run {run_id[:8]} failed: {'; '.join(record.errors) or 'see the run in the UI'}",
                      file=sys.stderr, flush=True)
            if result.success and part in prints:
                record_build(layout, part, prints[part], run_id)
            row = {"partition": part.label, "status": record.status, **_summarise(result), "run_id": run_id[:8]}
            rows.append(row)
        with _data_dir_env(layout):  # the catalog of partitions (processed/catalog.parquet) reflects these runs
            catalog = defs.resolve_job_def("curriculum_catalog_job").execute_in_process(
                instance=instance, raise_on_error=False, tags={CLI_TAG: "cli", **process_tags()})
        if not catalog.success:
            print("warning: the curriculum catalog could not be refreshed; see its run in the UI", file=sys.stderr)
    _print_table(rows)
    failed = [r["partition"] for r in rows if r["status"] == "failed"]
    if failed:
        print(f"{len(failed)} partition run(s) failed: {', '.join(failed)}; open the run in the UI (make ui) "
              "for the step that failed and its error", file=sys.stderr)
        return 1
    if unrecorded:
        print(f"error: the job table could not record the runs of {', '.join(unrecorded)} (see above)",
              file=sys.stderr)
        return 1
    return 0


def _put_job(jobs: Any, record: Any) -> bool:
    """Record a run in the job table; an outage of the table is reported, and must not hide the build's result."""
    from nexus_assets.lib.aws_retry import AwsUnavailableError

    try:
        jobs.put(record)
        return True
    except AwsUnavailableError as exc:
        print(f"error: job {record.job_id[:8]} ({record.status}) not recorded: {exc}", file=sys.stderr, flush=True)
        return False


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
    from nexus_assets.lib.bedrock_embedding import query_embedder
    from nexus_assets.lib.chroma_store import current_build, read_build_info
    from nexus_assets.lib.embedding import EmbedderUnavailableError
    from nexus_assets.lib.search import NoCollectionError, chroma_root, search

    try:
        partition = Partition(args.subject, args.grade)
    except LayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    build = current_build(chroma_root(_layout(args), partition))
    built_with = read_build_info(build) if build else {}  # queries are embedded by the collection's model
    try:
        hits = search(_layout(args), partition, args.query,
                      query_embedder(built_with.get("model_id"), built_with.get("dims")), k=args.k)
    except (NoCollectionError, EmbedderUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for rank, hit in enumerate(hits, 1):
        if args.json:
            print(json.dumps({"rank": rank, **hit.as_dict()}, ensure_ascii=False))
        else:
            pages = f"p.{hit.page}" + (f"-{hit.page_end}" if hit.page_end != hit.page else "")
            snippet = " ".join(hit.text.split())[:200]
            print(f"{rank}. [{hit.score:.3f}] {hit.file} {pages}{' (OCR)' if hit.ocr else ''}\n   {snippet}")
    return 0


def _trusted_key(args: argparse.Namespace):
    """The public key packages are checked against; None (with the reason printed) when there is none."""
    from nexus_assets.lib.signing import SigningError, trusted_public_key

    try:
        key, origin = trusted_public_key(args.public_key, _layout(args).root)
    except SigningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None, None
    if key is not None and origin.startswith("DEVELOPMENT"):
        print(f"note: trusting the {origin} (demo only; schools pass --public-key)", file=sys.stderr)
    return key, origin


def cmd_report(args: argparse.Namespace) -> int:
    """The quality gates of built partitions (the asset checks' rules on the stored values)."""
    from nexus_assets.lib.embedding import default_embedder
    from nexus_assets.lib.quality_report import NotBuiltError, format_verdict, load_stored, partition_verdicts

    layout = _layout(args)
    try:
        parts = [p for p in layout.discover_partitions()[0] if _partition_filter(args)(p)]
    except LayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not parts:
        print(f"error: no partition matches under {layout.raw_root}", file=sys.stderr)
        return 2
    embedder = default_embedder()
    failed, missing = [], []
    for part in parts:
        print(f"== {part.label}")
        try:
            stored = load_stored(layout, part)
        except NotBuiltError as exc:
            print(f"  not built: {exc}")
            missing.append(part.label)
            continue
        for name, asset, verdict in partition_verdicts(stored, part, embedder, golden=args.golden or "",
                                                       min_recall=args.min_recall, chunk_size=args.chunk_size):
            print("\n".join(format_verdict(name, asset, verdict, details=not args.brief)))
            if not verdict.passed and verdict.severity == "error":
                failed.append(f"{part.label}:{name}")
    print(f"\n{len(parts)} partition(s): {len(failed)} blocking failure(s)"
          + (f" ({', '.join(failed)})" if failed else "") + (f"; not built: {', '.join(missing)}" if missing else ""))
    return 1 if failed or missing else 0


def cmd_vkp_verify(args: argparse.Namespace) -> int:
    from nexus_assets.lib.vkp import verify_vkp
    from nexus_assets.lib.vkp_delta import verify_delta

    key, _ = _trusted_key(args)
    if key is None and not args.allow_unsigned:
        print("error: no trusted public key: pass --public-key FILE or set NEXUS_VKP_PUBLIC_KEY (or --allow-unsigned "
              "to check checksums only)", file=sys.stderr)
        return 2
    status = 0
    for file in args.files:
        verify = verify_delta if file.endswith(".vkpd") else verify_vkp
        report = verify(Path(file), key, allow_unsigned=args.allow_unsigned)
        if report.ok:
            manifest = report.manifest or {}
            print(f"OK {file}: {manifest['subject']}/{manifest['grade']} v{manifest['version']}, "
                  f"{manifest['counts'].get('chunks')} chunks, {len(manifest['members'])} members verified, "
                  f"signature {report.signature}")
        else:
            status = 1
            print(f"FAILED {file}:", file=sys.stderr)
            for problem in report.problems:
                print(f"  - {problem}", file=sys.stderr)
    return status


def _embedding_label(record: Any) -> str:
    """The model of a run's vectors, marked when it was the fallback for an unavailable primary."""
    return record.embedding_model + (" (fallback)" if record.embedding_fallback else "")


def cmd_vkp_pull(args: argparse.Namespace) -> int:
    from nexus_assets.lib.vkp_pull import PullError, Source, pull

    key, _ = _trusted_key(args)
    if key is None:
        print("error: no trusted public key: pass --public-key FILE (the publisher's .pub) or set "
              "NEXUS_VKP_PUBLIC_KEY", file=sys.stderr)
        return 2
    try:
        outcomes = pull(Source(args.catalog), Path(args.dest), key, partitions=args.partition or None)
    except PullError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_table([o.as_dict() for o in outcomes])
    failed = [o for o in outcomes if o.via == "failed"]
    return 1 if failed else 0


def cmd_keys_generate(args: argparse.Namespace) -> int:
    from nexus_assets.lib.signing import SigningError, generate_keypair

    try:
        private_path, public_path, key_id = generate_keypair(Path(args.out), args.name)
    except SigningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"private key {private_path} (mode 600: keep it out of the repository; point NEXUS_SIGNING_KEY_FILE at it "
          f"or store it in Secrets Manager)\npublic key  {public_path} (give it to schools: nexus vkp pull "
          f"--public-key)\nkey id      {key_id}")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from nexus_assets.lib.job_tracking import summarize

    records = _job_store(_layout(args)).recent(args.days)
    rows = [{"started": r.timestamp[:19], "job_id": r.job_id[:8], "partition": r.partition, "status": r.status,
             "files": f"{r.successful_files}/{r.total_files}", "chunks": r.total_chunks,
             "seconds": round(r.processing_time, 1), "embedding": _embedding_label(r), "tokens": r.input_tokens,
             "cost_usd": f"{r.estimated_cost:.6f}",
             "errors": "; ".join(r.errors)[:80]} for r in records]
    if not rows:
        print(f"no jobs in the last {args.days} days")
        return 0
    _print_table(rows)
    summary = summarize(records)
    print(f"\n{summary['runs']} run(s) in {args.days} days: "
          + ", ".join(f"{k} {v}" for k, v in sorted(summary["by_status"].items()))
          + f"; {summary['total_chunks']} chunks, {summary['total_embeddings']} embeddings, "
          f"{summary['input_tokens']} billed tokens, {summary['fallbacks']} local fallback(s), "
          f"{summary['processing_time_s']} s, estimated cost ${summary['estimated_cost_usd']:.6f}")
    return 0


def cmd_cache_prune(args: argparse.Namespace) -> int:
    from nexus_assets.lib.caches import prune_bucket_cache, prune_data_cache

    layout = _layout(args)
    try:
        print(f"local {layout.cache_dir}: "
              f"{prune_data_cache(layout, args.older_than_days, everything=args.all).summary()}")
        settings = _aws_settings()
        if settings:
            store = settings.object_store()
            print(f"bucket {store.uri('processed/_cache/')}: "
                  f"{prune_bucket_cache(store, args.older_than_days, everything=args.all).summary()}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
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


def cmd_deploy_render(args: argparse.Namespace) -> int:
    from nexus_assets.instance import project_root
    from nexus_assets.lib.deploy_profiles import DeployConfigError, instance_yaml, render_instance

    try:
        config = render_instance(project_root() / "deploy", args.launcher, args.max_concurrent_runs)
    except DeployConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(instance_yaml(config), end="")
    return 0


def cmd_deploy_apply_pools(args: argparse.Namespace) -> int:
    """Write deploy/pools.yaml's limits into the instance at DAGSTER_HOME (idempotent)."""
    import dagster as dg

    from nexus_assets.instance import project_root
    from nexus_assets.lib.deploy_profiles import DeployConfigError, pool_limits

    try:
        limits = pool_limits(project_root() / "deploy")
    except DeployConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with dg.DagsterInstance.get() as instance:
        for pool, limit in sorted(limits.items()):
            instance.event_log_storage.set_concurrency_slots(pool, limit)
            print(f"pool {pool}: {limit}")
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
    p.add_argument("--force", action="store_true",
                   help="rebuild partitions whose PDFs, code and settings are unchanged since their last build")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("search", help="semantic search in one partition's collection")
    p.add_argument("query")
    p.add_argument("--subject", required=True)
    p.add_argument("--grade", required=True)
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--json", action="store_true", help="one JSON object per hit")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("report", help="the quality gates' verdicts and figures of built partitions")
    p.add_argument("--subject")
    p.add_argument("--grade")
    p.add_argument("--golden", help="golden questions JSONL (default: $NEXUS_GOLDEN_QUESTIONS)")
    p.add_argument("--min-recall", type=float, help="recall@5 threshold (default: $NEXUS_GOLDEN_MIN_RECALL or 0.7)")
    p.add_argument("--chunk-size", type=int, default=800, help="the chunk size the partitions were built with")
    p.add_argument("--brief", action="store_true", help="verdicts and figures only, no offending rows")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("jobs", help="recent pipeline runs from the job table, with a cost summary")
    p.add_argument("--days", type=int, default=7)
    p.set_defaults(func=cmd_jobs)

    cache = sub.add_parser("cache", help="build cache tools").add_subparsers(dest="cache_command", required=True)
    p = cache.add_parser("prune", help="drop cache entries no partition's tables reference and unused for a while "
                         "(local directory, and the bucket's mirror in aws mode)")
    p.add_argument("--older-than-days", type=float, default=7.0,
                   help="keep anything used within this many days (protects builds running now; default 7)")
    p.add_argument("--all", action="store_true", help="empty the caches (the next build redoes everything)")
    p.set_defaults(func=cmd_cache_prune)

    aws = sub.add_parser("aws", help="aws mode tools").add_subparsers(dest="aws_command", required=True)
    p = aws.add_parser("bootstrap", help="create the bucket and tables (idempotent)")
    p.set_defaults(func=cmd_aws_bootstrap)

    deploy = sub.add_parser("deploy", help="production profile tools").add_subparsers(dest="deploy_command",
                                                                                     required=True)
    p = deploy.add_parser("render-instance", help="print deploy/dagster.yaml with a run launcher (default, ecs)")
    p.add_argument("--launcher", default="default")
    p.add_argument("--max-concurrent-runs", type=int)
    p.set_defaults(func=cmd_deploy_render)
    p = deploy.add_parser("apply-pools", help="set deploy/pools.yaml's pool limits on the DAGSTER_HOME instance")
    p.set_defaults(func=cmd_deploy_apply_pools)

    vkp = sub.add_parser("vkp", help="knowledge package tools").add_subparsers(dest="vkp_command", required=True)
    p = vkp.add_parser("verify", help="check a package's signature, manifest, checksums and tables (.vkp or .vkpd); "
                       "non-zero on any mismatch")
    p.add_argument("files", nargs="+")
    p.add_argument("--public-key", help="trusted public key (PEM file); default $NEXUS_VKP_PUBLIC_KEY, else the data "
                   "directory's development key")
    p.add_argument("--allow-unsigned", action="store_true", help="accept packages without a signature")
    p.set_defaults(func=cmd_vkp_verify)
    p = vkp.add_parser("pull", help="school server: install the catalog's latest versions (deltas when possible), "
                       "verified, atomically")
    p.add_argument("--catalog", required=True, help="catalog.json: http(s):// URL, s3:// URI or path")
    p.add_argument("--dest", required=True, help="directory of the installed collections")
    p.add_argument("--public-key", help="the publisher's public key (PEM file); default $NEXUS_VKP_PUBLIC_KEY")
    p.add_argument("--partition", action="append", help="only this subject/grade (repeatable)")
    p.set_defaults(func=cmd_vkp_pull)

    keys = sub.add_parser("keys", help="signing keys").add_subparsers(dest="keys_command", required=True)
    p = keys.add_parser("generate", help="write an Ed25519 key pair for signing packages")
    p.add_argument("--out", default=".", help="directory for <name>.key and <name>.pub (default: .)")
    p.add_argument("--name", default="nexus-signing")
    p.set_defaults(func=cmd_keys_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    from nexus_assets.lib.aws_retry import AwsUnavailableError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AwsUnavailableError as exc:  # S3 or DynamoDB down beyond the retries: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
