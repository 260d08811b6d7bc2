"""A catalogue of bad inputs, bad checkpoints and bad command lines: each is met by a clear error, none by a wrong
number or a raw NumPy/IndexError/KeyError traceback.

Every case asserts the error's type (InputError, ConfigError, CheckpointError) and that its message names the
problem (`match=`). Broken checkpoints are made here, in tmp_path, from the tiny checkpoints in weights/
(weights/make_reference.py made those); broken safetensors files are written byte by byte: an 8-byte little-endian
header length, a JSON header, the data.

tests/test_torch_pickle.py, tests/test_checkpoint_layouts.py and tests/test_cli.py test the pickle reader, sharded
loading and the command's outputs in depth; the cases here check that each fails as clearly from the top.
"""

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import F64_TOL, ROOT, WEIGHTS, minilm_dir
from safetensors.numpy import load_file, save_file

import minibert
from minibert import CheckpointError, ConfigError, InputError
from minibert.cli import main

TINY = WEIGHTS / "tiny-gelu"  # vocab 99, hidden 32, 2 layers, 4 heads, max_position_embeddings 64, 2 token types


@pytest.fixture(scope="module")
def model():
    return minibert.BertModel.from_pretrained(TINY, dtype=np.float64)


@pytest.fixture(scope="module")
def tokenizer():
    return minibert.Tokenizer.from_pretrained(minilm_dir())


def copy_checkpoint(tmp_path: Path, source: Path = TINY) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(source / name, directory / name)
    return directory


def edit_config(directory: Path, drop=(), **changes) -> None:
    values = json.loads((directory / "config.json").read_text())
    for name in drop:
        del values[name]
    values.update(changes)
    (directory / "config.json").write_text(json.dumps(values))


def edit_tensors(directory: Path, edit) -> None:
    """Load model.safetensors, let `edit` change the dict of tensors in place, save it back (a valid file)."""
    tensors = load_file(directory / "model.safetensors")
    edit(tensors)
    save_file(tensors, directory / "model.safetensors")


