"""The school update path and the input scan under attack (issue 16): the catalog, the mirror and the
upload folder are hostile.

Every case is made in the test: forged or replayed catalogs, packages built or re-zipped by hand
(signed by the trusted key when the case is "the signing host was compromised too"), a loopback HTTP
mirror that misbehaves (endless bodies, lying lengths), links planted under raw-curriculum/. The
memory cases run `nexus vkp verify` / `nexus vkp pull` in a child process and read its peak RSS.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.lib.core.hashing import sha256_file
from nexus_assets.lib.core.layout import PLATFORM_NAMES, DataLayout, LayoutError, Partition
from nexus_assets.lib.distribution.vkp_catalog import document
from nexus_assets.lib.distribution.vkp_pull import (
    CATALOG_STATE,
    PullError,
    Source,
    installed_release,
    installed_version,
    pull,
)
from nexus_assets.lib.publish.publishing import LocalPackageStore, publish_vkp
from nexus_assets.lib.publish.signing import Signer, canonical_json, private_pem, public_pem
from nexus_assets.lib.publish.vkp import verify_vkp
from nexus_assets_tests.support.http_files import serving
from nexus_assets_tests.support.vkp_helpers import PART, build, files_of, publish

SIGNER = Signer(Ed25519PrivateKey.generate(), "publisher key")
STRANGER = Signer(Ed25519PrivateKey.generate(), "attacker key")
SIGNER_PEM = private_pem(SIGNER.key).decode()
OTHER = Partition("biologi", "kelas_10")  # sorted before PART
RSS_LIMIT_MB = 300
BOMB_BYTES = 512 * 1024**2


def _catalog_path(layout: DataLayout) -> Path:
    return layout.vkp_dir / "catalog.json"


def _publish_other(layout: DataLayout, files: dict[str, list[str]]) -> None:
    chunks, embeddings, chroma = build(layout.root / "processed-other", files)
    sources = [{"file": f, "sha256": "0" * 64, "size": 1, "status": "ok"} for f in sorted(files)]
    publish_vkp(
        LocalPackageStore(layout),
        OTHER,
        chunks,
        embeddings,
        chroma,
        sources,
        {"files": len(files), "chunks": len(chunks), "embeddings": len(embeddings)},
        signer=SIGNER,
    )


def _resign(path: Path, mutate=None, signer: Signer = SIGNER, **kwargs) -> dict:
    """Rewrite a catalog with `mutate` applied to its partitions, signed by `signer` (a stolen key, or the
    publisher re-signing an old catalog for a replay)."""
    partitions = json.loads(path.read_text())["partitions"]
    if mutate is not None:
        mutate(partitions)
    doc = document(partitions, signer, **kwargs)
    path.write_text(json.dumps(doc))
    return doc


@pytest.fixture
def school(tmp_path: Path) -> tuple[DataLayout, Path]:
    """A publisher with two partitions at v1.0.0, installed on a school server."""
    layout = DataLayout(tmp_path / "publisher")
    publish(layout, files_of(3), SIGNER)
    _publish_other(layout, files_of(2, chunks_per_file=3))
    dest = tmp_path / "school"
    outcomes = pull(Source(str(_catalog_path(layout))), dest, SIGNER.public_key)
    assert [(o.partition, o.installed_after) for o in outcomes] == [(OTHER.label, "1.0.0"), (PART.label, "1.0.0")]
    return layout, dest


# --- a loopback mirror that misbehaves -------------------------------------------------------------------


class _Mirror(BaseHTTPRequestHandler):
    root: Path
    endless: set[str]
    announce: dict[str, int]

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        name = self.path.lstrip("/")
        try:
            if name in self.endless:  # no length, and zeros until the client hangs up
                self.send_response(200)
                self.end_headers()
                block = b"\0" * 65536
                while True:
                    self.wfile.write(block)
            data = (self.root / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(self.announce.get(name, len(data))))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, FileNotFoundError):
            pass


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, type[_Mirror]]]:
    handler = type("Mirror", (_Mirror,), {"root": tmp_path / "mirror", "endless": set(), "announce": {}})
    with serving(handler) as url:
        yield url, handler


# --- class 1: the catalog is signed, expires, never moves a partition backwards, binds its packages ------


@pytest.mark.reliability(
    "security",
    "`nexus vkp pull` of a catalog a mirror edited (package sha256 changed) "
    "without the publisher's key, and of an unsigned catalog",
)
def test_a_catalog_not_signed_by_the_publisher_is_refused_whole(school, reliability) -> None:
    layout, dest = school
    before = installed_release(dest, PART)
    path = _catalog_path(layout)
    doc = json.loads(path.read_text())
    doc["partitions"][PART.label]["versions"][0]["full"]["sha256"] = "f" * 64
    path.write_text(json.dumps(doc))
    with pytest.raises(PullError, match="signature does not match the catalog") as edited:
        pull(Source(str(path)), dest, SIGNER.public_key)
    del doc["signature"]
    path.write_text(json.dumps(doc))
    with pytest.raises(PullError, match="unsigned catalog") as unsigned:
        pull(Source(str(path)), dest, SIGNER.public_key)
    assert installed_release(dest, PART) == before
    reliability(
        f'both refused before any download: "{str(edited.value).split(": ", 1)[1][:90]}"; '
        f'"{str(unsigned.value).split(": ", 1)[1][:60]}"; installed release unchanged'
    )


@pytest.mark.reliability("security", "replay of a genuinely signed catalog after its expiry")
def test_an_expired_catalog_is_refused(school, reliability) -> None:
    layout, dest = school
    path = _catalog_path(layout)
    _resign(path, now=datetime.now(UTC) - timedelta(days=31), days=30)
    with pytest.raises(PullError, match="the catalog expired at") as expired:
        pull(Source(str(path)), dest, SIGNER.public_key)
    _resign(path)
    assert [o.via for o in pull(Source(str(path)), dest, SIGNER.public_key)] == ["up to date", "up to date"]
    reliability(f'refused: "{str(expired.value).split(": ", 1)[1][:110]}"; the same catalog re-signed is accepted')


@pytest.mark.reliability(
    "security",
    "rollback: a replayed, still valid catalog whose latest is a genuinely signed older version than the one installed",
)
def test_a_partition_never_moves_backwards(school, tmp_path: Path, reliability) -> None:
    layout, dest = school
    old_catalog = tmp_path / "old-catalog.json"
    shutil.copy(_catalog_path(layout), old_catalog)  # names v1.0.0, still unexpired
    publish(layout, files_of(3, changed={0: "baru"}), SIGNER)
    [_, update] = pull(Source(str(_catalog_path(layout))), dest, SIGNER.public_key)
    assert update.installed_after == "1.0.1"
    serving = installed_release(dest, PART)
    shutil.copy(old_catalog, layout.vkp_dir / "replayed.json")  # the v1.0.0 package is still retained beside it
    with pytest.raises(PullError, match="before the newest catalog this school has verified") as stale:
        pull(Source(str(layout.vkp_dir / "replayed.json")), dest, SIGNER.public_key)  # first defence: freshness
    assert installed_release(dest, PART) == serving
    (dest / CATALOG_STATE).unlink()  # the freshness record lost: the per-partition guard still holds
    other, replay = pull(Source(str(layout.vkp_dir / "replayed.json")), dest, SIGNER.public_key)
    assert other.via == "up to date"
    assert (replay.via, replay.installed_after) == ("failed", "1.0.1"), replay
    assert "older than the installed v1.0.1" in replay.problems[0]
    assert installed_release(dest, PART) == serving
    reliability(
        f'whole catalog refused ("{str(stale.value)[-110:]}"); without the freshness record {PART.label} refused '
        f'("{replay.problems[0][:100]}"), v1.0.1 still serving; {OTHER.label} up to date'
    )


@pytest.mark.reliability(
    "security",
    "another partition's genuine package served (and catalogued, signing key stolen) as this partition's latest",
)
def test_a_package_is_bound_to_its_catalog_entry(school, reliability) -> None:
    layout, dest = school
    path = _catalog_path(layout)
    theirs = layout.vkp_dir / OTHER.vkp_name("1.0.0")
    ours_name = PART.vkp_name("1.0.1")
    shutil.copy(theirs, layout.vkp_dir / ours_name)  # under the name the entry must use

    def swap(partitions: dict) -> None:
        entry = partitions[PART.label]
        version = {
            **entry["versions"][0],
            "version": "1.0.1",
            "delta": None,
            "full": {**partitions[OTHER.label]["versions"][0]["full"], "name": ours_name},
        }
        entry["versions"].insert(0, version)
        entry["latest"] = "1.0.1"

    _resign(path, swap)
    outcomes = {o.partition: o for o in pull(Source(str(path)), dest, SIGNER.public_key)}
    refused = outcomes[PART.label]
    problems = "; ".join(refused.problems)
    assert (refused.via, refused.installed_after) == ("failed", "1.0.0"), problems
    assert "does not match its manifest" in problems or "not the package the catalog entry" in problems, problems
    # Named under the other partition's file name instead, the entry is refused before any download.
    _resign(path, lambda p: p[PART.label]["versions"][0]["full"].update(name=theirs.name))
    [_, by_name] = pull(Source(str(path)), dest, SIGNER.public_key)
    assert by_name.via == "failed" and "where 'informatika_kelas_10_v1.0.1.vkp' was expected" in by_name.problems[0]
    # This partition's own genuine v1.0.1, listed with another version's content hash: bound by the manifest.
    (layout.vkp_dir / ours_name).unlink()
    path.unlink()  # rebuilt from the genuine packages by the next publication
    publish(layout, files_of(3, changed={0: "baru"}), SIGNER)
    _resign(path, lambda p: p[PART.label]["versions"][0].update(content_hash="0" * 64, delta=None))
    [_, by_hash] = pull(Source(str(path)), dest, SIGNER.public_key)
    assert by_hash.via == "failed" and "manifest content_hash is" in by_hash.problems[0], by_hash.problems
    assert installed_version(dest, PART) == "1.0.0"
    reliability(
        f'refused, v1.0.0 still serving: "{problems[:110]}"; under the other\'s file name: '
        f'"{by_name.problems[0][:90]}"; with another content hash: "{by_hash.problems[0][-110:]}"'
    )


# --- class 2: downloads and the catalog are capped before they are written --------------------------------


@pytest.mark.reliability(
    "security",
    "mirror serving an endless body for a package (HTTP, no length), and one "
    "announcing more bytes than the catalog's size",
)
def test_an_endless_or_oversized_download_is_cut_at_the_declared_size(
    school, mirror, tmp_path: Path, reliability
) -> None:
    layout, dest = school
    base, handler = mirror
    publish(layout, files_of(3, changed={1: "baru"}), SIGNER)
    shutil.copytree(layout.vkp_dir, handler.root)
    name = PART.vkp_name("1.0.1")
    _resign(handler.root / "catalog.json", lambda p: p[PART.label]["versions"][0].update(delta=None))
    handler.endless.add(name)
    outcomes = {o.partition: o for o in pull(Source(base + "catalog.json"), dest, SIGNER.public_key, attempts=2)}
    endless = outcomes[PART.label]
    assert (endless.via, endless.installed_after) == ("failed", "1.0.0"), endless.problems
    assert "sent more than the catalog's" in endless.problems[0], endless.problems
    downloads = dest / ".downloads"
    assert not any(downloads.iterdir()), "the partial file is discarded"
    handler.endless.clear()
    handler.announce[name] = 10 * 1024**3
    [_, announced] = pull(Source(base + "catalog.json"), dest, SIGNER.public_key, attempts=2)
    assert announced.via == "failed" and "announces 10737418240 bytes" in announced.problems[0], announced.problems
    handler.announce.clear()
    [_, honest] = pull(Source(base + "catalog.json"), dest, SIGNER.public_key)
    assert honest.installed_after == "1.0.1", honest.problems
    reliability(
        f'endless body: "{endless.problems[0][:100]}", nothing left on disk; announced 10 GiB: refused '
        "before reading; the honest mirror then installs v1.0.1"
    )


@pytest.mark.reliability(
    "security", "path catalog (and a package) that is a link to /dev/zero; an endless catalog over HTTP"
)
def test_a_device_or_endless_catalog_is_refused_within_the_cap(school, mirror, tmp_path: Path, reliability) -> None:
    layout, dest = school
    base, handler = mirror
    zero_catalog = tmp_path / "zero" / "catalog.json"
    zero_catalog.parent.mkdir()
    zero_catalog.symlink_to("/dev/zero")
    with pytest.raises(PullError, match="not a regular file") as device:
        pull(Source(str(zero_catalog)), dest, SIGNER.public_key)
    linked = tmp_path / "linked"
    shutil.copytree(layout.vkp_dir, linked)
    publish(layout, files_of(3, changed={2: "baru"}), SIGNER)
    shutil.copy(_catalog_path(layout), linked / "catalog.json")
    _resign(linked / "catalog.json", lambda p: p[PART.label]["versions"][0].update(delta=None))
    (linked / PART.vkp_name("1.0.1")).symlink_to("/dev/zero")
    [_, package] = pull(Source(str(linked / "catalog.json")), dest, SIGNER.public_key)
    assert package.via == "failed" and "not a regular file" in package.problems[0], package.problems
    handler.root.mkdir()
    handler.endless.add("catalog.json")
    with pytest.raises(PullError, match="larger than 16777216 bytes"):
        pull(Source(base + "catalog.json"), dest, SIGNER.public_key)
    reliability(
        f'link to /dev/zero: "{str(device.value).split(": ", 1)[1]}" (catalog and package); endless '
        "catalog over HTTP: refused after 16 MiB"
    )


# --- class 3: verification is bounded in memory and stops at the first fatal fault ------------------------


def _bomb(path: Path, how: str) -> Path:
    """A package of PART whose chroma/ member inflates to 512 MiB of zeros (about 0.5 MB on disk).

    forged: manifest honest, signed by a stranger. lying: signed by the trusted key (a compromised
    signing host), the manifest declaring the member 10 bytes while the central directory says 512 MiB.
    """
    manifest = {
        "format_version": 2,
        "kind": "full",
        "subject": PART.subject,
        "grade": PART.grade,
        "version": "1.0.1",
        "previous_version": None,
        "embedding": {"model_id": "test-model", "dims": 8},
        "counts": {"chunks": 0},
        "sources": [],
        "content_hash": "0" * 64,
        "created_at": "2026-01-01T00:00:00",
        "members": {
            "chroma/bomb.bin": {"sha256": hashlib.sha256(b"").hexdigest(), "size": 10 if how == "lying" else BOMB_BYTES}
        },
    }
    manifest_bytes = canonical_json(manifest)
    signer = STRANGER if how == "forged" else SIGNER
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", manifest_bytes)
        archive.writestr("manifest.sig", json.dumps(signer.sign(manifest_bytes)))
        with archive.open("chroma/bomb.bin", "w", force_zip64=True) as member:
            block = b"\0" * 1024**2
            for _ in range(BOMB_BYTES // len(block)):
                member.write(block)
    return path


def _peak_rss_mb(args: list[str], cwd: Path) -> tuple[int, subprocess.CompletedProcess]:
    """Run `nexus ARGS` in a child of a small wrapper and return the child's peak RSS (MB) and result."""
    wrapper = (
        "import resource, subprocess, sys, json\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(json.dumps({'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
        "'rc': p.returncode, 'out': p.stdout, 'err': p.stderr}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-m", "nexus_assets.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=True,
    )
    got = json.loads(proc.stdout)
    return got["rss"] // 1024, subprocess.CompletedProcess(args, got["rc"], got["out"], got["err"])


