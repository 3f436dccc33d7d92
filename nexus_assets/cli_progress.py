"""Progress of `nexus build` and `nexus vkp pull`: rich bars on a terminal, plain lines otherwise.

Everything here writes to stderr, so stdout carries only a command's result (its table, or its `--json`
document) and a cron job can keep one and drop the other. The build's progress comes from Dagster's own
event stream: `progress_logger` is a logger definition with the console logger's config schema, put in
the console logger's place for the CLI's runs only (the stored run config still names `console`, so a
re-execution from the UI uses Dagster's own). Step events move the bars; the assets' log messages
("N PDFs under", "<file>: ok", "embedded N/M") feed the file and chunk counts.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Literal

import dagster as dg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from nexus_assets.lib.distribution.vkp_pull import PullEvent

Mode = Literal["bars", "lines", "quiet"]

# The assets' log messages that carry counts (nexus_assets/defs/assets.py), label prefix removed.
PDFS_FOUND = re.compile(r"^(?P<n>\d+) PDFs under ")
FILE_RESULT = re.compile(r"^(?P<file>[^/]+?\.pdf): ", re.IGNORECASE)
FILE_CHUNKS = re.compile(r"^(?P<file>[^/]+?\.pdf): (?P<n>\d+) chunks$", re.IGNORECASE)
EMBEDDED = re.compile(r"^embedded (?P<done>\d+)/(?P<total>\d+) ")
EMBED_SUMMARY = re.compile(r"^(?P<embedded>\d+) chunks embedded \(.*\), (?P<cached>\d+) from the cache")


def choose_mode(console: Console, quiet: bool) -> Mode:
    """Bars when stderr is a terminal, plain lines when it is a pipe or a file (cron, CI), or quiet."""
    if quiet:
        return "quiet"
    return "bars" if console.is_terminal else "lines"


def stderr_console() -> Console:
    """A console on the current sys.stderr (resolved at each write, so redirections and capsys work)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


class _Display:
    """Shared by both reporters: a rich Progress in bars mode, `print` to stderr otherwise."""

    def __init__(self, mode: Mode, console: Console | None = None, verbose: bool = False) -> None:
        self.mode = mode
        self.verbose = verbose
        self.console = console or stderr_console()
        self.progress: Progress | None = None

    def __enter__(self) -> _Display:
        if self.mode == "bars":
            self.progress = self._make_progress()
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.stop()
            self.progress = None

    def _make_progress(self) -> Progress:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )

    def line(self, text: str, level: int = logging.INFO) -> None:
        """One message: above the bars, or a plain line; info is shown in bars mode only with --verbose
        and never in quiet mode."""
        if level < logging.WARNING and (self.mode == "quiet" or (self.mode == "bars" and not self.verbose)):
            return
        if self.progress:
            style = "red" if level >= logging.ERROR else "yellow" if level >= logging.WARNING else "dim"
            self.progress.console.print(text, style=style, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)


