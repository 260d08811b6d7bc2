"""From files to parameters: read a checkpoint's tensors, map their names, check them against the config, and nest
them the way model.py reads them. No math here beyond dtype conversion.

    load_pretrained(dir) -> (BertConfig, params), where
    params["encoder"]["layer"][3]["attention"]["self"]["query"]["weight"] is encoder.layer.3.attention.self.query.weight
"""

import logging
import re
from collections.abc import Collection
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


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file, as NumPy arrays in the file's dtype."""
    from safetensors import SafetensorError, safe_open

    tensors = {}
    try:
        with safe_open(str(path), framework="numpy") as f:
            for name in f.keys():
                tensors[name] = f.get_tensor(name)
    except (SafetensorError, OSError, ValueError, TypeError) as error:
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
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise InputError(f"dtype {dtype} is not supported; use numpy.float32 or numpy.float64")
    return dtype


def to_params(tensors: dict[str, np.ndarray], config: BertConfig, dtype, source: str, check_finite: bool = True,
              used_heads: Collection[str] = ()):  # fmt: skip
    """Map names, check the set of tensors and their shapes against the config, convert to `dtype`, nest.

    Loading is strict: the expected names are computed from the config and compared with the file's, and every
    missing, unexpected or misshapen tensor is named. Pooler weights are optional; without them the model returns
    `pooler_output=None` rather than inventing random ones. Head tensors (cls., classifier., ...) are not returned;
    those not named in `used_heads` (by their renamed names; heads.py reads its own) are logged as unused.
    """
    dtype = check_dtype(dtype)
    renamed: dict[str, np.ndarray] = {}
    for name, tensor in tensors.items():
        new = rename(name)
        if new in renamed:
            raise CheckpointError(
                f"{source}: two tensors map to {new!r} (one is {name!r}); the checkpoint is ambiguous"
            )
        renamed[new] = tensor
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
