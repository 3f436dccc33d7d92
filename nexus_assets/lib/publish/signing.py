"""Ed25519 signatures over package manifests: who may publish, and how a school checks it.

A package's `manifest.json` lists the sha256 of every other member, so one signature over the exact
manifest bytes covers the whole package. The signature travels in the package as `manifest.sig`
(algorithm, key id, base64 signature) and is repeated in the catalog.

The private key comes from configuration, never from the repository and never into a log:
`NEXUS_SIGNING_KEY_FILE` (a PEM file), `NEXUS_SIGNING_KEY` (the PEM text itself), or in aws mode
`NEXUS_SIGNING_KEY_SECRET_ID` (an AWS Secrets Manager secret holding the PEM). With none of them
set, a *development* key pair is generated once under `<data>/keys/` so a fresh checkout's demo
works with no manual step; it is labelled as such wherever it is used, and schools must never trust
it. Schools verify with the public key only (`nexus keys generate` writes both halves).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.input_files import KEY_MAX_BYTES, InputFileError, read_checked

ALGORITHM = "ed25519"
KEY_FILE_ENV = "NEXUS_SIGNING_KEY_FILE"
KEY_ENV = "NEXUS_SIGNING_KEY"
KEY_SECRET_ENV = "NEXUS_SIGNING_KEY_SECRET_ID"
PUBLIC_KEY_ENV = "NEXUS_VKP_PUBLIC_KEY"
DEV_KEY_DIR = "keys"
DEV_PRIVATE = "dev-signing-key.pem"
DEV_PUBLIC = "dev-signing-key.pub.pem"


class SigningError(ValueError):
    """A key that cannot be loaded, or a signature that does not hold."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key: lets a verifier say which key signed, without the key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashing.sha256_bytes(raw, 16)


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def read_key_file(path: Path, what: str) -> bytes:
    """The bytes of a key file, read only if it is a regular file of at most KEY_MAX_BYTES: a key path from the
    environment ($NEXUS_VKP_PUBLIC_KEY, $NEXUS_SIGNING_KEY_FILE) naming /dev/zero was read until the OOM killer
    came (17 GB), a FIFO blocked the build for good. SigningError naming the file otherwise."""
    try:
        return read_checked(path, what, KEY_MAX_BYTES)
    except InputFileError as exc:
        raise SigningError(str(exc)) from None
    except OSError as exc:
        raise SigningError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None


def load_private_key(pem: bytes | str, where: str) -> Ed25519PrivateKey:
    """Parse a PKCS#8 PEM Ed25519 private key; errors name `where` (never the key's content)."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{where}: not an unencrypted PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{where}: the key is {type(key).__name__}, not Ed25519")
    return key


def load_public_key(source: str | Path) -> Ed25519PublicKey:
    """A public key from a PEM file path or the PEM text itself."""
    text = str(source)
    if "-----BEGIN" in text:
        return _public_key_from_pem(text, "public key text")
    path = Path(text).expanduser()
    return _public_key_from_pem(_read_key_file(path), str(path))


def _read_key_file(path: Path) -> str:
    """A key file's text: a regular file of key size (a FIFO or device is refused, never read)."""
    try:
        return read_key_file(path, "the public key").decode()
    except UnicodeDecodeError:
        raise SigningError(f"{path}: not a PEM public key (not text)") from None


def _public_key_from_pem(pem: str, where: str) -> Ed25519PublicKey:
    """One Ed25519 public key from PEM text. Never quotes the text: a private key given by mistake (the .key
    instead of the .pub) must not end up in logs, cron mail or a JSON report."""
    if "PRIVATE KEY" in pem:
        raise SigningError(
            f"{where}: holds a PRIVATE key, not a public key: give the publisher's .pub file (the private key "
            "belongs on the publisher only; if it was copied here, treat it as exposed)"
        )
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise SigningError(f"{where}: not a PEM public key (-----BEGIN PUBLIC KEY----- ...)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{where}: the key is {type(key).__name__}, not Ed25519")
    return key


@dataclass(frozen=True)
class Signer:
    """A private key and where it came from (for logs: the origin, never the key)."""

    key: Ed25519PrivateKey
    origin: str
    development: bool = False

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, data: bytes) -> dict[str, str]:
        """The signature record stored as `manifest.sig` and in the catalog."""
        return {
            "algorithm": ALGORITHM,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.key.sign(data)).decode(),
        }

    def __repr__(self) -> str:  # never print the key, even by accident
        return f"Signer(origin={self.origin!r}, key_id={self.key_id!r}, development={self.development})"


TrustedKeys = Ed25519PublicKey | Sequence[Ed25519PublicKey]


def as_key_list(keys: TrustedKeys) -> list[Ed25519PublicKey]:
    """One trusted key or several (a key rotation: the old and the new key trusted at once)."""
    return [keys] if isinstance(keys, Ed25519PublicKey) else list(keys)


def key_ids(keys: TrustedKeys) -> str:
    return ", ".join(key_id(k) for k in as_key_list(keys))


