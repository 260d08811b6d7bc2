"""Sentence embeddings as sentence-transformers computes them: BertModel, then pooling, then (optionally) L2 norm.

    texts -> Tokenizer (truncated to max_seq_length) -> bert_model -> last_hidden_state [B, S, H]
          -> pooling over the real tokens (mean, cls, max, ...) [B, H] -> normalize -> [B, H]

A sentence-transformers model directory says which steps to take: `modules.json` lists the modules in order (a
Transformer, a Pooling, and often a Normalize), `sentence_bert_config.json` holds max_seq_length, and the Pooling
module's `config.json` holds its modes. Only those three module types are implemented; any other (Dense, LayerNorm,
Router, ...) is refused by name rather than skipped, since skipping it would give different embeddings.

Pooling functions mirror sentence-transformers v6.2.0, `sentence_transformers/sentence_transformer/modules/
pooling.py`, `Pooling._forward_padded`, operation for operation; the encode loop mirrors
`SentenceTransformer._inference` (sort by length, batch, restore input order).

Shape legend: B batch, S sequence length, H hidden size.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoint import load_pretrained
from .config import MAX_SIZES
from .errors import CheckpointError, InputError
from .hub import Need, resolve_model_dir
from .inputs import check_dtype
from .model import BertModel
from .model_files import (
    MODULES_JSON,
    PLAIN_BERT_CLI_FIX,
    PLAIN_BERT_FIX,
    SENTENCE_BERT_CONFIG,
    read_json,
    read_modules,
)
from .tokenizer import Tokenizer
from .untrusted import quote

BATCH_SIZE = 32  # texts per forward pass: sentence-transformers' default, and `minibert embed --batch-size`'s

# ----------------------------------------------------------------------------------------------------------
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


def weighted_mean_pooling(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """sum of w_s h_s / sum of w_s over real tokens, w_s = position counted from the first real token, 1-based."""
    B, S, _ = token_embeddings.shape
    mask = _mask_as(attention_mask, token_embeddings.dtype)  # [B, S, 1]
    weights = np.arange(1, S + 1, dtype=token_embeddings.dtype)[None, :, None]  # [1, S, 1]
    weights = weights - np.argmax(attention_mask != 0, axis=1).astype(token_embeddings.dtype)[:, None, None]
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
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def pool(token_embeddings: np.ndarray, attention_mask: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """Each mode's pooled vector, concatenated in the order given. [B, S, H], [B, S] -> [B, len(modes) * H]"""
    attention_mask = np.asarray(attention_mask)
    return np.concatenate([POOLING_FUNCTIONS[m](token_embeddings, attention_mask) for m in modes], axis=-1)


def normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """x / max(||x||_2, eps) along the last axis, as torch.nn.functional.normalize. [..., H] -> [..., H]"""
    norm = np.sqrt((x * x).sum(axis=-1, keepdims=True))  # [..., 1]
    return x / np.maximum(norm, x.dtype.type(eps))


def cosine_similarity(a, b) -> np.ndarray:
    """cos(a_i, b_j) for every pair of rows: [n, H] x [m, H] -> [n, m]; a 1-D vector counts as one row.

    Like sentence_transformers.util.cos_sim, the result is always 2-D: `cosine_similarity(u, v)[0, 0]` for two
    vectors.
    """
    a, b = np.asarray(a), np.asarray(b)
    for name, x in (("a", a), ("b", b)):
        if x.ndim not in (1, 2) or x.dtype.kind != "f":
            raise InputError(f"cosine_similarity: {name} must be a 1-D or 2-D float array, found {x.dtype} {x.shape}")
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    if a.shape[1] != b.shape[1]:
        raise InputError(f"cosine_similarity: a has {a.shape[1]} dimensions but b has {b.shape[1]}; they must match")
    return normalize(a) @ normalize(b).T  # [n, H] @ [H, m] -> [n, m]


