"""A fault-injecting HTTP proxy on loopback, between boto3 and a moto server.

Point `NEXUS_AWS_ENDPOINT_URL` at `proxy.endpoint_url` and every S3 and DynamoDB request of aws mode
passes through here. By default each request is forwarded to moto unchanged; rules make the proxy
answer some of them itself, the way the services signal trouble:

    proxy.inject("s3", "slowdown", count=3)                 # the next 3 S3 requests: 503 SlowDown
    proxy.inject("dynamodb", "throughput", seconds=2.0)     # 400 ProvisionedThroughputExceeded for 2 s
    proxy.inject("s3", "internal", match=lambda r: r.method == "PUT")   # every PUT until cleared
    proxy.clear()

Faults: S3 `slowdown` (503 SlowDown), `internal` (500 InternalError); DynamoDB `throughput` (400
ProvisionedThroughputExceededException), `throttling` (400 ThrottlingException), `internal` (500
InternalServerError). The service is told from the request: DynamoDB's `X-Amz-Target` header
(`DynamoDB_20120810.<Operation>`), else the SigV4 credential scope of the Authorization header
(`.../<region>/<service>/aws4_request`), else the path (S3 path-style). `before(match, action)` runs
`action(request)` once, before the first matching request is forwarded (to stage a racing writer at
an exact moment).

The proxy records every request (service, operation, table or key, the SDK's attempt number and
most attempts from `amz-sdk-request`, status, whether it was injected, time), so tests count retries
from what reached the wire. Header values are never recorded: the Authorization header carries the access key id.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# Status, error code, message and body format of each fault, per service.
FAULTS: dict[str, dict[str, tuple[int, str, str]]] = {
    "s3": {
        "slowdown": (503, "SlowDown", "Please reduce your request rate."),
        "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
    },
    "dynamodb": {
        "throughput": (
            400,
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
        ),
        "throttling": (400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
        "internal": (500, "InternalServerError", "Internal server error"),
    },
}
_DYNAMO_TYPE_PREFIX = {
    "ThrottlingException": "com.amazon.coral.availability#",
}
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/(?P<service>[^/]+)/aws4_request")
_ATTEMPT = re.compile(r"attempt=(?P<attempt>\d+)")
_MAX = re.compile(r"max=(?P<max>\d+)")
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
}


@dataclass
class Request:
    """What the proxy saw of one request (no header values: they may carry credentials)."""

    service: str
    operation: str
    method: str
    path: str
    query: dict[str, list[str]]
    attempt: int  # the SDK's attempt number (1 = first try), 0 when the header is absent
    sdk_max: int = 0  # the most attempts the SDK will make (amz-sdk-request `max=`), 0 when absent
    table: str = ""  # DynamoDB TableName
    bucket: str = ""
    key: str = ""
    body: bytes = b""
    status: int = 0
    injected: str = ""  # the fault's error code when the proxy answered itself
    at: float = 0.0  # time.monotonic() on arrival

    def item(self) -> dict[str, Any]:
        """A DynamoDB request's Item (PutItem), decoded from the JSON body; {} otherwise."""
        try:
            return json.loads(self.body or b"{}").get("Item", {})
        except ValueError:
            return {}


@dataclass
class Rule:
    service: str
    fault: str
    remaining: int | None = None  # answer the next N matching requests
    until: float | None = None  # ... or every matching request until this time.monotonic()
    match: Callable[[Request], bool] | None = None
    injected: int = 0
    requests: list[Request] = field(default_factory=list)  # the requests this rule answered

    def applies(self, request: Request, now: float) -> bool:
        if request.service != self.service or (self.match is not None and not self.match(request)):
            return False
        if self.remaining is not None:
            return self.remaining > 0
        return self.until is None or now < self.until


@dataclass
class _Hook:
    match: Callable[[Request], bool]
    action: Callable[[Request], None]
    fired: bool = False


def _s3_operation(method: str, key: str, query: dict[str, list[str]]) -> str:
    if "uploads" in query:
        return "CreateMultipartUpload"
    if "uploadId" in query:
        return {"PUT": "UploadPart", "POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload"}.get(
            method, "ListParts"
        )
    if not key:
        if method == "GET":
            return (
                "ListObjectsV2"
                if query.get("list-type") == ["2"]
                else ("ListObjectVersions" if "versions" in query else "GetBucket")
            )
        return {"PUT": "PutBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket", "POST": "PostBucket"}[method]
    return {
        "PUT": "PutObject",
        "GET": "GetObject",
        "HEAD": "HeadObject",
        "DELETE": "DeleteObject",
        "POST": "PostObject",
    }.get(method, method)