@pytest.mark.reliability(
    "security",
    "`nexus vkp verify` of a 0.5 MB package inflating to 512 MiB (forged "
    "signature; trusted signature with a manifest lying about the size)",
)
@pytest.mark.parametrize("how", ["forged", "lying"])
def test_verify_of_a_compression_bomb_stays_small(how: str, tmp_path: Path, reliability) -> None:
    package = _bomb(tmp_path / PART.vkp_name("1.0.1"), how)
    key = tmp_path / "publisher.pub"
    key.write_bytes(public_pem(SIGNER.public_key))
    rss, result = _peak_rss_mb(["vkp", "verify", str(package), "--public-key", str(key)], tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    expected = {"forged": "signed by key", "lying": "the archive declares 536870912 bytes, the manifest 10"}[how]
    assert expected in result.stderr, result.stderr
    assert rss < RSS_LIMIT_MB, f"peak RSS {rss} MB"
    reliability(f'exit 1, peak RSS {rss} MB (limit {RSS_LIMIT_MB}); "{result.stderr.splitlines()[1].strip()[:100]}"')


@pytest.mark.reliability(
    "security",
    "`nexus vkp pull` over HTTP of a catalogued compression bomb (catalog "
    "signed, package signature forged) beside a good partition",
)
def test_pull_of_a_compression_bomb_stays_small_and_installs_the_rest(
    school, mirror, tmp_path: Path, reliability
) -> None:
    layout, dest = school
    base, handler = mirror
    _publish_other(layout, files_of(2, chunks_per_file=3, changed={0: "baru"}))
    shutil.copytree(layout.vkp_dir, handler.root)
    bomb = _bomb(handler.root / PART.vkp_name("1.0.1"), "forged")

    def add_bomb(partitions: dict) -> None:
        entry = partitions[PART.label]
        entry["versions"].insert(
            0,
            {
                **entry["versions"][0],
                "version": "1.0.1",
                "delta": None,
                "full": {
                    "name": bomb.name,
                    "size": bomb.stat().st_size,
                    "sha256": sha256_file(bomb),
                    "signature": None,
                },
            },
        )
        entry["latest"] = "1.0.1"

    _resign(handler.root / "catalog.json", add_bomb)
    key = tmp_path / "publisher.pub"
    key.write_bytes(public_pem(SIGNER.public_key))
    rss, result = _peak_rss_mb(
        ["vkp", "pull", "--catalog", base + "catalog.json", "--dest", str(dest), "--public-key", str(key)], tmp_path
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert rss < RSS_LIMIT_MB, f"peak RSS {rss} MB"
    assert installed_version(dest, PART) == "1.0.0" and installed_version(dest, OTHER) == "1.0.1", result.stdout
    row = next(line for line in result.stdout.splitlines() if PART.label in line)
    assert "failed" in row and "signed by key" in row, result.stdout
    reliability(
        f"exit 1, peak RSS {rss} MB (limit {RSS_LIMIT_MB}); {PART.label} failed on the signature, v1.0.0 "
        f"still serving; {OTHER.label} installed v1.0.1"
    )


# --- class 4: malformed manifests and catalogs fail one partition, named, never a traceback ---------------


def _repack(package: Path, out: Path, edit) -> Path:
    """`package` re-zipped with its manifest edited by `edit(manifest, members)` and re-signed by the trusted
    key (a compromised signing host: these must fail on their content, not on the signature)."""
    with zipfile.ZipFile(package) as original:
        members = {n: original.read(n) for n in original.namelist() if n not in ("manifest.json", "manifest.sig")}
        manifest = json.loads(original.read("manifest.json"))
    edit(manifest, members)
    manifest_bytes = canonical_json(manifest)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", manifest_bytes)
        archive.writestr("manifest.sig", json.dumps(SIGNER.sign(manifest_bytes)))
        for name, data in members.items():
            archive.writestr(name, data)
    return out


def _garbage_parquet(manifest: dict, members: dict) -> None:
    members["chunks.parquet"] = b"PAR1" + b"\x07" * 500 + b"PAR1"
    manifest["members"]["chunks.parquet"] = {
        "sha256": hashlib.sha256(members["chunks.parquet"]).hexdigest(),
        "size": len(members["chunks.parquet"]),
    }


MALFORMED = {
    "members_list": ("a members value that is a list", lambda m, _: m.update(members=list(m["members"]))),
    "dims_text": ("embedding dims as text", lambda m, _: m["embedding"].update(dims="8")),
    "member_entry": ("a member entry that is a number", lambda m, _: m["members"].update({"chunks.parquet": 5})),
    "version_int": ("a version that is a number", lambda m, _: m.update(version=101)),
    "garbage_parquet": ("garbage parquet inside a self-consistent package", _garbage_parquet),
}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            name, marks=pytest.mark.reliability("bad input", f"`nexus vkp verify` of a signed package with {text}")
        )
        for name, (text, _) in MALFORMED.items()
    ],
)
def test_a_malformed_package_is_reported_not_raised(case: str, tmp_path: Path, capsys, reliability) -> None:
    from nexus_assets.cli import main

    layout = DataLayout(tmp_path / "publisher")
    publish(layout, files_of(2), SIGNER)
    good = layout.vkp_dir / PART.vkp_name("1.0.0")
    bad = _repack(good, tmp_path / good.name, MALFORMED[case][1])
    report = verify_vkp(bad, SIGNER.public_key)
    assert not report.ok and report.problems
    key = tmp_path / "publisher.pub"
    key.write_bytes(public_pem(SIGNER.public_key))
    assert main(["vkp", "verify", str(bad), "--public-key", str(key)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"FAILED {bad}" in err
    reliability(f'exit 1, no traceback: "{report.problems[0][:110]}"')


BAD_ENTRIES = {
    "latest_missing": ("an entry whose latest is not among its versions", lambda e: e.update(latest="9.9.9")),
    "versions_text": ("an entry whose versions is a text", lambda e: e.update(versions="1.0.0")),
    "size_text": ("a package size that is a text", lambda e: e["versions"][0]["full"].update(size="big")),
    "entry_list": ("an entry that is a list", None),
}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            name,
            marks=pytest.mark.reliability(
                "bad input", f"`nexus vkp pull` of a signed catalog with {text} before a good partition"
            ),
        )
        for name, (text, _) in BAD_ENTRIES.items()
    ],
)
def test_a_bad_entry_fails_its_partition_only(case: str, school, reliability) -> None:
    layout, dest = school
    _publish_other(layout, files_of(2, chunks_per_file=3, changed={1: "baru"}))
    edit = BAD_ENTRIES[case][1]

    def damage(partitions: dict) -> None:
        if edit is None:
            partitions[PART.label] = [partitions[PART.label]]
        else:
            edit(partitions[PART.label])
        partitions["aaa/kelas_1"] = partitions[PART.label]  # sorted first: a bad entry before the good ones

    _resign(_catalog_path(layout), damage)
    outcomes = {o.partition: o for o in pull(Source(str(_catalog_path(layout))), dest, SIGNER.public_key)}
    assert outcomes[OTHER.label].installed_after == "1.0.1", "the good partition after the bad one is installed"
    bad = outcomes[PART.label]
    assert bad.via == "failed" and bad.problems[0].startswith(f"catalog entry '{PART.label}'"), bad.problems
    assert outcomes["aaa/kelas_1"].via == "failed"
    reliability(f'{PART.label} failed ("{bad.problems[0][:100]}"); {OTHER.label} after it installed v1.0.1')


