"""Rerankers: a BertForSequenceClassification that reads a (query, document) pair together and scores it, as
sentence-transformers' `CrossEncoder` (v6.3, `sentence_transformers/cross_encoder/model.py`) runs it:

    (query, document) -> [CLS] query [SEP] document [SEP] -> bert -> pooler_output -> classifier -> logits [B, L]
                      -> activation_fn -> (softmax, when asked) -> scores [B] (one label) or [B, L]

The activation is the model's: `activation_fn` in config_sentence_transformers.json (v4 and later), else
config.json's `sentence_transformers.activation_fn`, else its `sbert_ce_default_activation_function` (before v4),
else sigmoid for one label and the identity for several (CrossEncoder.get_default_activation_fn). The ms-marco
cross-encoders name the identity, so their scores are logits.

Shape legend: B batch, L number of labels.
"""

import numpy as np

from .batching import progress_bar, run_in_length_batches
from .errors import CheckpointError, InputError
from .functional import sigmoid, softmax
from .heads import BertForSequenceClassification
from .hub import Need
from .inputs import check_batch_size, check_numpy_output, first_argument
from .model_files import MODULES_JSON, config_file, read_json, read_modules
from .pretrained import resolve_pretrained
from .st_config import (
    check_transformer_task,
    hub_name,
    load_tokenizer,
    read_model_settings,
    read_transformer_settings,
    resolve_prompt,
)
from .untrusted import quote

# The activations a CrossEncoder's config may name (upstream imports any torch.* class; minibert computes these).
ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": lambda x: x,
    "torch.nn.modules.activation.Sigmoid": sigmoid,
    "torch.nn.modules.activation.Tanh": np.tanh,
}
# The same, as a torch module's class name (a script may pass activation_fn=torch.nn.Sigmoid()).
_BY_CLASS_NAME = {path.rsplit(".", 1)[-1]: path for path in ACTIVATIONS}


def activation_function(value, where: str):
    """A callable over NumPy arrays: None (the identity), a name of ACTIVATIONS, a torch.nn module of one of those
    classes (recognised by its class, without importing torch), or any callable that takes and returns an array."""
    if value is None:
        return ACTIVATIONS["torch.nn.modules.linear.Identity"]
    if isinstance(value, str):
        if value not in ACTIVATIONS:
            raise InputError(f"{where}: activation_fn {value!r} is not implemented; minibert has {list(ACTIVATIONS)}")
        return ACTIVATIONS[value]
    module = type(value).__module__
    if module.startswith("torch."):
        name = type(value).__name__
        if name not in _BY_CLASS_NAME:
            raise InputError(
                f"{where}: activation_fn is a torch {name}, which minibert does not compute; pass one of "
                f"{sorted(_BY_CLASS_NAME)}, or a function of a NumPy array"
            )
        return ACTIVATIONS[_BY_CLASS_NAME[name]]
    if not callable(value):
        raise InputError(f"{where}: activation_fn must be callable or a name, found {type(value).__name__}")
    return value


def default_activation_name(directory, num_labels: int, settings_value: str | None) -> str:
    """The model's activation, as CrossEncoder.__init__ resolves it (see the module docstring)."""
    name = settings_value
    if name is None:
        config = read_json(config_file(directory))
        st = config.get("sentence_transformers")
        if isinstance(st, dict) and st.get("activation_fn") is not None:
            name = st["activation_fn"]
        elif config.get("sbert_ce_default_activation_function") is not None:
            name = config["sbert_ce_default_activation_function"]
    if name is None:
        return "torch.nn.modules.activation.Sigmoid" if num_labels == 1 else "torch.nn.modules.linear.Identity"
    if name not in ACTIVATIONS:
        raise CheckpointError(
            f"{directory}: the model's activation_fn is {quote(name)}, which minibert does not compute; it has "
            f"{list(ACTIVATIONS)}"
        )
    return name


