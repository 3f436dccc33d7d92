"""Hardening, second round (issue 26): what one upload may cost, what it may show, and which names pass.

Budgets: text per page and per file, chunks per file and per partition, and an extraction worker's memory,
each a setting; a file over one is refused whole with a status and a reason naming the file and the budget,
and the rest of its partition builds. Escaping: everything derived from an upload goes through
lib/core/escaping.py, and the metadata of real materializations is rendered as Markdown to HTML with raw HTML
on (as Dagster's UI, react-markdown, does) to show nothing of the upload survives as markup. Names: slugs
and versions are whole-string ASCII rules. Operator paths: special files and bad golden lines end as the
project's own errors. Inputs are generated here (hypothesis, PyMuPDF and tests/support/raw_pdf.py).
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import get_args

import dagster as dg
import pandas as pd
import pymupdf
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from nexus_assets.lib.core.escaping import markdown, shown
from nexus_assets.lib.core.hashing import sha256_file
from nexus_assets.lib.core.input_files import InputFileError, checked_file
from nexus_assets.lib.core.layout import DataLayout, LayoutError, Partition, is_semver, is_slug, parse_semver
from nexus_assets.lib.index.chunking import ChunkBudget, ChunkingParams, chunk_file, within_budget
from nexus_assets.lib.index.retrieval_eval import GoldenFileError, load_golden
from nexus_assets.lib.ingest.pdf_extraction import (
    MAX_FILE_CHARS_ENV,
    MAX_PAGE_CHARS_ENV,
    ExtractionLimits,
    FileExtraction,
    FileStatus,
    apply_limits,
    extract_pdf,
    extract_pdfs,
)
from nexus_assets.lib.ingest.upload_tracking import partition_of_key
from nexus_assets.lib.publish.versioning import bump
from nexus_assets.settings import Settings
from nexus_assets_tests.support.raw_pdf import deep_tree, image_bomb, looping_tree, overlaid_text

PROJECT = Path(__file__).resolve().parents[1]
HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"}  # Unicode categories that must never reach a log or the UI
# Every way extraction may end: a result of the project's own, never an exception.
STATUSES = set(get_args(FileStatus))
HOSTILE = (
    "<img src=x onerror=alert(1)> ![beacon](https://evil.example/b.png) [login](https://evil.example/phish) "
    "<script>alert(2)</script> https://evil.example/raw www.evil.example <a href='https://evil.example'>x</a>"
)


def text_pdf(path: Path, pages: list[str]) -> Path:
    doc = pymupdf.open()
    for text in pages:
        doc.new_page().insert_textbox(pymupdf.Rect(40, 40, 560, 800), text, fontsize=6)
    doc.save(path)
    return path


BOOK = [
    "Fotosintesis mengubah energi cahaya menjadi energi kimia di dalam kloroplas daun. " * 6,
    "Respirasi sel melepaskan energi dari glukosa untuk kegiatan sel tumbuhan dan hewan. " * 6,
]


# --- budgets ----------------------------------------------------------------------------------------------------


@pytest.mark.reliability("bad input", "a page yielding more text than the page budget (e.g. 69 MB from 227 KB)")
def test_a_page_over_the_text_budget_refuses_its_file_by_name(tmp_path: Path, reliability) -> None:
    path = tmp_path / "kecil.pdf"
    path.write_bytes(overlaid_text(2000))  # ~6 KB on disk, 202,000 characters on one page
    limits = ExtractionLimits(max_page_chars=50_000)
    result = extract_pdf(path, limits=limits)
    assert result.status == "too_much_text" and not result.pages
    assert "page 1" in result.reason and "50,000 characters per page" in result.reason
    assert MAX_PAGE_CHARS_ENV in result.reason
    reliability(f"{path.stat().st_size:,} B file: status {result.status}: {result.reason}")


@pytest.mark.reliability("bad input", "a file whose pages add up to more text than the file budget")
def test_reading_stops_at_the_file_budget(tmp_path: Path, reliability) -> None:
    path = text_pdf(tmp_path / "tebal.pdf", [BOOK[0]] * 40)
    page_chars = len(extract_pdf(text_pdf(tmp_path / "one.pdf", [BOOK[0]])).pages[0].text)
    limits = ExtractionLimits(max_file_chars=page_chars * 11 // 2)
    result = extract_pdf(path, limits=limits)
    assert result.status == "too_much_text" and MAX_FILE_CHARS_ENV in result.reason
    assert "pages up to 6 " in result.reason, "reading stops at the first page past the budget"
    # A cached result made under a higher budget is judged against the current one.
    full = extract_pdf(path)
    assert full.status == "ok" and apply_limits(full, limits).status == "too_much_text"
    reliability(f"status {result.status} after 6 of 40 pages: {result.reason}")


def _chunks_of(part: Partition, extraction: FileExtraction, params: ChunkingParams) -> list:
    pages = [(p.page, p.text) for p in extraction.pages if p.status == "ok"]
    return chunk_file(part.label, extraction.file, pages, params)


@pytest.mark.reliability("bad input", "one huge upload in a partition queued beside another")
def test_one_file_cannot_push_its_or_another_partitions_build_past_its_budget(tmp_path: Path, reliability) -> None:
    """Partition A holds a huge file and a normal one, partition B a normal one. With budgets set, A's huge
    file is refused by name, A's normal file is indexed, A stays within its chunk budget, and B's chunks are
    exactly what B gives alone: the huge file cost only itself."""
    a, b = Partition("biologi", "kelas_10"), Partition("fisika", "kelas_10")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    huge = text_pdf(tmp_path / "a" / "besar.pdf", [BOOK[0]] * 30)
    normal = text_pdf(tmp_path / "a" / "biasa.pdf", BOOK)
    other = text_pdf(tmp_path / "b" / "lain.pdf", BOOK)
    params = ChunkingParams(200, 20)
    limits = ExtractionLimits(max_memory_mb=0)
    budget = ChunkBudget(max_file_chunks=20, max_partition_chunks=30)

    def build(files: list[Path], part: Partition) -> tuple[list, list]:
        items = [(f.name, sha256_file(f), lambda f=f: f) for f in files]  # the sha256 of what is read
        extractions, _ = extract_pdfs(items, limits=limits)
        per_file = sorted((e.file, _chunks_of(part, e, params)) for e in extractions if e.status == "ok")
        return within_budget(per_file, budget)

    kept_a, refused_a = build([huge, normal], a)
    kept_b, refused_b = build([other], b)
    alone_b, _ = build([other], b)
    assert [(r.file, r.status) for r in refused_a] == [("besar.pdf", "too_many_chunks")]
    assert "20 per file" in refused_a[0].reason and "NEXUS_MAX_FILE_CHUNKS" in refused_a[0].reason
    assert {c.file for c in kept_a} == {"biasa.pdf"} and 0 < len(kept_a) <= budget.max_partition_chunks
    assert not refused_b and [c.chunk_id for c in kept_b] == [c.chunk_id for c in alone_b]
    # Files that each fit but together overflow the partition: the later one (by name) is refused, whole.
    tight = ChunkBudget(max_file_chunks=20, max_partition_chunks=len(kept_a) + 1)
    two = [("a.pdf", kept_a), ("b.pdf", [*kept_a])]
    kept, refused = within_budget(two, tight)
    assert len(kept) == len(kept_a) and [(r.file, r.status) for r in refused] == [("b.pdf", "partition_full")]
    reliability(
        f"A: {refused_a[0].file} {refused_a[0].status} ({refused_a[0].reason}); A kept {len(kept_a)} chunks "
        f"<= {budget.max_partition_chunks}; B unchanged ({len(kept_b)} chunks); overflow: {refused[0].reason}"
    )


def test_budgets_are_settings_with_clear_errors() -> None:
    env = {
        "NEXUS_MAX_PAGE_CHARS": "1000",
        "NEXUS_MAX_FILE_CHARS": "5000",
        "NEXUS_MAX_EXTRACTION_MEMORY_MB": "2048",
        "NEXUS_MAX_FILE_CHUNKS": "7",
        "NEXUS_MAX_PARTITION_CHUNKS": "9",
    }
    parsed = Settings.from_env(env)
    assert (parsed.limits.max_page_chars, parsed.limits.max_file_chars, parsed.limits.max_memory_mb) == (
        1000,
        5000,
        2048,
    )
    assert parsed.chunk_budget == ChunkBudget(7, 9)
    assert Settings.from_env({"NEXUS_MAX_EXTRACTION_MEMORY_MB": "0"}).limits.max_memory_mb == 0
    for variable, value in [
        ("NEXUS_MAX_PAGE_CHARS", "-1"),
        ("NEXUS_MAX_EXTRACTION_MEMORY_MB", "100"),
        ("NEXUS_MAX_FILE_CHUNKS", "١٠"),
        ("NEXUS_MAX_PARTITION_CHUNKS", "0"),
    ]:
        with pytest.raises(ValueError, match=variable):
            Settings.from_env({variable: value})


@st.composite
def hostile_pdfs(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["pages", "text", "deep", "loop", "image", "bomb", "garbage"]))
    if kind == "pages":
        doc = pymupdf.open()
        for _ in range(draw(st.integers(1, 60))):
            doc.new_page().insert_text((72, 72), "halaman")
        return kind, doc.tobytes()
    if kind == "text":
        return kind, overlaid_text(draw(st.integers(1, 3000)))
    if kind == "deep":
        return kind, deep_tree(draw(st.integers(1, 400)))
    if kind == "loop":
        return kind, looping_tree()
    if kind == "image":
        side = draw(st.integers(1, 4000))
        return kind, image_bomb(side, side)
    if kind == "bomb":
        return kind, overlaid_text(draw(st.integers(1, 20)), b"B" * draw(st.integers(1, 5000)))
    data = overlaid_text(10)
    cut = draw(st.integers(0, len(data)))
    return kind, data[:cut] + draw(st.binary(max_size=200)) + b"%%EOF"


@pytest.mark.reliability("bad input", "generated PDFs: many pages, huge text, deep and looping page trees, big images")
def test_every_generated_pdf_ends_within_its_budgets_or_as_a_status(tmp_path: Path, reliability) -> None:
    limits = ExtractionLimits(max_pages=50, max_seconds=20, max_page_chars=20_000, max_file_chars=60_000)
    seen: dict[str, set[str]] = {}

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(sample=hostile_pdfs())
    def check(sample: tuple[str, bytes]) -> None:
        kind, data = sample
        path = tmp_path / f"{kind}.pdf"
        path.write_bytes(data)
        started = time.monotonic()
        result = extract_pdf(path, limits=limits)
        assert result.status in STATUSES and time.monotonic() - started < 30
        assert result.page_count <= limits.max_pages or not result.pages
        assert all(len(p.text) <= limits.max_page_chars for p in result.pages)
        assert sum(len(p.text) for p in result.pages) <= limits.max_file_chars
        assert result.status == "ok" or result.reason
        seen.setdefault(kind, set()).add(result.status)

    check()
    reliability(
        "all ended as a status within the budgets: " + "; ".join(f"{k}: {sorted(v)}" for k, v in sorted(seen.items()))
    )


@pytest.mark.slow
@pytest.mark.reliability("bad input", "a compressed page that decodes to GBs of text (worker memory budget)")
def test_peak_memory_of_extraction_stays_under_the_worker_budget(tmp_path: Path, reliability) -> None:
    """In a subprocess: a 5 MB PDF whose one page needs ~2 GB to read, through extract_pdfs with a 1,024 MiB
    worker budget: the file gets out_of_memory and the good file beside it is read. Then the same file read
    in that subprocess under the budget as a worker sets it (`limit_memory`), its peak resident memory
    measured (RUSAGE_SELF, not assumed) under the budget. (The pool's workers are separate programs,
    and the peak is the file's alone, measured in a fresh process.)"""
    (tmp_path / "bom.pdf").write_bytes(overlaid_text(200_000))
    text_pdf(tmp_path / "baik.pdf", BOOK)
    script = textwrap.dedent(
        f"""
        import json, resource
        from pathlib import Path
        from nexus_assets.lib.core.hashing import sha256_file
        from nexus_assets.lib.ingest.pdf_extraction import ExtractionLimits, extract_pdf, extract_pdfs, limit_memory
        root = Path({str(tmp_path)!r})
        items = [(n, sha256_file(root / n), lambda n=n: root / n) for n in ("bom.pdf", "baik.pdf")]
        limits = ExtractionLimits(max_memory_mb=1024, max_page_chars=10**9, max_file_chars=10**10)
        results, stats = extract_pdfs(items, limits=limits)
        print(json.dumps({{"statuses": [r.status for r in results], "reason": results[0].reason}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=PROJECT, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # The file alone in a fresh process that sets the budget first, as a worker does: a peak measured in the
    # process above would count what it held before the limit was set.
    alone_script = textwrap.dedent(
        f"""
        import json
        from pathlib import Path
        from nexus_assets.lib.ingest.pdf_extraction import ExtractionLimits, extract_pdf, limit_memory
        from nexus_assets_tests.support.memory import peak_rss_mib
        limits = ExtractionLimits(max_memory_mb=1024, max_page_chars=10**9, max_file_chars=10**10)
        limit_memory(limits.max_memory_mb)
        alone = extract_pdf(Path({str(tmp_path)!r}) / "bom.pdf", limits=limits)
        peak = peak_rss_mib()  # this process's own peak: ru_maxrss would carry over pytest's
        print(json.dumps({{"alone": alone.status, "peak_mb": peak}}))
        """
    )
    alone = subprocess.run(
        [sys.executable, "-c", alone_script], capture_output=True, text=True, timeout=300, cwd=PROJECT, check=True
    )
    report |= json.loads(alone.stdout.strip().splitlines()[-1])
    assert report["statuses"] == ["out_of_memory", "ok"], report
    assert "1,024 MiB" in report["reason"] and "NEXUS_MAX_EXTRACTION_MEMORY_MB" in report["reason"]
    assert report["alone"] == "out_of_memory" and 0 < report["peak_mb"] < 1024, report
    reliability(f"status out_of_memory, the other file ok; workers' peak RSS {report['peak_mb']} MiB < 1024 MiB")


# --- escaping --------------------------------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))


def render(source: str) -> str:
    """Markdown to HTML with raw HTML passed through and tables on: react-markdown as Dagster's UI runs it."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(source)


SAFE_TAGS = {"p", "table", "thead", "tbody", "tr", "th", "td", "strong", "em", "code", "blockquote", "a", "br"}


def assert_inert(source: str, allowed_links: tuple[str, ...] = ()) -> None:
    parser = _Tags()
    parser.feed(render(source))
    for tag, attrs in parser.tags:
        assert tag in SAFE_TAGS, f"<{tag}> rendered from {source[:200]!r}"
        assert not any(name.startswith("on") for name in attrs), attrs
        if tag == "a":
            assert attrs.get("href", "").startswith(allowed_links), attrs
    # GFM's autolink-literal (react-markdown with remark-gfm) links bare URLs: none is left unescaped.
    bare = source.replace("file://", "").replace("s3://", "")
    assert not re.search(r"(?<!\\)(://|@)", bare) and not re.search(r"(?i)www\.", bare), source


@pytest.mark.reliability("bad input", "markup in page text or names (any text, rendered as Markdown with HTML on)")
def test_any_text_renders_as_its_own_literal_text(reliability) -> None:
    @settings(max_examples=300, deadline=None)
    @given(text=st.text() | st.sampled_from([HOSTILE, "kelas_10\n", "\x1b[31mred\x1b[0m", "a\u202egpj.pdf"]))
    def check(text: str) -> None:
        source = markdown(text)
        assert_inert(source)
        body = html.unescape(render(source).removeprefix("<p>").removesuffix("</p>\n"))
        assert body.strip() == shown(text).strip() or not shown(text).strip()
        assert not any(unicodedata.category(c) in HIDDEN for c in shown(text))

    check()
    reliability("no tag, image or link rendered; the text shows as itself, control characters escaped")


def test_control_characters_are_shown_escaped() -> None:
    assert shown("kelas_10\n") == "kelas_10\\n"
    assert shown("\x1b[2Jx\x00\u202e") == "\\x1b[2Jx\\x00\\u202e"
    assert shown("a" * 10, limit=5) == "aaaa…"
    assert shown("buku\udcff.pdf") == "buku\\udcff.pdf", "a name of invalid UTF-8 (surrogateescape) can be logged"
    assert shown("soft\u00adhyphen tag\U000e0041 ok é ١") == "soft\\xadhyphen tag\\U000e0041 ok é ١"


def _hostile_partition(root: Path) -> Partition:
    part = Partition("informatika", "kelas_10")
    folder = root / "raw-curriculum" / part.subject / part.grade
    folder.mkdir(parents=True)
    text_pdf(folder / "<img src=x onerror=alert(1)>[login](https:evil.example).pdf", [HOSTILE + " " + BOOK[0]])
    text_pdf(folder / "\x1b[31mmerah\x07.pdf", BOOK)
    (folder / "![beacon](http:evil.example).pdf").write_bytes(b"<html>not a pdf</html>")
    return part


@pytest.mark.reliability("bad input", "HTML, images, links and control characters in uploaded names and page text")
def test_every_assets_metadata_renders_without_the_uploads_markup(tmp_path: Path, reliability) -> None:
    from nexus_assets.defs.assets import curriculum_assets
    from nexus_assets.defs.partitions import key_of, register_partitions
    from nexus_assets_tests.support.dagster_build import local_resources_at

    part = _hostile_partition(tmp_path)
    with dg.instance_for_test() as instance:
        register_partitions(instance, [part])
        result = dg.materialize(
            curriculum_assets,
            selection=["raw_pdfs", "pdf_text", "text_chunks"],
            partition_key=key_of(part),
            instance=instance,
            resources=local_resources_at(tmp_path),
            run_config={"ops": {"text_chunks": {"config": {"cap_to_model_window": False}}}},
        )
        assert result.success
        logs = [e.message for e in instance.all_logs(result.run_id)]
    checked = 0
    for asset in ("raw_pdfs", "pdf_text", "text_chunks"):
        [mat] = result.asset_materializations_for_node(asset)
        for name, value in mat.metadata.items():
            if isinstance(value, dg.MarkdownMetadataValue):
                assert_inert(value.value or "", allowed_links=(tmp_path.as_uri(),))
                checked += 1
            texts = [value.value] if isinstance(value, dg.TextMetadataValue) else []
            if isinstance(value, dg.TableMetadataValue):
                texts = [str(v) for record in value.records for v in record.data.values()]
            for text in texts:
                assert "\x1b" not in text and "\x07" not in text, (asset, name, text)
    frame = pd.read_parquet(tmp_path / "processed/informatika/kelas_10/text_chunks.parquet")
    assert frame["text"].str.contains("onerror").any(), "the page text is indexed as text, only shown escaped"
    assert not any("\x1b" in m or "\x07" in m for m in logs)
    assert any("\\x1b[31mmerah\\x07.pdf" in m for m in logs), "control characters appear escaped in logs"
    reliability(f"{checked} Markdown values rendered with raw HTML on: no tag, image or link from the uploads")


# --- names --------------------------------------------------------------------------------------------------------


@pytest.mark.reliability("bad input", "names that only look valid: 'kelas_10\\n', '1.0.1\\n', Arabic-Indic digits")
def test_names_are_whole_string_ascii_rules(tmp_path: Path, reliability) -> None:
    for bad in ("kelas_10\n", "kelas_10\r", "ｋelas", "kelas_١٠", "kelas__10", "_kelas", ""):
        assert not is_slug(bad), bad
        with pytest.raises(LayoutError):
            Partition("informatika", bad)
    for bad in ("1.0.1\n", "١.٠.٠", "1.0", "1.0.0.0", " 1.0.0", "1.0.0 ", "+1.0.0", "1.0.-1"):
        assert not is_semver(bad), bad
        with pytest.raises(LayoutError):
            parse_semver(bad)
        with pytest.raises(LayoutError):
            Partition("informatika", "kelas_10").vkp_name(bad)
    with pytest.raises(LayoutError):
        partition_of_key("raw-curriculum/informatika/kelas_10\n/buku.pdf")
    (tmp_path / "raw-curriculum/informatika/kelas_10\n").mkdir(parents=True)
    (tmp_path / "raw-curriculum/informatika/kelas_10").mkdir(parents=True)
    parts, messages = DataLayout(tmp_path).discover_partitions()
    assert parts == [Partition("informatika", "kelas_10")] and any("kelas_10\\n" in m for m in messages)
    assert bump("1.0.9", "patch") == "1.0.10"
    reliability(f"refused by name; the folder is skipped: {messages[0][:160]}")


@settings(max_examples=400, deadline=None)
@given(value=st.text(max_size=12) | st.from_regex(r"[a-z0-9_\n١]{1,10}", fullmatch=True))
def test_the_slug_rule_is_exactly_lowercase_ascii_words(value: str) -> None:
    words = value.split("_")
    expected = all(word and all(c in "abcdefghijklmnopqrstuvwxyz0123456789" for c in word) for word in words)
    assert is_slug(value) == expected


@settings(max_examples=400, deadline=None)
@given(value=st.text(max_size=12) | st.from_regex(r"[0-9.\n١٠]{1,10}", fullmatch=True))
def test_the_version_rule_is_exactly_three_ascii_numbers(value: str) -> None:
    parts = value.split(".")
    expected = len(parts) == 3 and all(p and all(c in "0123456789" for c in p) for p in parts)
    assert is_semver(value) == expected
    if expected:
        assert parse_semver(value) == tuple(int(p) for p in parts)


# --- operator inputs -----------------------------------------------------------------------------------------------


@pytest.mark.reliability("bad input", "a special file as a CLI path (/dev/zero, a FIFO, a directory)")
def test_special_files_are_refused_before_reading(tmp_path: Path, reliability) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"x" * 2048)
    for path, what in [("/dev/zero", "character device"), (fifo, "FIFO"), (tmp_path, "directory")]:
        with pytest.raises(InputFileError, match=what):
            checked_file(path, "--golden", 1024)
    with pytest.raises(InputFileError, match="over the 1,024 bytes"):
        checked_file(big, "--golden", 1024)
    with pytest.raises(InputFileError, match="no such file"):
        checked_file(tmp_path / "nope", "--golden", 1024)
    with pytest.raises(GoldenFileError, match="character device"):
        load_golden(Path("/dev/zero"))
    reliability("refused by kind or size before a byte is read, naming the argument")


@pytest.mark.reliability("bad input", "nexus report --golden /dev/zero, a FIFO, or a golden line [1]")
def test_report_refuses_a_special_or_malformed_golden_file_with_its_own_error(tmp_path: Path, reliability) -> None:
    from nexus_assets.cli import cli

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    bad = tmp_path / "golden.jsonl"
    bad.write_text('{"question": "q", "subject": "s", "grade": "g", "file": "f.pdf", "page": 1}\n[1]\n')
    outputs = []
    for golden in ("/dev/zero", str(fifo), str(bad)):
        started = time.monotonic()
        run = CliRunner().invoke(cli, ["report", "--golden", golden], env={"NEXUS_DATA_DIR": str(tmp_path)})
        assert time.monotonic() - started < 30
        assert run.exit_code == 2 and "Traceback" not in run.output, run.output
        outputs.append(run.output.strip().splitlines()[-1])
    assert "character device" in outputs[0] and "FIFO" in outputs[1] and ":2: not a golden question" in outputs[2]
    reliability("exit 2: " + " | ".join(outputs))


GOLDEN_ROW = st.fixed_dictionaries(
    {"question": st.text(), "subject": st.text(), "grade": st.text(), "file": st.text(), "page": st.integers()}
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@pytest.mark.reliability("bad input", "generated golden files (any JSON per line, any text)")
def test_every_golden_file_loads_or_fails_with_the_projects_error(tmp_path: Path, reliability) -> None:
    path = tmp_path / "golden.jsonl"
    outcomes = {"loaded": 0, "refused": 0}

    @settings(max_examples=150, deadline=None)
    @given(
        lines=st.lists(
            GOLDEN_ROW.map(json.dumps) | JSON.map(json.dumps) | st.text(max_size=30) | st.just("[" * 5000), max_size=5
        )
    )
    def check(lines: list[str]) -> None:
        path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
        try:
            questions = load_golden(path)
        except GoldenFileError as exc:
            assert str(path) in str(exc)
            outcomes["refused"] += 1
        else:
            assert all(isinstance(q.page, int) and q.page >= 1 and q.question.strip() for q in questions)
            outcomes["loaded"] += 1

    check()
    reliability(f"{outcomes['loaded']} loaded, {outcomes['refused']} GoldenFileError naming the file and line")
