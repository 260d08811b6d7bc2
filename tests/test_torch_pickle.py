"""load_torch_bin against files written by the real torch.save, and against broken or hostile files.

Files are made with torch in each test's tmp dir; the tests skip where torch is not installed.
"""

import collections
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from minibert.errors import CheckpointError
from minibert.formats.torch_pickle import load_torch_bin

torch = pytest.importorskip("torch")

# The tiny BERT used across minibert's tests.
TINY_BERT = {
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
}


def _as_numpy(tensor) -> np.ndarray:
    """torch's own values; bfloat16 widened by torch itself, which is what load_torch_bin promises."""
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.contiguous().numpy()


def _assert_same_tensors(loaded: dict, state_dict: dict) -> None:
    assert list(loaded) == list(state_dict)
    for name, tensor in state_dict.items():
        expected = _as_numpy(tensor)
        got = loaded[name]
        assert got.dtype == expected.dtype, name
        assert got.shape == expected.shape, name
        assert got.flags.c_contiguous, name
        # Bit-exact, so -0.0 vs 0.0 or a changed NaN would show.
        assert got.tobytes() == expected.tobytes(), name


def _tiny_bert_state_dict(dtype):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = transformers.BertModel(transformers.BertConfig(**TINY_BERT)).eval()
    return model.to(dtype).state_dict()


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_tiny_bert_state_dict_reads_exactly_as_torch_saved_it(tmp_path, dtype):
    state_dict = _tiny_bert_state_dict(getattr(torch, dtype))
    path = tmp_path / "pytorch_model.bin"
    torch.save(state_dict, path)
    loaded = load_torch_bin(path)
    _assert_same_tensors(loaded, state_dict)
    expected_dtype = np.float32 if dtype == "bfloat16" else np.dtype(dtype)
    assert {array.dtype for array in loaded.values()} <= {np.dtype(expected_dtype), np.dtype(np.int64)}


def test_views_offsets_shared_storage_and_odd_dtypes_read_exactly(tmp_path):
    torch.manual_seed(1)
    base = torch.randn(6, 5)
    state_dict = collections.OrderedDict(
        base=base,
        transposed=base.t(),  # non-contiguous, same storage as base
        row_slice=base[2:4],  # storage offset 10
        column=base[:, 3],  # offset 3, stride 5
        every_other=base[::2, 1::2],  # offset and two strides
        scalar=torch.tensor(2.5),  # 0-d
        empty=torch.zeros(0, 3),
        expanded=torch.arange(3.0).expand(4, 3),  # stride 0
        int64=torch.tensor([-(2**62), 0, 2**62 + 1]),
        int32=torch.tensor([[-7, 8]], dtype=torch.int32),
        int8=torch.tensor([-128, 127], dtype=torch.int8),
        uint8=torch.tensor([0, 255], dtype=torch.uint8),
        bool=torch.tensor([True, False, True]),
        float16=torch.tensor([65504.0, -0.0, 6e-8, float("inf")], dtype=torch.float16),
        bfloat16=torch.tensor([1.0, -3.0e38, 1e-40, float("nan")], dtype=torch.bfloat16),
        bfloat16_view=torch.randn(4, 4).to(torch.bfloat16)[1:, ::2],
        parameter=torch.nn.Parameter(torch.randn(3, 2)),
    )
    path = tmp_path / "views.bin"
    torch.save(state_dict, path)
    loaded = load_torch_bin(path)
    _assert_same_tensors(loaded, state_dict)


def test_tensors_viewing_one_whole_storage_share_memory_like_tied_weights(tmp_path):
    weight = torch.randn(4, 3)
    path = tmp_path / "tied.bin"
    torch.save({"embeddings.weight": weight, "decoder.weight": weight, "slice": weight[1:]}, path)
    loaded = load_torch_bin(path)
    assert np.shares_memory(loaded["embeddings.weight"], loaded["decoder.weight"])
    assert not np.shares_memory(loaded["slice"], loaded["embeddings.weight"])
    assert loaded["embeddings.weight"].flags.writeable


