"""Files an operator names on the command line (golden questions, key files, catalogs), checked before reading.

A path argument may name anything: `/dev/zero` (read without end), a FIFO (a read that never returns), a
directory, a 10 GB log passed by mistake. Every such file is stat'ed first and must be a regular file of at
most a stated size, else `InputFileError` says which argument, which path and why, before a byte is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nexus_assets.lib.core.escaping import shown

# Golden files hold hundreds of questions (~100 KB), a key is < 1 KB, a catalog a few hundred KB.
GOLDEN_MAX_BYTES = 16 << 20
KEY_MAX_BYTES = 64 << 10
CATALOG_MAX_BYTES = 64 << 20
# A package is a few MB to a few GB: the bound only refuses devices and absurd sizes.
PACKAGE_MAX_BYTES = 64 << 30


# Linux's limits on what a path may be (limits.h): longer ones fail in the kernel with ENAMETOOLONG.
PATH_MAX_BYTES = 4096
NAME_MAX_BYTES = 255


class InputFileError(ValueError):
    """A path argument that is not a readable regular file of bounded size."""


def path_problem(value: str) -> str | None:
    """Why `value` cannot be a path on this system, or None: empty, a NUL byte (which no system call accepts:
    Python raises ValueError), or longer than PATH_MAX, or a component longer than NAME_MAX, in bytes. Checked
    before any use, so an odd argument is a usage error, not a traceback from deep inside a command."""
    if not value:
        return "is empty: give a path"
    if "\x00" in value:
        return "contains a NUL byte, which no path may hold"
    raw = os.fsencode(value)
    if len(raw) > PATH_MAX_BYTES:
        return f"is {len(raw):,} bytes long, over the {PATH_MAX_BYTES:,} bytes a path may have"
    longest = max(raw.split(b"/"), key=len)
    if len(longest) > NAME_MAX_BYTES:
        return f"has a name of {len(longest):,} bytes, over the {NAME_MAX_BYTES} bytes a file or folder name may have"
    return None


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def checked_file(path: str | Path, what: str, max_bytes: int) -> Path:
    """`path` when it is a regular file (links followed) of at most `max_bytes`; else InputFileError."""
    place = Path(path)
    label = f"{what} {shown(str(place), 200)!r}"
    problem = path_problem(str(path))
    if problem:
        raise InputFileError(f"{label} {problem}")
    try:
        info = os.stat(place)
    except FileNotFoundError:
        raise InputFileError(f"{label}: no such file") from None
    except OSError as exc:
        raise InputFileError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputFileError(f"{label} is {_kind(info.st_mode)}, not a regular file: pass the path of a file")
    if info.st_size > max_bytes:
        raise InputFileError(
            f"{label} is {info.st_size:,} bytes, over the {max_bytes:,} bytes such a file may have: "
            "is it the right file?"
        )
    return place


def read_checked(path: str | Path, what: str, max_bytes: int) -> bytes:
    """The bytes of `checked_file(path, ...)`, never more than `max_bytes` (a file growing meanwhile is refused)."""
    place = checked_file(path, what, max_bytes)
    with place.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputFileError(f"{what} {shown(str(place), 200)!r} grew past {max_bytes:,} bytes while being read")
    return data
