"""What a sentence-transformers model directory says beside its modules, read and checked for all three model kinds
(SentenceEncoder, CrossEncoder, SparseEncoder):

    config_sentence_transformers.json   prompts, default_prompt_name, similarity_fn_name, truncate_dim,
                                        max_active_dims, activation_fn (CrossEncoder)
    <Transformer folder>/sentence_bert_config.json   max_seq_length, do_lower_case, transformer_task

and the prompt rules that sentence-transformers v6.3's BaseModel applies (`_resolve_prompt`, `encode_query`,
`encode_document`), and its short hub names ("all-MiniLM-L6-v2" -> "sentence-transformers/all-MiniLM-L6-v2").
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .config import MAX_SIZES
from .errors import CheckpointError, InputError
from .model_files import SENTENCE_BERT_CONFIG, read_json
from .similarity import SIMILARITY_FUNCTIONS
from .tokenizer import Tokenizer
from .untrusted import quote

logger = logging.getLogger("minibert")

ST_CONFIG = "config_sentence_transformers.json"

# sentence-transformers' short names that stay as they are (transformers' original, organisation-less models):
# the BERTs of ORIGINAL_TRANSFORMER_MODELS in sentence_transformers/util/misc.py (v6.3); minibert reads only BERTs.
ORIGINAL_BERT_MODELS = frozenset(
    [
        "bert-base-cased-finetuned-mrpc",
        "bert-base-cased",
        "bert-base-chinese",
        "bert-base-german-cased",
        "bert-base-german-dbmdz-cased",
        "bert-base-german-dbmdz-uncased",
        "bert-base-multilingual-cased",
        "bert-base-multilingual-uncased",
        "bert-base-uncased",
        "bert-large-cased-whole-word-masking-finetuned-squad",
        "bert-large-cased-whole-word-masking",
        "bert-large-cased",
        "bert-large-uncased-whole-word-masking-finetuned-squad",
        "bert-large-uncased-whole-word-masking",
        "bert-large-uncased",
    ]
)

# The prompt names encode_document tries, in order (upstream: "document", "passage", "corpus").
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")


def hub_name(name_or_path, organization: str):
    """`name_or_path` as sentence-transformers resolves it: a local directory (or a path object) as it is; a name
    without '/' that is not one of transformers' original models gets the model kind's organisation
    ("sentence-transformers", "cross-encoder", "sparse-encoder") in front, as BaseModel.__init__ does."""
    if not isinstance(name_or_path, str) or os.path.isdir(name_or_path) or os.path.exists(name_or_path):
        return name_or_path
    if "/" not in name_or_path and "\\" not in name_or_path and name_or_path.lower() not in ORIGINAL_BERT_MODELS:
        return f"{organization}/{name_or_path}"
    return name_or_path


@dataclass(frozen=True)
class ModelSettings:
    """config_sentence_transformers.json, checked; every field optional, as upstream reads them."""

    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity_fn_name: str | None = None
    truncate_dim: int | None = None
    max_active_dims: int | None = None
    activation_fn: str | None = None
    model_type: str | None = None


def _optional_int(values: dict, key: str, path: Path, minimum: int = 1):
    value = values.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        raise CheckpointError(f"{path}: {key} must be null or an integer of at least {minimum}, found {quote(value)}")
    return value


def read_model_settings(directory: Path) -> ModelSettings:
    """The directory's config_sentence_transformers.json (all defaults when it has none)."""
    path = Path(directory) / ST_CONFIG
    if not path.is_file():
        return ModelSettings()
    values = read_json(path)
    prompts = values.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(
        isinstance(k, str) and isinstance(v, str | None) for k, v in prompts.items()
    ):
        raise CheckpointError(f"{path}: prompts must map prompt names to strings, found {quote(prompts)}")
    prompts = {name: text or "" for name, text in prompts.items()}  # upstream turns a null prompt into ""
    default = values.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise CheckpointError(
            f"{path}: default_prompt_name {quote(default)} is not one of its prompts {quote(list(prompts))}"
        )
    similarity = values.get("similarity_fn_name")
    if similarity is not None and similarity not in SIMILARITY_FUNCTIONS:
        similarity = None  # upstream keeps only the single-vector names it supports, and falls back to its default
    for key in ("activation_fn", "model_type"):
        if values.get(key) is not None and not isinstance(values[key], str):
            raise CheckpointError(f"{path}: {key} must be a string, found {quote(values[key])}")
    return ModelSettings(
        prompts=prompts,
        default_prompt_name=default,
        similarity_fn_name=similarity,
        truncate_dim=_optional_int(values, "truncate_dim", path),
        max_active_dims=_optional_int(values, "max_active_dims", path),
        activation_fn=values.get("activation_fn"),
        model_type=values.get("model_type"),
    )


