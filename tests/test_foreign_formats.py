"""pytorch_model.bin and Google's TF checkpoints through from_pretrained, against transformers on the same weights.

The readers themselves (minibert/formats/torch_pickle.py, minibert/formats/tf_checkpoint.py) have their own tests;
these check the wiring: the directory is read with the right reader, names and dtypes arrive as BertModel needs
them, and the outputs are transformers'.
"""

import collections
import copy
import logging
import os
import pickle
import shutil
import zipfile

import numpy as np
import pytest
from support.helpers import WEIGHTS
from test_checkpoint_layouts import TINY, assert_matches_transformers

import minibert
from minibert.checkpoint import read_tensors
from minibert.errors import CheckpointError

TF_TINY = WEIGHTS / "tf_tiny"  # written with TensorFlow by weights/make_tf_fixture.py


@pytest.mark.parametrize(
    "task, half",
    [("BertModel", None), ("BertForSequenceClassification", None), ("BertModel", "bfloat16"), ("BertModel", "float16")],
)
def test_pytorch_model_bin_loads_without_torch_and_matches_transformers(task, half, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(3)
    model = getattr(transformers, task)(transformers.BertConfig(**TINY, attn_implementation="eager")).eval()
    if half:
        model = model.to(getattr(torch, half)).to(torch.float32)  # weights rounded to half, kept in float32
    model.config.save_pretrained(tmp_path)
    state_dict = model.state_dict()
    if half:
        state_dict = {name: tensor.to(getattr(torch, half)) for name, tensor in state_dict.items()}
    torch.save(state_dict, tmp_path / "pytorch_model.bin")
    tensors, source = read_tensors(tmp_path)
    assert source.endswith("pytorch_model.bin")
    assert {tensor.dtype for tensor in tensors.values()} == {np.dtype("float16" if half == "float16" else "float32")}
    bert = model.bert if task != "BertModel" else model
    assert_matches_transformers(tmp_path, bert, copy.deepcopy(bert).to(torch.float64))


def test_safetensors_is_preferred_to_pytorch_model_bin_in_one_directory(tmp_path):
    shutil.copytree(WEIGHTS / "tiny-gelu", tmp_path, dirs_exist_ok=True)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    assert read_tensors(tmp_path)[1].endswith("model.safetensors")
    assert minibert.BertModel.from_pretrained(tmp_path).config.hidden_size == 32


class _RunsCommand:
    def __reduce__(self):
        return os.system, ("echo pwned > /dev/null",)


def test_pytorch_model_bin_that_would_run_code_is_refused_by_from_pretrained(tmp_path):
    shutil.copy(WEIGHTS / "tiny-gelu" / "config.json", tmp_path)
    with zipfile.ZipFile(tmp_path / "pytorch_model.bin", "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(collections.OrderedDict(w=_RunsCommand()), protocol=4))
        archive.writestr("archive/byteorder", "little")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin.*refuses to load global 'posix\.system'"):
        minibert.BertModel.from_pretrained(tmp_path)


def google_name(name: str) -> tuple[str, bool]:
    """transformers' parameter name -> Google BERT's variable name, and whether TF stores it transposed.

    Written out independently of minibert/formats/tf_checkpoint.py, after transformers' former load_tf_weights_in_bert:
    '.' is '/', `layer.N` is `layer_N`, a Linear's weight is its `kernel` ([in, out]), LayerNorm's are gamma/beta.
    """
    parts = name.replace("encoder.layer.", "encoder.layer_").split(".")
    leaf = parts.pop()
    if "LayerNorm" in parts:
        leaf = {"weight": "gamma", "bias": "beta"}[leaf]
    elif parts[-1].endswith("_embeddings"):
        leaf = None
    elif leaf == "weight":
        leaf = "kernel"
    variable = "/".join(["bert", *parts] + ([leaf] if leaf else []))
    return variable, leaf == "kernel"


def test_google_tf_checkpoint_loads_without_tensorflow_and_matches_transformers(caplog):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig.from_json_file(TF_TINY / "bert_config.json")
    config._attn_implementation = "eager"
    bert = transformers.BertModel(config).eval()
    # The weights as TensorFlow itself read them when the fixture was made.
    with np.load(TF_TINY / "bert_model_values.npz") as values:
        state_dict = {}
        for name in bert.state_dict():
            variable, transposed = google_name(name)
            state_dict[name] = torch.from_numpy(values[variable].T.copy() if transposed else values[variable])
    bert.load_state_dict(state_dict, strict=True)
    with caplog.at_level(logging.INFO, logger="minibert"):
        assert_matches_transformers(TF_TINY, bert, copy.deepcopy(bert).to(torch.float64))
    assert "optimizer-state tensor(s) left out" in caplog.text
    assert "cls.seq_relationship.weight" in caplog.text  # the pretraining heads: reported, not refused


def test_google_tf_checkpoint_missing_its_data_shard_names_the_file(tmp_path):
    for name in ("bert_config.json", "bert_model.ckpt.index"):
        shutil.copy(TF_TINY / name, tmp_path)
    with pytest.raises(CheckpointError, match=r"bert_model\.ckpt\.data-00000-of-00001"):
        minibert.BertModel.from_pretrained(tmp_path)
