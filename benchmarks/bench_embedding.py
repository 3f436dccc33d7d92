"""Embedding back ends on real benchmark chunks: speed and mean cosine to fp32 (not a test).

    .venv/bin/python benchmarks/bench_embedding.py [--limit 600] [--rounds 3] [--backends ...]

Chunks come from the deterministic benchmark corpus (benchmarks/corpus.py), extracted and chunked
by the pipeline itself. Back ends run in alternation, `--rounds` times after a warm-up, and the
median speed is printed with the mean and minimum cosine similarity to the fp32 reference:

- `seed`: what the seed pipeline does (fp32, padded batches of 25, MiniLM's 256-token window);
- `fp32`: sentence-transformers in fp32 with our batching (same-length batches, 512-token
  window): the reference every cosine is measured against;
- `bf16`: the production engine (the slim torch BERT of `bert_encoder`) under bfloat16 autocast;
- `auto`: the production embedder with the engine and precision it picks on this CPU;
- `int8`: torch dynamic int8 quantization of the Linear layers;
- `onnx`: ONNX Runtime fp32 on a locally exported model (needs the `onnx` package to export:
  skipped with a reason when it is missing; nothing is ever downloaded).

The last lines are machine-readable: `embed_chunks_per_s=N` and `cosine_vs_fp32=C` for `auto`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.corpus import write_corpus
from nexus_assets.lib.chunking import ChunkingParams, chunk_file
from nexus_assets.lib.embedding import (
    SentenceTransformerEmbedder,
    bundled_minilm_path,
    length_batches,
)
from nexus_assets.lib.pdf_extraction import extract_pdf

BACKENDS = ("seed", "fp32", "bf16", "auto", "int8", "onnx")


def corpus_chunks(pdfs: Sequence[Path], embedder: SentenceTransformerEmbedder) -> list[str]:
    """Chunk texts of `pdfs` exactly as the pipeline makes them (cleaned, 800/100, capped to the window)."""
    params = ChunkingParams(800, 100, embedder.max_tokens)
    texts: list[str] = []
    for pdf in pdfs:
        result = extract_pdf(pdf)
        pages = [(p.page, p.text) for p in result.pages if p.status == "ok"]
        texts += [c.text for c in chunk_file("bench/chunks", pdf.name, pages, params, embedder.count_tokens)]
    return texts


def benchmark_texts(limit: int, work: Path) -> list[str]:
    """`limit` chunks spread evenly over the benchmark corpus (deterministic)."""
    probe = SentenceTransformerEmbedder(bundled_minilm_path())
    texts = corpus_chunks(write_corpus(work / "pdfs"), probe)
    step = max(len(texts) // limit, 1)
    return texts[::step][:limit]


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    summed = (hidden * mask[..., None]).sum(axis=1)
    pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def make_backend(name: str, texts: Sequence[str], work: Path) -> Callable[[], np.ndarray] | str:
    """A function embedding `texts` with back end `name`, or the reason it cannot run here."""
    import torch

    if name in ("bf16", "auto"):
        embedder = SentenceTransformerEmbedder(bundled_minilm_path(), precision=name)
        embedder.load()
        if name == "bf16" and embedder.precision != "bf16":
            return f"bf16 unavailable: {embedder.fallback_reason}"
        return lambda: embedder.embed(texts)
    # The reference and the other candidates start from the published implementation.
    embedder = SentenceTransformerEmbedder(bundled_minilm_path(), precision="fp32", engine="sentence-transformers")
    embedder.load()
    if name == "fp32":
        return lambda: embedder.embed(texts)
    model = embedder._model
    if name == "seed":
        def seed() -> np.ndarray:
            model.max_seq_length = 256
            try:
                return model.encode(list(texts), batch_size=25, normalize_embeddings=True, show_progress_bar=False)
            finally:
                model.max_seq_length = embedder.max_tokens
        return seed
    lengths = [min(embedder.count_tokens(t), embedder.max_tokens) for t in texts]
    batches = length_batches(lengths, embedder.batch_size)
    if name == "int8":
        import copy

        quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
        quantized.max_seq_length = embedder.max_tokens

        def int8() -> np.ndarray:
            out = np.empty((len(texts), embedder.dims), dtype=np.float32)
            with torch.inference_mode():
                for batch in batches:
                    out[batch] = quantized.encode([texts[i] for i in batch], batch_size=len(batch),
                                                  normalize_embeddings=True, show_progress_bar=False)
            return out
        return int8
    if name == "onnx":
        try:
            import onnx  # noqa: F401 -- torch's exporter needs it
            import onnxruntime as ort
        except ImportError as exc:
            return f"cannot export to ONNX here: {exc} (the `onnx` package is not installed)"

        class Hidden(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
                return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        path = work / "minilm.onnx"
        dummy = torch.ones((2, 16), dtype=torch.long)
        started = time.perf_counter()
        torch.onnx.export(Hidden(model[0].auto_model).eval(), (dummy, dummy), str(path), dynamo=False,
                          input_names=["input_ids", "attention_mask"], output_names=["hidden"], opset_version=17,
                          dynamic_axes={n: {0: "b", 1: "s"} for n in ("input_ids", "attention_mask", "hidden")})
        print(f"onnx: exported in {time.perf_counter() - started:.1f} s", flush=True)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        tokenizer = embedder._tokenizer

        def onnx_fp32() -> np.ndarray:
            out = np.empty((len(texts), embedder.dims), dtype=np.float32)
            for batch in batches:
                ids = np.array([tokenizer.encode(texts[i]).ids[: embedder.max_tokens] for i in batch], dtype=np.int64)
                mask = np.ones_like(ids)
                hidden = session.run(["hidden"], {"input_ids": ids, "attention_mask": mask})[0]
                out[batch] = _mean_pool(hidden, mask.astype(np.float32))
            return out
        return onnx_fp32
    raise ValueError(f"unknown back end {name!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=600, help="chunks to embed per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    if "fp32" not in names:
        names.insert(0, "fp32")
    with tempfile.TemporaryDirectory(prefix="nexus-bench-embed-") as tmp:
        work = Path(tmp)
        texts = benchmark_texts(args.limit, work)
        print(f"{len(texts)} benchmark chunks, {args.rounds} rounds after a warm-up", flush=True)
        runners: dict[str, Callable[[], np.ndarray]] = {}
        for name in names:
            made = make_backend(name, texts, work)
            if isinstance(made, str):
                print(f"{name}: skipped: {made}", flush=True)
            else:
                runners[name] = made
        speeds: dict[str, list[float]] = {n: [] for n in runners}
        vectors: dict[str, np.ndarray] = {}
        for name, run in runners.items():  # warm-up (also the vectors compared)
            vectors[name] = np.asarray(run(), dtype=np.float32)
        for _ in range(args.rounds):
            for name, run in runners.items():
                started = time.perf_counter()
                run()
                speeds[name].append(len(texts) / (time.perf_counter() - started))
    reference = vectors["fp32"]
    results = {}
    print(f"\n{'back end':<8} {'chunks/s (median)':>18} {'runs':>24} {'mean cos':>9} {'min cos':>8}")
    for name in runners:
        cosine = np.sum(vectors[name] * reference, axis=1)
        results[name] = {"chunks_per_s": statistics.median(speeds[name]), "runs": speeds[name],
                         "mean_cosine": float(cosine.mean()), "min_cosine": float(cosine.min())}
        runs = " ".join(f"{s:.1f}" for s in speeds[name])
        note = "  (256-token window: truncates)" if name == "seed" else ""
        print(f"{name:<8} {results[name]['chunks_per_s']:>18.1f} {runs:>24} {cosine.mean():>9.6f} "
              f"{cosine.min():>8.5f}{note}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if "auto" in results:
        print(f"embed_chunks_per_s={results['auto']['chunks_per_s']:.1f}")
        print(f"cosine_vs_fp32={results['auto']['mean_cosine']:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
