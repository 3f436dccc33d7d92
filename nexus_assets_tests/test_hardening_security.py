"""Security of aws mode and of the school-side pull (issue 10): encryption, the bucket policy, secrets, packages.

- Every object an aws-mode build writes is encrypted (head of every object version).
- `nexus aws bootstrap` sets a bucket policy denying unencrypted puts and plain HTTP; read back from moto.
- No planted secret (AWS keys, the signing key, the Chroma token, the Postgres password) reaches the
  Dagster instance, the builds' output, the job records, the bucket, the tables or the packages, over a
  successful build and two failing ones (a bad signing key, an S3 outage), so exceptions are included.
- `nexus vkp pull` refuses unsigned, tampered and path-escaping packages and keeps the installed release.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import os
import shutil
import stat
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.lib.aws.aws_bootstrap import bootstrap
from nexus_assets.lib.aws.aws_config import AwsSettings
from nexus_assets.lib.core.layout import DataLayout
from nexus_assets.lib.distribution.vkp_pull import Source, installed_release, pull
from nexus_assets.lib.publish.signing import Signer, private_pem
from nexus_assets.lib.publish.vkp import read_signature
from nexus_assets_tests.support.hardening_helpers import build, faultable_aws, last_job, upload_pdf
from nexus_assets_tests.support.vkp_helpers import PART, files_of, publish

# --- the bucket policy ---------------------------------------------------------------------------------------


@pytest.mark.reliability("security", "bucket policy from `nexus aws bootstrap`: deny unencrypted puts and plain HTTP")
def test_bootstrap_sets_a_policy_denying_unencrypted_puts_and_plain_http(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, reliability
) -> None:
    monkeypatch.setenv("NEXUS_S3_BUCKET_POLICY", "on")
    settings = AwsSettings.from_env(os.environ)
    s3 = settings.client("s3")
    s3.create_bucket(Bucket=settings.bucket)
    foreign = {
        "Sid": "AllowAuditorRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:GetBucketLocation",
        "Resource": f"arn:aws:s3:::{settings.bucket}",
    }
    s3.put_bucket_policy(Bucket=settings.bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [foreign]}))
    first = bootstrap(settings)
    again = bootstrap(settings)
    policy_key = next(k for k in first if " policy " in k)
    assert (first[policy_key], again[policy_key]) == ("set", "exists"), (first, again)
    policy = json.loads(s3.get_bucket_policy(Bucket=settings.bucket)["Policy"])
    statements = {st["Sid"]: st for st in policy["Statement"]}
    objects, whole = f"arn:aws:s3:::{settings.bucket}/*", f"arn:aws:s3:::{settings.bucket}"
    wrong = statements["DenyIncorrectEncryptionHeader"]
    assert (wrong["Effect"], wrong["Principal"], wrong["Action"], wrong["Resource"]) == (
        "Deny",
        "*",
        "s3:PutObject",
        objects,
    )
    assert wrong["Condition"] == {"StringNotEquals": {"s3:x-amz-server-side-encryption": ["AES256", "aws:kms"]}}
    absent = statements["DenyUnencryptedObjectUploads"]
    assert (absent["Effect"], absent["Action"], absent["Resource"]) == ("Deny", "s3:PutObject", objects)
    assert absent["Condition"] == {"Null": {"s3:x-amz-server-side-encryption": "true"}}
    tls = statements["DenyInsecureTransport"]
    assert (tls["Effect"], tls["Principal"], tls["Action"]) == ("Deny", "*", "s3:*")
    assert sorted(tls["Resource"]) == sorted([whole, objects])
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statements["AllowAuditorRead"] == foreign, "the bucket's other statements are kept"
    # moto applies a bucket policy's Deny statements to object requests: an unencrypted put is refused.
    raw = boto3.client("s3", region_name=settings.region, endpoint_url=settings.endpoint_url)
    with pytest.raises(ClientError) as refused:
        raw.put_object(Bucket=settings.bucket, Key="plain.txt", Body=b"no encryption header")
    status = refused.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert status == 403
    try:
        raw.put_object(Bucket=settings.bucket, Key="sealed.txt", Body=b"x", ServerSideEncryption="AES256")
        encrypted = "accepted"
    except ClientError as exc:
        encrypted = f"refused too ({exc.response['ResponseMetadata']['HTTPStatusCode']})"
    reliability(
        f"policy read back from moto: DenyIncorrectEncryptionHeader (StringNotEquals "
        f"s3:x-amz-server-side-encryption AES256/aws:kms), DenyUnencryptedObjectUploads (Null), "
        f"DenyInsecureTransport (aws:SecureTransport false, bucket and objects); another statement kept; "
        f"second bootstrap: {again[policy_key]}; an unencrypted put was refused ({status}); an AES256 put "
        f"was {encrypted} (moto applies Deny statements without evaluating their conditions, so builds "
        "against moto run with NEXUS_S3_BUCKET_POLICY=off)"
    )


# --- one aws-mode build (and two failing ones) with planted secrets ------------------------------------------


@dataclass
class SecureBuild:
    settings: AwsSettings  # straight at moto
    dagster_home: Path
    data_dir: Path
    outputs: dict[str, str]  # what each command printed (stdout + stderr)
    secrets: dict[str, bytes]  # label -> a byte string that must never appear anywhere
    signing_key_id: str
    failed_reasons: dict[str, list[str]]


def _planted_secrets(key: Ed25519PrivateKey, plain: dict[str, str]) -> dict[str, bytes]:
    """Every form a secret could leak in: raw, hex and base64 (the three alignments), PEM body lines, raw key."""
    found: dict[str, bytes] = {}

    def add(label: str, value: bytes) -> None:
        found[label] = value
        found[f"{label} (hex)"] = binascii.hexlify(value)
        for shift in range(3):  # base64 of the value at any offset inside a longer base64 text
            encoded = base64.b64encode(b"\0" * shift + value)
            found[f"{label} (base64, offset {shift})"] = encoded[(0, 2, 3)[shift] : -4]

    for name, value in plain.items():
        add(name, value.encode())
    pem = private_pem(key)
    body = b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))
    found["signing key PEM body"] = body
    for number, line in enumerate(pem.splitlines()[1:-1]):
        found[f"signing key PEM line {number}"] = line
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    add("signing key DER", der)
    add(
        "signing key raw",
        key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()),
    )
    return found


@pytest.fixture(scope="module")
def secure_build(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBuild]:
    tmp = tmp_path_factory.mktemp("secure")
    marker = uuid.uuid4().hex
    plain = {
        "AWS_SECRET_ACCESS_KEY": f"PlantedSecretAccessKey/{marker}+Zz",
        "AWS_ACCESS_KEY_ID": f"AKIAPLANTED{marker[:9].upper()}",
        "NEXUS_CHROMA_TOKEN": f"planted-chroma-token-{marker}",
        "DAGSTER_PG_PASSWORD": f"planted-pg-password-{marker}",
        "NEXUS_SIGNING_KEY (bad PEM of the failing run)": f"planted-bad-signing-key-{marker}",
    }
    key = Ed25519PrivateKey.generate()
    key_file = tmp / "secrets" / "nexus-signing.key"
    key_file.parent.mkdir()
    key_file.write_bytes(private_pem(key))
    key_file.chmod(0o600)
    outputs: dict[str, str] = {}
    reasons: dict[str, list[str]] = {}
    credentials = {name: plain[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    with faultable_aws(
        moto_endpoint,
        tmp / "dagster_home",
        credentials,
        NEXUS_SIGNING_KEY_FILE=str(key_file),
        NEXUS_CHROMA_TOKEN=plain["NEXUS_CHROMA_TOKEN"],
        DAGSTER_PG_PASSWORD=plain["DAGSTER_PG_PASSWORD"],
    ) as (proxy, settings, env):
        data_dir = tmp / "node"
        ok = build(env, data_dir)
        outputs["successful build"] = ok.stdout + ok.stderr
        assert last_job(settings).status == "completed"
        # A failing run: the signing key handed over as PEM text, and not a valid one.
        bad_pem = (
            "-----BEGIN PRIVATE KEY-----\n"
            + base64.b64encode(plain["NEXUS_SIGNING_KEY (bad PEM of the failing run)"].encode()).decode()
            + "\n-----END PRIVATE KEY-----\n"
        )
        bad_env = {k: v for k, v in env.items() if k != "NEXUS_SIGNING_KEY_FILE"} | {"NEXUS_SIGNING_KEY": bad_pem}
        bad_key = build(bad_env, data_dir, check=False)
        outputs["failing build (bad signing key)"] = bad_key.stdout + bad_key.stderr
        assert bad_key.returncode == 1 and last_job(settings).status == "failed"
        reasons["bad signing key"] = last_job(settings).errors
        # Another: S3 refuses every upload (botocore's errors travel through Dagster into the job record).
        upload_pdf(settings, "jaringan")
        proxy.inject("s3", "slowdown", match=lambda r: r.method == "PUT")
        outage = build(env, data_dir, check=False)
        proxy.clear()
        outputs["failing build (S3 outage)"] = outage.stdout + outage.stderr
        assert outage.returncode == 1 and last_job(settings).status == "failed"
        reasons["S3 outage"] = last_job(settings).errors
        yield SecureBuild(
            settings,
            tmp / "dagster_home",
            data_dir,
            outputs,
            _planted_secrets(key, plain),
            Signer(key, "planted").key_id,
            reasons,
        )


@pytest.mark.reliability("security", "every object an aws-mode build writes is encrypted at rest")
def test_every_object_version_in_the_bucket_is_encrypted(secure_build: SecureBuild, reliability) -> None:
    settings = secure_build.settings
    s3 = settings.client("s3")
    versions = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=settings.bucket):
        versions += page.get("Versions", [])
    keys = {v["Key"] for v in versions}
    for kind in (
        "raw-curriculum/",
        "processed/uji/kelas_1/text_chunks.parquet",
        "processed/uji/kelas_1/chroma/builds/",
        "processed/_cache/blobs/",
        "processed/_cache/vectors/",
        "vkp/uji_kelas_1_v1.0.0.vkp",
        "vkp/catalog.json",
        "processed/catalog.parquet",
    ):
        assert any(k.startswith(kind) for k in keys), f"no {kind} among {sorted(keys)}"
    unencrypted = []
    algorithms = set()
    for version in versions:
        head = s3.head_object(Bucket=settings.bucket, Key=version["Key"], VersionId=version["VersionId"])
        algorithm = head.get("ServerSideEncryption")
        algorithms.add(algorithm)
        if algorithm not in ("AES256", "aws:kms"):
            unencrypted.append(version["Key"])
    assert not unencrypted, f"objects without server-side encryption: {unencrypted}"
    prefixes = sorted({v["Key"].split("/")[0] + "/" + v["Key"].split("/")[1] for v in versions if "/" in v["Key"]})
    reliability(
        f"{len(versions)} object versions headed after one successful and two failed builds: all "
        f"ServerSideEncryption={'/'.join(sorted(algorithms))} (under {', '.join(prefixes)})"
    )


def _expand(name: str, data: bytes, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """`data` and everything packed in it: zip members, tar and gzip contents, parquet values."""
    yield name, data
    if depth > 4:
        return
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield from _expand(f"{name}!{member}", archive.read(member), depth + 1)
    elif data[:2] == b"\x1f\x8b":
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                for member in archive.getmembers():
                    if member.isfile():
                        yield from _expand(f"{name}!{member.name}", archive.extractfile(member).read(), depth + 1)
        except tarfile.ReadError:
            yield from _expand(f"{name}!gunzip", gzip.decompress(data), depth + 1)
    elif data[:4] == b"PAR1":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        text = json.dumps({"metadata": meta, "rows": table.to_pylist()}, default=repr, ensure_ascii=False)
        yield f"{name}!rows", text.encode()


def _leaks(secrets: dict[str, bytes], where: str, data: bytes) -> list[str]:
    return [f"{label} in {where}" for label, value in secrets.items() if value and value in data]


def _instance_texts(dagster_home: Path) -> Iterator[tuple[str, bytes]]:
    """Every run of the instance (config, tags) and every event of each (logs, metadata, failures), serialized."""
    import dagster as dg
    from dagster._serdes import serialize_value

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        for run in runs:
            yield f"run {run.run_id[:8]} (config, tags)", serialize_value(run).encode()
            for entry in instance.all_logs(run.run_id):
                yield f"event of run {run.run_id[:8]}", serialize_value(entry).encode()
    assert runs, "the instance holds the builds' runs"


@pytest.mark.reliability(
    "security",
    "planted secrets (AWS keys, signing key, Chroma token, Postgres password) "
    "never reach logs, run metadata, exceptions, records, objects or the VKP",
)
def test_no_planted_secret_appears_anywhere_the_builds_wrote(secure_build: SecureBuild, reliability) -> None:
    secrets, settings = secure_build.secrets, secure_build.settings
    # The scan can see them: the key file itself, and a secret packed in a zip, a tar.gz and a parquet, are found.
    key_file = next(p for p in (secure_build.dagster_home.parent / "secrets").iterdir())
    assert _leaks(secrets, "key file", key_file.read_bytes()), "the scanner finds the planted key in its own file"
    probe = _packed_probe(secrets["AWS_SECRET_ACCESS_KEY"])
    assert {w for name, data in _expand("probe.zip", probe) for w in _leaks(secrets, name, data)} >= {
        "AWS_SECRET_ACCESS_KEY in probe.zip!inner.tar.gz!table.parquet!rows"
    }
    leaks: list[str] = []
    scanned: dict[str, int] = {}

    def scan(kind: str, name: str, data: bytes) -> None:
        for where, blob in _expand(name, data):
            scanned[kind] = scanned.get(kind, 0) + 1
            leaks.extend(_leaks(secrets, f"{kind}: {where}", blob))

    for label, text in secure_build.outputs.items():
        scan("command output", label, text.encode())
    for reason, errors in secure_build.failed_reasons.items():
        scan("recorded errors", reason, json.dumps(errors).encode())
    for name, data in _instance_texts(secure_build.dagster_home):
        scan("Dagster instance events and runs", name, data)
    for path in sorted(secure_build.dagster_home.rglob("*")):
        if path.is_file():
            scan("Dagster instance files", str(path.relative_to(secure_build.dagster_home)), path.read_bytes())
    dynamodb = settings.client("dynamodb")
    for table in (settings.records_table, settings.jobs_table):
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page.get("Items", []):
                scan(f"DynamoDB {table.split('-')[0]}", json.dumps(item)[:60], json.dumps(item).encode())
    s3 = settings.client("s3")
    packages = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=settings.bucket):
        for version in page.get("Versions", []):
            got = s3.get_object(Bucket=settings.bucket, Key=version["Key"], VersionId=version["VersionId"])
            body = got["Body"].read()
            scan("S3 object", version["Key"], body)
            scan("S3 object metadata", version["Key"], json.dumps(got.get("Metadata", {})).encode())
            if version["Key"].endswith(".vkp"):
                packages += 1
                signature = read_signature(_write(secure_build.data_dir.parent / "fetched.vkp", body))
                assert signature and signature["key_id"] == secure_build.signing_key_id, "signed with the planted key"
    for path in sorted(secure_build.data_dir.rglob("*")):
        if path.is_file() and not path.is_symlink():
            scan("the build's local data dir", str(path.relative_to(secure_build.data_dir)), path.read_bytes())
    assert packages >= 1 and scanned.get("Dagster instance events and runs", 0) > 50
    assert any("S3 outage" in e for e in secure_build.failed_reasons["S3 outage"])
    assert any(
        "$NEXUS_SIGNING_KEY: not an unencrypted PEM private key" in e
        for e in secure_build.failed_reasons["bad signing key"]
    ), secure_build.failed_reasons
    assert not leaks, f"planted secrets found: {leaks[:10]}"
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(scanned.items()))
    reliability(
        f"{len(secrets)} forms of 6 planted secrets (raw, hex, base64 at 3 offsets; the key's PEM lines, DER, "
        f"raw bytes) searched over 1 successful and 2 failed builds (bad signing key: "
        f'"{secure_build.failed_reasons["bad signing key"][0][:70]}…"; S3 outage); 0 found in: {kinds} '
        f"(archives, gzip and parquet unpacked; {packages} VKP unzipped, signed by the planted key); "
        "the scanner does find them in the key file and in a packed probe"
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _packed_probe(secret: bytes) -> bytes:
    """A secret inside a parquet, inside a tar.gz, inside a zip: what the scan must still find."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"text": [b"before " + secret + b" after"]}), sink, compression="zstd")
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:gz") as archive:
        info = tarfile.TarInfo("table.parquet")
        info.size = len(sink.getvalue())
        archive.addfile(info, io.BytesIO(sink.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner.tar.gz", tar_bytes.getvalue())
    return out.getvalue()


# --- the school side: `nexus vkp pull` refuses what it cannot trust ------------------------------------------

SIGNER = Signer(Ed25519PrivateKey.generate(), "publisher key")


@pytest.fixture
def school(tmp_path: Path) -> tuple[DataLayout, Path, Path]:
    """A publisher with v1.0.0 installed on a school server, and v1.0.1 published since."""
    layout = DataLayout(tmp_path / "publisher")
    publish(layout, files_of(4), SIGNER)
    dest = tmp_path / "school"
    [first] = pull(Source(str(layout.vkp_dir / "catalog.json")), dest, SIGNER.public_key)
    assert first.installed_after == "1.0.0"
    publish(layout, files_of(4, changed={1: "diubah"}), SIGNER)
    return layout, dest, installed_release(dest, PART)


ATTACKS = {
    "unsigned": "an unsigned package (manifest.sig removed)",
    "tampered": "a package with one byte of chunks.parquet changed",
    "foreign": "a package signed by another key",
    "escaping": "a package signed by the trusted key holding a member ../../escaped.txt, listed in its manifest",
    "link": "a package signed by the trusted key whose chroma/ holds a symlink to /etc/passwd",
}


def _tampered_copy(package: Path, out: Path, attack: str) -> Path:
    """`package` as an attacker (or a compromised signing host, for the last two) would serve it."""
    import hashlib

    from nexus_assets.lib.publish.signing import canonical_json

    with zipfile.ZipFile(package) as original:
        members = {info.filename: (info, original.read(info.filename)) for info in original.infolist()}
    manifest_bytes = members.pop("manifest.json")[1]
    signature: bytes | None = members.pop("manifest.sig")[1]
    if attack == "unsigned":
        signature = None
    elif attack == "tampered":
        info, data = members["chunks.parquet"]
        members["chunks.parquet"] = (info, data[:-9] + bytes([data[-9] ^ 1]) + data[-8:])
    elif attack == "foreign":
        signature = json.dumps(Signer(Ed25519PrivateKey.generate(), "stranger").sign(manifest_bytes)).encode()
    else:
        if attack == "escaping":
            extra, data = zipfile.ZipInfo("../../escaped.txt"), b"written outside the release"
        else:
            extra, data = zipfile.ZipInfo("chroma/passwd"), b"/etc/passwd"
            extra.external_attr = (stat.S_IFLNK | 0o777) << 16
        manifest = json.loads(manifest_bytes)
        manifest["members"][extra.filename] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        manifest_bytes = canonical_json(manifest)
        signature = json.dumps(SIGNER.sign(manifest_bytes), sort_keys=True).encode()
        members[extra.filename] = (extra, data)
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("manifest.json", manifest_bytes)
        if signature is not None:
            archive.writestr("manifest.sig", signature)
        for info, data in members.values():
            archive.writestr(info, data)
    return out


def _mirror_with(layout: DataLayout, mirror: Path, attack: str | None, name: str | None = None) -> str:
    """A compromised mirror: the catalog and packages copied, v1.0.1's full package replaced by its
    tampered copy (the catalog's size and sha256 made to match, the delta dropped so the full package is
    what gets installed), or its name changed. The edited catalog is re-signed with the publisher's key
    (as if that were stolen too), so these cases test the package checks behind the catalog's signature.
    Returns the mirror's catalog path."""
    from nexus_assets.lib.core.hashing import sha256_file
    from nexus_assets.lib.distribution.vkp_catalog import document

    shutil.copytree(layout.vkp_dir, mirror)
    catalog = json.loads((mirror / "catalog.json").read_text())
    latest = catalog["partitions"][PART.label]["versions"][0]
    target = mirror / latest["full"]["name"]
    if attack is not None:
        os.replace(_tampered_copy(target, mirror / "tampered.tmp", attack), target)
    latest["full"].update(size=target.stat().st_size, sha256=sha256_file(target))
    if name is not None:
        latest["full"]["name"] = name
    latest["delta"] = None
    (mirror / "catalog.json").write_text(json.dumps(document(catalog["partitions"], SIGNER)))
    return str(mirror / "catalog.json")


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(name, marks=pytest.mark.reliability("security", f"`nexus vkp pull` of {text}"))
        for name, text in ATTACKS.items()
    ],
)
def test_pull_refuses_an_untrustworthy_package_and_keeps_the_installed_release(
    attack: str, school, tmp_path: Path, reliability
) -> None:
    layout, dest, before = school
    catalog = _mirror_with(layout, tmp_path / "mirror", attack)
    [outcome] = pull(Source(catalog), dest, SIGNER.public_key)
    problems = "; ".join(outcome.problems)
    assert outcome.via == "failed" and outcome.installed_after == "1.0.0", (outcome.via, problems)
    assert installed_release(dest, PART) == before, "the installed release keeps serving"
    expected = {
        "unsigned": "unsigned package",
        "tampered": "chunks.parquet: sha256 mismatch",
        "foreign": "signed by key",
        "escaping": "unsafe member path",
        "link": "unsafe member path",
    }[attack]
    assert expected in problems, problems
    assert not list(tmp_path.rglob("escaped.txt")), "nothing was written outside the release"
    releases = dest / f"{PART.subject}_{PART.grade}" / "releases"
    assert [p.name.split("-")[0] for p in releases.iterdir()] == ["1.0.0"], "no half-installed release left"
    assert not list(releases.rglob("passwd"))
    reliability(
        f"pull outcome {outcome.via!r}, installed version still {outcome.installed_after}, the same release "
        f'serving, nothing written outside it; reason: "{problems.replace(str(dest), "<dest>")[:150]}"'
    )


@pytest.mark.reliability(
    "security", "`nexus vkp pull` of a catalog naming a package file outside the download directory (../)"
)
def test_pull_refuses_a_catalog_naming_an_unsafe_file(school, tmp_path: Path, reliability) -> None:
    layout, dest, before = school
    catalog = _mirror_with(layout, tmp_path / "mirror", None, name="../../outside.vkp")
    [outcome] = pull(Source(catalog), dest, SIGNER.public_key)
    problems = "; ".join(outcome.problems)
    assert outcome.via == "failed" and "names package file '../../outside.vkp'" in problems, problems
    assert installed_release(dest, PART) == before and not list(tmp_path.rglob("outside.vkp"))
    reliability(f'pull outcome {outcome.via!r}, v{outcome.installed_after} still serving; reason: "{problems}"')
