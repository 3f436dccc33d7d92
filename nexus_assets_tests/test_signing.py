import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.lib.publish.signing import (
    Signer,
    SigningError,
    dev_key_paths,
    generate_keypair,
    key_id,
    load_public_key,
    private_pem,
    resolve_signer,
    trusted_public_key,
    verify_signature,
)
from nexus_assets.settings import Settings
from nexus_assets_tests.support.blocking import within


def test_a_signature_verifies_only_with_its_key_and_its_bytes() -> None:
    signer = Signer(Ed25519PrivateKey.generate(), "test")
    record = signer.sign(b"manifest bytes")
    assert record["algorithm"] == "ed25519" and record["key_id"] == signer.key_id
    assert verify_signature(signer.public_key, b"manifest bytes", record) is None
    assert "does not match" in verify_signature(signer.public_key, b"manifest bytez", record)
    other = Ed25519PrivateKey.generate().public_key()
    assert "trusted public key is" in verify_signature(other, b"manifest bytes", record)
    assert "malformed" in verify_signature(signer.public_key, b"manifest bytes", {"signature": "x"})


def test_generated_keys_are_private_and_never_overwritten(tmp_path: Path) -> None:
    private, public, kid = generate_keypair(tmp_path)
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert key_id(load_public_key(public)) == kid
    with pytest.raises(SigningError, match="already exists"):
        generate_keypair(tmp_path)


def _signer(data_root: Path, environ: dict[str, str], secret_reader=None):
    """The signer the settings of `environ` configure (as the storage of either mode resolves it)."""
    s = Settings.from_env(environ)
    return resolve_signer(
        data_root,
        key_file=s.signing_key_file,
        key_pem=s.signing_key,
        secret_id=s.signing_key_secret_id,
        secret_reader=secret_reader,
    )