# --- class 5: links under raw-curriculum/ are never followed ---------------------------------------------


@pytest.mark.reliability(
    "security",
    "symbolic links under raw-curriculum/: to a PDF outside the data directory, "
    "to a system file named .pdf, a linked grade folder",
)
def test_links_in_the_upload_folder_are_skipped_by_name(tmp_path: Path, reliability) -> None:
    from nexus_assets.lib.ingest.raw_sources import LocalRawSource
    from nexus_assets_tests.support.hardening_helpers import tiny_pdf

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.pdf").write_bytes(tiny_pdf("keamanan"))
    (outside / "grade").mkdir()
    (outside / "grade" / "buku.pdf").write_bytes(tiny_pdf("jaringan"))
    secret_text = outside / "passwd"
    secret_text.write_text("root:x:0:0:SECRET-TOKEN-4242:/root:/bin/bash\n")
    layout = DataLayout(tmp_path / "data")
    grade = layout.raw_root / "informatika" / "kelas_10"
    grade.mkdir(parents=True)
    (grade / "asli.pdf").write_bytes(tiny_pdf("algoritma"))
    (grade / "luar.pdf").symlink_to(outside / "secret.pdf")
    (grade / "passwd.pdf").symlink_to(secret_text)
    (layout.raw_root / "informatika" / "kelas_11").symlink_to(outside / "grade", target_is_directory=True)
    source = LocalRawSource(layout)
    found, refused = source.discover()
    assert found == [Partition("informatika", "kelas_10")]
    assert any("informatika/kelas_11 is a symbolic link" in r for r in refused), refused
    skipped: list[str] = []
    manifest = source.manifest(Partition("informatika", "kelas_10"), skipped)
    assert manifest["file"].tolist() == ["asli.pdf"]
    assert sorted(s.split(" is ")[0] for s in skipped) == [
        "raw-curriculum/informatika/kelas_10/luar.pdf",
        "raw-curriculum/informatika/kelas_10/passwd.pdf",
    ]
    assert [item.key for item in source.listing()] == ["raw-curriculum/informatika/kelas_10/asli.pdf"]
    linked_grade: list[str] = []
    assert source.manifest(Partition("informatika", "kelas_11"), linked_grade).empty and linked_grade
    # A careless upload of a text file named .pdf: its reason names what it is, never quotes it.
    from nexus_assets.lib.ingest.pdf_extraction import ExtractionLimits, sniff_pdf

    copied = grade / "salah.pdf"
    shutil.copy(secret_text, copied)
    status, reason = sniff_pdf(copied, ExtractionLimits.from_settings(environ={}))
    assert status == "not_pdf" and "SECRET" not in reason and "root:" not in reason, reason
    assert not any("SECRET" in s for s in [*skipped, *refused])
    reliability(
        f'only asli.pdf built; skipped: "{skipped[0][:110]}"; the linked folder refused; a text file '
        f'named .pdf: "{reason[:60]}" (content never quoted)'
    )


