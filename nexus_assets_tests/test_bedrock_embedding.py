"""The Bedrock Titan V2 back end against the loopback fake, the whole-partition fallback and cost tracking."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from nexus_assets.defs.resources import EmbedderResource
from nexus_assets.lib.core.caches import VectorCache
from nexus_assets.lib.core.job_tracking import JobRecord, summarize
from nexus_assets.lib.index.bedrock_embedding import (
    DEFAULT_PRICES_PER_1K_TOKENS,
    TITAN_TEXT_V2,
    BedrockTitanEmbedder,
    BedrockUnavailableError,
    query_embedder,
    split_text,
)
from nexus_assets.lib.index.embedding import content_key, embed_partition, embedding_cost
from nexus_assets.settings import Settings
from nexus_assets_tests.support.fake_bedrock import fake_token_count, fake_vector

TEXTS = [f"Bab {i}: fotosintesis mengubah energi cahaya menjadi energi kimia, langkah {i}." for i in range(12)]


def _titan(fake, **kwargs) -> BedrockTitanEmbedder:
    return BedrockTitanEmbedder(endpoint_url=fake.endpoint_url, **kwargs)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more: connections are refused


def test_requests_carry_titan_v2_bodies_and_vectors_come_back_in_order(bedrock_env) -> None:
    fake = bedrock_env
    vectors = _titan(fake, dims=512).embed(TEXTS[:5])
    assert fake.model_ids == [TITAN_TEXT_V2] * 5
    assert sorted(fake.requests, key=lambda r: r["inputText"]) == sorted(
        ({"inputText": t, "dimensions": 512, "normalize": True} for t in TEXTS[:5]), key=lambda r: r["inputText"]
    )
    assert vectors.shape == (5, 512) and vectors.dtype == np.float32
    for text, vector in zip(TEXTS[:5], vectors, strict=True):
        np.testing.assert_allclose(vector, fake_vector(text, 512), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    raw = _titan(fake, dims=256, normalize=False).embed(TEXTS[:1])
    assert fake.requests[-1] == {"inputText": TEXTS[0], "dimensions": 256, "normalize": False}
    assert abs(float(np.linalg.norm(raw[0])) - 1.0) > 0.1


def test_dimensions_outside_titan_v2_are_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="1024, 512, 256"):
        BedrockTitanEmbedder(dims=384)


def test_throttling_and_5xx_are_retried_then_succeed(bedrock_env) -> None:
    fake = bedrock_env
    fake.throttle_next(2)
    fake.fail_next(2, status=503)
    embedder = _titan(fake, concurrency=2)
    vectors = embedder.embed(TEXTS[:6])
    assert fake.throttled == 2 and fake.failed == 2
    assert embedder.usage.retries == 4 and embedder.usage.requests == 6
    for text, vector in zip(TEXTS[:6], vectors, strict=True):
        np.testing.assert_allclose(vector, fake_vector(text, 1024), rtol=1e-6)


def test_max_attempts_is_the_exact_number_of_calls_per_request(bedrock_env) -> None:
    """`max_attempts=8` (the default) is 8 calls, the first try included: not botocore's 1 + 8 retries."""
    fake = bedrock_env
    assert BedrockTitanEmbedder().max_attempts == 8
    fake.fail_next(7, status=500)  # 5xx: botocore's non-throttling backoff is short (0.05 s scale)
    embedder = _titan(fake, concurrency=1)
    embedder.embed(TEXTS[:1])
    assert (fake.failed, len(fake.requests), embedder.usage.retries) == (7, 1, 7), "the 8th call succeeds"
    fake.fail_after(len(fake.requests))  # an outage from now on: every call fails
    with pytest.raises(BedrockUnavailableError, match="after up to 8 attempts"):
        _titan(fake, concurrency=1).embed(TEXTS[1:2])
    assert fake.failed == 7 + 8, "exactly 8 calls, then the request fails"
    with pytest.raises(BedrockUnavailableError, match="after up to 3 attempts"):
        _titan(fake, concurrency=1, max_attempts=3).embed(TEXTS[2:3])
    assert fake.failed == 7 + 8 + 3