def write_safetensors(path: Path, header, data: bytes, header_length: int | None = None) -> None:
    """A safetensors file by hand, so that its header can lie: length prefix, JSON header, data."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if header_length is None else header_length) + raw + data)


# --- Inputs: every bad argument of a forward pass is an InputError that names the argument -------------------------

IDS = [[5, 6, 7]]
BAD_INPUTS = {
    "float ids": (dict(input_ids=np.array([[1.0, 2.0]])), "input_ids must hold integers, found dtype float64"),
    "string ids": (dict(input_ids=[["a", "b"]]), "input_ids must hold integers, found dtype <U1"),
    "bool ids": (dict(input_ids=np.array([[True, False]])), "input_ids must hold integers, found dtype bool"),
    "None ids": (dict(input_ids=None), "input_ids must hold integers, found dtype object"),
    "1-D ids": (dict(input_ids=[5, 6, 7]), r"2-D \[batch, sequence\], found shape \(3,\); .* input_ids\[None, :\]"),
    "3-D ids": (dict(input_ids=np.ones((1, 2, 3), int)), r"2-D \[batch, sequence\], found shape \(1, 2, 3\)"),
    "negative id": (dict(input_ids=[[5, -1]]), r"input_ids holds 1 value\(s\) outside \[0, 99\) \(e.g. -1\)"),
    "id = vocab_size": (dict(input_ids=[[5, 99]]), r"outside \[0, 99\) \(e.g. 99\); the config's vocab_size is 99"),
    "token type = type_vocab_size": (
        dict(input_ids=IDS, token_type_ids=[[0, 1, 2]]),
        r"token_type_ids holds 1 value\(s\) outside \[0, 2\) .* type_vocab_size is 2",
    ),
    "float token types": (dict(input_ids=IDS, token_type_ids=[[0.0, 0, 1]]), "token_type_ids must hold integers"),
    "longer than max_position_embeddings": (
        dict(input_ids=np.ones((1, 65), int)),
        r"sequence length 65 exceeds max_position_embeddings \(64\).*truncation=True",
    ),
    "mask longer than ids": (
        dict(input_ids=IDS, attention_mask=[[1, 1, 1, 1]]),
        r"attention_mask has shape \(1, 4\) but input_ids has shape \(1, 3\)",
    ),
    "extended [B, 1, 1, S] mask": (
        dict(input_ids=IDS, attention_mask=np.ones((1, 1, 1, 3))),
        r"attention_mask has shape \(1, 1, 1, 3\) but input_ids has shape \(1, 3\)",
    ),
    "ragged mask": (dict(input_ids=[[1, 2], [3, 4]], attention_mask=[[1, 1], [1]]), "attention_mask is ragged"),
    "token types of another batch": (
        dict(input_ids=IDS, token_type_ids=[[0, 0, 0], [0, 0, 0]]),
        r"token_type_ids has shape \(2, 3\) but input_ids has shape \(1, 3\)",
    ),
    "position ids too short": (
        dict(input_ids=IDS, position_ids=[[0, 1]]),
        r"position_ids has shape \(1, 2\) but input_ids has shape \(1, 3\); expected \(1, 3\)",
    ),
    "position id = max_position_embeddings": (
        dict(input_ids=IDS, position_ids=[[0, 1, 64]]),
        r"position_ids holds 1 value\(s\) outside \[0, 64\) \(e.g. 64\).*Leave position_ids out",
    ),
    "negative position id": (dict(input_ids=IDS, position_ids=[[-1, 0, 1]]), r"position_ids .* \(e.g. -1\)"),
    "float position ids": (dict(input_ids=IDS, position_ids=[[0.0, 1.0, 2.0]]), "position_ids must hold integers"),
    "mask value 2": (
        dict(input_ids=IDS, attention_mask=[[1, 2, 1]]),
        r"only 0 \(padding\) and 1 \(token\), found \[1 2\]",
    ),
    "fractional mask": (dict(input_ids=IDS, attention_mask=[[1, 0.5, 1]]), r"only 0 \(padding\) and 1.*0\.5"),
    "NaN in mask": (dict(input_ids=IDS, attention_mask=[[1, np.nan, 1]]), r"only 0 \(padding\) and 1.*nan"),
    "additive -inf mask": (dict(input_ids=IDS, attention_mask=[[0, -np.inf, 0]]), r"an additive mask \(0 / -inf\)"),
    "string mask": (dict(input_ids=IDS, attention_mask=[["1", "1", "0"]]), "attention_mask .* found dtype <U1"),
    "None in mask": (dict(input_ids=IDS, attention_mask=[[1, None, 1]]), "attention_mask .* found dtype object"),
    "empty batch": (dict(input_ids=np.zeros((0, 3), np.int64)), r"input_ids is empty \(shape \(0, 3\)\)"),
    "empty sequences": (dict(input_ids=np.zeros((2, 0), np.int64)), r"input_ids is empty \(shape \(2, 0\)\)"),
    "empty list": (dict(input_ids=[]), r"input_ids is empty \(shape \(0,\)\)"),
    "ragged ids": (dict(input_ids=[[1, 2, 3], [4]]), "input_ids is ragged .* pad the rows to one length"),
}


@pytest.mark.parametrize("kwargs, match", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_forward_inputs_raise_input_error_naming_the_argument(model, kwargs, match):
    with pytest.raises(InputError, match=match):
        model(**kwargs)


@pytest.mark.parametrize(
    "dtype, match",
    [
        (np.float16, "dtype float16 is not supported; use numpy.float32 or numpy.float64"),
        (np.int32, "dtype int32 is not supported"),
        ("banana", "dtype 'banana' is not a NumPy dtype"),
    ],
)
def test_unsupported_model_dtype_is_input_error(dtype, match):
    with pytest.raises(InputError, match=match):
        minibert.BertModel.from_pretrained(TINY, dtype=dtype)


def test_boolean_and_float_masks_of_zeros_and_ones_are_accepted_like_integer_ones(model):
    """transformers accepts a mask of any numeric dtype holding 0 and 1; so does minibert, with the same result."""
    ids = [[5, 6, 7, 8]]
    expected = model(ids, attention_mask=[[1, 1, 1, 0]]).last_hidden_state
    for mask in (
        np.array([[True, True, True, False]]),
        np.array([[1.0, 1.0, 1.0, 0.0]]),
        np.array([[1, 1, 1, 0]], np.uint8),
    ):
        np.testing.assert_array_equal(model(ids, attention_mask=mask).last_hidden_state, expected)


def test_fully_padded_row_attends_uniformly_and_stays_finite(model):
    """A row whose mask is all 0 gets finfo.min on every score: a uniform softmax, finite outputs (no NaN)."""
    out = model([[5, 6, 7, 8], [9, 10, 11, 12]], attention_mask=[[1, 1, 0, 0], [0, 0, 0, 0]], output_attentions=True)
    for probs in out.attentions:  # [B, N, S, S]
        np.testing.assert_array_equal(probs[1], np.full_like(probs[1], 1 / 4))
    assert np.isfinite(out.last_hidden_state).all() and np.isfinite(out.pooler_output).all()
    # The other row does not notice its neighbour.
    alone = model([[5, 6, 7, 8]], attention_mask=[[1, 1, 0, 0]]).last_hidden_state
    np.testing.assert_allclose(out.last_hidden_state[:1], alone, rtol=0, atol=1e-13)


def test_fully_padded_row_matches_transformers_eager_in_float64_at_every_position(model):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    reference = transformers.BertModel.from_pretrained(TINY, dtype=torch.float64, attn_implementation="eager").eval()
    ids = np.array([[5, 6, 7, 8, 9], [10, 11, 12, 13, 14], [15, 16, 17, 18, 19]])
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    with torch.no_grad():
        theirs = reference(torch.tensor(ids), attention_mask=torch.tensor(mask), output_attentions=True)
    ours = model(ids, attention_mask=mask, output_attentions=True)
    for name in ("last_hidden_state", "pooler_output"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name).numpy(), rtol=0, atol=F64_TOL)
    for mine, reference_probs in zip(ours.attentions, theirs.attentions, strict=True):
        np.testing.assert_allclose(mine, reference_probs.numpy(), rtol=0, atol=F64_TOL)


# --- Tokenizer: what it refuses, and what it does with empty texts ---------------------------------------------------

BAD_TEXTS = {
    "empty list": (dict(texts=[]), "texts must be a string or a non-empty list of strings, found list"),
    "None": (dict(texts=None), "texts must be a string or a non-empty list of strings, found NoneType"),
    "a number": (dict(texts=5), "texts must be a string or a non-empty list of strings, found int"),
    "list of ids": (dict(texts=[101, 102]), r"texts\[0\] is a int, not a string"),
    "bytes": (dict(texts=["ok", b"raw"]), r"texts\[1\] is a bytes, not a string; decode bytes first"),
    "nested list": (dict(texts=[["a", "b"]]), r"texts\[0\] is a list, not a string"),
    "lone surrogate": (
        dict(texts=["ok", "bad \ud800 text"]),
        r"texts\[1\] holds '\\ud800' at index 4, a lone surrogate",
    ),
    "pairs of another length": (dict(texts=["a", "b"], text_pairs=["c"]), "text_pairs has 1 texts but texts has 2"),
    "non-string pair": (dict(texts=["a"], text_pairs=[None]), r"text_pairs\[0\] is a NoneType, not a string"),
    "unknown padding": (dict(texts=["a"], padding="left"), "padding must be True, False, 'longest' or 'max_length'"),
    "unknown truncation": (dict(texts=["a"], truncation="yes"), "truncation must be True, False or 'longest_first'"),
    "max_length 1": (dict(texts=["a"], max_length=1), r"max_length must be an integer of at least 2 \(\[CLS\] and"),
    "max_length bool": (dict(texts=["a"], max_length=True), "max_length must be an integer of at least 2"),
    "max_length below a pair's special tokens": (
        dict(texts=["a b c"], text_pairs=["d e f"], max_length=2),
        r"max_length 2 leaves no room for the 3 special tokens of each row \(\[CLS\] A \[SEP\] B \[SEP\]\)",
    ),
    "unpadded rows of different lengths": (dict(texts=["a", "a b c"], padding=False), "pass padding=True"),
}


@pytest.mark.parametrize("kwargs, match", BAD_TEXTS.values(), ids=BAD_TEXTS.keys())
def test_bad_tokenizer_arguments_raise_input_error(tokenizer, kwargs, match):
    with pytest.raises(InputError, match=match):
        tokenizer(**kwargs)


def test_empty_strings_encode_as_cls_sep_like_transformers(tokenizer):
    """An empty text is not an error: it is [CLS] [SEP], as transformers' tokenizer gives, and the model runs on it."""
    encoded = tokenizer(["", "", "   \t\n"])
    np.testing.assert_array_equal(encoded["input_ids"], [[101, 102]] * 3)
    np.testing.assert_array_equal(encoded["attention_mask"], [[1, 1]] * 3)
    out = minibert.BertModel.from_pretrained(minilm_dir())(**encoded)
    assert out.last_hidden_state.shape == (3, 2, 384) and np.isfinite(out.last_hidden_state).all()
    transformers = pytest.importorskip("transformers")
    theirs = transformers.AutoTokenizer.from_pretrained(minilm_dir())(["", "", "   \t\n"], return_tensors="np")
    for name in ("input_ids", "token_type_ids", "attention_mask"):
        np.testing.assert_array_equal(encoded[name], theirs[name])


