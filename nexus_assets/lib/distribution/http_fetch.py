"""The school side's one HTTP layer (urllib3): deadlines, a minimum rate, same-origin redirects, retries.

Every request a school server makes for the catalog or a package goes through `HttpClient.open`:

- a *deadline* for the whole request (connect, headers and body): a mirror sending one byte every few
  seconds is cut off when it passes, and a *minimum transfer rate* over a window (a trickle is cut
  off long before);
- redirects are followed by hand, at most `MAX_REDIRECTS`, and only within the catalog's own origin
  (scheme, host and port): a mirror cannot steer a school into requesting hosts on its own network,
  nor to `ftp://`; only the configured schemes are used at all;
- `retrying` repeats transient failures (connection errors, timeouts, 408, 429, 5xx) with exponential
  backoff and full jitter, and honours `Retry-After` (capped), for the catalog and the packages alike;
- errors are `FetchError`s a school administrator can read ("connection refused", "HTTP 503"), never
  urllib3's or the socket's own text.
"""

from __future__ import annotations

import email.utils
import errno
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

MAX_REDIRECTS = 5
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
        super().__init__(message)
        self.transient, self.retry_after = transient, retry_after


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def scheme_of(location: str) -> str:
    """`file` for a path or file:// URL, else the URL's scheme."""
    scheme = urlsplit(location).scheme.lower()
    return "file" if scheme in ("", "file") or len(scheme) == 1 else scheme  # "c:" would be a drive letter


def check_scheme(location: str, settings: FetchSettings) -> str:
    scheme = scheme_of(location)
    if scheme not in settings.schemes:
        raise FetchError(
            f"{location}: the scheme {scheme}:// is not allowed (allowed: {', '.join(settings.schemes)}; "
            "NEXUS_PULL_SCHEMES)"
        )
    return scheme


def readable(exc: BaseException) -> str:
    """An exception from the network stack in words: the errno's meaning, or the kind of failure."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return {
                errno.ECONNREFUSED: "connection refused",
                errno.ECONNRESET: "connection reset by the server",
                errno.EHOSTUNREACH: "host unreachable",
                errno.ENETUNREACH: "network unreachable",
            }.get(seen.errno, os.strerror(seen.errno).lower())
        seen = seen.__cause__ or seen.__context__
    name = type(exc).__name__
    if "Timeout" in name:
        return "timed out"
    if "NameResolution" in name or "LocationParse" in name:
        return "the host name cannot be resolved"
    if "Protocol" in name or "IncompleteRead" in name:
        return "the connection was cut mid-response"
    if "SSL" in name:
        return "the TLS handshake failed (certificate or protocol)"
    return name


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
    if error is not None and error.retry_after is not None:
        return min(settings.max_wait, error.retry_after) + random.uniform(0, settings.backoff)
    return random.uniform(0, min(settings.max_wait, settings.backoff * 2**attempt))


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


class Body:
    """A response body read under the request's deadline and minimum rate."""

    def __init__(self, response: Any, url: str, settings: FetchSettings, deadline: float) -> None:
        self.response, self.url, self.settings, self.deadline = response, url, settings, deadline
        self.headers = response.headers
        self.status = response.status
        self._window_start, self._window_bytes = time.monotonic(), 0

    def read(self, amount: int = -1) -> bytes:
        """Up to `amount` bytes (what one socket read gave: a trickle cannot hold a read for long)."""
        now = time.monotonic()
        if now >= self.deadline:
            raise FetchError(f"{self.url}: the request passed its deadline: cut off", transient=True)
        sock = getattr(getattr(self.response, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(max(0.05, min(self.settings.read_timeout, self.deadline - now)))
        try:
            # Raw bytes: what the catalog's sha256 covers, and no decompression a server could turn into a bomb.
            block = self.response.read1(amount if amount and amount > 0 else 1024 * 1024, decode_content=False)
        except (Urllib3Error, OSError) as exc:
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
        _discard(self.response)

    def __enter__(self) -> Body:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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

    def open(self, url: str, offset: int = 0, deadline: float | None = None) -> Body:
        """The body of `url` from byte `offset` (a Range request), following same-origin redirects."""
        deadline = deadline if deadline is not None else time.monotonic() + self.settings.request_deadline
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        headers["Accept-Encoding"] = "identity"
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            check_scheme(current, self.settings)
            if origin(current) != self.origin:
                raise FetchError(
                    f"{url}: redirected to {current}, outside the catalog's origin "
                    f"{self.origin[0]}://{self.origin[1]}:{self.origin[2]}: refused"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError(f"{url}: the request passed its deadline", transient=True)
            timeout = urllib3.Timeout(
                connect=min(self.settings.connect_timeout, remaining), read=min(self.settings.read_timeout, remaining)
            )
            try:
                response = self.pool.request(
                    "GET", current, headers=headers, redirect=False, preload_content=False, timeout=timeout
                )
            except (Urllib3Error, OSError) as exc:
                raise FetchError(f"{current}: {readable(exc)}", transient=True) from None
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location", "")
                _discard(response)
                if not location:
                    raise FetchError(f"{current}: HTTP {response.status} redirect without a Location")
                current = urljoin(current, location)
                continue
            if response.status not in (200, 206):
                wait = retry_after(response.headers.get("Retry-After"))
                _discard(response)
                transient = response.status in TRANSIENT_STATUS
                raise FetchError(
                    f"{current}: HTTP {response.status} {response.reason or ''}".rstrip()
                    + (" (not found on the mirror)" if response.status == 404 else ""),
                    transient=transient,
                    retry_after=wait,
                )
            return Body(response, current, self.settings, deadline)
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects: refused")
