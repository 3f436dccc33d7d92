"""Hardening (issue 10): bad and hostile input, and determinism.

Every bad input is generated here (PyMuPDF writes the PDFs); no binary fixture is shipped. The slow
half builds one partition twice through `nexus build`: a good v1 first, then the same folder with every
bad file dropped beside the good ones, so one build answers all the bad-input cases (each bad file gets
its status and reason, the partition builds from the rest, the published v1 does not change). The
determinism test runs two cold builds in separate processes (fresh data directories, Dagster
instances and hash seeds) and compares the bytes. Each test records what it observed for the README's
Reliability table (`reliability` fixture, conftest.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pymupdf
import pytest

from nexus_assets.lib.core.escaping import markdown
from nexus_assets.lib.core.hashing import sha256_file
from nexus_assets.lib.core.layout import LayoutError, Partition
from nexus_assets.lib.ingest.ocr import MAX_OCR_PIXELS, OcrEngine
from nexus_assets.lib.ingest.pdf_extraction import (
    HARD_LIMIT_GRACE_S,
    ExtractionLimits,
    extract_pdf,
    extract_pdfs,
    extraction_cache,
    run_pool,
)
from nexus_assets.lib.ingest.upload_tracking import Listed, diff_listing, parse_s3_event_message, partition_of_key

PROJECT = Path(__file__).resolve().parents[1]
INFO10 = Partition("informatika", "kelas_10")
INFO10_KEY = "informatika/kelas_10"  # Dagster's key string of the partition ("<subject>/<grade>")
GOOD_KEY = "raw-curriculum/fisika/kelas_12/gerak.pdf"


# --- generated inputs ----------------------------------------------------------------------------------------

PARAGRAPHS = [
    "Algoritma Dijkstra mencari lintasan terpendek dari satu simpul ke semua simpul lain pada graf berbobot "
    "tak negatif. Pada setiap langkah dipilih simpul dengan jarak sementara terkecil yang belum dikunjungi.",
    "Struktur data antrean prioritas membuat pemilihan simpul itu cepat. Setelah simpul dipilih, jarak "
    "tetangganya diperbarui apabila lintasan melalui simpul tersebut lebih pendek daripada jarak lama.",
    "Contoh penerapannya adalah aplikasi peta yang menghitung rute tercepat antara sekolah dan rumah siswa, "
    "dengan bobot sisi berupa waktu tempuh di setiap ruas jalan.",
]


def text_pdf(path: Path, pages: list[str], **save: Any) -> Path:
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(56, 80, 540, 780), text, fontsize=11)
    doc.save(path, **save)
    return path


def enormous_scanned_page(path: Path, side_pt: float = 200_000) -> Path:
    """One image-only page of side_pt x side_pt points (200,000 pt: 70 m; at 300 dpi, 694 gigapixels)."""
    doc = pymupdf.open()
    page = doc.new_page(width=side_pt, height=side_pt)
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 16, 16), False)
    pix.clear_with(120)
    page.insert_image(page.rect, pixmap=pix)
    doc.save(path)
    return path


def many_pages(path: Path, count: int) -> Path:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Halaman pertama dari dokumen yang sangat panjang.")
    for _ in range(count - 1):
        doc.new_page()
    doc.save(path, garbage=1, deflate=True)
    return path


def slow_pdf(path: Path, pages: int = 1500) -> Path:
    """`pages` copies of one dense text page (~1.3-5 ms each to extract): 2 s or more, in ~200 KB."""
    src = pymupdf.open()
    src.new_page().insert_textbox(pymupdf.Rect(40, 40, 560, 800), " ".join(PARAGRAPHS) * 6, fontsize=7)
    src = pymupdf.open("pdf", src.tobytes())
    doc = pymupdf.open()
    doc.insert_pdf(src)
    while doc.page_count < pages:
        copy = pymupdf.open("pdf", doc.tobytes())
        doc.insert_pdf(copy, to_page=min(doc.page_count, pages - doc.page_count) - 1)
    doc.save(path, garbage=4, deflate=True)  # identical pages share one content stream
    return path


def oversized_pdf(path: Path, megabytes: float) -> Path:
    """A valid PDF of one text page carrying an incompressible attachment of `megabytes` MB."""
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Lampiran data mentah praktikum.")
    doc.embfile_add("data.bin", os.urandom(int(megabytes * 1_000_000)))
    doc.save(path)
    return path


def truncated_pdf(path: Path) -> tuple[Path, int]:
    """A six-page PDF cut in half (an interrupted upload); also how many pages MuPDF's repair still finds."""
    full = pymupdf.open()
    for i in range(6):
        full.new_page().insert_textbox(
            pymupdf.Rect(56, 80, 540, 780), f"Bab {i + 1}. " + PARAGRAPHS[i % 3], fontsize=11
        )
    data = full.tobytes()
    path.write_bytes(data[: len(data) // 2])
    with pymupdf.open(path) as repaired:
        readable = sum(1 for page in repaired if page.get_text().strip())
    return path, readable


def scanned_text_pdf(path: Path) -> Path:
    """A "scan": a page of printed text rendered to a 150 dpi image, with no text layer (OCR reads it)."""
    printed = pymupdf.open()
    printed.new_page().insert_textbox(pymupdf.Rect(56, 80, 540, 780), "\n\n".join(PARAGRAPHS), fontsize=14)
    pix = printed[0].get_pixmap(dpi=150)
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(0, 0, 595, 842), pixmap=pix)
    doc.save(path, deflate=True)
    return path


def png_bytes() -> bytes:
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 32, 32), False)
    pix.clear_with(200)
    return pix.tobytes("png")


