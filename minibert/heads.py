"""Task heads on top of bert_model: masked-LM (fill-mask) and sequence classification, as in modeling_bert.py.

    BertForMaskedLM:                .bert -> last_hidden_state -> bert_lm_prediction_head -> logits [B, S, V]
    BertForSequenceClassification: .bert -> pooler_output -> bert_classifier -> logits [B, num_labels]

Each head holds its encoder as `.bert`, a BertModel, as transformers' classes do, and adds its head's parameters. The
head's tensors are read from the same file as the encoder's, by their transformers names (`cls.predictions.*`,
`classifier.*`); the encoder's are checked and nested by checkpoint.to_params exactly as for BertModel.
Dropout is the identity at inference, so it does not appear.

Shape legend: B batch, S sequence length, H hidden size, V vocabulary size, L number of labels.
The upstream lines matched are those of transformers v5.24.0:
https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/bert/modeling_bert.py
"""

import logging
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoint import check_tensor, read_checkpoint, rename_tensors, to_params, unflatten
from .config import BertConfig
from .errors import CheckpointError, InputError
from .functional import ACT2FN, layer_norm, linear, sigmoid, softmax
from .hub import Need
from .model import Params
from .parallel import products_on
from .pretrained import BertModel, resolve_pretrained
from .tokenizer import Tokenizer
from .trace import NO_TRACE, Trace

logger = logging.getLogger("minibert")

# ----------------------------------------------------------------------------------------------------------
# The heads as pure functions.


def bert_prediction_head_transform(
    hidden_states, *, dense, LayerNorm, hidden_act: str, eps: float, trace: Trace = NO_TRACE
) -> np.ndarray:
    """LayerNorm(act(h Wᵀ + b)), act = config.hidden_act: BertPredictionHeadTransform. [B, S, H] -> [B, S, H]"""
    hidden_states = trace("dense", linear(hidden_states, **dense))  # [B, S, H] -> [B, S, H]
    hidden_states = trace("transform_act_fn", ACT2FN[hidden_act](hidden_states))
    return trace("LayerNorm", layer_norm(hidden_states, **LayerNorm, eps=eps))


def bert_lm_prediction_head(
    hidden_states, *, transform, decoder, config: BertConfig, trace: Trace = NO_TRACE
) -> np.ndarray:
    """transform(h) Eᵀ + bias, E the decoder weight [V, H] (the word embeddings when tied): BertLMPredictionHead.
    [B, S, H] -> [B, S, V]"""
    hidden_states = bert_prediction_head_transform(
        hidden_states, **transform, hidden_act=config.hidden_act, eps=config.layer_norm_eps, trace=trace.at("transform")
    )
    return trace("decoder", linear(hidden_states, **decoder))  # [B, S, H] @ [H, V] -> [B, S, V]


def bert_classifier(pooled_output, *, weight, bias, trace: Trace = NO_TRACE) -> np.ndarray:
    """pooler_output Wᵀ + b: BertForSequenceClassification's classifier (after a dropout, the identity here).
    [B, H] -> [B, L]"""
    return trace("classifier", linear(pooled_output, weight=weight, bias=bias))


# ----------------------------------------------------------------------------------------------------------
# Reading a head's tensors.


@dataclass
class _Checkpoint:
    """What a task model's from_pretrained reads: the encoder's parameters checked and nested as BertModel's, and
    every tensor of the file under BertModel's names, for the head to take its own from."""

    config: BertConfig
    params: Params
    renamed: dict[str, np.ndarray]
    source: str
    dtype: np.dtype


def _read_checkpoint(directory: Path, dtype: np.dtype, check_finite: bool, used_heads, hidden_act=None) -> _Checkpoint:
    """A model directory's config and encoder, checked against the config as for BertModel; `used_heads` are the
    head tensors the class accounts for (any other is logged as unused); `hidden_act` as BertModel's."""
    config, tensors, source = read_checkpoint(directory, dtype, hidden_act)
    params = to_params(tensors, config, dtype, source, check_finite=check_finite, used_heads=used_heads)
    return _Checkpoint(config, params, rename_tensors(tensors, source), source, dtype)


def _read_head(checkpoint: _Checkpoint, prefix: str, shapes: dict[str, tuple[int, ...]], check_finite: bool) -> dict:
    """The head's tensors `prefix` + name for each name of `shapes`, checked against their shapes, in the encoder's
    dtype, by `name` (without the prefix)."""
    missing = [prefix + name for name in shapes if prefix + name not in checkpoint.renamed]
    if missing:
        raise CheckpointError(
            f"{checkpoint.source}: missing task-head tensor(s) {', '.join(missing)}; was this checkpoint saved with "
            "that head (its config.json 'architectures')? For the encoder alone use minibert.BertModel"
        )
    return {
        name: check_tensor(
            prefix + name, checkpoint.renamed[prefix + name], shape, checkpoint.dtype, checkpoint.source, check_finite
        )
        for name, shape in shapes.items()
    }


