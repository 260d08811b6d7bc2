"""Checkpoint layouts: task-model prefixes, old LayerNorm names, head tensors, sharded and half-precision safetensors.

The files are written in a temporary directory, by transformers where it is installed (the comparisons then run
transformers' BertModel on the same files), else with the safetensors library from the committed tiny checkpoints.
"""

import copy
import json
import logging

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from support.helpers import F32_TOL, F64_TOL, WEIGHTS, first_divergence, minilm_dir, named_outputs
from threadpoolctl import ThreadpoolController

import minibert
from minibert import checkpoint, parallel
from minibert.checkpoint import cpu_vendor, load_order, load_pretrained, read_tensors
from minibert.errors import CheckpointError
from minibert.formats.safetensors import read_safetensors
from minibert.parallel import numpy_blas
from minibert.tuning import ROW_MAJOR_WEIGHTS_VENDORS, SMALL_ROWS

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
)


def batch(vocab_size: int = 99, seed: int = 0) -> dict[str, np.ndarray]:
    """Three rows of random ids, two of them ending in padding, the third with a second segment."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(0, vocab_size, size=(3, 9))
    attention_mask = np.ones((3, 9), dtype=np.int64)
    attention_mask[1, 6:] = 0
    attention_mask[2, 8:] = 0
    token_type_ids = np.zeros((3, 9), dtype=np.int64)
    token_type_ids[2, 4:] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def transformers_outputs(bert, inputs) -> dict[str, np.ndarray]:
    """transformers' BertModel `bert` on `inputs`, as {name: array} in forward order."""
    import torch

    with torch.no_grad():
        out = bert(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_hidden_states=True)
    arrays = {f"hidden_states.{i}": h.numpy() for i, h in enumerate(out.hidden_states)}
    arrays["last_hidden_state"] = out.last_hidden_state.numpy()
    if out.pooler_output is not None:
        arrays["pooler_output"] = out.pooler_output.numpy()
    return arrays


def assert_matches_transformers(directory, bert32, bert64=None):
    """minibert on `directory` against transformers' BertModel(s): float32 on tokens, float64 everywhere."""
    inputs = batch()
    ours = minibert.BertModel.from_pretrained(directory, dtype=np.float32)(**inputs, output_hidden_states=True)
    diverged = first_divergence(
        named_outputs(ours), transformers_outputs(bert32, inputs), F32_TOL, inputs["attention_mask"]
    )
    assert diverged is None, f"float32: first divergence at {diverged}"
    if bert64 is not None:
        ours = minibert.BertModel.from_pretrained(directory, dtype=np.float64)(**inputs, output_hidden_states=True)
        diverged = first_divergence(named_outputs(ours), transformers_outputs(bert64, inputs), F64_TOL)
        assert diverged is None, f"float64: first divergence at {diverged}"


@pytest.mark.parametrize("task", ["BertForMaskedLM", "BertForSequenceClassification", "BertForPreTraining"])
def test_task_model_checkpoint_loads_its_bert_encoder_and_matches_transformers(task, tmp_path, caplog):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(**TINY, attn_implementation="eager")
    model = getattr(transformers, task)(config).eval()
    model.save_pretrained(tmp_path)
    with caplog.at_level(logging.INFO, logger="minibert"):
        loaded = minibert.BertModel.from_pretrained(tmp_path)
    # The heads are reported by name, not refused.
    head = {
        "BertForMaskedLM": "cls.predictions.transform.dense.weight",
        "BertForSequenceClassification": "classifier.weight",
        "BertForPreTraining": "cls.seq_relationship.weight",
    }[task]
    assert head in caplog.text and "not used by BertModel" in caplog.text
    # BertForMaskedLM is built without a pooler, so its checkpoint has none: pooler_output is None, as there.
    assert (loaded.params.get("pooler") is None) == (task == "BertForMaskedLM")
    assert_matches_transformers(tmp_path, model.bert, copy.deepcopy(model.bert).to(torch.float64))