def test_untruncated_long_text_is_refused_by_the_model_not_wrapped_around(tokenizer):
    encoded = tokenizer(["word " * 600], truncation=False)
    assert encoded["input_ids"].shape[1] > 512
    with pytest.raises(InputError, match=r"exceeds max_position_embeddings \(512\)"):
        minibert.BertModel.from_pretrained(minilm_dir())(**encoded)


def test_corrupt_tokenizer_json_is_checkpoint_error(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    with pytest.raises(CheckpointError, match=r"tokenizer.json: cannot be read"):
        minibert.Tokenizer.from_pretrained(tmp_path)


def test_directory_without_tokenizer_files_is_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no tokenizer.json or vocab.txt"):
        minibert.Tokenizer.from_pretrained(copy_checkpoint(tmp_path))


# --- config.json: missing, malformed, of the wrong types, or asking for what minibert does not implement ------------


def test_missing_config_json_is_config_error(tmp_path):
    directory = copy_checkpoint(tmp_path)
    (directory / "config.json").unlink()
    with pytest.raises(ConfigError, match=r"config.json: no such file; a model directory needs the config.json"):
        minibert.BertModel.from_pretrained(directory)


@pytest.mark.parametrize(
    "content, match",
    [
        (b'{"hidden_size": 32,', r"config.json: invalid JSON at line 1 column 20"),
        (b"", r"config.json: invalid JSON at line 1 column 1"),
        (b"[32, 2]", r"config.json: expected a JSON object, found list"),
        (b'{"hidden_size": "\xff"}', r"config.json: cannot be read .*utf-8"),
    ],
    ids=["truncated", "empty", "a list", "not UTF-8"],
)
def test_malformed_config_json_is_config_error(tmp_path, content, match):
    directory = copy_checkpoint(tmp_path)
    (directory / "config.json").write_bytes(content)
    with pytest.raises(ConfigError, match=match):
        minibert.BertModel.from_pretrained(directory)


def test_config_json_that_is_a_directory_is_config_error(tmp_path):
    directory = copy_checkpoint(tmp_path)
    (directory / "config.json").unlink()
    (directory / "config.json").mkdir()
    with pytest.raises(ConfigError, match=r"config.json: cannot be read"):
        minibert.BertModel.from_pretrained(directory)


BAD_CONFIG_FIELDS = {
    "vocab_size as a string": (dict(vocab_size="99"), r"field 'vocab_size' must be an integer, found '99' \(str\)"),
    "hidden_size as a float": (dict(hidden_size=32.0), r"field 'hidden_size' must be an integer, found 32.0"),
    "num_hidden_layers null": (dict(num_hidden_layers=None), r"'num_hidden_layers' must be an integer, found None"),
    "num_attention_heads true": (dict(num_attention_heads=True), r"'num_attention_heads' must be an integer"),
    "zero heads": (dict(num_attention_heads=0), r"'num_attention_heads' must be at least 1, found 0"),
    "layer_norm_eps as a string": (dict(layer_norm_eps="1e-12"), "field 'layer_norm_eps' must be a number"),
    "layer_norm_eps zero": (dict(layer_norm_eps=0), "'layer_norm_eps' must be positive and finite, found 0"),
    "layer_norm_eps infinite": (dict(layer_norm_eps=float("inf")), "must be positive and finite, found inf"),
    "hidden_act a list": (dict(hidden_act=["gelu"]), r"hidden_act \['gelu'\] is not supported; supported: gelu,"),
    "unknown hidden_act": (dict(hidden_act="swish2"), r"hidden_act 'swish2' is not supported; supported: gelu"),
    "pad_token_id a string": (dict(pad_token_id="0"), "field 'pad_token_id' must be an integer or null, found '0'"),
    "is_decoder a string": (dict(is_decoder="false"), r"is_decoder is 'false'; minibert runs BERT as a bidirectional"),
    "relative_key": (dict(position_embedding_type="relative_key"), r"position_embedding_type 'relative_key' is not"),
    "relative_key_query": (dict(position_embedding_type="relative_key_query"), "'absolute'\\) only"),
    "is_decoder": (dict(is_decoder=True), "is_decoder is True; .* Set is_decoder to false"),
    "cross-attention": (dict(add_cross_attention=True), "add_cross_attention is True; minibert runs BERT as"),
    "model_type roberta": (dict(model_type="roberta"), r"model_type is 'roberta'; minibert implements BERT only"),
    "model_type distilbert": (dict(model_type="distilbert"), r"model_type is 'distilbert'"),
    "hidden not divisible by heads": (
        dict(hidden_size=30),
        r"hidden_size \(30\) is not a multiple of num_attention_heads \(4\)",
    ),
}


@pytest.mark.parametrize("changes, match", BAD_CONFIG_FIELDS.values(), ids=BAD_CONFIG_FIELDS.keys())
def test_bad_or_unsupported_config_fields_are_config_errors_naming_the_field(tmp_path, changes, match):
    directory = copy_checkpoint(tmp_path)
    edit_config(directory, **changes)
    with pytest.raises(ConfigError, match=match) as error:
        minibert.BertModel.from_pretrained(directory)
    assert str(error.value).startswith(f"{directory / 'config.json'}: ")


def test_config_defaults_are_transformers_defaults():
    transformers = pytest.importorskip("transformers")
    theirs = transformers.BertConfig().to_dict()
    ours = minibert.BertConfig().to_dict()
    # transformers 5 dropped position_embedding_type (it implements absolute positions only, as minibert does).
    assert {name: theirs.get(name, "absolute") for name in ours} == ours


def test_missing_config_fields_take_the_defaults(tmp_path, model):
    """tiny-gelu's config holds the default hidden_act, layer_norm_eps, type_vocab_size, position_embedding_type:
    without those lines it loads and computes exactly the same numbers."""
    directory = copy_checkpoint(tmp_path)
    defaults = [
        "hidden_act",
        "layer_norm_eps",
        "type_vocab_size",
        "position_embedding_type",
        "is_decoder",
        "add_cross_attention",
        "pad_token_id",
        "model_type",
    ]
    edit_config(
        directory, drop=[name for name in defaults if name in json.loads(TINY.joinpath("config.json").read_text())]
    )
    reloaded = minibert.BertModel.from_pretrained(directory, dtype=np.float64)
    assert (reloaded.config.hidden_act, reloaded.config.layer_norm_eps) == ("gelu", 1e-12)
    ids = [[5, 6, 7, 8]]
    np.testing.assert_array_equal(reloaded(ids).last_hidden_state, model(ids).last_hidden_state)


def test_missing_size_field_defaults_to_bert_base_and_then_disagrees_with_the_weights(tmp_path):
    """Without hidden_size the default (768) applies, as in transformers, and the weights then contradict it."""
    directory = copy_checkpoint(tmp_path)
    edit_config(directory, drop=["hidden_size"])
    with pytest.raises(
        CheckpointError, match=r"'embeddings.word_embeddings.weight' has shape \(99, 32\); .* \(99, 768\)"
    ):
        minibert.BertModel.from_pretrained(directory)


# --- Weights: missing, corrupt, lying, misshapen, of the wrong dtype, not finite ------------------------------------


def test_no_such_model_directory_is_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="absent: no such directory .*; pass a model directory"):
        minibert.BertModel.from_pretrained(tmp_path / "absent")


