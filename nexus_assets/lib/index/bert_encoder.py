"""A slim BERT sentence encoder in plain torch, for the common sentence-transformers layout.

Why: importing sentence-transformers (and through it transformers) costs 3-5 s per process, more
than embedding the few dozen chunks of a typical incremental rebuild. A mean-pooled BERT
(MiniLM and most small sentence-transformers models: Transformer -> mean Pooling -> Normalize)
needs only torch and the safetensors weights. It runs the same operations as transformers'
BertModel (SDPA attention, exact GELU, LayerNorm in fp32 under autocast); a test checks its
vectors against sentence-transformers. `embedding.slim_bert_supported` (which needs no torch)
decides which models qualify; for any other, `load_slim_bert` returns None and the caller uses
sentence-transformers. `encode_one` is the torch engine's path (one text, no padding, no mask);
`encode_padded` is the graph OpenVINO runs (texts padded to a length fixed by their own, masked).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nexus_assets.lib.index.embedding_engines import slim_bert_supported


class _Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=eps)
        self.inter = nn.Linear(hidden, intermediate)
        self.out = nn.Linear(intermediate, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        attn = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x)), attn_mask=mask
        )
        attn = attn.transpose(1, 2).reshape(b, n, d)
        x = self.attn_norm(self.attn_out(attn) + x)
        return self.out_norm(self.out(F.gelu(self.inter(x))) + x)


class SlimBert(nn.Module):
    """BertModel's encoder for inference, then mean pooling and L2 normalisation."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        hidden, eps = int(config["hidden_size"]), float(config.get("layer_norm_eps", 1e-12))
        self.word = nn.Embedding(int(config["vocab_size"]), hidden)
        self.position = nn.Embedding(int(config["max_position_embeddings"]), hidden)
        self.token_type = nn.Embedding(int(config.get("type_vocab_size", 2)), hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(hidden, int(config["num_attention_heads"]), int(config["intermediate_size"]), eps)
            for _ in range(int(config["num_hidden_layers"]))
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # No mask at all for unpadded batches (what transformers does too): SDPA takes its fastest kernel.
        return self._encode(input_ids, attention_mask, masked=not bool(attention_mask.all()))

    def encode_padded(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Unit vectors of texts padded to one length, the mask always applied: the graph exported to
        OpenVINO (a trace of `forward` would keep only the branch its example input took)."""
        return self._encode(input_ids, attention_mask, masked=True)

    def encode_one(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Unit vectors of unpadded texts: no attention mask, the mean over every token.

        Its shape is a function of the text alone, so its kernels (and bytes) are too.
        """
        return self._encode(input_ids, None, masked=False)

    def _encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, masked: bool) -> torch.Tensor:
        n = input_ids.shape[1]
        positions = torch.arange(n, device=input_ids.device)
        x = self.norm(self.word(input_ids) + self.position(positions)[None] + self.token_type.weight[0])
        mask = (attention_mask[:, None, None, :] > 0) if masked and attention_mask is not None else None
        for layer in self.layers:
            x = layer(x, mask)
        if attention_mask is None:
            return F.normalize(x.float().mean(dim=1), p=2, dim=1)
        weights = attention_mask.to(x.dtype)[..., None]
        pooled = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return F.normalize(pooled.float(), p=2, dim=1)


_RENAMES = {
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attn_out",
    "attention.output.LayerNorm": "attn_norm",
    "intermediate.dense": "inter",
    "output.dense": "out",
    "output.LayerNorm": "out_norm",
}


def _our_name(name: str) -> str | None:
    name = name.removeprefix("bert.")
    if name.startswith("embeddings."):
        return {
            "embeddings.word_embeddings.weight": "word.weight",
            "embeddings.position_embeddings.weight": "position.weight",
            "embeddings.token_type_embeddings.weight": "token_type.weight",
            "embeddings.LayerNorm.weight": "norm.weight",
            "embeddings.LayerNorm.bias": "norm.bias",
        }.get(name)
    if name.startswith("encoder.layer."):
        index, rest = name.removeprefix("encoder.layer.").split(".", 1)
        module, _, param = rest.rpartition(".")
        return f"layers.{index}.{_RENAMES[module]}.{param}" if module in _RENAMES else None
    return None  # pooler, position_ids: not used for mean-pooled sentence vectors


def load_slim_bert(model_dir: Path) -> SlimBert | None:
    """The model in `model_dir` as a SlimBert, or None if its layout is not the supported one."""
    if not slim_bert_supported(model_dir):
        return None
    from safetensors.torch import load_file

    config = json.loads((model_dir / "config.json").read_text())
    model = SlimBert(config)
    state = {
        ours: tensor
        for name, tensor in load_file(str(model_dir / "model.safetensors")).items()
        if (ours := _our_name(name)) is not None
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{model_dir}/model.safetensors: weights do not fit a BERT encoder "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.eval()
