"""The compute engines behind the local embedder, and the measured choice among them.

Determinism: every text runs in a forward pass whose SHAPE is a function of that text alone.
A kernel's blocking (and so the order of its floating-point sums) depends on the shape it runs on;
with AMX, oneDNN picks different bf16 kernels for different batch shapes, so a text batched with
others (padded to the longest, in batches of any size) came out with other bytes than the same text
alone, and an incremental build differed from a fresh one. So:
- torch runs one text per pass, (1, n), unpadded;
- OpenVINO runs `PASS_ROWS` texts per pass, each padded to its own length rounded up to
  `PAD_TOKENS` (`padded_length`), the rows a pass lacks filled with a one-token dummy. Rows never mix
  in a transformer (attention stays within a row, masked keys weigh exactly zero), and the shape
  (PASS_ROWS, padded_length(n)) is the text's own, so are its kernels and bytes, whichever row and
  whichever companions it gets. On AMX this is 19-31% faster than one text per pass (docs/performance.md).
Both are checked on every machine at first use (`same_bytes_in_any_order`), never assumed.

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
CHOICE_FORMAT = 4  # bump when what a choice means changes: older cached choices are measured again
EXPORT_FORMAT = 2  # bump when the OpenVINO conversion changes: older exports are made again

_SENTENCES = (
    "Fotosintesis mengubah energi cahaya menjadi energi kimia di dalam kloroplas daun.",
    "Algoritma pencarian biner membagi data terurut menjadi dua bagian pada setiap langkah.",
    "Proklamasi kemerdekaan Indonesia dibacakan pada tanggal 17 Agustus 1945 di Jakarta.",
    "Persamaan kuadrat ax^2 + bx + c = 0 memiliki diskriminan D = b^2 - 4ac.",
    "The water cycle moves water between the oceans, the atmosphere and the land.",
)


def chunk_probe_texts() -> list[str]:
    """Sixteen texts of 790 characters, as most chunks are: the texts an engine's speed is timed on.

    For MiniLM they all pad to one length (272 tokens), so an engine that runs several texts of one
    padded length per pass runs full passes, as it does on a build's hundreds of chunks.
    """
    stream = " ".join(_SENTENCES[i % len(_SENTENCES)] for i in range(40))
    starts = [stream.index(" ", 41 * k) + 1 for k in range(16)]
    return [stream[start : start + 790].rsplit(" ", 1)[0] for start in starts]


def probe_texts() -> list[str]:
    """Every probe text: a spread of about 30 to 410 tokens, then the chunk-sized ones.

    Cosine and determinism are checked on all of them (the chunk-sized ones share passes where an
    engine batches, so the check sees texts change rows and companions). Few on purpose: every
    candidate runs them several times when a machine first embeds.
    """
    spread = [
        " ".join(_SENTENCES[(offset + i) % len(_SENTENCES)] for i in range(repeat))
        for offset, repeat in enumerate((1, 4, 8, 11, 13, 15))
    ]
    return spread + chunk_probe_texts()


class Engine(Protocol):
    """Unit-length float32 sentence vectors from token ids, each in a pass whose shape is the text's own."""

    name: str
    precision: str
    rows: int  # texts per forward pass

    def padded_length(self, tokens: int) -> int:
        """The token length a text of `tokens` tokens runs at (texts of one length share passes)."""
        ...

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
    rows: int = field(default=1, init=False)  # what encode runs, not a setting

    def padded_length(self, tokens: int) -> int:
        return tokens

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


PASS_ROWS = 4  # texts per OpenVINO pass: 4 and 8 ran alike on AMX, 4 wastes fewer dummy rows
PAD_TOKENS = 16  # a text is padded to a multiple of this: 16 ran faster than 32 on AMX (less padding)