# --- class 6: slugs are strict and never name the platform's own folders ---------------------------------


@pytest.mark.reliability(
    "bad input", "subject/grade folders `_cache`, `catalog`, `kelas_`, `_kelas`, `a__b` under raw-curriculum/"
)
def test_slugs_are_strict_and_never_collide_with_platform_folders(tmp_path: Path, reliability) -> None:
    from nexus_assets.lib.aws.dynamo_records import OVERFLOW_PREFIX
    from nexus_assets.lib.publish.curriculum_catalog import STORED_AS

    layout = DataLayout(tmp_path / "data")
    assert {
        layout.cache_dir.name,
        layout.jobs_db.name,
        OVERFLOW_PREFIX.rsplit("/", 1)[1],
        f"{STORED_AS}.parquet",
    } <= set(PLATFORM_NAMES), "every name the platform keeps under processed/"
    for subject, grade in [
        ("_cache", "kelas_1"),
        ("catalog", "kelas_1"),
        ("ipa", "kelas_"),
        ("ipa", "_kelas"),
        ("a__b", "kelas_1"),
        ("ipa", "kelas_1"),
    ]:
        (layout.raw_root / subject / grade).mkdir(parents=True, exist_ok=True)
    found, refused = layout.discover_partitions()
    assert found == [Partition("ipa", "kelas_1")], found
    assert len(refused) == 5, refused
    for name in PLATFORM_NAMES:
        with pytest.raises(LayoutError):
            Partition(name.split(".")[0], "kelas_1")
    reliability(f'only ipa/kelas_1 found; 5 folders refused, e.g. "{refused[0][:120]}"')


