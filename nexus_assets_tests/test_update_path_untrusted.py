"""Every parser of untrusted input on the school update path, attacked (issue 25).

Property-based (hypothesis): random and mutated catalogs, catalog entries, signature records, manifests
(through `verify_vkp` of a re-zipped package), zip member names, versions and the school's own state
files give a valid result or the project's own error (CatalogError, UntrustedError, PullError or a
failed VerifyReport), never another exception. A hostile document's peak memory is measured in a child
process under an address-space rlimit. Named attacks of the second round come after.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexus_assets.lib.distribution.untrusted import (
    UntrustedError,
    load_json,
    member_name_problem,
    member_names_problem,
    semver,
    signature_record,
)
from nexus_assets.lib.distribution.vkp_catalog import (
    CatalogError,
    check_entry,
    document,
    expiry_days,
    verify_catalog,
)
from nexus_assets.lib.distribution.vkp_pull import (
    CATALOG_STATE,
    PullError,
    Source,
    catalog_state,
    installed_release,
    pull,
    release_state,
)
from nexus_assets.lib.publish.signing import Signer, verify_signature
from nexus_assets.lib.publish.vkp import verify_vkp
from nexus_assets_tests.support import PROJECT_ROOT
from nexus_assets_tests.support.blocking import within
from nexus_assets_tests.support.vkp_helpers import PART, files_of, publish

SIGNER = Signer(Ed25519PrivateKey.generate(), "publisher key")
NEW_SIGNER = Signer(Ed25519PrivateKey.generate(), "rotated publisher key")
MAX_PACKAGE = 8 * 1024**3
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def _entry() -> dict:
    ref = {"name": PART.vkp_name("1.0.0"), "size": 10, "sha256": "a" * 64, "signature": SIGNER.sign(b"x")}
    version = {
        "version": "1.0.0",
        "content_hash": "b" * 64,
        "created_at": "2026-01-01T00:00:00+00:00",
        "embedding": {"model_id": "m", "dims": 8},
        "full": ref,
        "delta": None,
    }
    return {"subject": PART.subject, "grade": PART.grade, "latest": "1.0.0", "versions": [version]}


def _mutations(value: object) -> st.SearchStrategy:
    """`value` with one node somewhere replaced by a random JSON value (or deleted from its object)."""

    def paths(node: object, prefix: tuple = ()) -> list[tuple]:
        found = [prefix]
        if isinstance(node, dict):
            for key, child in node.items():
                found += paths(child, (*prefix, key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                found += paths(child, (*prefix, index))
        return found

    def apply(path: tuple, replacement: object, delete: bool) -> object:
        copy = json.loads(json.dumps(value))
        if not path:
            return replacement
        node = copy
        for step in path[:-1]:
            node = node[step]
        if delete and isinstance(node, dict):
            del node[path[-1]]
        else:
            node[path[-1]] = replacement
        return copy

    return st.builds(apply, st.sampled_from(paths(value)), json_values, st.booleans())


# --- property tests --------------------------------------------------------------------------------------


@pytest.mark.reliability("bad input", "random bytes and random JSON as a catalog: refused with the project's error")
@PROPERTY
@given(raw=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())))
def test_random_catalogs_are_refused_with_our_error(raw: bytes, reliability) -> None:
    with pytest.raises(CatalogError):
        verify_catalog(raw, SIGNER.public_key, "catalog.json")
    reliability("every random document refused with CatalogError naming catalog.json")


@pytest.mark.reliability(
    "bad input", "a signed catalog with one field mutated anywhere: refused or accepted, never a traceback"
)
@PROPERTY
@given(data=st.data())
def test_mutated_catalogs_give_a_result_or_our_error(data, reliability) -> None:
    doc = document({PART.label: _entry()}, SIGNER)
    mutated = data.draw(_mutations(doc))
    try:
        verify_catalog(json.dumps(mutated).encode(), SIGNER.public_key, "catalog.json")
    except CatalogError as exc:
        assert str(exc).startswith("catalog.json: ")
    reliability("each mutation accepted (only when the signature still covers it) or refused with CatalogError")


@pytest.mark.reliability(
    "bad input", "a catalog entry with one field mutated anywhere: its partition refused with our error"
)
@PROPERTY
@given(data=st.data())
def test_mutated_entries_give_a_partition_or_our_error(data, reliability) -> None:
    mutated = data.draw(_mutations(_entry()))
    try:
        assert check_entry(PART.label, mutated, MAX_PACKAGE) == PART
    except CatalogError as exc:
        assert f"catalog entry {PART.label!r}" in str(exc)
    reliability("each mutated entry gives its partition or a CatalogError naming the entry and field")


@pytest.mark.reliability("bad input", "random and mutated signature records (null, numbers, bad base64, other keys)")
@PROPERTY
@given(data=st.data())
def test_signature_records_never_raise(data, reliability) -> None:
    record = data.draw(st.one_of(json_values, _mutations(SIGNER.sign(b"data"))))
    problem = verify_signature(SIGNER.public_key, b"data", record)
    assert problem is None or isinstance(problem, str)
    if problem is None:
        assert signature_record(record, "r") == record
    reliability("verify_signature returns None or a reason for every record; nothing raises")


@pytest.mark.reliability("bad input", "random zip member names: accepted names are canonical, never alias each other")
@PROPERTY
@given(names=st.lists(st.text(alphabet="aAxX./\\_-:0 \u212a\u0130", max_size=8), max_size=6))
def test_member_names_accepted_never_alias(names: list[str], reliability) -> None:
    problem = member_names_problem(names)
    if problem is None:
        files = [n for n in names if not n.endswith("/")]
        canonical = {"/".join(p for p in n.lower().split("/") if p not in ("", ".")) for n in files}
        assert len(canonical) == len(set(files))
        assert all("\\" not in n and not n.startswith(("/", "./")) and "//" not in n for n in names)
    reliability("an accepted list never holds two names of one path (case, ./, //, \\, dots)")


@pytest.mark.reliability("bad input", "random versions: MAJOR.MINOR.PATCH in ASCII digits only")
@PROPERTY
@given(value=st.one_of(st.text(alphabet="0123456789.٣१a-+ ", max_size=14), json_values))
def test_versions_are_ascii_semver_or_refused(value, reliability) -> None:
    # Recorded on every example: a run whose examples are all refused must not leave the row empty.
    reliability("accepted versions are three ASCII numbers of at most 9 digits; the rest UntrustedError")
    try:
        got = semver(value, "f", "version")
    except UntrustedError:
        return
    major, minor, patch = got.split(".")
    assert all(part.isascii() and part.isdigit() and len(part) <= 9 for part in (major, minor, patch))


@pytest.mark.reliability("bad input", "random and mutated school state files (release.json, .catalog-state.json)")
@PROPERTY
@given(data=st.data())
def test_state_files_give_a_record_or_our_error(tmp_path_factory, data, reliability) -> None:
    root = tmp_path_factory.mktemp("state")
    release = {
        "version": "1.0.0",
        "content_hash": "c" * 64,
        "embedding": {"model_id": "m", "dims": 8},
        "installed_from": "x.vkp",
        "installed_at": "2026-01-01T00:00:00+00:00",
    }
    state = {
        "state_format": 1,
        "updated_at": "2026-01-01T00:00:00+00:00",
        "expires": "2026-02-01T00:00:00+00:00",
        "sha256": "d" * 64,
        "key_id": SIGNER.key_id,
        "verified_at": "2026-01-01T00:00:00+00:00",
    }
    raw = data.draw(st.one_of(st.binary(max_size=100), _mutations(release).map(lambda v: json.dumps(v).encode())))
    (root / "release.json").write_bytes(raw)
    try:
        assert release_state(root)["version"]
    except PullError as exc:
        assert "release.json" in str(exc)
    (root / CATALOG_STATE).write_bytes(json.dumps(data.draw(_mutations(state))).encode())
    try:
        catalog_state(root)
    except PullError as exc:
        assert CATALOG_STATE in str(exc)
    reliability("each state file gives a record or a PullError naming the file")


@pytest.mark.reliability(
    "bad input", "mutated manifest.json and manifest.sig inside a re-zipped package: a failed report"
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_manifests_give_a_report(package: Path, tmp_path: Path, data, reliability) -> None:
    with zipfile.ZipFile(package) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    which = data.draw(st.sampled_from(["manifest.json", "manifest.sig"]))
    mutated = data.draw(_mutations(json.loads(members[which])))
    if mutated != json.loads(members[which]):  # a no-op mutation keeps the signed bytes as they were
        members[which] = json.dumps(mutated).encode()
    path = tmp_path / package.name
    with zipfile.ZipFile(path, "w") as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    report = verify_vkp(path, SIGNER.public_key)
    assert report.ok == (mutated == json.loads(_original(package, which))), report.problems
    reliability("every mutation gives a failed VerifyReport naming the problem; the untouched package verifies")


def _original(package: Path, name: str) -> bytes:
    with zipfile.ZipFile(package) as archive:
        return archive.read(name)


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    from nexus_assets.lib.core.layout import DataLayout

    layout = DataLayout(tmp_path_factory.mktemp("pub"))
    publish(layout, files_of(1, chunks_per_file=2), SIGNER)
    return layout.vkp_dir / PART.vkp_name("1.0.0")


# --- the hostile document's memory, bounded ----------------------------------------------------------------

MEMORY_BOUND_MB = 200  # above the interpreter's own, for a catalog of the largest size read (16 MiB)


@pytest.mark.slow
@pytest.mark.reliability(
    "bad input", "hostile 16 MiB catalogs (850-deep lists, 5 M empty objects, 4 M strings) and one just under the bound"
)
@pytest.mark.parametrize("shape", ["deep", "objects", "strings", "at_the_bound"])
def test_a_hostile_catalog_stays_within_its_memory_bound(tmp_path: Path, shape: str, reliability) -> None:
    size = 16 * 1024**2 - 64
    body = {
        "deep": b"[" * 850 + b"]" * 850,
        "objects": b"[" + b"{}," * (size // 3 - 2) + b"{}]",
        "strings": b"[" + b'"a",' * (size // 4 - 2) + b'"a"]',
        # just under the catalog's value bound: parsed in full, then refused by the schema
        "at_the_bound": b"[" + b'{"a":0,"b":1,"c":2,"d":3,"e":4},' * 166_000 + b"{}]",
    }[shape]
    raw = b'{"catalog_format": 2, "signature": null, "partitions": {"a/b": ' + body + b"}}"
    (tmp_path / "catalog.json").write_bytes(raw)
    script = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({(MEMORY_BOUND_MB + 900) * 1024**2}, resource.RLIM_INFINITY))\n"
        "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey\n"
        "from nexus_assets.lib.distribution.vkp_catalog import CatalogError, verify_catalog\n"
        "from nexus_assets_tests.support.memory import peak_rss_mib, reset_peak_rss, status_kib\n"
        "reset_peak_rss()\n"
        "base = status_kib('VmRSS')\n"
        "raw = open(sys.argv[1], 'rb').read()\n"
        "try:\n"
        "    verify_catalog(raw, Ed25519PrivateKey.generate().public_key(), 'catalog.json')\n"
        "except CatalogError as exc:\n"
        "    print('REFUSED', exc)\n"
        "print('PEAK_MB', peak_rss_mib() - base // 1024)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "catalog.json")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,  # the child imports nexus_assets_tests.support
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "REFUSED catalog.json: " in proc.stdout, proc.stdout
    peak = int(proc.stdout.split("PEAK_MB")[1])
    assert peak < MEMORY_BOUND_MB, f"{shape}: {peak} MB above the baseline"
    reliability(f"refused ({proc.stdout.split('REFUSED ')[1].splitlines()[0][:90]}); peak {peak} MB over baseline")


# --- named attacks of the second round ---------------------------------------------------------------------


@pytest.fixture
def school(tmp_path: Path):
    from nexus_assets.lib.core.layout import DataLayout

    layout = DataLayout(tmp_path / "publisher")
    publish(layout, files_of(2), SIGNER)
    dest = tmp_path / "school"
    [first] = pull(Source(str(layout.vkp_dir / "catalog.json")), dest, SIGNER.public_key)
    assert first.installed_after == "1.0.0"
    return layout, dest


@pytest.mark.reliability("security", "a catalog whose signature is null, a number, a list or bad base64")
@pytest.mark.parametrize("signature", [None, 7, ["x"], {"algorithm": "ed25519", "key_id": "ab" * 8, "signature": 5}])
def test_a_malformed_catalog_signature_is_our_error(school, signature, reliability) -> None:
    layout, dest = school
    path = layout.vkp_dir / "catalog.json"
    doc = json.loads(path.read_text())
    doc["signature"] = signature
    path.write_text(json.dumps(doc))
    with pytest.raises(PullError, match="signature") as refused:
        pull(Source(str(path)), dest, SIGNER.public_key)
    assert "catalog.json" in str(refused.value)
    reliability(f'refused: "{str(refused.value).split(": ", 1)[1][:110]}"')


@pytest.mark.reliability("security", "a package whose manifest.sig holds a number, null or a text")
@pytest.mark.parametrize("record", [b"12", b"null", b'"abc"', b'{"algorithm": "ed25519", "signature": 3}'])
def test_a_malformed_manifest_signature_is_a_failed_report(package: Path, tmp_path: Path, record, reliability) -> None:
    path = tmp_path / package.name
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(path, "w") as out:
        for info in source.infolist():
            out.writestr(info.filename, record if info.filename == "manifest.sig" else source.read(info))
    report = verify_vkp(path, SIGNER.public_key)
    assert not report.ok and report.signature == "invalid"
    assert "manifest.sig" in report.problems[0]
    reliability(f'refused: "{report.problems[0][:110]}"')


@pytest.mark.reliability("security", "zip members that alias one path: x and ./x, a//x, X and x, a\\x, a/./x")
@pytest.mark.parametrize(
    "extra", ["./manifest.json", "chroma//x", "CHUNKS.parquet", "chroma\\x", "chroma/./x", "chroma/x/", "Manifest.json"]
)
def test_member_names_that_alias_are_refused(package: Path, tmp_path: Path, extra: str, reliability) -> None:
    path = tmp_path / package.name
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(path, "w") as out:
        for info in source.infolist():
            out.writestr(info, source.read(info))
        out.writestr(zipfile.ZipInfo(extra), b"{}")
        if extra == "chroma/x/":
            out.writestr("chroma/x", b"file and directory of one name")
    report = verify_vkp(path, SIGNER.public_key)
    assert not report.ok, f"{extra} verified"
    assert member_names_problem([i.filename for i in zipfile.ZipFile(path).infolist()]) or any(
        "unsafe" in p for p in report.problems
    )
    reliability(f'refused: "{report.problems[0][:110]}"')


def test_canonical_member_names_pass() -> None:
    assert member_name_problem("chroma/0a1b-2c/data_level0.bin") is None
    assert member_names_problem(["manifest.json", "chroma/", "chroma/a.bin"]) is None
    for bad in ("./x", "a//x", "/x", "a\\x", "..", "a/../x", "", "x\u0301", ".hidden", "a/"):
        assert member_name_problem(bad) or member_names_problem([bad, bad.rstrip("/")]), bad


@pytest.mark.reliability(
    "security", "key rotation: a catalog and packages signed by a new key, the school trusting old and new"
)
def test_a_rotated_key_is_accepted_while_both_are_trusted(tmp_path: Path, reliability) -> None:
    from nexus_assets.lib.core.layout import DataLayout
    from nexus_assets.lib.publish.signing import load_public_keys, public_pem

    layout = DataLayout(tmp_path / "publisher")
    publish(layout, files_of(2), NEW_SIGNER)
    keys_file = tmp_path / "trusted.pub"
    keys_file.write_bytes(public_pem(SIGNER.public_key) + public_pem(NEW_SIGNER.public_key))
    trusted = load_public_keys(str(keys_file))
    assert len(trusted) == 2
    with pytest.raises(PullError, match="trusted public key is"):
        pull(Source(str(layout.vkp_dir / "catalog.json")), tmp_path / "old-only", SIGNER.public_key)
    [outcome] = pull(Source(str(layout.vkp_dir / "catalog.json")), tmp_path / "school", trusted)
    assert outcome.installed_after == "1.0.0"
    reliability("refused when only the old key is trusted; installed when old and new are (one .pub file, two keys)")


@pytest.mark.reliability(
    "security", "catalog validity: NEXUS_CATALOG_EXPIRY_DAYS of millions or 1e308, and a catalog valid for 8000 years"
)
def test_validity_window_is_bounded_at_both_ends(school, reliability) -> None:
    layout, dest = school
    for huge in ("3650000", "1e308", "inf", "nan"):
        with pytest.raises(ValueError, match="NEXUS_CATALOG_EXPIRY_DAYS") as refused:
            expiry_days({"NEXUS_CATALOG_EXPIRY_DAYS": huge})
    with pytest.raises(ValueError):
        document({}, SIGNER, days=10**9)
    path = layout.vkp_dir / "catalog.json"
    doc = json.loads(path.read_text())
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    unsigned["expires"] = "9966-01-01T00:00:00+00:00"
    from nexus_assets.lib.distribution.vkp_catalog import signed_bytes

    unsigned["signature"] = SIGNER.sign(signed_bytes(unsigned))
    path.write_text(json.dumps(unsigned))
    with pytest.raises(PullError, match="not within the 365 days") as window:
        pull(Source(str(path)), dest, SIGNER.public_key)
    reliability(f'signer: "{str(refused.value)[:80]}"; school: "{str(window.value).split(": ", 1)[1][:90]}"')


@pytest.mark.reliability(
    "security", "freshness: an older, still valid, genuinely signed catalog replayed after a newer one"
)
def test_an_older_catalog_is_refused_after_a_newer_one(school, reliability) -> None:
    layout, dest = school
    path = layout.vkp_dir / "catalog.json"
    doc = json.loads(path.read_text())
    partitions = doc["partitions"]
    now = datetime.now(UTC)
    older = document(partitions, SIGNER, now=now + timedelta(minutes=1))  # both after the fixture's catalog
    newer = document(partitions, SIGNER, now=now + timedelta(minutes=2))
    path.write_text(json.dumps(newer))
    assert [o.via for o in pull(Source(str(path)), dest, SIGNER.public_key)] == ["up to date"]
    state = json.loads((dest / CATALOG_STATE).read_text())
    assert state["updated_at"] == newer["updated_at"]
    serving = installed_release(dest, PART)
    path.write_text(json.dumps(older))
    with pytest.raises(PullError, match="before the newest catalog") as refused:
        pull(Source(str(path)), dest, SIGNER.public_key)
    assert installed_release(dest, PART) == serving
    assert json.loads((dest / CATALOG_STATE).read_text())["updated_at"] == newer["updated_at"]
    reliability(f'refused: "{str(refused.value).split(": ", 1)[1][:120]}"; the record still names the newer one')


def test_bounded_json_refuses_before_building() -> None:
    with pytest.raises(UntrustedError, match="nests more than"):
        load_json(b"[" * 100 + b"]" * 100, "x", max_bytes=1000)
    with pytest.raises(UntrustedError, match="repeats a key"):
        load_json(b'{"a": 1, "a": 2}', "x", max_bytes=1000)
    with pytest.raises(UntrustedError, match="not a number JSON allows"):
        load_json(b"[NaN]", "x", max_bytes=1000)
    with pytest.raises(UntrustedError, match="out of range"):
        load_json(b"[1e999]", "x", max_bytes=1000)
    with pytest.raises(UntrustedError, match="not valid JSON"):
        load_json(b"[" + b"9" * 5000 + b"]", "x", max_bytes=10000)
    assert load_json(b'{"a": "[[[[[[[[[[[[[[[["}', "x", max_bytes=1000) == {"a": "[" * 16}


@pytest.mark.reliability(
    "bad input", "`nexus vkp catalog` with NEXUS_CATALOG_EXPIRY_DAYS=1e308 (an OverflowError before)"
)
@pytest.mark.parametrize("days", ["1e308", "99999999"])
def test_vkp_catalog_refuses_a_huge_expiry_in_words(tmp_path: Path, days: str, reliability) -> None:
    from click.testing import CliRunner

    from nexus_assets.cli import cli

    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(tmp_path / "data"), "vkp", "catalog"],
        env={"NEXUS_CATALOG_EXPIRY_DAYS": days},
        catch_exceptions=False,
    )
    assert result.exit_code == 2, result.output
    assert "NEXUS_CATALOG_EXPIRY_DAYS" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "data" / "vkp" / "catalog.json").exists()
    reliability(f'exit 2: "{result.output.strip()[:120]}"')


# --- the school's own directories and local mirrors, attacked (third round) ---------------------------------


def _pull_within(seconds: float, unblock: list[Path], *args, **kwargs):
    """`pull(*args)` that must end within `seconds` (support/blocking.py); the outcomes or the exception."""
    return within(seconds, unblock, lambda: pull(*args, **kwargs))


@pytest.mark.reliability(
    "security", "a FIFO as the catalog (path and file://), as a package of a path mirror, as the catalog record"
)
def test_fifos_are_refused_without_blocking(school, tmp_path: Path, reliability) -> None:
    import os
    import shutil

    layout, dest = school
    fifo = tmp_path / "catalog.fifo"
    os.mkfifo(fifo)
    for where in (str(fifo), f"file://{fifo}"):
        error = _pull_within(5, [fifo], Source(where), dest, SIGNER.public_key)
        assert isinstance(error, PullError) and "named pipe (FIFO)" in str(error) and str(fifo) in str(error), error
    publish(layout, files_of(2, changed={0: "baru"}), SIGNER)
    mirror = tmp_path / "mirror"
    shutil.copytree(layout.vkp_dir, mirror)
    for package in [*mirror.glob("*.vkp"), *mirror.glob("*.vkpd")]:
        package.unlink()
        os.mkfifo(package)
    [outcome] = _pull_within(
        5, list(mirror.glob("*.vkp*")), Source(str(mirror / "catalog.json")), dest, SIGNER.public_key
    )
    assert outcome.via == "failed" and "named pipe (FIFO)" in "; ".join(outcome.problems), outcome
    assert (
        installed_release(dest, PART) is not None and release_state(installed_release(dest, PART))["version"] == "1.0.0"
    )
    (dest / CATALOG_STATE).unlink()
    os.mkfifo(dest / CATALOG_STATE)
    error = _pull_within(
        5, [dest / CATALOG_STATE], Source(str(layout.vkp_dir / "catalog.json")), dest, SIGNER.public_key
    )
    assert isinstance(error, PullError) and "FIFO" in str(error) and CATALOG_STATE in str(error), error
    reliability(f'refused at once, naming the path: "{str(error)[:110]}"')


@pytest.mark.reliability("security", "a planted .pull.lock: a link to a file outside, a FIFO")
def test_a_planted_lock_file_is_refused_and_its_target_untouched(school, tmp_path: Path, reliability) -> None:
    import os

    layout, dest = school
    precious = tmp_path / "precious.txt"
    precious.write_text("do not truncate")
    lock = dest / ".pull.lock"
    lock.unlink()
    lock.symlink_to(precious)
    with pytest.raises(PullError, match="the pull lock .* is a symbolic link") as linked:
        pull(Source(str(layout.vkp_dir / "catalog.json")), dest, SIGNER.public_key)
    assert precious.read_text() == "do not truncate"
    lock.unlink()
    lock.symlink_to(tmp_path / "created-by-the-pull")
    with pytest.raises(PullError, match="symbolic link"):
        pull(Source(str(layout.vkp_dir / "catalog.json")), dest, SIGNER.public_key)
    assert not (tmp_path / "created-by-the-pull").exists(), "a dangling lock link must not create its target"
    lock.unlink()
    os.mkfifo(lock)
    error = _pull_within(5, [lock], Source(str(layout.vkp_dir / "catalog.json")), dest, SIGNER.public_key)
    assert isinstance(error, PullError) and "FIFO" in str(error), error
    lock.unlink()
    lock.write_text("left by an earlier pull")
    [outcome] = pull(Source(str(layout.vkp_dir / "catalog.json")), dest, SIGNER.public_key)
    assert outcome.via == "up to date" and lock.read_text() == "left by an earlier pull", "the lock is never truncated"
    reliability(f'refused, target untouched: "{str(linked.value)[:110]}"')


def _outside_release(tmp_path: Path, version: str) -> Path:
    """A directory outside the school's that looks like a release."""
    fake = tmp_path / "elsewhere" / f"{version}-0000"
    fake.mkdir(parents=True)
    (fake / "release.json").write_text(
        json.dumps({"version": version, "content_hash": "c" * 64, "embedding": {"model_id": "test-model", "dims": 8}})
    )
    return fake


