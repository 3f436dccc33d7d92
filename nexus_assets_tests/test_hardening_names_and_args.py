"""Hardening, issue 26's attack round: names that collide or overflow, names that are not UTF-8, odd arguments.

Each case was first reproduced against the tree before its fix (the test failed), then fixed at its mechanism:
package names checked against rival partitions by the run itself (`raw_sources.package_refusal`), slug length in
`layout.validate_slug`, invalid UTF-8 in `upload_tracking.partition_of_key` (the one rule of what a build
reads), and every CLI path through `cli.CliPath` (`input_files.path_problem`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pymupdf
import pytest
from click.testing import CliRunner

from nexus_assets.build import BuildRefused, plan
from nexus_assets.lib.core.layout import (
    CHROMA_NAME_MAX,
    MAX_SLUG_CHARS,
    NAME_MAX_BYTES,
    DataLayout,
    LayoutError,
    Partition,
    package_rivals,
)
from nexus_assets.lib.distribution.vkp_catalog import LocalCatalog
from nexus_assets.lib.index.chroma_store import model_collection_name
from nexus_assets.lib.ingest.upload_tracking import partition_of_key
from nexus_assets.settings import Settings


def pdf(path: Path, text: str = "Algoritma adalah urutan langkah logis untuk menyelesaikan masalah. " * 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    doc.new_page().insert_textbox(pymupdf.Rect(40, 40, 560, 800), text, fontsize=9)
    path.write_bytes(doc.tobytes())  # MuPDF's own save cannot take a name of invalid UTF-8
    return path


def local_settings(root: Path) -> Settings:
    return Settings.from_env({"NEXUS_DATA_DIR": str(root)})


OWNER, NEWCOMER = Partition("informatika", "kelas_10"), Partition("informatika_kelas", "10")


def _publish_entry(layout: DataLayout, part: Partition) -> None:
    """A catalog entry for `part`: what a published partition has (the owner of its package names)."""
    LocalCatalog(layout.vkp_dir / "catalog.json").put(part, {"latest": "1.0.0", "versions": {}})


def _raw_pdfs_run(root: Path, part: Partition) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    from nexus_assets.defs.assets import curriculum_assets
    from nexus_assets.defs.partitions import key_of, register_partitions
    from nexus_assets_tests.support.dagster_build import local_resources_at

    with dg.instance_for_test() as instance:
        register_partitions(instance, [part])
        result = dg.materialize(
            curriculum_assets,
            selection=["raw_pdfs"],
            partition_key=key_of(part),
            instance=instance,
            resources=local_resources_at(root),
            raise_on_error=False,
        )
        retries = [
            e.event_type_value for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
        ]
        return result, retries


@pytest.mark.reliability(
    "bad input", "two folder pairs giving one package name: informatika_kelas/10, informatika/kelas_10"
)
def test_folders_that_share_package_names_never_overwrite_each_other(tmp_path: Path, reliability) -> None:
    layout = DataLayout(tmp_path)
    for part in (OWNER, NEWCOMER):
        pdf(layout.raw_dir(part) / "buku.pdf")
    pdf(layout.raw_dir(Partition("fisika", "kelas_10")) / "buku.pdf")
    assert package_rivals(OWNER) == [NEWCOMER] and package_rivals(NEWCOMER) == [OWNER]

    # Neither published yet: neither is built, the message names both folders; the other partition builds.
    found, refused = layout.discover_partitions()
    assert found == [Partition("fisika", "kelas_10")]
    [message] = [r for r in refused if "same package names" in r]
    assert "raw-curriculum/informatika/kelas_10/" in message and "raw-curriculum/informatika_kelas/10/" in message
    with pytest.raises(BuildRefused, match="same package names") as named:  # was: built, overwriting the other
        plan(layout, local_settings(tmp_path), "informatika_kelas", "10")
    assert "nothing was registered" in str(named.value)

    # informatika/kelas_10 publishes: it keeps building, the newcomer is refused by name, on every path.
    _publish_entry(layout, OWNER)
    found, refused = layout.discover_partitions(lambda p: p == OWNER)
    assert found == [Partition("fisika", "kelas_10"), OWNER]
    assert plan(layout, local_settings(tmp_path), "informatika", "kelas_10").targets == [OWNER]
    with pytest.raises(BuildRefused, match="already publishes them"):
        plan(layout, local_settings(tmp_path), "informatika_kelas", "10")
    # A run started by a sensor or the launchpad (no plan) stops in its first step, without retries.
    result, retries = _raw_pdfs_run(tmp_path, NEWCOMER)
    assert not result.success and not retries
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    text = failure.step_failure_data.error.message
    assert "informatika/kelas_10" in text and "raw-curriculum/informatika_kelas/10/" in text
    owner_run, _ = _raw_pdfs_run(tmp_path, OWNER)
    assert owner_run.success
    reliability(f"the newcomer refused on every path, the owner and fisika/kelas_10 build: {text.strip()[:200]}")


@pytest.mark.reliability("bad input", "subject/grade folders so long the package or collection name overflows")
def test_over_long_slugs_are_refused_before_any_work(tmp_path: Path, reliability) -> None:
    longest = "a" * MAX_SLUG_CHARS
    part = Partition(longest, longest)
    # The longest names a partition allows fit every system's limit, with room for the versions.
    delta = "12345678-" + part.vkpd_name("999.999.9999", "999.999.9998")
    assert len(delta.encode()) <= NAME_MAX_BYTES
    model = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2" + "-x" * 80  # a 200-char model slug
    assert len(model_collection_name(part.collection_name, model, 1024)) <= CHROMA_NAME_MAX
    layout = DataLayout(tmp_path)
    too_long = "b" * 200  # fits a folder name (255), but not subject_grade_v1.0.0_from_v... .vkpd
    pdf(layout.raw_root / too_long / "kelas_10" / "buku.pdf")
    pdf(layout.raw_root / "fisika" / "kelas_10" / "buku.pdf")
    found, refused = layout.discover_partitions()
    assert found == [Partition("fisika", "kelas_10")]
    [message] = refused
    assert "200 characters, over the limit of 64" in message and "raw-curriculum/bbbb" in message
    assert len(message) < 700, "the message names the folder without repeating all of it"
    with pytest.raises(LayoutError, match="over the limit of 64"):
        partition_of_key(f"raw-curriculum/{too_long}/kelas_10/buku.pdf")
    run = CliRunner().invoke(
        __import__("nexus_assets.cli", fromlist=["cli"]).cli,
        ["build", "--subject", too_long, "--grade", "kelas_10"],
        env={"NEXUS_DATA_DIR": str(tmp_path)},
    )
    assert run.exit_code == 2 and "over the limit of 64" in run.output and "Traceback" not in run.output
    reliability(f"refused by discovery, the sensors' rule and the CLI (exit 2): {message[:160]}")


@pytest.mark.reliability("bad input", "a file name that is not valid UTF-8 (Latin-1 bytes) beside good PDFs")
def test_a_file_name_of_invalid_utf8_is_that_files_refusal(tmp_path: Path, reliability) -> None:
    from nexus_assets.lib.core.tables import raw_manifest_frame
    from nexus_assets.lib.ingest.raw_sources import LocalRawSource

    layout = DataLayout(tmp_path)
    folder = layout.raw_dir(OWNER)
    pdf(folder / "baik.pdf")
    latin1 = os.fsdecode(b"buku_\xe9dition.pdf")  # 'é' written by a Latin-1 system
    pdf(folder / latin1)
    skipped: list[str] = []
    manifest = raw_manifest_frame(folder, tmp_path, skipped)
    assert manifest["file"].tolist() == ["baik.pdf"]
    [reason] = skipped
    assert "not a valid UTF-8 name" in reason and "0xe9" in reason and "buku_\\\\xe9dition.pdf" in reason
    reason.encode("utf-8")  # the reason itself can be logged, stored and shown
    # The sensors fingerprint the folder (was: UnicodeEncodeError in the sensor) and the run builds the rest.
    from nexus_assets.lib.ingest.upload_tracking import partition_fingerprint

    assert partition_fingerprint(LocalRawSource(layout).listing(OWNER.raw_prefix() + "/"), OWNER)
    result, _ = _raw_pdfs_run(tmp_path, OWNER)
    assert result.success
    [mat] = result.asset_materializations_for_node("raw_pdfs")
    assert mat.metadata["files"].value == 1 and mat.metadata["files_skipped"].value == 1
    reliability(f"that file skipped with its reason, the partition builds: {reason[:150]}")


LONG = "a" * 5000
ODD_ARGUMENTS = [
    (["--data-dir", "", "jobs"], "is empty"),
    (["--data-dir", "a\x00b", "jobs"], "NUL byte"),
    (["--data-dir", LONG, "jobs"], "over the 4,096 bytes"),
    (["report", "--golden", ""], "is empty"),
    (["report", "--golden", "x\x00.jsonl"], "NUL byte"),
    (["report", "--min-recall", "nan"], "not a finite number"),
    (["vkp", "verify", "b" * 300 + ".vkp", "--allow-unsigned"], "over the 255 bytes a file or folder name"),
    (["vkp", "pull", "--catalog", "c\x00.json", "--dest", "d"], "NUL byte"),
    (["vkp", "pull", "--catalog", "https://x/\x1b[2J", "--dest", "d"], "not a usable URL"),
    (["vkp", "pull", "--catalog", "c.json", "--dest", LONG], "over the 4,096 bytes"),
    (["vkp", "pull", "--catalog", "c.json", "--dest", "d", "--partition", ""], "invalid partition ''"),
    (["vkp", "pull", "--catalog", "c.json", "--dest", "d", "--partition", "a/b/c"], "invalid partition 'a/b/c'"),
    (["search", "q", "--subject", "a", "--grade", "b", "--installed", "i\x00"], "NUL byte"),
    (["search", "q", "--subject", LONG, "--grade", "b"], "over the limit of 64"),
    (["keys", "generate", "--out", "k", "--name", "../../elsewhere"], "not a plain file name"),
    (["keys", "generate", "--out", "k", "--name", ""], "not a plain file name"),
    (["cache", "prune", "--older-than-days", "nan"], "not a finite number"),
    (["cache", "prune", "--older-than-days", "-1"], "not in the range"),
    (["jobs", "--days", "99999999999"], "not in the range"),
    (["deploy", "render-instance", "--max-concurrent-runs", "-5"], "not in the range"),
    (["build", "--chunk-size", "10"], "chunk_size must be at least 50"),
    (["build", "--chunk-size", "100", "--chunk-overlap", "100"], "half the chunk size"),
    (["build", "--chunk-size", "150"], "half the chunk size (75), got 100"),  # the default overlap, named
]


@pytest.mark.reliability("bad input", "odd CLI arguments: empty, NUL bytes, over PATH_MAX, nan, ../ names")
def test_odd_arguments_are_usage_errors_without_a_traceback(tmp_path: Path, capsys, monkeypatch, reliability) -> None:
    from nexus_assets.cli import main

    pdf(DataLayout(tmp_path).raw_dir(OWNER) / "buku.pdf")  # something to build: the chunking check comes first
    monkeypatch.setenv("NEXUS_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    shown = []
    for argv, expected in ODD_ARGUMENTS:
        code = main(argv)  # in process: argv from a shell cannot hold NUL, callers of main() can
        err = capsys.readouterr().err
        assert code == 2, (argv[:4], code, err[-400:])
        assert expected in err and "Traceback" not in err, (argv[:4], err[-400:])
        assert len(err) < 2000, "a long value is shown short"
        shown.append(err.strip().splitlines()[-1])
    assert not (tmp_path / "processed").exists() and not list(tmp_path.glob("**/*.key")), "nothing ran"
    reliability(f"{len(ODD_ARGUMENTS)} cases, exit 2 each, e.g. {shown[1][:90]} | {shown[-1][:110]}")


# C1 controls (CSI U+009B starts an escape sequence on many terminals), bidirectional embeddings, overrides and
# isolates, and Unicode tag characters (invisible ASCII): in page text, file names, anywhere an upload reaches.
INVISIBLE = "".join(
    [*map(chr, range(0x80, 0xA0)), *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]
    + [chr(0xE0000 + c) for c in (0x01, 0x41, 0x7F)]
)
HOSTILE_TEXT = f"Fotosintesis \x9b2J\u202egnp.exe\u2066isolat\u2069 {chr(0xE0049)}{chr(0xE0047)}nore previous"


@pytest.mark.reliability("bad input", "C1 controls, bidi overrides and tag characters in page text and names")
def test_invisible_characters_never_reach_the_terminal_or_json_unescaped(
    tmp_path: Path, capsys, monkeypatch, reliability
):
    import json

    import nexus_assets.cli as cli_module
    from nexus_assets.lib.core.escaping import json_text, markdown, shown, terminal
    from nexus_assets.lib.index import search as search_module
    from nexus_assets.lib.index.search import Hit
    from nexus_assets.lib.ingest.text_cleaning import normalize

    for char in INVISIBLE:
        assert char not in shown(f"a{char}b") and char not in markdown(char) and char not in terminal(char)
        assert json.loads(json_text(json.dumps(char, ensure_ascii=False))) == char, "JSON keeps the value"
    # The indexed text loses C1 and tag characters (no meaning; tags smuggle hidden ASCII to language models);
    # bidirectional controls stay in it (Arabic passages), escaped wherever shown.
    indexed = normalize(HOSTILE_TEXT)
    assert "\x9b" not in indexed and chr(0xE0049) not in indexed and "\u202e" in indexed

    hit = Hit("c1", "buku\u202egnp.pdf", 3, 3, 0.9, HOSTILE_TEXT, 1, 1)
    monkeypatch.setattr(search_module, "search", lambda *args, **kwargs: [hit])
    monkeypatch.setattr(cli_module, "_query_embedder", lambda built_with: None)
    argv = ["--data-dir", str(tmp_path), "search", "fotosintesis", "--subject", "biologi", "--grade", "kelas_10"]
    assert cli_module.main(argv) == 0
    text = capsys.readouterr().out
    assert cli_module.main([*argv, "--json"]) == 0
    document = capsys.readouterr().out
    for output in (text, document):
        assert not any(char in output for char in INVISIBLE), output
    assert "\\x9b2J" in text and "buku\\u202egnp.pdf" in text and "\\U000e0049" in text
    assert json.loads(document)["hits"][0]["text"] == HOSTILE_TEXT, "--json carries the exact text, escaped"
    reliability(f"shown as escapes on the terminal, exact value in --json: {text.splitlines()[0][:100]}")


def _golden_row(**fields: object) -> dict:
    return {
        "question": "Apa itu algoritma?",
        "subject": "informatika",
        "grade": "kelas_10",
        "file": "b.pdf",
        "page": 1,
    } | fields


@pytest.mark.reliability("bad input", "hostile golden files: huge lines, U+2028 in a string, BOM, bytes not UTF-8")
def test_hostile_golden_files_end_in_our_error_naming_file_and_line(tmp_path: Path, reliability) -> None:
    import json

    from nexus_assets.lib.index.retrieval_eval import GoldenFileError, load_golden

    good = json.dumps(_golden_row(), ensure_ascii=False)
    path = tmp_path / "golden.jsonl"
    # Valid files: a question holding U+2028 or U+0085 (legal raw inside a JSON string) used to be cut in two by
    # str.splitlines and refused; a Windows editor's byte-order mark and CRLF endings are accepted.
    odd = json.dumps(_golden_row(question="Apa\u2028itu\x85algoritma\x1c?"), ensure_ascii=False)
    path.write_bytes(("\ufeff" + good + "\r\n" + odd + "\r\n").encode())
    assert [q.question for q in load_golden(path)] == ["Apa itu algoritma?", "Apa\u2028itu\x85algoritma\x1c?"]
    cases = {
        "line over the budget": ([good, json.dumps(_golden_row(question="x" * 70_000))], ":2: the line is 70,"),
        "question too long": ([json.dumps(_golden_row(question="kata " * 1000))], ":1: not a golden question"),
        "non-object": ([good, good, "[1]"], ":3: not a golden question (a JSON object"),
        "wrong type": ([json.dumps(_golden_row(page=[1]))], "'page' must be a whole page number"),
        "missing key": ([json.dumps({"question": "q"})], "missing subject, grade, file, page"),
        "huge number": ([good.replace('"page": 1', '"page": ' + "9" * 5000)], ":1: not a golden question"),
        # the line number counts b"\n" only: U+2028 on line 1 does not shift the error to line 3
        "number after U+2028": ([odd, "{"], ":2: not a golden question (not JSON"),
    }
    seen = []
    for name, (lines, expected) in cases.items():
        path.write_text("\n".join(lines), encoding="utf-8")
        with pytest.raises(GoldenFileError) as refused:
            load_golden(path)
        assert str(path) in str(refused.value) and expected in str(refused.value), (name, str(refused.value))
        assert len(str(refused.value)) < 800, name
        seen.append(str(refused.value).removeprefix(str(path)))
    path.write_bytes(good.encode() + b"\n" + b'{"question": "caf\xe9"}\n')  # Latin-1 on line 2
    with pytest.raises(GoldenFileError, match=r":2: not UTF-8 text \(byte 0xe9 at column 18\)"):
        load_golden(path)
    reliability(f"{len(cases) + 1} hostile files refused by file and line, e.g. {seen[0][:80]}; BOM/U+2028 accepted")


@pytest.mark.slow
@pytest.mark.reliability("bad input", "expensive pages in a daemon process (celery worker): hang, crash, deflate bomb")
def test_extraction_in_a_daemon_process_keeps_its_time_and_memory_limits(tmp_path: Path, reliability) -> None:
    """A celery prefork child is a daemon process, which multiprocessing refuses any child: the pool was
    unavailable there and every file was read in the step's own process, with no memory budget and only the
    cooperative time check (a page stuck inside MuPDF never returns to it). Its workers are now programs
    (`subprocess`): in a daemon process here, a file that hangs is killed at its limit, one that crashes costs
    itself, and a page that decodes to ~2 GB ends as out_of_memory while the daemon's own peak RSS stays small."""
    import json
    import subprocess
    import sys
    import textwrap

    from nexus_assets_tests.support.raw_pdf import overlaid_text

    (tmp_path / "bom.pdf").write_bytes(overlaid_text(200_000))
    for name in ("hangs.pdf", "crashes.pdf", "baik.pdf"):
        pdf(tmp_path / name)
    script = textwrap.dedent(
        f"""
        import json, multiprocessing, resource, time
        from pathlib import Path
        import nexus_assets.lib.ingest.pdf_extraction as pe
        from nexus_assets.lib.core.hashing import sha256_file
        from nexus_assets_tests.test_hardening_input import _misbehaving_worker

        root = Path({str(tmp_path)!r})

        def in_daemon(queue):
            # The whole daemon may map at most 4 GiB: the machine is safe even if a read were unbounded.
            resource.setrlimit(resource.RLIMIT_AS, (4 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
            assert multiprocessing.current_process().daemon
            pe.HARD_LIMIT_GRACE_S = 1.0
            limits = pe.ExtractionLimits(max_seconds=1.0)
            results = {{}}
            names = ["hangs.pdf", "crashes.pdf", "baik.pdf"]
            started = time.monotonic()
            try:
                tasks = [(i, (root / n, sha256_file(root / n), None, limits, None)) for i, n in enumerate(names)]
                pe.run_pool(tasks, 2, lambda i, r: results.__setitem__(names[i], r.status), target=_misbehaving_worker)
            except pe.PoolUnavailable as exc:
                results["pool"] = str(exc)
            seconds = time.monotonic() - started
            budget = pe.ExtractionLimits(max_memory_mb=1024, max_page_chars=10**9, max_file_chars=10**10)
            items = [(n, sha256_file(root / n), lambda n=n: root / n) for n in ("bom.pdf", "baik.pdf")]
            extracted, _ = pe.extract_pdfs(items, limits=budget)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
            queue.put({{"pool": results, "seconds": seconds, "memory": [r.status for r in extracted], "peak_mb": peak}})

        if __name__ == "__main__":
            queue = multiprocessing.get_context("fork").Queue()
            daemon = multiprocessing.get_context("fork").Process(target=in_daemon, args=(queue,), daemon=True)
            daemon.start()
            print(json.dumps(queue.get(timeout=240)))
            daemon.join(30)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[1]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["pool"] == {"hangs.pdf": "timeout", "crashes.pdf": "crashed", "baik.pdf": "ok"}, report
    assert report["seconds"] < 60, report
    assert report["memory"] == ["out_of_memory", "ok"], report
    assert report["peak_mb"] < 600, f"the daemon itself never held the bomb's pages: {report}"
    reliability(
        f"in a daemon process: hang -> timeout (killed), crash -> crashed, bomb -> out_of_memory; pool "
        f"{report['seconds']:.1f} s, the daemon's peak RSS {report['peak_mb']} MiB"
    )


@pytest.mark.reliability("bad input", "a file refused by the chunk budget, then packaged: its status in sources")
def test_package_sources_carry_the_chunk_budget_refusal(tmp_path: Path, bedrock_env, monkeypatch, reliability) -> None:
    """vkp_package's `sources` listed a file text_chunks had refused by the chunk budget as `ok`: a school
    server read that the book was indexed when none of its pages was."""
    import dataclasses
    import zipfile

    from nexus_assets.defs import settings as code_location
    from nexus_assets.defs.assets import curriculum_assets
    from nexus_assets.defs.partitions import key_of, register_partitions
    from nexus_assets.defs.resources import EmbedderResource
    from nexus_assets.lib.index.chunking import ChunkBudget
    from nexus_assets_tests.support.dagster_build import local_resources_at

    layout = DataLayout(tmp_path)
    folder = layout.raw_dir(OWNER)
    pdf(folder / "a_tipis.pdf")
    pdf(folder / "b_tebal.pdf", "Jaringan komputer menghubungkan perangkat untuk bertukar data. " * 40)
    monkeypatch.setattr(
        code_location, "SETTINGS", dataclasses.replace(code_location.SETTINGS, chunk_budget=ChunkBudget(4, 100))
    )
    with dg.instance_for_test() as instance:
        register_partitions(instance, [OWNER])
        result = dg.materialize(
            curriculum_assets,
            partition_key=key_of(OWNER),
            instance=instance,
            resources=local_resources_at(tmp_path, EmbedderResource(backend="bedrock")),
            run_config={
                "ops": {
                    "text_chunks": {"config": {"cap_to_model_window": False, "chunk_size": 200, "chunk_overlap": 20}}
                }
            },
        )
        assert result.success
    [mat] = result.asset_materializations_for_node("text_chunks")
    refused = {r.data["file"]: r.data["status"] for r in mat.metadata["over_budget"].records}
    assert refused == {"b_tebal.pdf": "too_many_chunks"}
    [package] = sorted(layout.vkp_dir.glob("*.vkp"))
    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    statuses = {s["file"]: s["status"] for s in manifest["sources"]}
    assert statuses == {"a_tipis.pdf": "ok", "b_tebal.pdf": "too_many_chunks"}, statuses
    reliability(f"sources in {package.name}: {statuses}")


@pytest.mark.reliability("bad input", "NEXUS_* numbers nan, inf, 1e999 (time limit, retry delay, AWS timeouts)")
def test_every_numeric_setting_refuses_values_that_are_not_finite(tmp_path: Path, capsys, monkeypatch, reliability):
    """Red team a26 F1-F3: `NEXUS_MAX_EXTRACTION_SECONDS=nan` switched the time limit off (`elapsed > nan` is
    never true), `NEXUS_MAX_PDF_MB=inf` raised OverflowError (exit 1, no --json document), and
    `NEXUS_STEP_RETRY_DELAY=inf` held the first failing step forever, deaf to Ctrl-C. Every variable that refuses
    a non-number must also refuse these, naming itself; the CLI says so with exit 2 and an error document."""
    from nexus_assets.cli import main

    base, numeric = _numeric_variables()
    assert {"NEXUS_MAX_EXTRACTION_SECONDS", "NEXUS_STEP_RETRY_DELAY", "NEXUS_AWS_READ_TIMEOUT"} <= set(numeric)
    for variable in numeric:
        for value in ("nan", "NaN", "inf", "-inf", "1e999"):
            with pytest.raises(ValueError, match=variable):
                Settings.from_env({**base, variable: value})
    with pytest.raises(ValueError, match="at most 3600"):
        Settings.from_env({"NEXUS_STEP_RETRY_DELAY": "99999999999999999999999"})
    for variable, value in (("NEXUS_MAX_PDF_MB", "inf"), ("NEXUS_STEP_RETRY_DELAY", "nan")):
        monkeypatch.setenv(variable, value)
        assert main(["--data-dir", str(tmp_path), "jobs", "--json"]) == 2
        out = capsys.readouterr()
        doc = json.loads(out.out)
        assert doc["ok"] is False and variable in doc["error"] and "Traceback" not in out.err
        monkeypatch.delenv(variable)
    reliability(f"{len(numeric)} numeric variables x nan/inf/1e999: refused by name, exit 2; e.g. {doc['error']}")


def slow_page(operators: int) -> bytes:
    """One page of a line of text and `operators` path operators: MuPDF interprets every one (no memory to speak
    of, ~1 s per million on these machines), a few hundred KB compressed."""
    from nexus_assets_tests.support.raw_pdf import CATALOG, FONT, page, raw_pdf, stream

    body = b"BT /F1 12 Tf 72 720 Td (Halaman lambat) Tj ET\n" + b"0 0 m 1 1 l S\n" * operators
    return raw_pdf([CATALOG, b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>", FONT, page(2, 5), stream(body)])


@pytest.mark.slow
@pytest.mark.reliability(
    "bad input", "one page that is expensive to interpret (millions of operators) vs the time limit"
)
def test_an_expensive_page_is_cut_off_by_the_pools_hard_limit(tmp_path: Path, monkeypatch, reliability) -> None:
    """The time limit is checked before each page, so one page that takes long inside MuPDF is only cut off by
    the pool killing its worker (limit + grace); read in process (no memory budget, little work) it runs to its
    end: docs/pipeline.md says so. Measured here on a real page, not a sleeping stand-in."""
    import time

    import nexus_assets.lib.ingest.pdf_extraction as pe
    from nexus_assets.lib.core.hashing import sha256_file

    path = tmp_path / "lambat.pdf"
    path.write_bytes(slow_page(10_000_000))
    started = time.monotonic()
    inline = pe.extract_pdf(path, limits=pe.ExtractionLimits(max_seconds=0.5, max_memory_mb=0))
    inline_s = time.monotonic() - started
    assert inline.status == "ok" and inline_s > 1.0, "in process, one page runs past the 0.5 s limit (documented)"
    monkeypatch.setattr(pe, "HARD_LIMIT_GRACE_S", 1.0)
    started = time.monotonic()
    item = ("lambat.pdf", sha256_file(path), lambda: path)
    [pooled], _ = pe.extract_pdfs([item], limits=pe.ExtractionLimits(max_seconds=0.5))
    pooled_s = time.monotonic() - started
    assert pooled.status == "timeout" and "killed" in pooled.reason and not pooled.pages, pooled
    import re

    killed_after = float(re.search(r"killed after ([0-9.]+) s", pooled.reason).group(1))
    assert 1.5 <= killed_after < inline_s, (killed_after, inline_s)  # cut at limit + grace, before the page ended
    reliability(
        f"{path.stat().st_size:,} B page: in a worker killed at 0.5 s + 1 s grace ({pooled_s:.1f} s with the "
        f"worker's start): timeout; in process it ran {inline_s:.1f} s to the end (documented, memory budget 0 only)"
    )


@pytest.mark.slow
@pytest.mark.reliability("bad input", "an S3 key whose file name is over 255 bytes (the bucket allows 1,024)")
def test_an_object_name_too_long_for_the_disk_is_that_files_refusal(aws_env, tmp_path: Path, reliability) -> None:
    """S3 takes keys of 1,024 bytes; the local mirror's file system takes names of 255. The sync downloaded every
    key the sensors' rule accepted, so one such upload failed the partition (ENAMETOOLONG) for every build."""
    from nexus_assets.lib.aws.aws_bootstrap import bootstrap
    from nexus_assets.lib.aws.aws_config import AwsSettings
    from nexus_assets.lib.aws.storage import open_storage

    settings = AwsSettings.from_env(os.environ)
    bootstrap(settings)
    book = pdf(tmp_path / "buku.pdf")
    long_key = f"{OWNER.raw_prefix()}/{'é' * 150}.pdf"  # 150 characters, 304 bytes
    settings.object_store().upload_file(long_key, book)
    settings.object_store().upload_file(f"{OWNER.raw_prefix()}/buku.pdf", book)
    storage = open_storage(DataLayout(tmp_path / "mirror"), Settings.from_env())
    skipped: list[str] = []
    manifest = storage.raw_source().manifest(OWNER, skipped)
    assert manifest["file"].tolist() == ["buku.pdf"]
    found, refused = storage.raw_source().discover()
    assert found == [OWNER] and any("304 bytes, over the 255" in r for r in refused), refused
    reliability(f"the other file mirrored and built; skipped: {next(r for r in refused if '304' in r)[-110:]}")


@pytest.mark.reliability("bad input", "key paths from the environment naming /dev/zero or a FIFO (verify, pull, build)")
def test_key_files_named_by_the_environment_are_checked_before_reading(
    tmp_path: Path, capsys, monkeypatch, reliability
):
    """Red team a26 F4/F5: `NEXUS_VKP_PUBLIC_KEY=/dev/zero nexus vkp verify` read until the OOM killer came
    (17 GB), a FIFO blocked it for good; `NEXUS_SIGNING_KEY_FILE` naming either hung or flooded vkp_package,
    which retried. `--public-key` was checked; the same paths from the environment were not."""
    import time

    from nexus_assets.cli import main
    from nexus_assets.lib.publish.signing import SigningError, resolve_signer, trusted_public_key

    fifo = tmp_path / "kunci.fifo"
    os.mkfifo(fifo)
    package = tmp_path / "x.vkp"
    package.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    said = []
    for path, kind in (("/dev/zero", "character device"), (str(fifo), "FIFO")):
        started = time.monotonic()
        with pytest.raises(SigningError, match=kind):
            trusted_public_key(path, None)
        with pytest.raises(SigningError, match=kind):
            resolve_signer(tmp_path, key_file=path)
        monkeypatch.setenv("NEXUS_VKP_PUBLIC_KEY", path)
        assert main(["--data-dir", str(tmp_path), "vkp", "verify", str(package)]) == 2
        err = capsys.readouterr().err
        assert kind in err and "Traceback" not in err, err
        assert time.monotonic() - started < 30, "refused before a byte is read"
        said.append(err.strip().splitlines()[-1])
    reliability(f"exit 2 / SigningError before reading: {said[0][:120]}")


@pytest.mark.slow
@pytest.mark.reliability("bad input", "NEXUS_SIGNING_KEY_FILE naming a FIFO during a build (vkp_package)")
def test_an_unusable_signing_key_fails_publication_once_without_retries(tmp_path: Path, bedrock_env, reliability):
    from nexus_assets.defs.assets import curriculum_assets
    from nexus_assets.defs.partitions import key_of, register_partitions
    from nexus_assets.defs.resources import EmbedderResource, PublishingResource
    from nexus_assets_tests.support.dagster_build import local_resources_at

    fifo = tmp_path / "kunci.fifo"
    os.mkfifo(fifo)
    pdf(DataLayout(tmp_path).raw_dir(OWNER) / "buku.pdf")
    resources = local_resources_at(tmp_path, EmbedderResource(backend="bedrock"))
    resources["publishing"] = PublishingResource(signing_key_file=str(fifo))
    with dg.instance_for_test() as instance:
        register_partitions(instance, [OWNER])
        result = dg.materialize(
            curriculum_assets, partition_key=key_of(OWNER), instance=instance, resources=resources, raise_on_error=False
        )
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failure.step_key == "vkp_package" and not retries
    assert "FIFO" in failure.step_failure_data.error.message
    assert not list((tmp_path / "vkp").glob("*.vkp")), "nothing published"
    reliability(f"vkp_package failed once, not retried: {failure.step_failure_data.error.message.strip()[:140]}")


@pytest.mark.slow
@pytest.mark.reliability("fault", "SIGTERM to a running nexus build (timeout, systemd, docker stop)")
def test_sigterm_ends_a_build_like_ctrl_c(tmp_path: Path, bedrock_env, reliability) -> None:
    """Red team a26 F6: SIGTERM was caught and ignored (the running step retried, the build went on until
    SIGKILL, which loses the clean path). It now ends the build as Ctrl-C does: exit 130, the run recorded as
    failed, nothing published."""
    import signal
    import subprocess
    import time

    data, marker = tmp_path / "data", tmp_path / "marker"
    pdf(DataLayout(data).raw_dir(OWNER) / "buku.pdf")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "NEXUS_DATA_DIR": str(data),
        "NEXUS_EMBEDDER_BACKEND": "bedrock",
        "NEXUS_FAULT_POINT": "publish.staged",  # hangs there: between staging a package and committing it
        "NEXUS_FAULT_MARKER": str(marker),
    }
    nexus = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "nexus"
    proc = subprocess.Popen(
        [str(nexus), "build", "--subject", OWNER.subject, "--grade", OWNER.grade],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 400
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    [said] = [line for line in err.splitlines() if line.startswith("error: interrupted")]
    assert "recorded as failed" in said and "Traceback" not in err
    assert not list((data / "vkp").glob("*.vkp")), "nothing published"
    reliability(f"exit 130: {said[:150]}")


@pytest.mark.reliability("bad input", "a PDF replaced or rewritten while the build reads it (re-upload, sync client)")
def test_a_file_changed_during_the_build_is_never_indexed_under_the_other_hash(
    tmp_path: Path, monkeypatch, reliability
):
    """Red team a26 F7: the listing hashed one upload and MuPDF read another (renamed over it meanwhile); the text
    was cached under the first one's sha256, so the package paired one upload's hash with another's text and
    every later build, --force included, served it from the cache. Now the bytes read are the bytes hashed."""
    import nexus_assets.lib.ingest.pdf_extraction as pe
    from nexus_assets.lib.core.caches import BlobCache
    from nexus_assets.lib.core.hashing import sha256_file

    path = tmp_path / "berubah.pdf"
    first = pdf(tmp_path / "v1.pdf", "Varian satu tentang ekosistem sawah. " * 6)
    second = pdf(tmp_path / "v2.pdf", "Varian dua tentang ekosistem hutan. " * 6)
    listed = sha256_file(first)
    os.link(second, path)  # listed as v1, replaced by v2 before extraction
    cache = BlobCache(tmp_path / "cache", "extraction-test")
    limits = pe.ExtractionLimits(max_memory_mb=0)
    [result], _ = pe.extract_pdfs([("berubah.pdf", listed, lambda: path)], cache, limits=limits)
    assert result.status == "changed" and not result.pages and cache.get(listed) is None, result
    assert "since the build listed it" in result.reason
    # Listed right, then renamed over while being read: the open file is read, the result is v1's, consistent.
    path.unlink()
    os.link(first, path)
    real = pe._read_opened

    def renamed_meanwhile(*args, **kwargs):
        os.replace(second, path)  # the new upload lands after the file was opened and hashed
        return real(*args, **kwargs)

    monkeypatch.setattr(pe, "_read_opened", renamed_meanwhile)
    [pinned], _ = pe.extract_pdfs([("berubah.pdf", listed, lambda: path)], cache, limits=limits)
    assert pinned.status == "ok" and "satu" in pinned.pages[0].text and "dua" not in pinned.pages[0].text
    assert pe.extraction_from_bytes(cache.get(listed), "x").pages[0].text == pinned.pages[0].text

    def rewritten_in_place(*args, **kwargs):
        with path.open("ab") as handle:  # same inode, new content
            handle.write(b"\n% appended by a sync client\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(pe, "_read_opened", rewritten_in_place)
    [rewritten], _ = pe.extract_pdfs([("berubah.pdf", sha256_file(path), lambda: path)], limits=limits)
    assert rewritten.status == "changed" and "while it was read" in rewritten.reason
    reliability(f"status changed, nothing cached under the listed hash: {result.reason[:150]}")


@pytest.mark.reliability("fault", "an interrupted run that ended FAILURE still holding its embedding pool slot")
def test_pool_slots_of_finished_runs_are_freed_before_and_after_every_build(tmp_path: Path, reliability) -> None:
    """Red team a26 F10: SIGTERM then Ctrl-C during chunk_embeddings left the run FAILURE with its `embedding`
    slot claimed; every later build of every partition then waited for that pool for ever, silently. A
    finished run holds nothing: `fail_orphaned_runs` (first thing every `nexus build` does) and `run_partitions`
    (after each run, whatever ended it) free what finished runs still claim."""
    from nexus_assets.defs.orphaned_runs import fail_orphaned_runs, free_slots_of_finished_runs

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("embedding", 1)
        failed = instance.create_run_for_job(dg.GraphDefinition(name="g").to_job(), run_id="a" * 32)
        instance.report_run_failed(failed, message="interrupted (Ctrl-C) during chunk_embeddings")
        live = instance.create_run_for_job(dg.GraphDefinition(name="g").to_job(), run_id="b" * 32)
        instance.handle_run_event(
            live.run_id,
            dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, "g"),  # type: ignore[arg-type]
        )
        assert storage.claim_concurrency_slot("embedding", failed.run_id, "chunk_embeddings").is_claimed
        assert not storage.claim_concurrency_slot("embedding", live.run_id, "chunk_embeddings").is_claimed, "blocked"
        storage.free_concurrency_slots_for_run(live.run_id)
        fail_orphaned_runs(instance)  # what the next `nexus build` does first
        assert storage.get_concurrency_info("embedding").active_slot_count == 0
        assert storage.claim_concurrency_slot("embedding", live.run_id, "chunk_embeddings").is_claimed
        assert free_slots_of_finished_runs(instance) == [], "a running run keeps its slot"
        assert storage.get_concurrency_info("embedding").active_slot_count == 1
    reliability("the finished run's slot freed by the next build; a running run's slot kept")


@pytest.mark.reliability("bad input", "NEXUS_* numbers in other scripts' digits, out of range, or a recall of nan")
def test_numeric_settings_are_ascii_and_ranged(tmp_path: Path, capsys, monkeypatch, reliability) -> None:
    """Red team a26 F8/F13: int() and float() take '１０', '٣' and '1_0', so some variables took them and others
    refused them; NEXUS_CHROMA_PORT=0, NEXUS_EXECUTOR_MAX_CONCURRENT=0 and a memory budget past setrlimit were
    accepted; NEXUS_GOLDEN_MIN_RECALL=nan passed start-up and `nexus report` then died with a traceback."""
    from nexus_assets.cli import main

    base, numeric = _numeric_variables()
    for variable in numeric:
        for value in ("１０", "٣", "1_0"):
            with pytest.raises(ValueError, match=variable):
                Settings.from_env({**base, variable: value})
    for variable, value in [
        ("NEXUS_CHROMA_PORT", "0"),
        ("NEXUS_CHROMA_PORT", "70000"),
        ("NEXUS_EXECUTOR_MAX_CONCURRENT", "0"),
        ("NEXUS_MAX_EXTRACTION_MEMORY_MB", "99999999999999999999999"),
        ("NEXUS_PULL_MAX_WAIT", "1e23"),
        ("NEXUS_GOLDEN_MIN_RECALL", "5"),
        ("NEXUS_GOLDEN_MIN_RECALL", "-1"),
    ]:
        with pytest.raises(ValueError, match=variable):
            Settings.from_env({variable: value})
    assert Settings.from_env({"NEXUS_GOLDEN_MIN_RECALL": "0.8"}).golden_min_recall == 0.8
    monkeypatch.setenv("NEXUS_GOLDEN_MIN_RECALL", "nan")
    assert main(["--data-dir", str(tmp_path), "report"]) == 2
    err = capsys.readouterr().err
    assert "NEXUS_GOLDEN_MIN_RECALL" in err and "Traceback" not in err, err
    reliability(f"{len(numeric)} variables refuse non-ASCII digits by name; ranges checked; {err.strip()[:90]}")


@pytest.mark.reliability("bad input", "a text layer of only dots or invisible characters; a folder named Bab1.pdf/")
def test_wordless_text_layers_and_pdf_named_folders_are_reported(tmp_path: Path, reliability) -> None:
    """Red team a26 F11/F12: a page whose text layer held only `. . . .` (or word joiners, ZWJ, private-use
    glyphs, U+FFFC, which cleaning keeps) was `ok`, chunked, embedded, published and returned by search; a folder
    named like a PDF was passed over without a word."""
    import nexus_assets.lib.ingest.pdf_extraction as pe
    from nexus_assets.lib.core.tables import raw_manifest_frame

    folder = DataLayout(tmp_path).raw_dir(OWNER)
    dots = pdf(folder / "titik.pdf", ". . . . " * 200)
    mixed = pdf(folder / "campur.pdf", "Bab satu tentang sel dan jaringan. " * 5)
    (folder / "Bab1.pdf").mkdir()
    result = pe.extract_pdf(dots)
    assert result.status == "no_text_layer" and "no letter or digit" in result.reason, result
    assert pe.extract_pdf(mixed).status == "ok"
    assert not pe._has_word_characters("\u2060 \u200d\ue000\ufffc\u034f . - \u00b7")
    assert pe._has_word_characters("x") and pe._has_word_characters("١٢") and pe._has_word_characters("é")
    skipped: list[str] = []
    manifest = raw_manifest_frame(folder, tmp_path, skipped)
    assert sorted(manifest["file"]) == ["campur.pdf", "titik.pdf"]
    assert skipped == [
        "raw-curriculum/informatika/kelas_10/Bab1.pdf is a folder, not a PDF: skipped; upload the PDF file itself"
    ]
    reliability(f"titik.pdf: {result.status} ({result.reason[:90]}); Bab1.pdf/: {skipped[0][36:80]}")


def test_a_step_waiting_for_a_pool_says_so() -> None:
    """F10's side issue: a build blocked on the `embedding` pool said nothing, and Ctrl-C named the last step
    that had finished, not the one waiting."""
    import io
    import logging
    from contextlib import redirect_stderr
    from types import SimpleNamespace

    from nexus_assets.cli_progress import BuildProgress

    record = logging.LogRecord("nexus.cli", logging.DEBUG, __file__, 0, "", (), None)
    message = "Step blocked by limit for pool embedding"
    event = SimpleNamespace(event_type_value="ENGINE_EVENT", event_specific_data=None)
    record.dagster_meta = {"step_key": "chunk_embeddings", "orig_message": message, "dagster_event": event}  # type: ignore[attr-defined]
    err = io.StringIO()
    with redirect_stderr(err), BuildProgress("lines", partitions=1, steps=3) as shown:
        shown.partition_started("informatika/kelas_10")
        shown.handle(record)
        assert shown.step == "chunk_embeddings"
    assert "chunk_embeddings: waiting for a free slot of pool 'embedding'" in err.getvalue()


def _numeric_variables() -> tuple[dict[str, str], list[str]]:
    """The aws-mode base environment (the aws-only variables are read too) and the variables refusing "abc"."""
    from nexus_assets.settings import VARIABLES

    base = {"NEXUS_ENV": "aws", "NEXUS_S3_BUCKET": "bucket"}
    numeric = []
    for variable in VARIABLES:
        try:
            Settings.from_env({**base, variable: "abc"})
        except ValueError:
            numeric.append(variable)
    return base, numeric