# --- hostile keys (no build needed) ---------------------------------------------------------------------------

HOSTILE_KEYS = [
    pytest.param(
        "raw-curriculum/../vkp/x.pdf",
        id="dotdot",
        marks=pytest.mark.reliability("bad input", "key raw-curriculum/../vkp/x.pdf"),
    ),
    pytest.param(
        "raw-curriculum/informatika/kelas_10/../../../vkp/x.pdf",
        id="dotdot-deep",
        marks=pytest.mark.reliability("bad input", "key climbing out of a partition folder"),
    ),
    pytest.param(
        "/raw-curriculum/informatika/kelas_10/x.pdf",
        id="absolute",
        marks=pytest.mark.reliability("bad input", "absolute-looking key"),
    ),
    pytest.param(
        "C:\\raw-curriculum\\informatika\\kelas_10\\x.pdf",
        id="windows",
        marks=pytest.mark.reliability("bad input", "Windows path as a key"),
    ),
    pytest.param(
        "raw-curriculum/%2e%2e/vkp/x.pdf",
        id="urlencoded",
        marks=pytest.mark.reliability("bad input", "URL-encoded traversal (%2e%2e)"),
    ),
    pytest.param(
        "raw-curriculum/informatika/kelas_10/..%2f..%2f..%2fvkp%2fx.pdf",
        id="encoded-slash",
        marks=pytest.mark.reliability("bad input", "URL-encoded slashes in a file name"),
    ),
    pytest.param(
        "raw-curriculum/%252e%252e/vkp/x.pdf",
        id="double-encoded",
        marks=pytest.mark.reliability("bad input", "double URL-encoded traversal (%252e%252e)"),
    ),
    pytest.param(
        "raw-curriculum/\uff0e\uff0e/vkp/x.pdf",
        id="fullwidth",
        marks=pytest.mark.reliability("bad input", "fullwidth dots (U+FF0E) as .."),
    ),
    pytest.param(
        "raw-curriculum/informatika/kelas_10/x\x00.pdf",
        id="nul",
        marks=pytest.mark.reliability("bad input", "NUL byte in a key"),
    ),
    pytest.param(
        "raw-curriculum/informatika/kelas_10/._bab1.pdf",
        id="hidden",
        marks=pytest.mark.reliability("bad input", "hidden macOS resource fork ._bab1.pdf"),
    ),
]


def _s3_event(key: str) -> str:
    """An S3 event notification body: S3 URL-encodes the key (spaces as '+')."""
    encoded = urllib.parse.quote_plus(key, safe="/")
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": encoded}}}]})


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_a_hostile_key_is_refused_by_name_and_the_rest_still_builds(key: str, reliability) -> None:
    # The listing path (raw_upload_sensor, nexus build's S3 discovery): the key is skipped with a message
    # naming it, and the good key of the same tick is still a change to build.
    diff = diff_listing([Listed(key, "etag-1"), Listed(GOOD_KEY, "etag-2")], {})
    assert diff.changed == [Partition("fisika", "kelas_12")]
    assert list(diff.fingerprints) == [Partition("fisika", "kelas_12")], "the hostile key reached no partition"
    [message] = diff.skipped
    assert repr(key) in message
    # The SQS path (sqs_upload_sensor): S3 delivers the key URL-encoded; decoded, it is refused the same way.
    [event] = parse_s3_event_message(_s3_event(key))
    assert event.key == key
    with pytest.raises(LayoutError) as refused:
        partition_of_key(event.key)
    assert repr(key) in str(refused.value)
    reliability(
        f"refused by the listing and SQS sensors: {message}; the good key in the same tick still "
        "triggered its partition"
    )