# --- class 7: a deleted catalog comes back whole ----------------------------------------------------------


@pytest.mark.reliability(
    "fault", "catalog.json deleted (the advice for a corrupt one), then one partition rebuilt, or `nexus vkp catalog`"
)
def test_a_deleted_catalog_is_rebuilt_from_the_packages(school, tmp_path: Path, monkeypatch, reliability) -> None:
    from nexus_assets.cli import main

    layout, dest = school
    path = _catalog_path(layout)
    before = json.loads(path.read_text())["partitions"]
    path.unlink()
    publish(layout, files_of(3, changed={0: "baru"}), SIGNER)  # only this partition is rebuilt
    partitions = json.loads(path.read_text())["partitions"]
    assert set(partitions) == {PART.label, OTHER.label} and partitions[OTHER.label] == before[OTHER.label]
    path.unlink()
    monkeypatch.setenv("NEXUS_SIGNING_KEY", SIGNER_PEM)
    assert main(["--data-dir", str(layout.root), "vkp", "catalog"]) == 0
    outcomes = pull(Source(str(path)), dest, SIGNER.public_key)
    assert [(o.partition, o.installed_after) for o in outcomes] == [(OTHER.label, "1.0.0"), (PART.label, "1.0.1")]
    reliability(
        "after a rebuild of one partition the catalog lists both (the other's entry identical); "
        "`nexus vkp catalog` rebuilt and signed it from the packages alone and schools pull from it"
    )