def padded_length(tokens: int, limit: int) -> int:
    """`tokens` rounded up to a multiple of PAD_TOKENS, never past the model's `limit` positions."""
    return min(-(-tokens // PAD_TOKENS) * PAD_TOKENS, max(limit, tokens))


def fixed_shape_passes(lengths: Sequence[int], limit: int) -> list[tuple[int, list[int]]]:
    """(padded length, up to PASS_ROWS indices into `lengths`) per pass: texts of one padded length
    together, in the order given."""
    groups: dict[int, list[int]] = {}
    for index, tokens in enumerate(lengths):
        groups.setdefault(padded_length(tokens, limit), []).append(index)
    return [
        (length, members[start : start + PASS_ROWS])
        for length, members in groups.items()
        for start in range(0, len(members), PASS_ROWS)
    ]


@dataclass
class OpenVinoEngine:
    """A compiled OpenVINO model; `precision` is the CPU plugin's inference precision hint.

    Passes of shape (PASS_ROWS, padded_length(n)) (see the module docstring), `streams` of them at
    once, one thread each: on 2 cores two single-thread passes beat one two-thread pass by 4-8%
    (AMD EPYC Zen 4), as no thread waits for the other at the end of each small matrix product.
    """

    compiled: Any
    precision: str
    limit: int  # the model's positions: no text is padded past them
    streams: int = 1
    name: str = "openvino"
    rows: int = field(default=PASS_ROWS, init=False)  # what encode_many runs, not a setting
    _queue: Any = field(default=None, init=False, repr=False)
    _query_request: Any = field(default=None, init=False, repr=False)

    def padded_length(self, tokens: int) -> int:
        return padded_length(tokens, self.limit)

    def encode(self, ids: Sequence[int]) -> np.ndarray:
        return self.encode_many([ids])[0]  # a pass of the same shape as amid others: the same bytes

    def encode_query(self, ids: Sequence[int]) -> np.ndarray:
        """One text in a one-row pass: a search query, which nobody compares byte for byte with a stored
        vector, so it need not run the (PASS_ROWS, n) shape of the build, three rows of which are dummies.
        A quarter of the work: the bulk of a school server's query time (docs/performance.md)."""
        length = self.padded_length(len(ids))
        tokens = np.zeros((1, length), np.int64)
        mask = np.zeros((1, length), np.int64)
        tokens[0, : len(ids)] = ids
        mask[0, : len(ids)] = 1
        if self._query_request is None:
            self._query_request = self.compiled.create_infer_request()
        result = self._query_request.infer({0: tokens, 1: mask})
        return np.array(next(iter(result.values()))[0], dtype=np.float32)

    def encode_many(self, texts: Sequence[Sequence[int]]) -> np.ndarray:
        from nexus_assets.lib.index.openvino_offline import ov

        out = np.empty((len(texts), self.compiled.output(0).get_partial_shape()[-1].get_length()), np.float32)
        if self._queue is None:
            self._queue = ov.AsyncInferQueue(self.compiled, max(self.streams, 1))

        def done(request: Any, rows: list[int]) -> None:
            data = request.get_output_tensor(0).data  # copied into `out`: the request is reused
            for k, row in enumerate(rows):
                out[row] = data[k]

        self._queue.set_callback(done)
        for length, rows in fixed_shape_passes([len(ids) for ids in texts], self.limit):
            ids = np.zeros((PASS_ROWS, length), np.int64)
            mask = np.zeros((PASS_ROWS, length), np.int64)
            mask[:, 0] = 1  # rows without a text: a one-token dummy, never read
            for k, row in enumerate(rows):
                ids[k, : len(texts[row])] = texts[row]
                mask[k, : len(texts[row])] = 1
            self._queue.start_async({0: ids, 1: mask}, rows)
        self._queue.wait_all()
        return out


def openvino_model(model_path: str, load_slim: Callable[[], Any], cache_dir: Path) -> Path:
    """The OpenVINO IR of the slim BERT, converted offline and cached by the weights' content.

    The conversion traces the local torch module (nothing is downloaded); weights are kept in fp32
    (`compress_to_fp16=False`: the precision is the runtime's choice, measured, never the file's).
    Written to a temporary folder and renamed, so a crash never leaves half a model to load.
    """
    from nexus_assets.lib.index.openvino_offline import ov

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

    class Padded(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner.encode_padded(input_ids, attention_mask)

    # OpenVINO's PyTorch front end traces with torch.jit, which torch 2.13 marks deprecated: that is
    # OpenVINO's choice to make, not ours, so its warning is silenced here only.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        example = torch.ones((2, 16), dtype=torch.long)
        model = ov.convert_model(
            Padded(load_slim()).eval(),
            example_input=(example, example),
            input=[ov.PartialShape([-1, -1]), ov.PartialShape([-1, -1])],
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
    model_path: str, load_slim: Callable[[], Any], precision: str, threads: int, cache_dir: Path, limit: int
) -> OpenVinoEngine:
    from nexus_assets.lib.index.openvino_offline import ov

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
    return OpenVinoEngine(compiled, precision, limit, streams=int(compiled.get_property("NUM_STREAMS")))


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
    engines: Sequence[Engine],
    token_ids: Sequence[Sequence[int]],
    reference: np.ndarray,
    timed: Sequence[Sequence[int]],
    rounds: int = 2,
) -> list[EngineMeasurement]:
    """Cosine and determinism of each engine on `token_ids`, speed on `timed`; timed passes take turns
    so that load from other processes falls on every engine alike (the best pass of each counts)."""
    first = [engine.encode_many(token_ids) for engine in engines]  # also the warm-up
    best = [float("inf")] * len(engines)
    for _ in range(rounds):
        for number, engine in enumerate(engines):
            started = time.perf_counter()
            engine.encode_many(timed)
            best[number] = min(best[number], time.perf_counter() - started)
    out = []
    for engine, vectors, seconds in zip(engines, first, best, strict=True):
        cosine = np.sum(vectors * reference, axis=1)
        out.append(
            EngineMeasurement(
                engine.name,
                engine.precision,
                len(timed) / seconds,
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
    timed: Sequence[Sequence[int]] | None = None,
) -> tuple[EngineChoice, dict[tuple[str, str], Engine]]:
    """Measure every candidate (`load` makes an engine or raises) and pick the fastest that passes.

    Cosine and determinism are checked on `token_ids`, speed timed on `timed` (default: the same).

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
    engines = [loaded[p] for p in runnable]
    measured = dict(zip(runnable, measure_all(engines, token_ids, expected, timed or token_ids), strict=True))
    measurements = [measured.get(pair) or failed[pair] for pair in candidates]
    passing = [m for m in measurements if m.passed]
    best = max(passing, key=lambda m: m.chunks_per_s) if passing else EngineMeasurement(*reference)
    cpu = ", ".join(filter(None, (cpu_kind(), cpu_generation())))
    choice = EngineChoice(best.engine, best.precision, cpu, tuple(measurements))
    return choice, loaded