def _decoder_bias_name(config: BertConfig, names) -> str:
    """Which tensor of cls.predictions holds the decoder's bias ("bias" or "decoder.bias", among `names`).
    transformers v5 ties decoder.bias to cls.predictions.bias only together with the weight (_tied_weights_keys of
    BertForMaskedLM; both are dropped when tie_word_embeddings is false), and checkpoints from transformers 4 store
    both names for the one bias, so either serves when the other is absent.
    https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/models/bert/modeling_bert.py#L914-L917
    """
    candidates = ["bias", "decoder.bias"]
    if not config.tie_word_embeddings:
        candidates.reverse()
    return next((name for name in candidates if name in names), candidates[0])


def _warn_if_stored_decoder_differs(checkpoint: _Checkpoint, name: str, word_embeddings: np.ndarray) -> None:
    """A tied model uses the word embeddings as its decoder, as transformers does; say so if the file holds another."""
    stored = checkpoint.renamed.get(name)
    if stored is not None and (stored.shape != word_embeddings.shape or not np.array_equal(stored, word_embeddings)):
        logger.warning(
            "%s: %s differs from the word embeddings but tie_word_embeddings is true; using the word embeddings, as "
            "transformers does",
            checkpoint.source,
            name,
        )


# ----------------------------------------------------------------------------------------------------------
# Masked LM.


@dataclass
class MaskedLMOutput:
    """What BertForMaskedLM returns, with transformers' names."""

    logits: np.ndarray  # [B, S, V], before the softmax
    hidden_states: tuple[np.ndarray, ...] | None = None  # as BertModelOutput.hidden_states, when asked for
    attentions: tuple[np.ndarray, ...] | None = None


class _BertTaskModel:
    """What both task models share: the encoder as `.bert`, as in transformers' BertFor* classes."""

    bert: BertModel

    @property
    def params(self) -> Params:
        """The encoder's parameters, laid out as BertModel's."""
        return self.bert.params

    @property
    def dtype(self) -> np.dtype:
        return self.bert.dtype


class BertForMaskedLM(_BertTaskModel):
    """`BertForMaskedLM.from_pretrained(dir)(**tokenizer(texts)).logits`: [B, S, V] scores over the vocabulary."""

    PREFIX = "cls.predictions."
    # Every tensor of cls.predictions this class accounts for, by its name under PREFIX: the transform, then the
    # decoder's bias under either of its two names and the decoder's weight (read only when untied).
    HEAD_NAMES = (
        "transform.dense.weight",
        "transform.dense.bias",
        "transform.LayerNorm.weight",
        "transform.LayerNorm.bias",
        "bias",
        "decoder.weight",
        "decoder.bias",
    )

    @classmethod
    def head_shapes(cls, config: BertConfig) -> dict[str, tuple[int, ...]]:
        """The shape of each tensor of HEAD_NAMES for `config`."""
        H, V = config.hidden_size, config.vocab_size
        return dict(zip(cls.HEAD_NAMES, [(H, H), (H,), (H,), (H,), (V,), (V, H), (V,)], strict=True))

    def __init__(self, config: BertConfig, params: Params, head: Params):
        self.config = config
        self.bert = BertModel(config, params)  # the encoder, as transformers' BertForMaskedLM.bert
        self.head = head  # cls.predictions: {"transform": {...}, "decoder": {"weight", "bias"}}

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
        hidden_act: str | None = None,
    ) -> "BertForMaskedLM":
        """Load a BertForMaskedLM (or BertForPreTraining) checkpoint: the encoder, then cls.predictions.

        With tie_word_embeddings (transformers' default) the decoder is the word-embedding matrix and its bias is
        cls.predictions.bias, as transformers ties them; a stored cls.predictions.decoder.weight is then not used.
        Untied, the checkpoint's own decoder weight and bias are used. The other arguments are
        BertModel.from_pretrained's.
        """
        dtype, directory = resolve_pretrained(
            path, Need.MODEL, dtype, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
        )
        used = [cls.PREFIX + name for name in cls.HEAD_NAMES]
        checkpoint = _read_checkpoint(directory, dtype, check_finite, used, hidden_act)
        config, tied = checkpoint.config, checkpoint.config.tie_word_embeddings
        present = [name.removeprefix(cls.PREFIX) for name in checkpoint.renamed if name.startswith(cls.PREFIX)]
        bias = _decoder_bias_name(config, present)
        transform = [name for name in cls.HEAD_NAMES if name.startswith("transform.")]
        read = [*transform, bias] if tied else [*transform, bias, "decoder.weight"]
        shapes = {name: shape for name, shape in cls.head_shapes(config).items() if name in read}
        head = _read_head(checkpoint, cls.PREFIX, shapes, check_finite)
        word_embeddings = checkpoint.params["embeddings"]["word_embeddings"]["weight"]  # [V, H]
        if tied:
            _warn_if_stored_decoder_differs(checkpoint, cls.PREFIX + "decoder.weight", word_embeddings)
        decoder = {"weight": word_embeddings if tied else head["decoder.weight"], "bias": head[bias]}
        nested = unflatten({name: head[name] for name in transform})  # {"transform": {"dense": ..., "LayerNorm": ...}}
        return cls(config, checkpoint.params, {**nested, "decoder": decoder})

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        trace: Trace = NO_TRACE,
        threads: int | None = None,
    ) -> MaskedLMOutput:
        """Scores for every vocabulary entry at every position. Inputs and `threads` as BertModel takes them."""
        out = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            trace=trace.at("bert"),
            threads=threads,
        )
        with products_on(threads):  # the head's products on the call's threads (parallel.py)
            logits = bert_lm_prediction_head(
                out.last_hidden_state, **self.head, config=self.config, trace=trace.at("cls.predictions")
            )
        return MaskedLMOutput(logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"BertForMaskedLM(layers={c.num_hidden_layers}, hidden={c.hidden_size}, vocab={c.vocab_size}, "
            f"tied={self.head['decoder']['weight'] is self.params['embeddings']['word_embeddings']['weight']}, "
            f"dtype={self.dtype})"
        )


