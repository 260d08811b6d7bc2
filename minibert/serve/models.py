"""What the server serves: a model minibert can load, and the few things the routes ask of it.

    EmbeddingService(SentenceEncoder)   /v1/embeddings, /embed
    RerankService(CrossEncoder)         /rerank
    SparseService(SparseEncoder)        /embed_sparse

Each service counts a request's tokens on the event loop (a private copy of the tokenizer, so the compute thread's
tokenizer state is never shared) and computes a batch on the compute thread by calling the model's public API, the
one a user calls in process (SentenceEncoder.encode, CrossEncoder.predict, SparseEncoder.encode), so a served row is
the in-process row. A batch key says what must be computed in one call: the prompt, or raw scores against the
model's activation.
"""

from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer as Backend

from ..cross_encoder import CrossEncoder
from ..errors import CheckpointError, InputError
from ..model_files import MODULES_JSON, config_file, read_json, read_modules
from ..sentence import SentenceEncoder
from ..sparse_encoder import SparseEncoder
from ..st_config import resolve_prompt
from ..tokenizer import is_panic
from ..untrusted import quote
from .requests import RequestError

KINDS = ("embedding", "reranker", "sparse")
IDENTITY = "torch.nn.modules.linear.Identity"  # CrossEncoder's name for "no activation": raw scores


class TokenCounter:
    """Token counts of texts (or (query, text) pairs) as the model's tokenizer makes them, special tokens included,
    never truncated."""

    def __init__(self, backend: Backend):
        self.backend = Backend.from_str(backend.to_str())  # its own truncation and padding state
        self.backend.no_truncation()
        self.backend.no_padding()

    def __call__(self, texts: Sequence) -> np.ndarray:
        try:
            return np.array([len(e.ids) for e in self.backend.encode_batch(list(texts))], dtype=np.int64)  # [T]
        except BaseException as error:  # a tokenizers panic is a BaseException
            if not is_panic(error):
                raise
            raise RequestError("tokenizer", f"the tokenizer failed on these texts ({quote(str(error), 200)})") from None


def check_lengths(counts: np.ndarray, max_length: int, truncate: bool, field: str) -> np.ndarray:
    """TEI's truncate semantics: a text over the model's maximum length is cut (truncate) or refused with TEI's
    message (router: "`inputs` must have less than {max} tokens. Given: {n}"). -> the token counts computed"""
    if not truncate and counts.size and counts.max() > max_length:
        i = int(np.argmax(counts > max_length))
        raise RequestError(
            "validation",
            f"`{field}` must have less than {max_length} tokens. Given: {int(counts[i])} (text {i}); "
            "shorten it or send `truncate: true`",
            param=field,
        )
    return np.minimum(counts, max_length)


def _prompt(model, prompt_name: str | None) -> str:
    """The prompt text for prompt_name (the model's default prompt when None), refused as a 422 when unknown."""
    try:
        return resolve_prompt(model.prompts, model.default_prompt_name, None, prompt_name, "prompt_name") or ""
    except InputError as error:
        raise RequestError("validation", str(error), param="prompt_name") from None


class EmbeddingService:
    """A sentence-transformers embedding model (SentenceEncoder)."""

    kind = "embedding"

    def __init__(self, encoder: SentenceEncoder, name: str):
        self.encoder = encoder
        self.name = name
        self._count = TokenCounter(encoder.tokenizer.backend)
        self.max_length = encoder.max_seq_length
        self.dim = encoder.truncate_dim or encoder.dim  # what encode() gives
        self.normalizes = encoder.normalize

    def check_prompt(self, prompt_name: str | None) -> Hashable:
        """The batch key of a request's prompt name (refused if the model has no such prompt)."""
        _prompt(self.encoder, prompt_name)
        return prompt_name

    def count(self, texts: Sequence[str], key: Hashable = None) -> np.ndarray:
        """[T] tokens each text is computed with, its prompt included, before truncation."""
        prompt = _prompt(self.encoder, key)
        return self._count([prompt + text for text in texts] if prompt else texts)

    def compute(self, key: Hashable, texts: list[str]) -> np.ndarray:
        """On the compute thread: the rows encode() gives in process. [T] texts -> [T, dim] float32"""
        return self.encoder.encode(texts, prompt_name=key, show_progress_bar=False)

    def describe(self) -> str:
        return f"embedding model {self.name} ({self.encoder!r})"