def test_a_replaced_tensor_frees_its_storage_without_waiting_for_the_cyclic_gc(tmp_path):
    """checkpoint._as_loaded replaces the encoder's weights by column-major copies one at a time; each original's
    bytes must go when it is replaced (not at the next cyclic GC), or loading holds the weights twice."""
    import gc
    import weakref

    path = tmp_path / "pytorch_model.bin"
    torch.save({"a.weight": torch.randn(8, 5), "b.weight": torch.randn(8, 5)}, path)
    gc.disable()
    try:
        loaded = load_torch_bin(path)
        storage = weakref.ref(loaded["a.weight"].base)  # the storage's bytes, which the tensor views whole
        loaded["a.weight"] = np.asfortranarray(loaded["a.weight"])
        assert storage() is None
    finally:
        gc.enable()


def test_any_archive_folder_name_is_accepted(tmp_path):
    # torch names the zip's top folder after the file it saved to; files get renamed afterwards.
    saved = tmp_path / "renamed_later.bin"
    torch.save({"x": torch.ones(2)}, saved)
    assert zipfile.ZipFile(saved).namelist()[0].startswith("renamed_later/")
    moved = tmp_path / "pytorch_model.bin"
    saved.rename(moved)
    np.testing.assert_array_equal(load_torch_bin(moved)["x"], np.ones(2, np.float32))


# Hostile and broken files.


class _RunsCommand:
    """Unpickling this calls `command(argument)`, as a hostile checkpoint would."""

    def __init__(self, command, argument):
        self.command, self.argument = command, argument

    def __reduce__(self):
        return self.command, (self.argument,)


def _zip_with_pickle(path, payload: bytes, root: str = "archive") -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{root}/data.pkl", payload)
        archive.writestr(f"{root}/byteorder", "little")
        archive.writestr(f"{root}/version", "3\n")


@pytest.mark.parametrize(
    "command, source",
    [
        (os.system, "touch {marker}"),
        (eval, "open({marker!r}, 'w').close()"),
        (exec, "open({marker!r}, 'w').close()"),
    ],
)
def test_pickle_that_runs_code_is_refused_and_does_not_run(tmp_path, command, source):
    marker = tmp_path / "pwned"
    path = tmp_path / "pytorch_model.bin"
    hostile = {"embeddings.word_embeddings.weight": _RunsCommand(command, source.format(marker=str(marker)))}
    # Protocol 4 spells globals as Python 3 does; protocol 2 (torch's) would say '__builtin__.eval'.
    _zip_with_pickle(path, pickle.dumps(collections.OrderedDict(hostile), protocol=4))
    refused = f"{command.__module__}.{command.__name__}"  # 'posix.system' (os.system on Linux), 'builtins.eval'
    with pytest.raises(CheckpointError, match=f"refuses to load global '{refused}'") as error:
        load_torch_bin(path)
    assert str(path) in str(error.value)
    assert not marker.exists()


def test_torch_global_outside_the_allow_list_is_refused(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    payload = b"\x80\x02ctorch.serialization\nload\nq\x00."  # GLOBAL torch.serialization.load
    _zip_with_pickle(path, payload)
    with pytest.raises(CheckpointError, match="refuses to load global 'torch.serialization.load'"):
        load_torch_bin(path)


def _saved(tmp_path, state_dict=None) -> bytes:
    path = tmp_path / "good.bin"
    torch.save(state_dict or {"w": torch.arange(12.0).reshape(3, 4), "b": torch.ones(3)}, path)
    return path.read_bytes()


def test_truncated_file_names_the_file(tmp_path):
    data = _saved(tmp_path)
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="pytorch_model.bin: not a zip archive.*truncated"):
        load_torch_bin(path)


def _rewrite_zip(source: bytes, path, edit) -> None:
    """Copy a zip record by record; `edit(name, data)` returns new data, or None to drop the record."""
    with zipfile.ZipFile(io.BytesIO(source)) as old, zipfile.ZipFile(path, "w") as new:
        for name in old.namelist():
            data = edit(name, old.read(name))
            if data is not None:
                new.writestr(name, data)