@dataclass
class FillMaskPrediction:
    """One candidate for one [MASK], with the fields of transformers' fill-mask pipeline."""

    score: float  # softmax probability over the vocabulary
    token: int  # its id
    token_str: str  # tokenizer.decode([token])
    sequence: str  # the text with this [MASK] filled in, decoded


def fill_mask(
    model: BertForMaskedLM, tokenizer: Tokenizer, text: str, top_k: int = 5, mask_token: str = "[MASK]"
) -> list[list[FillMaskPrediction]]:
    """The top_k most probable tokens for each mask_token in `text`: one list per mask, best first.

    Mirrors transformers' FillMaskPipeline.postprocess (softmax over the vocabulary, top-k; the sequence decoded
    without special tokens when there is one mask and with them when there are several, so the other masks show),
    except that it always returns one list per mask, also for a single mask:
    https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/pipelines/fill_mask.py#L125-L164
    """
    if not isinstance(model, BertForMaskedLM):
        raise InputError(
            f"fill_mask: model must be a BertForMaskedLM, found {type(model).__name__}; "
            "load one with minibert.BertForMaskedLM.from_pretrained"
        )
    if not isinstance(tokenizer, Tokenizer):
        raise InputError(
            f"fill_mask: tokenizer must be a minibert.Tokenizer, found {type(tokenizer).__name__}; "
            "load one with minibert.Tokenizer.from_pretrained"
        )
    if not isinstance(text, str):
        raise InputError(f"fill_mask: text must be a string, found {type(text).__name__}")
    mask_id = tokenizer.backend.token_to_id(mask_token)
    if mask_id is None:
        raise InputError(f"fill_mask: the tokenizer's vocabulary has no mask token {mask_token!r}")
    vocab_size = model.config.vocab_size
    # numbers.Integral takes Python and NumPy integers; bool is an Integral too but means something else.
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or not 1 <= top_k <= vocab_size:
        raise InputError(f"fill_mask: top_k must be an integer in [1, {vocab_size}], found {top_k!r}")
    top_k = int(top_k)
    encoded = tokenizer([text])
    input_ids = encoded["input_ids"][0]  # [S]
    positions = np.flatnonzero(input_ids == mask_id)
    if positions.size == 0:
        whole = tokenizer([text], truncation=False)["input_ids"][0]  # [S'], S' > S when the text was cut
        if whole.size > input_ids.size and np.any(whole == mask_id):
            first = int(np.flatnonzero(whole == mask_id)[0])
            raise InputError(
                f"fill_mask: the text is {whole.size} tokens long and was truncated to the tokenizer's "
                f"{input_ids.size}, which cut off its {mask_token} (token {first}); shorten the text or move the "
                f"{mask_token} nearer its start"
            )
        raise InputError(f"fill_mask: {text!r} has no {mask_token}; put one where a word should be predicted")
    logits = model(**encoded).logits[0, positions]  # [B=1, S, V] -> [masks, V]
    probs = softmax(logits, axis=-1)  # [masks, V]
    # Stable sort of -p: the best first, ties in id order (as torch.topk on CPU).
    best = np.argsort(-probs, axis=-1, kind="stable")[:, :top_k]  # [masks, top_k]
    single = positions.size == 1
    pad_id = tokenizer.backend.token_to_id(tokenizer.pad_token)
    results = []
    for row, position in enumerate(positions):
        candidates = []
        for token in best[row]:
            tokens = input_ids.copy()
            tokens[position] = token
            tokens = tokens[tokens != pad_id]  # as the pipeline: a predicted [PAD] vanishes from the sequence
            sequence = tokenizer.decode(tokens, skip_special_tokens=single)
            token_str = tokenizer.decode([token], skip_special_tokens=False)
            candidates.append(FillMaskPrediction(float(probs[row, token]), int(token), token_str, sequence))
        results.append(candidates)
    return results


