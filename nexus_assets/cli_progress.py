"""Progress of `nexus build` and `nexus vkp pull`: rich bars on a terminal, plain lines otherwise.

Everything here writes to stderr, so stdout carries only a command's result (its table, or its `--json`
document) and a cron job can keep one and drop the other.

During a run, Dagster's compute-log capture points fd 2 at a file while each step runs and mirrors
the file back through `tail -F`: rich then drew to a file (frozen bars, stale frames, the bars in the
run's compute logs) while `tail` wrote the step's output into the middle of a bar line. `HeldStderr`
takes the display's own duplicate of stderr before the run starts, and turns fd 2 into a pipe whose
lines are shown above the bars, whole (with `-v`, or always for warnings); the steps' output stays in
their compute logs. The build's progress comes from Dagster's own
event stream: `progress_logger` is a logger definition with the console logger's config schema, put in
the console logger's place for the CLI's runs only (the stored run config still names `console`, so a
re-execution from the UI uses Dagster's own). Step events move the bars; the assets' log messages
("N PDFs under", "<file>: ok", "embedded N/M") feed the file and chunk counts.
"""

from __future__ import annotations

import logging
import os
import re
import select
import signal
import sys
import threading
from collections.abc import Callable
from typing import IO, Any, Literal

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

from nexus_assets.lib.core.escaping import terminal
from nexus_assets.lib.distribution.vkp_pull import PullEvent

Mode = Literal["bars", "lines", "quiet"]
# Packages smaller than this get no byte bar in `vkp pull` (they arrive in one read: 0 %, then 100 %).
BYTES_BAR_FROM = 1_000_000

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


