"""How aws mode talks to S3 and DynamoDB when they throttle, fail or go away: one retry policy, one error.

Every boto3 client of aws mode is made by `AwsSettings.client()` with `RetrySettings.config()`:

- botocore **standard** retries (`NEXUS_AWS_RETRY_MODE`, default `standard`) with
  `NEXUS_AWS_MAX_ATTEMPTS` attempts per call (default 8): throttling (S3 `503 SlowDown`, DynamoDB
  `ProvisionedThroughputExceededException`, `ThrottlingException`), 5xx, timeouts and dropped
  connections are retried with exponential backoff and full jitter (botocore: a delay of up to
  1 s × 2^(attempt-1) after a throttle, a twentieth of that after a 5xx, never more than 20 s), and
  a per-client retry quota stops retry storms. Standard rather than adaptive: clients here are made
  per store and live for a few calls, so adaptive's client-side rate limiter would rarely learn
  anything, and it can delay calls without counting them as attempts.
- connect timeout `NEXUS_AWS_CONNECT_TIMEOUT` (default 10 s) and read timeout
  `NEXUS_AWS_READ_TIMEOUT` (default 60 s): a stalled endpoint becomes a retried timeout, not a hung run.

8 attempts ride out about a minute of throttling per call (the delays add up to ~35 s on average,
71 s at most); the assets' Dagster `RetryPolicy` then retries the whole step (NEXUS_STEP_RETRIES,
default 3, NEXUS_STEP_RETRY_DELAY, default 1 s, doubling). A call that still fails is an outage:
`guarded()` turns the last botocore error into `AwsUnavailableError`, which names the service,
operation and target, says how many attempts were made, and that it was an outage after retries.
Non-retryable answers (a conditional check that failed, a missing key or table, access denied)
pass through unchanged: callers act on them.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from nexus_assets.lib.core.numbers import parse_number

RETRY_ENV = {
    "mode": "NEXUS_AWS_RETRY_MODE",
    "max_attempts": "NEXUS_AWS_MAX_ATTEMPTS",
    "connect_timeout": "NEXUS_AWS_CONNECT_TIMEOUT",
    "read_timeout": "NEXUS_AWS_READ_TIMEOUT",
}
SERVICE_NAMES = {
    "s3": "S3",
    "dynamodb": "DynamoDB",
    "secretsmanager": "Secrets Manager",
    "cloudfront": "CloudFront",
    "sqs": "SQS",
}
# What botocore itself retries (botocore.retries.standard): throttling codes, transient codes, 5xx.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


@dataclass(frozen=True)
class RetrySettings:
    mode: str = "standard"
    max_attempts: int = 8
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RetrySettings:
        """Parsed by `nexus_assets.settings.Settings.from_env` (its `retry`)."""
        env = environ

        def get(name: str) -> str:
            return (env.get(RETRY_ENV[name]) or "").strip()

        for name, kind in (("max_attempts", int), ("connect_timeout", float), ("read_timeout", float)):
            if get(name):
                parse_number(get(name), RETRY_ENV[name], kind)  # ASCII, finite, named
        mode = get("mode").lower() or cls.mode
        if mode not in ("standard", "adaptive", "legacy"):
            raise ValueError(f"{RETRY_ENV['mode']}={mode!r}: use standard (default), adaptive or legacy")
        try:
            settings = cls(
                mode=mode,
                max_attempts=int(get("max_attempts") or cls.max_attempts),
                connect_timeout=float(get("connect_timeout") or cls.connect_timeout),
                read_timeout=float(get("read_timeout") or cls.read_timeout),
            )
        except ValueError as exc:
            raise ValueError(f"aws retry settings ({', '.join(RETRY_ENV.values())}): {exc}") from None
        if settings.max_attempts < 1:
            raise ValueError(f"{RETRY_ENV['max_attempts']} must be at least 1, got {settings.max_attempts}")
        for name in ("connect_timeout", "read_timeout"):  # nan or inf: a socket that never times out
            value = getattr(settings, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{RETRY_ENV[name]}={get(name)!r} must be a positive, finite number of seconds")
        return settings

    def config(self) -> Config:
        """The botocore configuration of every aws-mode client. `total_max_attempts` counts the first try
        (botocore's `max_attempts` key would count retries only: 8 there means 9 calls)."""
        return Config(
            retries={"mode": self.mode, "total_max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            tcp_keepalive=True,
        )

    def describe(self) -> str:
        return f"{self.mode} retries, {RETRY_ENV['max_attempts']}={self.max_attempts}"


class AwsUnavailableError(RuntimeError):
    """A call to an AWS service still failed after every retry: an outage or throttling beyond the budget."""

    def __init__(
        self, service: str, operation: str, target: str, attempts: int | None, detail: str, retry: RetrySettings
    ) -> None:
        self.service, self.operation, self.target, self.attempts, self.detail = (
            service,
            operation,
            target,
            attempts,
            detail,
        )
        name = SERVICE_NAMES.get(service, service)
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else "after retries"
        where = f" on {target}" if target else ""
        super().__init__(
            f"{name} outage: {operation}{where} still failed {tries} with backoff ({detail}). {name} is unavailable "
            f"or throttling beyond the retry budget ({retry.describe()}); rerun when it recovers: what was already "
            "published stays as it was"
        )


def _camel(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


def _target(service: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    if service == "s3":
        if method in ("upload_file", "download_file") and len(args) >= 3:
            bucket, key = (args[1], args[2]) if method == "upload_file" else (args[0], args[1])
            return f"s3://{bucket}/{key}"
        bucket, key = kwargs.get("Bucket", ""), kwargs.get("Key", kwargs.get("Prefix", ""))
        return f"s3://{bucket}/{key}" if bucket else ""
    if service == "dynamodb":
        table = kwargs.get("TableName", "")
        return f"table {table}" if table else ""
    return str(kwargs.get("SecretId", "")) if service == "secretsmanager" else ""


def _client_error_in(exc: BaseException) -> ClientError | None:
    """The ClientError behind `exc` (itself, or what an S3 transfer wrapped)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ClientError):
            return current
        last = getattr(current, "last_exception", None)  # s3transfer / boto3 RetriesExceededError
        current = last if isinstance(last, BaseException) else (current.__cause__ or current.__context__)
    return None


def _connection_error_in(exc: BaseException) -> BaseException | None:
    current: BaseException | None = exc
    for _ in range(5):
        if current is None:
            return None
        if isinstance(current, ConnectionError | HTTPClientError):
            return current
        last = getattr(current, "last_exception", None)
        current = last if isinstance(last, BaseException) else (current.__cause__ or current.__context__)
    return None


def translate(
    exc: BaseException, service: str, operation: str, target: str, retry: RetrySettings
) -> AwsUnavailableError | None:
    """The outage error for `exc` when it is a retryable failure that outlived the retries, else None."""
    error = _client_error_in(exc)
    if error is not None:
        response = error.response or {}
        code = str(response.get("Error", {}).get("Code", ""))
        meta = response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode") or 0)
        if code not in THROTTLING_CODES and code not in TRANSIENT_CODES and status < 500:
            return None
        attempts = int(meta["RetryAttempts"]) + 1 if "RetryAttempts" in meta else None
        message = str(response.get("Error", {}).get("Message", "")).strip()
        detail = f"{status or '?'} {code}" + (f": {message}" if message else "")
        return AwsUnavailableError(service, error.operation_name or operation, target, attempts, detail, retry)
    connection = _connection_error_in(exc)
    if connection is not None:
        detail = re.sub(r"\s+", " ", f"{type(connection).__name__}: {connection}").strip()
        return AwsUnavailableError(service, operation, target, None, detail, retry)
    return None


@contextmanager
def guarded(service: str, operation: str, target: str = "", retry: RetrySettings | None = None) -> Iterator[None]:
    """Turn an AWS failure that outlived botocore's retries into `AwsUnavailableError` (others pass through)."""
    try:
        yield
    except AwsUnavailableError:
        raise
    except Exception as exc:
        outage = translate(exc, service, operation, target, retry or RetrySettings())
        if outage is None:
            raise
        raise outage from exc


class GuardedClient:
    """A boto3 client whose calls (paginated ones and S3 transfers included) report outages as
    `AwsUnavailableError`; everything else is the client itself."""

    def __init__(self, client: Any, service: str, retry: RetrySettings) -> None:
        self._client, self._service, self._retry = client, service, retry

    @property
    def unwrapped(self) -> Any:
        return self._client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name.startswith("_") or name in ("meta", "exceptions") or not callable(attr):
            return attr
        service, retry = self._service, self._retry

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            with guarded(service, _camel(name), _target(service, name, args, kwargs), retry):
                result = attr(*args, **kwargs)
            if name == "get_paginator":
                return _GuardedPaginator(
                    result, service, _camel(str(args[0] if args else kwargs["operation_name"])), retry
                )
            return result

        return call


class _GuardedPaginator:
    def __init__(self, paginator: Any, service: str, operation: str, retry: RetrySettings) -> None:
        self._paginator, self._service, self._operation, self._retry = paginator, service, operation, retry

    def paginate(self, **kwargs: Any) -> Iterator[Any]:
        target = _target(self._service, self._operation, (), kwargs)
        pages = iter(self._paginator.paginate(**kwargs))
        while True:
            with guarded(self._service, self._operation, target, self._retry):
                try:
                    page = next(pages)
                except StopIteration:
                    return
            yield page


def guard_client(client: Any, service: str, retry: RetrySettings) -> GuardedClient:
    return client if isinstance(client, GuardedClient) else GuardedClient(client, service, retry)


def with_outage_errors(service: str, operation: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator form of `guarded` for code that calls boto3 resources (the job table)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            with guarded(service, operation, f"table {getattr(self, 'table', '')}".strip()):
                return fn(self, *args, **kwargs)

        return wrapper

    return decorate