# ----------------------------------------------------------------------------------------------------------
# Sequence classification.


@dataclass
class SequenceClassifierOutput:
    """What BertForSequenceClassification returns: transformers' fields, plus probabilities and labels."""

    logits: np.ndarray  # [B, L]
    # [B, L]: what transformers' text-classification pipeline applies by default: softmax for single-label
    # classification, sigmoid for multi-label or one label, None for regression.
    probabilities: np.ndarray | None
    predicted_labels: list[str] | None  # id2label[argmax], for single-label classification
    hidden_states: tuple[np.ndarray, ...] | None = None
    attentions: tuple[np.ndarray, ...] | None = None


class BertForSequenceClassification(_BertTaskModel):
    """`BertForSequenceClassification.from_pretrained(dir)(**tokenizer(texts))`: .logits [B, L], .probabilities."""

    PREFIX = "classifier."
    HEAD_NAMES = ("weight", "bias")

    def __init__(self, config: BertConfig, params: Params, classifier: Params):
        self.config = config
        self.bert = BertModel(config, params)  # the encoder, as transformers' BertForSequenceClassification.bert
        self.classifier = classifier  # {"weight": [L, H], "bias": [L]}
        self.id2label = config.id2label
        self.problem_type = config.problem_type

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

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
        hidden_act: str | None = None,
    ) -> "BertForSequenceClassification":
        """Load the encoder (its pooler is required: the classifier reads pooler_output), then classifier.*.
        The arguments are BertModel.from_pretrained's."""

        dtype, directory = resolve_pretrained(
            path, Need.MODEL, dtype, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
        )
        used = [cls.PREFIX + name for name in cls.HEAD_NAMES]
        checkpoint = _read_checkpoint(directory, dtype, check_finite, used, hidden_act)
        if "pooler" not in checkpoint.params:
            raise CheckpointError(
                f"{checkpoint.source}: no pooler weights; this head reads the pooled output, so the checkpoint must "
                "hold pooler.dense.weight and pooler.dense.bias"
            )
        num_labels, H = len(checkpoint.config.id2label), checkpoint.config.hidden_size
        shapes = {"weight": (num_labels, H), "bias": (num_labels,)}
        return cls(checkpoint.config, checkpoint.params, _read_head(checkpoint, cls.PREFIX, shapes, check_finite))

    def __call__(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        trace: Trace = NO_TRACE,
        threads: int | None = None,
    ) -> SequenceClassifierOutput:
        """Label scores for each row. Inputs and `threads` as BertModel takes them (sentence pairs via
        token_type_ids)."""
        out = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            trace=trace.at("bert"),
            threads=threads,
        )
        with products_on(threads):
            logits = bert_classifier(out.pooler_output, **self.classifier, trace=trace)  # [B, H] -> [B, L]
        # The pipeline's default function_to_apply:
        # https://github.com/huggingface/transformers/blob/v5.24.0/src/transformers/pipelines/text_classification.py#L183-L193
        probabilities, predicted = None, None
        if self.problem_type == "regression":
            pass
        elif self.problem_type == "multi_label_classification" or self.num_labels == 1:
            probabilities = sigmoid(logits)
        else:
            probabilities = softmax(logits, axis=-1)
            predicted = [self.id2label[int(i)] for i in np.argmax(logits, axis=-1)]
        return SequenceClassifierOutput(
            logits=logits,
            probabilities=probabilities,
            predicted_labels=predicted,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )

    def __repr__(self) -> str:
        c = self.config
        labels = ", ".join(self.id2label[i] for i in range(self.num_labels))
        return (
            f"BertForSequenceClassification(layers={c.num_hidden_layers}, hidden={c.hidden_size}, "
            f"labels=[{labels}], dtype={self.dtype})"
        )
