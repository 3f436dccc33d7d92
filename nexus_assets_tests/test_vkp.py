import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nexus_assets.lib.chroma_store import build_collection, current_build
from nexus_assets.lib.chunking import Chunk
from nexus_assets.lib.layout import DataLayout, Partition
from nexus_assets.lib.publishing import LocalPackageStore, publish_vkp
from nexus_assets.lib.tables import chunks_frame, embeddings_frame
from nexus_assets.lib.vkp import VkpError, next_version, read_manifest, verify_vkp

PART = Partition("informatika", "kelas_10")


def _build(tmp_path: Path, texts: list[str]) -> tuple[DataLayout, object, object, Path]:
    layout = DataLayout(tmp_path)
    chunks = chunks_frame([Chunk(f"id{i:03d}", "buku.pdf", i, 1, 1, t) for i, t in enumerate(texts)])
    rng = np.random.default_rng(len(texts))
    vectors = rng.normal(size=(len(texts), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embeddings = embeddings_frame(chunks["chunk_id"].tolist(), vectors, "test-model", 8)
    info = build_collection(tmp_path / "chroma", "informatika__kelas_10", chunks["chunk_id"].tolist(), vectors,
                            chunks["text"].tolist(), [{"file": "buku.pdf", "page": 1}] * len(texts), "test-model", 8)
    return layout, chunks, embeddings, info.path


def _publish(tmp_path: Path, texts: list[str]):
    layout, chunks, embeddings, chroma = _build(tmp_path, texts)
    sources = [{"file": "buku.pdf", "sha256": "0" * 64, "size": 1, "status": "ok"}]
    counts = {"files": 1, "chunks": len(chunks), "embeddings": len(embeddings)}
    return publish_vkp(LocalPackageStore(layout), PART, chunks, embeddings, chroma, sources, counts)


def test_published_package_verifies(tmp_path: Path) -> None:
    result = _publish(tmp_path, ["satu", "dua", "tiga"])
    assert result.published and result.version == "1.0.0"
    assert Path(result.location).name == "informatika_kelas_10_v1.0.0.vkp"
    report = verify_vkp(Path(result.location))
    assert report.ok, report.problems
    manifest = read_manifest(Path(result.location))
    assert manifest["embedding"] == {"model_id": "test-model", "dims": 8}
    assert manifest["counts"]["chunks"] == 3
    assert {"chunks.parquet", "embeddings.parquet"} <= set(manifest["members"])
    assert any(name.startswith("chroma/") for name in manifest["members"])


def test_unchanged_content_is_not_republished_and_changes_bump_the_patch(tmp_path: Path) -> None:
    first = _publish(tmp_path, ["satu", "dua"])
    again = _publish(tmp_path, ["satu", "dua"])
    assert not again.published and again.version == "1.0.0"
    changed = _publish(tmp_path, ["satu", "dua diubah"])
    assert changed.published and changed.version == "1.0.1"
    assert Path(first.location).exists() and verify_vkp(Path(first.location)).ok, "older versions stay untouched"
    assert next_version("1.0.9") == "1.0.10"


def test_empty_partition_publishes_nothing(tmp_path: Path) -> None:
    result = _publish(tmp_path, [])
    assert not result.published and result.location is None
    assert not (tmp_path / "vkp").exists() or not list((tmp_path / "vkp").iterdir())


def _rewrite(src: Path, dest: Path, change) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
    return dest


def test_a_flipped_byte_in_a_member_is_refused(tmp_path: Path) -> None:
    good = Path(_publish(tmp_path, ["satu", "dua"]).location)
    (tmp_path / "out").mkdir()
    bad = _rewrite(good, tmp_path / "out" / good.name,
                   lambda name, data: data[:-1] + bytes([data[-1] ^ 1]) if name == "chunks.parquet" else data)
    report = verify_vkp(bad)
    assert not report.ok
    assert any("chunks.parquet: sha256 mismatch" in p for p in report.problems)


def test_missing_extra_and_renamed_packages_are_refused(tmp_path: Path) -> None:
    good = Path(_publish(tmp_path, ["satu", "dua"]).location)
    out = tmp_path / "out"
    out.mkdir()
    missing = _rewrite(good, out / good.name, lambda n, d: None if n == "embeddings.parquet" else d)
    assert any("missing" in p for p in verify_vkp(missing).problems)
    renamed = out / "informatika_kelas_10_v9.9.9.vkp"
    renamed.write_bytes(good.read_bytes())
    assert any("does not match" in p for p in verify_vkp(renamed).problems)
    junk = out / "junk.vkp"
    junk.write_bytes(b"not a zip")
    assert not verify_vkp(junk).ok


def test_a_manifest_lying_about_counts_is_refused(tmp_path: Path) -> None:
    good = Path(_publish(tmp_path, ["satu", "dua"]).location)

    def lie(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["counts"]["chunks"] = 5
        return json.dumps(manifest).encode()

    (tmp_path / "out").mkdir()
    report = verify_vkp(_rewrite(good, tmp_path / "out" / good.name, lie))
    assert any("manifest says 5" in p for p in report.problems)


def test_path_escaping_members_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "informatika_kelas_10_v1.0.0.vkp"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", "{}")
        archive.writestr("../evil.txt", "x")
    assert any("unsafe" in p for p in verify_vkp(path).problems)


def test_an_existing_version_is_never_overwritten(tmp_path: Path) -> None:
    from nexus_assets.lib.vkp import write_vkp

    layout, chunks, embeddings, chroma = _build(tmp_path, ["satu"])
    target = layout.vkp_path(PART, "1.0.0")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"published earlier")
    with pytest.raises(VkpError, match="never overwritten"):
        write_vkp(target, PART, "1.0.0", model_id="m", dims=8, counts={}, sources=[], content_hash_value="x",
                  chunks_parquet=b"", embeddings_parquet=b"", chroma_dir=chroma)
    assert target.read_bytes() == b"published earlier"
    assert current_build(tmp_path / "chroma") is not None
