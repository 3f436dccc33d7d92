"""Embedding engines on real benchmark chunks: speed against the seed, cosine to fp32, determinism (not a test).

    .venv/bin/python benchmarks/bench_embedding.py [--limit 600] [--rounds 3] [--backends ...]

Chunks come from the deterministic benchmark corpus (benchmarks/corpus.py), extracted and chunked
by the pipeline itself. Back ends run in alternation, `--rounds` times after a warm-up; the median
speed is printed with the mean and minimum cosine to the fp32 reference and a determinism check:

- `seed`: what ../shared/peers/seed_etl.py does (sentence-transformers fp32, padded batches of 25,
  MiniLM's 256-token window): the speed every ratio is taken against;
- `fp32`: sentence-transformers in fp32, one text per pass, 512-token window: the reference;
- `torch-fp32`, `torch-bf16`, `openvino-fp32`, `openvino-bf16`: each engine and precision fixed;
- `auto`: the production embedder with the engine it measured and chose on this CPU.

Determinism: every text is embedded in one call with all the others, then alone in reverse order;
`deterministic` says whether all the bytes agreed (with AMX, batched kernels once broke this).
The `cpu:` lines name the CPU and count one-thread matrix products per second in bf16 and fp32 before
and after the rounds: where the host shares its matrix units, bf16 speed moves with them (see
`matrix_speed`). The last lines are machine-readable, for the CPU named on the first of them.
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
from nexus_assets.lib.core.cpu_info import cpu_generation, cpu_kind, cpu_model, cpu_threads, isa_caps
from nexus_assets.lib.index.chunking import ChunkingParams, chunk_file
from nexus_assets.lib.index.embedding import SentenceTransformerEmbedder, bundled_minilm_path
from nexus_assets.lib.ingest.pdf_extraction import extract_pdf

BACKENDS = ("seed", "fp32", "torch-fp32", "torch-bf16", "openvino-fp32", "openvino-bf16", "auto")


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


EmbedFn = Callable[[Sequence[str]], np.ndarray]


def make_backend(name: str) -> tuple[EmbedFn, str] | str:
    """(a function embedding texts, what runs) for back end `name`, or the reason it cannot run here."""
    if name == "seed":
        reference = SentenceTransformerEmbedder(bundled_minilm_path(), precision="fp32", engine="sentence-transformers")
        reference.load()
        model = reference._model.model  # the SentenceTransformer object itself

        def seed(texts: Sequence[str]) -> np.ndarray:
            model.max_seq_length = 256
            try:
                return model.encode(list(texts), batch_size=25, normalize_embeddings=True, show_progress_bar=False)
            finally:
                model.max_seq_length = reference.max_tokens

        return seed, "sentence-transformers fp32, batches of 25, 256-token window"
    if name == "fp32":
        engine, precision = "sentence-transformers", "fp32"
    elif name == "auto":
        engine, precision = "auto", "auto"
    else:
        engine, precision = name.split("-", 1)
    embedder = SentenceTransformerEmbedder(bundled_minilm_path(), engine=engine, precision=precision)
    try:
        embedder.load()
    except Exception as exc:  # noqa: BLE001 -- reported as the reason it cannot run here
        return f"{type(exc).__name__}: {exc}"
    if name == "auto" and embedder.choice is not None:
        print(f"auto: measured choice on this CPU: {embedder.choice.describe()}", flush=True)
    return embedder.embed, f"{embedder.engine}/{embedder.precision}"


def deterministic(embed: EmbedFn, texts: Sequence[str]) -> bool:
    """Each text alone (in reverse order, after other shapes ran) gives the bytes it had amid all the others."""
    together = np.asarray(embed(texts), dtype=np.float32)
    return all(
        np.asarray(embed([texts[i]]), dtype=np.float32)[0].tobytes() == together[i].tobytes()
        for i in reversed(range(len(texts)))
    )


def matrix_speed(seconds: int = 3) -> dict[str, list[int]]:
    """One-thread 1024x1024 matrix products per second, second by second, in bf16 and fp32.

    A host's matrix units can be shared: on one AMX Xeon (2026-12-06) bf16 products ran 167-439 per
    second from one second to the next while fp32 held 57-62, and the engines' speed with them. The line
    tells whether a run's bf16 figures met a steady host or a busy one.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out: dict[str, list[int]] = {"bf16": [], "fp32": []}
        for dtype, name in ((torch.bfloat16, "bf16"), (torch.float32, "fp32")):
            a, b = torch.randn(1024, 1024).to(dtype), torch.randn(1024, 1024).to(dtype)
            a @ b  # the kernel's first call picks and loads it
            for _ in range(seconds):
                count, end = 0, time.perf_counter() + 1.0
                while time.perf_counter() < end:
                    a @ b
                    count += 1
                out[name].append(count)
        return out
    finally:
        torch.set_num_threads(previous)


