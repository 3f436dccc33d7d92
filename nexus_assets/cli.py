"""`nexus`: the command line of the platform (sample data, builds, search, quality reports, packages).

A thin click layer over nexus_assets.lib and the Dagster definitions. Conventions every command keeps
(docs/cli.md): results go to stdout, messages and progress to stderr; `--json` replaces the text result
with one JSON document whose `schema` field names it (`nexus.<command>/1`); `--data-dir` and `--json`
are accepted before or after the command name; exit 0 is success, 1 a failure of the work itself
(a failed run, a bad package), 2 a refused invocation (bad option, nothing to build, no trusted key).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar, cast

import click

from nexus_assets import cli_schemas as schemas
from nexus_assets.build import job_store
from nexus_assets.lib.core.escaping import json_text, shown, terminal
from nexus_assets.lib.core.layout import SLUG_RULE, DataLayout, LayoutError, Partition, normalized_slug, validate_slug
from nexus_assets.settings import Settings

if TYPE_CHECKING:
    from nexus_assets.cli_progress import Mode

F = TypeVar("F", bound=Callable[..., Any])


# --- settings, output and errors ---------------------------------------------------------------------------


@dataclass
class Options:
    """The options every command shares, wherever they were typed (before or after the command name),
    and the platform's settings, read from the environment once per command."""

    data_dir: str | None = None
    json: bool = False
    quiet: bool = False
    verbose: bool = False
    command: str = ""
    _env: Settings | None = None

    @property
    def env(self) -> Settings:
        if self._env is None:
            try:
                self._env = Settings.from_env()
            except ValueError as exc:  # a bad NEXUS_* value: named in the message
                raise CommandError(f"bad setting: {exc}", code=2) from None
        return self._env

    @property
    def layout(self) -> DataLayout:
        return DataLayout.from_env(self.data_dir or self.env.data_dir or "data")


class CommandError(Exception):
    """A refusal or failure reported as one `error:` line (and, with --json, an error document)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def settings() -> Options:
    return click.get_current_context().ensure_object(Options)


def env() -> Settings:
    """The platform's settings (`nexus_assets.settings`), read once for this command."""
    return settings().env


def say(text: str = "") -> None:
    """A line of the text result: stdout, or stderr under --json (stdout then holds the document only).

    Every line the CLI prints (say, warn, note) goes through `escaping.terminal`: search snippets, names in
    tables and reasons quoting uploads show control, bidirectional and tag characters as escapes."""
    print(terminal(text), file=sys.stderr if settings().json else sys.stdout, flush=True)


def warn(text: str) -> None:
    print(terminal(text), file=sys.stderr, flush=True)


def note(text: str) -> None:
    """A note about the work, not its result (what is built from where, what is up to date): stderr, and
    nothing under -q."""
    if not settings().quiet:
        warn(text)


def _jsonable(value: Any) -> Any:
    """numpy scalars, paths and the like in a JSON document."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def emit(doc: schemas.Document) -> None:
    """The command's JSON document on stdout (only under --json), tagged with its schema.

    `doc` is the command's typed model (`nexus_assets.cli_schemas`, e.g. `schemas.Jobs(...)`), whose JSON
    Schema docs/cli-schemas.json publishes; typed as such so mypy refuses a dict literal with undeclared keys."""
    if settings().json:
        document = {"schema": schemas.schema_name(settings().command), **doc}
        # Names and page text stay readable (ensure_ascii off), hidden characters as \\u escapes (same value).
        print(json_text(json.dumps(document, ensure_ascii=False, indent=2, default=_jsonable)), flush=True)


def _store(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value not in (None, False):  # a value typed after the command overrides one typed before it
            setattr(ctx.ensure_object(Options), field, value)

    return callback


def common_options(f: F) -> F:
    """--data-dir and --json: accepted on the group and on every command (one Options object)."""
    f = click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=_store("json"),
        help="Print one JSON document on stdout instead of text (schemas: docs/cli.md).",
    )(f)
    f = click.option(
        "--data-dir",
        type=CliPath(file_okay=False),
        expose_value=False,
        callback=_store("data_dir"),
        help="Data directory (default: $NEXUS_DATA_DIR or ./data).",
    )(f)
    return f


def progress_options(f: F) -> F:
    """--quiet and --verbose of the commands that show progress (build, vkp pull)."""
    f = click.option(
        "-v",
        "--verbose",
        is_flag=True,
        expose_value=False,
        callback=_store("verbose"),
        help="Also show every step's messages under the progress bars.",
    )(f)
    f = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_store("quiet"),
        help="No progress: only warnings, errors and the result.",
    )(f)
    return f


def reporting(name: str) -> Callable[[F], F]:
    """Run a command body returning an exit code; a CommandError becomes `error: ...` on stderr (and an
    error document under --json), an AWS outage one line instead of a traceback."""

    def decorate(body: F) -> F:
        @functools.wraps(body)
        def run(*args: Any, **kwargs: Any) -> int:
            from nexus_assets.lib.aws.aws_retry import AwsUnavailableError

            ctx = click.get_current_context()
            current = ctx.ensure_object(Options)
            current.command = name
            if current.quiet and current.verbose:
                raise click.UsageError("-q/--quiet and -v/--verbose exclude each other", ctx)
            try:
                _ = current.env  # every NEXUS_* value checked before any work, whether the command reads it or not
                code = int(body(*args, **kwargs) or 0)
            except CommandError as exc:
                warn(f"error: {exc}")
                emit(schemas.ErrorDocument(ok=False, error=str(exc), exit_code=exc.code))
                code = exc.code
            except AwsUnavailableError as exc:  # S3 or DynamoDB down beyond the retries: one clear line
                warn(f"error: {exc}")
                emit(schemas.ErrorDocument(ok=False, error=str(exc), exit_code=1))
                code = 1
            if code:
                ctx.exit(code)
            return code

        return common_options(run)  # type: ignore[return-value]

    return decorate


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    cells = [{c: shown(row.get(c, "")) for c in columns} for row in rows]  # widths of what is printed
    widths = {c: max(len(c), *(len(r[c]) for r in cells)) for c in columns}
    say()
    say("  ".join(c.ljust(widths[c]) for c in columns))
    say("  ".join("-" * widths[c] for c in columns))
    for row in cells:
        say("  ".join(row[c].ljust(widths[c]) for c in columns))


class CliPath(click.Path):
    """`click.Path` that refuses what cannot be a path (`input_files.path_problem`: empty, a NUL byte, over
    PATH_MAX or NAME_MAX) as a usage error, exit 2, with the value shown short; never a traceback from the
    first system call that meets it."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            from nexus_assets.lib.core.input_files import path_problem

            problem = path_problem(value)
            if problem:
                self.fail(f"{shown(value, 80)!r} {problem}", param, ctx)
        return super().convert(value, param, ctx)


