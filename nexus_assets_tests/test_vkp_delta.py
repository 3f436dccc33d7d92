import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.lib.core.layout import DataLayout
from nexus_assets.lib.publish.signing import Signer
from nexus_assets.lib.publish.vkp import read_manifest
from nexus_assets.lib.publish.vkp_delta import DeltaError, apply_delta, read_tables, tables_digest, verify_delta
from nexus_assets_tests.support.vkp_helpers import PART, files_of, publish

SIGNER = Signer(Ed25519PrivateKey.generate(), "test key")


def test_a_delta_applied_to_its_base_gives_exactly_the_full_package(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    first = publish(layout, files_of(10), SIGNER)
    files = files_of(10, changed={3: "isi baru"})
    files["buku_03.pdf"].append("bab tambahan")
    second = publish(layout, files, SIGNER)
    assert (first.version, second.version, second.bump) == ("1.0.0", "1.0.1", "patch")
    delta = Path(second.delta_location)
    assert delta.name == "informatika_kelas_10_v1.0.1_from_v1.0.0.vkpd"
    report = verify_delta(delta, SIGNER.public_key)
    assert report.ok and report.signature == "valid", report.problems
    assert report.manifest["counts"] == {"chunks": 61, "upserted": 7, "removed": 6}
    base_path, full_path = Path(first.location), Path(second.location)
    chunks, vectors, _ = apply_delta(read_tables(base_path), read_manifest(base_path), delta)
    full_chunks, full_vectors = read_tables(full_path)
    assert chunks.equals(full_chunks)
    assert chunks.dtypes.equals(full_chunks.dtypes)
    assert tables_digest(chunks, vectors) == tables_digest(full_chunks, full_vectors)
    assert delta.stat().st_size < 0.15 * full_path.stat().st_size


def test_a_delta_refuses_the_wrong_base_and_a_wrong_result(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    first = publish(layout, files_of(3), SIGNER)
    publish(layout, files_of(3, changed={0: "dua"}), SIGNER)
    third = publish(layout, files_of(3, changed={0: "tiga"}), SIGNER)
    base = Path(first.location)
    with pytest.raises(DeltaError, match="installed version is v1.0.0"):
        apply_delta(read_tables(base), read_manifest(base), Path(third.delta_location))
    second_path = layout.vkp_path(PART, "1.0.1")
    chunks, vectors = read_tables(second_path)
    last = len(vectors) - 1  # a chunk of an unchanged file: the delta keeps it from the base
    vectors.at[last, "embedding"] = vectors.at[last, "embedding"] * 0.5
    with pytest.raises(DeltaError, match="digest mismatch"):
        apply_delta((chunks, vectors), read_manifest(second_path), Path(third.delta_location))


def test_a_new_model_is_a_major_version_without_a_delta(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    publish(layout, files_of(2), SIGNER)
    added = publish(layout, {**files_of(2), "baru.pdf": ["teks baru"]}, SIGNER)
    assert (added.version, added.bump) == ("1.1.0", "minor") and added.delta_location
    swapped = publish(layout, {**files_of(2), "baru.pdf": ["teks baru"]}, SIGNER, model_id="titan-v2", dims=16)
    assert (swapped.version, swapped.bump, swapped.delta_location) == ("2.0.0", "major", None)
    assert read_manifest(Path(swapped.location))["embedding"] == {"model_id": "titan-v2", "dims": 16}


def test_catalog_names_every_retained_package_and_retention_deletes_the_rest(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    for n in range(5):
        result = publish(layout, files_of(2, changed={0: f"versi {n}"}), SIGNER, keep=3)
    assert result.version == "1.0.4" and result.removed
    catalog = json.loads((layout.vkp_dir / "catalog.json").read_text())
    entry = catalog["partitions"]["informatika/kelas_10"]
    assert entry["latest"] == "1.0.4"
    assert [v["version"] for v in entry["versions"]] == ["1.0.4", "1.0.3", "1.0.2"]
    on_disk = sorted(p.name for p in layout.vkp_dir.glob("informatika_*"))
    named = sorted(
        [v["full"]["name"] for v in entry["versions"]] + [v["delta"]["name"] for v in entry["versions"] if v["delta"]]
    )
    assert on_disk == named, "exactly the retained fulls and deltas remain"
    newest = entry["versions"][0]
    assert newest["full"]["size"] == (layout.vkp_dir / newest["full"]["name"]).stat().st_size
    assert newest["delta"]["from"] == "1.0.3" and newest["full"]["signature"]["key_id"] == SIGNER.key_id
    # A version number is never reused, even with every package gone.
    for path in layout.vkp_dir.glob("informatika_*"):
        path.unlink()
    assert publish(layout, files_of(2, changed={0: "lagi"}), SIGNER, keep=3).version == "2.0.0"