class RerankService:
    """A one-label cross-encoder (CrossEncoder): scores of (query, text) pairs."""

    kind = "reranker"

    def __init__(self, cross_encoder: CrossEncoder, name: str):
        if cross_encoder.num_labels != 1:
            raise CheckpointError(
                f"{name}: a cross-encoder with {cross_encoder.num_labels} labels; /rerank serves a one-label "
                "cross-encoder (a reranker)"
            )
        self.cross_encoder = cross_encoder
        self.name = name
        self._count = TokenCounter(cross_encoder.tokenizer.backend)
        self.max_length = cross_encoder.max_seq_length

    def count(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return self._count(pairs)

    def compute(self, raw_scores: Hashable, pairs: list[tuple[str, str]]) -> np.ndarray:
        """On the compute thread: predict()'s scores, with the model's activation or none. [T] pairs -> [T]"""
        return self.cross_encoder.predict(
            pairs, activation_fn=IDENTITY if raw_scores else None, show_progress_bar=False
        )

    def describe(self) -> str:
        return f"reranker {self.name} ({self.cross_encoder!r})"


class SparseService:
    """A SPLADE model (SparseEncoder): one weight per vocabulary entry, mostly zeros."""

    kind = "sparse"

    def __init__(self, sparse_encoder: SparseEncoder, name: str):
        self.sparse_encoder = sparse_encoder
        self.name = name
        self._count = TokenCounter(sparse_encoder.tokenizer.backend)
        self.max_length = sparse_encoder.max_seq_length

    def check_prompt(self, prompt_name: str | None) -> Hashable:
        _prompt(self.sparse_encoder, prompt_name)
        return prompt_name

    def count(self, texts: Sequence[str], key: Hashable = None) -> np.ndarray:
        prompt = _prompt(self.sparse_encoder, key)
        return self._count([prompt + text for text in texts] if prompt else texts)

    def compute(self, key: Hashable, texts: list[str]) -> np.ndarray:
        """On the compute thread: encode()'s rows. [T] texts -> [T, V] float32, mostly zeros"""
        return self.sparse_encoder.encode(texts, prompt_name=key, show_progress_bar=False)

    def describe(self) -> str:
        return f"sparse (SPLADE) model {self.name} ({self.sparse_encoder!r})"


def model_kind(path: str) -> str:
    """What a local model directory holds, by its files: modules.json's modules, or config.json's architecture."""
    directory = Path(path)
    if (directory / MODULES_JSON).is_file():
        kinds = [kind for kind, _ in read_modules(directory / MODULES_JSON)]
        if "SpladePooling" in kinds:
            return "sparse"
        if kinds == ["Transformer"]:
            return "reranker"  # a CrossEncoder saved by sentence-transformers v4 and later
        return "embedding"
    architectures = read_json(config_file(directory)).get("architectures") or []
    if any(str(name).endswith("ForSequenceClassification") for name in architectures):
        return "reranker"
    raise CheckpointError(
        f"{path}: neither a sentence-transformers model (no modules.json) nor a cross-encoder (config.json's "
        f"architectures are {quote(architectures)}); `minibert serve` serves embedding, reranker and SPLADE models"
    )


def load_service(path: str, name: str | None = None, kind: str = "auto"):
    """The service for the model at `path`: a directory (its kind read from its files) or a hub id (an embedding
    model unless `kind` says otherwise)."""
    if kind == "auto":
        kind = model_kind(path) if Path(path).is_dir() else "embedding"
    name = name or path
    if kind == "reranker":
        return RerankService(CrossEncoder(path), name)
    if kind == "sparse":
        return SparseService(SparseEncoder(path), name)
    return EmbeddingService(SentenceEncoder(path), name)