class BuildProgress(_Display):
    """Progress of a multi-partition build: partitions, steps of the current one, its files and chunks."""

    def __init__(
        self, mode: Mode, partitions: int, steps: int, console: Console | None = None, verbose: bool = False
    ) -> None:
        super().__init__(mode, console, verbose)
        self.partitions, self.steps = partitions, steps
        self.index, self.label, self.in_phase = 0, "", False
        self.steps_started = 0
        self.files_total = self.files_done = 0
        self.chunks_total = self.chunks_done = 0
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> BuildProgress:
        super().__enter__()
        if self.progress:
            self._tasks["partitions"] = self.progress.add_task("partitions", total=self.partitions)
            self._tasks["steps"] = self.progress.add_task("steps", total=self.steps, visible=False)
            self._tasks["files"] = self.progress.add_task("  PDFs read", total=None, visible=False)
            self._tasks["chunks"] = self.progress.add_task("  chunks embedded", total=None, visible=False)
        return self

    def _update(self, name: str, **fields: Any) -> None:
        if self.progress:
            self.progress.update(self._tasks[name], **fields)

    @property
    def prefix(self) -> str:
        return self.label if self.in_phase else f"[{self.index}/{self.partitions}] {self.label}"

    def phase(self, label: str) -> None:
        """A run that is not a partition's (the catalog refresh): its messages are prefixed with `label`."""
        self.label, self.in_phase = label, True
        self._update("partitions", description="partitions")
        for name in ("steps", "files", "chunks"):
            self._update(name, visible=False)

    def partition_started(self, label: str) -> None:
        self.index += 1
        self.label = label
        self.files_total = self.files_done = self.chunks_total = self.chunks_done = self.steps_started = 0
        self._update("partitions", description=f"partitions ({label})")
        self._update("steps", description=f"  {label}: steps", completed=0, total=self.steps, visible=True)
        self._update("files", completed=0, total=None, visible=False)
        self._update("chunks", completed=0, total=None, visible=False)
        if self.mode == "lines":
            self.line(f"{self.prefix}: started")

    def partition_finished(self, status: str, seconds: float) -> None:
        self._update("partitions", advance=1)
        level = logging.ERROR if status == "failed" else logging.INFO
        if self.mode != "bars" or self.verbose or status == "failed":
            self.line(f"{self.prefix}: {status} in {seconds:.1f} s", level)

    # --- Dagster's records ------------------------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> None:
        """A record of the run's log manager: a Dagster event (step started, succeeded...) or a message."""
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        message = str(meta.get("orig_message") or record.getMessage())
        if event is not None:
            self._event(event, step, message)
            return
        text = message.removeprefix(f"{self.label}: ")
        self._counts(step, text)
        level = (
            "error: " if record.levelno >= logging.ERROR else "warning: " if record.levelno >= logging.WARNING else ""
        )
        self.line(f"{self.prefix}: {step + ': ' if step else ''}{level}{text}", record.levelno)

    def _event(self, event: Any, step: str, message: str) -> None:
        kind = event.event_type_value
        if kind == "STEP_START":
            self.steps_started += 1
            self._update("steps", description=f"  {self.label}: {step}")
            if self.mode == "lines":
                self.line(f"{self.prefix}: step {self.steps_started}/{self.steps} {step}")
        elif kind == "STEP_SUCCESS":
            self._update("steps", advance=1)
            if step == "pdf_text" and self.files_total:
                self._files(self.files_total)
        elif kind == "STEP_FAILURE":
            self._update("steps", advance=1)
            self.line(f"{self.prefix}: {step}: failed: {message}", logging.ERROR)
        elif kind == "STEP_UP_FOR_RETRY":
            self.line(f"{self.prefix}: {step}: retrying: {message}", logging.WARNING)
        elif kind == "STEP_SKIPPED":
            self._update("steps", advance=1)
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if evaluation is not None and not evaluation.passed:
                severity = getattr(getattr(evaluation, "severity", None), "value", "ERROR")
                self.line(
                    f"{self.prefix}: check {evaluation.check_name} failed ({severity.lower()})",
                    logging.ERROR if severity == "ERROR" else logging.WARNING,
                )

    def _files(self, done: int) -> None:
        self.files_done = min(done, self.files_total) if self.files_total else done
        self._update("files", completed=self.files_done, total=self.files_total or None, visible=True)

    def _chunks(self, done: int, total: int) -> None:
        self.chunks_done, self.chunks_total = done, total
        self._update("chunks", completed=done, total=total or None, visible=True)

    def _counts(self, step: str, text: str) -> None:
        """Files and chunks from the assets' messages; a message that matches nothing moves nothing."""
        if step == "raw_pdfs" and (found := PDFS_FOUND.match(text)):
            self.files_total = int(found["n"])
            self._files(0)
        elif step == "pdf_text" and FILE_RESULT.match(text):
            self._files(self.files_done + 1)
        elif step == "text_chunks" and (chunked := FILE_CHUNKS.match(text)):
            self.chunks_total += int(chunked["n"])
        elif step == "chunk_embeddings" and (embedded := EMBEDDED.match(text)):
            self._chunks(int(embedded["done"]), int(embedded["total"]))
        elif step == "chunk_embeddings" and (summary := EMBED_SUMMARY.match(text)):
            total = int(summary["embedded"]) + int(summary["cached"])
            self._chunks(total, total)


