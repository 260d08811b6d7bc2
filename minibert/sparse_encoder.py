"""SPLADE sparse embeddings: a BertForMaskedLM's logits, pooled into one weight per vocabulary entry, as
sentence-transformers' `SparseEncoder` (v6.3, `sentence_transformers/sparse_encoder/model.py`) computes them:

    texts -> Tokenizer -> bert -> cls.predictions (the MLM head) -> logits [T, V] for each real token
          -> SpladePooling: max over a text's tokens of log(1 + relu(logits)) -> [B, V], mostly zeros

The MLM head runs on a few rows at a time (TOKEN_CHUNK tokens), so a batch never holds a [B, S, V] array; padded
positions give log(1 + relu(0)) = 0, as upstream, which the max over non-negative values ignores.

Shape legend: B batch, S sequence length, T real tokens, H hidden size, V vocabulary size.
"""

from pathlib import Path

import numpy as np

from .batching import progress_bar, run_in_length_batches
from .errors import CheckpointError, InputError
from .heads import BertForMaskedLM, bert_lm_prediction_head
from .hub import Need
from .inputs import as_inputs, check_batch_size, check_numpy_output, first_argument
from .model_files import MODULES_JSON, read_json, read_modules
from .parallel import products_on
from .pooling import splade_pooling
from .pretrained import resolve_pretrained
from .similarity import SIMILARITY_FUNCTIONS, similarity_function_name
from .st_config import (
    check_transformer_task,
    document_prompt_name,
    hub_name,
    load_tokenizer,
    query_prompt_name,
    read_model_settings,
    read_transformer_settings,
    resolve_prompt,
)
from .untrusted import quote

# Real tokens sent through the MLM head at once: a [TOKEN_CHUNK, V] float32 array of 31 MB at BERT's 30522 entries.
TOKEN_CHUNK = 256


def read_splade_config(directory: Path) -> tuple[Path, dict]:
    """(the Transformer folder, SpladePooling's config.json) of a SPLADE directory: Transformer (fill-mask) then
    SpladePooling, nothing else."""
    modules_json = directory / MODULES_JSON
    if not modules_json.is_file():
        raise CheckpointError(f"{directory}: no modules.json, so this is not a sentence-transformers SparseEncoder")
    modules = read_modules(modules_json)
    if [kind for kind, _ in modules] != ["Transformer", "SpladePooling"]:
        raise CheckpointError(
            f"{modules_json}: modules are {[kind for kind, _ in modules]}; a SPLADE model minibert reads is a "
            "Transformer (fill-mask) followed by SpladePooling"
        )
    path = directory / modules[1][1] / "config.json"
    config = read_json(path) if path.is_file() else {}
    if config.get("pooling_strategy", "max") not in ("max", "sum"):
        raise CheckpointError(
            f"{path}: pooling_strategy must be 'max' or 'sum', found {quote(config['pooling_strategy'])}"
        )
    if config.get("activation_function", "relu") not in ("relu", "log1p_relu"):
        raise CheckpointError(
            f"{path}: activation_function must be 'relu' or 'log1p_relu', found {quote(config['activation_function'])}"
        )
    return directory / modules[0][1], config


