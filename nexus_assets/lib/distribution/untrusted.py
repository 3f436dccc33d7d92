"""Reading documents a school must not trust yet: bounded parsing, then a strict schema, then use.

Everything the update path reads from a mirror or from a disk a killed process may have left half
written (the catalog, a package's manifest and signature record, the school's own state files) goes
through `load_json` first: its size, nesting depth and number of values are bounded *before* a single
Python object is built, so a hostile document cannot spend memory the read cap did not allow; NaN,
infinities, huge numbers and duplicate keys are refused. The `check_*` helpers then validate types,
lengths, enums and ASCII digits field by field. Every refusal is an `UntrustedError` naming the file
and the field, never a TypeError or OverflowError from code that trusted a shape it was not given.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 12  # the catalog nests 7 deep (partitions/entry/versions/version/full/signature), manifests less
MAX_TEXT = 4096  # characters in any one text field of a catalog, record or state file
_SEMVER = r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})"
_HEX64 = r"[0-9a-f]{64}"


class UntrustedError(ValueError):
    """An untrusted document refused before use: names the file and the field."""

    def __init__(self, where: str, field: str, reason: str) -> None:
        self.where, self.field, self.reason = where, field, reason
        super().__init__(f"{where}: {field}: {reason}" if field else f"{where}: {reason}")


def load_json(raw: bytes, where: str, *, max_bytes: int, max_depth: int = MAX_DEPTH, max_values: int = 200_000) -> Any:
    """`raw` parsed as JSON once it is known to fit: at most `max_bytes`, `max_depth` nested containers and
    `max_values` values (so memory is bounded by the bytes, not by what they describe). Raises UntrustedError."""
    if not isinstance(raw, bytes | bytearray):
        raise UntrustedError(where, "", f"is {type(raw).__name__}, not bytes")
    if len(raw) > max_bytes:
        raise UntrustedError(where, "", f"is larger than {max_bytes} bytes (not parsed)")
    depth, values = _shape(bytes(raw), max_depth, max_values)
    if depth > max_depth:
        raise UntrustedError(where, "", f"nests more than {max_depth} levels deep (not parsed)")
    if values > max_values:
        raise UntrustedError(where, "", f"holds more than {max_values} values (not parsed)")
    try:
        text = bytes(raw).decode("utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_finite)
    except UntrustedError as exc:
        raise UntrustedError(where, "", exc.reason) from None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and int digit limits are ValueErrors
        raise UntrustedError(where, "", f"not valid JSON ({str(exc)[:120]})") from None


_KEEP = bytes(range(256)).translate(None, b'"\\[]{},')


def _shape(raw: bytes, max_depth: int, max_values: int) -> tuple[int, int]:
    """Nesting depth and a value count (commas and containers outside strings) of a JSON text, stopping as
    soon as either passes its bound. Exact up to the first syntax error, which json.loads stops at; no
    allocation per byte (the skeleton holds structure bytes only), so memory stays the size of `raw`."""
    skeleton = raw.translate(None, _KEEP)
    depth = deepest = values = 0
    in_string = escaped = False
    for byte in skeleton:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            values += 1
            if depth > deepest:
                deepest = depth
                if deepest > max_depth:
                    break
        elif byte in (0x5D, 0x7D):
            depth -= 1
        elif byte == 0x2C:
            values += 1
            if values > max_values:
                break
    return deepest, values


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise UntrustedError("", "", "an object repeats a key (which copy counts is ambiguous)")
    return out


def _no_constant(name: str) -> Any:
    raise UntrustedError("", "", f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UntrustedError("", "", f"number {text[:40]} is out of range")
    return value


# --- field checks: each returns the value, typed, or raises naming `where` and the field path ---------------


class Fields:
    """The fields of one JSON object under a path, checked one by one (unknown keys refused by `done`)."""

    def __init__(self, value: Any, where: str, path: str) -> None:
        if not isinstance(value, dict):
            raise UntrustedError(where, path or "document", f"is {_kind(value)}, not an object")
        self.value, self.where, self.path, self.seen = value, where, path, set[str]()

    def field(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, check: Callable[[Any, str, str], Any], *, optional: bool = False) -> Any:
        self.seen.add(name)
        if name not in self.value:
            if optional:
                return None
            raise UntrustedError(self.where, self.field(name), "is missing")
        return check(self.value[name], self.where, self.field(name))

    def done(self, allowed_extra: tuple[str, ...] = ()) -> dict[str, Any]:
        unknown = sorted(set(self.value) - self.seen - set(allowed_extra))
        if unknown:
            raise UntrustedError(self.where, self.path or "document", f"unknown field(s) {_short(unknown)}")
        return self.value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _short(value: Any) -> str:
    return repr(value)[:80]


def text(max_len: int = MAX_TEXT, pattern: str | None = None, what: str = "") -> Callable[[Any, str, str], str]:
    """A check: a str of 1..max_len characters, matching `pattern` in full (ASCII classes) when given."""

    def check(value: Any, where: str, field: str) -> str:
        if not isinstance(value, str):
            raise UntrustedError(where, field, f"is {_kind(value)}, not text")
        if not 0 < len(value) <= max_len:
            raise UntrustedError(where, field, f"must be 1..{max_len} characters, got {len(value)}")
        if pattern is not None and not re.fullmatch(pattern, value, re.ASCII):
            raise UntrustedError(where, field, f"{_short(value)} is not {what or 'well formed'}")
        return value

    return check


def integer(low: int, high: int) -> Callable[[Any, str, str], int]:
    """A check: an int (not a bool) in low..high."""

    def check(value: Any, where: str, field: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise UntrustedError(where, field, f"is {_kind(value)}, not a whole number")
        if not low <= value <= high:
            raise UntrustedError(
                where, field, f"{value if abs(value) < 10**20 else 'a huge number'} is not in {low}..{high}"
            )
        return value

    return check


def one_of(*choices: Any) -> Callable[[Any, str, str], Any]:
    def check(value: Any, where: str, field: str) -> Any:
        if isinstance(value, bool) or value not in choices:
            raise UntrustedError(where, field, f"{_short(value)} is not one of {list(choices)}")
        return value

    return check


def semver(value: Any, where: str, field: str) -> str:
    """A check: MAJOR.MINOR.PATCH in ASCII digits, no leading zeros, at most 9 digits a part (so ranks fit)."""
    return text(32, _SEMVER, "a MAJOR.MINOR.PATCH version")(value, where, field)


sha256_hex = text(64, _HEX64, "64 lowercase hex digits")
timestamp = text(
    40,
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})",
    "an ISO 8601 time with a zone",
)


def is_semver(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(_SEMVER, value, re.ASCII) is not None


def nullable(check: Callable[[Any, str, str], Any]) -> Callable[[Any, str, str], Any]:
    def inner(value: Any, where: str, field: str) -> Any:
        return None if value is None else check(value, where, field)

    return inner


# --- signature records ---------------------------------------------------------------------------------------

KEY_ID = text(64, r"[0-9a-f]{8,64}", "a key id (hex)")
SIGNATURE_B64 = text(128, r"[A-Za-z0-9+/]{86}==", "a base64 Ed25519 signature")


def signature_record(value: Any, where: str, field: str = "signature") -> dict[str, str]:
    """A signature record (`manifest.sig`, the catalog's `signature`, a package reference's): exactly
    {algorithm: ed25519, key_id: hex, signature: 64 bytes in base64}."""
    fields = Fields(value, where, field)
    fields.get("algorithm", one_of("ed25519"))
    fields.get("key_id", KEY_ID)
    fields.get("signature", SIGNATURE_B64)
    return fields.done()


# --- zip member names ----------------------------------------------------------------------------------------

_MEMBER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*/?", re.ASCII)
MAX_MEMBER_NAME = 512
MAX_NAME_COMPONENT = 255  # NAME_MAX of the file systems a release is extracted to


def member_name_problem(name: Any) -> str | None:
    """Why a zip member name is refused, else None: only canonical relative POSIX paths of ASCII letters,
    digits, `_`, `-` and `.`; no empty, `.` or `..` component, no backslash, drive, or leading dot-slash, so
    no two distinct names can name one file on any file system (see `alias_key` for case)."""
    if not isinstance(name, str) or not name:
        return "an empty or non-text name"
    if len(name) > MAX_MEMBER_NAME:
        return f"a name longer than {MAX_MEMBER_NAME} characters"
    if not _MEMBER.fullmatch(name):
        return "not a canonical relative path of ASCII letters, digits, '_', '-', '.'"
    parts = name.rstrip("/").split("/")
    if any(part in (".", "..") or set(part) == {"."} for part in parts):
        return "a '.' or '..' component"
    if any(len(part) > MAX_NAME_COMPONENT for part in parts):
        return f"a path component longer than {MAX_NAME_COMPONENT} characters (no file system stores it)"
    return None


def alias_key(name: str) -> str:
    """What two names must not share: case-insensitive, normalised, no trailing slash (so `X` and `x`,
    or a file and a directory of one name, collide as they do on a case-insensitive disk)."""
    return unicodedata.normalize("NFKC", name).casefold().rstrip("/")


def member_names_problem(names: list[str]) -> str | None:
    """Why a list of zip member names (files and directories) is refused: one bad name, or two that alias."""
    seen: dict[str, str] = {}
    for name in names:
        problem = member_name_problem(name)
        if problem:
            return f"member name {_short(name)}: {problem}"
        key = alias_key(name)
        if key in seen and not (name.endswith("/") and seen[key].endswith("/") and name == seen[key]):
            return (
                f"member names {_short(seen[key])} and {_short(name)} name the same path (which copy is checked "
                "and which installed would be ambiguous)"
            )
        seen[key] = name
    return None