def _catalog_option(_ctx: click.Context, param: click.Parameter, value: str) -> str:
    """--catalog: an http(s)/s3 URL (no NUL, no whitespace, at most 8 KB) or a path (`CliPath`'s rules)."""
    if "://" in value:
        if len(value) > 8192 or any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in value):
            raise click.BadParameter(f"{shown(value, 80)!r} is not a usable URL (control characters, spaces or > 8 KB)")
        return value
    return cast(str, CliPath(dir_okay=False).convert(value, param, None))


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan and inf (`nan < 0` is False, so a range alone lets nan through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if number != number or number in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


KEY_NAME_RE = r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,200}\Z"


def _key_name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """--name of `keys generate`: a plain file name (no `/`, not hidden, at most 201 characters), since it becomes
    `<name>.key` inside --out; `../x` would write the private key elsewhere."""
    import re

    if not re.fullmatch(KEY_NAME_RE, value, re.ASCII):
        raise click.BadParameter(
            f"{shown(value, 80)!r} is not a plain file name: letters, digits, '.', '_' and '-', starting with a "
            "letter or digit, at most 201 characters (the key is written as <name>.key inside --out)"
        )
    return value


def _option_slug(value: str | None, option: str, what: str) -> str | None:
    """An option naming a subject or grade, refused (exit 2) with what a valid name looks like."""
    if value is None:
        return None
    from nexus_assets.lib.core.escaping import quoted as quote
    from nexus_assets.lib.core.layout import MAX_SLUG_CHARS

    try:
        return validate_slug(value, what)
    except LayoutError:
        quoted = quote(value)
        if len(value) > MAX_SLUG_CHARS:
            raise CommandError(
                f"invalid {option} {quoted}: {len(value):,} characters, over the limit of {MAX_SLUG_CHARS} per {what} "
                "name",
                code=2,
            ) from None
        suggestion = normalized_slug(value)
        hint = f"; did you mean {quote(suggestion)}?" if suggestion and suggestion != value else ""
        raise CommandError(
            f"invalid {option} {quoted}: {what} names are lowercase slugs matching {SLUG_RULE} "
            f"(e.g. 'informatika', 'kelas_10'), and not the platform's reserved names{hint}",
            code=2,
        ) from None


# --- environment ------------------------------------------------------------------------------------------


def _versions() -> str:
    """`nexus --version`: the package and the libraries a bug report needs."""
    import platform

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    names = ("dagster", "chromadb", "sentence-transformers", "torch", "openvino")
    libs = ", ".join(f"{name} {version(name)}" for name in names)
    return f"nexus {version('nexus-assets')} (nexus-assets; {libs}; Python {platform.python_version()})"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_versions())
        ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the version of nexus and of its key libraries, and exit.",
)
@common_options
def cli() -> None:
    """nexus: textbook PDFs to ChromaDB collections and signed knowledge packages (VKP).

    Results go to stdout, progress and messages to stderr. --data-dir and --json may be typed before or
    after the command; `nexus COMMAND -h` lists a command's options. Schemas of --json: docs/cli.md.
    """


# --- sample-data --------------------------------------------------------------------------------------------


@cli.command("sample-data")
@reporting("sample-data")
def sample_data() -> int:
    """Write the generated sample PDFs under raw-curriculum/ (uploaded to the bucket in aws mode)."""
    from nexus_assets.lib.aws.storage import open_storage
    from nexus_assets.lib.ingest.sample_data import BROKEN_SAMPLE, generate_sample_corpus

    layout = settings().layout
    storage = open_storage(layout, env())
    paths = generate_sample_corpus(layout.raw_root)
    files: list[schemas.SampleFile] = []
    for path in paths:
        key = path.relative_to(layout.root).as_posix()
        location = storage.add_raw(key, path)
        say(f"wrote {key}" if location == str(path) else f"uploaded {location}")
        files.append(schemas.SampleFile(key=key, uri=location))
    say(
        f"{len(paths)} sample PDFs under {layout.raw_root} "
        f"({'/'.join(BROKEN_SAMPLE)} is broken on purpose: it must be reported, not crash the build)"
    )
    emit(schemas.SampleData(ok=True, raw_root=str(layout.raw_root), files=files, broken="/".join(BROKEN_SAMPLE)))
    return 0


# --- build --------------------------------------------------------------------------------------------------