@pytest.mark.reliability(
    "security", "planted links in the school's directory: current, releases/ and .downloads/ pointing outside"
)
def test_links_pointing_outside_the_school_dir_are_refused(school, tmp_path: Path, reliability) -> None:
    from nexus_assets.lib.distribution.vkp_pull import partition_dir

    layout, dest = school
    catalog = Source(str(layout.vkp_dir / "catalog.json"))
    root = partition_dir(dest, PART)
    serving = installed_release(dest, PART)
    fake = _outside_release(tmp_path, "9.9.9")
    current = root / "current"
    original = current.readlink()
    current.unlink()
    current.symlink_to(fake)
    with pytest.raises(PullError, match="not at a release in"):
        installed_release(dest, PART)
    publish(layout, files_of(2, changed={0: "baru"}), SIGNER)
    [outcome] = pull(catalog, dest, SIGNER.public_key)
    assert outcome.via == "failed" and "not at a release in" in "; ".join(outcome.problems), outcome
    assert "older than the installed" not in "; ".join(outcome.problems), "the planted release was never read"
    assert (fake / "release.json").is_file() and current.readlink() == fake
    current.unlink()
    current.symlink_to(original)
    # releases/ itself a link: a pull would stage, swap and prune in the directory it points at
    outside = tmp_path / "outside-releases"
    (outside / "precious").mkdir(parents=True)
    (outside / "precious" / "data.txt").write_text("keep")
    releases = root / "releases"
    releases.rename(tmp_path / "real-releases")
    releases.symlink_to(outside)
    [outcome] = pull(catalog, dest, SIGNER.public_key)
    assert outcome.via == "failed" and "symbolic link" in "; ".join(outcome.problems), outcome
    assert (outside / "precious" / "data.txt").read_text() == "keep"
    assert [p.name for p in outside.iterdir()] == ["precious"], "nothing staged or pruned behind the link"
    releases.unlink()
    (tmp_path / "real-releases").rename(releases)
    # .downloads/ a link: leftovers would be removed from the directory it points at
    keep = tmp_path / "downloads-elsewhere"
    keep.mkdir()
    (keep / "notes.txt").write_text("keep")
    (dest / ".downloads").mkdir(exist_ok=True)
    (dest / ".downloads").rmdir()
    (dest / ".downloads").symlink_to(keep)
    with pytest.raises(PullError, match="downloads directory .*symbolic link"):
        pull(catalog, dest, SIGNER.public_key)
    assert (keep / "notes.txt").read_text() == "keep"
    (dest / ".downloads").unlink()
    [outcome] = pull(catalog, dest, SIGNER.public_key)
    assert outcome.via in ("delta", "full") and installed_release(dest, PART) != serving
    reliability("current, releases/ and .downloads/ links to outside refused; nothing outside read, written or deleted")


