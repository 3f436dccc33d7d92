"""The school side's one HTTP layer (urllib3): deadlines, a minimum rate, same-origin redirects, retries.

Every request a school server makes for the catalog or a package goes through `HttpClient.open`:

- a *deadline* for the whole request (connect, TLS handshake, headers and body): a mirror sending one
  byte every few seconds, its header lines a byte at a time, or `100 Continue` responses without end is
  cut off when it passes (a watchdog shuts the request's socket down at the deadline, whatever the
  request is doing then: a per-read timeout alone never fires against a trickle), and a *minimum transfer
  rate* over a window (a trickle of body bytes is cut off long before);
- every URL is checked before use (`check_url`): scheme, host, an ASCII port in 1..65535, `file://` only
  for this machine; a bad URL is a usage error, refused at once and never retried. Credentials in a URL
  (`user:password@`) are sent as HTTP Basic auth and never shown: `redact` masks them in every message;
- redirects are followed by hand, at most `MAX_REDIRECTS`, and only within the catalog's own origin
  (scheme, host and port): a mirror cannot steer a school into requesting hosts on its own network,
  nor to `ftp://`; only the configured schemes are used at all;
- `retrying` repeats transient failures (connection errors, timeouts, 408, 429, 5xx) with exponential
  backoff and full jitter, and honours `Retry-After` (capped), for the catalog and the packages alike;
- errors are `FetchError`s a school administrator can read ("connection refused", "HTTP 503"), never
  urllib3's or the socket's own text.
"""

from __future__ import annotations

import base64
import email.utils
import errno
import http.client
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import LocationValueError

from nexus_assets.lib.core.escaping import shown

MAX_REDIRECTS = 5
MAX_WAIT_CEILING = 3600.0  # no pause between attempts is longer, whatever the settings or a Retry-After say
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
T = TypeVar("T")


@dataclass(frozen=True)
class FetchSettings:
    """Bounds on every request of a pull (NEXUS_PULL_* settings)."""

    connect_timeout: float = 10.0  # seconds to connect
    read_timeout: float = 30.0  # seconds one socket read may wait
    catalog_deadline: float = 120.0  # seconds for the catalog, retries included (so cron runs never pile up)
    request_deadline: float = 4 * 3600.0  # seconds for one package request
    min_rate: float = 1024.0  # bytes per second a body must average over each `rate_window`
    rate_window: float = 30.0
    attempts: int = 5  # requests per file, the first included
    max_wait: float = 60.0  # longest pause between attempts (Retry-After is capped to it)
    backoff: float = 0.5  # first pause before jitter, doubling
    schemes: tuple[str, ...] = ("https", "http", "file", "s3")


class FetchError(RuntimeError):
    """A request that failed, in words; `transient` when trying again may help, after `retry_after` s."""

    def __init__(self, message: str, *, transient: bool = False, retry_after: float | None = None) -> None:
        super().__init__(shown(message))  # a mirror's reason phrase or headers may hold terminal escapes
        self.transient, self.retry_after = transient, retry_after


def redact(location: str) -> str:
    """`location` fit to show: credentials (`user:password@`) masked, control characters escaped."""
    text = location
    try:
        parts = urlsplit(location)
        if "@" in parts.netloc:
            text = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
    except ValueError:
        if "@" in location:
            head, _, tail = location.partition("://")
            text = f"{head}://***@{tail.rpartition('@')[2]}" if tail else "***@" + location.rpartition("@")[2]
    return shown(text, 2000)


def _split(location: str) -> SplitResult:
    try:
        return urlsplit(location)
    except ValueError as exc:
        raise FetchError(f"{redact(location)}: not a valid URL ({exc})") from None


def _port_text(parts: SplitResult) -> str:
    """The port as written (urlsplit's own `port` accepts full-width digits as numbers)."""
    hostport = parts.netloc.rpartition("@")[2]
    if hostport.startswith("["):
        return hostport.partition("]")[2].removeprefix(":")
    return hostport.rpartition(":")[2] if ":" in hostport else ""