class HeldStderr:
    """stderr held for the display by a descriptor of its own, taken before a run starts; fd 2 itself
    becomes a pipe read by a thread that hands each whole line to `sink` (set by `forward_to`).

    Where stderr has no descriptor (a test capturing `sys.stderr`) nothing is held: the console writes
    to `sys.stderr` as before. A SIGINT is noticed at once (`interrupted`) even while Dagster's own
    handler defers it: what arrives on the pipe after it (the tracebacks of Dagster's `tail` and orphan
    watcher children, which get the terminal's Ctrl-C too) is dropped.
    """

    def __init__(self) -> None:
        self.console = stderr_console()
        self.interrupted = False
        self._sink: Callable[[str], None] | None = None
        self._fd: int | None = None
        self._saved: int | None = None
        self._file: IO[str] | None = None
        self._wakeup: tuple[int, int] | None = None
        self._old_wakeup = -1
        self._thread: threading.Thread | None = None

    def __enter__(self) -> HeldStderr:
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            return self
        sys.stderr.flush()
        self._fd, self._saved = fd, os.dup(fd)
        self._file = os.fdopen(os.dup(fd), "w", encoding="utf-8", errors="replace", buffering=1)
        self.console = Console(file=self._file, highlight=False, soft_wrap=True)
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        if threading.current_thread() is threading.main_thread():
            self._wakeup = os.pipe()
            os.set_blocking(self._wakeup[1], False)
            self._old_wakeup = signal.set_wakeup_fd(self._wakeup[1], warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), name="nexus-stderr", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is None or self._saved is None:
            return
        sys.stderr.flush()
        os.dup2(self._saved, self._fd)  # closes our end of the pipe; the reader sees its end once children exit
        os.close(self._saved)
        if self._wakeup:
            signal.set_wakeup_fd(self._old_wakeup)
        if self._thread:
            self._thread.join(timeout=1.0)  # a `tail` child may still hold the pipe: do not wait for it
        self._sink = None
        if self._file:
            self._file.flush()

    def forward_to(self, sink: Callable[[str], None]) -> None:
        self._sink = sink

    def _pump(self, pipe: int) -> None:
        pending = b""
        watched = [pipe, self._wakeup[0]] if self._wakeup else [pipe]
        while True:
            ready, _, _ = select.select(watched, [], [])
            if self._wakeup and self._wakeup[0] in ready:
                # SIGTERM too: Dagster maps it to its SIGINT handler during a run, so it interrupts the step, which
                # its retry policy would then run again unless the build stops here as it does on Ctrl-C.
                if {signal.SIGINT, signal.SIGTERM} & set(os.read(self._wakeup[0], 64)):
                    self.interrupted = True
                continue
            chunk = os.read(pipe, 65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._emit(line)
        if pending:
            self._emit(pending)
        os.close(pipe)

    def _emit(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r").rsplit("\r", 1)[-1]  # a `\r` redraw: its last frame
        sink = self._sink
        if self.interrupted or not text.strip():
            return
        if sink is not None:
            sink(text)
        elif self._file is not None:
            self._file.write(text + "\n")


class _Display:
    """Shared by both reporters: a rich Progress in bars mode, plain lines otherwise, on `console`."""

    def __init__(
        self,
        mode: Mode,
        console: Console | None = None,
        verbose: bool = False,
        held: HeldStderr | None = None,
    ) -> None:
        self.mode = mode
        self.verbose = verbose
        self.held = held
        self.console = console or (held.console if held else stderr_console())
        self.progress: Progress | None = None

    def __enter__(self) -> _Display:
        if self.mode == "bars":
            self.progress = self._make_progress()
            self.progress.start()
        if self.held:
            self.held.forward_to(self.output)
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

    @property
    def interrupted(self) -> bool:
        return bool(self.held and self.held.interrupted)

    def line(self, text: str, level: int = logging.INFO) -> None:
        """One message: above the bars, or a plain line; info is shown in bars mode only with --verbose
        and never in quiet mode; nothing once Ctrl-C was pressed (the command says what happened)."""
        if self.interrupted:
            return
        if level < logging.WARNING and (self.mode == "quiet" or (self.mode == "bars" and not self.verbose)):
            return
        text = terminal(text)  # run messages may quote an upload's name or text
        if self.progress:
            style = "red" if level >= logging.ERROR else "yellow" if level >= logging.WARNING else "dim"
            self.progress.console.print(text, style=style, markup=False, highlight=False)
        else:
            stream = self.console.file
            stream.write(text + "\n")
            stream.flush()

    def output(self, text: str) -> None:
        """A line written to stderr while the display holds it (a step's own output, mirrored from its
        compute log by Dagster): a warning when it says so, else shown like an info message."""
        warning = re.search(r"\b(warning|error)\b", text, re.IGNORECASE)
        self.line(text, logging.WARNING if warning else logging.INFO)


class BuildProgress(_Display):
    """Progress of a multi-partition build: partitions, steps of the current one, its files and chunks."""

    def __init__(
        self,
        mode: Mode,
        partitions: int,
        steps: int,
        console: Console | None = None,
        verbose: bool = False,
        held: HeldStderr | None = None,
    ) -> None:
        super().__init__(mode, console, verbose, held)
        self.partitions, self.steps = partitions, steps
        self.index, self.label, self.in_phase = 0, "", False
        self.steps_started = 0
        self.step = ""  # the step running now (named when a build is interrupted)
        self._stopping = False
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
        self.step = ""
        self._update("partitions", description=f"partitions ({label})")
        self._update("steps", description="  steps", completed=0, total=self.steps, visible=True)
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
        """A record of the run's log manager: a Dagster event (step started, succeeded...) or a message.

        After Ctrl-C, the first record raises KeyboardInterrupt in the run's own thread: Dagster turns an
        interrupted step with a retry policy into a retry (`op_execution_error_boundary`), so a build
        would otherwise carry on; raised here, outside the step's boundary, it ends the run.
        """
        if self.interrupted and not self._stopping:
            self._stopping = True
            raise KeyboardInterrupt
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
            self.step = step
            self.steps_started += 1
            self._update("steps", description=f"  step {step}")  # the partitions bar names the partition
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
        elif kind == "ENGINE_EVENT" and message.startswith("Step blocked by limit for pool"):
            # The step waits for a slot another run holds: say so (it waited in silence), and name it on Ctrl-C.
            self.step = step
            pool = message.rsplit(" ", 1)[-1]
            self.line(
                f"{self.prefix}: {step}: waiting for a free slot of pool {pool!r} (another run holds it)",
                logging.WARNING,
            )
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
            if progress and event.size >= BYTES_BAR_FROM:  # a smaller package arrives in one read: no bar
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
                for name in [n for n in self._tasks if n != "partitions"]:  # the partition's packages are done
                    progress.remove_task(self._tasks.pop(name))
            outcome = event.outcome
            failed = outcome.via == "failed"
            after = f" v{outcome.installed_after}" if outcome.installed_after else ""
            self.line(
                f"{where}: {outcome.via}{after}" + (f": {'; '.join(outcome.problems)}" if failed else ""),
                logging.ERROR if failed else logging.INFO,
            )
