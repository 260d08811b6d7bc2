"""What the server serves: a model minibert can load, and the few things the routes ask of it.

    EmbeddingService(SentenceEncoder): /v1/embeddings, /embed

Each service counts a request's tokens on the event loop (a private copy of the tokenizer, so the compute thread's
tokenizer state is never shared) and computes a batch on the compute thread by calling the model's public API, the
one a user calls in process (SentenceEncoder.encode), so a served vector is the in-process vector.
"""

from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer as Backend

from ..errors import CheckpointError
from ..model_files import MODULES_JSON
from ..sentence import SentenceEncoder
from ..tokenizer import is_panic
from ..untrusted import quote
from .requests import RequestError


class TokenCounter:
    """Token counts of texts as the model's tokenizer makes them, special tokens included, never truncated."""

    def __init__(self, backend: Backend):
        self.backend = Backend.from_str(backend.to_str())  # its own truncation and padding state
        self.backend.no_truncation()
        self.backend.no_padding()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
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


class EmbeddingService:
    """A sentence-transformers embedding model (SentenceEncoder)."""

    kind = "embedding"

    def __init__(self, encoder: SentenceEncoder, name: str):
        self.encoder = encoder
        self.name = name
        self.count = TokenCounter(encoder.tokenizer.backend)
        self.max_length = encoder.max_seq_length
        self.dim = encoder.dim
        self.normalizes = encoder.normalize

    def check_prompt(self, prompt_name: str | None) -> Hashable:
        """The batch key of a prompt name: this model has no prompts, so only none is accepted."""
        if prompt_name is not None:
            raise RequestError(
                "validation", f"prompt_name {prompt_name!r}: this model has no prompts", param="prompt_name"
            )
        return None

    def compute(self, key: Hashable, texts: list[str]) -> np.ndarray:
        """On the compute thread: the rows encode() gives in process. [T] texts -> [T, dim] float32"""
        return self.encoder.encode(texts)

    def describe(self) -> str:
        return f"embedding model {self.name} ({self.encoder!r})"


def load_service(path: str, name: str | None = None):
    """The service for the model at `path` (a directory or a hub id), by what its files say it is."""
    directory = Path(path)
    if directory.is_dir() and not (directory / MODULES_JSON).is_file():
        raise CheckpointError(
            f"{path}: no modules.json; `minibert serve` serves a sentence-transformers model directory (or hub id)"
        )
    return EmbeddingService(SentenceEncoder.from_pretrained(path), name or path)
