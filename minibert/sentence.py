"""Sentence embeddings as sentence-transformers computes them: BertModel, then pooling, then the modules after it.

    texts -> (prompt + text) -> Tokenizer (truncated to max_seq_length) -> bert_model -> last_hidden_state [B, S, H]
          -> Pooling over the real tokens (mean, cls, max, ...) [B, H] -> Dense ... -> Normalize -> [B, D]
          -> truncate_dim, normalize_embeddings, precision (what encode() is asked for)

A sentence-transformers model directory says which steps to take: `modules.json` lists the modules in order (a
Transformer, a Pooling, any Dense layers, often a Normalize), `config_sentence_transformers.json` the prompts and the
similarity function, `sentence_bert_config.json` max_seq_length, and the Pooling and Dense modules' `config.json`
their settings. Any other module (LayerNorm, Router, ...) is refused by name rather than skipped, since skipping it
would give different embeddings.

`SentenceEncoder` follows sentence-transformers v6.3's `SentenceTransformer` (`sentence_transformers/
sentence_transformer/model.py`): the same constructor, encode, encode_query, encode_document, similarity and
similarity_pairwise, with the differences its docstrings name (NumPy arrays out, never tensors; CPU only).

Shape legend: B batch, S sequence length, H hidden size, D embedding size.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batching import progress_bar, run_in_length_batches
from .checkpoint import load_pretrained, read_tensors
from .errors import CheckpointError, InputError
from .hub import Need
from .inputs import as_inputs, check_batch_size, check_dtype, check_numpy_output, check_truncate_dim, first_argument
from .model_files import MODULES_JSON, PLAIN_BERT_CLI_FIX, PLAIN_BERT_FIX, read_json, read_modules
from .parallel import products_on
from .pooling import DENSE_ACTIVATIONS, LEGACY_POOLING_KEYS, POOLING_FUNCTIONS, dense, normalize, pool
from .pretrained import BertModel, resolve_pretrained
from .quantize import check_precision, quantize_embeddings
from .similarity import SIMILARITY_FUNCTIONS, cosine_similarity, similarity_function_name
from .st_config import (
    ModelSettings,
    TransformerSettings,
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

logger = logging.getLogger("minibert")

BATCH_SIZE = 32  # texts per forward pass: sentence-transformers' default, and `minibert embed --batch-size`'s

__all__ = ["SentenceEncoder", "SentenceTransformer", "cosine_similarity", "read_sentence_config"]

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
        modes = tuple(mode for key, mode in LEGACY_POOLING_KEYS.items() if config.get(key, False))
        modes = modes or ("mean",)  # upstream's default when no flag is set
    unknown = [m for m in modes if m not in POOLING_FUNCTIONS]
    if unknown or not modes:
        raise CheckpointError(
            f"{source}: pooling mode(s) {quote(unknown or modes)} not supported; known: {list(POOLING_FUNCTIONS)}"
        )
    return modes


@dataclass(frozen=True)
class DenseConfig:
    """A Dense module: its folder and config.json's settings (the weights are read when the model is loaded)."""

    folder: Path
    in_features: int
    out_features: int
    bias: bool
    activation: str  # a key of pooling.DENSE_ACTIVATIONS


def read_dense_config(folder: Path) -> DenseConfig:
    """A Dense module's config.json, checked: the activations minibert implements, no residual."""
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the Dense module's sizes and activation are read from it")
    values = read_json(path)
    sizes = [values.get("in_features"), values.get("out_features")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and 0 < n <= 65536 for n in sizes):
        raise CheckpointError(f"{path}: in_features and out_features must be positive integers, found {quote(sizes)}")
    activation = values.get("activation_function", "torch.nn.modules.activation.Tanh")  # upstream's default
    if activation not in DENSE_ACTIVATIONS:
        raise CheckpointError(
            f"{path}: activation_function {quote(activation)} is not implemented; minibert's Dense supports "
            f"{list(DENSE_ACTIVATIONS)}"
        )
    if values.get("use_residual", False):
        raise CheckpointError(f"{path}: use_residual is true, which minibert's Dense does not implement")
    if values.get("module_input_name", "sentence_embedding") != "sentence_embedding" or values.get(
        "module_output_name", "sentence_embedding"
    ) not in (None, "sentence_embedding"):
        raise CheckpointError(f"{path}: minibert's Dense reads and writes the sentence embedding only")
    return DenseConfig(folder, sizes[0], sizes[1], bool(values.get("bias", True)), activation)