class _Forward(logging.Handler):
    """Dagster's step events are DEBUG records: all of them pass; messages only from `level` up."""

    def __init__(self, target: BuildProgress | None, level: int) -> None:
        super().__init__()
        self.target, self.min_level = target, level

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        if self.target is not None and (meta.get("dagster_event") is not None or record.levelno >= self.min_level):
            self.target.handle(record)


def progress_logger(target: BuildProgress | None) -> dg.LoggerDefinition:
    """A logger definition (the console logger's config schema) forwarding every record to `target`."""

    def make(context: dg.InitLoggerContext) -> logging.Logger:
        level = logging.getLevelName(str(context.logger_config["log_level"]).upper())
        logger = logging.Logger("nexus.cli", level=logging.DEBUG)
        logger.addHandler(_Forward(target, level if isinstance(level, int) else logging.INFO))
        return logger

    return dg.LoggerDefinition(
        make,
        config_schema=dg.colored_console_logger.config_schema,
        description="nexus CLI progress (stands in for the console logger)",
    )


class PullProgress(_Display):
    """Progress of `vkp pull`: partitions checked, and the bytes of the package being downloaded."""

    def __init__(self, mode: Mode, console: Console | None = None, verbose: bool = False) -> None:
        super().__init__(mode, console, verbose)
        self._tasks: dict[str, TaskID] = {}
        self._reported: set[str] = set()

    def __enter__(self) -> PullProgress:
        super().__enter__()
        return self

    def _make_progress(self) -> Progress:
        # One `detail` column: "1/3" on the partitions bar, "120.5/226.1 kB" on a package's.
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
        )

    def __call__(self, event: PullEvent) -> None:
        progress = self.progress
        where = f"[{event.index}/{event.total}] {event.partition}" if event.total else event.partition
        if event.kind == "partition":
            if progress:
                if "partitions" not in self._tasks:
                    self._tasks["partitions"] = progress.add_task("partitions", total=event.total, detail="")
                progress.update(
                    self._tasks["partitions"],
                    description=f"partitions ({event.partition})",
                    detail=f"{event.index - 1}/{event.total}",
                )
            elif self.mode == "lines":
                self.line(f"{where}: checking")
        elif event.kind == "download":
            if progress:
                task = self._tasks.get(event.name)
                if task is None:
                    task = self._tasks[event.name] = progress.add_task(f"  {event.name}", total=event.size, detail="")
                detail = f"{event.done / 1e3:.1f}/{event.size / 1e3:.1f} kB"
                progress.update(task, completed=event.done, total=event.size, detail=detail)
            elif event.name not in self._reported:
                self._reported.add(event.name)
                self.line(f"{event.partition}: downloading {event.name} ({event.size} bytes)")
        elif event.kind in ("verify", "install"):
            verb = "verifying" if event.kind == "verify" else "installing"
            if progress and event.name in self._tasks:
                progress.update(self._tasks[event.name], description=f"  {event.name} ({verb})")
            self.line(f"{event.partition}: {verb} {event.name}")
        elif event.kind == "done" and event.outcome is not None:
            if progress:
                progress.update(self._tasks["partitions"], advance=1, detail=f"{event.index}/{event.total}")
            outcome = event.outcome
            failed = outcome.via == "failed"
            after = f" v{outcome.installed_after}" if outcome.installed_after else ""
            self.line(
                f"{where}: {outcome.via}{after}" + (f": {'; '.join(outcome.problems)}" if failed else ""),
                logging.ERROR if failed else logging.INFO,
            )