def test_old_gamma_beta_layernorm_names_load_as_weight_and_bias(tmp_path):
    tensors = load_file(WEIGHTS / "tiny-gelu" / "model.safetensors")
    old = {}
    for name, tensor in tensors.items():
        if ".LayerNorm." in name:
            name = name.replace(".weight", ".gamma").replace(".bias", ".beta")
        old["bert." + name] = tensor
    assert "bert.encoder.layer.1.output.LayerNorm.gamma" in old
    save_file(old, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((WEIGHTS / "tiny-gelu" / "config.json").read_text())
    ours = minibert.BertModel.from_pretrained(tmp_path)
    reference = minibert.BertModel.from_pretrained(WEIGHTS / "tiny-gelu")
    np.testing.assert_array_equal(
        ours.params["encoder"]["layer"][1]["output"]["LayerNorm"]["weight"],
        tensors["encoder.layer.1.output.LayerNorm.weight"],
    )
    inputs = batch()
    np.testing.assert_array_equal(ours(**inputs).last_hidden_state, reference(**inputs).last_hidden_state)


def test_head_tensors_are_logged_and_unknown_tensors_refused(tmp_path, caplog):
    tensors = load_file(WEIGHTS / "tiny-gelu" / "model.safetensors")
    (tmp_path / "config.json").write_text((WEIGHTS / "tiny-gelu" / "config.json").read_text())
    save_file({**tensors, "qa_outputs.weight": np.zeros((2, 32), np.float32)}, tmp_path / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="minibert"):
        minibert.BertModel.from_pretrained(tmp_path)
    assert "qa_outputs.weight" in caplog.text
    save_file(
        {**tensors, "encoder.layer.2.output.dense.weight": np.zeros((32, 37), np.float32)},
        tmp_path / "model.safetensors",
    )
    with pytest.raises(CheckpointError, match=r"unexpected 1 tensor\(s\): encoder\.layer\.2\.output\.dense\.weight"):
        minibert.BertModel.from_pretrained(tmp_path)


# Sharded safetensors.


def shard_tiny_gelu(directory, shards: int = 3) -> dict[str, str]:
    """Split tiny-gelu into `shards` files plus model.safetensors.index.json, as save_pretrained lays them out."""
    tensors = load_file(WEIGHTS / "tiny-gelu" / "model.safetensors")
    names = sorted(tensors)
    weight_map = {}
    for i in range(shards):
        shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {name: tensors[name] for name in names[i::shards]}
        save_file(part, directory / shard)
        weight_map.update(dict.fromkeys(part, shard))
    write_index(directory, weight_map)
    (directory / "config.json").write_text((WEIGHTS / "tiny-gelu" / "config.json").read_text())
    return weight_map


def write_index(directory, weight_map):
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))


def test_sharded_checkpoint_loads_the_same_as_one_file(tmp_path):
    shard_tiny_gelu(tmp_path)
    inputs = batch()
    np.testing.assert_array_equal(
        minibert.BertModel.from_pretrained(tmp_path)(**inputs).pooler_output,
        minibert.BertModel.from_pretrained(WEIGHTS / "tiny-gelu")(**inputs).pooler_output,
    )


def test_sharded_checkpoint_missing_a_shard_names_the_shard_and_a_tensor(tmp_path):
    weight_map = shard_tiny_gelu(tmp_path)
    (tmp_path / "model-00002-of-00003.safetensors").unlink()
    example = next(name for name, shard in weight_map.items() if shard == "model-00002-of-00003.safetensors")
    with pytest.raises(CheckpointError, match=rf"shard\(s\) missing .*model-00002-of-00003\.safetensors .*{example}"):
        minibert.BertModel.from_pretrained(tmp_path)


def test_sharded_checkpoint_with_a_tensor_not_where_the_index_says_names_it(tmp_path):
    weight_map = shard_tiny_gelu(tmp_path)
    name = "encoder.layer.0.attention.self.query.weight"
    wrong = next(shard for shard in sorted(set(weight_map.values())) if shard != weight_map[name])
    write_index(tmp_path, {**weight_map, name: wrong})
    right = weight_map[name]
    with pytest.raises(CheckpointError, match=rf"1 tensor\(s\): '{name}': the index puts it in {wrong}, but {right} "):
        minibert.BertModel.from_pretrained(tmp_path)
    del weight_map[name]
    write_index(tmp_path, weight_map)
    with pytest.raises(CheckpointError, match=rf"1 tensor\(s\): '{name}' is in {right} but not in the index"):
        minibert.BertModel.from_pretrained(tmp_path)
    write_index(tmp_path, {**weight_map, name: right, "pooler.dense.extra": right})
    with pytest.raises(CheckpointError, match=rf"'pooler.dense.extra': the index puts it in {right}, which does not"):
        minibert.BertModel.from_pretrained(tmp_path)


