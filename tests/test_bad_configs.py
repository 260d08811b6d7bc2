"""Bad config.json files: missing, malformed, of the wrong types, or asking for what minibert does not implement.
Each is a ConfigError naming the file and the field (or a CheckpointError where the weights then disagree).

Broken checkpoints are made in tmp_path from the tiny checkpoints in weights/ (weights/make_reference.py made those),
with tests/support/bad_checkpoints.py.
"""

import json
import shutil

import numpy as np
import pytest
from support.bad_checkpoints import TINY, copy_checkpoint, edit_config
from support.helpers import WEIGHTS

import minibert
from minibert import CheckpointError, ConfigError

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
        (b"[32, 2]", r"config.json: expected a JSON object, found an array"),
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
    "vocab_size as a string": (dict(vocab_size="99"), r"'vocab_size' must be an integer, found '99' \(a string\)"),
    "hidden_size as a float": (dict(hidden_size=32.0), r"field 'hidden_size' must be an integer, found 32.0"),
    "num_hidden_layers null": (dict(num_hidden_layers=None), r"'num_hidden_layers' must be an integer, found null$"),
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


def test_missing_config_fields_take_the_defaults(tmp_path, tiny_model):
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
    np.testing.assert_array_equal(reloaded(ids).last_hidden_state, tiny_model(ids).last_hidden_state)


def test_missing_size_field_defaults_to_bert_base_and_then_disagrees_with_the_weights(tmp_path):
    """Without hidden_size the default (768) applies, as in transformers, and the weights then contradict it."""
    directory = copy_checkpoint(tmp_path)
    edit_config(directory, drop=["hidden_size"])
    with pytest.raises(
        CheckpointError, match=r"'embeddings.word_embeddings.weight' has shape \(99, 32\); .* \(99, 768\)"
    ):
        minibert.BertModel.from_pretrained(directory)


MLM = WEIGHTS / "tiny-mlm"  # BertForMaskedLM, tied


@pytest.mark.parametrize("value", ["false", 0, 1, None])
def test_tie_word_embeddings_that_is_not_a_bool_is_config_error(tmp_path, value):
    directory = tmp_path / "mlm"
    shutil.copytree(MLM, directory)
    config = json.loads((directory / "config.json").read_text())
    config["tie_word_embeddings"] = value
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=f"tie_word_embeddings must be true or false, found {value!r}"):
        minibert.BertForMaskedLM.from_pretrained(directory)