@pytest.mark.reliability("bad input", "legit file name with spaces, Unicode and '..' (key check)")
def test_a_legit_name_with_spaces_unicode_and_dots_is_not_mistaken_for_traversal(reliability) -> None:
    key = "raw-curriculum/informatika/kelas_10/Bab 1 – Pengantar (révisi) 日本語..pdf"
    assert partition_of_key(key) == INFO10
    [event] = parse_s3_event_message(_s3_event(key))
    assert partition_of_key(event.key) == INFO10
    reliability(f"{key!r} accepted by the listing and SQS paths as {INFO10.label}")


@pytest.mark.reliability(
    "bad input", "two partitions whose package names would be the same (informatika/kelas_10 and informatika_kelas/10)"
)
def test_partitions_with_the_same_package_names_are_both_skipped(tmp_path: Path, reliability) -> None:
    from nexus_assets.lib.core.layout import DataLayout

    layout = DataLayout(tmp_path)
    for folder in ("informatika/kelas_10", "informatika_kelas/10", "informatika/kelas_11"):
        (layout.raw_root / folder).mkdir(parents=True)
        (layout.raw_root / folder / "buku.pdf").write_bytes(b"%PDF-1.7\n%%EOF\n")
    found, refused = layout.discover_partitions()
    assert found == [Partition("informatika", "kelas_11")]
    [message] = refused
    assert "informatika/kelas_10 and informatika_kelas/10" in message and "informatika_kelas_10_v*.vkp" in message
    reliability(f"neither built, the rest is: {message}")


# --- limits, caching and the worker pool (no build needed) -----------------------------------------------------


@pytest.mark.reliability("bad input", "a limit set to something that is not a positive number")
def test_limits_come_from_config_then_environment_then_defaults(reliability) -> None:
    from nexus_assets.defs.resources import ExtractionLimitsResource

    defaults = ExtractionLimits.from_settings(environ={})
    assert (defaults.max_bytes, defaults.max_pages, defaults.max_seconds) == (500 << 20, 2000, 1800.0)
    env = {"NEXUS_MAX_PDF_MB": "2.5", "NEXUS_MAX_PDF_PAGES": "300", "NEXUS_MAX_EXTRACTION_SECONDS": "60"}
    from_env = ExtractionLimits.from_settings(environ=env)
    assert (from_env.max_bytes, from_env.max_pages, from_env.max_seconds) == (int(2.5 * (1 << 20)), 300, 60.0)
    configured = ExtractionLimits.from_settings(max_pdf_mb=1, max_pages=10, max_seconds=5, environ=env)
    assert (configured.max_bytes, configured.max_pages, configured.max_seconds) == (1 << 20, 10, 5.0)
    assert ExtractionLimitsResource(max_pdf_pages=7).limits().max_pages == 7
    messages = []
    for bad in ({"NEXUS_MAX_PDF_PAGES": "banyak"}, {"NEXUS_MAX_EXTRACTION_SECONDS": "-1"}):
        with pytest.raises(ValueError) as refused:
            ExtractionLimits.from_settings(environ=bad)
        [variable] = bad
        assert variable in str(refused.value)
        messages.append(str(refused.value))
    reliability(
        "defaults 500 MiB / 2,000 pages / 1,800 s; env and resource config override them; refused: "
        + "; ".join(messages)
    )


@pytest.mark.reliability("bad input", "a limit lowered after the file was cached")
def test_a_cached_extraction_is_judged_against_the_current_limits(tmp_path: Path, reliability) -> None:
    pdf = text_pdf(tmp_path / "bab.pdf", [PARAGRAPHS[i % 3] for i in range(12)])
    cache = extraction_cache(tmp_path / "cache")
    item = [(pdf.name, sha256_file(pdf), lambda: pdf)]
    [first], _ = extract_pdfs(item, cache)
    assert first.status == "ok"

    def never() -> Path:
        raise AssertionError("a cached file was read again")

    cached = [(pdf.name, sha256_file(pdf), never)]
    [refused], stats = extract_pdfs(cached, cache, limits=ExtractionLimits(max_pages=10))
    assert stats.cached == 1 and refused.status == "too_many_pages" and refused.pages == []
    [small], _ = extract_pdfs(cached, cache, limits=ExtractionLimits(max_bytes=1000))
    assert small.status == "too_large"
    [again], _ = extract_pdfs(cached, cache)
    assert again.status == "ok" and again.text_pages == 12
    reliability(
        f"from the cache, no re-read: {refused.status} ({refused.reason}); {small.status}; back to ok with "
        "the default limits"
    )


