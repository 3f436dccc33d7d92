"""The compute engines behind the local embedder, and the measured choice among them.

Determinism: every engine runs ONE text per forward pass, at its own token length, with no padding.
A kernel's blocking (and so the order of its floating-point sums) depends on the shape it runs on;
with AMX, oneDNN picks different bf16 kernels for different batch shapes, so a text batched with
others came out with other bytes than the same text alone, and an incremental build differed from a
fresh one. A (1, n) input's shape is a function of the text alone, so its vector is too, whatever
else is embedded in the same call, in the same process or on a rebuild. On 2 cores a single 200-300
token text already fills the matrix units, so batching bought little (see docs/performance.md).

Engines (each with fp32 and, where the CPU and library run it, bf16):
- `openvino`: OpenVINO's CPU runtime on a model converted offline from the bundled weights (no
  download: the conversion traces the local torch module) and cached by content;
- `torch`: the slim BERT of `bert_encoder` in plain torch (bf16 through autocast);
- `sentence-transformers`: the library itself, for models the slim BERT does not cover.

Choice (`choose_engine`): no guess from CPU flags. Each candidate is loaded and measured on probe
texts: it must run, stay within `MIN_COSINE` of the fp32 torch reference, give the same bytes for a
text embedded alone and amid others, and the fastest that passes wins. The measurement is cached per
CPU, thread count, library versions and model (`EngineChoice` as JSON), so it costs seconds once per
machine, not per build.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nexus_assets.lib.core import hashing
from nexus_assets.lib.core.cpu_info import cpu_generation, cpu_identity, cpu_kind

log = logging.getLogger(__name__)

ENGINES = ("openvino", "torch", "sentence-transformers")
PRECISIONS = ("fp32", "bf16")
MIN_COSINE = 0.999  # mean cosine to fp32 a fast path must keep (the issue-5 bar)
MIN_PROBE_COSINE = 0.998  # and no single probe text below this
CHOICE_FORMAT = 3  # bump when what a choice means changes: older cached choices are measured again
EXPORT_FORMAT = 1  # bump when the OpenVINO conversion changes: older exports are made again

_SENTENCES = (
    "Fotosintesis mengubah energi cahaya menjadi energi kimia di dalam kloroplas daun.",
    "Algoritma pencarian biner membagi data terurut menjadi dua bagian pada setiap langkah.",
    "Proklamasi kemerdekaan Indonesia dibacakan pada tanggal 17 Agustus 1945 di Jakarta.",
    "Persamaan kuadrat ax^2 + bx + c = 0 memiliki diskriminan D = b^2 - 4ac.",
    "The water cycle moves water between the oceans, the atmosphere and the land.",
)


def probe_texts() -> list[str]:
    """Deterministic probe texts of the lengths real chunks have (about 20 to 330 tokens).

    Few on purpose: every candidate runs them three times when a machine first embeds.
    """
    return [
        " ".join(_SENTENCES[(offset + i) % len(_SENTENCES)] for i in range(repeat))
        for offset, repeat in enumerate((1, 4, 8, 11, 13, 15))
    ]


class Engine(Protocol):
    """Unit-length float32 sentence vectors from token ids, each text in a forward pass of its own."""

    name: str
    precision: str

    def encode(self, ids: Sequence[int]) -> np.ndarray: ...

    def encode_many(self, texts: Sequence[Sequence[int]]) -> np.ndarray:
        """One row per text, each the bytes `encode` gives it (an engine may run several passes at once)."""
        ...


def model_cache_dir(environ: Mapping[str, str]) -> Path:
    """Where converted models and engine measurements live: per user, shared by every data directory.

    `NEXUS_MODEL_CACHE`, else `$XDG_CACHE_HOME/nexus-assets` or `~/.cache/nexus-assets`; where that
    cannot be written (a read-only home in a container), a folder in the system's temporary directory.
    The settings resolve it once (`Settings.model_cache`); `environ` is their snapshot.
    """
    configured = environ.get("NEXUS_MODEL_CACHE", "").strip()
    if configured:
        return Path(configured).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    preferred = Path(base) / "nexus-assets"
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        if os.access(preferred, os.W_OK):
            return preferred
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"nexus-assets-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


@cache
def weights_digest(model_path: str) -> str:
    """sha256 of the files that decide a model's outputs (weights and configuration), by content."""
    digest = hashing.new()
    root = Path(model_path)
    for name in ("config.json", "model.safetensors"):
        digest.update(name.encode() + b"\0")
        hashing.update_from_file(digest, root / name)
    return str(digest.hexdigest())