def test_a_file_instead_of_a_directory_is_checkpoint_error():
    with pytest.raises(CheckpointError, match="is a file; pass the directory that holds config.json"):
        minibert.BertModel.from_pretrained(TINY / "config.json")


def test_directory_with_no_weights_names_what_it_holds(tmp_path):
    directory = copy_checkpoint(tmp_path)
    (directory / "model.safetensors").unlink()
    with pytest.raises(
        CheckpointError,
        match=r"no weights to load; expected one of \['model.safetensors', .* the directory holds \['config.json'\]",
    ):
        minibert.BertModel.from_pretrained(directory)


def tensors_data():
    return np.arange(6, dtype=np.float32).tobytes()  # 24 bytes


F32_2x3 = {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
NOT_READABLE = r"not a readable safetensors file \("
BAD_SAFETENSORS = {
    "empty file": (None, b"", NOT_READABLE + "0 bytes, shorter than the 8-byte header length"),
    "cut inside the length": (None, b"\x10\x00\x00", NOT_READABLE + "3 bytes, shorter than the 8-byte header length"),
    "header length beyond the file": (
        {"a": F32_2x3},
        10**6,
        NOT_READABLE + r"header length 1000000 does not fit in a file of \d+ bytes",
    ),
    "header length 2**64 - 1": ({"a": F32_2x3}, 2**64 - 1, NOT_READABLE + "header length 18446744073709551615 does"),
    "header not JSON": (None, struct.pack("<Q", 5) + b"hello", NOT_READABLE + "header is not JSON"),
    "header not UTF-8": (None, struct.pack("<Q", 4) + b"\xff\xfe{}", NOT_READABLE + "header is not JSON"),
    "header a list": ([1, 2], None, NOT_READABLE + "header is not a JSON object"),
    "entry without offsets": (
        {"a": {"dtype": "F32", "shape": [2, 3]}},
        None,
        NOT_READABLE + "tensor 'a' has no dtype, shape and",
    ),
    "unknown dtype": (
        {"a": {**F32_2x3, "dtype": "F99"}},
        None,
        r"tensor 'a' has dtype F99, which minibert does not read; re-save",
    ),
    "negative shape": ({"a": {**F32_2x3, "shape": [-2, 3]}}, None, NOT_READABLE + r"tensor 'a' has shape \[-2, 3\]"),
    "shape bigger than its bytes": (
        {"a": {**F32_2x3, "shape": [2, 4]}},
        None,
        NOT_READABLE + r"tensor 'a' \(F32, shape \(2, 4\), 32 bytes\) has data_offsets \[0, 24\]",
    ),
    "shape that overflows int64": (
        {"a": {**F32_2x3, "shape": [2**40, 2**40]}},
        None,
        r"tensor 'a' \(F32, shape \(1099511627776, 1099511627776\), 4835703278458516698824704 bytes\)",
    ),
    "offsets beyond the file": (
        {"a": {**F32_2x3, "shape": [4, 3], "data_offsets": [0, 48]}},
        None,
        r"has data_offsets \[0, 48\]; the file holds 24 bytes of data",
    ),
    "offsets reversed": (
        {"a": {**F32_2x3, "shape": [0], "data_offsets": [24, 0]}},
        None,
        r"tensor 'a' .* has data_offsets \[24, 0\]",
    ),
    "gap before the first tensor": (
        {"a": {**F32_2x3, "shape": [3], "data_offsets": [12, 24]}},
        None,
        r"tensor 'a' starts at data byte 12 but the data starts at 0: the header's byte ranges leave a gap",
    ),
    "overlapping tensors": (
        {"a": F32_2x3, "b": {"dtype": "F32", "shape": [3], "data_offsets": [12, 24]}},
        None,
        r"tensor 'b' starts at data byte 12 but the previous tensor 'a' ends at 24: the header's byte ranges overlap",
    ),
    "bytes after the last tensor": (
        {"a": F32_2x3},
        b"trailing",
        "the header's tensors cover 24 bytes of data but the file holds 32",
    ),
    "truncated data": ({"a": F32_2x3}, -10, r"tensor 'a' .* has data_offsets \[0, 24\]; the file holds 14 bytes"),
    "empty tensor with huge dimensions": (
        {"a": F32_2x3, "e": {"dtype": "F32", "shape": [2**62, 0], "data_offsets": [24, 24]}},
        None,
        r"tensor 'e' has shape \(4611686018427387904, 0\), too large for any array",
    ),
    "float8 tensor": (
        {"a": {**F32_2x3, "dtype": "F8_E4M3", "shape": [24]}},
        None,
        "tensor 'a' has dtype F8_E4M3, which minibert does not read; re-save the checkpoint as F32, F16 or BF16",
    ),
}


@pytest.mark.parametrize("header, tail, match", BAD_SAFETENSORS.values(), ids=BAD_SAFETENSORS.keys())
def test_corrupt_or_lying_safetensors_is_checkpoint_error_naming_the_file(tmp_path, header, tail, match):
    """`header` None: `tail` is the whole file. Otherwise `tail` is the header length (int > 0), bytes appended
    after the data (bytes), or how many bytes to cut off the data (int < 0)."""
    directory = copy_checkpoint(tmp_path)
    path = directory / "model.safetensors"
    if header is None:
        path.write_bytes(tail)
    else:
        data = tensors_data()
        if isinstance(tail, bytes):
            data += tail
        elif isinstance(tail, int) and tail < 0:
            data = data[:tail]
        write_safetensors(path, header, data, header_length=tail if isinstance(tail, int) and tail > 0 else None)
    with pytest.raises(CheckpointError, match=match) as error:
        minibert.BertModel.from_pretrained(directory)
    assert str(error.value).startswith(f"{path}: ")


def test_real_checkpoint_cut_in_half_is_checkpoint_error(tmp_path):
    directory = copy_checkpoint(tmp_path)
    path = directory / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(
        CheckpointError,
        match=r"model.safetensors: not a readable safetensors file \(tensor '.+' .+; the file holds \d+ bytes of data",
    ):
        minibert.BertModel.from_pretrained(directory)


def test_valid_hand_written_file_loads_so_the_validation_is_not_too_strict(tmp_path):
    from minibert.safetensors import read_safetensors

    path = tmp_path / "x.safetensors"
    empty = {"dtype": "F32", "shape": [0, 3], "data_offsets": [24, 24]}  # zero-size tensors take no bytes
    write_safetensors(path, {"__metadata__": {"format": "np"}, "a": F32_2x3, "e": empty}, tensors_data())
    tensors = read_safetensors(path)
    np.testing.assert_array_equal(tensors["a"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert tensors["e"].shape == (0, 3)


WORD = "embeddings.word_embeddings.weight"
BAD_TENSORS = {
    "transposed embedding": (
        lambda t: t.update({WORD: t[WORD].T.copy()}),
        rf"tensor '{WORD}' has shape \(32, 99\); config.json says \(99, 32\)",
    ),
    "int32 weights": (
        lambda t: t.update({WORD: t[WORD].astype(np.int32)}),
        rf"tensor '{WORD}' has dtype int32; expected floating point weights",
    ),
    "complex weights": (
        lambda t: t.update({WORD: t[WORD].astype(np.complex64)}),
        rf"tensor '{WORD}' has dtype C64, which minibert does not read",
    ),
    "missing tensor": (
        lambda t: t.pop("encoder.layer.1.output.dense.bias"),
        r"missing 1 tensor\(s\): encoder.layer.1.output.dense.bias. Is config.json the one",
    ),
    "tensor of a third layer": (
        lambda t: t.update({"encoder.layer.2.output.dense.bias": t["encoder.layer.1.output.dense.bias"]}),
        r"unexpected 1 tensor\(s\): encoder.layer.2.output.dense.bias",
    ),
    "two names for one tensor": (
        lambda t: t.update({"bert." + WORD: t[WORD]}),
        rf"two tensors map to '{WORD}': 'bert.{WORD}' and '{WORD}'; the checkpoint is ambiguous",
    ),
    "NaN weight": (
        lambda t: t[WORD].__setitem__((3, 4), np.nan),
        rf"tensor '{WORD}' holds 1 NaN or infinite value\(s\).*pass check_finite=False",
    ),
    "infinite weights": (
        lambda t: t["pooler.dense.bias"].__setitem__(slice(0, 2), np.inf),
        r"tensor 'pooler.dense.bias' holds 2 NaN or infinite value\(s\)",
    ),
}


@pytest.mark.parametrize("edit, match", BAD_TENSORS.values(), ids=BAD_TENSORS.keys())
def test_tensors_that_do_not_fit_the_config_are_checkpoint_errors_naming_the_tensor(tmp_path, edit, match):
    directory = copy_checkpoint(tmp_path)
    edit_tensors(directory, edit)
    with pytest.raises(CheckpointError, match=match):
        minibert.BertModel.from_pretrained(directory)


def test_float16_weights_are_not_an_error_and_load_exactly(tmp_path):
    """Half-precision checkpoints exist (saved with model.half()); every float16 value is exact in float32/64."""
    directory = copy_checkpoint(tmp_path)
    edit_tensors(directory, lambda t: t.update({name: value.astype(np.float16) for name, value in t.items()}))
    model = minibert.BertModel.from_pretrained(directory, dtype=np.float64)
    halves = load_file(directory / "model.safetensors")[WORD]
    assert halves.dtype == np.float16
    np.testing.assert_array_equal(model.params["embeddings"]["word_embeddings"]["weight"], halves.astype(np.float64))


def test_config_with_more_layers_than_the_weights_names_the_missing_tensors(tmp_path):
    directory = copy_checkpoint(tmp_path)
    edit_config(directory, num_hidden_layers=3)
    with pytest.raises(CheckpointError, match=r"do not match a BertModel with 3 layers: missing 16 tensor\(s\)"):
        minibert.BertModel.from_pretrained(directory)


def test_check_finite_false_skips_the_scan_and_the_nan_flows_through(tmp_path):
    directory = copy_checkpoint(tmp_path)
    edit_tensors(directory, lambda t: t[WORD].__setitem__((7, 0), np.nan))
    model = minibert.BertModel.from_pretrained(directory, check_finite=False)
    out = model([[7, 8], [8, 9]])
    assert np.isnan(out.last_hidden_state[0]).all()  # token 7's embedding row is NaN, and attention spreads it
    assert np.isfinite(out.last_hidden_state[1]).all()


# --- Other layouts: pytorch_model.bin (a pickle) and sharded safetensors -------------------------------------------


class RunsCommand:
    """Unpickling this calls os.system(command), as a hostile pytorch_model.bin would."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_pickle_that_tries_to_run_code_is_refused_before_it_runs(tmp_path):
    directory = copy_checkpoint(tmp_path)
    (directory / "model.safetensors").unlink()
    marker = tmp_path / "ran"
    with zipfile.ZipFile(directory / "pytorch_model.bin", "w") as archive:  # torch.save's layout
        archive.writestr("archive/data.pkl", pickle.dumps({WORD: RunsCommand(f"touch {marker}")}, protocol=4))
        archive.writestr("archive/byteorder", "little")
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin.*refuses to load global 'posix.system'"):
        minibert.BertModel.from_pretrained(directory)
    assert not marker.exists()


def test_zip_whose_end_record_claims_several_disks_is_checkpoint_error(tmp_path):
    """zipfile.is_zipfile raises BadZipFile here instead of answering (found by tests/fuzz_robustness.py)."""
    directory = copy_checkpoint(tmp_path)
    (directory / "model.safetensors").unlink()
    locator = b"PK\x06\x07" + struct.pack("<LQL", 0, 0, 2)  # zip64 end locator: 2 disks
    (directory / "pytorch_model.bin").write_bytes(b"junk" + locator + b"PK\x05\x06" + bytes(18))
    with pytest.raises(
        CheckpointError, match=r"pytorch_model.bin: cannot read it as a torch.save archive \(BadZipFile"
    ):
        minibert.BertModel.from_pretrained(directory)


def shard(directory: Path) -> dict[str, str]:
    """tiny-gelu's weights split over two shards and an index, as save_pretrained(max_shard_size=...) writes them."""
    tensors = load_file(directory / "model.safetensors")
    (directory / "model.safetensors").unlink()
    weight_map = {}
    for i, names in enumerate((sorted(tensors)[::2], sorted(tensors)[1::2])):
        name = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({n: tensors[n] for n in names}, directory / name)
        weight_map.update(dict.fromkeys(names, name))
    (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return weight_map


def test_sharded_index_pointing_at_a_missing_shard_names_it(tmp_path):
    directory = copy_checkpoint(tmp_path)
    shard(directory)
    (directory / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"1 shard\(s\) missing .*model-00002-of-00002.safetensors \(holds"):
        minibert.BertModel.from_pretrained(directory)


def test_sharded_index_that_is_not_json_is_checkpoint_error(tmp_path):
    directory = copy_checkpoint(tmp_path)
    shard(directory)
    (directory / "model.safetensors.index.json").write_text('{"weight_map": {')
    with pytest.raises(CheckpointError, match=r"model.safetensors.index.json: cannot be read as JSON"):
        minibert.BertModel.from_pretrained(directory)


def test_truncated_shard_is_named(tmp_path):
    directory = copy_checkpoint(tmp_path)
    shard(directory)
    path = directory / "model-00001-of-00002.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"model-00001-of-00002.safetensors: not a readable safetensors file"):
        minibert.BertModel.from_pretrained(directory)


# --- The command line: one line on stderr, exit status 2, never a traceback ------------------------------------------


def broken_model(tmp_path: Path, what: str) -> Path:
    directory = copy_checkpoint(tmp_path)
    shutil.copy(minilm_dir() / "tokenizer.json", directory)
    if what == "config":
        (directory / "config.json").write_text("{")
    elif what == "weights":
        (directory / "model.safetensors").write_bytes(b"\x00" * 7)
    elif what == "tokenizer":
        (directory / "tokenizer.json").unlink()
    elif what == "unreadable":
        (directory / "config.json").unlink()
        (directory / "config.json").mkdir()
    return directory


BAD_COMMAND_LINES = {
    "no command": ([], "minibert: error: the following arguments are required: COMMAND"),
    "unknown flag": (["explain", "hi", "--model", "x", "--bogus"], "unrecognized arguments: --bogus"),
    "missing --model": (["explain", "hi"], "minibert explain: error: the following arguments are required: --model"),
    "unsupported --dtype": (["explain", "hi", "--model", "x", "--dtype", "float16"], "invalid choice: 'float16'"),
    "--values 0": (["explain", "hi", "--model", "x", "--values", "0"], "expected a number of at least 1, found 0"),
    "--values x": (["explain", "hi", "--model", "x", "--values", "x"], "expected a whole number, found 'x'"),
    "no such model": (["explain", "hi", "--model", "{tmp}/absent"], "absent: no such directory"),
    "model is a file": (["explain", "hi", "--model", str(TINY / "config.json")], "is a file; pass the directory"),
    "invalid config.json": (["explain", "hi", "--model", "{config}"], "config.json: invalid JSON at line 1"),
    "corrupt weights": (
        ["explain", "hi", "--model", "{weights}"],
        "model.safetensors: not a readable safetensors file (7 bytes, shorter",
    ),
    "no tokenizer": (["explain", "hi", "--model", "{tokenizer}"], "no tokenizer.json or vocab.txt"),
    "unreadable config.json": (["explain", "hi", "--model", "{unreadable}"], "config.json: cannot be read"),
    "missing --input file": (["run", "--input", "{tmp}/absent.txt", "--model", "{minilm}"], "absent.txt: no such file"),
    "--input a directory": (["run", "--input", "{tmp}", "--model", "{minilm}"], "cannot be read (Is a directory)"),
    "output in a missing directory": (
        ["run", "hi", "--model", "{minilm}", "--output", "{tmp}/absent/out.npy"],
        "the directory {tmp}/absent does not exist; create it first",
    ),
    "output a directory": (["run", "hi", "--model", "{minilm}", "--output", "{tmp}"], "is a directory; give a file"),
    "output of another format": (
        ["run", "hi", "--model", "{minilm}", "--output", "{tmp}/out.csv"],
        "the output must be a file ending in .npy or .npz, found 'out.csv'",
    ),
}


@pytest.mark.parametrize("argv, match", BAD_COMMAND_LINES.values(), ids=BAD_COMMAND_LINES.keys())
def test_bad_command_lines_print_one_line_and_exit_2(tmp_path, capsys, argv, match):
    places = {"tmp": tmp_path, "minilm": minilm_dir()}
    for what in ("config", "weights", "tokenizer", "unreadable"):
        if any("{" + what + "}" in arg for arg in argv):
            places[what] = broken_model(tmp_path, what)
    argv = [arg.format(**places) for arg in argv]
    try:
        status = main(argv)
    except SystemExit as exit:  # argparse's own exit, for usage errors
        status = exit.code
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1, captured.err
    assert captured.err.startswith("minibert")
    assert match.format(**places) in captured.err


def test_a_run_that_fails_leaves_the_old_output_file_whole_and_no_temporary(tmp_path, capsys):
    """The model is broken, found only after the output path was checked: nothing is written, nothing is left."""
    directory = broken_model(tmp_path, "weights")
    output = tmp_path / "out.npy"
    np.save(output, np.arange(3))
    assert main(["run", "hi", "--model", str(directory), "--output", str(output)]) == 2
    assert "model.safetensors: not a readable safetensors file" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(output), np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "out.npy"]


def test_command_line_error_through_python_dash_m_has_no_traceback(tmp_path):
    directory = broken_model(tmp_path, "weights")
    result = subprocess.run(
        [sys.executable, "-m", "minibert", "explain", "hi", "--model", str(directory)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "(7 bytes, shorter than the 8-byte header length)" in result.stderr


# --- The task heads and fill_mask: wrong keywords, wrong objects, odd integers, a [MASK] lost to truncation ---------
MLM = WEIGHTS / "tiny-mlm"  # BertForMaskedLM, tied; [MASK] is id 4


@pytest.mark.parametrize("cls", [minibert.BertForMaskedLM, minibert.BertForSequenceClassification])
def test_head_from_pretrained_with_an_unknown_keyword_is_a_type_error_naming_the_public_method(cls):
    # Python's own error for a misspelt keyword, naming the method the user called (not an internal reader).
    with pytest.raises(TypeError, match=rf"{cls.__name__}\.from_pretrained\(\) got an unexpected keyword .*'foo'"):
        cls.from_pretrained(MLM, foo=1)
    with pytest.raises(TypeError, match="takes from 2 to 3 positional arguments"):
        cls.from_pretrained(MLM, np.float32, True)  # check_finite is keyword-only, as in BertModel.from_pretrained


@pytest.mark.parametrize("cls", [minibert.BertForMaskedLM, minibert.BertForSequenceClassification])
def test_head_from_pretrained_passes_the_hub_arguments_on(cls, tmp_path):
    # A hub id absent from an empty cache, offline: the hub layer's error names the revision and the cache it searched.
    with pytest.raises(CheckpointError, match="not in the local cache") as caught:
        cls.from_pretrained("org/absent-model", cache_dir=tmp_path, local_files_only=True, revision="v1")
    assert "at revision 'v1'" in str(caught.value) and str(tmp_path) in str(caught.value)


@pytest.fixture(scope="module")
def mlm():
    return minibert.BertForMaskedLM.from_pretrained(MLM)


@pytest.fixture(scope="module")
def mlm_tokenizer():
    return minibert.Tokenizer.from_pretrained(MLM)


@pytest.mark.parametrize("tokenizer", [None, "weights/tiny-mlm", {"input_ids": [[2, 4, 3]]}])
def test_fill_mask_with_something_other_than_a_tokenizer_is_input_error(mlm, tokenizer):
    with pytest.raises(InputError, match=f"tokenizer must be a minibert.Tokenizer, found {type(tokenizer).__name__}"):
        minibert.fill_mask(mlm, tokenizer, "the [MASK] sat")


def test_fill_mask_with_something_other_than_a_masked_lm_is_input_error(mlm_tokenizer):
    encoder = minibert.BertModel.from_pretrained(TINY)
    for model in (None, encoder):
        with pytest.raises(InputError, match=f"model must be a BertForMaskedLM, found {type(model).__name__}"):
            minibert.fill_mask(model, mlm_tokenizer, "the [MASK] sat")


@pytest.mark.parametrize("top_k", [np.int64(3), np.int32(3), np.uint8(3), 3])
def test_fill_mask_takes_numpy_integers_for_top_k(mlm, mlm_tokenizer, top_k):
    (candidates,) = minibert.fill_mask(mlm, mlm_tokenizer, "the [MASK] sat", top_k=top_k)
    assert len(candidates) == 3
    assert candidates == minibert.fill_mask(mlm, mlm_tokenizer, "the [MASK] sat", top_k=3)[0]


@pytest.mark.parametrize("top_k", [True, 3.0, np.float64(3), "3", np.int64(0), 69])
def test_fill_mask_refuses_a_top_k_that_is_not_an_integer_in_range(mlm, mlm_tokenizer, top_k):
    with pytest.raises(InputError, match=r"top_k must be an integer in \[1, 68\], found"):
        minibert.fill_mask(mlm, mlm_tokenizer, "the [MASK] sat", top_k=top_k)


def test_fill_mask_says_when_truncation_cut_off_the_mask(mlm, mlm_tokenizer):
    text = "the " * 600 + "[MASK] sat"  # 600 words before the [MASK]; the tokenizer keeps 512 tokens
    with pytest.raises(InputError, match=r"truncated to the tokenizer's 512, which cut off its \[MASK\] \(token 601\)"):
        minibert.fill_mask(mlm, mlm_tokenizer, text)
    with pytest.raises(InputError, match=r"has no \[MASK\]"):  # a text that never had one still says so
        minibert.fill_mask(mlm, mlm_tokenizer, "the " * 600)


@pytest.mark.parametrize("value", ["false", 0, 1, None])
def test_tie_word_embeddings_that_is_not_a_bool_is_config_error(tmp_path, value):
    directory = tmp_path / "mlm"
    shutil.copytree(MLM, directory)
    config = json.loads((directory / "config.json").read_text())
    config["tie_word_embeddings"] = value
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=f"tie_word_embeddings must be true or false, found {value!r}"):
        minibert.BertForMaskedLM.from_pretrained(directory)


# A model argument that is neither a path nor a hub id, and damaged embedding manifests (review P1.4).


@pytest.mark.parametrize("model", [None, 5, 3.5, ["org/name"], b"org/name"])
def test_a_model_that_is_not_a_str_or_path_is_input_error_naming_what_was_found(model, tmp_path):
    found = type(model).__name__
    expected = rf"expected a model directory or a hub id like 'org/name' \(a str or a path\), found {found}"
    with pytest.raises(InputError, match=expected):
        minibert.BertModel.from_pretrained(model)
    with pytest.raises(InputError, match=expected):
        minibert.Tokenizer.from_pretrained(model)
    with pytest.raises(InputError, match=expected):
        minibert.SentenceEncoder.from_pretrained(model)
    corpus = tmp_path / "in.txt"
    corpus.write_text("a line\n")
    with pytest.raises(InputError, match=expected):
        minibert.embed_file(corpus, tmp_path / "out", model, progress=False)
    assert not (tmp_path / "out").exists()


MANIFESTS = {
    "not JSON": (b'{"format": "minibert-embeddings", "rows": 3', "manifest.json: cannot be read as JSON"),
    "not UTF-8": (b"\xff\xfe{}", "manifest.json: cannot be read as JSON"),
    "a list": (b"[]", "manifest.json: not a minibert embeddings manifest"),
    "another format": (b'{"format": "parquet"}', "manifest.json: not a minibert embeddings manifest"),
    "no rows": (
        b'{"format": "minibert-embeddings", "version": 1, "model": {}, "input": {}, "partitions": [], '
        b'"fingerprint": "0", "complete": true, "dim": 4, "bad_lines": []}',
        "manifest.json: a minibert embeddings manifest without a valid rows",
    ),
    "complete without dim": (
        b'{"format": "minibert-embeddings", "version": 1, "model": {}, "input": {}, "partitions": [], "rows": 0, '
        b'"fingerprint": "0", "complete": true, "bad_lines": []}',
        "without a valid dim",
    ),
    "model not an object": (
        b'{"format": "minibert-embeddings", "version": 1, "model": 5, "input": {}, "partitions": [], "rows": 0, '
        b'"fingerprint": "0", "complete": false}',
        "without a valid model",
    ),
}


@pytest.mark.parametrize("content, match", MANIFESTS.values(), ids=MANIFESTS.keys())
def test_a_damaged_embeddings_manifest_is_input_error_naming_the_file(tmp_path, content, match):
    from minibert.embed import read_manifest

    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_bytes(content)
    for read in (minibert.read_embeddings, read_manifest):
        with pytest.raises(InputError, match=match):
            read(out)
    npy = tmp_path / "emb.npy"
    np.save(npy, np.zeros((0, 4), dtype=np.float32))
    (tmp_path / "emb.manifest.json").write_bytes(content)
    with pytest.raises(InputError, match=match.replace("manifest.json", "emb.manifest.json")):
        minibert.read_embeddings(npy)
