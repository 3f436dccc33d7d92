"""When `nexus build` may skip a partition: same inputs and every recorded output still in place."""

from pathlib import Path

import pytest

from nexus_assets.lib.core.build_fingerprint import (
    RECORD_NAME,
    code_digest,
    forget_build,
    input_fingerprint,
    record_build,
    up_to_date,
)
from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.settings import Settings

PART = Partition("informatika", "kelas_10")


@pytest.fixture
def built(tmp_path: Path) -> DataLayout:
    """A partition as a finished build leaves it: PDFs, processed tables, a served build, a VKP."""
    layout = DataLayout(tmp_path)
    raw = layout.raw_dir(PART)
    raw.mkdir(parents=True)
    (raw / "a.pdf").write_bytes(b"%PDF-1.7 a")
    (raw / "b.pdf").write_bytes(b"%PDF-1.7 b")
    processed = layout.processed_dir(PART)
    (processed / "chroma" / "builds" / "b1").mkdir(parents=True)
    (processed / "chroma" / "current").symlink_to("builds/b1")
    (processed / "text_chunks.parquet").write_bytes(b"chunks")
    layout.vkp_dir.mkdir()
    layout.vkp_path(PART, "1.0.0").write_bytes(b"vkp")
    return layout


def _fp(layout: DataLayout, **env: str) -> str:
    return input_fingerprint(layout, PART, {"chunk_size": None}, environ=env)


def test_an_unchanged_partition_is_up_to_date_and_any_input_change_makes_it_stale(built: DataLayout) -> None:
    fp = _fp(built)
    assert up_to_date(built, PART, fp) is None, "never built: not current"
    record_build(built, PART, fp, "run-1")
    assert up_to_date(built, PART, _fp(built))["run_id"] == "run-1"
    assert _fp(built, NEXUS_EMBEDDING_BACKEND="bedrock") != fp, "a setting"
    kept = Settings.from_env({"NEXUS_OCR": "off", "HOME": "/x"}).environment
    assert _fp(built, **kept) != fp and "HOME" not in kept, "as the settings keep it"
    assert _fp(built, HOME="/elsewhere") == fp, "an unrelated variable is not an input"
    assert input_fingerprint(built, PART, {"chunk_size": 500}, environ={}) != fp, "a command option"
    (built.raw_dir(PART) / "b.pdf").write_bytes(b"%PDF-1.7 b, revised")
    assert up_to_date(built, PART, _fp(built)) is None, "a changed PDF"
    (built.raw_dir(PART) / "b.pdf").write_bytes(b"%PDF-1.7 b")
    (built.raw_dir(PART) / "c.pdf").write_bytes(b"%PDF-1.7 c")
    assert up_to_date(built, PART, _fp(built)) is None, "an added PDF"


def test_a_missing_or_replaced_output_makes_it_stale(built: DataLayout) -> None:
    fp = _fp(built)
    record_build(built, PART, fp, "run-1")
    built.vkp_path(PART, "1.1.0").write_bytes(b"a newer package by another writer")
    assert up_to_date(built, PART, fp) is None
    built.vkp_path(PART, "1.1.0").unlink()
    assert up_to_date(built, PART, fp) is not None
    (built.processed_dir(PART) / "text_chunks.parquet").unlink()
    assert up_to_date(built, PART, fp) is None


def test_a_run_in_progress_or_failed_never_looks_current(built: DataLayout) -> None:
    fp = _fp(built)
    record_build(built, PART, fp, "run-1")
    forget_build(built, PART)  # what `nexus build` does before each run
    assert not (built.processed_dir(PART) / RECORD_NAME).exists()
    assert up_to_date(built, PART, fp) is None
    (built.processed_dir(PART) / RECORD_NAME).write_text("{torn")
    assert up_to_date(built, PART, fp) is None


def test_the_code_digest_follows_the_sources(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("x = 1\n")
    before = code_digest(tmp_path)
    assert code_digest(tmp_path) == before
    (tmp_path / "m.py").write_text("x = 2\n")
    assert code_digest(tmp_path) != before