def _misbehaving_worker(conn) -> None:
    """An extraction worker that hangs inside `hangs.pdf` and dies on `crashes.pdf` (for run_pool)."""
    conn.send("ready")
    while (task := conn.recv()) is not None:
        path, sha256, ocr, limits, _pages = task
        if path.name == "hangs.pdf":
            time.sleep(3600)  # stuck inside one page: the cooperative check never comes round
        if path.name == "crashes.pdf":
            os.kill(os.getpid(), signal.SIGSEGV)  # what a MuPDF bug does to the process
        conn.send(extract_pdf(path, sha256, ocr, limits))


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory: pytest.TempPathFactory):
    """One pool run over a file that hangs, one that crashes the worker, and three good ones."""
    import nexus_assets.lib.ingest.pdf_extraction as pdf_extraction

    root = tmp_path_factory.mktemp("pool")
    names = ["hangs.pdf", "crashes.pdf", "bab_1.pdf", "bab_2.pdf", "bab_3.pdf"]
    paths = [text_pdf(root / name, PARAGRAPHS) for name in names]
    limits = ExtractionLimits(max_seconds=1.0)
    results = {}
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pdf_extraction, "HARD_LIMIT_GRACE_S", 1.0)
        run_pool(
            [(i, (p, sha256_file(p), None, limits, None)) for i, p in enumerate(paths)],
            2,
            lambda i, r: results.__setitem__(names[i], r),
            target=_misbehaving_worker,
        )
    return results, time.monotonic() - started


@pytest.mark.reliability("bad input", "a page that never finishes (hard time limit in the worker pool)")
def test_the_pool_kills_a_worker_stuck_past_the_time_limit(pool_run, reliability) -> None:
    results, seconds = pool_run
    hung = results["hangs.pdf"]
    assert hung.status == "timeout" and "killed" in hung.reason and hung.pages == []
    assert {results[f"bab_{i}.pdf"].status for i in (1, 2, 3)} == {"ok"}
    assert seconds < 60, "the stuck file cost its limit plus grace, not an hour"
    reliability(
        f"status {hung.status}: {hung.reason}; the other files extracted (ok); pool done in "
        f"{seconds:.1f} s (limit 1 s + {1.0:g} s grace in this test, {HARD_LIMIT_GRACE_S:g} s by default)"
    )


@pytest.mark.reliability("bad input", "a file that crashes the extraction process (SIGSEGV)")
def test_a_worker_that_dies_on_a_file_costs_only_that_file(pool_run, reliability) -> None:
    results, _ = pool_run
    crashed = results["crashes.pdf"]
    assert crashed.status == "crashed" and "SIGSEGV" in crashed.reason
    assert [results[f"bab_{i}.pdf"].text_pages for i in (1, 2, 3)] == [3, 3, 3]
    reliability(f"status {crashed.status}: {crashed.reason}; a replacement worker extracted the remaining files")


@pytest.mark.reliability("bad input", "huge scanned pages (OCR pixmap capped)")
def test_ocr_renders_a_huge_page_within_the_pixel_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reliability
) -> None:
    asked: list[tuple[float, float, int]] = []

    def fake_ocr(page, language, dpi, full, tessdata):  # records the resolution instead of running Tesseract
        asked.append((page.rect.width, page.rect.height, dpi))
        raise RuntimeError("no Tesseract in this test")

    monkeypatch.setattr(pymupdf.Page, "get_textpage_ocr", fake_ocr)
    engine = OcrEngine("/nonexistent/tessdata")
    poster = extract_pdf(enormous_scanned_page(tmp_path / "a0.pdf", side_pt=2_900), ocr=engine)  # ~1 m square
    [(width, height, dpi)] = asked
    pixels = (width / 72 * dpi) * (height / 72 * dpi)
    assert dpi < engine.dpi and pixels <= MAX_OCR_PIXELS
    huge = extract_pdf(enormous_scanned_page(tmp_path / "huge.pdf"), ocr=engine)
    assert len(asked) == 1, "a 70 m page is not rendered at all"
    assert huge.status == "no_text_layer" and "too large to OCR" in huge.reason
    assert poster.pages[0].status == "no_text"
    reliability(
        f"a 2,900 pt page rendered at {dpi} dpi ({pixels / 1e6:.1f} MP, budget {MAX_OCR_PIXELS / 1e6:g} MP) "
        f"instead of 300 dpi ({(2900 / 72 * 300) ** 2 / 1e6:.0f} MP); a 200,000 pt page not rendered: "
        f"{huge.status}: {huge.reason}"
    )