@pytest.mark.reliability(
    "security", "a signed catalog listing informatika/kelas_10 and informatika_kelas/10 (one install directory)"
)
def test_partitions_sharing_an_install_directory_are_refused(school, tmp_path: Path, reliability) -> None:
    import shutil

    layout, dest = school
    mirror = tmp_path / "mirror"
    shutil.copytree(layout.vkp_dir, mirror)
    doc = json.loads((mirror / "catalog.json").read_text())
    twin = {**doc["partitions"][PART.label], "subject": "informatika_kelas", "grade": "10"}
    entries = {**doc["partitions"], "informatika_kelas/10": twin}
    (mirror / "catalog.json").write_text(json.dumps(document(entries, SIGNER), indent=2))
    for target in (tmp_path / "fresh", dest):
        outcomes = pull(Source(str(mirror / "catalog.json")), target, SIGNER.public_key)
        assert [o.via for o in outcomes] == ["failed", "failed"], outcomes
        assert all("would install into the same directory informatika_kelas_10/" in o.problems[0] for o in outcomes)
    assert not (tmp_path / "fresh" / "informatika_kelas_10").exists()
    assert [o.installed_after for o in outcomes] == ["1.0.0", "1.0.0"], "the row shows what still serves"
    assert release_state(installed_release(dest, PART))["version"] == "1.0.0"
    reliability(f'both refused, nothing installed: "{outcomes[0].problems[0][:110]}"')


