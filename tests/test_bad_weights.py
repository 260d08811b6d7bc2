"""Bad weights: missing, corrupt or lying safetensors files (written byte by byte: an 8-byte little-endian header
length, a JSON header, the data), misshapen or non-finite tensors, a hostile pickle, a broken sharded index. Each is a
CheckpointError naming the file and the tensor.

tests/test_torch_pickle.py and tests/test_checkpoint_layouts.py test the pickle reader and sharded loading in depth;
the cases here check that each fails as clearly from the top.

Broken checkpoints are made in tmp_path from the tiny checkpoints in weights/ (weights/make_reference.py made those),
with tests/support/bad_checkpoints.py.
"""

import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from support.bad_checkpoints import TINY, copy_checkpoint, edit_config, edit_tensors, write_safetensors

import minibert
from minibert import CheckpointError

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
    from minibert.formats.safetensors import read_safetensors

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
    """zipfile.is_zipfile raises BadZipFile here instead of answering (found by tests/support/fuzz_robustness.py)."""
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
