"""The `bedrock` embedding back end: Amazon Titan Text Embeddings V2 through bedrock-runtime InvokeModel.

Titan V2 embeds one text per request, so throughput comes from concurrency: the seed system sent
one request at a time (8-12 chunks/s); here a bounded thread pool (default 8) keeps that many
requests in flight on one shared boto3 client (clients are thread-safe; its connection pool is
sized to the thread pool). benchmarks/bench_bedrock.py measures the gain against a fake endpoint.

Retries are botocore's `adaptive` mode: throttling (HTTP 429 ThrottlingException) and 5xx are
retried with exponential backoff and jitter, and after a throttle the client also slows its own
send rate (a token bucket shared by all threads), so eight threads do not keep hammering a
throttled account. When a request still fails, the remaining requests are cancelled and
`BedrockUnavailableError` is raised; `embedding.embed_partition` then falls back to the local
model for the whole partition when so configured.

Inputs over the model's limit: Titan V2 takes at most 8,192 tokens (and 50,000 characters) per
input, and its tokenizer is not public, so the rule is by characters: a text longer than
`max_input_chars` (default 20,000, i.e. 8,192 tokens even at 2.4 characters per token, well below
the ~4-5 of prose) is split at whitespace into pieces of at most that many characters; each piece
is embedded and the text's vector is the token-weighted mean of the pieces' vectors (renormalised
when `normalize`). Every piece's tokens are billed and counted, and the number of split inputs is
reported in `usage.split_inputs`. The pipeline's chunks (800 characters) never come near the limit.

Endpoint and region are given by the caller (the resource, from NEXUS_BEDROCK_ENDPOINT_URL and
AWS_REGION in the settings); credentials from boto3's standard chain, never from here.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nexus_assets.lib.index.embedding import (
    Embedder,
    EmbedderUnavailableError,
    EmbeddingUsage,
    ProgressFn,
    default_embedder,
)

TITAN_TEXT_V2 = "amazon.titan-embed-text-v2:0"
TITAN_V2_DIMENSIONS = (1024, 512, 256)
TITAN_V2_MAX_TOKENS = 8192
TITAN_V2_MAX_CHARS = 50_000
DEFAULT_MAX_INPUT_CHARS = 20_000
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_ATTEMPTS = 8  # calls per request: the first try + 7 retries
MIN_CHARS_PER_TOKEN = 2.4  # for the window estimate: what a chunk capped to 8,192 tokens can hold at worst

# USD per 1,000 input tokens, On-Demand. Titan Text Embeddings V2: $0.00002 per 1,000 input tokens
# ($0.02 per million), the list price on https://aws.amazon.com/bedrock/pricing/ (US East, N. Virginia)
# as read on 2026-11-22; it has not changed since the model's launch in April 2024. Override it
# per deployment with EmbedderResource.price_per_1k_tokens.
DEFAULT_PRICES_PER_1K_TOKENS: dict[str, float] = {TITAN_TEXT_V2: 0.00002}


class BedrockUnavailableError(EmbedderUnavailableError):
    """Bedrock could not embed: endpoint unreachable, credentials or access refused, retries exhausted."""


def split_text(text: str, max_chars: int) -> list[str]:
    """`text` in pieces of at most `max_chars` characters, cut at the last whitespace where there is one."""
    if len(text) <= max_chars:
        return [text]
    pieces = []
    rest = text
    while len(rest) > max_chars:
        cut = rest.rfind(" ", max_chars // 2, max_chars + 1)
        cut = cut if cut > 0 else max_chars
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return [p for p in pieces if p]


@dataclass
class BedrockTitanEmbedder:
    """Titan Text Embeddings V2 over bedrock-runtime; vectors are float32, unit length when `normalize`."""

    model_id: str = TITAN_TEXT_V2
    dims: int = 1024
    normalize: bool = True
    concurrency: int = DEFAULT_CONCURRENCY
    region: str = ""  # empty: us-east-1 (the resource passes the settings' region)
    endpoint_url: str = ""  # empty: AWS's public endpoint (the resource passes the settings' one)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_mode: str = "adaptive"
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    client: Any = None  # a bedrock-runtime client; built on first use when None
    backend: str = field(default="bedrock", init=False)
    precision: str = field(default="fp32", init=False)  # the service returns float32 vectors
    fallback_reason: str = field(default="", init=False)
    usage: EmbeddingUsage = field(default_factory=EmbeddingUsage, init=False)

    def __post_init__(self) -> None:
        if self.model_id == TITAN_TEXT_V2 and self.dims not in TITAN_V2_DIMENSIONS:
            raise ValueError(
                f"{self.model_id} embeds into {', '.join(map(str, TITAN_V2_DIMENSIONS))} dims, not {self.dims}"
            )
        if self.concurrency < 1:
            raise ValueError(f"Bedrock concurrency must be at least 1, not {self.concurrency}")
        if not 0 < self.max_input_chars <= TITAN_V2_MAX_CHARS:
            raise ValueError(f"max_input_chars must be in 1..{TITAN_V2_MAX_CHARS}, not {self.max_input_chars}")
        self.max_tokens = TITAN_V2_MAX_TOKENS
        self._client_lock = threading.Lock()

    @property
    def cache_namespace(self) -> str:
        """Model, dims, normalisation and the split rule decide a vector's bytes; the back end never shares."""
        return f"bedrock|{self.model_id}|dims={self.dims}|normalize={self.normalize}|split={self.max_input_chars}"

    def count_tokens(self, text: str) -> int:
        """An upper estimate (the tokenizer is not public): used only to cap chunks to the window."""
        return math.ceil(len(text) / MIN_CHARS_PER_TOKEN)

    def request_body(self, text: str) -> dict[str, Any]:
        return {"inputText": text, "dimensions": self.dims, "normalize": self.normalize}

    def load(self) -> None:
        """Build the client once (cheap, no network): one client serves every thread."""
        with self._client_lock:
            if self.client is not None:
                return
            import boto3
            from botocore.config import Config

            # `total_max_attempts` counts the first try; botocore's `max_attempts` key counts retries only
            # (8 there would mean 9 calls), as in aws_retry.RetrySettings.config().
            config = Config(
                retries={"total_max_attempts": self.max_attempts, "mode": self.retry_mode},
                max_pool_connections=max(self.concurrency, 10),
                connect_timeout=self.connect_timeout_s,
                read_timeout=self.read_timeout_s,
            )
            region = self.region or "us-east-1"
            self.client = boto3.client(
                "bedrock-runtime",
                region_name=region,
                endpoint_url=self.endpoint_url or None,
                config=config,
            )

    def _invoke(self, text: str, stop: threading.Event) -> tuple[np.ndarray, int, int]:
        """(vector, input tokens, retries) of one text; skipped once another request has failed."""
        if stop.is_set():
            raise BedrockUnavailableError("cancelled: another request failed")
        response = self.client.invoke_model(
            modelId=self.model_id,
            body=json.dumps(self.request_body(text)),
            contentType="application/json",
            accept="application/json",
        )
        payload = json.loads(response["body"].read())
        vector = np.asarray(payload["embedding"], dtype=np.float32)
        if vector.shape != (self.dims,):
            raise BedrockUnavailableError(f"{self.model_id} returned {vector.shape[0]} dims, expected {self.dims}")
        retries = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        return vector, int(payload.get("inputTextTokenCount", 0)), retries

    def embed(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        """Vectors of `texts` in order, `concurrency` requests at a time; all of them or an error."""
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        if not texts:
            return out
        self.load()
        pieces = [split_text(t, self.max_input_chars) for t in texts]
        jobs = [(i, piece) for i, parts in enumerate(pieces) for piece in parts]
        results: dict[int, list[tuple[np.ndarray, int]]] = {i: [] for i in range(len(texts))}
        stop = threading.Event()
        usage = EmbeddingUsage(split_inputs=sum(len(p) > 1 for p in pieces))
        done_texts, next_report = 0, max(len(texts) // 10, 1)
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs)), thread_name_prefix="bedrock") as pool:
            futures: dict[Future, int] = {pool.submit(self._invoke, piece, stop): i for i, piece in jobs}
            try:
                for future in as_completed(futures):
                    vector, tokens, retries = future.result()  # the first failure ends the partition's requests
                    index = futures[future]
                    results[index].append((vector, tokens))
                    usage = usage.plus(EmbeddingUsage(tokens, 1, retries))
                    if len(results[index]) == len(pieces[index]):
                        done_texts += 1
                        if progress and (done_texts >= next_report or done_texts == len(texts)):
                            progress(done_texts, len(texts))
                            next_report = done_texts + max(len(texts) // 10, 1)
            except Exception as exc:
                stop.set()
                for future in futures:
                    future.cancel()
                raise self._unavailable(exc) from exc
            finally:
                self.usage = self.usage.plus(usage)  # tokens of answered requests are billed even on failure
        for i, parts in results.items():
            out[i] = parts[0][0] if len(parts) == 1 else self._pool(parts)
        return out

    def _pool(self, parts: list[tuple[np.ndarray, int]]) -> np.ndarray:
        """One vector for a split text: the token-weighted mean of its pieces (renormalised when asked)."""
        weights = np.array([max(tokens, 1) for _, tokens in parts], dtype=np.float32)
        vector = np.average(np.vstack([v for v, _ in parts]), axis=0, weights=weights).astype(np.float32)
        if self.normalize:
            vector /= max(float(np.linalg.norm(vector)), 1e-12)
        return vector

    def _unavailable(self, exc: Exception) -> BedrockUnavailableError:
        if isinstance(exc, BedrockUnavailableError):
            return exc
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        where = self.endpoint_url or "the public endpoint"
        kind = f"{code}: " if code else f"{type(exc).__name__}: "
        return BedrockUnavailableError(
            f"InvokeModel {self.model_id} at {where} failed after up to {self.max_attempts} attempts: {kind}{exc}"
        )


def query_embedder(
    model_id: str | None,
    dims: int | None,
    *,
    region: str = "",
    endpoint_url: str = "",
    cache_dir: Path | None = None,
) -> Embedder:
    """The back end that embeds queries for a collection of `model_id`: Titan through Bedrock (at `region`
    and `endpoint_url`), else the local model (its engines cached under `cache_dir`)."""
    if model_id == TITAN_TEXT_V2 and dims in TITAN_V2_DIMENSIONS:
        return BedrockTitanEmbedder(model_id=model_id, dims=dims, region=region, endpoint_url=endpoint_url)
    return default_embedder(cache_dir=cache_dir)