def test_requests_run_concurrently_up_to_the_pool_size(bedrock_env) -> None:
    fake = bedrock_env
    fake.latency_s = 0.05
    _titan(fake, concurrency=4).embed(TEXTS)
    assert 1 < fake.max_in_flight <= 4
    fake.max_in_flight = 0
    _titan(fake, concurrency=1).embed(TEXTS[:4])
    assert fake.max_in_flight == 1


def test_an_unreachable_endpoint_raises_unavailable_naming_it(bedrock_env) -> None:
    url = _closed_port_url()
    with pytest.raises(BedrockUnavailableError, match=f"{url}.*after up to 2 attempts"):
        BedrockTitanEmbedder(endpoint_url=url, max_attempts=2).embed(TEXTS[:3])


def test_inputs_over_the_limit_are_split_and_pooled(bedrock_env) -> None:
    fake = bedrock_env
    words = " ".join(f"kata{i}" for i in range(500))  # ~3,900 characters
    embedder = _titan(fake, max_input_chars=1000)
    [vector] = embedder.embed([words])
    pieces = split_text(words, 1000)
    assert len(pieces) == len(fake.requests) >= 4 and all(len(p) <= 1000 for p in pieces)
    assert " ".join(pieces) == words, "splitting drops or reorders nothing"
    weights = [fake_token_count(p) for p in pieces]
    expected = np.average([fake_vector(p, 1024) for p in pieces], axis=0, weights=weights)
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), rtol=1e-5, atol=1e-6)
    assert embedder.usage.split_inputs == 1 and embedder.usage.input_tokens == sum(weights)


def test_cost_is_billed_tokens_times_the_price_and_cached_chunks_cost_nothing(bedrock_env, tmp_path: Path) -> None:
    fake = bedrock_env
    prices = {TITAN_TEXT_V2: 0.5}
    with VectorCache(tmp_path) as cache:
        first = embed_partition(_titan(fake), TEXTS, cache, prices_per_1k=prices)
        again = embed_partition(_titan(fake), TEXTS, cache, prices_per_1k=prices)
    assert first.usage.input_tokens == fake.tokens_reported == sum(fake_token_count(t) for t in TEXTS)
    assert first.cost_usd == pytest.approx(fake.tokens_reported / 1000 * 0.5)
    assert (again.embedded, again.cached, again.usage.input_tokens, again.cost_usd) == (0, len(TEXTS), 0, 0.0)
    assert len(fake.requests) == len(TEXTS), "the second build was served from the cache"
    assert embedding_cost(TITAN_TEXT_V2, 1_000_000, DEFAULT_PRICES_PER_1K_TOKENS) == pytest.approx(0.02)
    assert embedding_cost("sentence-transformers/all-MiniLM-L6-v2", 10_000, DEFAULT_PRICES_PER_1K_TOKENS) == 0.0


def test_cache_entries_are_kept_apart_by_back_end_model_and_dims(bedrock_env, tmp_path: Path) -> None:
    fake = bedrock_env
    local = EmbedderResource(backend="local").get_embedder()  # not loaded: the namespace needs no torch
    titan_1024, titan_256 = _titan(fake), _titan(fake, dims=256)
    namespaces = {e.cache_namespace for e in (local, titan_1024, titan_256)}
    assert len(namespaces) == 3
    assert all(
        f"dims={e.dims}" in e.cache_namespace and e.model_id in e.cache_namespace
        for e in (local, titan_1024, titan_256)
    )
    keys = [content_key(t) for t in TEXTS]
    with VectorCache(tmp_path) as cache:
        embed_partition(titan_1024, TEXTS, cache)
        assert len(cache.get_many(titan_1024.cache_namespace, keys, 1024)) == len(TEXTS)
        assert cache.get_many(local.cache_namespace, keys, local.dims) == {}
        other = embed_partition(titan_256, TEXTS, cache)
    assert other.embedded == len(TEXTS) and other.vectors.shape == (len(TEXTS), 256)


