"""Checking the arguments of a forward pass at the public boundary, so the model code can trust its arrays.

Every refusal is an InputError that names the argument, what was expected, what was found, and the fix.
"""

import numpy as np

from .config import BertConfig
from .errors import InputError

SUPPORTED_DTYPES = (np.float32, np.float64)
_FOREIGN_IDS = "Were these ids made by another model's tokenizer?"
_FOREIGN_IDS_CLI = "The tokenizer files of --model give ids this model does not have: they belong to another model"


def _as_integer_array(name: str, value, fix: str) -> np.ndarray:
    """`value` as a NumPy integer array, or an InputError that says why it cannot be one."""
    try:
        array = np.asarray(value)
    except ValueError:
        raise InputError(f"{name} is ragged (rows of different lengths); pad the rows to one length, {fix}") from None
    if array.size == 0:  # `[]` is float64 to NumPy, but holds no value that is wrong: the shape checks speak
        return array.astype(np.int64)
    if array.dtype == bool or array.dtype.kind not in "iu":
        raise InputError(f"{name} must hold integers, found dtype {array.dtype}; {fix}")
    return array


def _check_range(name: str, array: np.ndarray, upper: int, field: str, fix: str, cli_fix: str | None = None):
    if array.size and (array.min() < 0 or array.max() >= upper):
        bad = array[(array < 0) | (array >= upper)]
        raise InputError(
            f"{name} holds {bad.size} value(s) outside [0, {upper}) (e.g. {bad.flat[0]}); "
            f"the config's {field} is {upper}.",
            fix=fix,
            cli_fix=cli_fix,
        )


def _check_same_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise InputError(f"{name} has shape {array.shape} but input_ids has shape {shape}; they must match")


def check_inputs(config: BertConfig, input_ids, attention_mask=None, token_type_ids=None, position_ids=None):
    """Validate and complete the inputs of a forward pass. Returns int64/bool arrays (ids, mask, types, positions)."""
    input_ids = _as_integer_array("input_ids", input_ids, "e.g. from minibert.Tokenizer(texts)['input_ids']")
    if input_ids.size == 0:
        raise InputError(f"input_ids is empty (shape {input_ids.shape}); give at least one sequence of one token")
    if input_ids.ndim != 2:
        hint = "; for one sequence use input_ids[None, :]" if input_ids.ndim == 1 else ""
        raise InputError(f"input_ids must be 2-D [batch, sequence], found shape {input_ids.shape}{hint}")
    batch_size, seq_length = input_ids.shape
    _check_range("input_ids", input_ids, config.vocab_size, "vocab_size", _FOREIGN_IDS, _FOREIGN_IDS_CLI)

    if attention_mask is None:
        attention_mask = np.ones_like(input_ids, dtype=bool)
    else:
        try:
            attention_mask = np.asarray(attention_mask)
        except ValueError:
            raise InputError("attention_mask is ragged; it must have the shape of input_ids") from None
        _check_same_shape("attention_mask", attention_mask, input_ids.shape)
        # Only numbers are compared with 0 and 1: "1" (a string) or None must not slip through as truthy.
        if attention_mask.dtype.kind not in "biuf":
            raise InputError(
                f"attention_mask must hold only 0 (padding) and 1 (token), found dtype {attention_mask.dtype}; "
                "pass the integer mask the Tokenizer returns"
            )
        if not np.isin(attention_mask, (0, 1)).all():
            raise InputError(
                "attention_mask must hold only 0 (padding) and 1 (token), found "
                f"{np.unique(attention_mask)[:5]} of dtype {attention_mask.dtype}; an additive mask (0 / -inf) or "
                "an extended [B, 1, 1, S] mask is made inside the model from this one"
            )
        attention_mask = attention_mask.astype(bool)

    if token_type_ids is None:
        token_type_ids = np.zeros_like(input_ids, dtype=np.int64)
    else:
        token_type_ids = _as_integer_array(
            "token_type_ids", token_type_ids, "0 for the first segment, 1 for the second"
        )
        _check_same_shape("token_type_ids", token_type_ids, input_ids.shape)
        _check_range(
            "token_type_ids",
            token_type_ids,
            config.type_vocab_size,
            "type_vocab_size",
            "Use 0 for the first text and 1 for the second, as the Tokenizer does",
        )

    if position_ids is None:
        if seq_length > config.max_position_embeddings:
            raise InputError(
                f"sequence length {seq_length} exceeds max_position_embeddings ({config.max_position_embeddings}): "
                "the model has no position embedding beyond it. Truncate the input, e.g. "
                "Tokenizer(texts, truncation=True)"
            )
        position_ids = np.arange(seq_length)[None, :]  # [1, S], broadcast over the batch
    else:
        position_ids = _as_integer_array("position_ids", position_ids, "position_ids are indices 0, 1, 2, ...")
        if position_ids.ndim == 1:
            position_ids = position_ids[None, :]
        if (
            position_ids.ndim != 2
            or position_ids.shape[1] != seq_length
            or position_ids.shape[0] not in (1, batch_size)
        ):
            expected = " or ".join(dict.fromkeys(f"({b}, {seq_length})" for b in (batch_size, 1)))
            raise InputError(
                f"position_ids has shape {position_ids.shape} but input_ids has shape {input_ids.shape}; "
                f"expected {expected}"
            )
        _check_range(
            "position_ids",
            position_ids,
            config.max_position_embeddings,
            "max_position_embeddings",
            "Leave position_ids out to number the tokens 0, 1, 2, ...",
        )
    return input_ids, attention_mask, token_type_ids, position_ids


def check_dtype(dtype) -> np.dtype:
    """`dtype` as a NumPy dtype minibert computes in (float32 or float64), or an InputError naming the fix."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise InputError(f"dtype {dtype!r} is not a NumPy dtype; use numpy.float32 or numpy.float64") from None
    if dtype not in SUPPORTED_DTYPES:
        raise InputError(f"dtype {dtype} is not supported; use numpy.float32 or numpy.float64")
    return dtype