# --- one partition built with every bad file beside good ones -----------------------------------------------------

UNICODE_NAME = "Bab 1 – Pengantar Algoritma (révisi) 日本語..pdf"
# file -> (expected status, a phrase of its reason, the reliability case)
BAD_FILES = {
    "kosong.pdf": ("empty", "zero-byte file", "zero-byte file"),
    "bukan_pdf.pdf": ("not_pdf", "a PNG image", "non-PDF named .pdf (a PNG)"),
    "terpotong.pdf": ("truncated", "%%EOF", "truncated PDF (cut in half)"),
    "terkunci.pdf": ("encrypted", "password is required", "PDF encrypted with an unknown password"),
    "ribuan_halaman.pdf": ("too_many_pages", "3,000 pages, over the limit of 2,000", "PDF with 3,000 pages"),
    "halaman_raksasa.pdf": ("no_text_layer", "too large to OCR", "enormous page (200,000 pt square, scanned)"),
    "terlalu_besar.pdf": ("too_large", "over the limit of 1 MiB", "file over the configured size limit"),
    "lambat.pdf": ("timeout", "over the limit of 0.5 s", "file over the extraction time limit"),
}
# Files in the partition folder that are not partition PDFs at all: skipped with a message naming them.
OUTSIDE_LAYOUT = {
    "..%2f..%2fvkp%2fx.pdf": "tries to escape",
    ".tersembunyi.pdf": "hidden file",
    "catatan.txt": "is not raw-curriculum/",
    "lampiran/soal.pdf": "is not raw-curriculum/",
}
# Folders (under raw-curriculum/) whose names collide with a valid sibling's after normalization: never merged.
# path -> (the folder at fault, the slug it collides with)
COLLIDING = {
    "Informatika/kelas_10": ("Informatika", "informatika"),
    "informatika/Kelas_10": ("Kelas_10", "kelas_10"),
    "ilmu-komputer/kelas_10": ("ilmu-komputer", "ilmu_komputer"),
}
LIMITS_ENV = {"NEXUS_MAX_PDF_MB": "1", "NEXUS_MAX_EXTRACTION_SECONDS": "0.5"}  # lambat.pdf takes 2-3 s: a 4x margin


@dataclass
class BadBuild:
    data: Path
    v1: Path
    v1_sha_before: str
    v1_sha_after: str
    served_before: str
    served_after: str
    catalog_before: dict
    catalog_after: dict
    versions: list[str]
    good_files: list[str]
    mupdf_recovers: int  # pages with text MuPDF's repair finds in the truncated file
    code: int
    out: str
    err: str
    report_code: int
    report: str
    files: pd.DataFrame  # per-file status table of the stored pdf_text
    chunks: pd.DataFrame
    raw_meta: dict
    text_meta: dict
    vkp_meta: dict
    coverage: dict
    catalog: pd.DataFrame
    seconds: float


def _run_cli(*args: str) -> tuple[int, str, str]:
    from nexus_assets.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _latest_metadata(instance, asset: str) -> dict:
    import dagster as dg

    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[INFO10_KEY]), limit=1
    ).records
    return {k: getattr(v, "value", v) for k, v in record.asset_materialization.metadata.items()}