def library_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def slim_bert_supported(model_dir: Path) -> bool:
    """True for a BERT with absolute positions and GELU, mean pooling only, and no Dense layer.

    Reads only the model's JSON files (no torch), so an embedder can decide without importing it.
    """
    try:
        config = json.loads((model_dir / "config.json").read_text())
        modules = json.loads((model_dir / "modules.json").read_text())
    except (OSError, ValueError):
        return False
    if (
        config.get("model_type") != "bert"
        or config.get("hidden_act") != "gelu"
        or config.get("position_embedding_type", "absolute") != "absolute"
    ):
        return False
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds):
        return False
    if modules[0].get("path"):
        return False  # weights in a sub-folder: leave it to sentence-transformers
    pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text())
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v}
    return modes == {"pooling_mode_mean_tokens"} and (model_dir / "model.safetensors").is_file()


# --- engines ------------------------------------------------------------------------------------------------


@dataclass
class TorchEngine:
    """The slim BERT (or sentence-transformers) in torch; bf16 through autocast."""

    model: Any
    precision: str
    name: str = "torch"
    sentence_transformers: bool = False

    def encode(self, ids: Sequence[int]) -> np.ndarray:
        import torch

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            if self.sentence_transformers:
                features = {
                    "input_ids": torch.tensor([list(ids)]),
                    "attention_mask": torch.ones((1, len(ids)), dtype=torch.long),
                }
                if "token_type_ids" in self.model.tokenizer.model_input_names:
                    features["token_type_ids"] = torch.zeros((1, len(ids)), dtype=torch.long)
                out = self.model(features)["sentence_embedding"]
                return torch.nn.functional.normalize(out.float(), p=2, dim=1)[0].numpy()
            return self.model.encode_one(torch.tensor([list(ids)]))[0].numpy()

    def encode_many(self, texts: Sequence[Sequence[int]]) -> np.ndarray:
        return np.vstack([self.encode(ids) for ids in texts])


@dataclass
class OpenVinoEngine:
    """A compiled OpenVINO model; `precision` is the CPU plugin's inference precision hint.

    `streams` inference requests run at once, one thread each, every text in a request of its own:
    on 2 cores two single-thread passes beat one two-thread pass by 4-8% (bf16 51.9-53.1 vs 49.2
    chunks/s, f32 29.9-31.3 vs 28.8-30.5; AMD EPYC Zen 4, 250 real chunks, two alternating A/B runs),
    as no thread waits for the other at the end of each small matrix product.
    A text's bytes do not depend on which request runs it: the shape, kernels and thread count are the same.
    """

    compiled: Any
    precision: str
    streams: int = 1
    name: str = "openvino"
    _request: Any = field(default=None, init=False, repr=False)
    _queue: Any = field(default=None, init=False, repr=False)

    def encode(self, ids: Sequence[int]) -> np.ndarray:
        if self._request is None:
            self._request = self.compiled.create_infer_request()
        result = self._request.infer({0: np.asarray([ids], dtype=np.int64)})
        return np.array(result[0][0], dtype=np.float32)  # a copy: the request reuses its output buffer

    def encode_many(self, texts: Sequence[Sequence[int]]) -> np.ndarray:
        if self.streams < 2 or len(texts) < 2:
            return np.vstack([self.encode(ids) for ids in texts])
        import openvino as ov

        out = np.empty((len(texts), self.compiled.output(0).get_partial_shape()[-1].get_length()), np.float32)
        if self._queue is None:
            self._queue = ov.AsyncInferQueue(self.compiled, self.streams)

        def done(request: Any, row: int) -> None:
            out[row] = request.get_output_tensor(0).data[0]  # copied into `out`: the request is reused

        self._queue.set_callback(done)
        for row, ids in enumerate(texts):
            self._queue.start_async({0: np.asarray([ids], dtype=np.int64)}, row)
        self._queue.wait_all()
        return out