def _replace_members(package: Path, replaced: dict[str, bytes], signer: Signer) -> None:
    """Re-sign `package` with some members' bytes replaced (a buggy or compromised builder's package)."""
    from nexus_assets.lib.publish.vkp import write_signed_archive

    with zipfile.ZipFile(package) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    members = {k: v for k, v in {**members, **replaced}.items() if k not in ("manifest.json", "manifest.sig")}
    manifest.pop("members")
    package.unlink()
    write_signed_archive(package, manifest, members, signer)


def _serve_full_only(layout, signer: Signer) -> None:
    """Point the catalog's latest version at its (re-written) full package alone, re-signed."""
    from nexus_assets.lib.core.hashing import sha256_file

    doc = json.loads((layout.vkp_dir / "catalog.json").read_text())
    version = doc["partitions"][PART.label]["versions"][0]
    full = layout.vkp_dir / version["full"]["name"]
    version["full"].update(size=full.stat().st_size, sha256=sha256_file(full))
    version["delta"] = None
    (layout.vkp_dir / "catalog.json").write_text(json.dumps(document(doc["partitions"], signer), indent=2))


@pytest.mark.reliability(
    "security", "a signed package whose Chroma database is garbage (true checksums): refused before the swap"
)
def test_a_package_whose_collection_does_not_open_is_not_installed(school, tmp_path: Path, reliability) -> None:
    import os

    layout, dest = school
    serving = installed_release(dest, PART)
    publish(layout, files_of(2, changed={0: "baru"}), SIGNER)
    newest = json.loads((layout.vkp_dir / "catalog.json").read_text())["partitions"][PART.label]["latest"]
    _replace_members(layout.vkp_dir / PART.vkp_name(newest), {"chroma/chroma.sqlite3": os.urandom(4096)}, SIGNER)
    _serve_full_only(layout, SIGNER)
    [outcome] = pull(Source(str(layout.vkp_dir / "catalog.json")), dest, SIGNER.public_key)
    assert outcome.via == "failed" and "Chroma collection does not open" in "; ".join(outcome.problems), outcome
    assert installed_release(dest, PART) == serving and outcome.installed_after == "1.0.0"
    assert not list((dest / PART.subject).parent.glob("*/releases/.staging-*")), "no staging directory left"
    reliability(f'refused, previous release serving: "{outcome.problems[-1][:110]}"')