class FaultProxy:
    """Start with `with FaultProxy(upstream) as proxy:`; `proxy.endpoint_url` goes to boto3."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.requests: list[Request] = []
        self._rules: list[Rule] = []
        self._hooks: list[_Hook] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle  # the http.server API

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="fault-proxy")

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- control -------------------------------------------------------------------------------
    def inject(
        self,
        service: str,
        fault: str,
        *,
        count: int | None = None,
        seconds: float | None = None,
        match: Callable[[Request], bool] | None = None,
    ) -> Rule:
        """Answer matching requests of `service` with `fault`: the next `count`, or for `seconds`
        from now, or (neither given) until `clear()`."""
        if fault not in FAULTS.get(service, {}):
            raise ValueError(f"no fault {fault!r} for {service!r}: choose from {sorted(FAULTS.get(service, {}))}")
        rule = Rule(
            service,
            fault,
            remaining=count,
            match=match,
            until=time.monotonic() + seconds if seconds is not None else None,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def before(self, match: Callable[[Request], bool], action: Callable[[Request], None]) -> None:
        """Run `action` once, before the first request matching `match` is forwarded."""
        with self._lock:
            self._hooks.append(_Hook(match, action))

    def clear(self) -> None:
        """Forward everything again (rules and pending hooks dropped; the request log kept)."""
        with self._lock:
            self._rules.clear()
            self._hooks.clear()

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def seen(self, predicate: Callable[[Request], bool] | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if predicate is None or predicate(r)]

    def next_try(self, request: Request) -> Request | None:
        """The first later request for the same operation and target: the client's retry of `request`."""
        same = (request.service, request.operation, request.table, request.bucket, request.key)
        with self._lock:
            later = self.requests[self.requests.index(request) + 1 :]
        return next((r for r in later if (r.service, r.operation, r.table, r.bucket, r.key) == same), None)

    # --- serving -------------------------------------------------------------------------------
    def _classify(self, handler: BaseHTTPRequestHandler, body: bytes) -> Request:
        split = urlsplit(handler.path)
        query = parse_qs(split.query, keep_blank_values=True)
        target = handler.headers.get("X-Amz-Target", "")
        scope = _SCOPE.search(handler.headers.get("Authorization", ""))
        sdk_request = handler.headers.get("amz-sdk-request", "")
        attempt_match, max_match = _ATTEMPT.search(sdk_request), _MAX.search(sdk_request)
        attempt = int(attempt_match["attempt"]) if attempt_match else 0
        if target.startswith("DynamoDB_"):
            service, operation = "dynamodb", target.split(".", 1)[-1]
        elif target:
            service, operation = target.split(".", 1)[0].lower(), target.split(".", 1)[-1]
        else:
            service, operation = (scope["service"] if scope else "s3"), ""
        request = Request(
            service,
            operation,
            handler.command,
            split.path,
            query,
            attempt,
            sdk_max=int(max_match["max"]) if max_match else 0,
            body=body,
            at=time.monotonic(),
        )
        if service == "dynamodb":
            try:
                request.table = json.loads(body or b"{}").get("TableName", "")
            except ValueError:
                pass
        elif service == "s3":
            bucket, _, key = unquote(split.path).lstrip("/").partition("/")
            request.bucket, request.key = bucket, key
            request.operation = _s3_operation(handler.command, key, query)
        return request

    def _fault_for(self, request: Request) -> Rule | None:
        now = time.monotonic()
        with self._lock:
            self.requests.append(request)
            for rule in self._rules:
                if rule.applies(request, now):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    rule.injected += 1
                    rule.requests.append(request)
                    return rule
            hooks = [h for h in self._hooks if not h.fired and h.match(request)]
            for hook in hooks:
                hook.fired = True
        for hook in hooks:
            hook.action(request)
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            body = handler.rfile.read(length)
        elif handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = _read_chunked(handler.rfile)
        else:
            body = b""
        request = self._classify(handler, body)
        rule = self._fault_for(request)
        if rule is not None:
            status, code, message = FAULTS[rule.service][rule.fault]
            request.status, request.injected = status, code
            self._answer_fault(handler, rule.service, status, code, message)
            return
        status, headers, payload = self._forward(handler, body)
        request.status = status
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                handler.send_header(name, value)
        if handler.command == "HEAD":
            length_header = next((v for n, v in headers if n.lower() == "content-length"), None)
            if length_header is not None:
                handler.send_header("Content-Length", length_header)
        else:
            handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if handler.command != "HEAD" and payload:
            handler.wfile.write(payload)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        for attempt in range(2):  # a pooled upstream connection may have been closed by moto: reconnect once
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = http.client.HTTPConnection(*self.upstream, timeout=120)
            try:
                conn.request(handler.command, handler.path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                return response.status, response.getheaders(), payload
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _answer_fault(handler: BaseHTTPRequestHandler, service: str, status: int, code: str, message: str) -> None:
        request_id = uuid.uuid4().hex.upper()[:16]
        if service == "dynamodb":
            prefix = _DYNAMO_TYPE_PREFIX.get(code, "com.amazonaws.dynamodb.v20120810#")
            payload = json.dumps({"__type": prefix + code, "message": message}).encode()
            content_type = "application/x-amz-json-1.0"
        else:
            payload = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}'
                f"</Message><RequestId>{request_id}</RequestId></Error>"
            ).encode()
            content_type = "application/xml"
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("x-amzn-RequestId", request_id)
        handler.send_header("x-amz-request-id", request_id)
        if handler.command == "HEAD":  # a HEAD answer has no body: the code travels in the status only
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


def _read_chunked(stream: Any) -> bytes:
    data = bytearray()
    while True:
        size = int(stream.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return bytes(data)
        data += stream.read(size)
        stream.readline()