def _coverage_metadata(instance) -> dict:
    import dagster as dg
    from dagster._core.event_api import PartitionKeyFilter

    key = dg.AssetCheckKey(dg.AssetKey("pdf_text"), "text_coverage")
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [key], partition_filter=PartitionKeyFilter(key=INFO10_KEY)
    )
    evaluation = latest[key].event.dagster_event.event_specific_data
    return {"passed": evaluation.passed, **{k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def bad_build(tmp_path_factory: pytest.TempPathFactory, sample_raw_root: Path) -> BadBuild:
    import dagster as dg

    from nexus_assets.lib.core.parquet_io import read_frame
    from nexus_assets.lib.core.tables import file_status_frame

    root = tmp_path_factory.mktemp("bad_input")
    data, home = root / "data", root / "dagster_home"
    raw = data / INFO10.raw_prefix()
    shutil.copytree(sample_raw_root / "informatika" / "kelas_10", raw)
    text_pdf(raw / UNICODE_NAME, PARAGRAPHS[:2])
    good_files = sorted(p.name for p in raw.iterdir())
    build = ("--data-dir", str(data), "build", "--subject", "informatika", "--grade", "kelas_10")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        for name, value in LIMITS_ENV.items():
            mp.setenv(name, value)
        code, _, err = _run_cli(*build)
        assert code == 0, err
        v1 = data / "vkp" / "informatika_kelas_10_v1.0.0.vkp"
        v1_sha = _sha(v1)
        served = os.readlink(data / INFO10.processed_prefix() / "chroma" / "current")
        catalog_before = json.loads((data / "vkp" / "catalog.json").read_text())

        # Every bad input beside the good files, and files and folders outside the layout.
        (raw / "kosong.pdf").write_bytes(b"")
        (raw / "bukan_pdf.pdf").write_bytes(png_bytes())
        _, recovers = truncated_pdf(raw / "terpotong.pdf")
        text_pdf(
            raw / "terkunci.pdf",
            PARAGRAPHS,
            encryption=pymupdf.PDF_ENCRYPT_AES_256,
            user_pw="rahasia-guru",
            owner_pw="pemilik",
        )
        many_pages(raw / "ribuan_halaman.pdf", 3000)
        enormous_scanned_page(raw / "halaman_raksasa.pdf")
        oversized_pdf(raw / "terlalu_besar.pdf", 1.6)
        slow_pdf(raw / "lambat.pdf")
        for name in OUTSIDE_LAYOUT:
            (raw / name).parent.mkdir(exist_ok=True)
            text_pdf(raw / name, ["Dokumen di luar tata letak."])
        for folder in COLLIDING:
            (data / "raw-curriculum" / folder).mkdir(parents=True, exist_ok=True)
            text_pdf(data / "raw-curriculum" / folder / "tersesat.pdf", ["Dokumen dalam folder yang bertabrakan."])
        (data / "raw-curriculum" / "ilmu_komputer" / "kelas_10").mkdir(parents=True)
        text_pdf(data / "raw-curriculum" / "ilmu_komputer" / "kelas_10" / "bab.pdf", [PARAGRAPHS[2]])

        started = time.perf_counter()
        code, out, err = _run_cli(*build)
        seconds = time.perf_counter() - started
        report_code, report, _ = _run_cli(
            "--data-dir", str(data), "report", "--subject", "informatika", "--grade", "kelas_10"
        )
        with dg.DagsterInstance.get() as instance:
            raw_meta, text_meta = _latest_metadata(instance, "raw_pdfs"), _latest_metadata(instance, "pdf_text")
            vkp_meta, coverage = _latest_metadata(instance, "vkp_package"), _coverage_metadata(instance)
    processed = data / INFO10.processed_prefix()
    return BadBuild(
        data=data,
        v1=v1,
        v1_sha_before=v1_sha,
        v1_sha_after=_sha(v1),
        served_before=served,
        served_after=os.readlink(processed / "chroma" / "current"),
        catalog_before=catalog_before,
        catalog_after=json.loads((data / "vkp" / "catalog.json").read_text()),
        versions=sorted(p.name for p in (data / "vkp").glob("informatika_kelas_10_*")),
        good_files=good_files,
        mupdf_recovers=recovers,
        code=code,
        out=out,
        err=err,
        report_code=report_code,
        report=report,
        files=file_status_frame(read_frame(processed / "pdf_text.parquet")).set_index("file"),
        chunks=read_frame(processed / "text_chunks.parquet"),
        raw_meta=raw_meta,
        text_meta=text_meta,
        vkp_meta=vkp_meta,
        coverage=coverage,
        catalog=read_frame(data / "processed" / "catalog.parquet"),
        seconds=seconds,
    )


def _built_from_the_rest(build: BadBuild) -> str:
    files = sorted(build.chunks["file"].unique())
    unchanged = "unchanged" if build.v1_sha_after == build.v1_sha_before else "CHANGED"
    return (
        f"partition built from the {len(files)} good files ({len(build.chunks)} chunks), no new version "
        f"({build.vkp_meta.get('reason')}); v1.0.0 {unchanged}"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, id=status, marks=pytest.mark.reliability("bad input", case))
        for name, (status, _, case) in BAD_FILES.items()
    ],
)
def test_a_bad_file_gets_its_status_and_reason_everywhere(bad_build: BadBuild, name: str, reliability) -> None:
    status, phrase, _ = BAD_FILES[name]
    if name == "halaman_raksasa.pdf":
        from nexus_assets.lib.ingest.ocr import find_ocr

        if find_ocr().engine is None:  # no OCR here: the page is not rendered anyway, for another reason
            phrase = "OCR unavailable"
    row = bad_build.files.loc[name]
    assert row["status"] == status, row["reason"]
    assert phrase in row["reason"], row["reason"]
    assert row["text_pages"] == 0 and name not in set(bad_build.chunks["file"])
    # The same status reaches the pdf_text materialization, the text_coverage check and `nexus report`.
    failed_rows = {r.data["file"]: r.data["status"] for r in bad_build.text_meta["failed_files"].records}
    assert failed_rows[name] == status
    assert f"{name} ({status})" in bad_build.coverage["verdict"]
    assert f"| {name} | {status} |" in bad_build.coverage["failed_files"]
    report_line = next(line for line in bad_build.report.splitlines() if line.strip().startswith(name))
    assert status in report_line and phrase in report_line
    if name == "terpotong.pdf":
        assert bad_build.mupdf_recovers > 0, "the cut file must be one MuPDF would half-read"
    extra = ""
    if name == "terpotong.pdf":
        extra = f" (MuPDF alone would have recovered {bad_build.mupdf_recovers} of its 6 pages with text)"
    elif name == "lambat.pdf":
        extra = f" (in the {bad_build.text_meta['extraction_workers']}-process extraction pool)"
    reliability(f"status {status}: {row['reason']}{extra}; {_built_from_the_rest(bad_build)}")


