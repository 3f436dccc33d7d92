"""The quality gates' rules on real sample data, each passing on good data and failing on data built to break it.

Tables come from the generated sample PDFs through the same pure functions the assets call
(extraction, chunking, the bundled model), so "good data" is what a build really produces. The
helpers live in `support/quality_data.py`, shared with `test_checks.py` (the same cases through Dagster).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nexus_assets.lib.core.layout import DataLayout
from nexus_assets.lib.core.tables import chunks_frame, embeddings_frame, pages_frame
from nexus_assets.lib.index.retrieval_eval import GoldenQuestion, GoldenResult
from nexus_assets.lib.publish import quality
from nexus_assets_tests.support.quality_data import (
    BIO10,
    BIO11,
    DIMS,
    MAT10,
    MODEL_ID,
    chroma_build,
    golden_rows,
    publish,
    sample_chunks,
    sample_pages,
    tamper,
    unanswerable_rows,
    unit_vectors,
    write_golden,
)

# --- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bio10_pages(sample_raw_root: Path) -> pd.DataFrame:
    return sample_pages(sample_raw_root, BIO10)


@pytest.fixture(scope="module")
def bio10_chunks(bio10_pages: pd.DataFrame) -> pd.DataFrame:
    return sample_chunks(bio10_pages, BIO10)


@pytest.fixture
def bio10_embeddings(bio10_chunks: pd.DataFrame) -> pd.DataFrame:
    return embeddings_frame(bio10_chunks["chunk_id"].tolist(), unit_vectors(len(bio10_chunks)), MODEL_ID, DIMS)


# --- text coverage ------------------------------------------------------------------------------------------


def test_coverage_passes_when_every_page_has_text(bio10_pages: pd.DataFrame) -> None:
    verdict = quality.text_coverage(bio10_pages)
    assert verdict.passed and verdict.applicable
    assert verdict.figures["text_coverage"] == 1.0 and verdict.figures["pages"] == 4
    assert verdict.tables["pages_without_text"].empty


def test_coverage_warns_below_90_percent_and_names_the_page_without_text(sample_raw_root: Path) -> None:
    verdict = quality.text_coverage(sample_pages(sample_raw_root, MAT10))
    assert not verdict.passed and verdict.severity == "warn"
    assert verdict.figures["text_coverage"] == 0.8 and verdict.figures["pages_without_text"] == 1
    [row] = verdict.tables["pages_without_text"].to_dict("records")
    assert row["file"] == "buku_siswa_matematika_kelas_10.pdf" and row["page"] == 5
    assert row["page_status"] == "no_text"
    assert "buku_siswa_matematika_kelas_10.pdf" in verdict.summary and "80.0%" in verdict.summary


def test_coverage_lists_a_file_that_could_not_be_opened(sample_raw_root: Path) -> None:
    verdict = quality.text_coverage(sample_pages(sample_raw_root, BIO11))
    assert verdict.passed, "its readable pages all have text"
    assert verdict.tables["files_without_pages"]["file"].tolist() == ["rusak.pdf"]
    assert "rusak.pdf" in verdict.summary
    only_broken = quality.text_coverage(sample_pages(sample_raw_root, BIO11).query("file == 'rusak.pdf'"))
    assert not only_broken.passed and "no readable page" in only_broken.summary


def test_coverage_of_an_empty_partition_is_not_applicable() -> None:
    verdict = quality.text_coverage(pages_frame([]))
    assert verdict.passed and not verdict.applicable


# --- chunk health -------------------------------------------------------------------------------------------


def test_chunk_health_passes_on_real_chunks_and_reports_lengths(bio10_chunks: pd.DataFrame) -> None:
    verdict = quality.chunk_health(bio10_chunks, target_size=800)
    assert verdict.passed and verdict.severity == "error"
    lengths = bio10_chunks["text"].str.len()
    assert verdict.figures["chunk_len_min"] == lengths.min() and verdict.figures["chunk_len_max"] == lengths.max()
    assert verdict.figures["chunk_len_median"] == lengths.median()
    assert verdict.figures["short_chunk_limit"] == 160 and verdict.figures["empty_chunks"] == 0


@pytest.mark.parametrize("blank", ["", "  \n\t "])
def test_an_empty_chunk_fails_chunk_health(bio10_chunks: pd.DataFrame, blank: str) -> None:
    broken = bio10_chunks.copy()
    broken.loc[3, "text"] = blank
    verdict = quality.chunk_health(broken)
    assert not verdict.passed and verdict.severity == "error"
    assert verdict.figures["empty_chunks"] == 1
    assert verdict.tables["empty_chunks"]["chunk_id"].tolist() == [broken.loc[3, "chunk_id"]]
    assert "1 empty chunk(s) in buku_siswa_biologi_kelas_10.pdf" in verdict.summary


def test_a_repeated_chunk_id_fails_and_short_chunks_are_counted(bio10_chunks: pd.DataFrame) -> None:
    broken = bio10_chunks.copy()
    broken.loc[1, "chunk_id"] = broken.loc[0, "chunk_id"]
    broken.loc[2, "text"] = "Ringkasan bab."  # 14 characters: short, not empty
    verdict = quality.chunk_health(broken, target_size=800)
    assert not verdict.passed and verdict.figures["repeated_chunk_ids"] == 1
    assert verdict.figures["short_chunks"] == 1
    assert verdict.figures["short_chunk_share"] == round(1 / len(broken), 4)
    assert verdict.tables["short_chunks"]["length"].tolist() == [14]


def test_chunk_health_of_an_empty_partition_is_not_applicable() -> None:
    verdict = quality.chunk_health(chunks_frame([]))
    assert verdict.passed and not verdict.applicable


# --- duplicate rate -----------------------------------------------------------------------------------------


def test_duplicate_rate_passes_on_real_chunks(bio10_chunks: pd.DataFrame) -> None:
    verdict = quality.duplicate_rate(bio10_chunks)
    assert verdict.passed and verdict.figures["duplicate_chunks"] == 0
    assert verdict.tables["duplicate_groups"].empty


def test_a_duplicated_file_fails_the_duplicate_rate(bio10_pages: pd.DataFrame) -> None:
    copy = bio10_pages.assign(file="salinan_buku_biologi.pdf")  # the same book uploaded under a second name
    chunks = sample_chunks(pd.concat([bio10_pages, copy], ignore_index=True), BIO10)
    verdict = quality.duplicate_rate(chunks)
    assert not verdict.passed and verdict.severity == "warn"
    assert verdict.figures["duplicate_rate"] == 0.5
    groups = verdict.tables["duplicate_groups"]
    assert len(groups) == len(chunks) // 2 and set(groups["copies"]) == {2}
    assert set(groups["files"]) == {"buku_siswa_biologi_kelas_10.pdf, salinan_buku_biologi.pdf"}
    assert "50.0%" in verdict.summary and "salinan_buku_biologi.pdf" in verdict.summary


def test_duplicates_at_most_5_percent_pass(bio10_chunks: pd.DataFrame) -> None:
    chunks = pd.concat(
        [bio10_chunks]
        + [
            bio10_chunks.assign(chunk_id=bio10_chunks["chunk_id"] + f"-{i}", text=bio10_chunks["text"] + f" ({i})")
            for i in range(6)
        ],
        ignore_index=True,
    )
    one_copy = pd.concat([chunks, chunks.iloc[[0]].assign(chunk_id="copy")], ignore_index=True)
    verdict = quality.duplicate_rate(one_copy)
    assert verdict.passed and verdict.figures["duplicate_chunks"] == 1
    assert len(verdict.tables["duplicate_groups"]) == 1


# --- embedding sanity ---------------------------------------------------------------------------------------


def test_embedding_sanity_passes_on_unit_vectors_one_per_chunk(bio10_chunks, bio10_embeddings) -> None:
    verdict = quality.embedding_sanity(bio10_embeddings, bio10_chunks, MODEL_ID, DIMS)
    assert verdict.passed, verdict.summary
    assert verdict.figures["vectors"] == verdict.figures["chunks"] == len(bio10_chunks)
    assert abs(verdict.figures["norm_min"] - 1) < 1e-5 and abs(verdict.figures["norm_max"] - 1) < 1e-5


def test_a_nan_vector_fails_embedding_sanity(bio10_chunks, bio10_embeddings) -> None:
    broken = bio10_embeddings.copy()
    vector = np.array(broken.loc[5, "embedding"], dtype=np.float32)
    vector[17] = np.nan
    broken.at[5, "embedding"] = vector
    verdict = quality.embedding_sanity(broken, bio10_chunks, MODEL_ID, DIMS)
    assert not verdict.passed and verdict.severity == "error"
    assert verdict.figures["non_finite"] == 1
    [row] = verdict.tables["bad_vectors"].to_dict("records")
    assert row["chunk_id"] == broken.loc[5, "chunk_id"] and "NaN" in row["problem"]
    assert "1 vector(s) with NaN/inf" in verdict.summary


@pytest.mark.parametrize(
    ("breakage", "figure"),
    [
        (lambda v: np.zeros_like(v), "all_zero"),
        (lambda v: v * 2, "not_unit_norm"),
        (lambda v: v[:100], "wrong_dims"),
    ],
)
def test_zero_unnormalised_or_short_vectors_fail(bio10_chunks, bio10_embeddings, breakage, figure) -> None:
    broken = bio10_embeddings.copy()
    broken.at[0, "embedding"] = breakage(np.array(broken.loc[0, "embedding"]))
    verdict = quality.embedding_sanity(broken, bio10_chunks, MODEL_ID, DIMS)
    assert not verdict.passed and verdict.figures[figure] == 1


def test_a_chunk_without_a_vector_or_another_model_fails(bio10_chunks, bio10_embeddings) -> None:
    missing = quality.embedding_sanity(bio10_embeddings.iloc[1:], bio10_chunks, MODEL_ID, DIMS)
    assert not missing.passed and missing.figures["chunks_without_vector"] == 1
    assert missing.tables["id_mismatches"]["chunk_id"].tolist() == [bio10_chunks.loc[0, "chunk_id"]]
    assert f"{len(bio10_chunks) - 1} vectors for {len(bio10_chunks)} chunks" in missing.summary
    other = quality.embedding_sanity(bio10_embeddings, bio10_chunks, "another/model", DIMS)
    assert not other.passed and "configured model is another/model" in other.summary


# --- collection consistency ---------------------------------------------------------------------------------


def test_the_collection_holds_exactly_the_chunk_ids(tmp_path: Path, bio10_chunks: pd.DataFrame) -> None:
    build = chroma_build(DataLayout(tmp_path), BIO10, bio10_chunks, unit_vectors(len(bio10_chunks)))
    verdict = quality.collection_consistency(build, bio10_chunks)
    assert verdict.passed, verdict.summary
    assert verdict.figures["collection_items"] == verdict.figures["recorded_count"] == len(bio10_chunks)


def test_a_collection_missing_ids_fails(tmp_path: Path, bio10_chunks: pd.DataFrame) -> None:
    stale = bio10_chunks.iloc[:-2]  # the collection of an older build, two chunks short
    build = chroma_build(DataLayout(tmp_path), BIO10, stale, unit_vectors(len(stale)))
    verdict = quality.collection_consistency(build, bio10_chunks)
    assert not verdict.passed and verdict.severity == "error"
    assert verdict.figures["missing_ids"] == 2 and verdict.figures["extra_ids"] == 0
    assert set(verdict.tables["missing_ids"]["chunk_id"]) == set(bio10_chunks["chunk_id"].iloc[-2:])
    assert "2 chunk id(s) missing from the collection" in verdict.summary


def test_extra_ids_or_an_unreadable_build_fail(tmp_path: Path, bio10_chunks: pd.DataFrame) -> None:
    build = chroma_build(DataLayout(tmp_path), BIO10, bio10_chunks, unit_vectors(len(bio10_chunks)))
    extra = quality.collection_consistency(build, bio10_chunks.iloc[1:])
    assert not extra.passed and extra.tables["extra_ids"]["chunk_id"].tolist() == [bio10_chunks.loc[0, "chunk_id"]]
    gone = quality.collection_consistency(tmp_path / "no-such-build", bio10_chunks)
    assert not gone.passed and "cannot be read" in gone.summary


# --- package integrity --------------------------------------------------------------------------------------


@pytest.fixture
def published(tmp_path: Path, bio10_chunks: pd.DataFrame, bio10_embeddings: pd.DataFrame) -> tuple[dict, Path]:
    layout = DataLayout(tmp_path)
    build = chroma_build(layout, BIO10, bio10_chunks, unit_vectors(len(bio10_chunks)))
    entry = publish(layout, BIO10, bio10_chunks, bio10_embeddings, build)
    return entry, Path(entry["location"])


def test_a_published_package_verifies(published) -> None:
    entry, package = published
    verdict = quality.package_integrity(entry, package)
    assert verdict.passed, verdict.summary
    assert verdict.figures["version"] == "1.0.0" and verdict.figures["problems"] == 0


def test_a_tampered_package_fails_integrity(published) -> None:
    entry, package = published
    tamper(package)
    verdict = quality.package_integrity(entry, package)
    assert not verdict.passed and verdict.severity == "error"
    assert any("chunks.parquet: sha256 mismatch" in p for p in verdict.tables["problems"]["problem"])


def test_a_package_swapped_for_another_or_missing_fails(published) -> None:
    entry, package = published
    swapped = quality.package_integrity({**entry, "content_hash": "0" * 64}, package)
    assert not swapped.passed and "content hash differs" in swapped.summary
    missing = quality.package_integrity(entry, package.with_name("gone.vkp"))
    assert not missing.passed
    unfetched = quality.package_integrity(entry, None, "cannot fetch s3://bucket/vkp/x.vkp: 404")
    assert not unfetched.passed and "404" in unfetched.summary
    nothing = quality.package_integrity({"version": None, "location": None, "content_hash": None}, None)
    assert nothing.passed and not nothing.applicable


# --- retrieval quality --------------------------------------------------------------------------------------


def test_golden_file_and_threshold_come_from_config_then_environment(tmp_path: Path) -> None:
    env = {quality.GOLDEN_QUESTIONS_ENV: str(tmp_path / "g.jsonl"), quality.MIN_RECALL_ENV: "0.8"}
    assert quality.golden_path("", {}) is None
    assert quality.golden_path("", env) == tmp_path / "g.jsonl"
    assert quality.golden_path("/elsewhere.jsonl", env) == Path("/elsewhere.jsonl")
    assert quality.min_recall(None, {}) == 0.7
    assert quality.min_recall(None, env) == 0.8 and quality.min_recall(0.5, env) == 0.5
    with pytest.raises(ValueError, match="between 0 and 1"):
        quality.min_recall(1.5, {})
    with pytest.raises(ValueError, match="not a number"):
        quality.min_recall(None, {quality.MIN_RECALL_ENV: "high"})


def test_questions_on_files_no_longer_in_the_partition_are_stale_not_missed() -> None:
    questions = [
        GoldenQuestion("q1", "biologi", "kelas_10", "buku.pdf", 1),
        GoldenQuestion("q2", "biologi", "kelas_10", "dihapus.pdf", 2),
        GoldenQuestion("q3", "biologi", "kelas_11", "buku.pdf", 1),
    ]
    asked, stale = quality.golden_for_partition(questions, BIO10, ["buku.pdf"])
    assert [q.question for q in asked] == ["q1"] and [q.question for q in stale] == ["q2"]
    verdict = quality.retrieval_quality([], stale, 0.7)
    assert verdict.passed and not verdict.applicable and "no longer in the partition" in verdict.summary


def test_recall_is_judged_against_the_threshold() -> None:
    questions = [GoldenQuestion(f"q{i}", "biologi", "kelas_10", "buku.pdf", i) for i in range(1, 11)]
    seven = [GoldenResult(q, 1 if i < 7 else None) for i, q in enumerate(questions)]
    at = quality.retrieval_quality(seven, [], 0.7)
    assert at.passed and at.figures["recall_at_5"] == 0.7 and len(at.tables["missed_questions"]) == 3
    below = quality.retrieval_quality(seven, [], 0.75)
    assert not below.passed and below.severity == "error" and "below 75%" in below.summary
    assert quality.retrieval_quality([], [], 0.7).applicable is False


def test_a_build_answers_its_generated_golden_set_but_not_one_it_cannot(
    tmp_path: Path, embedder, sample_raw_root: Path
) -> None:
    pages = sample_pages(sample_raw_root, BIO11)
    chunks = sample_chunks(pages, BIO11)
    build = chroma_build(DataLayout(tmp_path / "data"), BIO11, chunks, embedder.embed(chunks["text"].tolist()))
    source_files = sorted(pages["file"].unique())  # rusak.pdf is a source file; the build could not read it
    good = [GoldenQuestion(**r) for r in golden_rows(pages, BIO11)]
    asked, stale = quality.golden_for_partition(good, BIO11, source_files)
    verdict = quality.retrieval_quality(quality.evaluate_build(build, BIO11, asked, embedder), stale, 0.7)
    assert verdict.passed and verdict.figures["questions"] == 4, verdict.summary
    assert verdict.figures["recall_at_5"] >= 0.7

    lost = [GoldenQuestion(**r) for r in unanswerable_rows(BIO11)]
    asked, stale = quality.golden_for_partition(lost, BIO11, source_files)
    assert not stale, "rusak.pdf is still a source of the partition: its questions count"
    verdict = quality.retrieval_quality(quality.evaluate_build(build, BIO11, asked, embedder), stale, 0.7)
    assert not verdict.passed and verdict.figures["recall_at_5"] == 0.0
    assert set(verdict.tables["missed_questions"]["file"]) == {"rusak.pdf"}


def test_the_golden_file_format_is_the_shared_one(tmp_path: Path, bio10_pages: pd.DataFrame) -> None:
    from nexus_assets.lib.index.retrieval_eval import load_golden

    path = write_golden(tmp_path / "golden.jsonl", golden_rows(bio10_pages, BIO10))
    questions = load_golden(path)
    assert {(q.subject, q.grade, q.file) for q in questions} == {
        ("biologi", "kelas_10", "buku_siswa_biologi_kelas_10.pdf")
    }
    assert sorted(q.page for q in questions) == [1, 2, 3, 4]


def test_markdown_tables_escape_cells_and_say_what_was_cut() -> None:
    frame = pd.DataFrame({"file": [f"a|{i}.pdf" for i in range(3)], "page": [1, 2, 3]})
    text = quality.markdown_table(frame, limit=2)
    assert text.splitlines()[0] == "| file | page |" and "a\\|0.pdf" in text
    assert "_1 more rows not shown_" in text
    assert quality.markdown_table(frame.iloc[:0]) == "_none_"