def test_an_outage_mid_partition_hands_the_whole_partition_to_the_local_model(
    bedrock_env, embedder, tmp_path: Path
) -> None:
    fake = bedrock_env
    fake.fail_after(4)  # four chunks get Titan vectors, then every request fails
    primary = _titan(fake, concurrency=2, max_attempts=2)
    with VectorCache(tmp_path) as cache:
        result = embed_partition(primary, TEXTS, cache, fallback=embedder, prices_per_1k={TITAN_TEXT_V2: 1.0})
        titan_entries = cache.get_many(primary.cache_namespace, [content_key(t) for t in TEXTS], 1024)
    assert (
        result.fell_back and "bedrock" in result.fallback_reason and "InternalServerException" in result.fallback_reason
    )
    assert result.embedder is embedder and result.vectors.shape == (len(TEXTS), embedder.dims)
    np.testing.assert_allclose(result.vectors, embedder.embed(TEXTS), atol=1e-6)  # every row local: no mix
    assert titan_entries == {}, "the failed primary left nothing in the cache"
    # The tokens Bedrock answered before the outage were billed: they are in the cost.
    assert result.usage.input_tokens == fake.tokens_reported > 0
    assert result.cost_usd == pytest.approx(fake.tokens_reported / 1000)


def test_without_a_fallback_an_unavailable_bedrock_fails_the_build(bedrock_env) -> None:
    primary = BedrockTitanEmbedder(endpoint_url=_closed_port_url(), max_attempts=1)
    with pytest.raises(BedrockUnavailableError):
        embed_partition(primary, TEXTS[:2], None)


def test_the_resource_picks_back_ends_from_config_or_environment(bedrock_env, monkeypatch) -> None:
    fake = bedrock_env
    assert EmbedderResource().backend_name == "local"
    monkeypatch.setenv("NEXUS_EMBEDDER_BACKEND", "bedrock_fallback")
    # The code location's settings, as a daemon started with these variables would read them.
    monkeypatch.setattr("nexus_assets.defs.settings.SETTINGS", Settings.from_env())
    resource = EmbedderResource(bedrock_dimensions=256)
    primary, fallback = resource.get_embedder(), resource.get_fallback()
    assert (primary.backend, primary.model_id, primary.dims) == ("bedrock", TITAN_TEXT_V2, 256)
    assert fallback is not None and fallback.backend == "local"
    # Chunks are capped to the narrowest window of the back ends that may embed them.
    assert resource.chunking_embedder() is not primary and resource.chunking_embedder().max_tokens == 512
    assert resource.embedder_for(fallback.model_id).backend == "local"
    assert primary.endpoint_url == fake.endpoint_url, "the endpoint comes from NEXUS_BEDROCK_ENDPOINT_URL"
    primary.embed(["lewat variabel lingkungan"])
    assert fake.requests[-1]["dimensions"] == 256
    assert EmbedderResource(backend="bedrock").get_fallback() is None
    with pytest.raises(ValueError, match="not one of local, bedrock, bedrock_fallback"):
        EmbedderResource(backend="titan").get_embedder()


def test_job_summaries_sum_tokens_cost_and_fallbacks() -> None:
    records = [
        JobRecord(
            "a",
            "2026-01-01T00:00:00",
            "build",
            "p",
            estimated_cost=0.25,
            input_tokens=1000,
            embedding_model=TITAN_TEXT_V2,
        ),
        JobRecord(
            "b",
            "2026-01-01T00:01:00",
            "build",
            "p",
            estimated_cost=0.5,
            input_tokens=3,
            embedding_model="mini",
            embedding_fallback="bedrock unavailable",
        ),
    ]
    summary = summarize(records)
    assert summary["input_tokens"] == 1003 and summary["estimated_cost_usd"] == 0.75 and summary["fallbacks"] == 1


def test_queries_are_embedded_by_the_model_that_built_the_collection() -> None:
    titan = query_embedder(TITAN_TEXT_V2, 512, region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    assert (titan.backend, titan.model_id, titan.dims) == ("bedrock", TITAN_TEXT_V2, 512)
    assert (titan.region, titan.endpoint_url) == ("eu-west-1", "http://127.0.0.1:9"), "the settings' endpoint"
    local = query_embedder("sentence-transformers/all-MiniLM-L6-v2", 384)
    assert (local.backend, local.dims) == ("local", 384)