@pytest.mark.slow
@pytest.mark.reliability("bad input", "a build full of bad files leaves the published package untouched")
def test_nothing_published_changes(bad_build: BadBuild, reliability) -> None:
    assert bad_build.code == 0, bad_build.err
    assert bad_build.v1_sha_after == bad_build.v1_sha_before
    assert bad_build.versions == ["informatika_kelas_10_v1.0.0.vkp"]
    assert bad_build.vkp_meta["published"] is False
    assert bad_build.vkp_meta["reason"].startswith("content unchanged")
    assert bad_build.served_after == bad_build.served_before, "search serves the same Chroma build"
    assert bad_build.catalog_after["partitions"] == bad_build.catalog_before["partitions"]
    assert sorted(bad_build.chunks["file"].unique()) == bad_build.good_files
    failed = len(BAD_FILES)
    assert bad_build.text_meta["files_failed"] == failed and bad_build.text_meta["files"] == failed + 3
    [row] = bad_build.catalog.query("subject == 'informatika' and grade == 'kelas_10'").to_dict("records")
    assert row["files_failed"] == failed and row["vkp_version"] == "1.0.0"
    assert bad_build.report_code == 0, bad_build.report
    reliability(
        f"nexus build exit {bad_build.code} in {bad_build.seconds:.0f} s with {failed} bad files; "
        f"{_built_from_the_rest(bad_build)}; same Chroma build served, catalog.json unchanged, "
        f"curriculum catalog: {row['files_failed']} failed files, v{row['vkp_version']}"
    )


@pytest.mark.slow
@pytest.mark.reliability("bad input", "file name with spaces, Unicode and '..' (built)")
def test_a_file_name_with_spaces_unicode_and_dots_builds(bad_build: BadBuild, reliability) -> None:
    row = bad_build.files.loc[UNICODE_NAME]
    assert row["status"] == "ok" and row["text_pages"] == 2
    chunks = bad_build.chunks[bad_build.chunks["file"] == UNICODE_NAME]
    assert len(chunks) >= 1
    with zipfile.ZipFile(bad_build.v1) as package:
        manifest = json.loads(package.read("manifest.json"))
        shipped = pd.read_parquet(io.BytesIO(package.read("chunks.parquet")))
    assert {s["file"]: s["status"] for s in manifest["sources"]}[UNICODE_NAME] == "ok"
    assert set(shipped.loc[shipped["file"] == UNICODE_NAME, "chunk_id"]) == set(chunks["chunk_id"])
    reliability(f"{UNICODE_NAME!r}: status ok, {len(chunks)} chunk(s) shipped in v1.0.0 under its exact name")