def verify_signature(public_key: TrustedKeys, data: bytes, record: Any, what: str = "the manifest") -> str | None:
    """None when `record` is a valid signature of `data` (`what`: a manifest, a catalog) by one of the trusted
    keys, else the reason. The record is schema-checked first (types, key id, base64 of 64 bytes), so no
    record, however malformed, raises."""
    from nexus_assets.lib.distribution.untrusted import UntrustedError, signature_record

    try:
        record = signature_record(record, what, "signature record")
    except UntrustedError as exc:
        return f"signature record is malformed ({exc.field}: {exc.reason})"
    keys = {key_id(k): k for k in as_key_list(public_key)}
    key = keys.get(record["key_id"])
    if key is None:
        trusted = f"key is {next(iter(keys))}" if len(keys) == 1 else f"keys are {', '.join(keys) or 'none'}"
        return f"signed by key {record['key_id']}, but the trusted public {trusted}"
    try:
        key.verify(base64.b64decode(record["signature"], validate=True), data)
    except (InvalidSignature, ValueError):
        return f"signature does not match {what} (tampered, or signed by another key)"
    return None


def generate_keypair(directory: Path, name: str = "nexus-signing") -> tuple[Path, Path, str]:
    """Write `<name>.key` (mode 0600) and `<name>.pub` under `directory`; refuses to overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise SigningError(f"{path} already exists: refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    _write_private(private_path, private_pem(key))
    public_path.write_bytes(public_pem(key.public_key()))
    return private_path, public_path, key_id(key.public_key())


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def dev_key_paths(data_root: Path) -> tuple[Path, Path]:
    return data_root / DEV_KEY_DIR / DEV_PRIVATE, data_root / DEV_KEY_DIR / DEV_PUBLIC


def development_signer(data_root: Path) -> Signer:
    """The data directory's development key, generated on first use (never for real releases)."""
    private_path, public_path = dev_key_paths(data_root)
    if not private_path.exists():
        private_path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        try:
            _write_private(private_path, private_pem(key))
        except FileExistsError:  # another process generated it first: use theirs
            pass
        else:
            public_path.write_bytes(public_pem(key.public_key()))
    key = load_private_key(read_key_file(private_path, "development signing key"), str(private_path))
    if not public_path.exists():
        public_path.write_bytes(public_pem(key.public_key()))
    return Signer(key, f"DEVELOPMENT key {private_path}", development=True)


def resolve_signer(
    data_root: Path,
    *,
    key_file: str = "",
    key_pem: str = "",
    secret_id: str = "",
    secret_reader: Callable[[str], str] | None = None,
) -> Signer:
    """The configured signing key: a key file ($NEXUS_SIGNING_KEY_FILE), else PEM text
    ($NEXUS_SIGNING_KEY), else a Secrets Manager secret (when `secret_reader` is given), else the
    development key."""
    if key_file:
        path = Path(key_file).expanduser()
        data = read_key_file(path, f"the signing key (${KEY_FILE_ENV})")  # a FIFO or device is never read
        return Signer(load_private_key(data, str(path)), f"key file {path}")
    if key_pem:
        return Signer(load_private_key(key_pem, f"${KEY_ENV}"), f"${KEY_ENV}")
    if secret_id and secret_reader is not None:
        return Signer(
            load_private_key(secret_reader(secret_id), f"secret {secret_id}"), f"Secrets Manager secret {secret_id}"
        )
    return development_signer(data_root)


def secrets_manager_reader(client: Any) -> Callable[[str], str]:
    """Read a PEM from AWS Secrets Manager (SecretString, or SecretBinary)."""

    def read(secret_id: str) -> str:
        response = client.get_secret_value(SecretId=secret_id)
        if "SecretString" in response:
            return response["SecretString"]
        return bytes(response["SecretBinary"]).decode()

    return read


_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", re.DOTALL)


def load_public_keys(source: str) -> list[Ed25519PublicKey]:
    """Every key of `source`: PEM text holding one or more keys, or one or more PEM files separated by
    commas (a file may itself hold several keys). Several keys = a rotation: old and new both trusted.
    No message ever quotes a file's or the text's content (it may be a private key given by mistake)."""
    if "-----BEGIN" in source:
        return _keys_of_pem(source, "public key text")
    keys = []
    for item in (part.strip() for part in source.split(",")):
        if not item:
            continue
        path = Path(item).expanduser()
        keys.extend(_keys_of_pem(_read_key_file(path), str(path)))
    if not keys:
        raise SigningError(f"{source[:200]!r}: no public key named")
    return keys


def _keys_of_pem(text: str, where: str) -> list[Ed25519PublicKey]:
    if "PRIVATE KEY" in text:
        _public_key_from_pem(text, where)  # raises, without quoting
    blocks = _PEM_BLOCK.findall(text)
    if not blocks:
        raise SigningError(f"{where}: no PEM public key block (-----BEGIN PUBLIC KEY----- ...)")
    return [_public_key_from_pem(block, where) for block in blocks]


def trusted_public_key(explicit: str | None, data_root: Path | None) -> tuple[list[Ed25519PublicKey] | None, str]:
    """The keys a verifier trusts: `explicit` (`--public-key`, else $NEXUS_VKP_PUBLIC_KEY; several keys, comma
    separated files or PEM blocks, during a rotation), else the local development key."""
    chosen = explicit or ""
    if chosen:
        keys = load_public_keys(chosen)
        shown = chosen if "BEGIN" not in chosen else "(inline)"
        return keys, f"public key{'s' if len(keys) > 1 else ''} {shown} (key id {key_ids(keys)})"
    if data_root is not None:
        _, public_path = dev_key_paths(data_root)
        if public_path.is_file():
            return [load_public_key(public_path)], f"DEVELOPMENT public key {public_path}"
    return None, "no public key"


def canonical_json(value: Any) -> bytes:
    """The bytes that get signed: stable key order, so the same manifest always signs the same."""
    return json.dumps(value, indent=2, sort_keys=True).encode()
