"""Loading is strict: the tensors BertModel needs are computed from the config, and every difference is named."""

import logging
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from support.helpers import WEIGHTS

from minibert import BertModel, CheckpointError, InputError
from minibert.checkpoint import expected_shapes, rename, unflatten


@pytest.fixture
def tiny(tmp_path):
    """A writable copy of the tiny-gelu checkpoint, and its tensors."""
    directory = tmp_path / "tiny"
    shutil.copytree(WEIGHTS / "tiny-gelu", directory)
    return directory, load_file(directory / "model.safetensors")


def resave(directory, tensors):
    save_file(tensors, directory / "model.safetensors")


def test_expected_names_are_exactly_the_files_names():
    model = BertModel.from_pretrained(WEIGHTS / "tiny-gelu")
    names = set(load_file(WEIGHTS / "tiny-gelu" / "model.safetensors"))
    assert set(expected_shapes(model.config)) == names


def test_params_nest_like_the_checkpoint_names(tiny):
    directory, tensors = tiny
    model = BertModel.from_pretrained(directory)
    name = "encoder.layer.1.attention.self.query.weight"
    np.testing.assert_array_equal(
        model.params["encoder"]["layer"][1]["attention"]["self"]["query"]["weight"], tensors[name]
    )
    assert len(model.params["encoder"]["layer"]) == 2


def test_a_missing_tensor_is_named(tiny):
    directory, tensors = tiny
    del tensors["encoder.layer.1.output.dense.bias"]
    resave(directory, tensors)
    with pytest.raises(CheckpointError, match=r"missing 1 tensor\(s\): encoder.layer.1.output.dense.bias"):
        BertModel.from_pretrained(directory)


def test_an_unexpected_tensor_is_named(tiny):
    directory, tensors = tiny
    tensors["encoder.layer.2.output.dense.bias"] = np.zeros(32, np.float32)  # a third layer the config lacks
    resave(directory, tensors)
    with pytest.raises(CheckpointError, match=r"unexpected 1 tensor\(s\): encoder.layer.2.output.dense.bias"):
        BertModel.from_pretrained(directory)


def test_a_misshapen_tensor_names_both_shapes(tiny):
    directory, tensors = tiny
    tensors["encoder.layer.0.intermediate.dense.weight"] = np.zeros((36, 32), np.float32)
    resave(directory, tensors)
    with pytest.raises(
        CheckpointError,
        match=r"'encoder.layer.0.intermediate.dense.weight' has shape \(36, 32\); "
        r"config.json says \(37, 32\)",
    ):
        BertModel.from_pretrained(directory)


def test_integer_weights_are_refused(tiny):
    directory, tensors = tiny
    tensors["pooler.dense.bias"] = np.zeros(32, np.int32)
    resave(directory, tensors)
    with pytest.raises(CheckpointError, match="'pooler.dense.bias' has dtype int32"):
        BertModel.from_pretrained(directory)


def test_nan_weights_are_found_at_load_unless_the_scan_is_skipped(tiny):
    directory, tensors = tiny
    tensors["embeddings.LayerNorm.weight"][3] = np.nan
    resave(directory, tensors)
    with pytest.raises(CheckpointError, match=r"'embeddings.LayerNorm.weight' holds 1 NaN or infinite"):
        BertModel.from_pretrained(directory)
    from minibert.checkpoint import load_pretrained

    _, params = load_pretrained(directory, check_finite=False)
    assert np.isnan(params["embeddings"]["LayerNorm"]["weight"][3])


def test_prefixed_and_gamma_beta_names_are_mapped(tiny):
    directory, tensors = tiny
    renamed = {}
    for name, value in tensors.items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        renamed["bert." + name] = value
    renamed["cls.predictions.bias"] = np.zeros(99, np.float32)  # a head the encoder does not use
    resave(directory, renamed)
    reference = BertModel.from_pretrained(WEIGHTS / "tiny-gelu")([[1, 2, 3]]).last_hidden_state
    np.testing.assert_array_equal(BertModel.from_pretrained(directory)([[1, 2, 3]]).last_hidden_state, reference)
    assert rename("bert.embeddings.LayerNorm.gamma") == "embeddings.LayerNorm.weight"


def test_unused_head_tensors_are_reported_not_refused(tiny, caplog):
    directory, tensors = tiny
    tensors["cls.seq_relationship.weight"] = np.zeros((2, 32), np.float32)
    resave(directory, tensors)
    with caplog.at_level(logging.WARNING, logger="minibert"):
        BertModel.from_pretrained(directory)
    assert "cls.seq_relationship.weight" in caplog.text


def test_float64_loading_converts_every_weight(tiny):
    directory, tensors = tiny
    model = BertModel.from_pretrained(directory, dtype=np.float64)
    w = model.params["encoder"]["layer"][0]["output"]["dense"]["weight"]
    assert w.dtype == np.float64
    np.testing.assert_array_equal(w, tensors["encoder.layer.0.output.dense.weight"].astype(np.float64))


def test_unsupported_dtypes_are_refused():
    with pytest.raises(InputError, match="dtype float16 is not supported; use numpy.float32 or numpy.float64"):
        BertModel.from_pretrained(WEIGHTS / "tiny-gelu", dtype=np.float16)


def test_a_directory_without_weights_lists_what_it_holds(tiny):
    directory, _ = tiny
    (directory / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"no weights to load; .*the directory holds \[.config.json."):
        BertModel.from_pretrained(directory)


def test_a_corrupt_weights_file_names_the_file(tiny):
    directory, _ = tiny
    (directory / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        BertModel.from_pretrained(directory)


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such directory"):
        BertModel.from_pretrained(tmp_path / "nowhere")


def test_unflatten_turns_numbered_parts_into_lists():
    nested = unflatten({"a.0.b": 1, "a.1.b": 2, "c": 3})
    assert nested == {"a": [{"b": 1}, {"b": 2}], "c": 3}