@pytest.mark.slow
@pytest.mark.reliability(
    "bad input", "files in a partition folder outside the layout (encoded traversal, hidden, nested, not .pdf)"
)
def test_files_outside_the_layout_are_skipped_by_name(bad_build: BadBuild, reliability) -> None:
    skipped = bad_build.raw_meta["skipped_files"]
    assert bad_build.raw_meta["files_skipped"] == len(OUTSIDE_LAYOUT)
    seen = []
    for name, phrase in OUTSIDE_LAYOUT.items():
        line = next(
            line
            for line in skipped.splitlines()
            if markdown(repr(f"raw-curriculum/informatika/kelas_10/{name}")) in line  # cells are escaped Markdown
        )
        assert markdown(phrase) in line
        assert Path(name).name not in bad_build.files.index
        seen.append(line.strip("| "))
    assert not (bad_build.data / "vkp" / "x.pdf").exists()
    reliability("left out of the manifest, each named in raw_pdfs' skipped_files: " + "; ".join(seen))


@pytest.mark.slow
@pytest.mark.reliability("bad input", "subject and grade folders colliding after normalization")
def test_colliding_folders_are_skipped_and_never_merged(bad_build: BadBuild, reliability) -> None:
    lines = [line for line in bad_build.err.splitlines() if line.startswith("skipped:")]
    seen = []
    for folder, slug in COLLIDING.values():
        [line] = [line for line in lines if f"folder {folder!r}" in line]
        assert f"collides with {slug!r}" in line and "not merged" in line
        seen.append(line.removeprefix("skipped: "))
    assert "tersesat.pdf" not in set(bad_build.chunks["file"]), "no PDF of a colliding folder was built"
    reliability("nexus build printed: " + " | ".join(seen))


# --- determinism -----------------------------------------------------------------------------------------------


def _cold_build(root: Path, raw: Path, seed: str) -> Path:
    """`nexus build` of a copy of `raw` in a fresh process, data directory, Dagster instance and hash seed."""
    data = root / "data"
    shutil.copytree(raw, data / "raw-curriculum")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(root / "dagster_home"),
        "PYTHONHASHSEED": seed,
        "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")]),
    }
    env = {k: v for k, v in env.items() if not k.startswith("NEXUS_")}
    done = subprocess.run(
        [sys.executable, "-m", "nexus_assets.cli", "--data-dir", str(data), "build"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return data


@pytest.mark.slow
@pytest.mark.reliability("determinism", "two cold builds of the same PDFs (fresh data dirs, instances, hash seeds)")
def test_two_cold_builds_give_identical_tables_and_content_hash(
    tmp_path: Path, sample_raw_root: Path, reliability
) -> None:
    part = Partition("matematika", "kelas_10")  # text pages, and scanned ones (OCRed where Tesseract is installed)
    raw = tmp_path / "raw-curriculum"  # the same bytes for both builds (a generated PDF embeds a fresh /ID)
    shutil.copytree(sample_raw_root / part.subject / part.grade, raw / part.subject / part.grade)
    scanned_text_pdf(raw / part.subject / part.grade / "pindaian_dijkstra.pdf")
    started = time.perf_counter()
    first = _cold_build(tmp_path / "a", raw, seed="1")
    second = _cold_build(tmp_path / "b", raw, seed="2")
    seconds = time.perf_counter() - started
    same = {}
    for table in ("pdf_text", "text_chunks", "chunk_embeddings"):
        a = (first / part.processed_prefix() / f"{table}.parquet").read_bytes()
        b = (second / part.processed_prefix() / f"{table}.parquet").read_bytes()
        same[table] = (a == b, hashlib.sha256(a).hexdigest()[:12], len(a))
    manifests = []
    for data in (first, second):
        with zipfile.ZipFile(data / "vkp" / "matematika_kelas_10_v1.0.0.vkp") as package:
            manifests.append(json.loads(package.read("manifest.json")))
    a, b = manifests
    assert all(equal for equal, _, _ in same.values()), same
    assert a["content_hash"] == b["content_hash"]
    for member in ("chunks.parquet", "embeddings.parquet"):
        assert a["members"][member] == b["members"][member]
    pages = pd.read_parquet(first / part.processed_prefix() / "pdf_text.parquet")
    ocr_pages = int((pages["page_status"] == "ocr").sum())
    differs = [k for k in ("created_at",) if a[k] != b[k]]
    reliability(
        "byte-identical "
        + ", ".join(f"{t}.parquet ({n:,} B, sha256 {h})" for t, (_, h, n) in same.items())
        + f"; same content hash {a['content_hash'][:16]}… and same packaged chunks/embeddings members; "
        f"{a['counts']['chunks']} chunks, {ocr_pages} OCRed page(s); differing only in "
        f"{', '.join(differs) or 'nothing but'} and the signature (each data dir has its own development "
        f"key); two cold builds took {seconds:.0f} s"
    )