# ----------------------------------------------------------------------------------------------------------
# Reading a sentence-transformers directory.


def pooling_modes(config: dict, source: str) -> tuple[str, ...]:
    """The pooling modes a Pooling config.json turns on: `pooling_mode` (v6) or the pooling_mode_* booleans."""
    if "pooling_mode" in config:
        modes = config["pooling_mode"]
        modes = (modes,) if isinstance(modes, str) else modes
        if not isinstance(modes, list | tuple) or not all(isinstance(mode, str) for mode in modes):
            raise CheckpointError(f"{source}: pooling_mode must be a string or a list of strings, found {quote(modes)}")
        modes = tuple(modes)
    else:
        modes = tuple(mode for key, mode in _LEGACY_POOLING_KEYS.items() if config.get(key, False))
        modes = modes or ("mean",)  # upstream's default when no flag is set
    unknown = [m for m in modes if m not in POOLING_FUNCTIONS]
    if unknown or not modes:
        raise CheckpointError(
            f"{source}: pooling mode(s) {quote(unknown or modes)} not supported; known: {list(POOLING_FUNCTIONS)}"
        )
    # include_prompt only matters with prompts, which encode() does not take.
    return modes


@dataclass(frozen=True)
class SentenceConfig:
    """What a sentence-transformers model directory says, checked; read by read_sentence_config."""

    transformer_dir: Path  # the Transformer module's folder: config.json, the weights, the tokenizer files
    modules: tuple[str, ...]  # modules.json's kinds, in order: Transformer, Pooling[, Normalize]
    pooling_modes: tuple[str, ...]
    pooling_config: dict  # the Pooling module's config.json as written
    pooling_config_path: Path
    normalize: bool
    max_seq_length: int | None  # sentence_bert_config.json's; None: the tokenizer's, capped at the position table
    do_lower_case: bool


def read_sentence_config(directory: Path) -> SentenceConfig:
    """Parse and check a sentence-transformers directory's modules.json, sentence_bert_config.json and Pooling
    config.json (no weights are read): the one place that knows how such a directory is arranged."""
    directory = Path(directory)
    modules_json = directory / MODULES_JSON
    if not modules_json.is_file():
        raise CheckpointError(
            f"{directory}: no modules.json, so this is not a sentence-transformers model directory;",
            fix=PLAIN_BERT_FIX,
            cli_fix=PLAIN_BERT_CLI_FIX,
        )
    modules = read_modules(modules_json)
    kinds = tuple(kind for kind, _ in modules)
    transformer_dir = directory / modules[0][1]

    st_config_path = transformer_dir / SENTENCE_BERT_CONFIG
    st_config = read_json(st_config_path) if st_config_path.is_file() else {}
    max_seq_length = st_config.get("max_seq_length")
    if max_seq_length is not None and (
        isinstance(max_seq_length, bool)
        or not isinstance(max_seq_length, int)
        or not 2 <= max_seq_length <= MAX_SIZES["max_position_embeddings"]
    ):
        raise CheckpointError(
            f"{st_config_path}: max_seq_length must be an integer from 2 to {MAX_SIZES['max_position_embeddings']}, "
            f"found {quote(max_seq_length)}"
        )
    do_lower_case = st_config.get("do_lower_case", False)
    if not isinstance(do_lower_case, bool):
        raise CheckpointError(f"{st_config_path}: do_lower_case must be true or false, found {quote(do_lower_case)}")

    pooling_config_path = directory / modules[1][1] / "config.json"
    if not pooling_config_path.is_file():
        raise CheckpointError(f"{pooling_config_path}: missing; the Pooling module's modes are read from it")
    pooling_config = read_json(pooling_config_path)
    return SentenceConfig(
        transformer_dir=transformer_dir,
        modules=kinds,
        pooling_modes=pooling_modes(pooling_config, str(pooling_config_path)),
        pooling_config=pooling_config,
        pooling_config_path=pooling_config_path,
        normalize="Normalize" in kinds,
        max_seq_length=max_seq_length,
        do_lower_case=do_lower_case,
    )