def _as_pairs(inputs, where: str) -> tuple[list[tuple[str, str]], bool]:
    """(the pairs, whether one pair was given), as CrossEncoder.is_singular_input tells them apart."""
    if isinstance(inputs, np.ndarray):
        inputs = inputs.tolist()
    if isinstance(inputs, list | tuple) and inputs and not isinstance(inputs[0], list | tuple):
        inputs, single = [inputs], True
    else:
        inputs, single = list(inputs), False
    for i, pair in enumerate(inputs):
        if not isinstance(pair, list | tuple) or len(pair) != 2 or not all(isinstance(t, str) for t in pair):
            raise InputError(f"{where}: each input must be a pair of two strings (query, document); item {i} is not")
    return [(a, b) for a, b in inputs], single


class CrossEncoder:
    """`CrossEncoder(path_or_hub_id).predict([(query, document), ...])` -> scores, as sentence-transformers'
    CrossEncoder: a short name gets "cross-encoder/" in front; `activation_fn` and `max_length` override the model's.

    Where minibert differs: the model must be a BertForSequenceClassification (the ms-marco MiniLM rerankers are);
    `num_labels` may only confirm the checkpoint's (upstream would put a new, untrained classifier on top); results
    are NumPy arrays; `dtype` and `check_finite` are minibert's.
    """

    ORGANIZATION = "cross-encoder"

    def __init__(
        self,
        model_name_or_path=None,
        *,
        num_labels: int | None = None,
        max_length: int | None = None,
        activation_fn=None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
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
            Need.CROSS_ENCODER,
            dtype,
            revision=revision,
            cache_dir=cache_folder,
            local_files_only=local_files_only,
        )
        if (directory / MODULES_JSON).is_file():
            modules = read_modules(directory / MODULES_JSON)
            if [kind for kind, _ in modules] != ["Transformer"] or modules[0][1].strip("/"):
                raise CheckpointError(
                    f"{directory / MODULES_JSON}: modules are {[kind for kind, _ in modules]}; a CrossEncoder minibert "
                    "reads is one Transformer, at the top of the directory"
                )
        transformer = read_transformer_settings(directory)
        check_transformer_task(transformer, "sequence-classification", directory, "a CrossEncoder")
        self.model = BertForSequenceClassification.from_pretrained(directory, dtype, check_finite=check_finite)
        if num_labels is not None and num_labels != self.num_labels:
            raise InputError(
                f"{where}: num_labels={num_labels}, but the checkpoint's classifier has {self.num_labels}; minibert "
                "runs trained classifiers only"
            )
        self.tokenizer, self.max_seq_length = load_tokenizer(
            directory, transformer, self.model.config.max_position_embeddings
        )
        if max_length is not None:
            self.max_seq_length = max_length
        settings = read_model_settings(directory)
        self.prompts = {**settings.prompts, **(prompts or {})}
        self.default_prompt_name = default_prompt_name or settings.default_prompt_name
        if activation_fn is None:
            activation_fn = default_activation_name(directory, self.num_labels, settings.activation_fn)
        self.activation_fn = activation_fn
        self._activation = activation_function(activation_fn, where)

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
    ) -> "CrossEncoder":
        """A model directory or hub id with minibert's usual arguments; unlike the constructor, a name is taken as it
        is (no organisation put in front), as every from_pretrained takes it."""
        dtype, directory = resolve_pretrained(
            path, Need.CROSS_ENCODER, dtype, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
        )
        return cls(directory, dtype=dtype, check_finite=check_finite)

    @property
    def num_labels(self) -> int:
        return self.model.num_labels

    @property
    def max_length(self) -> int:
        return self.max_seq_length

    def get_max_seq_length(self) -> int:
        return self.max_seq_length

    def count_tokens(self, pairs) -> np.ndarray:
        """[N] int64: the tokens each (query, document) pair is given to the model as, after truncation."""
        pairs, single = _as_pairs(pairs, "count_tokens")
        if not pairs:
            return np.zeros(0, dtype=np.int64)
        first, second = zip(*pairs, strict=True)
        counts = self.tokenizer.token_counts(list(first), list(second), max_length=self.max_seq_length)
        return counts[0] if single else counts

    def predict(
        self,
        sentences=None,
        batch_size: int = 32,
        activation_fn=None,
        apply_softmax: bool = False,
        *,
        inputs=None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | None = None,
    ) -> np.ndarray:
        """Scores of (query, document) pairs: float32 [N] for one label, [N, L] for several; one pair gives a scalar
        (or [L]). As upstream: the logits, then `activation_fn` (default: the model's), then, if apply_softmax and
        there are several labels, a softmax. `inputs=` is the first argument's v6 name; a prompt goes in front of the
        first text of each pair.

        Where minibert differs: batch_size and the pair list come before the rest, which are best passed by name
        (upstream orders them inputs, prompt_name, prompt, batch_size, ...); the result is a NumPy array.
        """
        where = f"{type(self).__name__}.predict"
        pairs, single = _as_pairs(first_argument(sentences, inputs, where), where)
        check_numpy_output(convert_to_tensor, device, where)
        check_batch_size(batch_size, where)
        activation = self._activation if activation_fn is None else activation_function(activation_fn, where)
        prompt = resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name, where)
        if prompt:
            pairs = [(prompt + a, b) for a, b in pairs]
        logits = np.empty((len(pairs), self.num_labels), dtype=np.float32)

        def tokenize(chunk):
            first, second = zip(*chunk, strict=True)
            return self.tokenizer(
                list(first), list(second), padding=True, truncation=True, max_length=self.max_seq_length
            )

        update, bar = progress_bar(show_progress_bar, len(pairs))
        try:
            run_in_length_batches(
                pairs,
                tokenize,
                lambda batch: self.model(**batch).logits,
                logits,
                batch_size,
                size=lambda pair: len(pair[0]) + len(pair[1]),
                on_batch=update,
            )
        finally:
            if bar is not None:
                bar.close()
        scores = np.asarray(activation(logits), dtype=np.float32)  # [N, L]
        if self.num_labels == 1:
            scores = scores[:, 0]  # [N, 1] -> [N]
        elif apply_softmax:
            scores = softmax(scores, axis=1)
        return scores[0] if single else scores

    def rank(
        self,
        query: str,
        documents,
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
        *,
        prompt_name: str | None = None,
        prompt: str | None = None,
        show_progress_bar: bool | None = None,
        activation_fn=None,
    ) -> list[dict]:
        """The documents by score, best first: [{"corpus_id": i, "score": s[, "text": documents[i]]}, ...], the first
        top_k of them, as CrossEncoder.rank (one label only)."""
        where = f"{type(self).__name__}.rank"
        if self.num_labels != 1:
            raise InputError(
                f"{where}: rank() works for models with one label; this one has {self.num_labels}. Use predict() "
                "with (query, document) pairs instead"
            )
        if not isinstance(query, str):
            raise InputError(f"{where}: query must be a string, found {type(query).__name__}")
        documents = list(documents.tolist() if isinstance(documents, np.ndarray) else documents)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"{where}: top_k must be a positive integer or None, found {top_k!r}")
        scores = (
            self.predict(
                [[query, doc] for doc in documents],
                batch_size,
                activation_fn,
                prompt_name=prompt_name,
                prompt=prompt,
                show_progress_bar=show_progress_bar,
            ).tolist()
            if documents
            else []
        )
        results = []
        for i, score in enumerate(scores):
            results.append({"corpus_id": i, "score": score})
            if return_documents:
                results[-1]["text"] = documents[i]
        return sorted(results, key=lambda x: x["score"], reverse=True)[:top_k]

    def __repr__(self) -> str:
        name = getattr(self.activation_fn, "__name__", None) or str(self.activation_fn).rsplit(".", 1)[-1]
        return (
            f"CrossEncoder(labels={self.num_labels}, activation={name}, max_length={self.max_seq_length}, "
            f"dtype={self.model.dtype})"
        )
