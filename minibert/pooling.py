"""The modules that follow the Transformer in a sentence-transformers model, as pure functions over NumPy arrays:

    Pooling        token embeddings [B, S, H], attention mask [B, S] -> [B, H] (mean, cls, max, ...)
    Dense          [B, H] -> act(x Wᵀ + b) [B, H']
    Normalize      [B, H] -> x / |x|
    SpladePooling  MLM logits [B, S, V] -> max over real tokens of log(1 + relu(logits)) [B, V]

Pooling mirrors sentence-transformers v6.3, `sentence_transformers/sentence_transformer/modules/pooling.py`,
`Pooling._forward_padded`, operation for operation; Dense `base/modules/dense.py`; SpladePooling
`sparse_encoder/modules/splade_pooling.py`.

Shape legend: B batch, S sequence length, H hidden size, V vocabulary size.
"""

from collections.abc import Sequence

import numpy as np

from .functional import linear
from .similarity import normalize

__all__ = ["POOLING_FUNCTIONS", "dense", "normalize", "pool", "splade_pooling"]

# Pooling: pure functions of (token_embeddings [B, S, H], attention_mask [B, S]) -> [B, H], in the embeddings' dtype.


def _mask_as(attention_mask: np.ndarray, dtype) -> np.ndarray:
    return attention_mask.astype(dtype, copy=False)[:, :, None]  # [B, S] -> [B, S, 1]


def cls_pooling(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """h[b, first real token]: the first position the mask marks (0 unless the batch is left-padded). -> [B, H]"""
    first = np.argmax(attention_mask != 0, axis=1)  # [B]; an all-zero row gives 0, as torch's argmax does
    return token_embeddings[np.arange(len(first)), first]  # [B, S, H] -> [B, H]


def max_pooling(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """max over real tokens of h[b, s, :]. Padded positions are set to -inf first (v6.2; v2 used -1e9). -> [B, H]"""
    masked = np.where(_mask_as(attention_mask, token_embeddings.dtype) == 0, -np.inf, token_embeddings)
    return masked.max(axis=1).astype(token_embeddings.dtype, copy=False)  # [B, S, H] -> [B, H]


def _masked_sum_and_count(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mask = _mask_as(attention_mask, token_embeddings.dtype)  # [B, S, 1]
    total = (token_embeddings * mask).sum(axis=1)  # [B, S, H] -> [B, H]
    # clamp(min=1e-9) as upstream: a row without tokens gives 0 / 1e-9 = 0 rather than NaN.
    count = np.maximum(mask.sum(axis=1), token_embeddings.dtype.type(1e-9))  # [B, 1]
    return total, count


def mean_pooling(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """sum over real tokens of h / max(number of real tokens, 1e-9). -> [B, H]"""
    total, count = _masked_sum_and_count(token_embeddings, attention_mask)
    return total / count


def mean_sqrt_len_pooling(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """sum over real tokens of h / sqrt(max(number of real tokens, 1e-9)). -> [B, H]"""
    total, count = _masked_sum_and_count(token_embeddings, attention_mask)
    return total / np.sqrt(count)


def weighted_mean_pooling(
    token_embeddings: np.ndarray, attention_mask: np.ndarray, padding_mask: np.ndarray | None = None
) -> np.ndarray:
    """sum of w_s h_s / sum of w_s over real tokens, w_s = position counted from the first real token, 1-based.
    `padding_mask` (default: attention_mask) is the mask before a prompt was taken out of it: positions count from
    its first token, as upstream counts them from the original mask's. -> [B, H]"""
    B, S, _ = token_embeddings.shape
    padding_mask = attention_mask if padding_mask is None else padding_mask
    mask = _mask_as(attention_mask, token_embeddings.dtype)  # [B, S, 1]
    weights = np.arange(1, S + 1, dtype=token_embeddings.dtype)[None, :, None]  # [1, S, 1]
    weights = weights - np.argmax(padding_mask != 0, axis=1).astype(token_embeddings.dtype)[:, None, None]
    weighted_mask = mask * weights  # [B, S, 1]
    total = (token_embeddings * weighted_mask).sum(axis=1)  # [B, H]
    return total / np.maximum(weighted_mask.sum(axis=1), token_embeddings.dtype.type(1e-9))


def last_token_pooling(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """h[b, last real token]; a row without tokens gives zeros. -> [B, H]"""
    B, S, _ = token_embeddings.shape
    real = attention_mask != 0
    last = S - 1 - np.argmax(real[:, ::-1], axis=1)  # [B]
    last = np.where(real.any(axis=1), last, 0)  # upstream gathers position 0 of the masked (zeroed) embeddings
    masked = token_embeddings * _mask_as(attention_mask, token_embeddings.dtype)
    return masked[np.arange(B), last]  # [B, H]


# sentence-transformers' mode names, in the order it concatenates them when a config turns on several.
POOLING_FUNCTIONS = {
    "cls": cls_pooling,
    "max": max_pooling,
    "mean": mean_pooling,
    "mean_sqrt_len_tokens": mean_sqrt_len_pooling,
    "weightedmean": weighted_mean_pooling,
    "lasttoken": last_token_pooling,
}
# The boolean keys of 1_Pooling/config.json as written by sentence-transformers before v6, in that same order.
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def pool(
    token_embeddings: np.ndarray, attention_mask: np.ndarray, modes: Sequence[str], prompt_length: int = 0
) -> np.ndarray:
    """Each mode's pooled vector, concatenated in the order given. [B, S, H], [B, S] -> [B, len(modes) * H]

    prompt_length > 0 leaves the first prompt_length tokens (the [CLS] and the prompt's) out of the pooling, as a
    Pooling module with include_prompt=false does (Pooling._exclude_prompt_from_mask; rows here are right-padded)."""
    attention_mask = np.asarray(attention_mask)
    pooled_mask = attention_mask
    if prompt_length:
        pooled_mask = attention_mask.copy()
        pooled_mask[:, :prompt_length] = 0
    parts = [
        weighted_mean_pooling(token_embeddings, pooled_mask, attention_mask)
        if m == "weightedmean"
        else POOLING_FUNCTIONS[m](token_embeddings, pooled_mask)
        for m in modes
    ]
    return np.concatenate(parts, axis=-1)


# Dense's activation_function, as config.json names the torch module: only these two are implemented.
DENSE_ACTIVATIONS = {
    "torch.nn.modules.activation.Tanh": np.tanh,
    "torch.nn.modules.linear.Identity": lambda x: x,
}


def dense(x: np.ndarray, *, weight: np.ndarray, bias: np.ndarray | None, activation: str) -> np.ndarray:
    """act(x Wᵀ + b), sentence-transformers' Dense module (linear, then its activation_function). [B, H] -> [B, H']"""
    y = x @ weight.T if bias is None else linear(x, weight=weight, bias=bias)  # [B, H] @ [H, H'] -> [B, H']
    return DENSE_ACTIVATIONS[activation](y)


def splade_pooling(logits: np.ndarray, attention_mask: np.ndarray, strategy: str = "max", activation: str = "relu"):
    """max (or sum) over real tokens of log(1 + relu(logits · mask)): SpladePooling. "log1p_relu" takes log1p once
    more. [B, S, V], [B, S] -> [B, V]"""
    x = logits * _mask_as(np.asarray(attention_mask), logits.dtype)  # [B, S, V]; padded positions give 0
    np.maximum(x, 0, out=x)
    np.log1p(x, out=x)
    if activation == "log1p_relu":
        np.log1p(x, out=x)
    return x.max(axis=1) if strategy == "max" else x.sum(axis=1)  # [B, S, V] -> [B, V]
