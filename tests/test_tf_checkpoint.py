"""load_tf_checkpoint and tf_to_hf_names against the checkpoints in weights/tf_tiny/.

weights/make_tf_fixture.py wrote them with TensorFlow, and saved TF's own reading of every tensor in
*_values.npz; these tests need neither TensorFlow nor torch (the transformers key check runs where
transformers is installed).
"""

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from minibert.errors import CheckpointError
from minibert.formats.tf_checkpoint import TABLE_MAGIC, load_tf_checkpoint, tf_to_hf_names

TF_TINY = Path(__file__).resolve().parent.parent / "weights" / "tf_tiny"
BERT_PREFIX = TF_TINY / "bert_model.ckpt"
DTYPES_PREFIX = TF_TINY / "dtypes.ckpt"


def _assert_equal_to_tensorflow(loaded: dict, npz_path: Path) -> None:
    with np.load(npz_path) as expected:
        assert sorted(loaded) == sorted(expected.files)
        for name in expected.files:
            assert loaded[name].dtype == expected[name].dtype, name
            assert loaded[name].shape == expected[name].shape, name
            assert loaded[name].tobytes() == expected[name].tobytes(), name  # bit for bit


def test_every_bert_tensor_equals_tensorflows_reading():
    _assert_equal_to_tensorflow(load_tf_checkpoint(BERT_PREFIX), TF_TINY / "bert_model_values.npz")


def test_every_dtype_across_shards_equals_tensorflows_reading_bfloat16_widened():
    loaded = load_tf_checkpoint(DTYPES_PREFIX)
    assert len(list(TF_TINY.glob("dtypes.ckpt.data-*-of-00003"))) == 3
    _assert_equal_to_tensorflow(loaded, TF_TINY / "dtypes_values.npz")
    assert loaded["dtypes/bfloat16"].dtype == np.float32
    assert loaded["dtypes/scalar"].shape == ()


def test_string_tensors_are_skipped_and_logged(caplog):
    caplog.set_level("INFO", logger="minibert.formats.tf_checkpoint")
    assert "dtypes/string" not in load_tf_checkpoint(DTYPES_PREFIX)
    assert "skipping string tensor 'dtypes/string'" in caplog.text


def test_crc32c_of_every_tensor_matches_when_asked():
    _assert_equal_to_tensorflow(load_tf_checkpoint(BERT_PREFIX, verify_crc32c=True), TF_TINY / "bert_model_values.npz")


def test_partitioned_variable_is_refused():
    with pytest.raises(CheckpointError, match=r"sliced.ckpt.index: tensor 'big/.*slices of a partitioned"):
        load_tf_checkpoint(TF_TINY / "sliced.ckpt")


# Name mapping.


def test_kernels_are_transposed_and_output_weights_are_not():
    tf_tensors = load_tf_checkpoint(BERT_PREFIX)
    hf, _ = tf_to_hf_names(tf_tensors)
    query = tf_tensors["bert/encoder/layer_1/attention/self/query/kernel"]
    np.testing.assert_array_equal(hf["encoder.layer.1.attention.self.query.weight"], query.T)
    inner = tf_tensors["bert/encoder/layer_0/intermediate/dense/kernel"]  # [H, I] in TF
    assert hf["encoder.layer.0.intermediate.dense.weight"].shape == (37, 32)  # [I, H] like nn.Linear
    np.testing.assert_array_equal(hf["encoder.layer.0.intermediate.dense.weight"], inner.T)
    assert np.shares_memory(hf["encoder.layer.0.intermediate.dense.weight"], inner)  # a view: to_params lays it out
    np.testing.assert_array_equal(hf["pooler.dense.weight"], tf_tensors["bert/pooler/dense/kernel"].T)
    seq = tf_tensors["cls/seq_relationship/output_weights"]
    assert hf["cls.seq_relationship.weight"] is seq  # already [2, H]
    assert hf["cls.predictions.bias"] is tf_tensors["cls/predictions/output_bias"]
    assert hf["embeddings.LayerNorm.weight"] is tf_tensors["bert/embeddings/LayerNorm/gamma"]
    assert hf["embeddings.LayerNorm.bias"] is tf_tensors["bert/embeddings/LayerNorm/beta"]


def test_optimizer_state_is_skipped_and_reported():
    tf_tensors = load_tf_checkpoint(BERT_PREFIX)
    hf, skipped = tf_to_hf_names(tf_tensors)
    slots = sorted(name for name in tf_tensors if name.endswith(("/adam_m", "/adam_v")))
    assert len(slots) == 2 * len(hf)
    assert skipped == sorted([*slots, "global_step"])
    assert not any("adam" in name or "step" in name for name in hf)


def test_unknown_variable_is_an_error_naming_it():
    with pytest.raises(CheckpointError, match="bert/encoder/layer_0/mystery/kernel"):
        tf_to_hf_names({"bert/encoder/layer_0/mystery/kernel": np.zeros((2, 2), np.float32)})