@dataclass(frozen=True)
class SentenceConfig:
    """What a sentence-transformers model directory says, checked; read by read_sentence_config."""

    transformer_dir: Path  # the Transformer module's folder: config.json, the weights, the tokenizer files
    modules: tuple[str, ...]  # modules.json's kinds, in order: Transformer, Pooling, Dense..., [Normalize]
    pooling_modes: tuple[str, ...]
    pooling_config: dict  # the Pooling module's config.json as written
    pooling_config_path: Path
    include_prompt: bool  # false: the prompt's tokens are left out of the pooling
    dense: tuple[DenseConfig, ...]
    normalize: bool
    max_seq_length: int | None  # sentence_bert_config.json's; None: the tokenizer's, capped at the position table
    do_lower_case: bool
    transformer: TransformerSettings
    settings: ModelSettings  # config_sentence_transformers.json


def read_sentence_config(directory: Path) -> SentenceConfig:
    """Parse and check a sentence-transformers directory's modules.json, config_sentence_transformers.json,
    sentence_bert_config.json and the Pooling and Dense config.json files (no weights are read): the one place that
    knows how such a directory is arranged."""
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
    body = kinds[2:-1] if kinds[-1] == "Normalize" else kinds[2:]
    if len(kinds) < 2 or kinds[1] != "Pooling" or any(kind != "Dense" for kind in body):
        raise CheckpointError(
            f"{modules_json}: modules are {list(kinds)}; a sentence embedder is Transformer, Pooling, any Dense, and "
            "an optional Normalize last (a SPLADE model is read by minibert.SparseEncoder)"
        )
    transformer_dir = directory / modules[0][1]
    transformer = read_transformer_settings(transformer_dir)
    check_transformer_task(transformer, "feature-extraction", transformer_dir, "a sentence embedder")

    pooling_config_path = directory / modules[1][1] / "config.json"
    if not pooling_config_path.is_file():
        raise CheckpointError(f"{pooling_config_path}: missing; the Pooling module's modes are read from it")
    pooling_config = read_json(pooling_config_path)
    include_prompt = pooling_config.get("include_prompt", True)
    if not isinstance(include_prompt, bool):
        raise CheckpointError(f"{pooling_config_path}: include_prompt must be true or false, found {include_prompt!r}")
    return SentenceConfig(
        transformer_dir=transformer_dir,
        modules=kinds,
        pooling_modes=pooling_modes(pooling_config, str(pooling_config_path)),
        pooling_config=pooling_config,
        pooling_config_path=pooling_config_path,
        include_prompt=include_prompt,
        dense=tuple(read_dense_config(directory / folder) for kind, folder in modules if kind == "Dense"),
        normalize="Normalize" in kinds,
        max_seq_length=transformer.max_seq_length,
        do_lower_case=transformer.do_lower_case,
        transformer=transformer,
        settings=read_model_settings(directory),
    )


def load_dense(config: DenseConfig, dtype: np.dtype, check_finite: bool) -> dict:
    """A Dense module's weights from its folder (linear.weight [out, in], linear.bias [out]), checked."""
    tensors, source = read_tensors(config.folder, dtype)
    expected = {"linear.weight": (config.out_features, config.in_features)}
    if config.bias:
        expected["linear.bias"] = (config.out_features,)
    params = {}
    for name, shape in expected.items():
        tensor = tensors.get(name)
        if tensor is None or tensor.shape != shape:
            found = "missing" if tensor is None else f"shape {tensor.shape}"
            raise CheckpointError(f"{config.folder / source}: tensor {name!r} should have shape {shape}, {found}")
        if check_finite and not np.isfinite(tensor).all():
            raise CheckpointError(f"{config.folder / source}: tensor {name!r} holds non-finite values")
        params[name.removeprefix("linear.")] = tensor.astype(dtype, copy=False)
    return {"weight": params["weight"], "bias": params.get("bias"), "activation": config.activation}


# ----------------------------------------------------------------------------------------------------------
# The encoder.