# encode tokenizes this many batches in one call: enough texts for the tokenizers library to spread over the cores and
# to cut batches of similar token counts from, few enough that the padded id arrays stay small (64 x 32 x 256 int64
# ids: 4 MiB per array at MiniLM's max_seq_length).
TOKENIZE_CHUNK_BATCHES = 64
# A batch ends before a text shorter than this share of its longest, so that at most ~10% of what it computes is
# padding (rows of fixed count, as sentence-transformers batches them, computed 27% padding on mixed-length prose).
SAME_LENGTH_SHARE = 0.9


def length_batches(lengths: np.ndarray, batch_size: int) -> list[slice]:
    """Consecutive batches of rows sorted longest first: at most batch_size rows, each at least SAME_LENGTH_SHARE of
    its batch's first (longest) row. [C] token counts, longest first -> slices of them"""
    batches, start = [], 0
    for i in range(1, len(lengths) + 1):
        if i == len(lengths) or i - start == batch_size or lengths[i] < SAME_LENGTH_SHARE * lengths[start]:
            batches.append(slice(start, i))
            start = i
    return batches


class SentenceEncoder:
    """`SentenceEncoder.from_pretrained(dir).encode(texts)` -> float32 [len(texts), dim], as SentenceTransformer."""

    def __init__(self, model: BertModel, tokenizer, max_seq_length: int, modes: Sequence[str], normalize: bool):
        self.model = model
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.pooling_modes = tuple(modes)
        self.normalize = normalize

    @property
    def dim(self) -> int:
        return len(self.pooling_modes) * self.model.config.hidden_size

    @classmethod
    def from_pretrained(
        cls,
        path,
        dtype=np.float32,
        *,
        revision: str | None = None,
        cache_dir=None,
        local_files_only: bool = False,
        check_finite: bool = True,
    ) -> "SentenceEncoder":
        """A sentence-transformers model directory or hub id: modules.json, then the Transformer's BertModel and
        tokenizer, the Pooling config, and Normalize. A hub id fetches those files (hub.Need.SENTENCE_MODEL);
        `revision`, `cache_dir`, `local_files_only` and `check_finite` mean what they mean for BertModel."""
        dtype = check_dtype(dtype)  # before any download
        directory = resolve_model_dir(
            path, Need.SENTENCE_MODEL, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
        )
        return cls.from_directory(directory, dtype, check_finite=check_finite)

    @classmethod
    def from_directory(cls, directory: Path, dtype=np.float32, *, check_finite: bool = True) -> "SentenceEncoder":
        """The encoder of a local sentence-transformers directory, already resolved (by from_pretrained, or by the
        embedding job at its door): nothing is looked up on the hub."""
        dtype = check_dtype(dtype)
        config = read_sentence_config(Path(directory))
        model = BertModel(*load_pretrained(config.transformer_dir, dtype=dtype, check_finite=check_finite))
        tokenizer = Tokenizer.from_directory(config.transformer_dir)
        max_seq_length = config.max_seq_length
        if max_seq_length is None:
            # upstream: the tokenizer's model_max_length, capped at max_position_embeddings
            max_seq_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
        if config.do_lower_case:
            _lowercase_first(tokenizer)
        pooling = config.pooling_config
        dim = pooling.get("embedding_dimension", pooling.get("word_embedding_dimension"))
        if dim is not None and dim != model.config.hidden_size:
            raise CheckpointError(
                f"{config.pooling_config_path}: embedding dimension {dim}, but the model's hidden_size is "
                f"{model.config.hidden_size}; is this Pooling config from another model?"
            )
        return cls(model, tokenizer, max_seq_length, config.pooling_modes, normalize=config.normalize)

    def embed_batch(self, texts: list[str], threads: int | None = None) -> np.ndarray:
        """One batch, in the model's dtype: tokenize (pad to the longest, truncate), forward, pool, normalize."""
        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length)
        return self._embed_encoded(encoded, threads)

    def _embed_encoded(self, encoded: dict[str, np.ndarray], threads: int | None = None) -> np.ndarray:
        """Tokenized rows [B, S] -> embeddings [B, dim]: forward, pool over the real tokens, normalize."""
        token_embeddings = self.model(**encoded, threads=threads).last_hidden_state  # [B, S, H]
        embeddings = pool(token_embeddings, encoded["attention_mask"], self.pooling_modes)  # [B, H']
        return normalize(embeddings) if self.normalize else embeddings

    def encode(
        self, texts, batch_size: int = BATCH_SIZE, dtype=np.float32, on_batch=None, threads: int | None = None
    ) -> np.ndarray:
        """Embed texts: [len(texts), dim] (a single string gives [dim]), in input order, as `dtype` (float32, like
        SentenceTransformer.encode; np.float64 keeps all of a float64 model's digits). `on_batch`, if given, is
        called with each batch's number of texts once it is embedded (a progress bar's update). `threads` is the
        model's (BertModel.__call__): by default $MINIBERT_NUM_THREADS, else every core this process may run on.

        Texts are sorted longest first by characters, as sentence-transformers does, and tokenized in chunks of
        TOKENIZE_CHUNK_BATCHES batches, one call each (the tokenizers library encodes a list on all cores unless
        TOKENIZERS_PARALLELISM=false). Within a chunk the rows are sorted by token count and cut into batches of at
        most batch_size rows of nearly the same length (length_batches), each padded only to its own longest row, so
        a batch computes little padding; rows go back in input order at the end. Which texts share a batch changes
        only the rounding of their rows (the padding is masked).
        """
        single = isinstance(texts, str)
        texts = [texts] if single else texts
        if not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
            raise InputError("encode: texts must be a string or a list of strings")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"encode: batch_size must be a positive integer, found {batch_size!r}")
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first, by characters
        out = np.empty((len(texts), self.dim), dtype=dtype)
        chunk = batch_size * TOKENIZE_CHUNK_BATCHES
        for start in range(0, len(texts), chunk):
            rows = order[start : start + chunk]  # [C] indices into texts
            encoded = self.tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True, max_length=self.max_seq_length
            )  # [C, S_chunk], padded on the right to the chunk's longest
            lengths = encoded["attention_mask"].sum(axis=1)  # [C] tokens per row
            by_tokens = np.argsort(-lengths, kind="stable")  # longest first, by tokens
            for batch_rows in length_batches(lengths[by_tokens], batch_size):
                pick = by_tokens[batch_rows]  # [B] positions in the chunk
                longest = int(lengths[pick].max())
                batch = {name: array[pick, :longest] for name, array in encoded.items()}  # [B, S]
                out[rows[pick]] = self._embed_encoded(batch, threads)
                if on_batch is not None:
                    on_batch(len(pick))
        return out[0] if single else out

    def __repr__(self) -> str:
        modes = "+".join(self.pooling_modes)
        return (
            f"SentenceEncoder(dim={self.dim}, pooling={modes}, normalize={self.normalize}, "
            f"max_seq_length={self.max_seq_length}, dtype={self.model.dtype})"
        )


def _lowercase_first(tokenizer) -> None:
    """Put a Lowercase normalizer in front of the tokenizer's own, unless it already lower-cases (as upstream)."""
    from tokenizers.normalizers import Lowercase, Sequence

    normalizer = tokenizer.backend.normalizer
    present = isinstance(normalizer, Lowercase) or (
        isinstance(normalizer, Sequence) and any(isinstance(n, Lowercase) for n in normalizer)
    )
    if present:
        return
    parts = [Lowercase()]
    if isinstance(normalizer, Sequence):
        parts += list(normalizer)
    elif normalizer is not None:
        parts.append(normalizer)
    tokenizer.backend.normalizer = Sequence(parts)
