"""From files to parameters: read a checkpoint's tensors, map their names, check them against the config, and nest
them the way model.py reads them. No math here beyond dtype conversion.

    load_pretrained(dir) -> (BertConfig, params), where
    params["encoder"]["layer"][3]["attention"]["self"]["query"]["weight"] is encoder.layer.3.attention.self.query.weight
"""

import json
import logging
import math
import re
from pathlib import Path

import numpy as np

from .config import BertConfig
from .errors import CheckpointError, InputError

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


# safetensors dtype codes -> bytes per element, and whether NumPy has the dtype (None: sub-byte, no size to check).
# https://github.com/huggingface/safetensors/blob/v0.8.0/safetensors/src/tensor.rs (enum Dtype)
SAFETENSORS_DTYPES = {
    "BOOL": (1, True), "U8": (1, True), "I8": (1, True), "U16": (2, True), "I16": (2, True), "U32": (4, True),
    "I32": (4, True), "U64": (8, True), "I64": (8, True), "F16": (2, True), "F32": (4, True), "F64": (8, True),
    "C64": (8, True), "BF16": (2, False), "F8_E5M2": (1, False), "F8_E4M3": (1, False), "F8_E8M0": (1, False),
    "F8_E4M3FNUZ": (1, False), "F8_E5M2FNUZ": (1, False), "F6_E2M3": (None, False), "F6_E3M2": (None, False),
    "F4": (None, False),
}  # fmt: skip
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit


def validate_safetensors_header(path: Path) -> None:
    """Check a .safetensors file's layout before any tensor is read, naming the first lie its header tells.

    The format is an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then
    the data: the tensors' byte ranges must tile it exactly, each range prod(shape) * itemsize bytes long. The
    safetensors library checks most of this too, but its messages do not always say which tensor or what was
    found, older versions check less, and tensors NumPy cannot hold (bfloat16, float8) fail deep inside it.
    """

    def fail(problem: str):
        raise CheckpointError(f"{path}: {problem}; the file is truncated or corrupt: re-download or re-save it")

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                fail(f"the file is {size} bytes, shorter than the 8-byte header length a safetensors file starts with")
            header_length = int.from_bytes(prefix, "little")
            if header_length > size - 8:
                fail(f"the header length says {header_length} bytes but only {size - 8} bytes follow it")
            if header_length > MAX_HEADER_BYTES:
                fail(f"the header length says {header_length} bytes, over the format's limit of {MAX_HEADER_BYTES}")
            raw = f.read(header_length)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        fail(f"the header is not UTF-8 JSON ({error})")
    if not isinstance(header, dict):
        fail(f"the header is a JSON {type(header).__name__}, not an object of tensors")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        fail("the header's __metadata__ is not an object of strings")

    data_length = size - 8 - header_length
    ranges = []  # (begin, end, name)
    for name, entry in header.items():
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            fail(f"tensor {name!r} has header entry {entry!r}; expected dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in SAFETENSORS_DTYPES:
            fail(f"tensor {name!r} has unknown dtype {dtype!r}; known: {', '.join(SAFETENSORS_DTYPES)}")
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            fail(f"tensor {name!r} has shape {shape!r}; expected a list of non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)
                and 0 <= offsets[0] <= offsets[1]):  # fmt: skip
            fail(f"tensor {name!r} has data_offsets {offsets!r}; expected [begin, end] with 0 <= begin <= end")
        itemsize, numpy_has_it = SAFETENSORS_DTYPES[dtype]
        count = math.prod(shape)  # Python integers: a lying shape cannot overflow
        if itemsize is not None and offsets[1] - offsets[0] != count * itemsize:
            fail(
                f"tensor {name!r} of dtype {dtype} and shape {tuple(shape)} needs {count * itemsize} bytes, "
                f"but its data_offsets {offsets} span {offsets[1] - offsets[0]}"
            )
        if not numpy_has_it:
            raise CheckpointError(
                f"{path}: tensor {name!r} is stored as {dtype}, which NumPy has no dtype for; re-save the "
                "checkpoint in float32 (in PyTorch: model.float().save_pretrained(directory))"
            )
        ranges.append((offsets[0], offsets[1], name))

    end, previous = 0, None
    for begin, stop, name in sorted(ranges):
        if begin != end:
            where = f"the previous tensor {previous!r} ends at {end}" if previous else "the data starts at 0"
            kind = "overlaps" if begin < end else "leaves a gap"
            fail(f"tensor {name!r} starts at data byte {begin} but {where}: the header {kind}")
        end, previous = stop, name
    if end != data_length:
        fail(f"the header's tensors cover {end} bytes of data but the file holds {data_length} after the header")


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file, as NumPy arrays in the file's dtype."""
    from safetensors import safe_open

    validate_safetensors_header(path)
    tensors = {}
    try:
        with safe_open(str(path), framework="numpy") as f:
            for name in f.keys():
                tensors[name] = f.get_tensor(name)
    except Exception as error:  # SafetensorError, OSError, and TypeError/AttributeError for dtypes NumPy lacks
        raise CheckpointError(f"{path}: not a readable safetensors file ({error}); re-download or re-save it") from None
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


def to_params(tensors: dict[str, np.ndarray], config: BertConfig, dtype, source: str, check_finite: bool = True):
    """Map names, check the set of tensors and their shapes against the config, convert to `dtype`, nest.

    Loading is strict: the expected names are computed from the config and compared with the file's, and every
    missing, unexpected or misshapen tensor is named. Pooler weights are optional; without them the model returns
    `pooler_output=None` rather than inventing random ones.
    """
    dtype = check_dtype(dtype)
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
    has_pooler = "pooler.dense.weight" in renamed or "pooler.dense.bias" in renamed
    expected = expected_shapes(config, pooler=has_pooler)

    missing = sorted(set(expected) - set(renamed))
    unused = sorted(name for name in set(renamed) - set(expected) if not IGNORED.match(name))
    heads = [name for name in unused if name.startswith(HEAD_PREFIXES)]
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

    params = {}
    for name, shape in expected.items():
        tensor = renamed[name]
        if tensor.shape != shape:
            raise CheckpointError(
                f"{source}: tensor {name!r} has shape {tensor.shape}; config.json says {shape}. "
                "Is config.json the one these weights were saved with?"
            )
        if tensor.dtype.kind != "f":
            raise CheckpointError(
                f"{source}: tensor {name!r} has dtype {tensor.dtype}; expected floating point weights"
            )
        if check_finite and not np.isfinite(tensor).all():
            count = int(np.size(tensor) - np.count_nonzero(np.isfinite(tensor)))
            raise CheckpointError(
                f"{source}: tensor {name!r} holds {count} NaN or infinite value(s); the checkpoint is corrupt "
                "(pass check_finite=False to load it anyway)"
            )
        params[name] = tensor.astype(dtype, copy=False)
    return unflatten(params)


def read_tensors(directory: Path) -> tuple[dict[str, np.ndarray], str]:
    """Every tensor of a model directory's weights, by the file's own names, and the name of the file read."""
    weights = directory / "model.safetensors"
    if not weights.is_file():
        found = sorted(p.name for p in directory.iterdir())
        raise CheckpointError(f"{directory}: no model.safetensors to load; the directory holds {found}")
    return read_safetensors(weights), str(weights)


def load_pretrained(path, dtype=np.float32, check_finite: bool = True) -> tuple[BertConfig, dict]:
    """A model directory (config.json + weights) -> (config, nested params in `dtype`)."""
    from .hub import resolve_model_dir

    dtype = check_dtype(dtype)
    directory = resolve_model_dir(path)
    config = BertConfig.from_json_file(directory / "config.json")
    tensors, source = read_tensors(directory)
    return config, to_params(tensors, config, dtype, source=source, check_finite=check_finite)
