"""From files to parameters: read a checkpoint's tensors, map their names, check them against the config, and nest
them the way model.py reads them. No math here beyond dtype conversion.

    load_pretrained(dir) -> (BertConfig, params), where
    params["encoder"]["layer"][3]["attention"]["self"]["query"]["weight"] is encoder.layer.3.attention.self.query.weight
"""

import json
import logging
import math
import re
from collections.abc import Collection
from pathlib import Path

import numpy as np

from .config import BertConfig
from .dtypes import bfloat16_bits_to_float32
from .errors import CheckpointError, InputError
from .untrusted import read_json  # noqa: F401  (re-exported: tokenizer.py and sentence.py read JSON through it)

logger = logging.getLogger("minibert")

SUPPORTED_DTYPES = (np.float32, np.float64)

# Tensor names as other writers spell them -> BertModel's names. One row per rule, applied in order.
RENAMES = [
    (r"^bert\.", ""),  # BertForMaskedLM, BertForSequenceClassification, BertForPreTraining prefix the encoder
    (r"\.gamma$", ".weight"),  # LayerNorm parameters in checkpoints from before transformers 1.0
    (r"\.beta$", ".bias"),
]
# Tensors in the file that BertModel does not use: buffers, and the task heads (heads.py reads those).
IGNORED = re.compile(r"^(embeddings\.position_ids|embeddings\.token_type_ids)$")
HEAD_PREFIXES = ("cls.", "classifier.", "qa_outputs.")


def expected_shapes(config: BertConfig, pooler: bool = True) -> dict[str, tuple[int, ...]]:
    """Every tensor BertModel needs for `config`, by its transformers name, with its [out, in] shape."""
    H, I, V = config.hidden_size, config.intermediate_size, config.vocab_size
    shapes = {
        "embeddings.word_embeddings.weight": (V, H),
        "embeddings.position_embeddings.weight": (config.max_position_embeddings, H),
        "embeddings.token_type_embeddings.weight": (config.type_vocab_size, H),
        "embeddings.LayerNorm.weight": (H,),
        "embeddings.LayerNorm.bias": (H,),
    }
    for i in range(config.num_hidden_layers):
        layer = {
            "attention.self.query": (H, H),
            "attention.self.key": (H, H),
            "attention.self.value": (H, H),
            "attention.output.dense": (H, H),
            "attention.output.LayerNorm": (H, None),
            "intermediate.dense": (I, H),
            "output.dense": (H, I),
            "output.LayerNorm": (H, None),
        }
        for name, (n_out, n_in) in layer.items():
            shapes[f"encoder.layer.{i}.{name}.weight"] = (n_out,) if n_in is None else (n_out, n_in)
            shapes[f"encoder.layer.{i}.{name}.bias"] = (n_out,)
    if pooler:
        shapes["pooler.dense.weight"] = (H, H)
        shapes["pooler.dense.bias"] = (H,)
    return shapes


def rename(name: str) -> str:
    """A tensor's name as BertModel spells it."""
    for pattern, replacement in RENAMES:
        name = re.sub(pattern, replacement, name)
    return name


# safetensors dtype codes -> NumPy dtypes; the format is little-endian. NumPy has no bfloat16, so BF16 tensors are
# read as their raw uint16 bits and widened to float32 exactly (dtypes.bfloat16_bits_to_float32).
# https://github.com/huggingface/safetensors/blob/v0.8.0/README.md#format
SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}
_MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit; a larger "header" is a corrupt file