def openvino_model(model_path: str, load_slim: Callable[[], Any], cache_dir: Path) -> Path:
    """The OpenVINO IR of the slim BERT, converted offline and cached by the weights' content.

    The conversion traces the local torch module (nothing is downloaded); weights are kept in fp32
    (`compress_to_fp16=False`: the precision is the runtime's choice, measured, never the file's).
    Written to a temporary folder and renamed, so a crash never leaves half a model to load.
    """
    import openvino as ov

    key = hashing.sha256_text(
        f"{weights_digest(model_path)}|ov={ov.get_version()}|torch={library_version('torch')}|format={EXPORT_FORMAT}",
        24,
    )
    target = cache_dir / "openvino" / key
    if (target / "model.xml").is_file() and (target / "model.bin").is_file():
        return target / "model.xml"
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    import torch  # only to convert: a machine with the converted model never imports torch to embed

    class OneText(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.inner.encode_one(input_ids)

    # OpenVINO's PyTorch front end traces with torch.jit, which torch 2.13 marks deprecated: that is
    # OpenVINO's choice to make, not ours, so its warning is silenced here only.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        model = ov.convert_model(
            OneText(load_slim()).eval(),
            example_input=torch.ones((1, 16), dtype=torch.long),
            input=[ov.PartialShape([1, -1])],
        )
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
    try:
        ov.save_model(model, str(staging / "model.xml"), compress_to_fp16=False)
        try:
            staging.rename(target)
        except OSError:  # another process finished the same export first: theirs is as good
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("converted %s to OpenVINO in %.1f s: %s", model_path, time.perf_counter() - started, target)
    return target / "model.xml"


def load_openvino(
    model_path: str, load_slim: Callable[[], Any], precision: str, threads: int, cache_dir: Path
) -> OpenVinoEngine:
    import openvino as ov

    core = ov.Core()
    if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise RuntimeError("OpenVINO's CPU plugin reports no bf16 on this CPU")
    config = {
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": threads,  # one thread per stream (see OpenVinoEngine)
    }
    compiled = core.compile_model(core.read_model(str(openvino_model(model_path, load_slim, cache_dir))), "CPU", config)
    really = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower()  # e.g. "<type: 'bfloat16'>"
    if ("bf16" in really or "bfloat16" in really) != (precision == "bf16"):
        raise RuntimeError(f"OpenVINO runs {really} where {precision} was asked")
    return OpenVinoEngine(compiled, precision, streams=int(compiled.get_property("NUM_STREAMS")))


# --- the measured choice --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineMeasurement:
    engine: str
    precision: str
    chunks_per_s: float = 0.0
    mean_cosine: float = 0.0
    min_cosine: float = 0.0
    deterministic: bool = False
    error: str = ""

    @property
    def passed(self) -> bool:
        return (
            not self.error
            and self.deterministic
            and self.mean_cosine >= MIN_COSINE
            and self.min_cosine >= MIN_PROBE_COSINE
        )


@dataclass(frozen=True)
class EngineChoice:
    """The engine a machine runs, with every candidate's measurement (shown in logs and benchmarks)."""

    engine: str
    precision: str
    cpu: str
    measurements: tuple[EngineMeasurement, ...]

    def describe(self) -> str:
        rows = [
            f"{m.engine}/{m.precision}: "
            + (
                f"failed: {m.error}"
                if m.error
                else f"{m.chunks_per_s:.1f} probes/s, cosine {m.mean_cosine:.6f} (min {m.min_cosine:.6f}), "
                f"{'deterministic' if m.deterministic else 'NOT deterministic'}"
            )
            for m in self.measurements
        ]
        return f"{self.engine}/{self.precision} on {self.cpu}; " + "; ".join(rows)

    @staticmethod
    def from_json(text: str) -> EngineChoice:
        data = json.loads(text)
        return EngineChoice(
            data["engine"], data["precision"], data["cpu"], tuple(EngineMeasurement(**m) for m in data["measurements"])
        )


def choice_key(model_fingerprint: str, candidates: Sequence[tuple[str, str]], threads: int) -> str:
    """What a cached choice depends on: the CPU, the cores used, the libraries, the model and candidates."""
    text = "|".join(
        [
            cpu_identity(),
            str(threads),
            library_version("torch"),
            library_version("openvino"),
            model_fingerprint,
            ",".join(f"{e}/{p}" for e, p in candidates),
            str(CHOICE_FORMAT),
        ]
    )
    return hashing.sha256_text(text, 24)


