"""Bedrock Titan V2 throughput: one request at a time (the seed's way) against the thread pool (not a test).

    .venv/bin/python benchmarks/bench_bedrock.py [--chunks 96] [--latency 0.2] [--concurrency 8]

Runs `BedrockTitanEmbedder` against the loopback fake endpoint (nexus_assets_tests/fake_bedrock.py)
with a simulated service latency per request, at concurrency 1 and at `--concurrency`, and prints
chunks/s for both and their ratio. Each setting embeds the same `--chunks` texts through real boto3
clients (signing, retries, HTTP), so what is measured is the client side: the issue's target is at
least 6x the sequential throughput at concurrency 8 with 200 ms latency.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nexus_assets.lib.index.bedrock_embedding import BedrockTitanEmbedder
from nexus_assets_tests.support.fake_bedrock import FakeBedrock


def chunks_per_second(endpoint: str, texts: list[str], concurrency: int) -> tuple[float, int]:
    embedder = BedrockTitanEmbedder(endpoint_url=endpoint, concurrency=concurrency)
    embedder.load()  # client construction is not part of the throughput
    started = time.perf_counter()
    embedder.embed(texts)
    return len(texts) / (time.perf_counter() - started), embedder.usage.requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=96)
    parser.add_argument("--latency", type=float, default=0.2, help="simulated seconds per InvokeModel")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "benchmark")  # the fake does not check signatures; boto3 needs something to sign
    texts = [f"Potongan teks nomor {i}: fotosintesis, sel, dan energi. " * 12 for i in range(args.chunks)]
    with FakeBedrock(latency_s=args.latency) as fake:
        sequential, _ = chunks_per_second(fake.endpoint_url, texts, 1)
        fake.max_in_flight = 0
        pooled, requests = chunks_per_second(fake.endpoint_url, texts, args.concurrency)
        in_flight = fake.max_in_flight
    ratio = pooled / sequential
    print(f"{args.chunks} chunks, {args.latency * 1000:.0f} ms per request")
    print(f"concurrency 1:  {sequential:6.1f} chunks/s")
    print(
        f"concurrency {args.concurrency}:  {pooled:6.1f} chunks/s ({requests} requests, at most {in_flight} in flight)"
    )
    print(f"ratio: {ratio:.2f}x (target >= 6x at concurrency 8)")
    return 0 if ratio >= 6 or args.concurrency != 8 else 1


if __name__ == "__main__":
    sys.exit(main())