def _table_row(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A partition of the build's JSON document as a row of its text table (the historic columns)."""
    version = doc["vkp_version"]
    vkp = (f"v{version}" + ("" if doc["published"] else " (unchanged)")) if version else "-"
    shown = {k: "-" if doc[k] is None else doc[k] for k in ("files", "failed_files", "pages", "chunks")}
    return {
        "partition": doc["partition"],
        "status": doc["status"],
        "files": shown["files"],
        "failed": shown["failed_files"],
        "pages": shown["pages"],
        "chunks": shown["chunks"],
        "vkp": vkp,
        "run_id": (doc["run_id"] or "-")[:8],
    }


def _progress_mode() -> Mode:
    from nexus_assets.cli_progress import choose_mode, stderr_console

    return choose_mode(stderr_console(), settings().quiet)


@cli.command()
@click.option(
    "--subject", metavar="SLUG", help="Only this subject (its folder under raw-curriculum/, e.g. informatika)."
)
@click.option(
    "--grade", metavar="SLUG", help="Only this grade (e.g. kelas_10); with --subject: exactly that partition."
)
@click.option("--chunk-size", type=click.IntRange(min=1), metavar="CHARS", help="Characters per chunk (default 800).")
@click.option(
    "--chunk-overlap",
    type=click.IntRange(min=0),
    metavar="CHARS",
    help="Characters repeated between consecutive chunks (default 100).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Rebuild partitions whose PDFs, code and settings are unchanged since their last build.",
)
@progress_options
@reporting("build")
def build(
    subject: str | None, grade: str | None, chunk_size: int | None, chunk_overlap: int | None, force: bool
) -> int:
    """Build every (or the chosen) partition through the Dagster instance.

    Before anything is registered or written, each partition asked for must hold PDFs in
    raw-curriculum/<subject>/<grade>/; an unchanged partition is reported `up to date` without starting
    Dagster. Progress bars on a terminal, plain lines otherwise (stderr); exit 1 if a run failed.
    """
    from nexus_assets import build as builds

    layout = settings().layout
    subject = _option_slug(subject, "--subject", "subject")
    grade = _option_slug(grade, "--grade", "grade")
    options = {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap}
    _check_chunking(chunk_size, chunk_overlap)
    try:
        plan = builds.plan(layout, env(), subject, grade, options, force=force)
    except builds.BuildRefused as exc:
        _warn_skipped(exc.skipped)
        raise CommandError(str(exc), code=2) from None
    _warn_skipped(plan.skipped)
    docs: dict[Partition, schemas.BuiltPartition] = {}
    for part in plan.current:
        note(
            f"== {part.label}: up to date (same PDFs, code and settings as its last successful build; --force rebuilds)"
        )
        docs[part] = {
            "partition": part.label,
            "status": "up to date",
            "files": None,
            "failed_files": None,
            "pages": None,
            "chunks": None,
            "vkp_version": None,
            "published": False,
            "run_id": None,
        }
    if not plan.targets:
        synced = builds.sync_local_catalog(layout, env())
        if synced:
            (warn if synced.startswith("warning") else note)(synced)
        _print_table([_table_row(docs[p]) for p in sorted(docs)])  # the result: what is up to date
        emit(
            schemas.Build(
                ok=True,
                data_dir=str(layout.root),
                dagster_home=None,
                partitions=[docs[p] for p in sorted(docs)],
                skipped=cast(list[schemas.Skipped], plan.skipped),
                catalog_refreshed=False,
            )
        )
        return 0
    if plan.embeds_locally:
        from nexus_assets.lib.index.embedding import prefetch_local_model

        prefetch_local_model(env().model_cache)  # overlaps torch's import with Dagster's start and the first steps
    return _run_builds(layout, plan, docs, options)


def _check_chunking(chunk_size: int | None, chunk_overlap: int | None) -> None:
    """--chunk-size/--chunk-overlap checked by the chunker's own rule before anything runs (exit 2), with the
    defaults for the one not given: a bad pair used to fail the run's chunking step, retried 3 times, exit 1."""
    from nexus_assets.lib.index.chunking import ChunkingParams

    given = {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap}
    try:
        ChunkingParams(**{name: value for name, value in given.items() if value is not None})  # its defaults else
    except ValueError as exc:
        typed = " and ".join(f"--{name.replace('_', '-')} {n}" for name, n in given.items() if n is not None)
        raise CommandError(f"invalid {typed}: {exc}", code=2) from None


def _warn_skipped(skipped: list[dict[str, Any]]) -> None:
    for entry in skipped:
        warn(f"skipped: {entry['partition'] + ': ' if entry['partition'] else ''}{entry['reason']}")


def _run_builds(
    layout: DataLayout, plan: Any, docs: dict[Partition, schemas.BuiltPartition], options: dict[str, Any]
) -> int:
    """Run the plan's partitions through `nexus_assets.build`, with progress from each run's event stream."""
    from nexus_assets.instance import ensure_dagster_home

    home = ensure_dagster_home()
    import dagster as dg

    from nexus_assets.build import BuildInterrupted, run_partitions
    from nexus_assets.cli_progress import BuildProgress, HeldStderr, choose_mode, progress_logger

    with dg.DagsterInstance.get() as instance:
        note(f"building {len(plan.targets)} partition(s) from {layout.root} (Dagster instance: {home})")
        shown: BuildProgress | None = None
        try:
            with HeldStderr() as held:
                mode = choose_mode(held.console, settings().quiet)
                with BuildProgress(
                    mode, partitions=len(plan.targets), steps=_build_steps(), verbose=settings().verbose, held=held
                ) as shown:
                    observer = shown if mode == "bars" else _Announced(shown)
                    logger = progress_logger(shown)
                    outcome = run_partitions(instance, layout, env(), plan, observer, logger, options)
        except BuildInterrupted as stop:
            raise CommandError(_interrupted(stop.partition.label, shown, stop.done, stop.run_id), code=130) from None
        except KeyboardInterrupt:  # outside a run: planning, between partitions, the catalog's refresh
            raise CommandError(_interrupted(shown.label if shown else "", shown, [], None), code=130) from None
    if not outcome.catalog_refreshed:
        warn("warning: the curriculum catalog could not be refreshed; see its run in the UI")
    docs.update({o.partition: o.as_dict() for o in outcome.partitions})
    rows = [docs[p] for p in sorted(docs)]
    _print_table([_table_row(d) for d in rows])
    failed = [d["partition"] for d in rows if d["status"] == "failed"]
    unrecorded = [o.partition.label for o in outcome.partitions if not o.recorded]
    emit(
        schemas.Build(
            ok=not failed and not unrecorded,
            data_dir=str(layout.root),
            dagster_home=str(home),
            partitions=rows,
            skipped=cast(list[schemas.Skipped], plan.skipped),
            catalog_refreshed=outcome.catalog_refreshed,
        )
    )
    if failed:
        warn(
            f"{len(failed)} partition run(s) failed: {', '.join(failed)}; open the run in the UI (make ui) "
            "for the step that failed and its error"
        )
        return 1
    if unrecorded:
        warn(f"error: the job table could not record the runs of {', '.join(unrecorded)} (see above)")
        return 1
    return 0


def _interrupted(label: str, shown: Any, done: list[Partition], run_id: str | None) -> str:
    """The one line of a build stopped by Ctrl-C: what was interrupted, and what is kept."""
    running: str = shown.step if shown is not None else ""
    step = f", step {running}" if running else ""
    where = f" during {label}{step}" if label else ""
    run = f" (run {run_id[:8]} recorded as failed)" if run_id else ""
    built = f"{len(done)} partition(s) built before it ({', '.join(p.label for p in done)}) and " if done else ""
    return (
        f"interrupted{where}{run}; kept: {built}every package and collection published before, unchanged "
        "(nothing is half-written); `nexus build` builds the rest"
    )


def _build_steps() -> int:
    from nexus_assets.build import BUILD_JOB
    from nexus_assets.definitions import defs

    return len(defs.resolve_job_def(BUILD_JOB).nodes)


class _Announced:
    """Plain-line modes also name each partition as its run starts (the bars show it)."""

    def __init__(self, shown: Any) -> None:
        self.shown = shown

    def __getattr__(self, name: str) -> Any:
        return getattr(self.shown, name)

    def partition_started(self, label: str) -> None:
        note(f"== {label}")
        self.shown.partition_started(label)


# --- search, report, jobs -----------------------------------------------------------------------------------


@cli.command()
@click.argument("query")
@click.option(
    "--subject", required=True, metavar="SLUG", help="Subject of the collection to search (e.g. informatika)."
)
@click.option("--grade", required=True, metavar="SLUG", help="Grade of the collection to search (e.g. kelas_10).")
@click.option("-k", "--top", "k", type=int, default=5, show_default=True, help="Number of hits.")
@click.option(
    "--installed",
    "installed",
    type=CliPath(file_okay=False, path_type=Path),
    default=None,
    metavar="DEST",
    help="School server: search the release `nexus vkp pull --dest DEST` installed, not the data directory.",
)
@reporting("search")
def search(query: str, subject: str, grade: str, k: int, installed: Path | None) -> int:
    """Hybrid (dense + BM25) search in one partition's collection: hits with file, page and snippet.

    With --installed, the same ranking over the release installed on a school server."""
    from nexus_assets.lib.index.chroma_store import current_build, read_build_info
    from nexus_assets.lib.index.embedding import EmbedderUnavailableError
    from nexus_assets.lib.index.installed_search import InstalledSearch, NoReleaseError
    from nexus_assets.lib.index.search import InvalidQueryError, NoCollectionError, check_query, chroma_root
    from nexus_assets.lib.index.search import search as run_search

    partition = Partition(
        _option_slug(subject, "--subject", "subject") or "", _option_slug(grade, "--grade", "grade") or ""
    )
    try:
        check_query(query, k)
    except InvalidQueryError as exc:
        raise CommandError(str(exc), code=2) from None
    release = None
    try:
        if installed is not None:
            opened = InstalledSearch.open(installed, partition.subject, partition.grade, embedder=None, load=False)
            built_with = read_build_info(opened.build_dir)
            opened.embedder = _query_embedder(built_with)
            release = str(opened.release)
            hits = opened.search(query, k=k)
        else:
            layout = settings().layout
            build_dir = current_build(chroma_root(layout, partition))
            built_with = (
                read_build_info(build_dir) if build_dir else {}
            )  # queries are embedded by the collection's model
            hits = run_search(layout, partition, query, _query_embedder(built_with), k=k)
    except (NoCollectionError, NoReleaseError, EmbedderUnavailableError) as exc:
        raise CommandError(str(exc)) from None
    except Exception as exc:
        if installed is None:
            raise
        raise CommandError(
            f"{installed}: the installed release of {partition.label} cannot be searched ({type(exc).__name__}: "
            f"{str(exc)[:240]}); pull again to reinstall it (nexus vkp pull --dest {installed} ...)"
        ) from None
    for rank, hit in enumerate(hits, 1):
        if not settings().json:
            pages = f"p.{hit.page}" + (f"-{hit.page_end}" if hit.page_end != hit.page else "")
            snippet = " ".join(hit.text.split())[:200]
            say(f"{rank}. [{hit.score:.3f}] {hit.file} {pages}{' (OCR)' if hit.ocr else ''}\n   {snippet}")
    emit(
        schemas.Search(
            ok=True,
            query=query,
            partition=partition.label,
            k=k,
            model_id=built_with.get("model_id"),
            release=release,
            hits=[cast(schemas.Hit, {"rank": r, **h.as_dict()}) for r, h in enumerate(hits, 1)],
        )
    )
    return 0


def _input_file(path: str, option: str, max_bytes: int) -> Path:
    """A path argument that is read: a regular file of at most `max_bytes` (lib/core/input_files.py), else exit 2."""
    from nexus_assets.lib.core.input_files import InputFileError, checked_file

    try:
        return checked_file(path, option, max_bytes)
    except InputFileError as exc:
        raise CommandError(str(exc), code=2) from None


def _partition_filter(subject: str | None, grade: str | None) -> Callable[[Partition], bool]:
    subject = _option_slug(subject, "--subject", "subject")
    grade = _option_slug(grade, "--grade", "grade")
    return lambda p: (not subject or p.subject == subject) and (not grade or p.grade == grade)


@cli.command()
@click.option("--subject", metavar="SLUG", help="Only this subject.")
@click.option("--grade", metavar="SLUG", help="Only this grade.")
@click.option(
    "--golden", type=CliPath(dir_okay=False), help="Golden questions JSONL (default: $NEXUS_GOLDEN_QUESTIONS)."
)
@click.option(
    "--min-recall", type=FiniteFloat(0, 1), help="recall@5 threshold (default: $NEXUS_GOLDEN_MIN_RECALL or 0.7)."
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=800,
    show_default=True,
    help="The chunk size the partitions were built with.",
)
@click.option("--brief", is_flag=True, help="Verdicts and figures only, no offending rows.")
@reporting("report")
def report(
    subject: str | None, grade: str | None, golden: str | None, min_recall: float | None, chunk_size: int, brief: bool
) -> int:
    """The quality gates' verdicts and figures of built partitions; exit 1 on a blocking failure."""
    from nexus_assets.lib.index.embedding import default_embedder
    from nexus_assets.lib.publish.quality_report import (
        NotBuiltError,
        format_verdict,
        load_stored,
        partition_verdicts,
        verdict_label,
    )

    if golden:  # checked once, before any partition: /dev/zero, a FIFO or a `[1]` line is the operator's to fix
        from nexus_assets.lib.core.input_files import GOLDEN_MAX_BYTES
        from nexus_assets.lib.index.retrieval_eval import load_golden

        try:
            load_golden(_input_file(golden, "--golden", GOLDEN_MAX_BYTES))
        except ValueError as exc:
            raise CommandError(str(exc), code=2) from None
    layout = settings().layout
    wanted = _partition_filter(subject, grade)
    parts = [p for p in layout.discover_partitions()[0] if wanted(p)]
    if not parts:
        raise CommandError(f"no partition matches under {layout.raw_root}", code=2)
    embedder = default_embedder(cache_dir=env().model_cache)
    failed: list[str] = []
    missing: list[str] = []
    docs: list[schemas.ReportedPartition] = []
    text = not settings().json
    for part in parts:
        if text:
            say(f"== {part.label}")
        try:
            stored = load_stored(layout, part)
        except NotBuiltError as exc:
            if text:
                say(f"  not built: {exc}")
            missing.append(part.label)
            docs.append(schemas.ReportedPartition(partition=part.label, built=False, error=str(exc), checks=[]))
            continue
        checks: list[schemas.Check] = []
        for name, asset, verdict in partition_verdicts(
            stored,
            part,
            embedder,
            golden=golden or "",
            min_recall=min_recall,
            chunk_size=chunk_size,
            environ=env().environment,
        ):
            if text:
                say("\n".join(format_verdict(name, asset, verdict, details=not brief)))
            if not verdict.passed and verdict.severity == "error":
                failed.append(f"{part.label}:{name}")
            checks.append(
                {
                    "name": name,
                    "asset": asset,
                    "verdict": cast(Any, verdict_label(verdict)),
                    "passed": verdict.passed,
                    "severity": verdict.severity,
                    "applicable": verdict.applicable,
                    "summary": verdict.summary,
                    "figures": {k: v for k, v in verdict.figures.items() if v is not None},
                }
            )
        docs.append(schemas.ReportedPartition(partition=part.label, built=True, error=None, checks=checks))
    if missing and len(missing) == len(parts):  # nothing could be judged: a refusal, not a failed gate
        raise CommandError(f"nothing to report: {', '.join(missing)} not built yet (nexus build builds them)", code=2)
    say(
        f"\n{len(parts)} partition(s): {len(failed)} blocking failure(s)"
        + (f" ({', '.join(failed)})" if failed else "")
        + (f"; not built: {', '.join(missing)}" if missing else "")
    )
    emit(schemas.Report(ok=not failed, partitions=docs, blocking_failures=failed, not_built=missing))
    return 1 if failed else 0


def _embedding_label(record: Any) -> str:
    """The model of a run's vectors, marked when it was the fallback for an unavailable primary."""
    return record.embedding_model + (" (fallback)" if record.embedding_fallback else "")


JOB_FIELDS = (
    "job_id",
    "timestamp",
    "job_type",
    "partition",
    "status",
    "total_files",
    "successful_files",
    "failed_files",
    "total_chunks",
    "total_embeddings",
    "processing_time",
    "estimated_cost",
    "embedding_model",
    "embedding_fallback",
    "input_tokens",
    "errors",
    "completed_at",
)


@cli.command()
@click.option("--days", type=click.IntRange(0, 36500), default=7, show_default=True, help="How far back to look.")
@reporting("jobs")
def jobs(days: int) -> int:
    """Recent pipeline runs from the job table, with a cost summary."""
    from nexus_assets.lib.core.job_tracking import summarize

    layout = settings().layout
    if env().deployment == "local" and not layout.root.is_dir():
        raise CommandError(f"no data directory at {layout.root}: check --data-dir or $NEXUS_DATA_DIR", code=2)
    records = job_store(layout, env()).recent(days)
    summary = summarize(records)
    emit(
        schemas.Jobs(
            ok=True,
            days=days,
            jobs=[{f: getattr(r, f) for f in JOB_FIELDS} for r in records],  # type: ignore[misc]
            summary=summary,  # type: ignore[typeddict-item]
        )
    )
    if settings().json:
        return 0
    rows = [
        {
            "started": r.timestamp[:19],
            "job_id": r.job_id[:8],
            "partition": r.partition,
            "status": r.status,
            "files": f"{r.successful_files}/{r.total_files}",
            "chunks": r.total_chunks,
            "seconds": round(r.processing_time, 1),
            "embedding": _embedding_label(r),
            "tokens": r.input_tokens,
            "cost_usd": f"{r.estimated_cost:.6f}",
            "errors": "; ".join(r.errors)[:80],
        }
        for r in records
    ]
    if not rows:
        say(f"no jobs in the last {days} days")
        return 0
    _print_table(rows)
    say(
        f"\n{summary['runs']} run(s) in {days} days: "
        + ", ".join(f"{k} {v}" for k, v in sorted(summary["by_status"].items()))
        + f"; {summary['total_chunks']} chunks, {summary['total_embeddings']} embeddings, "
        f"{summary['input_tokens']} billed tokens, {summary['fallbacks']} local fallback(s), "
        f"{summary['processing_time_s']} s, estimated cost ${summary['estimated_cost_usd']:.6f}"
    )
    return 0


# --- vkp ----------------------------------------------------------------------------------------------------


@cli.group()
@common_options
def vkp() -> None:
    """Knowledge package tools: verify, pull (school servers), catalog (publisher)."""


def _s3_client() -> Any:
    """An S3 client for `s3://` catalogs: the settings' endpoint and region, the pull's timeouts (NEXUS_PULL_*)."""
    from nexus_assets.lib.distribution.vkp_pull import s3_client

    s = env()
    return s3_client(s.fetch, endpoint_url=s.aws_endpoint_url, region_name=s.aws_region)


def _query_embedder(built_with: dict[str, Any]) -> Any:
    """The back end that embeds queries against a collection built by `built_with`'s model."""
    from nexus_assets.lib.index.bedrock_embedding import query_embedder

    s = env()
    return query_embedder(
        built_with.get("model_id"),
        built_with.get("dims"),
        region=s.aws_region or "",
        endpoint_url=s.bedrock_endpoint_url or "",
        cache_dir=s.model_cache,
    )


def _partition_labels(values: tuple[str, ...]) -> tuple[str, ...]:
    """`--partition` values as `<subject>/<grade>`; a malformed one is a usage error (exit 2)."""
    for value in values:
        try:
            Partition.from_label(value)
        except LayoutError as exc:
            raise click.BadParameter(str(exc), param_hint="--partition") from None
    return values


def _trusted_key(public_key: str | None) -> tuple[Any, str | None]:
    """The public key packages are checked against, and where it came from; (None, None) when there is none."""
    from nexus_assets.lib.core.input_files import KEY_MAX_BYTES
    from nexus_assets.lib.publish.signing import SigningError, trusted_public_key

    for item in (public_key or "").split(","):  # several files, comma separated, during a key rotation
        if item.strip():
            _input_file(item.strip(), "--public-key", KEY_MAX_BYTES)
    try:
        key, origin = trusted_public_key(public_key or env().vkp_public_key, settings().layout.root)
    except SigningError as exc:
        raise CommandError(str(exc), code=2) from None
    if key is not None and origin.startswith("DEVELOPMENT"):
        warn(f"note: trusting the {origin} (demo only; schools pass --public-key)")
    return key, origin


PUBLIC_KEY_HELP = (
    "Trusted public key(s) (PEM file; several, comma separated, during a key rotation); default $NEXUS_VKP_PUBLIC_KEY"
)


@vkp.command("verify")
@click.argument("files", nargs=-1, required=True, type=click.Path())  # checked by _input_file: one error document
@click.option(
    "--public-key",
    type=CliPath(dir_okay=False),
    help=PUBLIC_KEY_HELP + ", else the data directory's development key.",
)
@click.option("--allow-unsigned", is_flag=True, help="Accept packages without a signature (checksums only).")
@reporting("vkp.verify")
def vkp_verify(files: tuple[str, ...], public_key: str | None, allow_unsigned: bool) -> int:
    """Check packages' signature, manifest, checksums and tables (.vkp or .vkpd); exit 1 on any mismatch."""
    from nexus_assets.lib.publish.vkp import verify_vkp
    from nexus_assets.lib.publish.vkp_delta import verify_delta

    key, origin = _trusted_key(public_key)
    if key is None and not allow_unsigned:
        raise CommandError(
            "no trusted public key: pass --public-key FILE or set NEXUS_VKP_PUBLIC_KEY (or "
            "--allow-unsigned to check checksums only)",
            code=2,
        )
    from nexus_assets.lib.core.input_files import PACKAGE_MAX_BYTES

    for file in files:  # before any is verified: a missing file, a directory or a FIFO is an input error (exit 2)
        _input_file(file, "package", PACKAGE_MAX_BYTES)
    status = 0
    packages: list[schemas.VerifiedPackage] = []
    for file in files:
        verify = verify_delta if file.endswith(".vkpd") else verify_vkp
        result = verify(Path(file), key, allow_unsigned=allow_unsigned)
        manifest = result.manifest or {}
        packages.append(
            schemas.VerifiedPackage(
                file=file,
                ok=result.ok,
                kind="vkpd" if file.endswith(".vkpd") else "vkp",
                subject=manifest.get("subject"),
                grade=manifest.get("grade"),
                version=manifest.get("version"),
                chunks=(manifest.get("counts") or {}).get("chunks"),
                members=len(manifest.get("members") or ()),
                signature=result.signature,
                problems=list(result.problems),
            )
        )
        if result.ok:
            if not settings().json:
                say(
                    f"OK {file}: {manifest['subject']}/{manifest['grade']} v{manifest['version']}, "
                    f"{manifest['counts'].get('chunks')} chunks, {len(manifest['members'])} members verified, "
                    f"signature {result.signature}"
                )
        else:
            status = 1
            warn(f"FAILED {file}:")
            for problem in result.problems:
                warn(f"  - {problem}")
    emit(schemas.VkpVerify(ok=status == 0, trusted_key=origin, packages=packages))
    return status


@vkp.command("pull")
@click.option(
    "--catalog", required=True, callback=_catalog_option, help="catalog.json: http(s):// URL, s3:// URI or path."
)
@click.option("--dest", required=True, type=CliPath(file_okay=False), help="Directory of the installed collections.")
@click.option(
    "--public-key",
    type=CliPath(dir_okay=False),
    help=PUBLIC_KEY_HELP + ", else the data directory's DEVELOPMENT key (keys/ under --data-dir: a demo's, never "
    "a school's).",
)
@click.option(
    "--partition",
    "partitions",
    multiple=True,
    metavar="SUBJECT/GRADE",
    callback=lambda _ctx, _param, values: _partition_labels(values),
    help="Only this partition, e.g. informatika/kelas_10 (repeatable).",
)
@progress_options
@reporting("vkp.pull")
def vkp_pull(catalog: str, dest: str, public_key: str | None, partitions: tuple[str, ...]) -> int:
    """School server: install the catalog's latest versions (deltas when possible), verified, atomically.

    Packages are checked against --public-key, else $NEXUS_VKP_PUBLIC_KEY, else the DEVELOPMENT key of the
    data directory (--data-dir, keys/): a note says so, and a school server must be given the publisher's key.
    """
    from nexus_assets.cli_progress import PullProgress
    from nexus_assets.lib.distribution.http_fetch import redact
    from nexus_assets.lib.distribution.vkp_pull import PullError, Source, pull

    if "://" not in catalog:
        from nexus_assets.lib.core.input_files import CATALOG_MAX_BYTES

        _input_file(catalog, "--catalog", CATALOG_MAX_BYTES)
    key, origin = _trusted_key(public_key)
    if key is None:
        raise CommandError(
            "no trusted public key: pass --public-key FILE (the publisher's .pub) or set NEXUS_VKP_PUBLIC_KEY", code=2
        )
    assert origin is not None  # a trusted key always says where it came from
    try:
        with PullProgress(_progress_mode(), verbose=settings().verbose) as shown:
            s = env()
            source = Source(catalog, fetch=s.fetch, s3_client=_s3_client() if catalog.startswith("s3://") else None)
            outcomes = pull(
                source,
                Path(dest),
                key,
                partitions=list(partitions) or None,
                max_validity_days=s.catalog_max_validity_days,
                notify=shown,
            )
    except PullError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:  # the school's own disk (permissions, a full disk) outside any one partition
        from nexus_assets.lib.distribution.vkp_pull import local_problem

        raise CommandError(f"{exc.filename or dest}: {local_problem(exc)}") from None
    failed = [o for o in outcomes if o.via == "failed"]
    _print_table([o.as_dict() for o in outcomes])
    emit(
        schemas.VkpPull(
            ok=not failed,
            catalog=redact(catalog),
            dest=str(Path(dest).resolve()),
            trusted_key=origin,
            partitions=[
                schemas.PulledPartition(
                    {
                        "partition": o.partition,
                        "from": o.installed_before,  # a Python keyword: the model's mapping form
                        "to": o.installed_after,
                        "via": o.via,
                        "downloaded_bytes": o.bytes_downloaded,
                        "problems": list(o.problems),
                    }
                )
                for o in outcomes
            ],
        )
    )
    return 1 if failed else 0


@vkp.command("catalog")
@reporting("vkp.catalog")
def vkp_catalog() -> int:
    """Publisher: rebuild a deleted catalog.json from the packages and re-sign it.

    Fresh expiry: $NEXUS_CATALOG_EXPIRY_DAYS days, default 30. Builds re-sign it as they publish.
    """
    from nexus_assets.lib.aws.storage import open_storage
    from nexus_assets.lib.publish.signing import SigningError

    storage = open_storage(settings().layout, env())
    try:
        signer = storage.signer()
        catalog = storage.package_store().catalog
        assert catalog is not None  # both stores have one (S3PackageStore refuses to exist without)
        doc = catalog.refresh(signer)
    except (SigningError, ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None
    say(
        f"{catalog.location()}: {len(doc['partitions'])} partition(s), signed by {signer.origin} (key id "
        f"{signer.key_id}), expires {doc['expires']}"
    )
    emit(
        schemas.VkpCatalog(
            ok=True,
            location=str(catalog.location()),
            partitions=sorted(doc["partitions"]),
            signed_by=signer.origin,
            key_id=signer.key_id,
            expires=doc["expires"],
        )
    )
    return 0


# --- keys, cache, aws, deploy -------------------------------------------------------------------------------


@cli.group()
@common_options
def keys() -> None:
    """Signing keys."""


@keys.command("generate")
@click.option(
    "--out",
    default=".",
    show_default=True,
    type=CliPath(file_okay=False),
    help="Directory for <name>.key and <name>.pub.",
)
@click.option(
    "--name", default="nexus-signing", show_default=True, callback=_key_name, help="File name of the key pair."
)
@reporting("keys.generate")
def keys_generate(out: str, name: str) -> int:
    """Write an Ed25519 key pair for signing packages."""
    from nexus_assets.lib.publish.signing import SigningError, generate_keypair

    try:
        private_path, public_path, key_id = generate_keypair(Path(out), name)
    except SigningError as exc:
        raise CommandError(str(exc)) from None
    say(
        f"private key {private_path} (mode 600: keep it out of the repository; point NEXUS_SIGNING_KEY_FILE at it "
        f"or store it in Secrets Manager)\npublic key  {public_path} (give it to schools: nexus vkp pull "
        f"--public-key)\nkey id      {key_id}"
    )
    emit(schemas.KeysGenerate(ok=True, private_key=str(private_path), public_key=str(public_path), key_id=key_id))
    return 0


@cli.group()
@common_options
def cache() -> None:
    """Build cache tools."""


@cache.command("prune")
@click.option(
    "--older-than-days",
    type=FiniteFloat(min=0),
    default=7.0,
    show_default=True,
    help="Keep anything used within this many days (protects builds running now).",
)
@click.option("--all", "everything", is_flag=True, help="Empty the caches (the next build redoes everything).")
@reporting("cache.prune")
def cache_prune(older_than_days: float, everything: bool) -> int:
    """Drop cache entries no partition's tables reference and unused for a while (local directory, and the
    bucket's mirror in aws mode)."""
    from nexus_assets.lib.aws.storage import open_storage

    doc = schemas.CachePrune(ok=True, local=None, bucket=None)
    try:
        pruned = open_storage(settings().layout, env()).prune_caches(older_than_days, everything)
        for location, result in pruned.items():
            where: Literal["local", "bucket"] = "bucket" if location.startswith("s3://") else "local"
            say(f"{where} {location}: {result.summary()}")
            doc[where] = cast(schemas.PrunedCache, {"location": location, **asdict(result)})
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    emit(doc)
    return 0


@cli.group()
@common_options
def aws() -> None:
    """aws mode tools."""


@aws.command("bootstrap")
@reporting("aws.bootstrap")
def aws_bootstrap() -> int:
    """Create the bucket and tables (idempotent)."""
    from nexus_assets.lib.aws.aws_bootstrap import bootstrap

    aws_settings = env().aws
    if aws_settings is None:
        raise CommandError("aws mode needs NEXUS_S3_BUCKET (the bucket holding raw-curriculum/, processed/, vkp/)", 2)
    done = bootstrap(aws_settings)
    for target, state in done.items():
        say(f"{state:8} {target}")
    emit(schemas.AwsBootstrap(ok=True, resources=[{"target": t, "state": s} for t, s in done.items()]))
    return 0


@cli.group()
@common_options
def deploy() -> None:
    """Production profile tools."""


@deploy.command("render-instance")
@click.option("--launcher", default="default", show_default=True, help="Run launcher: default, ecs, celery or docker.")
@click.option(
    "--max-concurrent-runs",
    type=click.IntRange(min=1),
    help="Run limit of the queued coordinator (default: deploy/dagster.yaml's).",
)
@reporting("deploy.render-instance")
def deploy_render(launcher: str, max_concurrent_runs: int | None) -> int:
    """Print deploy/dagster.yaml with the chosen run launcher (YAML; --json: the same as JSON)."""
    from nexus_assets.instance import profile
    from nexus_assets.lib.aws.deploy_profiles import DeployConfigError, instance_yaml, render_instance

    try:
        config = render_instance(profile("deploy"), launcher, max_concurrent_runs)
    except DeployConfigError as exc:
        raise CommandError(str(exc), code=2) from None
    if not settings().json:
        print(instance_yaml(config), end="")
    emit(schemas.DeployRenderInstance(ok=True, instance=config))
    return 0


@deploy.command("apply-pools")
@reporting("deploy.apply-pools")
def deploy_apply_pools() -> int:
    """Write deploy/pools.yaml's limits into the instance at DAGSTER_HOME (idempotent)."""
    import dagster as dg

    from nexus_assets.instance import configured_dagster_home, profile
    from nexus_assets.lib.aws.deploy_profiles import DeployConfigError, pool_limits

    if configured_dagster_home() is None:  # never a default instance: the limits belong in the deployment's
        raise CommandError(
            "DAGSTER_HOME is not set: it must name the instance to write the pool limits into (the deployment's, "
            "whose dagster.yaml `nexus deploy render-instance` wrote)",
            code=2,
        )
    try:
        limits = pool_limits(profile("deploy"))
    except DeployConfigError as exc:
        raise CommandError(str(exc), code=2) from None
    with dg.DagsterInstance.get() as instance:
        for pool, limit in sorted(limits.items()):
            instance.event_log_storage.set_concurrency_slots(pool, limit)
            say(f"pool {pool}: {limit}")
    emit(schemas.DeployApplyPools(ok=True, pools=dict(sorted(limits.items()))))
    return 0


# --- entry point --------------------------------------------------------------------------------------------


def _terminate_as_interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM (what `timeout`, systemd, `docker stop` and Kubernetes send) handled as Ctrl-C outside a run
    (planning, between partitions): one `interrupted` line, exit 130. During a run Dagster maps SIGTERM to its
    own SIGINT handler, and cli_progress.HeldStderr stops the build on either (it used to see only SIGINT: the
    interrupted step was retried and the build went on until SIGKILL)."""
    os.kill(os.getpid(), signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    """The `nexus` script; returns the exit code (tests call it with an argument list)."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    try:
        code = cli.main(args=argv, prog_name="nexus", standalone_mode=False, obj=Options())
    except click.ClickException as exc:  # usage errors: click's message, exit 2
        exc.show()
        return exc.exit_code
    except click.Abort:
        print("aborted", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0


def script() -> NoReturn:
    """The `nexus` console script: `main`, then an exit that skips the interpreter's teardown.

    After a build, Python's finalization frees every module and stops the engines' thread pools one by one
    with nothing left to write: 0.75 s of a 12-13 s incremental build (strace, Intel Xeon Emerald Rapids,
    2026-12-06). What an exit must do still happens: the exit handlers run (logging's flush,
    multiprocessing's children), and stdout and stderr are flushed.

    Only when no other thread that is not a daemon is alive: otherwise the interpreter's own exit runs,
    which wakes idle pool workers before it waits for them. A thread pool nobody shut down (OpenVINO's
    telemetry sender did this before `lib/index/openvino_offline.py`) waits for work until that exit
    wakes it, so joining it here hung the process for good.
    """
    code = main()
    current = threading.current_thread()
    if any(t is not current and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`nexus ... | head`): nothing more can be said
            code = code or 1
    os._exit(code)


if __name__ == "__main__":
    script()