def test_sharded_index_naming_a_file_outside_the_directory_is_refused(tmp_path):
    weight_map = shard_tiny_gelu(tmp_path)
    write_index(tmp_path, {**weight_map, "pooler.dense.bias": "../elsewhere.safetensors"})
    with pytest.raises(CheckpointError, match=r"'\.\./elsewhere\.safetensors', which is not a plain file name"):
        minibert.BertModel.from_pretrained(tmp_path)


def test_sharded_checkpoint_saved_by_transformers_matches_transformers(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(1)
    model = transformers.BertModel(transformers.BertConfig(**TINY, attn_implementation="eager")).eval()
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    assert len(list(tmp_path.glob("model-*-of-*.safetensors"))) > 1
    assert not (tmp_path / "model.safetensors").exists()
    assert_matches_transformers(tmp_path, model, copy.deepcopy(model).to(torch.float64))


# Half precision.


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_checkpoint_upcasts_exactly_as_transformers_does(half, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(2)
    config = transformers.BertConfig(**TINY, attn_implementation="eager")
    transformers.BertModel(config).to(getattr(torch, half)).save_pretrained(tmp_path)
    from safetensors.torch import load_file as load_torch

    assert {t.dtype for t in load_torch(tmp_path / "model.safetensors").values()} == {getattr(torch, half)}
    bert32 = transformers.BertModel.from_pretrained(tmp_path, dtype=torch.float32, attn_implementation="eager")
    bert64 = transformers.BertModel.from_pretrained(tmp_path, dtype=torch.float64, attn_implementation="eager")
    # The weights themselves, widened, are bit for bit transformers' ...
    tensors, _ = read_tensors(tmp_path, np.float32)
    for name, tensor in bert32.state_dict().items():
        np.testing.assert_array_equal(tensors[name], tensor.numpy(), err_msg=name)
    # ... and so are the outputs, to the usual tolerances.
    assert_matches_transformers(tmp_path, bert32.eval(), bert64.eval())


def test_bfloat16_bits_widen_to_the_float32_with_those_upper_bits(tmp_path):
    # 1.0, -2.0, 0.15625 and the largest bfloat16 are exact in bfloat16: their float32 bits end in 16 zeros.
    values = np.array([1.0, -2.0, 0.15625, 3.3895313892515355e38], dtype=np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    header = json.dumps({"x": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}).encode()
    (tmp_path / "bf16.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bits.tobytes())
    np.testing.assert_array_equal(read_safetensors(tmp_path / "bf16.safetensors")["x"], values)
    assert read_safetensors(tmp_path / "bf16.safetensors", np.float64)["x"].dtype == np.float64


@pytest.mark.parametrize("stored", ["F32", "F16", "BF16"])
@pytest.mark.parametrize("dtype", [None, np.float32, np.float64])
def test_column_major_read_equals_the_row_major_one_in_every_stored_dtype(stored, dtype, tmp_path, monkeypatch):
    """read_safetensors(order=load_order) writes the encoder's weights column-major from a small buffer of rows (37
    rows: two buffers of 16 and a short one), as on a CPU not of ROW_MAJOR_WEIGHTS_VENDORS; the values are those of
    the plain read, bit for bit."""
    monkeypatch.setattr(checkpoint, "cpu_vendor", lambda: "AuthenticAMD")
    rng = np.random.default_rng(7)
    shapes = {
        "bert.encoder.layer.0.intermediate.dense.weight": (37, 32),  # a task model's prefix
        "encoder.layer.1.output.dense.weight": (32, 37),
        "encoder.layer.1.output.dense.bias": (32,),
        "pooler.dense.weight": (32, 32),
    }
    header, data = {}, b""
    for name, shape in shapes.items():
        values = rng.normal(size=shape).astype(np.float32)
        raw = (
            (values.view(np.uint32) >> 16).astype("<u2")
            if stored == "BF16"
            else values.astype({"F32": "<f4", "F16": "<f2"}[stored])
        )
        header[name] = {"dtype": stored, "shape": list(shape), "data_offsets": [len(data), len(data) + raw.nbytes]}
        data += raw.tobytes()
    write_raw_safetensors(tmp_path / "model.safetensors", header, data)
    plain = read_safetensors(tmp_path / "model.safetensors", dtype)
    laid_out = read_safetensors(tmp_path / "model.safetensors", dtype, load_order)
    for name, tensor in laid_out.items():
        column_major = "encoder" in name and tensor.ndim == 2
        assert tensor.flags.f_contiguous == column_major or tensor.ndim == 1, name
        assert tensor.flags.c_contiguous != column_major, name
        assert tensor.dtype == plain[name].dtype == (dtype or (np.float16 if stored == "F16" else np.float32))
        np.testing.assert_array_equal(tensor, plain[name], err_msg=name)


# Unreadable files.


def write_raw_safetensors(path, header: dict, data: bytes = b""):
    encoded = json.dumps(header).encode()
    path.write_bytes(len(encoded).to_bytes(8, "little") + encoded + data)


def test_unreadable_safetensors_files_are_refused_with_the_file_and_tensor_named(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x01\x02")
    with pytest.raises(CheckpointError, match="shorter than the 8-byte header length"):
        read_safetensors(path)
    path.write_bytes((10**6).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match="header length 1000000 does not fit"):
        read_safetensors(path)
    write_raw_safetensors(path, {"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b"\0\0")
    with pytest.raises(CheckpointError, match="tensor 'w' has dtype F8_E4M3, which minibert does not read"):
        read_safetensors(path)
    write_raw_safetensors(path, {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}, b"\0" * 20)
    with pytest.raises(CheckpointError, match=r"tensor 'w' \(F32, shape \(2, 3\), 24 bytes\) has data_offsets"):
        read_safetensors(path)


def test_directory_without_weights_lists_what_it_looked_for(tmp_path):
    (tmp_path / "config.json").write_text((WEIGHTS / "tiny-gelu" / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"no weights to load; expected one of \['model\.safetensors'"):
        minibert.BertModel.from_pretrained(tmp_path)


def test_float32_file_loaded_as_float32_is_read_once_without_conversion(tmp_path):
    tensors, source = read_tensors(WEIGHTS / "tiny-gelu", np.float32)
    assert source.endswith("model.safetensors")
    weight = tensors["encoder.layer.0.intermediate.dense.weight"]
    assert weight.dtype == np.float32 and weight.flags.owndata and weight.flags.writeable
    np.testing.assert_array_equal(
        weight, load_file(WEIGHTS / "tiny-gelu" / "model.safetensors")["encoder.layer.0.intermediate.dense.weight"]
    )


@pytest.mark.parametrize(
    "directory",
    [
        WEIGHTS / "tiny-gelu",
        WEIGHTS / "tf_tiny",
        WEIGHTS / "tf_hub" / "tf1_uncased",
        WEIGHTS / "tf_hub" / "tf2_uncased",
    ],
    ids=["safetensors", "tf-checkpoint", "tf1-hub", "tf2-saved-model"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("vendor", ["AuthenticAMD", "GenuineIntel", ""])
def test_encoder_weights_load_in_their_vendors_order_with_the_checkpoints_shape_and_values(
    directory, dtype, vendor, monkeypatch
):
    """functional.linear reads a column-major W's transpose as BLAS wants it; the array a reader sees keeps the
    checkpoint's [out, in] shape and values, and every other tensor is row-major (C) as read. On a CPU of
    tuning.ROW_MAJOR_WEIGHTS_VENDORS (Intel's) the encoder's weights are row-major, with the same shape and values."""
    monkeypatch.setattr(checkpoint, "cpu_vendor", lambda: vendor)
    column_major = vendor not in ROW_MAJOR_WEIGHTS_VENDORS
    tensors, _ = read_tensors(directory, dtype)
    config, params = load_pretrained(directory, dtype)
    layer = params["encoder"]["layer"][config.num_hidden_layers - 1]
    weights = {
        "attention.self.query": layer["attention"]["self"]["query"]["weight"],
        "attention.self.value": layer["attention"]["self"]["value"]["weight"],
        "attention.output.dense": layer["attention"]["output"]["dense"]["weight"],
        "intermediate.dense": layer["intermediate"]["dense"]["weight"],
        "output.dense": layer["output"]["dense"]["weight"],
    }
    for name, weight in weights.items():
        assert weight.flags.f_contiguous == column_major != weight.flags.c_contiguous and weight.dtype == dtype, name
        file_name = next(n for n in tensors if n.endswith(f"layer.{config.num_hidden_layers - 1}.{name}.weight"))
        np.testing.assert_array_equal(weight, tensors[file_name])  # [out, in], the checkpoint's values
    assert weights["intermediate.dense"].shape == (config.intermediate_size, config.hidden_size)
    for other in (
        params["embeddings"]["word_embeddings"]["weight"],
        params["pooler"]["dense"]["weight"],
        layer["intermediate"]["dense"]["bias"],
    ):
        assert other.flags.c_contiguous and other.dtype == dtype


def test_the_weights_layout_changes_no_bit_of_the_outputs_but_on_the_small_matrix_path(monkeypatch):
    """The encoder's weights row-major (an Intel CPU) or column-major (any other) are the same products: on the BLAS
    kernels measured (OpenBLAS's SkylakeX and Haswell) the same bits, in both dtypes, on one thread or two, for a short
    text, a long one and a padded batch; but the short text's float32 products on one thread, which take
    functional.small_matrix_linear with row-major weights where BLAS has small-matrix kernels: there within F32_TOL."""
    directory = minilm_dir()
    tokenizer = minibert.Tokenizer.from_pretrained(directory)
    texts = ["a short one", "Why is the pooled output different from the first token's hidden state? " * 6]
    batches = {"short": tokenizer([texts[0]]), "long": tokenizer([texts[1]]), "batch": tokenizer(texts)}
    assert batches["short"]["input_ids"].shape[1] < SMALL_ROWS <= batches["long"]["input_ids"].shape[1]
    blas = numpy_blas(ThreadpoolController())
    kernel = getattr(blas, "architecture", None) if blas is not None else None
    for dtype in (np.float32, np.float64):
        outputs = {}
        for vendor in ("AuthenticAMD", "GenuineIntel"):
            monkeypatch.setattr(checkpoint, "cpu_vendor", lambda vendor=vendor: vendor)
            model = minibert.BertModel.from_pretrained(directory, dtype=dtype)
            assert model.params["encoder"]["layer"][0]["output"]["dense"]["weight"].flags.c_contiguous == (
                vendor == "GenuineIntel"
            )
            outputs[vendor] = {
                (name, threads): model(**inputs, threads=threads)
                for name, inputs in batches.items()
                for threads in (1, 2)
            }
        for key, amd in outputs["AuthenticAMD"].items():
            intel = outputs["GenuineIntel"][key]
            small_path = key == ("short", 1) and dtype == np.float32 and parallel.blas_threads.small_matrices()
            for ours, theirs in (
                (amd.last_hidden_state, intel.last_hidden_state),
                (amd.pooler_output, intel.pooler_output),
            ):
                if kernel in ("SkylakeX", "Haswell") and not small_path:
                    np.testing.assert_array_equal(theirs, ours, err_msg=str(key))
                else:
                    tolerance = F32_TOL if dtype == np.float32 else F64_TOL
                    np.testing.assert_allclose(theirs, ours, rtol=0, atol=tolerance, err_msg=str(key))


def test_the_cpu_vendor_is_read_from_proc_cpuinfo_or_the_platform(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\nprocessor\t: 1\nvendor_id\t: X\n")
    assert cpu_vendor(str(cpuinfo)) == "GenuineIntel"  # the first processor's
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n")
    assert cpu_vendor(str(arm)) == ""  # Linux on a CPU with no vendor_id: not a vendor of ROW_MAJOR_WEIGHTS_VENDORS
    monkeypatch.setattr(checkpoint.platform, "processor", lambda: "Intel64 Family 6 Model 167 Stepping 1, GenuineIntel")
    monkeypatch.setattr(checkpoint.platform, "system", lambda: "Windows")
    assert cpu_vendor(str(tmp_path / "absent")) == "GenuineIntel"  # no /proc/cpuinfo: Windows names it here
    monkeypatch.setattr(checkpoint.platform, "system", lambda: "Darwin")
    assert cpu_vendor(str(tmp_path / "elsewhere")) == ""  # neither says
    cpu_vendor.cache_clear()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weight_is_refused_by_name_unless_check_finite_is_off(bad, tmp_path):
    tensors = load_file(WEIGHTS / "tiny-gelu" / "model.safetensors")
    tensors["encoder.layer.1.intermediate.dense.weight"][3, 4] = bad
    save_file(tensors, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((WEIGHTS / "tiny-gelu" / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"'encoder\.layer\.1\.intermediate\.dense\.weight' holds 1 NaN or inf"):
        minibert.BertModel.from_pretrained(tmp_path)
    _, params = load_pretrained(tmp_path, check_finite=False)
    assert not np.isfinite(params["encoder"]["layer"][1]["intermediate"]["dense"]["weight"][3, 4])
