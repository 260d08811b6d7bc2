"""From a model directory's files to the parameters model.py reads: names and checks -> params.

    load_pretrained(dir) -> (BertConfig, params), where
    params["encoder"]["layer"][3]["attention"]["self"]["query"]["weight"] is encoder.layer.3.attention.self.query.weight

The weight file is the one model_files.choose_weights picks; its reader (safetensors.py, torch_pickle.py,
tf_checkpoint.py, by READERS) gives the tensors by the file's names. Here they are renamed to BertModel's (RENAMES),
compared with the names and shapes the config implies, converted to the dtype asked for, laid out in memory for
the products (load_order: the encoder's weights column-major, except on Intel's CPUs), and nested. A hub id is
resolved to a directory before this (hub.py); no math here beyond dtype conversion.
"""

import functools
import logging
import platform
import re
from collections.abc import Collection
from pathlib import Path

import numpy as np

from .config import BertConfig
from .errors import CheckpointError
from .formats.safetensors import read_safetensors, read_sharded_safetensors
from .formats.tf_checkpoint import load_tf_checkpoint, tf_to_hf_names
from .formats.torch_pickle import load_torch_bin
from .inputs import check_dtype
from .model_files import (
    SAFETENSORS,
    SAVED_MODEL,
    SHARDED_INDEX,
    TF_INDEX,
    TORCH_BIN,
    choose_weights,
    config_file,
    is_saved_model,
)
from .tf_module import FROM_GRAPH, module_config, module_tensors
from .tuning import ROW_MAJOR_WEIGHTS_VENDORS
from .untrusted import escape

logger = logging.getLogger("minibert")

# Tensor names as other writers spell them -> BertModel's names. One row per rule, applied in order.
RENAMES = [
    (r"^bert\.", ""),  # BertForMaskedLM, BertForSequenceClassification, BertForPreTraining prefix the encoder
    (r"\.gamma$", ".weight"),  # LayerNorm parameters in checkpoints from before transformers 1.0
    (r"\.beta$", ".bias"),
]
# Tensors in the file that BertModel does not use: buffers, and the task heads (heads.py reads those).
IGNORED = re.compile(r"^(embeddings\.position_ids|embeddings\.token_type_ids)$")
HEAD_PREFIXES = ("cls.", "classifier.", "qa_outputs.")
_ENCODER_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.\d+\.")  # "encoder.layer.3.", "bert.encoder.layer.3."


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


def check_tensor(
    name: str, tensor: np.ndarray, shape: tuple[int, ...], dtype, source: str, check_finite: bool, order: str = "C"
):
    """`tensor` in `dtype` and in memory `order` ("C" row-major, "F" column-major), after checking it has the config's
    shape, holds floats, and (if asked) only finite ones."""
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
            f"{source}: tensor {name!r} holds {count} NaN or infinite value(s); the checkpoint is corrupt",
            fix="(pass check_finite=False to load it anyway)",
            cli_fix="(re-download or re-save it; minibert does not compute with it)",
        )
    return tensor.astype(dtype, order=order, copy=False)  # one pass converts and lays out; none if both hold


def load_order(name: str, shape: tuple[int, ...]) -> str:
    """The memory order a tensor is loaded in, by its name in the file or BertModel's: "F" (column-major) for the
    encoder's [out, in] weights, which functional.linear multiplies by as Wᵀ from FEW_ROWS rows on (BLAS reads a
    column-major W's transpose as it is: 8-17% faster on the AMD host; see linear); "C" (row-major, as stored) for
    every other tensor, and for the encoder's too on a CPU of tuning.ROW_MAJOR_WEIGHTS_VENDORS (Intel's: there
    row-major was as fast or faster). The values and the [out, in] shape are the checkpoint's."""
    encoder_weight = len(shape) == 2 and _ENCODER_LAYER.search(name)
    return "F" if encoder_weight and cpu_vendor() not in ROW_MAJOR_WEIGHTS_VENDORS else "C"


@functools.cache
def cpu_vendor(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's vendor id (GenuineIntel, AuthenticAMD, ...): the first vendor_id of Linux's /proc/cpuinfo; on
    Windows, the one platform.processor() names; "" elsewhere or where neither says."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() == "vendor_id":
                    return value.strip()
        return ""  # Linux on a CPU that names no vendor (ARM's)
    except OSError:
        pass
    if platform.system() != "Windows":  # elsewhere platform.processor() may run a command, and names no vendor
        return ""
    words = platform.processor().replace(",", " ").split()  # "Intel64 Family 6 Model 167 Stepping 1, GenuineIntel"
    return next((word for word in words if word.startswith(("Genuine", "Authentic"))), "")


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
    dtype = check_dtype(dtype)
    renamed = rename_tensors(tensors, source)
    has_pooler = "pooler.dense.weight" in renamed or "pooler.dense.bias" in renamed
    expected = expected_shapes(config, pooler=has_pooler)

    missing = sorted(set(expected) - set(renamed))
    unused = sorted(name for name in set(renamed) - set(expected) if not IGNORED.match(name))
    heads = [name for name in unused if name.startswith(HEAD_PREFIXES) and name not in used_heads]
    unexpected = [name for name in unused if not name.startswith(HEAD_PREFIXES)]
    if missing or unexpected:

        def listing(names):
            return ", ".join(escape(name) for name in names[:8]) + (" ..." if len(names) > 8 else "")

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
        name: check_tensor(name, renamed[name], shape, dtype, source, check_finite, load_order(name, shape))
        for name, shape in expected.items()
    }
    return unflatten(params)