def test_names_and_shapes_equal_transformers_state_dicts():
    transformers = pytest.importorskip("transformers")
    google_config = json.loads((TF_TINY / "bert_config.json").read_text())
    config = transformers.BertConfig(**google_config)
    hf, _ = tf_to_hf_names(load_tf_checkpoint(BERT_PREFIX))
    shapes = {name: tuple(value.shape) for name, value in hf.items()}

    model = transformers.BertModel(config, add_pooling_layer=True).state_dict()
    expected = {k: tuple(v.shape) for k, v in model.items() if k != "embeddings.position_ids"}
    assert {k: v for k, v in shapes.items() if not k.startswith("cls.")} == expected

    # The heads: BertForPreTraining's cls.*, less the decoder tied to the word embeddings (TF has none).
    pretraining = transformers.BertForPreTraining(config).state_dict()
    expected_cls = {
        k: tuple(v.shape)
        for k, v in pretraining.items()
        if k.startswith("cls.") and not k.startswith("cls.predictions.decoder.")
    }
    assert {k: v for k, v in shapes.items() if k.startswith("cls.")} == expected_cls


# Broken files. Each test corrupts a copy of bert_model.ckpt in tmp_path.


def _copy(tmp_path: Path) -> Path:
    for path in TF_TINY.glob("bert_model.ckpt.*"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / "bert_model.ckpt"


def _edit_index(prefix: Path, edit) -> None:
    index = prefix.with_name(prefix.name + ".index")
    index.write_bytes(edit(bytearray(index.read_bytes())))


def test_missing_index_names_it(tmp_path):
    with pytest.raises(CheckpointError, match=r"nothing.ckpt.index: no such file"):
        load_tf_checkpoint(tmp_path / "nothing.ckpt")


@pytest.mark.parametrize("where", [0, 100, 2000, -60])  # first block, inside blocks, the index block
def test_flipped_byte_in_index_fails_its_checksum(tmp_path, where):
    prefix = _copy(tmp_path)

    def flip(data):
        data[where] ^= 0x40
        return data

    _edit_index(prefix, flip)
    with pytest.raises(CheckpointError, match=r"bert_model.ckpt.index: .*(crc32c|corrupt|truncated)"):
        load_tf_checkpoint(prefix)


@pytest.mark.parametrize("keep", [0, 30, 1000, -1])
def test_truncated_index_names_the_file(tmp_path, keep):
    prefix = _copy(tmp_path)
    _edit_index(prefix, lambda data: data[:keep])
    with pytest.raises(CheckpointError, match=r"bert_model.ckpt.index: .*(truncated|magic)"):
        load_tf_checkpoint(prefix)


def test_bad_magic_number_is_named(tmp_path):
    prefix = _copy(tmp_path)
    _edit_index(prefix, lambda data: data[:-8] + struct.pack("<Q", TABLE_MAGIC ^ 1))
    with pytest.raises(CheckpointError, match=f"footer magic number is {TABLE_MAGIC ^ 1:#018x}, expected 0xdb47"):
        load_tf_checkpoint(prefix)


def test_missing_data_shard_is_named(tmp_path):
    prefix = _copy(tmp_path)
    (tmp_path / "bert_model.ckpt.data-00000-of-00001").unlink()
    with pytest.raises(CheckpointError, match=r"bert_model.ckpt.data-00000-of-00001: data shard missing"):
        load_tf_checkpoint(prefix)


def test_truncated_data_shard_names_shard_and_tensor(tmp_path):
    prefix = _copy(tmp_path)
    shard = tmp_path / "bert_model.ckpt.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"data-00000-of-00001: tensor '.*' lies at .*truncated"):
        load_tf_checkpoint(prefix)


def test_flipped_byte_in_tensor_data_is_caught_by_crc32c_when_asked(tmp_path):
    prefix = _copy(tmp_path)
    shard = tmp_path / "bert_model.ckpt.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[1234] ^= 0x01
    shard.write_bytes(bytes(data))
    load_tf_checkpoint(prefix)  # sizes still match, so without the check the flip goes unseen
    with pytest.raises(CheckpointError, match=r"data-00000-of-00001: tensor '.*' fails its crc32c check"):
        load_tf_checkpoint(prefix, verify_crc32c=True)


def test_compressed_block_is_refused_rather_than_misread(tmp_path):
    from minibert.formats.tf_checkpoint import FOOTER_SIZE, _masked_crc32c

    prefix = _copy(tmp_path)

    def mark_first_block_snappy(data):
        # The first data block starts at 0 and ends where the first trailer with a matching crc begins.
        for end in range(8, len(data) - FOOTER_SIZE):
            stored = struct.unpack("<I", data[end + 1 : end + 5])[0]
            if data[end] == 0 and _masked_crc32c(bytes(data[: end + 1])) == stored:
                data[end] = 1  # snappy
                data[end + 1 : end + 5] = struct.pack("<I", _masked_crc32c(bytes(data[: end + 1])))
                return data
        raise AssertionError("no block trailer found")

    _edit_index(prefix, mark_first_block_snappy)
    with pytest.raises(CheckpointError, match=r"bert_model.ckpt.index: block at 0 is compressed \(type 1\)"):
        load_tf_checkpoint(prefix)