def read_safetensors_header(path: Path) -> tuple[dict[str, dict], int]:
    """A .safetensors file's table of contents, {name: {"dtype", "shape", "data_offsets"}}, and where its data starts.

    The file is an 8-byte little-endian header length, that many bytes of JSON, then the tensors' bytes. Every
    entry is checked against the file: a known dtype, a shape whose size fits the byte range, a range inside the file.
    """

    def corrupt(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: not a readable safetensors file ({why}); re-download or re-save it")

    try:
        file_size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise corrupt(f"{file_size} bytes, shorter than the 8-byte header length")
            header_size = int.from_bytes(prefix, "little")
            if header_size > min(file_size - 8, _MAX_HEADER_BYTES):
                raise corrupt(f"header length {header_size} does not fit in a file of {file_size} bytes")
            header = json.loads(f.read(header_size))
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise corrupt(f"header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise corrupt("header is not a JSON object")
    header.pop("__metadata__", None)
    data_start = 8 + header_size
    data_size = file_size - data_start
    for name, entry in header.items():
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise corrupt(f"tensor {name!r} has no dtype, shape and data_offsets")
        if entry["dtype"] not in SAFETENSORS_DTYPES:
            raise CheckpointError(
                f"{path}: tensor {name!r} has dtype {entry['dtype']}, which minibert does not read; "
                f"re-save the checkpoint as F32, F16 or BF16 (readable: {', '.join(SAFETENSORS_DTYPES)})"
            )
        shape, offsets = entry["shape"], entry["data_offsets"]
        if not (isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise corrupt(f"tensor {name!r} has shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(n, int) for n in offsets)):
            raise corrupt(f"tensor {name!r} has data_offsets {offsets!r}")
        begin, end = offsets
        nbytes = math.prod(shape) * np.dtype(SAFETENSORS_DTYPES[entry["dtype"]]).itemsize
        if not 0 <= begin <= end <= data_size or end - begin != nbytes:
            raise corrupt(
                f"tensor {name!r} ({entry['dtype']}, shape {tuple(shape)}, {nbytes} bytes) has data_offsets "
                f"{offsets}; the file holds {data_size} bytes of data"
            )
    check_safetensors_layout(path, header, data_size)
    return header, data_start


def check_safetensors_layout(path: Path, header: dict[str, dict], data_size: int) -> None:
    """The tensors' byte ranges must tile the data section exactly, as the format requires: no gap, no overlap, no
    bytes after the last tensor. A header that breaks this lies (two tensors sharing bytes, or a file cut and padded)
    even when every single range fits in the file; the safetensors library refuses such files too.

    An empty tensor takes no bytes whatever its other dimensions, so its shape must also be checked on its own:
    NumPy refuses to make even an empty array whose nonzero dimensions multiply past its index range."""
    end, previous = 0, None
    for name, entry in sorted(header.items(), key=lambda item: tuple(item[1]["data_offsets"])):
        begin, stop = entry["data_offsets"]
        itemsize = np.dtype(SAFETENSORS_DTYPES[entry["dtype"]]).itemsize
        if math.prod(n for n in entry["shape"] if n) * itemsize > np.iinfo(np.intp).max:
            raise CheckpointError(
                f"{path}: not a readable safetensors file (tensor {name!r} has shape {tuple(entry['shape'])}, too "
                "large for any array); re-download or re-save it"
            )
        if begin != end:
            where = f"the previous tensor {previous!r} ends at {end}" if previous else "the data starts at 0"
            raise CheckpointError(
                f"{path}: not a readable safetensors file (tensor {name!r} starts at data byte {begin} but {where}: "
                f"the header's byte ranges {'overlap' if begin < end else 'leave a gap'}); re-download or re-save it"
            )
        end, previous = stop, name
    if end != data_size:
        raise CheckpointError(
            f"{path}: not a readable safetensors file (the header's tensors cover {end} bytes of data but the file "
            f"holds {data_size}); re-download or re-save it"
        )


def read_safetensors(path: Path, dtype=None) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as NumPy arrays: floating ones in `dtype` if given, else in the file's
    dtype (bfloat16 as float32); integer buffers as they are.

    Each tensor's bytes are read straight into its own array and, if its dtype differs, converted before the next
    tensor is read, so loading holds one copy of the weights plus at most one tensor in the file's dtype.
    """
    header, data_start = read_safetensors_header(path)
    tensors = {}
    try:
        with open(path, "rb") as f:
            for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
                tensor = np.empty(entry["shape"], dtype=SAFETENSORS_DTYPES[entry["dtype"]])
                f.seek(data_start + entry["data_offsets"][0])
                if f.readinto(tensor.reshape(-1).view(np.uint8)) != tensor.nbytes:
                    raise CheckpointError(f"{path}: file ends inside tensor {name!r}; re-download or re-save it")
                if entry["dtype"] == "BF16":
                    tensor = bfloat16_bits_to_float32(tensor)
                if dtype is not None and tensor.dtype.kind == "f":
                    tensor = tensor.astype(dtype, copy=False)  # a no-op when the file already holds `dtype`
                tensors[name] = tensor
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error})") from None
    return tensors


def read_sharded_index(index_path: Path) -> dict[str, str]:
    """model.safetensors.index.json's weight_map: tensor name -> the shard file, beside the index, that holds it."""
    weight_map = read_json(index_path).get("weight_map")
    if not isinstance(weight_map, dict) or not all(
        isinstance(name, str) and isinstance(shard, str) for name, shard in weight_map.items()
    ):
        raise CheckpointError(f"{index_path}: expected a 'weight_map' object of tensor name -> shard file name")
    for name, shard in weight_map.items():
        # A name like "../x" would read outside the model directory.
        if Path(shard).name != shard or shard in ("", ".", ".."):
            raise CheckpointError(
                f"{index_path}: tensor {name!r} is in shard {shard!r}, which is not a plain file name; shards sit "
                "beside the index"
            )
    return weight_map


def read_sharded_safetensors(index_path: Path, dtype=None) -> dict[str, np.ndarray]:
    """The tensors of a sharded checkpoint: model.safetensors.index.json's weight_map says which shard holds each.

    Every shard must exist and hold exactly the tensors the index puts in it; both are checked, from the shards'
    headers, before any weights are read.
    """
    weight_map = read_sharded_index(index_path)
    shards: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        shards.setdefault(shard, []).append(name)
    missing = [shard for shard in shards if not (index_path.parent / shard).is_file()]
    if missing:
        raise CheckpointError(
            f"{index_path}: {len(missing)} shard(s) missing from {index_path.parent}: "
            + ", ".join(f"{shard} (holds {len(shards[shard])} tensors, e.g. {shards[shard][0]!r})" for shard in missing)
            + "; download every shard the index names"
        )
    held_in: dict[str, list[str]] = {}  # tensor name -> the shards that actually hold it
    for shard in shards:
        for name in read_safetensors_header(index_path.parent / shard)[0]:
            held_in.setdefault(name, []).append(shard)
    problems = []
    for name in sorted(weight_map.keys() | held_in.keys()):
        listed, held = weight_map.get(name), held_in.get(name, [])
        if held == [listed]:
            continue
        if listed is None:
            problems.append(f"{name!r} is in {', '.join(held)} but not in the index")
        elif not held:
            problems.append(f"{name!r}: the index puts it in {listed}, which does not hold it, nor does any shard")
        else:
            problems.append(f"{name!r}: the index puts it in {listed}, but {', '.join(held)} holds it")
    if problems:
        raise CheckpointError(
            f"{index_path}: the index and the shards disagree on {len(problems)} tensor(s): "
            + "; ".join(problems[:4])
            + ("; ..." if len(problems) > 4 else "")
            + ". Re-download the index and the shards together"
        )
    tensors = {}
    for shard in shards:
        tensors.update(read_safetensors(index_path.parent / shard, dtype))
    return tensors


def unflatten(flat: dict[str, np.ndarray]) -> dict:
    """{"a.0.b": x} -> {"a": [{"b": x}]}: dotted names to nested dicts, numbered parts to lists."""
    nested: dict = {}
    for name, value in flat.items():
        node = nested
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    def listify(node):
        if not isinstance(node, dict):
            return node
        if node and all(key.isdigit() for key in node):
            return [listify(node[str(i)]) for i in range(len(node))]
        return {key: listify(value) for key, value in node.items()}

    return listify(nested)


def check_dtype(dtype) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise InputError(f"dtype {dtype!r} is not a NumPy dtype; use numpy.float32 or numpy.float64") from None
    if dtype not in SUPPORTED_DTYPES:
        raise InputError(f"dtype {dtype} is not supported; use numpy.float32 or numpy.float64")
    return dtype


def check_tensor(name: str, tensor: np.ndarray, shape: tuple[int, ...], dtype, source: str, check_finite: bool):
    """`tensor` in `dtype`, after checking it has the config's shape, holds floats, and (if asked) only finite ones."""
    if tensor.shape != shape:
        raise CheckpointError(
            f"{source}: tensor {name!r} has shape {tensor.shape}; config.json says {shape}. "
            "Is config.json the one these weights were saved with?"
        )
    if tensor.dtype.kind != "f":
        raise CheckpointError(f"{source}: tensor {name!r} has dtype {tensor.dtype}; expected floating point weights")
    # min and max propagate NaN and reach ±inf, so this finds both without a boolean copy of the tensor.
    if check_finite and tensor.size and not (np.isfinite(tensor.min()) and np.isfinite(tensor.max())):
        count = int(np.size(tensor) - np.count_nonzero(np.isfinite(tensor)))
        raise CheckpointError(
            f"{source}: tensor {name!r} holds {count} NaN or infinite value(s); the checkpoint is corrupt "
            "(pass check_finite=False to load it anyway)"
        )
    return tensor.astype(dtype, copy=False)


def rename_tensors(tensors: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """The file's tensors under BertModel's names (RENAMES), refusing two file names that map to one name."""
    renamed: dict[str, np.ndarray] = {}
    original: dict[str, str] = {}  # the file's name of each renamed tensor, to name both sides of a collision
    for name, tensor in tensors.items():
        new = rename(name)
        if new in renamed:
            first, second = sorted((original[new], name))
            raise CheckpointError(
                f"{source}: two tensors map to {new!r}: {first!r} and {second!r}; the checkpoint is ambiguous"
            )
        renamed[new], original[new] = tensor, name
    return renamed


def to_params(
    tensors: dict[str, np.ndarray],
    config: BertConfig,
    dtype,
    source: str,
    check_finite: bool = True,
    used_heads: Collection[str] = (),
):
    """Map names, check the set of tensors and their shapes against the config, convert to `dtype`, nest.

    Loading is strict: the expected names are computed from the config and compared with the file's, and every
    missing, unexpected or misshapen tensor is named. Pooler weights are optional; without them the model returns
    `pooler_output=None` rather than inventing random ones. Head tensors (cls., classifier., ...) are not returned;
    those not named in `used_heads` (by their renamed names; heads.py reads its own) are logged as unused.
    """
    return renamed_to_params(
        rename_tensors(tensors, source), config, check_dtype(dtype), source, check_finite, used_heads
    )


def renamed_to_params(
    renamed: dict[str, np.ndarray],
    config: BertConfig,
    dtype: np.dtype,
    source: str,
    check_finite: bool = True,
    used_heads: Collection[str] = (),
):
    """to_params for tensors already under BertModel's names (rename_tensors) and a dtype already checked
    (check_dtype), for a caller that reads the renamed tensors too, as heads.py does."""
    has_pooler = "pooler.dense.weight" in renamed or "pooler.dense.bias" in renamed
    expected = expected_shapes(config, pooler=has_pooler)

    missing = sorted(set(expected) - set(renamed))
    unused = sorted(name for name in set(renamed) - set(expected) if not IGNORED.match(name))
    heads = [name for name in unused if name.startswith(HEAD_PREFIXES) and name not in used_heads]
    unexpected = [name for name in unused if not name.startswith(HEAD_PREFIXES)]
    if missing or unexpected:

        def listing(names):
            return ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")

        problems = []
        if missing:
            problems.append(f"missing {len(missing)} tensor(s): {listing(missing)}")
        if unexpected:
            problems.append(f"unexpected {len(unexpected)} tensor(s): {listing(unexpected)}")
        raise CheckpointError(
            f"{source}: the tensors do not match a BertModel with {config.num_hidden_layers} layers: "
            + "; ".join(problems)
            + ". Is config.json the one these weights were saved with?"
        )
    if heads:
        logger.warning("%s: %d task-head tensor(s) not used by BertModel: %s", source, len(heads), ", ".join(heads))
    if not has_pooler:
        logger.info("%s: no pooler weights; pooler_output will be None", source)

    params = {
        name: check_tensor(name, renamed[name], shape, dtype, source, check_finite) for name, shape in expected.items()
    }
    return unflatten(params)


def read_torch_bin(path: Path, dtype=None) -> dict[str, np.ndarray]:
    """pytorch_model.bin (torch.save's zip + pickle), read without PyTorch through a restricted unpickler."""
    from .torch_pickle import load_torch_bin

    return _as_dtype(load_torch_bin(path), dtype)


def read_tf_checkpoint(index_path: Path, dtype=None) -> dict[str, np.ndarray]:
    """Google's TF checkpoint (bert_model.ckpt.index + .data-*), without TensorFlow, by transformers' names.

    Kernels come transposed to [out, in]; the optimizer's slots (adam_m, adam_v) and global_step are left out.
    """
    from .tf_checkpoint import load_tf_checkpoint, tf_to_hf_names

    tensors, skipped = tf_to_hf_names(load_tf_checkpoint(index_path.with_suffix("")))
    if skipped:
        logger.info("%s: %d optimizer-state tensor(s) left out (%s, ...)", index_path, len(skipped), skipped[0])
    return _as_dtype(tensors, dtype)


def _as_dtype(tensors: dict[str, np.ndarray], dtype) -> dict[str, np.ndarray]:
    """Floating tensors converted to `dtype` one at a time, each original freed as soon as it is replaced."""
    if dtype is not None:
        for name, tensor in tensors.items():
            if tensor.dtype.kind == "f":
                tensors[name] = tensor.astype(dtype, copy=False)
    return tensors


# The weight files minibert reads, best first: the file that marks the layout, and its reader (path, dtype) -> raw
# tensors by the file's names. A directory is read with the first one it holds; hub.py downloads the same one.
WEIGHT_FILES = [
    ("model.safetensors", read_safetensors),
    ("model.safetensors.index.json", read_sharded_safetensors),
    ("pytorch_model.bin", read_torch_bin),
    ("bert_model.ckpt.index", read_tf_checkpoint),
]
# config.json as transformers writes it; bert_config.json is the original Google release's, the same fields.
CONFIG_FILES = ("config.json", "bert_config.json")


def weight_files(directory: Path) -> list[Path]:
    """The files read_tensors(directory) reads, in a fixed order: the weights file that marks the layout and, for a
    sharded safetensors or a TF checkpoint, every shard or .data-* file beside it. For hashing a model's identity."""
    for filename, _ in WEIGHT_FILES:
        marker = directory / filename
        if not marker.is_file():
            continue
        if filename == "model.safetensors.index.json":
            return [marker, *(directory / shard for shard in sorted(set(read_sharded_index(marker).values())))]
        if filename == "bert_model.ckpt.index":
            return [marker, *sorted(directory.glob("bert_model.ckpt.data-*"))]
        return [marker]
    raise CheckpointError(
        f"{directory}: no weights to load; expected one of {[name for name, _ in WEIGHT_FILES]}, "
        f"the directory holds {sorted(p.name for p in directory.iterdir())}"
    )


def read_tensors(directory: Path, dtype=None) -> tuple[dict[str, np.ndarray], str]:
    """Every tensor of a model directory's weights, by the file's own names, and the name of the file read.

    Floating tensors come in `dtype` if given (converted one at a time while reading, so that the weights are never
    held twice), else in the file's dtype, bfloat16 widened to float32.
    """
    for filename, reader in WEIGHT_FILES:
        weights = directory / filename
        if weights.is_file():
            return reader(weights, dtype), str(weights)
    found = sorted(p.name for p in directory.iterdir())
    raise CheckpointError(
        f"{directory}: no weights to load; expected one of {[name for name, _ in WEIGHT_FILES]}, "
        f"the directory holds {found}"
    )


def read_checkpoint(
    path, dtype=np.float32, *, revision: str | None = None, cache_dir=None, local_files_only: bool = False
) -> tuple[BertConfig, dict[str, np.ndarray], str]:
    """A model directory or hub id -> (its config, its raw tensors by the file's names, the weights file's name)."""
    from .hub import resolve_model_dir

    dtype = check_dtype(dtype)
    directory = resolve_model_dir(path, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    config_file = next((directory / name for name in CONFIG_FILES if (directory / name).is_file()), None)
    config = BertConfig.from_json_file(config_file or directory / "config.json")
    tensors, source = read_tensors(directory, dtype)
    return config, tensors, source


def load_pretrained(path, dtype=np.float32, check_finite: bool = True, **hub) -> tuple[BertConfig, dict]:
    """A model directory or hub id (config.json + weights) -> (config, nested params in `dtype`).

    `hub` takes huggingface_hub's revision=, cache_dir= and local_files_only= (see hub.resolve_model_dir).
    """
    config, tensors, source = read_checkpoint(path, dtype, **hub)
    return config, to_params(tensors, config, dtype, source=source, check_finite=check_finite)