def torch_bin_tensors(path: Path, dtype=None, order=None) -> dict[str, np.ndarray]:
    """The tensors of a pytorch_model.bin (torch.save's zip + pickle), read without PyTorch by
    torch_pickle.load_torch_bin's restricted unpickler, floating ones converted to `dtype`."""
    return _as_loaded(load_torch_bin(path), dtype, order)


def tf_checkpoint_tensors(index_path: Path, dtype=None, order=None) -> dict[str, np.ndarray]:
    """The tensors of Google's TF checkpoint (bert_model.ckpt.index + .data-*), read without TensorFlow by
    tf_checkpoint.load_tf_checkpoint, under transformers' names, floating ones converted to `dtype`.

    Kernels come transposed to [out, in]; the optimizer's slots (adam_m, adam_v) and global_step are left out.
    """
    tensors, skipped = tf_to_hf_names(load_tf_checkpoint(index_path.with_suffix("")))
    if skipped:
        logger.info("%s: %d optimizer-state tensor(s) left out (%s, ...)", index_path, len(skipped), skipped[0])
    return _as_loaded(tensors, dtype, order)


def _as_loaded(tensors: dict[str, np.ndarray], dtype, order=None) -> dict[str, np.ndarray]:
    """Floating tensors converted to `dtype` (if given) and laid out as `order(name, shape)` says (if given; see
    load_order), one at a time, each original freed as soon as it is replaced. A TF kernel's [out, in] view of its
    [in, out] array is column-major already: laying it out so costs nothing."""
    for name, tensor in tensors.items():
        if tensor.dtype.kind == "f" and (dtype is not None or order is not None):
            layout = order(name, tensor.shape) if order is not None else "K"
            tensors[name] = tensor.astype(tensor.dtype if dtype is None else dtype, order=layout, copy=False)
    return tensors


def saved_model_tensors(path: Path, dtype=None, order=None) -> dict[str, np.ndarray]:
    """The weights of the SavedModel whose saved_model.pb is `path` (a TF1 Hub module or a TF2 BertEncoder), read
    from its variables/ without TensorFlow by tf_module.module_tensors, under transformers' names."""
    return _as_loaded(module_tensors(path.parent), dtype, order)


# Each weight file of model_files.WEIGHT_FILES -> its reader, (path, dtype, order) -> raw tensors by the file's names.
READERS = {
    SAFETENSORS: read_safetensors,
    SHARDED_INDEX: read_sharded_safetensors,
    TORCH_BIN: torch_bin_tensors,
    TF_INDEX: tf_checkpoint_tensors,
    SAVED_MODEL: saved_model_tensors,
}


def read_tensors(directory: Path, dtype=None, order=None) -> tuple[dict[str, np.ndarray], str]:
    """Every tensor of a model directory's weights, by the file's own names, and the name of the file read.

    Floating tensors come in `dtype` if given (converted one at a time while reading, so that the weights are never
    held twice), else in the file's dtype, bfloat16 widened to float32; laid out in memory as `order(name, shape)`
    says if given (load_order), else as stored.
    """
    weights = directory / choose_weights([path.name for path in directory.iterdir()], str(directory))
    return READERS[weights.name](weights, dtype, order), str(weights)


def read_config(directory: Path, hidden_act: str | None = None) -> BertConfig:
    """The directory's config: its config.json (or bert_config.json), else, for a SavedModel, what the module's
    variables and graph say (tf_module.module_config). `hidden_act`, if given, overrides the activation before the
    config is checked (e.g. "gelu_new" to compute what Google's TF graphs compute for a "gelu" checkpoint)."""
    if is_saved_model(directory):
        path = directory / SAVED_MODEL
        return BertConfig.from_values(module_config(directory), str(path), FROM_GRAPH, hidden_act)
    return BertConfig.from_json_file(config_file(directory), hidden_act)


def read_checkpoint(
    directory: Path, dtype=np.float32, hidden_act: str | None = None
) -> tuple[BertConfig, dict[str, np.ndarray], str]:
    """A model directory -> (its config, its raw tensors by the file's names, the weights file's name)."""
    directory = Path(directory)
    dtype = check_dtype(dtype)
    config = read_config(directory, hidden_act)
    tensors, source = read_tensors(directory, dtype, load_order)
    return config, tensors, source


def load_pretrained(
    directory: Path, dtype=np.float32, check_finite: bool = True, hidden_act: str | None = None
) -> tuple[BertConfig, dict]:
    """A model directory (config.json + weights, or a SavedModel) -> (config, nested params in `dtype`). A hub id is
    resolved to a directory by the caller (hub.resolve_model_dir), as BertModel.from_pretrained does."""
    config, tensors, source = read_checkpoint(directory, dtype, hidden_act)
    return config, to_params(tensors, config, dtype, source=source, check_finite=check_finite)
