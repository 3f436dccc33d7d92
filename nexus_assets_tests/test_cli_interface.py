"""The `nexus` interface without a build: options where people type them, --json documents, --version,
refusals that create nothing, help text on every option, and the progress display fed by hand."""

from __future__ import annotations

import io
import json
import logging
import re
from contextlib import redirect_stderr
from pathlib import Path
from types import SimpleNamespace

import click
import jsonschema
import pytest
from click.testing import CliRunner

from nexus_assets.cli import cli, main
from nexus_assets.cli_progress import BuildProgress, PullProgress, choose_mode
from nexus_assets.lib.core.layout import Partition
from nexus_assets.lib.distribution.vkp_pull import PullEvent, PullOutcome
from nexus_assets.lib.ingest.build_preflight import check_partitions, pdf_counts
from nexus_assets_tests.support.cli_json import ERROR_KEYS, PUBLISHED, SCHEMAS, check_document, published, validate

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data directory and DAGSTER_HOME; local mode whatever the caller's environment says."""
    for name in ("NEXUS_DEPLOYMENT", "NEXUS_DATA_DIR", "NEXUS_VKP_PUBLIC_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return tmp_path


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), obj=None, catch_exceptions=False)


def pdf(path: Path) -> Path:
    """A file the layout counts as a PDF (the preflight reads names, not contents)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.4\n%%EOF\n")
    return path


# --- options, version, help ---------------------------------------------------------------------------------


def test_version_names_the_package_and_its_libraries() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert re.match(r"nexus \d+\.\d+\.\d+ \(nexus-assets; dagster 1\.13\.\d+, chromadb ", result.output)


def test_global_options_work_before_and_after_the_command(env: Path) -> None:
    from nexus_assets.lib.core.job_tracking import JobRecord, SqliteJobStore, now_iso
    from nexus_assets.lib.core.layout import DataLayout

    data = env / "data"
    SqliteJobStore(DataLayout(data).jobs_db).put(JobRecord("run-1", now_iso(), "curriculum_build_job", "a/b"))
    before = run("--data-dir", str(data), "--json", "jobs", "--days", "1")
    after = run("jobs", "--days", "1", "--data-dir", str(data), "--json")
    mixed = run("--json", "jobs", "--data-dir", str(env / "elsewhere"), "--data-dir", str(data))
    for result in (before, after, mixed):
        assert result.exit_code == 0, result.output
        assert [j["job_id"] for j in check_document(result.stdout, "nexus.jobs/1")["jobs"]] == ["run-1"]
    (env / "x.vkp").write_bytes(b"not a zip archive")
    nested = run("vkp", "verify", str(env / "x.vkp"), "--data-dir", str(data), "--allow-unsigned", "--json")
    assert nested.exit_code == 1, nested.output
    assert check_document(nested.stdout, "nexus.vkp.verify/1")["packages"][0]["ok"] is False


def test_apply_pools_refuses_without_a_dagster_home(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pool limits go into the deployment's instance: without DAGSTER_HOME, exit 2 and one line, no traceback."""
    monkeypatch.delenv("DAGSTER_HOME")
    result = run("deploy", "apply-pools", "--json")
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == ERROR_KEYS and "DAGSTER_HOME is not set" in doc["error"]
    assert "Traceback" not in result.stderr


def test_verify_refuses_a_missing_file_as_it_refuses_a_directory(env: Path) -> None:
    """Both are input errors found before any package is read: exit 2 with one error document naming the
    path, whichever other files are listed with them (docs/cli.md, exit codes)."""
    (env / "x.vkp").write_bytes(b"not a zip archive")
    for bad, reason in ((env / "missing.vkp", "no such file"), (env, "is a directory")):
        result = run("vkp", "verify", str(env / "x.vkp"), str(bad), "--allow-unsigned", "--json")
        assert result.exit_code == 2, result.output
        doc = json.loads(result.stdout)
        assert set(doc) == ERROR_KEYS and doc["exit_code"] == 2 and doc["schema"] == "nexus.vkp.verify/1"
        assert str(bad) in doc["error"] and reason in doc["error"], doc["error"]