@dataclass(frozen=True)
class TransformerSettings:
    """The Transformer module folder's sentence_bert_config.json, checked."""

    max_seq_length: int | None  # None: the tokenizer's model_max_length, capped at the position table
    do_lower_case: bool
    transformer_task: str | None  # v6: "feature-extraction", "fill-mask", "sequence-classification"; None before


def read_transformer_settings(transformer_dir: Path) -> TransformerSettings:
    path = Path(transformer_dir) / SENTENCE_BERT_CONFIG
    values = read_json(path) if path.is_file() else {}
    max_seq_length = values.get("max_seq_length")
    if max_seq_length is not None and (
        isinstance(max_seq_length, bool)
        or not isinstance(max_seq_length, int)
        or not 2 <= max_seq_length <= MAX_SIZES["max_position_embeddings"]
    ):
        raise CheckpointError(
            f"{path}: max_seq_length must be an integer from 2 to {MAX_SIZES['max_position_embeddings']}, "
            f"found {quote(max_seq_length)}"
        )
    do_lower_case = values.get("do_lower_case", False)
    if not isinstance(do_lower_case, bool):
        raise CheckpointError(f"{path}: do_lower_case must be true or false, found {quote(do_lower_case)}")
    task = values.get("transformer_task")
    if task is not None and not isinstance(task, str):
        raise CheckpointError(f"{path}: transformer_task must be a string, found {quote(task)}")
    return TransformerSettings(max_seq_length, do_lower_case, task)


def check_transformer_task(settings: TransformerSettings, expected: str, folder: Path, what: str) -> None:
    """Refuse a Transformer module saved for another task (a fill-mask model read as a sentence embedder...)."""
    if settings.transformer_task is not None and settings.transformer_task != expected:
        raise CheckpointError(
            f"{Path(folder) / SENTENCE_BERT_CONFIG}: transformer_task is {quote(settings.transformer_task)}, but "
            f"{what} needs {expected!r}; load it with the class made for that task (SentenceEncoder: "
            "feature-extraction, SparseEncoder: fill-mask, CrossEncoder: sequence-classification)"
        )


def resolve_prompt(prompts: dict, default_prompt_name, prompt, prompt_name, where: str) -> str | None:
    """The prompt text to put in front of each text: `prompt` if given, else prompts[prompt_name], else the default
    prompt's, else None (BaseModel._resolve_prompt)."""
    if prompt is not None and not isinstance(prompt, str):
        raise InputError(f"{where}: prompt must be a string, found {type(prompt).__name__}")
    if prompt is None:
        if prompt_name is not None:
            if prompt_name not in prompts:
                raise InputError(
                    f"{where}: prompt name {prompt_name!r} not found in the model's prompts, whose names are "
                    f"{list(prompts)}"
                )
            return prompts[prompt_name]
        if default_prompt_name is not None:
            return prompts.get(default_prompt_name)
    elif prompt_name is not None:
        logger.warning("Provide either a `prompt`, a `prompt_name`, or neither, but not both; using `prompt`")
    return prompt


def query_prompt_name(prompts: dict, prompt, prompt_name):
    """encode_query's prompt name: the one given, else "query" when the model has that prompt."""
    if prompt_name is None and prompt is None and "query" in prompts:
        return "query"
    return prompt_name


def document_prompt_name(prompts: dict, prompt, prompt_name):
    """encode_document's prompt name: the one given, else the first of DOCUMENT_PROMPT_NAMES the model has."""
    if prompt_name is None and prompt is None:
        return next((name for name in DOCUMENT_PROMPT_NAMES if name in prompts), None)
    return prompt_name


def load_tokenizer(transformer_dir: Path, settings: TransformerSettings, max_position_embeddings: int):
    """The Transformer module's tokenizer and max_seq_length: sentence_bert_config.json's, else the tokenizer's
    model_max_length capped at the position table (upstream's rule); do_lower_case puts a Lowercase in front."""
    tokenizer = Tokenizer.from_directory(transformer_dir)
    max_seq_length = settings.max_seq_length
    if max_seq_length is None:
        max_seq_length = min(tokenizer.model_max_length, max_position_embeddings)
    if settings.do_lower_case:
        lowercase_first(tokenizer)
    return tokenizer, max_seq_length


def lowercase_first(tokenizer) -> None:
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