def matrix_line(counts: dict[str, list[int]], when: str) -> str:
    per_second = "; ".join(f"{name} {' '.join(map(str, values))}" for name, values in counts.items())
    return f"one-thread 1024x1024 matrix products per second, second by second, {when}: {per_second}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=600, help="chunks to embed per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--determinism", type=int, default=60, help="chunks checked alone against amid others")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    for needed in ("seed", "fp32"):
        if needed not in names:
            names.insert(0, needed)
    generation = cpu_generation() or "generation unknown"
    caps = isa_caps()
    capped = f", instruction sets capped by {caps}" if caps else ""
    print(f"cpu: {cpu_kind()}: {cpu_model()} ({generation}), {cpu_threads()} threads{capped}", flush=True)
    matmuls = {"before": matrix_speed()}
    print(f"cpu: {matrix_line(matmuls['before'], 'before')}", flush=True)
    with tempfile.TemporaryDirectory(prefix="nexus-bench-embed-") as tmp:
        texts = benchmark_texts(args.limit, Path(tmp))
    print(f"{len(texts)} benchmark chunks, {args.rounds} rounds after a warm-up", flush=True)
    runners: dict[str, EmbedFn] = {}
    labels: dict[str, str] = {}
    for name in names:
        made = make_backend(name)
        if isinstance(made, str):
            print(f"{name}: skipped: {made}", flush=True)
        else:
            runners[name], labels[name] = made
    speeds: dict[str, list[float]] = {n: [] for n in runners}
    vectors = {name: np.asarray(run(texts), dtype=np.float32) for name, run in runners.items()}  # warm-up
    for _ in range(args.rounds):
        for name, run in runners.items():
            started = time.perf_counter()
            run(texts)
            speeds[name].append(len(texts) / (time.perf_counter() - started))
    matmuls["after"] = matrix_speed()
    print(f"cpu: {matrix_line(matmuls['after'], 'after the rounds')}", flush=True)
    checked = texts[: args.determinism]
    same = {name: deterministic(run, checked) for name, run in runners.items()}
    reference = vectors["fp32"]
    seed_speed = statistics.median(speeds["seed"])
    results = {}
    print(
        f"\n{'back end':<14} {'runs':<34} {'chunks/s':>9} {'vs seed':>8} {'mean cos':>9} {'min cos':>8} "
        f"{'same bytes':>10}"
    )
    for name in runners:
        cosine = np.sum(vectors[name] * reference, axis=1)
        speed = statistics.median(speeds[name])
        results[name] = {
            "runs": labels[name],
            "chunks_per_s": speed,
            "vs_seed": speed / seed_speed,
            "mean_cosine": float(cosine.mean()),
            "min_cosine": float(cosine.min()),
            "deterministic": same[name],
            "speeds": speeds[name],
        }
        print(
            f"{name:<14} {labels[name][:34]:<34} {speed:>9.1f} {speed / seed_speed:>8.2f} {cosine.mean():>9.6f} "
            f"{cosine.min():>8.5f} {'yes' if same[name] else 'NO':>10}"
        )
    print(
        f"(cosines against fp32 with a 512-token window: the seed's 256-token window truncates; determinism "
        f"checked on {len(checked)} chunks)"
    )
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_kind(), "matmuls_per_s": matmuls, "results": results}, indent=2))
    if "auto" in results:
        auto = results["auto"]
        print(f"cpu={cpu_kind()}")
        print(f"cpu_generation={cpu_generation()}")
        print(f"embed_engine={auto['runs']}")
        print(f"embed_chunks_per_s={auto['chunks_per_s']:.1f}")
        print(f"seed_chunks_per_s={seed_speed:.1f}")
        print(f"embed_ratio_vs_seed={auto['vs_seed']:.2f}")
        print(f"cosine_vs_fp32={auto['mean_cosine']:.6f}")
        print(f"deterministic={'yes' if same['auto'] else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