def test_search_of_a_refused_install_is_an_error_in_words(school, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from nexus_assets.cli import cli
    from nexus_assets.lib.distribution.vkp_pull import partition_dir

    layout, dest = school
    current = partition_dir(dest, PART) / "current"
    current.unlink()
    current.symlink_to(_outside_release(tmp_path, "9.9.9"))
    args = ["search", "algoritma", "--subject", PART.subject, "--grade", PART.grade, "--installed", str(dest)]
    result = CliRunner().invoke(cli, args, env={"NEXUS_DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 1 and "cannot be searched" in result.output and "not at a release in" in result.output
    assert "Traceback" not in result.output, result.output


def _set_encrypted_flag(path: Path, name: str) -> None:
    """Set general-purpose bit 0 (encrypted) of `name` in its local and central headers (zipfile clears it)."""
    import struct

    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo(name).header_offset
    data[local + 6 : local + 8] = struct.pack("<H", struct.unpack("<H", data[local + 6 : local + 8])[0] | 1)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        length = struct.unpack("<H", data[at + 28 : at + 30])[0]
        if bytes(data[at + 46 : at + 46 + length]) == name.encode():
            data[at + 8 : at + 10] = struct.pack("<H", struct.unpack("<H", data[at + 8 : at + 10])[0] | 1)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


@pytest.mark.reliability("security", "signed packages with an encrypted-flagged member, a 300-character name component")
def test_encrypted_members_and_overlong_components_are_refused(package: Path, tmp_path: Path, reliability) -> None:
    import shutil

    encrypted = tmp_path / "encrypted" / package.name
    encrypted.parent.mkdir()
    shutil.copy(package, encrypted)
    _set_encrypted_flag(encrypted, "chunks.parquet")
    report = verify_vkp(encrypted, SIGNER.public_key)
    assert not report.ok and "encrypted members ['chunks.parquet']" in report.problems[0], report.problems
    long_name = tmp_path / "long" / package.name
    long_name.parent.mkdir()
    shutil.copy(package, long_name)
    _replace_members(long_name, {"chroma/" + "a" * 300: b"x"}, SIGNER)
    report = verify_vkp(long_name, SIGNER.public_key)
    assert not report.ok and "component longer than 255" in report.problems[0], report.problems
    assert "which copy" not in report.problems[0]
    too_long = member_names_problem(["a/" * 300])
    assert too_long is not None and "longer than 512" in too_long and "which copy" not in too_long
    reliability(f'failed reports before anything is inflated: "{report.problems[0][:100]}"')


@pytest.mark.reliability(
    "security", "a planted .part link in .downloads/; current a real directory; releases/ or .downloads/ a file"
)
def test_damaged_or_planted_school_layouts_fail_in_words_and_leave_nothing(school, tmp_path: Path, reliability) -> None:
    import shutil

    from nexus_assets.lib.distribution.vkp_pull import partition_dir

    layout, dest = school
    catalog = Source(str(layout.vkp_dir / "catalog.json"))
    root = partition_dir(dest, PART)
    publish(layout, files_of(2, changed={0: "baru"}), SIGNER)
    version = json.loads((layout.vkp_dir / "catalog.json").read_text())["partitions"][PART.label]["versions"][0]
    victim = tmp_path / "victim"
    victim.write_text("SECRET-ORIGINAL")
    (dest / ".downloads").mkdir(exist_ok=True)
    for ref in (version["delta"], version["full"]):
        (dest / ".downloads" / f"{ref['name']}.part").symlink_to(victim)
    # current a real directory (a copy made without -l, a restored backup): refused, nothing left per run
    serving = installed_release(dest, PART)
    (root / "current").unlink()
    shutil.copytree(serving, root / "current")
    before = sorted(p.name for p in (root / "releases").iterdir())
    for _ in range(2):
        [outcome] = pull(catalog, dest, SIGNER.public_key)
        assert outcome.via == "failed" and "not a symbolic link to a release" in outcome.problems[0], outcome
        assert sorted(p.name for p in (root / "releases").iterdir()) == before, "no release left per failed run"
        assert not list(root.glob(".current.*")) and (root / "current").is_dir()
    assert victim.read_text() == "SECRET-ORIGINAL" and not list((dest / ".downloads").iterdir())
    shutil.rmtree(root / "current")
    (root / "current").symlink_to(serving.relative_to(root))
    shutil.move(root / "releases", tmp_path / "kept-releases")
    (root / "releases").write_text("not a directory")
    [outcome] = pull(catalog, dest, SIGNER.public_key)
    assert outcome.via == "failed" and "releases directory is not a directory" in outcome.problems[0], outcome
    assert "Errno" not in outcome.problems[0]
    (root / "releases").unlink()
    shutil.move(tmp_path / "kept-releases", root / "releases")
    shutil.rmtree(dest / ".downloads")
    (dest / ".downloads").write_text("not a directory")
    with pytest.raises(PullError, match="downloads directory is not a directory"):
        pull(catalog, dest, SIGNER.public_key)
    (dest / ".downloads").unlink()
    [outcome] = pull(catalog, dest, SIGNER.public_key)
    assert outcome.via in ("delta", "full") and victim.read_text() == "SECRET-ORIGINAL"
    reliability(
        "each refused in words (no errno), no release or .current link left per run, the link's target untouched"
    )


@pytest.mark.reliability("crash", "--dest under a symbolic link (/srv -> /data/srv): two updates in a row")
def test_a_dest_under_a_symlink_keeps_the_serving_and_previous_release(tmp_path: Path, reliability) -> None:
    from nexus_assets.lib.core.layout import DataLayout
    from nexus_assets.lib.distribution.vkp_pull import partition_dir

    layout = DataLayout(tmp_path / "publisher")
    publish(layout, files_of(2), SIGNER)
    (tmp_path / "data").mkdir()
    (tmp_path / "srv").symlink_to(tmp_path / "data")
    dest = tmp_path / "srv" / "school"
    catalog = Source(str(layout.vkp_dir / "catalog.json"))
    pull(catalog, dest, SIGNER.public_key)
    served = []
    for change in ("baru", "lagi"):
        served.append(installed_release(dest, PART).name)
        publish(layout, files_of(2, changed={0: change}), SIGNER)
        [outcome] = pull(catalog, dest, SIGNER.public_key)
        assert outcome.via in ("delta", "full"), outcome
        release = installed_release(dest, PART)
        assert release is not None and release.is_dir(), "the serving release was pruned"
        releases = sorted(p.name for p in (partition_dir(dest, PART) / "releases").iterdir())
        assert releases == sorted([release.name, served[-1]]), f"serving and previous kept: {releases}"
    reliability("the serving release and the one before it kept after each update")


@pytest.mark.reliability(
    "security", "a catalog signed 200 days in the future (publisher clock ahead), then the honest one"
)
def test_a_future_signed_catalog_does_not_lock_out_honest_ones(school, tmp_path: Path, reliability) -> None:
    layout, dest = school
    entries = json.loads((layout.vkp_dir / "catalog.json").read_text())["partitions"]
    future = tmp_path / "future" / "catalog.json"
    future.parent.mkdir()
    for package in layout.vkp_dir.glob("*.vkp*"):
        (future.parent / package.name).symlink_to(package)
    ahead = datetime.now(UTC) + timedelta(days=200)
    future.write_text(json.dumps(document(entries, SIGNER, now=ahead), indent=2))
    [outcome] = pull(Source(str(future)), dest, SIGNER.public_key)
    assert outcome.via == "up to date", outcome
    recorded = datetime.fromisoformat(catalog_state(dest)["updated_at"])
    assert recorded <= datetime.now(UTC) + timedelta(minutes=10), "capped at the school's clock plus the skew"
    publish(layout, files_of(2, changed={0: "baru"}), SIGNER)
    later = json.loads((layout.vkp_dir / "catalog.json").read_text())["partitions"]  # the publisher's clock fixed:
    resigned = document(later, SIGNER, now=datetime.now(UTC) + timedelta(minutes=11))  # its next re-sign
    (layout.vkp_dir / "catalog.json").write_text(json.dumps(resigned, indent=2))
    [honest] = pull(Source(str(layout.vkp_dir / "catalog.json")), dest, SIGNER.public_key)
    assert honest.via in ("delta", "full"), honest
    old = tmp_path / "old" / "catalog.json"
    old.parent.mkdir()
    old.write_text(json.dumps(document(entries, SIGNER, now=datetime.now(UTC) - timedelta(days=1)), indent=2))
    with pytest.raises(PullError, match="before the newest catalog"):
        pull(Source(str(old)), dest, SIGNER.public_key)
    reliability(
        "recorded no later than the school's clock + 10 min: honest catalogs install after that; replays refused"
    )


@pytest.mark.reliability("crash", "the disk fills up while the catalog record or a download is written")
def test_a_full_disk_is_an_error_in_words(school, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reliability) -> None:
    import errno

    from click.testing import CliRunner

    from nexus_assets.cli import cli
    from nexus_assets.lib.publish.signing import public_pem

    layout, dest = school
    publish(layout, files_of(2, changed={0: "baru"}), SIGNER)
    before = (dest / CATALOG_STATE).read_text()
    real_write = Path.write_text

    def full(self: Path, *args, **kwargs):
        if self.name.startswith(CATALOG_STATE):
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    key = tmp_path / "publisher.pub"
    key.write_bytes(public_pem(SIGNER.public_key))
    args = ["vkp", "pull", "--catalog", str(layout.vkp_dir / "catalog.json"), "--dest", str(dest), "--public-key"]
    result = CliRunner().invoke(cli, [*args, str(key)], catch_exceptions=False)
    assert result.exit_code == 1 and "the disk is full" in result.output and CATALOG_STATE in result.output
    assert "Traceback" not in result.output and (dest / CATALOG_STATE).read_text() == before
    assert not list(dest.glob(f"{CATALOG_STATE}.*.tmp"))
    reliability(f'exit 1, the record before intact: "{result.output.strip()[-100:]}"')


def test_a_failed_entry_still_reports_the_serving_version(school, tmp_path: Path) -> None:
    layout, dest = school
    doc = json.loads((layout.vkp_dir / "catalog.json").read_text())
    doc["partitions"][PART.label]["versions"][0]["content_hash"] = "NOT-HEX"
    bad = tmp_path / "bad" / "catalog.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps(document(doc["partitions"], SIGNER), indent=2))
    [outcome] = pull(Source(str(bad)), dest, SIGNER.public_key)
    assert outcome.via == "failed" and "content_hash" in outcome.problems[0], outcome
    assert (outcome.installed_before, outcome.installed_after) == ("1.0.0", "1.0.0"), "what still serves"


@pytest.mark.reliability(
    "security",
    "a signed catalog with malformed partition keys (escapes, full-width digits, a newline) beside good ones",
)
def test_a_malformed_partition_key_fails_that_partition_only(school, tmp_path: Path, reliability) -> None:
    layout, dest = school
    publish(layout, files_of(2, changed={0: "baru"}), SIGNER)
    doc = json.loads((layout.vkp_dir / "catalog.json").read_text())
    good = doc["partitions"][PART.label]
    odd = ["bio\x1b[2J\x1b]0;X\x07logi/kelas_10", "informatika/kelas_\uff11\uff10", "informatika/kelas_10\n"]
    entries = {**doc["partitions"], **{key: good for key in odd}}
    (layout.vkp_dir / "catalog.json").write_text(json.dumps(document(entries, SIGNER), indent=2))
    outcomes = {o.partition: o for o in pull(Source(str(layout.vkp_dir / "catalog.json")), dest, SIGNER.public_key)}
    assert outcomes[PART.label].via in ("delta", "full"), outcomes[PART.label]
    failed = [o for label, o in outcomes.items() if label != PART.label]
    assert len(failed) == 3 and all(o.via == "failed" and "SUBJECT/GRADE" in o.problems[0] for o in failed), failed
    assert not any("\x1b" in o.partition or "\x1b" in o.problems[0] for o in failed), "shown escaped"
    reliability(f'the good partition installs; each bad key fails alone: "{failed[0].problems[0][:100]}"')
