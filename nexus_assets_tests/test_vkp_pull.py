from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.lib.core.layout import DataLayout
from nexus_assets.lib.distribution.vkp_pull import PullError, Source, download, installed_release, plan, pull
from nexus_assets.lib.publish.signing import Signer
from nexus_assets_tests.support.vkp_helpers import PART, collection_snapshot, files_of, publish

SIGNER = Signer(Ed25519PrivateKey.generate(), "test key")


def _publish_versions(tmp_path: Path, n: int) -> DataLayout:
    layout = DataLayout(tmp_path / "publisher")
    for version in range(n):
        publish(layout, files_of(10, changed={version % 10: f"versi {version}"}), SIGNER)
    return layout


def test_v1_to_v3_through_deltas_and_through_a_full_package_end_in_the_same_collection(tmp_path: Path) -> None:
    layout = _publish_versions(tmp_path, 1)
    catalog = str(layout.vkp_dir / "catalog.json")
    school = tmp_path / "school"
    [first] = pull(Source(catalog), school, SIGNER.public_key)
    assert (first.via, first.installed_after) == ("full", "1.0.0")
    v1_release = installed_release(school, PART)
    publish(layout, files_of(10, changed={1: "versi 1"}), SIGNER)
    publish(layout, files_of(10, changed={1: "versi 1", 2: "versi 2"}), SIGNER)
    [update] = pull(Source(catalog), school, SIGNER.public_key)
    assert (update.via, update.installed_before, update.installed_after) == ("deltas (2)", "1.0.0", "1.0.2")
    releases = sorted(p.name.split("-")[0] for p in (school / "informatika_kelas_10" / "releases").iterdir())
    assert releases == ["1.0.1", "1.0.2"] and not v1_release.exists(), "current plus one previous release kept"
    fresh = tmp_path / "fresh-school"
    [full] = pull(Source(catalog), fresh, SIGNER.public_key)
    assert (full.via, full.installed_after) == ("full", "1.0.2")
    assert update.bytes_downloaded < 0.3 * full.bytes_downloaded
    via_deltas = collection_snapshot(installed_release(school, PART) / "chroma")
    via_full = collection_snapshot(installed_release(fresh, PART) / "chroma")
    assert len(via_full) == 60 and via_deltas == via_full
    [again] = pull(Source(catalog), school, SIGNER.public_key)
    assert (again.via, again.bytes_downloaded) == ("up to date", 0)


def test_a_delta_into_a_relative_dest_leaves_a_serving_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--dest school` from a cron job's working directory: the delta's release must exist where `current`
    points (it pointed at a release staged relative to the wrong directory, exit 0 with nothing serving)."""
    layout = _publish_versions(tmp_path, 1)
    catalog = str(layout.vkp_dir / "catalog.json")
    monkeypatch.chdir(tmp_path)
    pull(Source(catalog), Path("school"), SIGNER.public_key)
    publish(layout, files_of(10, changed={3: "versi 3"}), SIGNER)
    [update] = pull(Source(catalog), Path("school"), SIGNER.public_key)
    assert (update.via, update.installed_after) == ("delta", "1.0.1")
    current = installed_release(tmp_path / "school", PART)
    assert current is not None and (current / "chroma").is_dir(), "current must point at an installed release"
    assert len(collection_snapshot(current / "chroma")) == 60


def test_a_package_that_fails_verification_leaves_the_installed_release_serving(tmp_path: Path) -> None:
    layout = _publish_versions(tmp_path, 1)
    catalog = str(layout.vkp_dir / "catalog.json")
    school = tmp_path / "school"
    pull(Source(catalog), school, SIGNER.public_key)
    before = installed_release(school, PART)
    publish(layout, files_of(10, changed={4: "baru"}), SIGNER)
    stranger = Signer(Ed25519PrivateKey.generate(), "someone else")
    with pytest.raises(PullError, match="signed by key .*refused"):  # the catalog is checked first
        pull(Source(catalog), school, stranger.public_key)
    assert installed_release(school, PART) == before


def test_plan_prefers_a_lighter_delta_chain_and_falls_back_to_full() -> None:
    def version(v: str, delta_from: str | None, delta_size: int = 10) -> dict:
        delta = {"name": f"d{v}", "from": delta_from, "size": delta_size} if delta_from else None
        return {"version": v, "full": {"name": f"f{v}", "size": 100}, "delta": delta}

    entry = {
        "latest": "1.0.2",
        "versions": [version("1.0.2", "1.0.1"), version("1.0.1", "1.0.0"), version("1.0.0", None)],
    }
    assert [r["name"] for r in plan(entry, "1.0.0")] == ["d1.0.1", "d1.0.2"]
    assert [r["name"] for r in plan(entry, "1.0.1")] == ["d1.0.2"]
    assert [r["name"] for r in plan(entry, "0.9.0")] == ["f1.0.2"], "no chain from an unknown version"
    assert [r["name"] for r in plan(entry, None)] == ["f1.0.2"]
    assert plan(entry, "1.0.2") == []
    heavy = {"latest": "1.0.1", "versions": [version("1.0.1", "1.0.0", 150), version("1.0.0", None)]}
    assert [r["name"] for r in plan(heavy, "1.0.0")] == ["f1.0.1"]


@pytest.mark.slow
def test_an_interrupted_http_download_resumes_where_it_stopped(tmp_path: Path, http_root) -> None:
    base, handler = http_root
    layout = _publish_versions(tmp_path, 1)
    name = PART.vkp_name("1.0.0")
    size = (layout.vkp_dir / name).stat().st_size
    handler.cut[name] = size // 3
    school = tmp_path / "school"
    [outcome] = pull(Source(base + "catalog.json"), school, SIGNER.public_key)
    assert (outcome.via, outcome.installed_after) == ("full", "1.0.0"), outcome.problems
    assert handler.ranges[-2:] == [f"{name} None", f"{name} bytes={size // 3}-"], "the second request resumed"
    assert outcome.bytes_downloaded == size, "no byte was fetched twice"
    # An interruption that outlives the attempts leaves a .part file the next pull resumes from.
    dest = tmp_path / "manual" / name
    handler.cut[name] = 1000
    with pytest.raises(PullError, match="download incomplete"):
        download(Source(base + "catalog.json").opener(name), dest, size, "0" * 64, attempts=1)
    assert dest.with_name(name + ".part").stat().st_size == 1000
    from nexus_assets.lib.core.hashing import sha256_file

    got = download(Source(base + "catalog.json").opener(name), dest, size, sha256_file(layout.vkp_dir / name))
    assert got == size - 1000 and dest.read_bytes() == (layout.vkp_dir / name).read_bytes()
