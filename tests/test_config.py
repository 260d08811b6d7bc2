"""BertConfig: read from config.json with transformers' defaults; anything minibert would compute wrongly is refused."""

import dataclasses
import json

import pytest
from support.helpers import minilm_dir

from minibert import BertConfig, ConfigError


def test_reads_the_real_checkpoints_config():
    config = BertConfig.from_json_file(minilm_dir() / "config.json")
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (384, 6, 12)
    assert config.intermediate_size == 1536 and config.hidden_act == "gelu" and config.layer_norm_eps == 1e-12
    assert config.attention_head_size == 32
    assert config.extra["architectures"] == ["BertModel"]  # fields minibert does not use are kept, not dropped


def test_defaults_equal_transformers_bert_config():
    transformers = pytest.importorskip("transformers")
    theirs = transformers.BertConfig()
    # transformers 5 dropped position_embedding_type (only "absolute" is left); minibert keeps it to refuse others
    minibert_only = ("extra", "position_embedding_type", "attention_mask_value", "hidden_act_source")
    compared = [f.name for f in dataclasses.fields(BertConfig) if f.name not in minibert_only]
    assert len(compared) == 12
    for name in compared:
        assert getattr(BertConfig(), name) == getattr(theirs, name), name


def test_missing_fields_take_the_defaults():
    config = BertConfig.from_dict({"hidden_size": 64, "num_attention_heads": 4})
    assert config.vocab_size == 30522 and config.layer_norm_eps == 1e-12 and config.hidden_act == "gelu"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key' is not supported"),
        ({"is_decoder": True}, "is_decoder is True"),
        ({"add_cross_attention": True}, "add_cross_attention is True"),
        ({"hidden_act": "gelu_10x"}, "hidden_act 'gelu_10x' is not supported"),
        ({"hidden_size": 100, "num_attention_heads": 12}, "not a multiple of num_attention_heads"),
        ({"model_type": "roberta"}, "model_type is 'roberta'"),
        ({"hidden_size": "768"}, "'hidden_size' must be an integer"),
        ({"num_hidden_layers": 2.0}, "'num_hidden_layers' must be an integer"),
        ({"vocab_size": True}, "'vocab_size' must be an integer"),
        ({"num_hidden_layers": 0}, "'num_hidden_layers' must be at least 1"),
        ({"layer_norm_eps": -1.0}, "'layer_norm_eps' must be positive"),
        ({"layer_norm_eps": "1e-12"}, "'layer_norm_eps' must be a number"),
    ],
)
def test_unsupported_or_malformed_configs_are_refused_naming_the_field(change, message, tmp_path):
    values = json.loads((minilm_dir() / "config.json").read_text()) | change
    (tmp_path / "config.json").write_text(json.dumps(values))
    with pytest.raises(ConfigError, match=message) as error:
        BertConfig.from_json_file(tmp_path / "config.json")
    assert str(tmp_path / "config.json") in str(error.value)  # the message names the file


def test_invalid_json_names_the_file_and_position(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 768,,}')
    with pytest.raises(ConfigError, match=r"config.json: invalid JSON at line 1 column 21"):
        BertConfig.from_json_file(tmp_path / "config.json")


def test_missing_config_file_says_what_is_needed(tmp_path):
    with pytest.raises(ConfigError, match="no such file; a model directory needs the config.json"):
        BertConfig.from_json_file(tmp_path / "config.json")


def test_a_config_that_is_not_an_object_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object, found an array"):
        BertConfig.from_json_file(tmp_path / "config.json")


def test_config_accepts_exactly_the_activations_functional_computes():
    from minibert.config import HIDDEN_ACTS
    from minibert.functional import ACT2FN

    assert HIDDEN_ACTS == set(ACT2FN)