def test_jobs_never_creates_a_mistyped_data_directory(env: Path) -> None:
    """`NEXUS_DATA_DIR=/typo nexus jobs` is refused (exit 2) and writes nothing; an existing data directory
    without a job table lists no jobs and creates no table."""
    typo = env / "typo"
    result = run("--data-dir", str(typo), "jobs")
    assert result.exit_code == 2 and f"no data directory at {typo}" in result.stderr
    assert not typo.exists()
    (env / "data").mkdir()
    listed = run("--data-dir", str(env / "data"), "jobs", "--json")
    assert (
        listed.exit_code == 0 and check_document(listed.stdout, "nexus.jobs/1")["summary"]["processing_time_s"] == 0.0
    )
    assert isinstance(json.loads(listed.stdout)["summary"]["estimated_cost_usd"], float)
    assert not (env / "data" / "processed").exists()


def _options(command: click.Command, path: str = "nexus") -> list[tuple[str, click.Option]]:
    found = [(path, p) for p in command.params if isinstance(p, click.Option)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _options(sub, f"{path} {name}")
    return found


def test_every_option_and_command_has_help_text() -> None:
    missing = [f"{path} {option.opts[0]}" for path, option in _options(cli) if not option.help]
    assert not missing, missing

    def commands(command: click.Command, path: str) -> list[str]:
        subs = getattr(command, "commands", {})
        return [path] * (not command.help) + [p for n, c in subs.items() for p in commands(c, f"{path} {n}")]

    assert commands(cli, "nexus") == []


def test_usage_errors_exit_2_with_clicks_message(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bogus"]) == 2
    assert "No such command 'bogus'" in capsys.readouterr().err
    assert main(["build", "--chunk-size", "0"]) == 2
    assert main(["--help"]) == 0 and "Usage: nexus" in capsys.readouterr().out


# --- refusals that create nothing ---------------------------------------------------------------------------


def _created(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if "raw-curriculum" not in p.parts)


@pytest.mark.parametrize(
    ("args", "code"), [(["--version"], 0), (["build", "--subject", "informatika", "--grade", "kelas_99"], 2)]
)
def test_the_console_script_exits_with_mains_code_output_and_exit_handlers(
    env: Path, args: list[str], code: int
) -> None:
    """`script` ends the process without the interpreter's teardown: the exit code, everything written,
    and the exit handlers registered during the command must survive that."""
    import subprocess
    import sys

    pdf(env / "data" / "raw-curriculum" / "informatika" / "kelas_10" / "bab1.pdf")
    probe = (
        "import atexit, sys\n"
        "from nexus_assets.cli import script\n"
        "atexit.register(lambda: print('exit handler ran', end=''))  # unflushed: only script's flush shows it\n"
        f"sys.argv = ['nexus', *{args!r}, '--data-dir', {str(env / 'data')!r}]\n"
        "script()\n"
        "print('not reached')\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert proc.stdout.endswith("exit handler ran") and "not reached" not in proc.stdout
    if code == 0:
        assert proc.stdout.startswith("nexus ")
    else:
        assert "kelas_99" in proc.stderr and "did you mean 'kelas_10'?" in proc.stderr


def test_the_console_script_exits_when_a_thread_pool_was_left_running(env: Path) -> None:
    """A pool nobody shut down keeps a worker that is not a daemon waiting for work (OpenVINO's telemetry
    left one); only the interpreter's exit wakes it, so `script` must not join it first: that hung a
    build forever."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from nexus_assets.cli import script\n"
        "pool = ThreadPoolExecutor(1)  # kept referenced and never shut down\n"
        "pool.submit(print, 'pool ran', end='').result()\n"
        "sys.argv = ['nexus', '--version']\n"
        "script()\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("pool ran") and "nexus " in proc.stdout


def test_a_typod_partition_is_refused_and_nothing_is_created(env: Path) -> None:
    data = env / "data"
    pdf(data / "raw-curriculum" / "informatika" / "kelas_10" / "bab1.pdf")
    pdf(data / "raw-curriculum" / "informatika" / "kelas_11" / "bab1.pdf")
    result = run("build", "--subject", "informatika", "--grade", "kelas_99", "--data-dir", str(data))
    assert result.exit_code == 2
    assert f"no PDFs in {data / 'raw-curriculum' / 'informatika' / 'kelas_99'}/" in result.stderr
    assert "did you mean 'kelas_10', 'kelas_11'?" in result.stderr or "did you mean 'kelas_11', 'kelas_10'?" in (
        result.stderr
    )
    assert "nothing was registered or built" in result.stderr
    # No signing key, Chroma build, processed data, package, job record or Dagster instance (so no partition).
    assert _created(env) == ["data"], _created(env)


def test_a_typod_subject_alone_is_refused_with_the_nearest_subject(env: Path) -> None:
    data = env / "data"
    pdf(data / "raw-curriculum" / "informatika" / "kelas_10" / "bab1.pdf")
    result = run("--json", "--data-dir", str(data), "build", "--subject", "informatkia")
    assert result.exit_code == 2
    assert "did you mean 'informatika'?" in result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == ERROR_KEYS and doc["schema"] == "nexus.build/1" and doc["exit_code"] == 2
    assert _created(env) == ["data"]


def test_an_existing_folder_without_pdfs_is_refused(env: Path) -> None:
    data = env / "data"
    empty = data / "raw-curriculum" / "sejarah" / "kelas_10"
    empty.mkdir(parents=True)
    (empty / "catatan.txt").write_text("not a PDF")
    pdf(empty / "nested" / "bab.pdf")  # not directly in the folder: never built
    result = run("--data-dir", str(data), "build", "--subject", "sejarah", "--grade", "kelas_10")
    assert result.exit_code == 2
    assert f"no PDFs in {empty}/ (the folder exists" in result.stderr
    # Building everything: an empty folder beside nothing else is refused too, naming it.
    everything = run("--data-dir", str(data), "build")
    assert everything.exit_code == 2
    assert f"skipped: sejarah/kelas_10: no PDFs in {empty}/" in everything.stderr
    assert _created(env) == ["data"]


def test_an_invalid_subject_is_explained_not_answered_with_rename_the_folder(env: Path) -> None:
    result = run("--data-dir", str(env / "data"), "build", "--subject", "Ilmu Komputer")
    assert result.exit_code == 2
    assert "invalid --subject 'Ilmu Komputer'" in result.stderr and "did you mean 'ilmu_komputer'?" in result.stderr
    assert "rename the folder" not in result.stderr


def test_preflight_counts_only_pdfs_the_build_would_read() -> None:
    keys = [
        "raw-curriculum/a/k1/x.pdf",
        "raw-curriculum/a/k1/.hidden.pdf",
        "raw-curriculum/a/k2/notes.txt",
        "raw-curriculum/a/k2/sub/y.pdf",
        "raw-curriculum/B/k1/z.pdf",
    ]
    counts = pdf_counts(keys)
    assert counts == {Partition("a", "k1"): 1}
    checked = check_partitions(
        [Partition("a", "k1"), Partition("a", "k2"), Partition("b", "k1")],
        counts,
        "s3://bucket/raw-curriculum/",
        folders=[Partition("a", "k2")],
    )
    assert checked.buildable == [Partition("a", "k1")]
    assert checked.refused[Partition("a", "k2")].startswith("no PDFs in s3://bucket/raw-curriculum/a/k2/ (the folder")
    assert (
        checked.refused[Partition("b", "k1")] == "no PDFs in s3://bucket/raw-curriculum/b/k1/ (existing subject "
        "folders: 'a')"
    )


# --- --json of the commands that need no build --------------------------------------------------------------


def test_json_documents_of_commands_without_a_build(env: Path) -> None:
    data = env / "data"
    keys = run("keys", "generate", "--out", str(env / "keys"), "--json")
    doc = check_document(keys.stdout, "nexus.keys.generate/1")
    assert Path(doc["public_key"]).exists() and "private key" in keys.stderr, "text goes to stderr under --json"
    prune = check_document(run("cache", "prune", "--data-dir", str(data), "--json").stdout, "nexus.cache.prune/1")
    assert prune["bucket"] is None and {"location", "blobs_removed", "vectors_removed"} <= set(prune["local"])
    render = run("deploy", "render-instance", "--json")
    assert check_document(render.stdout, "nexus.deploy.render-instance/1")["instance"]["storage"]
    # A refused invocation still answers a script with one document.
    no_key = run("vkp", "verify", "x.vkp", "--data-dir", str(data), "--json")
    assert no_key.exit_code == 2
    assert set(json.loads(no_key.stdout)) == ERROR_KEYS
    validate(json.loads(no_key.stdout), "error")


def test_the_published_json_schema_is_the_typed_models() -> None:
    """docs/cli-schemas.json is what nexus_assets/cli_schemas.py generates (regenerate:
    `.venv/bin/python -m nexus_assets.cli_schemas > docs/cli-schemas.json`), and it rejects what it must."""
    from nexus_assets.cli_schemas import json_schemas

    assert json.loads(PUBLISHED.read_text()) == json.loads(json.dumps(json_schemas())), (
        "regenerate docs/cli-schemas.json"
    )
    good = {
        "schema": "nexus.jobs/1",
        "ok": True,
        "days": 1,
        "jobs": [],
        "summary": {
            "runs": 0,
            "by_status": {},
            "total_chunks": 0,
            "total_embeddings": 0,
            "input_tokens": 0,
            "fallbacks": 0,
            "processing_time_s": 0.0,
            "estimated_cost_usd": 0.0,
        },
    }
    validate(good, "nexus.jobs/1")
    for bad in (
        {**good, "days": "1"},
        {**good, "schema": "nexus.build/1"},
        {k: v for k, v in good.items() if k != "jobs"},
        {**good, "undeclared": 1},  # the published schema stays open; what nexus writes may not
        {**good, "summary": {**good["summary"], "processing_time_s": 0}},  # a documented float written as int
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(bad, "nexus.jobs/1")
    jsonschema.validate({**good, "undeclared": 1}, published()["nexus.jobs/1"])  # what readers must accept


def test_every_documented_schema_is_in_docs() -> None:
    text = DOCS.read_text()
    for schema, keys in SCHEMAS.items():
        assert f"### `{schema}`" in text, schema
        section = text.split(f"### `{schema}`", 1)[1].split("\n### ", 1)[0]
        assert all(f"`{key}`" in section for key in keys), (schema, [k for k in keys if f"`{k}`" not in section])


# --- progress ----------------------------------------------------------------------------------------------


def _record(message: str, step: str, level: int = logging.INFO, event: object = None) -> logging.LogRecord:
    record = logging.LogRecord("nexus.cli", level, __file__, 0, message, (), None)
    record.dagster_meta = {"step_key": step, "orig_message": message, "dagster_event": event}  # type: ignore[attr-defined]
    return record


def _event(kind: str, data: object = None) -> SimpleNamespace:
    return SimpleNamespace(event_type_value=kind, event_specific_data=data)


def test_build_progress_counts_files_and_chunks_from_the_run_s_records() -> None:
    err = io.StringIO()
    label = "informatika/kelas_10"
    with redirect_stderr(err), BuildProgress("lines", partitions=2, steps=3) as shown:
        shown.partition_started(label)
        shown.handle(_record("", "raw_pdfs", logging.DEBUG, _event("STEP_START")))
        shown.handle(_record(f"{label}: 2 PDFs under /d/raw-curriculum/informatika/kelas_10", "raw_pdfs"))
        shown.handle(_record("", "raw_pdfs", logging.DEBUG, _event("STEP_SUCCESS")))
        shown.handle(_record(f"{label}: a.pdf: ok, 5/5 pages with text", "pdf_text"))
        shown.handle(_record(f"{label}: b.pdf: encrypted: needs a password", "pdf_text", logging.WARNING))
        shown.handle(_record(f"{label}: a.pdf: 17 chunks", "text_chunks"))
        shown.handle(_record(f"{label}: embedded 9/17 new or changed chunks", "chunk_embeddings"))
        assert (shown.files_done, shown.files_total, shown.chunks_total) == (2, 2, 17)
        assert (shown.chunks_done, shown.chunks_total) == (9, 17)
        shown.handle(
            _record(f"{label}: 9 chunks embedded (local, m, torch/fp32), 8 from the cache; 0", "chunk_embeddings")
        )
        assert shown.chunks_done == 17
        failed = SimpleNamespace(passed=False, check_name="text_coverage", severity=SimpleNamespace(value="ERROR"))
        shown.handle(_record("", "pdf_text_text_coverage", logging.DEBUG, _event("ASSET_CHECK_EVALUATION", failed)))
        shown.partition_finished("partial", 1.25)
    lines = err.getvalue().splitlines()
    assert lines[0] == f"[1/2] {label}: started"
    assert f"[1/2] {label}: step 1/3 raw_pdfs" in lines
    assert f"[1/2] {label}: pdf_text: warning: b.pdf: encrypted: needs a password" in lines
    assert f"[1/2] {label}: check text_coverage failed (error)" in lines
    assert lines[-1] == f"[1/2] {label}: partial in 1.2 s"


def test_quiet_and_bars_modes_show_only_warnings_as_messages() -> None:
    for mode in ("quiet", "bars"):
        err = io.StringIO()
        with redirect_stderr(err), BuildProgress(mode, partitions=1, steps=1) as shown:
            shown.partition_started("a/b")
            shown.handle(_record("a/b: 1 PDFs under /x", "raw_pdfs"))
            shown.handle(_record("a/b: signing with the DEVELOPMENT key", "vkp_package", logging.WARNING))
        assert "1 PDFs under" not in err.getvalue() and "DEVELOPMENT key" in err.getvalue(), mode


def test_progress_is_plain_lines_when_stderr_is_not_a_terminal() -> None:
    from rich.console import Console

    assert choose_mode(Console(file=io.StringIO()), quiet=False) == "lines"
    assert choose_mode(Console(file=io.StringIO(), force_terminal=True), quiet=False) == "bars"
    assert choose_mode(Console(file=io.StringIO(), force_terminal=True), quiet=True) == "quiet"


def test_pull_progress_lines() -> None:
    err = io.StringIO()
    with redirect_stderr(err), PullProgress("lines") as shown:
        shown(PullEvent("partition", "a/b", 1, 1))
        for done in (10, 20):
            shown(PullEvent("download", "a/b", name="a_b_v1.0.0.vkp", done=done, size=20))
        shown(PullEvent("verify", "a/b", name="a_b_v1.0.0.vkp"))
        shown(PullEvent("done", "a/b", 1, 1, outcome=PullOutcome("a/b", None, "1.0.0", "full", 20)))
    assert err.getvalue().splitlines() == [
        "[1/1] a/b: checking",
        "a/b: downloading a_b_v1.0.0.vkp (20 bytes)",
        "a/b: verifying a_b_v1.0.0.vkp",
        "[1/1] a/b: full v1.0.0",
    ]


def test_pull_bars_keep_one_row_per_package_in_flight() -> None:
    """Bars mode: a package's byte bar lives while it downloads and installs, and goes when its partition
    is done (rows labelled "(installing)" used to pile up); a small package gets no bar at all."""
    from rich.console import Console

    from nexus_assets.cli_progress import BYTES_BAR_FROM

    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    big = BYTES_BAR_FROM * 2
    with PullProgress("bars", console=console) as shown:
        for index, part in enumerate(("a/b", "c/d"), start=1):
            shown(PullEvent("partition", part, index, 2))
            name = part.replace("/", "_") + "_v1.0.0.vkp"
            for done in (big // 2, big):
                shown(PullEvent("download", part, name=name, done=done, size=big))
            shown(PullEvent("install", part, name=name))
            assert shown.progress is not None
            assert [t.description for t in shown.progress.tasks] == [
                "partitions (" + part + ")",
                f"  {name} (installing)",
            ]
            shown(PullEvent("done", part, index, 2, outcome=PullOutcome(part, None, "1.0.0", "full", big)))
            assert [t.description for t in shown.progress.tasks] == ["partitions (" + part + ")"]
        shown(PullEvent("download", "e/f", name="e_f_v1.0.0.vkp", done=10, size=10))
        assert len(shown.progress.tasks) == 1, "no byte bar for a package that arrives in one read"


def test_usage_errors_exit_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-q with -v, and a --partition that is not <subject>/<grade>, are refused by the option parser."""
    assert main(["build", "-q", "-v"]) == 2
    assert "-q/--quiet and -v/--verbose exclude each other" in capsys.readouterr().err
    catalog = env / "catalog.json"
    assert main(["vkp", "pull", "--catalog", str(catalog), "--dest", str(env / "d"), "--partition", "biologi"]) == 2
    err = capsys.readouterr().err
    assert "invalid partition 'biologi': expected <subject>/<grade>" in err and "Usage:" in err
    assert not (env / "d").exists()


def test_report_of_folders_not_built_is_a_refusal_not_a_failed_gate(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing built: exit 2 (nothing could be judged), not exit 1 beside "0 blocking failure(s)"."""
    assert main(["--data-dir", str(data_dir), "report", "--subject", "informatika", "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 2 and "nothing to report" in doc["error"] and "not built yet" in doc["error"]
