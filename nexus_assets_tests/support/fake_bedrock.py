"""A local stand-in for Bedrock's InvokeModel with Titan Text Embeddings V2, for tests and benchmarks.

moto's bedrock-runtime answers every `invoke_model` with `{}`, so this small HTTP server on loopback
answers `POST /model/{modelId}/invoke` the way the service does for `amazon.titan-embed-text-v2:0`:
request validation (inputText, dimensions 1024/512/256, normalize, embeddingTypes), the response
shape (`embedding`, `inputTextTokenCount`, `embeddingsByType`) and the service's error signalling
(status code plus `x-amzn-ErrorType`, which botocore's rest-json parser reads). Vectors are
deterministic: drawn from a generator seeded by the text's sha256, so the same text always gives
the same vector. Latency, throttling (HTTP 429 ThrottlingException) and 5xx can be injected, and the
server counts requests, tokens and the most requests it saw in flight at once.

boto3 reaches it through `endpoint_url`; request signatures are not checked.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import numpy as np

TITAN_V2 = "amazon.titan-embed-text-v2:0"
DIMENSIONS = (1024, 512, 256)
MAX_CHARS = 50_000
MAX_TOKENS = 8_192
_PATH = re.compile(r"^/model/(?P<model>[^/]+)/invoke$")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def fake_token_count(text: str) -> int:
    """The fake's token count: words and punctuation marks (the real tokenizer is not public)."""
    return len(_TOKEN.findall(text))


def fake_vector(text: str, dims: int, normalize: bool = True) -> np.ndarray:
    """The vector the fake returns for `text`: the same text always gives the same vector."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    vector = np.random.default_rng(seed).standard_normal(dims).astype(np.float32)
    if normalize:
        vector /= np.linalg.norm(vector)
    else:
        vector *= 3.0  # like the service, an unnormalised vector is not unit length
    return vector


class FakeBedrock:
    """Start with `with FakeBedrock() as fake:`; `fake.endpoint_url` goes to boto3."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.requests: list[dict] = []  # every well-formed request body, in arrival order
        self.model_ids: list[str] = []
        self.tokens_reported = 0  # sum of inputTextTokenCount over successful responses
        self.throttled = 0
        self.failed = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._throttle_next = 0
        self._fail_next: list[int] = []
        self._fail_after: int | None = None
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with fake._lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    if fake.latency_s:
                        time.sleep(fake.latency_s)
                    status, payload, error_type = fake._answer(self.path, body)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                if error_type:
                    self.send_header("x-amzn-ErrorType", f"{error_type}:http://internal.amazon.com/coral/")
                else:
                    self.send_header("X-Amzn-Bedrock-Input-Token-Count", str(payload["inputTextTokenCount"]))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def throttle_next(self, count: int) -> None:
        """Answer the next `count` requests with HTTP 429 ThrottlingException."""
        with self._lock:
            self._throttle_next += count

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` requests with a 5xx (500 InternalServerException, else ServiceUnavailable)."""
        with self._lock:
            self._fail_next.extend([status] * count)

    def fail_after(self, answered: int) -> None:
        """Once `answered` requests have succeeded, answer every later one with HTTP 500 (an outage)."""
        with self._lock:
            self._fail_after = answered

    def _answer(self, path: str, body: bytes) -> tuple[int, dict, str | None]:
        with self._lock:
            if self._fail_after is not None and len(self.requests) >= self._fail_after:
                self.failed += 1
                return 500, {"message": "The service is temporarily unavailable."}, "InternalServerException"
            if self._throttle_next:
                self._throttle_next -= 1
                self.throttled += 1
                return 429, {"message": "Too many requests, please wait before trying again."}, "ThrottlingException"
            if self._fail_next:
                status = self._fail_next.pop(0)
                self.failed += 1
                kind = "InternalServerException" if status == 500 else "ServiceUnavailableException"
                return status, {"message": "The service is temporarily unavailable."}, kind
        match = _PATH.match(path)
        if not match:
            return 404, {"message": f"no route for {path}"}, "UnknownOperationException"
        model_id = unquote(match["model"])
        if model_id != TITAN_V2:
            return 400, {"message": "The provided model identifier is invalid."}, "ValidationException"
        try:
            request = json.loads(body)
        except ValueError:
            return 400, {"message": "Malformed input request: body is not JSON"}, "ValidationException"
        problem = _invalid(request)
        if problem:
            return (
                400,
                {"message": f"Malformed input request: {problem}, please reformat your input and try again."},
                "ValidationException",
            )
        text = request["inputText"]
        tokens = fake_token_count(text)
        if tokens > MAX_TOKENS:
            return (
                400,
                {
                    "message": f"400 Bad Request: Too many input tokens. Max input tokens: {MAX_TOKENS}, "
                    f"request input token count: {tokens}"
                },
                "ValidationException",
            )
        vector = fake_vector(text, request.get("dimensions", 1024), request.get("normalize", True))
        floats = [float(x) for x in vector]
        by_type: dict[str, list] = {}
        types = request.get("embeddingTypes", ["float"])
        if "float" in types:
            by_type["float"] = floats
        if "binary" in types:
            by_type["binary"] = [int(x > 0) for x in vector]
        with self._lock:
            self.requests.append(request)
            self.model_ids.append(model_id)
            self.tokens_reported += tokens
        return 200, {"embedding": floats, "inputTextTokenCount": tokens, "embeddingsByType": by_type}, None

    def start(self) -> FakeBedrock:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeBedrock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _invalid(request: object) -> str | None:
    """Why a Titan V2 request body is invalid, like the service's ValidationException, or None."""
    if not isinstance(request, dict):
        return "body must be a JSON object"
    unknown = set(request) - {"inputText", "dimensions", "normalize", "embeddingTypes"}
    if unknown:
        return f"extraneous key [{sorted(unknown)[0]}] is not permitted"
    text = request.get("inputText")
    if not isinstance(text, str) or not text:
        return "inputText: expected a non-empty string"
    if len(text) > MAX_CHARS:
        return f"inputText: expected maxLength: {MAX_CHARS}, actual: {len(text)}"
    if "dimensions" in request and request["dimensions"] not in DIMENSIONS:
        return f"dimensions: {request['dimensions']} is not a valid enum value"
    if "normalize" in request and not isinstance(request["normalize"], bool):
        return "normalize: expected type: Boolean"
    types = request.get("embeddingTypes", ["float"])
    if not isinstance(types, list) or not types or set(types) - {"float", "binary"}:
        return "embeddingTypes: expected a list of 'float' and/or 'binary'"
    return None