def origin(url: str) -> tuple[str, str, int | None]:
    parts = _split(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = _port_text(parts)
    number = int(port) if port.isascii() and port.isdigit() else None if not port else -1  # -1: matches no origin
    return parts.scheme.lower(), (parts.hostname or "").lower(), number if number is not None else default


def scheme_of(location: str) -> str:
    """`file` for a path or file:// URL, else the URL's scheme."""
    scheme = _split(location).scheme.lower()
    return "file" if scheme in ("", "file") or len(scheme) == 1 else scheme  # "c:" would be a drive letter


def check_scheme(location: str, settings: FetchSettings) -> str:
    """The location's scheme once `check_url` accepts it (see there)."""
    return check_url(location, settings)


def check_url(location: str, settings: FetchSettings) -> str:
    """The scheme of `location` when it is allowed and well formed, else a (final, not transient) FetchError
    saying what is wrong: an unconfigured scheme, control characters or spaces, no host, a port that is
    not 1..65535 in ASCII digits, a `file://` URL naming another host, an s3:// URL without bucket or key."""
    scheme = scheme_of(location)
    shown = redact(location)
    if scheme not in settings.schemes:
        raise FetchError(
            f"{shown}: the scheme {scheme}:// is not allowed (allowed: {', '.join(settings.schemes)}; "
            "NEXUS_PULL_SCHEMES)"
        )
    if scheme == "file":
        local_path(location)
        return scheme
    if any(ord(c) < 33 or ord(c) == 127 for c in location):
        raise FetchError(f"{shown}: a URL with spaces or control characters: refused (percent-encode them)")
    parts = _split(location)
    if not parts.hostname:
        raise FetchError(f"{shown}: no host{' (bucket)' if scheme == 's3' else ''} in the URL: refused")
    port = _port_text(parts)
    if port and not (port.isascii() and port.isdigit() and 1 <= int(port[:6]) <= 65535):
        raise FetchError(f"{shown}: the port {port[:20]!r} is not a number in 1..65535: refused")
    if not parts.hostname.isascii():
        raise FetchError(f"{shown}: the host name is not ASCII (write it in its xn-- form): refused")
    if scheme == "s3" and not parts.path.strip("/"):
        raise FetchError(f"{shown}: no object key after the bucket: refused")
    return scheme


def local_path(location: str) -> Path:
    """The file a path or `file://` URL names. A file URL must name this machine (`file:///p` or
    `file://localhost/p`): `file://host/p` is another machine's file, refused, never read as a relative path."""
    if not location:
        raise FetchError("an empty catalog location: refused")
    if not location.lower().startswith("file:"):
        return Path(location)
    parts = _split(location)
    if parts.netloc.lower() not in ("", "localhost"):
        raise FetchError(
            f"{redact(location)}: a file:// URL for host {parts.netloc[:100]!r}: refused (only this machine's "
            "files: file:///path)"
        )
    if not parts.path or parts.query or parts.fragment:
        raise FetchError(f"{redact(location)}: a file:// URL needs an absolute path and nothing after it")
    return Path(unquote(parts.path))


def basic_auth(url: str) -> dict[str, str]:
    """An Authorization header for credentials written in the URL (`https://user:password@host/`), else {}."""
    parts = _split(url)
    if parts.username is None:
        return {}
    token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(token).decode("ascii")}


def readable(exc: BaseException) -> str:
    """An exception from the network stack in words: the errno's meaning, or the kind of failure."""
    tls = certificate_failure(exc)
    if tls is not None:
        return tls
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno and not isinstance(seen, ssl.SSLError):
            return {
                errno.ECONNREFUSED: "connection refused",
                errno.ECONNRESET: "connection reset by the server",
                errno.EHOSTUNREACH: "host unreachable",
                errno.ENETUNREACH: "network unreachable",
            }.get(seen.errno, os.strerror(seen.errno).lower())
        seen = seen.__cause__ or seen.__context__
    for seen in _chain(exc):  # a reply that is not valid HTTP: malformed, not cut
        if isinstance(seen, http.client.LineTooLong | http.client.BadStatusLine) and not isinstance(
            seen, http.client.RemoteDisconnected
        ):
            return "the reply is not valid HTTP (a bad status line or an over-long line)"
        if isinstance(seen, http.client.HTTPException) and "more than" in str(seen) and "headers" in str(seen):
            return "the reply has too many header lines"
    name = type(exc).__name__
    if "InvalidHeader" in name or "HeaderParsing" in name:
        return "the reply's headers are malformed (for instance two different Content-Length headers)"
    if "Timeout" in name:
        return "timed out"
    if "NameResolution" in name or "LocationParse" in name:
        return "the host name cannot be resolved"
    if "Protocol" in name or "IncompleteRead" in name:
        return "the connection was cut mid-response"
    if "SSL" in name:
        return "the TLS handshake failed (certificate or protocol)"
    return name


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: causes, contexts, and urllib3's `reason` (a MaxRetryError's, a ProtocolError's)."""
    todo: list[Any] = [exc]
    seen: set[int] = set()
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *getattr(item, "args", ())[:2]]