def cached_choice(cache_dir: Path, key: str) -> EngineChoice | None:
    path = cache_dir / "engine-choices" / f"{key}.json"
    try:
        return EngineChoice.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store_choice(cache_dir: Path, key: str, choice: EngineChoice) -> None:
    """Keep the measurement for the next process; a cache that cannot be written costs a re-measure only."""
    folder = cache_dir / "engine-choices"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{key}-", dir=folder)
        with os.fdopen(handle, "w") as out:
            json.dump(asdict(choice), out, indent=2)
        os.replace(temp, folder / f"{key}.json")
    except OSError as exc:
        log.warning(
            "cannot keep the embedding engine measurement in %s (%s): the next process measures again", folder, exc
        )


def same_bytes_in_any_order(engine: Engine, token_ids: Sequence[Sequence[int]], first: np.ndarray) -> bool:
    """Each text gives the bytes of `first` again, alone and amid the others in another order."""
    order = [*range(len(token_ids) - 1, -1, -2), *range(len(token_ids) - 2, -1, -2)]
    together = engine.encode_many([token_ids[i] for i in order])
    return all(together[row].tobytes() == first[i].tobytes() for row, i in enumerate(order)) and all(
        engine.encode(token_ids[i]).tobytes() == first[i].tobytes() for i in order
    )


def measure_all(
    engines: Sequence[Engine], token_ids: Sequence[Sequence[int]], reference: np.ndarray, rounds: int = 2
) -> list[EngineMeasurement]:
    """Cosine, determinism and speed of each engine; timed passes take turns so that load from other
    processes falls on every engine alike (the best pass of each counts)."""
    first = [engine.encode_many(token_ids) for engine in engines]  # also the warm-up
    best = [float("inf")] * len(engines)
    for _ in range(rounds):
        for number, engine in enumerate(engines):
            started = time.perf_counter()
            engine.encode_many(token_ids)
            best[number] = min(best[number], time.perf_counter() - started)
    out = []
    for engine, vectors, seconds in zip(engines, first, best, strict=True):
        cosine = np.sum(vectors * reference, axis=1)
        out.append(
            EngineMeasurement(
                engine.name,
                engine.precision,
                len(token_ids) / seconds,
                float(cosine.mean()),
                float(cosine.min()),
                same_bytes_in_any_order(engine, token_ids, vectors),
            )
        )
    return out


def choose_engine(
    candidates: Sequence[tuple[str, str]],
    load: Callable[[str, str], Engine],
    token_ids: Sequence[Sequence[int]],
    reference: tuple[str, str] = ("torch", "fp32"),
) -> tuple[EngineChoice, dict[tuple[str, str], Engine]]:
    """Measure every candidate (`load` makes an engine or raises) and pick the fastest that passes.

    The reference (fp32: the model as published) is what every cosine is measured against, and the
    fallback when nothing passes; an engine that fails to load, drifts or is not deterministic is
    recorded with the reason and never chosen.
    """
    reference_engine = load(*reference)
    expected = reference_engine.encode_many(token_ids)
    loaded: dict[tuple[str, str], Engine] = {reference: reference_engine}
    failed: dict[tuple[str, str], EngineMeasurement] = {}
    for engine_name, precision in candidates:
        if (engine_name, precision) in loaded:
            continue
        try:
            loaded[(engine_name, precision)] = load(engine_name, precision)
        except Exception as exc:  # noqa: BLE001 -- any failure rules the candidate out; the reason is kept
            failed[(engine_name, precision)] = EngineMeasurement(
                engine_name, precision, error=f"{type(exc).__name__}: {exc}"
            )
    runnable = [pair for pair in candidates if pair in loaded]
    measured = dict(zip(runnable, measure_all([loaded[p] for p in runnable], token_ids, expected), strict=True))
    measurements = [measured.get(pair) or failed[pair] for pair in candidates]
    passing = [m for m in measurements if m.passed]
    best = max(passing, key=lambda m: m.chunks_per_s) if passing else EngineMeasurement(*reference)
    cpu = ", ".join(filter(None, (cpu_kind(), cpu_generation())))
    choice = EngineChoice(best.engine, best.precision, cpu, tuple(measurements))
    return choice, loaded