# --- class 8: search refuses questions with no meaningful answer ------------------------------------------


@pytest.mark.reliability("bad input", "`nexus search` with -k -1, -k 0 and an empty or blank query")
@pytest.mark.parametrize("args", [["kata", "-k", "-1"], ["kata", "-k", "0"], [""], ["   "]])
def test_search_refuses_a_negative_k_and_an_empty_query(args: list[str], tmp_path: Path, capsys, reliability) -> None:
    from nexus_assets.cli import main
    from nexus_assets.lib.index.search import InvalidQueryError, search

    code = main(["--data-dir", str(tmp_path), "search", *args, "--subject", "informatika", "--grade", "kelas_10"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: "), (code, err)
    query, k = args[0], int(args[2]) if len(args) > 1 else 5
    with pytest.raises(InvalidQueryError):
        search(DataLayout(tmp_path), PART, query, embedder=None, k=k)  # refused before anything is opened
    reliability(f'exit 2: "{err.strip()[:90]}"')


def test_the_table_and_manifest_fixtures_are_realistic(tmp_path: Path) -> None:
    """Guard for the cases above: the untouched package verifies, so each failure is the attack's."""
    layout = DataLayout(tmp_path / "publisher")
    publish(layout, files_of(2), SIGNER)
    good = layout.vkp_dir / PART.vkp_name("1.0.0")
    assert verify_vkp(_repack(good, tmp_path / good.name, lambda m, _: None), SIGNER.public_key).ok
    assert isinstance(pd.read_parquet(io.BytesIO(zipfile.ZipFile(good).read("chunks.parquet"))), pd.DataFrame)
    assert os.path.exists("/dev/zero")