class SparseEncoder:
    """`SparseEncoder(path_or_hub_id).encode(sentences)` -> float32 [N, V], as sentence-transformers' SparseEncoder
    (a short name gets "sparse-encoder/" in front).

    Where minibert differs: encode returns a dense NumPy array [N, V] (upstream a torch sparse tensor):
    convert_to_tensor and convert_to_sparse_tensor are accepted and change nothing; `decode` takes that array.
    """

    ORGANIZATION = "sparse-encoder"
    DEFAULT_PROMPTS = {"query": "", "document": ""}

    def __init__(
        self,
        model_name_or_path=None,
        *,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | None = None,
        max_active_dims: int | None = None,
        cache_folder=None,
        revision: str | None = None,
        local_files_only: bool = False,
        device: str | None = None,
        dtype=np.float32,
        check_finite: bool = True,
    ):
        where = type(self).__name__
        check_numpy_output(False, device, where)
        dtype, directory = resolve_pretrained(
            hub_name(model_name_or_path, self.ORGANIZATION),
            Need.SENTENCE_MODEL,
            dtype,
            revision=revision,
            cache_dir=cache_folder,
            local_files_only=local_files_only,
        )
        transformer_dir, pooling = read_splade_config(directory)
        transformer = read_transformer_settings(transformer_dir)
        check_transformer_task(transformer, "fill-mask", transformer_dir, "a SPLADE model")
        self.model = BertForMaskedLM.from_pretrained(transformer_dir, dtype, check_finite=check_finite)
        self.tokenizer, self.max_seq_length = load_tokenizer(
            transformer_dir, transformer, self.model.config.max_position_embeddings
        )
        self.pooling_strategy = pooling.get("pooling_strategy", "max")
        self.activation_function = pooling.get("activation_function", "relu")
        settings = read_model_settings(directory)
        self.prompts = {**self.DEFAULT_PROMPTS, **settings.prompts, **(prompts or {})}
        self.default_prompt_name = default_prompt_name or settings.default_prompt_name
        self._similarity_fn_name = None
        self.similarity_fn_name = similarity_fn_name or settings.similarity_fn_name
        self.max_active_dims = max_active_dims if max_active_dims is not None else settings.max_active_dims

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
    ) -> "SparseEncoder":
        """A model directory or hub id with minibert's usual arguments; unlike the constructor, a name is taken as it
        is (no organisation put in front), as every from_pretrained takes it."""
        dtype, directory = resolve_pretrained(
            path, Need.SENTENCE_MODEL, dtype, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
        )
        return cls(directory, dtype=dtype, check_finite=check_finite)

    @property
    def dim(self) -> int:
        return self.model.config.vocab_size

    def get_embedding_dimension(self) -> int:
        return self.dim

    get_sentence_embedding_dimension = get_embedding_dimension

    def get_max_seq_length(self) -> int:
        return self.max_seq_length

    @property
    def similarity_fn_name(self) -> str:
        """config_sentence_transformers.json's, else "dot" (SparseEncoder's default)."""
        return self._similarity_fn_name or "dot"

    @similarity_fn_name.setter
    def similarity_fn_name(self, value) -> None:
        self._similarity_fn_name = None if value is None else similarity_function_name(value, type(self).__name__)

    def similarity(self, embeddings1, embeddings2) -> np.ndarray:
        """similarity_fn_name's score for every pair: [n, V] x [m, V] -> [n, m]."""
        return SIMILARITY_FUNCTIONS[self.similarity_fn_name][0](embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1, embeddings2) -> np.ndarray:
        """similarity_fn_name's score row by row: [n, V] x [n, V] -> [n]."""
        return SIMILARITY_FUNCTIONS[self.similarity_fn_name][1](embeddings1, embeddings2)

    def count_tokens(self, sentences, prompt_name: str | None = None, prompt: str | None = None) -> np.ndarray:
        """[N] int64: the tokens each text is given to the model as, prompt and special tokens included."""
        texts, single = as_inputs(sentences, "count_tokens")
        prompt = resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name, "count_tokens")
        if not texts:
            return np.zeros(0, dtype=np.int64)
        counts = self.tokenizer.token_counts([(prompt or "") + t for t in texts], max_length=self.max_seq_length)
        return counts[0] if single else counts

    def _embed_encoded(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        """Tokenized rows [B, S] -> SPLADE vectors [B, V]: the encoder, then the MLM head and the pooling over each
        row's real tokens, TOKEN_CHUNK tokens at a time."""
        hidden = self.model.bert(**encoded).last_hidden_state  # [B, S, H]
        mask = encoded["attention_mask"]  # [B, S]
        out = np.zeros((len(hidden), self.dim), dtype=hidden.dtype)  # [B, V]; every pooled value is >= 0
        rows = max(1, TOKEN_CHUNK // hidden.shape[1])
        with products_on():  # the head's products on the call's threads, as BertForMaskedLM's
            for start in range(0, len(hidden), rows):
                part = slice(start, start + rows)
                logits = bert_lm_prediction_head(hidden[part], **self.model.head, config=self.model.config)  # [r, S, V]
                out[part] = splade_pooling(logits, mask[part], self.pooling_strategy, self.activation_function)
        return out

    def encode(
        self,
        sentences=None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        max_active_dims: int | None = None,
        *,
        inputs=None,
        convert_to_tensor: bool = True,
        convert_to_sparse_tensor: bool = True,
        device: str | None = None,
    ) -> np.ndarray:
        """SPLADE vectors: float32 [N, V] (a single string gives [V]), in input order. As upstream: the prompt goes in
        front of each text; max_active_dims (default: the model's) keeps each row's largest values and sets the rest
        to 0. convert_to_tensor and convert_to_sparse_tensor are accepted for ported code: the result is always a
        dense NumPy array."""
        where = f"{type(self).__name__}.encode"
        texts, single = as_inputs(first_argument(sentences, inputs, where), where)
        check_numpy_output(False, device, where)
        check_batch_size(batch_size, where)
        max_active_dims = self.max_active_dims if max_active_dims is None else max_active_dims
        if max_active_dims is not None and (
            isinstance(max_active_dims, bool) or not isinstance(max_active_dims, int) or max_active_dims < 1
        ):
            raise InputError(f"{where}: max_active_dims must be a positive integer or None, found {max_active_dims!r}")
        prompt = resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name, where)
        out = np.empty((len(texts), self.dim), dtype=np.float32)

        def tokenize(chunk: list[str]) -> dict[str, np.ndarray]:
            if prompt:
                chunk = [prompt + text for text in chunk]
            return self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_seq_length)

        update, bar = progress_bar(show_progress_bar, len(texts))
        try:
            run_in_length_batches(texts, tokenize, self._embed_encoded, out, batch_size, on_batch=update)
        finally:
            if bar is not None:
                bar.close()
        if max_active_dims is not None and max_active_dims < self.dim:
            out = keep_largest(out, max_active_dims)
        return out[0] if single else out

    def encode_query(self, sentences=None, prompt_name: str | None = None, prompt: str | None = None, **kwargs):
        """encode() with the model's "query" prompt unless a prompt or prompt_name is given (upstream's rule)."""
        return self.encode(sentences, query_prompt_name(self.prompts, prompt, prompt_name), prompt, **kwargs)

    def encode_document(self, sentences=None, prompt_name: str | None = None, prompt: str | None = None, **kwargs):
        """encode() with the model's "document", "passage" or "corpus" prompt unless one is given (upstream's rule)."""
        return self.encode(sentences, document_prompt_name(self.prompts, prompt, prompt_name), prompt, **kwargs)

    def decode(self, embeddings, top_k: int | None = None) -> list:
        """The (token, weight) pairs of a SPLADE vector [V], largest weight first (top_k of them, default all the
        non-zero ones); for [N, V], one such list per row. As SparseEncoder.decode, on NumPy arrays."""
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"decode: top_k must be a positive integer or None, found {top_k!r}")
        embeddings = np.asarray(embeddings)
        if embeddings.ndim not in (1, 2) or embeddings.shape[-1] != self.dim:
            raise InputError(f"decode: expected an array [{self.dim}] or [N, {self.dim}], found {embeddings.shape}")
        results = []
        for row in np.atleast_2d(embeddings):
            ids = np.flatnonzero(row)
            ids = ids[np.argsort(-row[ids], kind="stable")][:top_k]  # largest first
            results.append(list(zip(self.tokenizer.convert_ids_to_tokens(ids), row[ids].tolist(), strict=True)))
        return results[0] if embeddings.ndim == 1 else results

    def __repr__(self) -> str:
        return (
            f"SparseEncoder(vocab={self.dim}, pooling={self.pooling_strategy}/{self.activation_function}, "
            f"max_seq_length={self.max_seq_length}, similarity={self.similarity_fn_name}, dtype={self.model.dtype})"
        )


def keep_largest(embeddings: np.ndarray, k: int) -> np.ndarray:
    """Each row's k values of largest magnitude kept, the rest set to 0 (select_max_active_dims). [N, V] -> [N, V]"""
    top = np.argpartition(-np.abs(embeddings), k - 1, axis=-1)[:, :k]  # [N, k]
    kept = np.zeros_like(embeddings)
    np.put_along_axis(kept, top, np.take_along_axis(embeddings, top, axis=-1), axis=-1)
    return kept