def test_the_key_comes_from_configuration_in_order_and_never_shows(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = private_pem(key).decode()
    key_file = tmp_path / "k.pem"
    key_file.write_text(pem)
    from_file = _signer(tmp_path, {"NEXUS_SIGNING_KEY_FILE": str(key_file), "NEXUS_SIGNING_KEY": "x"})
    assert from_file.key_id == key_id(key.public_key()) and not from_file.development
    assert "PRIVATE" not in repr(from_file) and pem not in repr(from_file)
    from_env = _signer(tmp_path, {"NEXUS_SIGNING_KEY": pem})
    assert from_env.origin == "$NEXUS_SIGNING_KEY"
    from_secret = _signer(
        tmp_path,
        {"NEXUS_SIGNING_KEY_SECRET_ID": "nexus/signing"},
        secret_reader=lambda sid: pem if sid == "nexus/signing" else "",
    )
    assert from_secret.key_id == key_id(key.public_key())
    with pytest.raises(SigningError, match=r"\$NEXUS_SIGNING_KEY: not an unencrypted PEM") as err:
        _signer(tmp_path, {"NEXUS_SIGNING_KEY": "garbage"})
    assert "garbage" not in str(err.value)
    dev = _signer(tmp_path, {})
    assert dev.development and "DEVELOPMENT" in dev.origin
    assert _signer(tmp_path, {}).key_id == dev.key_id, "the development key is generated once"
    trusted, origin = trusted_public_key(None, tmp_path)
    assert [key_id(k) for k in trusted] == [dev.key_id] and origin.startswith("DEVELOPMENT")
    assert dev_key_paths(tmp_path)[0].parent == tmp_path / "keys"


@pytest.mark.slow
def test_the_key_can_come_from_secrets_manager(aws_env: dict, tmp_path: Path) -> None:
    from nexus_assets.lib.aws.aws_config import AwsSettings
    from nexus_assets.lib.publish.signing import secrets_manager_reader

    key = Ed25519PrivateKey.generate()
    client = AwsSettings.from_env(os.environ).client("secretsmanager")
    client.create_secret(Name="nexus/vkp-signing", SecretString=private_pem(key).decode())
    signer = _signer(
        tmp_path,
        {"NEXUS_SIGNING_KEY_SECRET_ID": "nexus/vkp-signing"},
        secret_reader=secrets_manager_reader(client),
    )
    assert signer.key_id == key_id(key.public_key()) and "Secrets Manager" in signer.origin


@pytest.mark.reliability(
    "bad input", "a FIFO or an oversized file as NEXUS_SIGNING_KEY_FILE, --public-key or NEXUS_VKP_PUBLIC_KEY"
)
def test_key_files_must_be_small_regular_files(tmp_path: Path, reliability) -> None:
    from nexus_assets.lib.publish.signing import load_public_keys

    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.pem"
    big.write_bytes(b"-" * (1 << 20))
    for read in (
        lambda path: resolve_signer(tmp_path, key_file=str(path)),
        lambda path: load_public_keys(str(path)),
        lambda path: load_public_key(path),
        lambda path: trusted_public_key(str(path), None),
    ):
        error = within(5, [fifo], lambda read=read: read(fifo))
        assert isinstance(error, SigningError) and "FIFO" in str(error) and str(fifo) in str(error), error
        with pytest.raises(SigningError, match="1,048,576 bytes, over the"):
            read(big)
    reliability(f'refused before reading, naming the file: "{str(error)[:100]}"')


def test_untrusted_hex_and_lengths_are_whole_ascii_strings() -> None:
    """Reviewer's check: a trailing newline or Unicode digits never pass a field check."""
    from nexus_assets.lib.distribution.untrusted import UntrustedError, sha256_hex
    from nexus_assets.lib.distribution.vkp_pull import PullError, _refuse_longer

    with pytest.raises(UntrustedError):
        sha256_hex("a" * 64 + "\n", "catalog", "sha256")
    assert sha256_hex("a" * 64, "catalog", "sha256") == "a" * 64

    class Announcing:
        def __init__(self, length: str) -> None:
            self.headers = {"Content-Length": length}

    _refuse_longer(Announcing("\uff19\uff19\uff19"), 10, "p.vkp", None)  # full-width 999: not a length, ignored
    with pytest.raises(PullError, match="announces 999 bytes"):
        _refuse_longer(Announcing("999"), 10, "p.vkp", None)


@pytest.mark.reliability(
    "security", "the private signing key given as the trusted public key (file, env, inline): never printed"
)
def test_a_private_key_given_as_public_is_refused_without_quoting_it(tmp_path: Path, reliability) -> None:
    from click.testing import CliRunner

    from nexus_assets.cli import cli

    private, public, _ = generate_keypair(tmp_path / "keys")
    secret = [line for line in private.read_text().splitlines() if "-----" not in line]
    catalog = tmp_path / "catalog.json"
    catalog.write_text("{}")
    env = {"NEXUS_DATA_DIR": str(tmp_path / "data")}
    pull = ["vkp", "pull", "--catalog", str(catalog), "--dest", str(tmp_path / "d")]
    runs = [
        ([*pull, "--public-key", str(private)], {}),
        (pull, {"NEXUS_VKP_PUBLIC_KEY": str(private)}),
        (pull, {"NEXUS_VKP_PUBLIC_KEY": private.read_text()}),
        (["vkp", "verify", "--public-key", str(private), str(catalog)], {}),
        (["--json", "vkp", "verify", "--public-key", f"{public},{private}", str(catalog)], {}),
    ]  # fmt: skip
    for args, extra in runs:
        result = CliRunner().invoke(cli, args, env={**env, **extra})
        output = result.output + (result.stderr if result.stderr_bytes is not None else "")
        assert result.exit_code == 2 and "PRIVATE key" in output, (args, output)
        assert not any(line in output for line in secret), f"{args}: the private key was printed"
    with pytest.raises(SigningError, match="not a PEM public key") as other:
        load_public_key(tmp_path / "catalog.json")
    assert "{}" not in str(other.value)
    reliability(f'exit 2, content never quoted: "{output.strip().splitlines()[-1][:100]}"')
