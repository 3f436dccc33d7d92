import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nexus_assets.lib.core.layout import DataLayout, Partition
from nexus_assets.lib.core.tables import chunks_frame, embeddings_frame
from nexus_assets.lib.index.chroma_store import CollectionItems, build_collection, current_build
from nexus_assets.lib.index.chunking import Chunk
from nexus_assets.lib.publish.publishing import LocalPackageStore, publish_vkp
from nexus_assets.lib.publish.signing import development_signer
from nexus_assets.lib.publish.versioning import bump
from nexus_assets.lib.publish.vkp import VkpError, read_manifest, verify_vkp

PART = Partition("informatika", "kelas_10")


def _build(tmp_path: Path, texts: list[str]) -> tuple[DataLayout, object, object, Path]:
    layout = DataLayout(tmp_path)
    chunks = chunks_frame([Chunk(f"id{i:03d}", "buku.pdf", i, 1, 1, t) for i, t in enumerate(texts)])
    rng = np.random.default_rng(len(texts))
    vectors = rng.normal(size=(len(texts), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    embeddings = embeddings_frame(chunks["chunk_id"].tolist(), vectors, "test-model", 8)
    info = build_collection(
        tmp_path / "chroma",
        "informatika__kelas_10",
        CollectionItems(
            chunks["chunk_id"].tolist(),
            vectors,
            chunks["text"].tolist(),
            [{"file": "buku.pdf", "page": 1}] * len(texts),
            "test-model",
            8,
        ),
    )
    return layout, chunks, embeddings, info.path


def _publish(tmp_path: Path, texts: list[str]):
    layout, chunks, embeddings, chroma = _build(tmp_path, texts)
    sources = [{"file": "buku.pdf", "sha256": "0" * 64, "size": 1, "status": "ok"}]
    counts = {"files": 1, "chunks": len(chunks), "embeddings": len(embeddings)}
    return publish_vkp(
        LocalPackageStore(layout),
        PART,
        chunks,
        embeddings,
        chroma,
        sources,
        counts,
        signer=development_signer(tmp_path),
    )


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
    assert bump("1.0.9", "patch") == "1.0.10"


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
    bad = _rewrite(
        good,
        tmp_path / "out" / good.name,
        lambda name, data: data[:-1] + bytes([data[-1] ^ 1]) if name == "chunks.parquet" else data,
    )
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
    from nexus_assets.lib.publish.vkp import write_vkp

    layout, chunks, embeddings, chroma = _build(tmp_path, ["satu"])
    target = layout.vkp_path(PART, "1.0.0")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"published earlier")
    with pytest.raises(VkpError, match="never overwritten"):
        write_vkp(
            target,
            PART,
            "1.0.0",
            model_id="m",
            dims=8,
            counts={},
            sources=[],
            content_hash_value="x",
            chunks_parquet=b"",
            embeddings_parquet=b"",
            chroma_dir=chroma,
        )
    assert target.read_bytes() == b"published earlier"
    assert current_build(tmp_path / "chroma") is not None


def _signed(tmp_path: Path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from nexus_assets.lib.publish.signing import Signer
    from nexus_assets_tests.support.vkp_helpers import files_of, publish

    signer = Signer(Ed25519PrivateKey.generate(), "test key")
    return Path(publish(DataLayout(tmp_path), files_of(2), signer).location), signer


def test_a_flipped_byte_in_any_member_or_the_manifest_is_refused(tmp_path: Path) -> None:
    good, signer = _signed(tmp_path)
    report = verify_vkp(good, signer.public_key)
    assert report.ok and report.signature == "valid", report.problems
    (tmp_path / "out").mkdir()
    with zipfile.ZipFile(good) as archive:
        names = [n for n in archive.namelist() if n != "manifest.sig"]
    for name in names:

        def flip(member: str, data: bytes, target: str = name) -> bytes:
            if member != target:
                return data
            if member == "manifest.json":  # still valid JSON, so only the signature can catch it
                return data.replace(b'"grade": "kelas_10"', b'"grade": "kelas_11"')
            return data[:-1] + bytes([data[-1] ^ 1]) if data else b"\x00"  # empty members gain a byte

        bad = _rewrite(good, tmp_path / "out" / good.name, flip)
        problems = verify_vkp(bad, signer.public_key).problems
        assert problems, f"a flipped byte in {name} went unnoticed"
        bad.unlink()


def test_unsigned_and_foreign_signed_packages_are_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    good, signer = _signed(tmp_path)
    (tmp_path / "out").mkdir()
    unsigned = _rewrite(good, tmp_path / "out" / good.name, lambda n, d: None if n == "manifest.sig" else d)
    report = verify_vkp(unsigned, signer.public_key)
    assert not report.ok and report.signature == "unsigned" and "unsigned package" in report.problems[0]
    assert verify_vkp(unsigned, signer.public_key, allow_unsigned=True).ok
    other = Ed25519PrivateKey.generate().public_key()
    foreign = verify_vkp(good, other)
    assert not foreign.ok and foreign.signature == "invalid"


def _zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("name", ["../evil.txt", "chroma/../../evil.txt", "/etc/evil.txt"])
def test_extraction_refuses_members_escaping_the_target(tmp_path: Path, name: str) -> None:
    from nexus_assets.lib.publish.vkp import safe_extract

    archive = _zip_with(tmp_path / "a.vkp", {"ok.txt": b"x", name: b"evil"})
    with pytest.raises(VkpError, match="unsafe member path"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists() and not (tmp_path / "evil.txt").exists(), "nothing was written"


def test_extraction_refuses_a_10_gb_declared_member_and_too_many_members(tmp_path: Path) -> None:
    import struct

    from nexus_assets.lib.publish.vkp import ExtractLimits, safe_extract

    path = _zip_with(tmp_path / "bomb.vkp", {"chroma/huge.bin": b"0123456789"})
    raw = bytearray(path.read_bytes())
    # Make the central directory declare 10 GB: size field 0xFFFFFFFF plus a zip64 extra with the real value.
    central = raw.rindex(b"PK\x01\x02")
    name_len, extra_len = struct.unpack_from("<HH", raw, central + 28)
    struct.pack_into("<I", raw, central + 24, 0xFFFFFFFF)
    struct.pack_into("<H", raw, central + 30, extra_len + 12)
    zip64 = struct.pack("<HHQ", 1, 8, 10 * 1024**3)
    insert_at = central + 46 + name_len + extra_len
    raw[insert_at:insert_at] = zip64
    end = raw.rindex(b"PK\x05\x06")
    size = struct.unpack_from("<I", raw, end + 12)[0]
    struct.pack_into("<I", raw, end + 12, size + len(zip64))
    path.write_bytes(bytes(raw))
    assert zipfile.ZipFile(path).infolist()[0].file_size == 10 * 1024**3
    with pytest.raises(VkpError, match="declares 10737418240 bytes"):
        safe_extract(path, tmp_path / "dest")
    many = _zip_with(tmp_path / "many.vkp", {f"chroma/{i}.bin": b"x" for i in range(30)})
    with pytest.raises(VkpError, match="30 members, more than the 20 allowed"):
        safe_extract(many, tmp_path / "dest", ExtractLimits(max_members=20))
    assert not (tmp_path / "dest").exists()