class SentenceEncoder:
    """`SentenceEncoder(path_or_hub_id).encode(sentences)` -> float32 [len(sentences), D], as sentence-transformers'
    `SentenceTransformer` (also importable under that name): the same constructor and methods, NumPy arrays out.

    A short name is completed as sentence-transformers completes it ("all-MiniLM-L6-v2" ->
    "sentence-transformers/all-MiniLM-L6-v2"). `prompts`, `default_prompt_name`, `similarity_fn_name` and
    `truncate_dim` override config_sentence_transformers.json's, as upstream. minibert's own arguments: `dtype`
    (np.float64 keeps all of a float64 model's digits) and `check_finite`; `device` may only be None or "cpu".
    """

    ORGANIZATION = "sentence-transformers"
    # Upstream's _default_prompts: "query" and "document" exist (empty) unless the model gives them a text, so
    # encode_query never falls back to default_prompt_name.
    DEFAULT_PROMPTS = {"query": "", "document": ""}

    def __init__(
        self,
        model_name_or_path=None,
        *,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | None = None,
        truncate_dim: int | None = None,
        cache_folder=None,
        revision: str | None = None,
        local_files_only: bool = False,
        device: str | None = None,
        dtype=np.float32,
        check_finite: bool = True,
    ):
        check_numpy_output(False, device, type(self).__name__)
        dtype, directory = resolve_pretrained(
            hub_name(model_name_or_path, self.ORGANIZATION),
            Need.SENTENCE_MODEL,
            dtype,
            revision=revision,
            cache_dir=cache_folder,
            local_files_only=local_files_only,
        )
        self._load(directory, dtype, check_finite)
        if prompts is not None:
            self.prompts.update(prompts)
        if default_prompt_name is not None:
            self.default_prompt_name = default_prompt_name
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise InputError(
                f"{type(self).__name__}: default_prompt_name {self.default_prompt_name!r} is not one of the prompts "
                f"{list(self.prompts)}"
            )
        if similarity_fn_name is not None:
            self.similarity_fn_name = similarity_fn_name
        if truncate_dim is not None:
            self.truncate_dim = check_truncate_dim(truncate_dim, type(self).__name__)

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
        """A sentence-transformers model directory or hub id, with minibert's usual arguments. Unlike the
        constructor, a name is taken as it is (no "sentence-transformers/" in front), as every from_pretrained takes
        it, so that a mistyped folder name is reported as one."""
        dtype, directory = resolve_pretrained(
            path, Need.SENTENCE_MODEL, dtype, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
        )
        return cls.from_directory(directory, dtype, check_finite=check_finite)

    @classmethod
    def from_directory(cls, directory: Path, dtype=np.float32, *, check_finite: bool = True) -> "SentenceEncoder":
        """The encoder of a local sentence-transformers directory, already resolved (by the constructor, or by the
        embedding job at its door): nothing is looked up on the hub."""
        encoder = cls.__new__(cls)
        encoder._load(Path(directory), check_dtype(dtype), check_finite)
        return encoder

    def _load(self, directory: Path, dtype: np.dtype, check_finite: bool) -> None:
        config = read_sentence_config(directory)
        self.config = config
        self.model = BertModel(*load_pretrained(config.transformer_dir, dtype=dtype, check_finite=check_finite))
        self.tokenizer, self.max_seq_length = load_tokenizer(
            config.transformer_dir, config.transformer, self.model.config.max_position_embeddings
        )
        self.pooling_modes = config.pooling_modes
        self.include_prompt = config.include_prompt
        self.normalize = config.normalize  # the model's Normalize module (normalize_embeddings is encode's own)
        pooling = config.pooling_config
        dim = pooling.get("embedding_dimension", pooling.get("word_embedding_dimension"))
        if dim is not None and dim != self.model.config.hidden_size:
            raise CheckpointError(
                f"{config.pooling_config_path}: embedding dimension {dim}, but the model's hidden_size is "
                f"{self.model.config.hidden_size}; is this Pooling config from another model?"
            )
        self.dense = []
        width = len(self.pooling_modes) * self.model.config.hidden_size
        for layer in config.dense:
            if layer.in_features != width:
                raise CheckpointError(
                    f"{layer.folder / 'config.json'}: in_features is {layer.in_features}, but the module before it "
                    f"gives {width} dimensions"
                )
            self.dense.append(load_dense(layer, dtype, check_finite))
            width = layer.out_features
        settings = config.settings
        self.prompts = {**self.DEFAULT_PROMPTS, **settings.prompts}
        self.default_prompt_name = settings.default_prompt_name
        self._similarity_fn_name = settings.similarity_fn_name
        self.truncate_dim = settings.truncate_dim

    # ------------------------------------------------------------------------------------------------------
    # What ported code reads.

    @property
    def dim(self) -> int:
        """The width of the model's own output (before any truncate_dim)."""
        if self.dense:
            return self.dense[-1]["weight"].shape[0]
        return len(self.pooling_modes) * self.model.config.hidden_size

    def get_embedding_dimension(self) -> int:
        """The width of encode()'s output: dim, or truncate_dim when that is smaller."""
        return self.dim if self.truncate_dim is None else min(self.dim, self.truncate_dim)

    def get_sentence_embedding_dimension(self) -> int:
        """get_embedding_dimension under its older name (deprecated upstream in v6, kept by ported code)."""
        return self.get_embedding_dimension()

    def get_max_seq_length(self) -> int:
        return self.max_seq_length

    @property
    def similarity_fn_name(self) -> str:
        """ "cosine", "dot", "euclidean" or "manhattan": config_sentence_transformers.json's, else "cosine"."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "cosine"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value) -> None:
        self._similarity_fn_name = None if value is None else similarity_function_name(value, type(self).__name__)

    def similarity(self, embeddings1, embeddings2) -> np.ndarray:
        """similarity_fn_name's score for every pair: [n, D] x [m, D] -> [n, m] (a NumPy array; upstream a tensor)."""
        return SIMILARITY_FUNCTIONS[self.similarity_fn_name][0](embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1, embeddings2) -> np.ndarray:
        """similarity_fn_name's score row by row: [n, D] x [n, D] -> [n] (a NumPy array)."""
        return SIMILARITY_FUNCTIONS[self.similarity_fn_name][1](embeddings1, embeddings2)

    def count_tokens(self, sentences, prompt_name: str | None = None, prompt: str | None = None) -> np.ndarray:
        """[N] int64: how many tokens each text is given to the model as, the prompt and special tokens included,
        after truncation to max_seq_length (what a server bills or a client batches by)."""
        texts, single = as_inputs(sentences, "count_tokens")
        prompt = resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name, "count_tokens")
        if not texts:
            return np.zeros(0, dtype=np.int64)
        counts = self.tokenizer.token_counts([(prompt or "") + t for t in texts], max_length=self.max_seq_length)
        return counts[0] if single else counts

    # ------------------------------------------------------------------------------------------------------
    # Encoding.

    def embed_batch(self, texts: list[str], threads: int | None = None) -> np.ndarray:
        """One batch, in the model's dtype: tokenize (pad to the longest, truncate), forward, the modules."""
        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length)
        return self._embed_encoded(encoded, threads)

    def _embed_encoded(
        self, encoded: dict[str, np.ndarray], threads: int | None = None, prompt_length: int = 0
    ) -> np.ndarray:
        """Tokenized rows [B, S] -> embeddings [B, D]: forward, pool over the real tokens, Dense..., Normalize."""
        token_embeddings = self.model(**encoded, threads=threads).last_hidden_state  # [B, S, H]
        embeddings = pool(token_embeddings, encoded["attention_mask"], self.pooling_modes, prompt_length)  # [B, H']
        if self.dense:  # most models have none: no BLAS thread count to set for them
            with products_on(threads):  # the Dense modules' products on the call's threads (parallel.py)
                for layer in self.dense:
                    embeddings = dense(embeddings, **layer)  # [B, H'] -> [B, D]
        return normalize(embeddings) if self.normalize else embeddings

    def _prompt_length(self, prompt: str | None) -> int:
        """The prompt's tokens with [CLS] and without the trailing [SEP], when the Pooling leaves them out
        (include_prompt false), as Transformer._get_prompt_length counts them; else 0."""
        if self.include_prompt or not prompt:
            return 0
        ids = self.tokenizer([prompt], padding=False, truncation=False)["input_ids"][0]
        return len(ids) - 1 if self.tokenizer.is_special_id(ids[-1]) else len(ids)

    def encode(
        self,
        sentences=None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = BATCH_SIZE,
        show_progress_bar: bool | None = None,
        normalize_embeddings: bool = False,
        precision: str = "float32",
        truncate_dim: int | None = None,
        convert_to_numpy: bool = True,
        *,
        inputs=None,
        convert_to_tensor: bool = False,
        output_value: str | None = "sentence_embedding",
        device: str | None = None,
        dtype=np.float32,
        on_batch=None,
        threads: int | None = None,
    ) -> np.ndarray:
        """Embed sentences: [N, D] (a single string gives [D]), in input order, as SentenceTransformer.encode.

        As upstream: `prompt` (or the model's prompts[prompt_name], or its default prompt) goes in front of each text;
        the model's modules run, then `truncate_dim` keeps the first dimensions (default: the model's truncate_dim),
        `normalize_embeddings` scales each row to unit length, and `precision` ("int8", "uint8", "binary",
        "ubinary") quantizes with quantize_embeddings, its ranges taken from these embeddings. `inputs=` is the
        first argument's v6 name.

        Where minibert differs: the result is always a NumPy array (convert_to_numpy=False gives the same array,
        convert_to_tensor=True is refused), after prompt_name..truncate_dim the arguments are best passed by name
        (upstream orders them output_value, precision, convert_to_numpy, ...), output_value is only
        "sentence_embedding", and `dtype` (minibert's) chooses float32 or float64 for a float64 model. Batches are
        of nearly one token length (batching.run_in_length_batches), which changes rows only by rounding;
        `on_batch(rows)` is called after each batch; `threads` is the model's (BertModel.__call__): by default
        $MINIBERT_NUM_THREADS, else every core this process may run on.
        """
        where = f"{type(self).__name__}.encode"
        sentences = first_argument(sentences, inputs, where)
        check_numpy_output(convert_to_tensor, device, where)
        if output_value != "sentence_embedding":
            raise InputError(f"{where}: output_value must be 'sentence_embedding', found {output_value!r}")
        texts, single = as_inputs(sentences, where)
        check_batch_size(batch_size, where)
        precision = check_precision(precision, where)
        truncate_dim = self.truncate_dim if truncate_dim is None else check_truncate_dim(truncate_dim, where)
        prompt = resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name, where)
        prompt_length = self._prompt_length(prompt)
        out = np.empty((len(texts), self.dim), dtype=check_dtype(dtype))

        def tokenize(chunk: list[str]) -> dict[str, np.ndarray]:
            if prompt:
                chunk = [prompt + text for text in chunk]
            return self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_seq_length)

        update, bar = progress_bar(show_progress_bar, len(texts))
        callbacks = [f for f in (update, on_batch) if f is not None]
        try:
            run_in_length_batches(
                texts,
                tokenize,
                lambda batch: (
                    self._embed_encoded(batch, threads, prompt_length)
                    if prompt_length
                    else self._embed_encoded(batch, threads)
                ),
                out,
                batch_size,
                on_batch=(lambda rows: [f(rows) for f in callbacks]) if callbacks else None,
            )
        finally:
            if bar is not None:
                bar.close()
        if truncate_dim is not None:
            out = out[:, :truncate_dim]
        if normalize_embeddings:
            out = normalize(out)
        if precision != "float32" and len(out):
            out = quantize_embeddings(out, precision)
        return out[0] if single else out

    def encode_query(self, sentences=None, prompt_name: str | None = None, prompt: str | None = None, **kwargs):
        """encode() with the model's "query" prompt unless a prompt or prompt_name is given (upstream's rule)."""
        prompt_name = query_prompt_name(self.prompts, prompt, prompt_name)
        return self.encode(sentences, prompt_name, prompt, **kwargs)

    def encode_document(self, sentences=None, prompt_name: str | None = None, prompt: str | None = None, **kwargs):
        """encode() with the model's "document", "passage" or "corpus" prompt (the first it has) unless a prompt or
        prompt_name is given (upstream's rule)."""
        prompt_name = document_prompt_name(self.prompts, prompt, prompt_name)
        return self.encode(sentences, prompt_name, prompt, **kwargs)

    def __repr__(self) -> str:
        modes = "+".join(self.pooling_modes)
        dense = f", dense={len(self.dense)}" if self.dense else ""
        return (
            f"{type(self).__name__}(dim={self.dim}, pooling={modes}{dense}, normalize={self.normalize}, "
            f"max_seq_length={self.max_seq_length}, similarity={self.similarity_fn_name}, dtype={self.model.dtype})"
        )


# sentence-transformers' name, so that `from minibert import SentenceTransformer` ports a script unchanged.
SentenceTransformer = SentenceEncoder
