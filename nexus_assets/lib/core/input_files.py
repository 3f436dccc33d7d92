"""Files an operator names on the command line (golden questions, key files, catalogs), checked before reading.

A path argument may name anything: `/dev/zero` (read without end), a FIFO (a read that never returns), a
directory, a 10 GB log passed by mistake. Every such file must be a regular file of at most a stated size,
else `InputFileError` says which argument, which path and why, before a byte is read.

`open_regular` is the one way to open such a file: `os.open` with `O_NONBLOCK` (opening a FIFO would
otherwise block until a writer appears, before any type check could run), optionally `O_NOFOLLOW` (a link
planted in a directory the program writes), then `fstat` on the descriptor itself (no window between the
check and the open), and only then an ordinary blocking file object.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

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


def open_regular(
    path: str | Path,
    what: str,
    max_bytes: int | None = None,
    *,
    flags: int = os.O_RDONLY,
    follow_links: bool = True,
    mode: int = 0o644,
) -> BinaryIO:
    """`path` opened (`flags`: os.O_RDONLY, or O_WRONLY/O_RDWR with O_CREAT, O_APPEND, O_TRUNC) when it is a
    regular file of at most `max_bytes` (None: any size); with `follow_links=False` a symbolic link is refused
    rather than followed. Never blocks on a FIFO or device. Else InputFileError naming `what` and the path."""
    place = Path(path)
    label = f"{what} {shown(str(place), 200)!r}"
    problem = path_problem(str(path))
    if problem:
        raise InputFileError(f"{label} {problem}")
    open_flags = flags | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW)
    if open_flags & os.O_TRUNC and not flags & os.O_CREAT:
        raise ValueError("open_regular: O_TRUNC without O_CREAT")
    try:
        # O_TRUNC is applied only once the descriptor is known to be a regular file (ftruncate below).
        fd = os.open(place, open_flags & ~os.O_TRUNC, mode)
    except FileNotFoundError:
        raise InputFileError(f"{label}: no such file") from None
    except OSError as exc:
        raise InputFileError(f"{label} {_open_problem(place, exc, follow_links)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(f"{label} is {_kind(info.st_mode)}, not a regular file: refused (name a file)")
        if max_bytes is not None and info.st_size > max_bytes:
            raise InputFileError(
                f"{label} is {info.st_size:,} bytes, over the {max_bytes:,} bytes such a file may have: "
                "is it the right file?"
            )
        if open_flags & os.O_TRUNC:
            os.ftruncate(fd, 0)
        os.set_blocking(fd, True)
        access = flags & os.O_ACCMODE
        file_mode = {os.O_RDONLY: "rb", os.O_WRONLY: "ab" if flags & os.O_APPEND else "wb"}.get(access, "r+b")
        return os.fdopen(fd, file_mode)  # type: ignore[return-value]
    except BaseException:
        os.close(fd)
        raise


def _open_problem(place: Path, exc: OSError, follow_links: bool) -> str:
    """Why `os.open` failed, in words: a refused link, a socket (ENXIO), or the errno's meaning."""
    if exc.errno == errno.ELOOP and not follow_links:
        return "is a symbolic link: refused (it could point anywhere); remove it"
    try:
        info = os.lstat(place) if not follow_links else os.stat(place)
    except OSError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
        return f"is {_kind(info.st_mode)}, not a regular file: refused"
    return f"cannot be opened ({exc.strerror or exc})"


def checked_file(path: str | Path, what: str, max_bytes: int) -> Path:
    """`path` when it is a regular file (links followed) of at most `max_bytes`; else InputFileError."""
    open_regular(path, what, max_bytes).close()
    return Path(path)


def read_checked(path: str | Path, what: str, max_bytes: int, *, follow_links: bool = True) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (`open_regular`); one growing meanwhile is refused."""
    with open_regular(path, what, max_bytes, follow_links=follow_links) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputFileError(f"{what} {shown(str(path), 200)!r} grew past {max_bytes:,} bytes while being read")
    return data
