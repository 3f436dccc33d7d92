"""End to end: the pipeline publishes signed versions and deltas, a school pulls them over HTTP.

Materializes a real partition twice (model included), so it is slow.
"""

import shutil
from pathlib import Path

import pytest

from nexus_assets.lib.core.layout import DataLayout
from nexus_assets.lib.distribution.vkp_pull import Source, installed_release, pull
from nexus_assets.lib.index.chroma_store import current_build
from nexus_assets.lib.publish.signing import trusted_public_key
from nexus_assets.lib.publish.vkp import verify_vkp
from nexus_assets_tests.support.dagster_build import INFO10, build_info10, copy_informatika
from nexus_assets_tests.support.vkp_helpers import collection_snapshot

pytestmark = pytest.mark.slow


def test_a_rebuild_after_one_pdf_changed_reaches_a_school_as_a_delta(
    tmp_path: Path, sample_raw_root: Path, http_root
) -> None:
    base, handler = http_root
    publisher = tmp_path / "publisher"
    copy_informatika(sample_raw_root, publisher)
    first = build_info10(publisher)["vkp_package"]
    assert first["version"] == "1.0.0" and first["development_key"] is True
    key, origin = trusted_public_key(None, publisher)
    assert (
        origin.startswith("DEVELOPMENT")
        and verify_vkp(publisher / "vkp" / f"{INFO10.vkp_name('1.0.0')}", key).signature == "valid"
    )
    school = tmp_path / "school"
    [installed] = pull(Source(base + "catalog.json"), school, key)
    assert (installed.via, installed.installed_after) == ("full", "1.0.0")

    raw = publisher / "raw-curriculum/informatika"
    shutil.copy(
        raw / "kelas_11/buku_siswa_informatika_kelas_11.pdf", raw / "kelas_10/modul_ajar_informatika_kelas_10.pdf"
    )
    second = build_info10(publisher)["vkp_package"]
    assert (second["version"], second["bump"]) == ("1.0.1", "patch")
    assert Path(second["delta_path"]).name == "informatika_kelas_10_v1.0.1_from_v1.0.0.vkpd"

    [update] = pull(Source(base + "catalog.json"), school, key)
    assert (update.via, update.installed_after) == ("delta", "1.0.1"), update.problems
    fresh = tmp_path / "fresh-school"
    [full] = pull(Source(base + "catalog.json"), fresh, key)
    assert full.via == "full" and update.bytes_downloaded < full.bytes_downloaded
    via_delta = collection_snapshot(installed_release(school, INFO10) / "chroma")
    assert via_delta == collection_snapshot(installed_release(fresh, INFO10) / "chroma")
    publisher_build = current_build(DataLayout(publisher).processed_dir(INFO10) / "chroma")
    assert via_delta == collection_snapshot(publisher_build), "the school holds exactly what the pipeline built"