def certificate_failure(exc: BaseException) -> str | None:
    """Why the mirror's TLS certificate was not accepted (self-signed, expired, another host's, a school
    proxy intercepting TLS), in words, or None when `exc` is not that. Permanent: never retried."""
    for seen in _chain(exc):
        if isinstance(seen, ssl.SSLCertVerificationError):
            reason = seen.verify_message or seen.reason or "not trusted"
            return (
                f"TLS certificate verification failed: {reason} (a self-signed or expired certificate, another "
                "host's, or a proxy intercepting TLS; SSL_CERT_FILE names extra trusted CAs)"
            )
    return None


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value[:9]))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def pause_before(attempt: int, error: FetchError | None, settings: FetchSettings) -> float:
    """Seconds to wait before attempt `attempt + 1`: the server's Retry-After, else exponential backoff with
    full jitter (so a thousand schools told to retry do not come back in step); both capped at max_wait."""
    cap = min(settings.max_wait, MAX_WAIT_CEILING)
    if error is not None and error.retry_after is not None:
        return min(cap, error.retry_after) + random.uniform(0, min(cap, settings.backoff))
    return random.uniform(0, min(cap, settings.backoff * 2 ** min(attempt, 60)))


def retrying(
    action: Callable[[], T],
    what: str,
    settings: FetchSettings,
    *,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`action()`, tried up to `settings.attempts` times while it fails transiently and `deadline` (a
    time.monotonic() value) allows; the last error names `what` and how many attempts were made."""
    last: FetchError | None = None
    for attempt in range(max(1, settings.attempts)):
        try:
            return action()
        except FetchError as exc:
            if not exc.transient:
                raise
            last = exc
        wait = pause_before(attempt, last, settings)
        if attempt + 1 >= settings.attempts:
            break
        if deadline is not None and time.monotonic() + wait >= deadline:
            raise FetchError(f"{last} (gave up: the deadline would pass before attempt {attempt + 2})")
        sleep(wait)
    raise FetchError(f"{last} (after {settings.attempts} attempt{'s' if settings.attempts != 1 else ''})")


# --- the deadline watchdog ------------------------------------------------------------------------------

_WATCH: ContextVar[_Deadline | None] = ContextVar("nexus_pull_deadline", default=None)


class _Deadline:
    """Shuts down the sockets of one request when its deadline passes, whatever the request is doing then
    (connecting, the TLS handshake, reading header lines a byte at a time, skipping `100 Continue`
    responses without end). The connections below register their socket's descriptor while it is active."""

    def __init__(self, deadline: float) -> None:
        self.deadline, self.expired, self._done = deadline, False, False
        self._fds: list[int] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._token = _WATCH.set(self)
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            self._done = True
            self._fds.clear()
        _WATCH.reset(self._token)

    def watch(self, sock: socket.socket | None) -> None:
        fd = sock.fileno() if sock is not None else -1
        if fd < 0:
            return
        with self._lock:
            if self._done:
                return
            self._fds.append(fd)
            if self.expired:
                _shut(fd)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for fd in self._fds:
                _shut(fd)


def _shut(fd: int) -> None:
    """Shut down the connection behind `fd` (through a duplicate: the request's own thread owns and closes fd);
    its blocked read then returns at once."""
    try:
        with socket.socket(fileno=os.dup(fd)) as dup:
            dup.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _WatchedHTTP(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        watch = _WATCH.get()
        if watch is not None:
            watch.watch(sock)  # the descriptor the TLS socket will use too
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        watch = _WATCH.get()
        if watch is not None and self.sock is not None:
            watch.watch(self.sock)  # a connection kept from an earlier request
        super().request(*args, **kwargs)


class _WatchedHTTPS(_WatchedHTTP, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTP


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPS


class Metered:
    """A body read under its request's deadline and minimum rate (an S3 object's, a response's)."""

    headers: Any = None
    status = 200

    def __init__(self, stream: Any, url: str, settings: FetchSettings, deadline: float) -> None:
        self.stream, self.url, self.settings, self.deadline = stream, url, settings, deadline
        self._window_start, self._window_bytes = time.monotonic(), 0

    def _read_block(self, amount: int, remaining: float) -> bytes:
        # What has arrived, not `amount` bytes: `read(amount)` of a botocore body waits until it has them all,
        # so a trickle would hold it far past the deadline. Its urllib3 response's read1 returns what came.
        read1 = getattr(getattr(self.stream, "_raw_stream", None), "read1", None)
        return bytes(read1(amount) if read1 is not None else self.stream.read(amount))

    def read(self, amount: int = -1) -> bytes:
        """Up to `amount` bytes (what one read gave: a trickle cannot hold a read for long)."""
        now = time.monotonic()
        if now >= self.deadline:
            raise FetchError(f"{self.url}: the request passed its deadline: cut off", transient=True)
        try:
            block = self._read_block(amount if amount and amount > 0 else 1024 * 1024, self.deadline - now)
        except FetchError:
            raise
        except Exception as exc:  # noqa: BLE001 -- urllib3, botocore and socket errors alike: a cut transfer
            late = time.monotonic() >= self.deadline
            reason = "the request passed its deadline" if late else readable(exc)
            raise FetchError(f"{self.url}: {reason} while reading the body", transient=True) from None
        self._window_bytes += len(block)
        elapsed = time.monotonic() - self._window_start
        if elapsed >= self.settings.rate_window:
            rate = self._window_bytes / elapsed
            if block and rate < self.settings.min_rate:
                raise FetchError(
                    f"{self.url}: the body arrives at {rate:.0f} bytes/s, below the {self.settings.min_rate:.0f} "
                    "required (NEXUS_PULL_MIN_RATE): cut off",
                    transient=True,
                )
            self._window_start, self._window_bytes = time.monotonic(), 0
        return bytes(block)

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> Metered:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Body(Metered):
    """An HTTP response body: each socket read waits at most until the deadline."""

    def __init__(self, response: Any, url: str, settings: FetchSettings, deadline: float) -> None:
        super().__init__(response, url, settings, deadline)
        self.response, self.headers, self.status = response, response.headers, response.status

    def _read_block(self, amount: int, remaining: float) -> bytes:
        sock = getattr(getattr(self.response, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(max(0.05, min(self.settings.read_timeout, remaining)))
        # Raw bytes: what the catalog's sha256 covers, and no decompression a server could turn into a bomb.
        return bytes(self.response.read1(amount, decode_content=False))

    def close(self) -> None:
        _discard(self.response)


def _discard(response: Any) -> None:
    """Close a response and its connection without reading the rest (an endless body has no rest)."""
    response.close()
    response.release_conn()


class HttpClient:
    """Requests from one catalog's origin, through one urllib3 pool."""

    def __init__(self, base_url: str, settings: FetchSettings) -> None:
        self.base, self.settings = base_url, settings
        self.origin = origin(base_url)
        self.pool = urllib3.PoolManager(
            retries=False, timeout=urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout)
        )
        self.pool.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}  # type: ignore[assignment]

    def open(self, url: str, offset: int = 0, deadline: float | None = None) -> Body:
        """The body of `url` from byte `offset` (a Range request), following same-origin redirects."""
        deadline = deadline if deadline is not None else time.monotonic() + self.settings.request_deadline
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        headers["Accept-Encoding"] = "identity"
        headers.update(basic_auth(self.base))
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            check_url(current, self.settings)
            if origin(current) != self.origin:
                raise FetchError(
                    f"{redact(url)}: redirected to {redact(current)}, outside the catalog's origin "
                    f"{self.origin[0]}://{self.origin[1]}:{self.origin[2]}: refused"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError(f"{redact(url)}: the request passed its deadline", transient=True)
            timeout = urllib3.Timeout(
                connect=min(self.settings.connect_timeout, remaining), read=min(self.settings.read_timeout, remaining)
            )
            with _Deadline(deadline) as watch:
                try:
                    response = self.pool.request(
                        "GET", current, headers=headers, redirect=False, preload_content=False, timeout=timeout
                    )
                except (LocationValueError, ValueError) as exc:  # a URL urllib3 cannot use: final, not retried
                    raise FetchError(f"{redact(current)}: not a usable URL ({type(exc).__name__})") from None
                except (Urllib3Error, OSError, http.client.HTTPException) as exc:
                    reason = "the request passed its deadline (connect and headers)" if watch.expired else readable(exc)
                    permanent = certificate_failure(exc) is not None  # trying again gives the same certificate
                    raise FetchError(f"{redact(current)}: {reason}", transient=not permanent) from None
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location", "")
                _discard(response)
                if not location:
                    raise FetchError(f"{redact(current)}: HTTP {response.status} redirect without a Location")
                try:
                    current = urljoin(current, location)
                except ValueError:
                    raise FetchError(f"{redact(current)}: redirected to an invalid URL: refused") from None
                continue
            if response.status not in (200, 206):
                wait = retry_after(response.headers.get("Retry-After"))
                _discard(response)
                transient = response.status in TRANSIENT_STATUS
                raise FetchError(
                    f"{redact(current)}: HTTP {response.status} {shown(response.reason or '', 80)}".rstrip()
                    + (" (not found on the mirror)" if response.status == 404 else ""),
                    transient=transient,
                    retry_after=wait,
                )
            return Body(response, redact(current), self.settings, deadline)
        raise FetchError(f"{redact(url)}: more than {MAX_REDIRECTS} redirects: refused")