def test_missing_data_record_names_the_file_and_record(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    _rewrite_zip(_saved(tmp_path), path, lambda name, data: None if name.endswith("/data/0") else data)
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin: .*storage '0'.*record 'good/data/0' is missing"):
        load_torch_bin(path)


def test_data_record_of_the_wrong_size_is_refused(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    _rewrite_zip(_saved(tmp_path), path, lambda name, data: data[:-4] if name.endswith("/data/0") else data)
    with pytest.raises(CheckpointError, match=r"record 'good/data/0' has 44 bytes; .*12 FloatStorage elements"):
        load_torch_bin(path)


def test_flipped_byte_in_tensor_data_fails_the_zip_crc(tmp_path):
    data = bytearray(_saved(tmp_path))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("good/data/0")
    # The record's bytes follow its 30-byte local header, file name and extra field.
    header = data[info.header_offset : info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    data[start + 5] ^= 0xFF
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin: .*(CRC|corrupt)"):
        load_torch_bin(path)


def test_corrupt_pickle_names_the_file(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    _rewrite_zip(_saved(tmp_path), path, lambda name, data: data[:40] if name.endswith("data.pkl") else data)
    with pytest.raises(CheckpointError, match="pytorch_model.bin: cannot read it as a torch.save archive"):
        load_torch_bin(path)


def test_legacy_non_zip_format_asks_to_resave(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin: .*legacy.*re-save it with torch>=1.6"):
        load_torch_bin(path)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated, its files are still around
def test_torchscript_archive_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_torch_bin(path)


def test_training_checkpoint_with_nested_dicts_is_refused(tmp_path):
    path = tmp_path / "checkpoint.bin"
    torch.save({"model": {"w": torch.ones(2)}, "step": 3}, path)
    with pytest.raises(CheckpointError, match=r"checkpoint.bin: entry 'model' is a dict"):
        load_torch_bin(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="nowhere.bin: no such file"):
        load_torch_bin(tmp_path / "nowhere.bin")


class _View:
    """Pickles as torch's own tensor rebuild call with any arguments, valid or not."""

    def __init__(self, numel, offset, size, stride):
        self.numel, self.offset, self.size, self.stride = numel, offset, size, stride

    def __reduce__(self):
        storage = _StorageId(self.numel)
        return torch._utils._rebuild_tensor_v2, (storage, self.offset, self.size, self.stride, False, {})


class _StorageId:
    def __init__(self, numel):
        self.numel = numel


class _TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _StorageId):
            return ("storage", torch.FloatStorage, "0", "cpu", obj.numel)
        return None


def _crafted(path, view: _View) -> None:
    payload = io.BytesIO()
    _TorchLikePickler(payload, protocol=2).dump({"t": view})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload.getvalue())
        archive.writestr("archive/data/0", np.arange(view.numel, dtype=np.float32).tobytes())
        archive.writestr("archive/version", "3\n")


def test_crafted_view_is_read_like_torch_reads_it(tmp_path):
    # The same pickler, given valid arguments, makes a file torch itself agrees with.
    path = tmp_path / "crafted.bin"
    _crafted(path, _View(numel=10, offset=1, size=(3, 2), stride=(3, 1)))
    expected = torch.load(path, weights_only=True)["t"].numpy()
    np.testing.assert_array_equal(load_torch_bin(path)["t"], expected)


@pytest.mark.parametrize(
    "view, message",
    [
        (
            _View(numel=10, offset=5, size=(3, 2), stride=(3, 1)),
            "reads element 12 of storage '0', which has 10",
        ),
        (_View(numel=10, offset=0, size=(11,), stride=(1,)), "reads element 10 of storage '0', which has 10"),
        (_View(numel=10, offset=-1, size=(2,), stride=(1,)), "expected non-negative integers"),
        (_View(numel=10, offset=0, size=(2, 2), stride=(1, -1)), "expected non-negative integers"),
        (_View(numel=10, offset=0, size=(2, 2), stride=(1,)), "one stride per dimension"),
    ],
)
def test_view_outside_its_storage_is_refused_not_read_from_stray_memory(tmp_path, view, message):
    path = tmp_path / "crafted.bin"
    _crafted(path, view)
    with pytest.raises(CheckpointError, match=f"crafted.bin: .*{message}"):
        load_torch_bin(path)
