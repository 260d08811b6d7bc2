"""A BERT saved as a TensorFlow SavedModel, read without TensorFlow and without config.json: a TF1 Hub module (as
tfhub.dev/google/bert_uncased_L-12_H-768_A-12/1, made by google-research/bert's modeling.py) or a TF2 SavedModel of
TF Model Garden's BertEncoder (as tensorflow/bert_en_uncased_L-12_H-768_A-12 on TF Hub and Kaggle).

    module_config(dir)     -> {config field: value} read from the module: sizes from the variables' shapes, the
                              rest (heads, activation, mask constant, LayerNorm epsilon) from the inference graph
    module_tensors(dir)    -> {transformers name: array}, kernels as [out, in]
    module_tokenizer(dir)  -> (vocab file, do_lower_case)

What the graph computes is what minibert must compute, and Google's graphs differ from transformers' reading of
"gelu": since google-research/bert commit bee6030 ("Adding TF Hub support"), modeling.py's gelu is the tanh form,
and Model Garden's BertEncoder uses gelu(approximate=True). So the activation is read from the graph's own ops, as
the other numbers are; anything that cannot be read is an error naming it and the way to supply it, never a guess.
"""

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError
from .formats.saved_model import (
    MetaGraph,
    Node,
    attr,
    object_at,
    producer,
    read_checkpoint_object_graph,
    read_inference_graph,
)
from .formats.tf_checkpoint import DT_STRING, load_tf_checkpoint, tf_checkpoint_shapes, tf_to_hf_names
from .model_files import SAVED_MODEL, SAVED_MODEL_VARIABLES
from .untrusted import quote

# Where a config value came from, as explain reports it (config.hidden_act_source).
FROM_GRAPH = "the module's graph"

_TF1_WORD_EMBEDDINGS = "bert/embeddings/word_embeddings"
_TF2_WORD_EMBEDDINGS = "word_embeddings/embeddings"
_VARIABLE_VALUE = "VARIABLE_VALUE"

# Variables of other architectures saved the same ways, to name what was found rather than list unknown tensors.
_OTHER_ARCHITECTURES = [
    (re.compile(r"(bert/encoder/)?transformer/group_\d+/inner_group_\d+/.*|.*embedding_hidden_mapping_in.*"), "ALBERT"),
    (re.compile(r"electra/.*|discriminator_predictions/.*|generator_predictions/.*"), "ELECTRA"),
    (re.compile(r"embedding_projection/.*"), "an encoder with factorized embeddings (ALBERT or a small ELECTRA)"),
    (re.compile(r"(roberta|distilbert|xlnet)/.*"), "another architecture"),
]

# TF Model Garden's BertEncoder variables (Keras names, from the checkpoint's object graph) -> transformers' names,
# and how each is reshaped to transformers' [out, in] layout. Its attention kernels are EinsumDense kernels
# per head: query/key/value [H, N, D] (bias [N, D]) and attention_output [N, D, H].
# https://github.com/tensorflow/models/blob/v2.20.0/official/nlp/modeling/networks/bert_encoder.py
_K = r"transformer/layer_(\d+)"
KERAS_TO_HF_NAMES: list[tuple[str, str, str]] = [
    (r"word_embeddings/embeddings", r"embeddings.word_embeddings.weight", "same"),
    (r"position_embedding/embeddings", r"embeddings.position_embeddings.weight", "same"),
    (r"type_embeddings/embeddings", r"embeddings.token_type_embeddings.weight", "same"),
    (r"embeddings/layer_norm/gamma", r"embeddings.LayerNorm.weight", "same"),
    (r"embeddings/layer_norm/beta", r"embeddings.LayerNorm.bias", "same"),
    (_K + r"/self_attention/(query|key|value)/kernel", r"encoder.layer.\1.attention.self.\2.weight", "heads_in"),
    (_K + r"/self_attention/(query|key|value)/bias", r"encoder.layer.\1.attention.self.\2.bias", "flatten"),
    (_K + r"/self_attention/attention_output/kernel", r"encoder.layer.\1.attention.output.dense.weight", "heads_out"),
    (_K + r"/self_attention/attention_output/bias", r"encoder.layer.\1.attention.output.dense.bias", "same"),
    (_K + r"/self_attention_layer_norm/gamma", r"encoder.layer.\1.attention.output.LayerNorm.weight", "same"),
    (_K + r"/self_attention_layer_norm/beta", r"encoder.layer.\1.attention.output.LayerNorm.bias", "same"),
    (_K + r"/intermediate/kernel", r"encoder.layer.\1.intermediate.dense.weight", "transpose"),
    (_K + r"/intermediate/bias", r"encoder.layer.\1.intermediate.dense.bias", "same"),
    (_K + r"/output/kernel", r"encoder.layer.\1.output.dense.weight", "transpose"),
    (_K + r"/output/bias", r"encoder.layer.\1.output.dense.bias", "same"),
    (_K + r"/output_layer_norm/gamma", r"encoder.layer.\1.output.LayerNorm.weight", "same"),
    (_K + r"/output_layer_norm/beta", r"encoder.layer.\1.output.LayerNorm.bias", "same"),
    (r"pooler_transform/kernel", r"pooler.dense.weight", "transpose"),
    (r"pooler_transform/bias", r"pooler.dense.bias", "same"),
    # The masked-LM head Model Garden's TF Hub export adds (with_mlm; official/nlp/modeling/layers/masked_lm.py),
    # whose decoder is the word embeddings, as BertForMaskedLM's tied one.
    (r"(?:bert/)?cls/predictions/transform/dense/kernel", r"cls.predictions.transform.dense.weight", "transpose"),
    (r"(?:bert/)?cls/predictions/transform/dense/bias", r"cls.predictions.transform.dense.bias", "same"),
    (r"(?:bert/)?cls/predictions/transform/LayerNorm/gamma", r"cls.predictions.transform.LayerNorm.weight", "same"),
    (r"(?:bert/)?cls/predictions/transform/LayerNorm/beta", r"cls.predictions.transform.LayerNorm.bias", "same"),
    (r"(?:bert/)?cls/predictions/output_bias/bias", r"cls.predictions.bias", "same"),
]
_RESHAPES = {
    "same": lambda w: w,
    # Views, not copies: checkpoint.to_params lays each tensor out as it is used (the encoder's [out, in] weights
    # column-major, which these transposes already are, except on Intel's CPUs: checkpoint.load_order).
    "transpose": lambda w: w.T,  # [in, out] -> [out, in]
    "heads_in": lambda w: w.reshape(w.shape[0], -1).T,  # [H, N, D] -> [N*D, H]
    "flatten": lambda w: w.reshape(-1),  # [N, D] -> [N*D]
    "heads_out": lambda w: w.reshape(-1, w.shape[-1]).T,  # [N, D, H] -> [H, N*D]
}
_COMPILED_KERAS_NAMES = [(re.compile(p), r, _RESHAPES[how]) for p, r, how in KERAS_TO_HF_NAMES]
# The variables of a TF Hub SavedModel that are not weights, by their place in the object graph: the tokenizer's
# setting (an unnamed tf.Variable, "Variable"), read by module_tokenizer.
_NOT_WEIGHTS = ("do_lower_case",)


# The variables.


def _variables(directory: Path) -> Path:
    return directory / SAVED_MODEL_VARIABLES


def _keras_names(directory: Path) -> dict[str, str]:
    """{checkpoint key: the variable's Keras name} from the checkpoint's object graph (TF2); {} for a TF1 module,
    whose checkpoint keys are the variables' names."""
    prefix = _variables(directory)
    shapes = tf_checkpoint_shapes(prefix)
    if "_CHECKPOINTABLE_OBJECT_GRAPH" not in shapes:
        return {}
    names = {}
    objects = read_checkpoint_object_graph(prefix)
    for node in objects:
        if _VARIABLE_VALUE in node.attributes:
            full_name, key = node.attributes[_VARIABLE_VALUE]
            names[key] = full_name.removesuffix(":0")
    for path in _NOT_WEIGHTS:
        node = object_at(objects, path)
        if node is not None and _VARIABLE_VALUE in node.attributes:
            names.pop(node.attributes[_VARIABLE_VALUE][1], None)
    return names


def _named_shapes(directory: Path) -> tuple[str, dict[str, tuple[int, ...]]]:
    """("tf1" or "tf2", {variable name: shape}), after checking the variables are a BERT's."""
    shapes = tf_checkpoint_shapes(_variables(directory))
    keras = _keras_names(directory)
    named = {keras[key]: shape for key, (_dtype, shape) in shapes.items() if key in keras}
    if not keras:
        named = {key: shape for key, (dtype, shape) in shapes.items() if dtype != DT_STRING}
    kind = "tf2" if _TF2_WORD_EMBEDDINGS in named else "tf1" if _TF1_WORD_EMBEDDINGS in named else None
    other = next((label for pattern, label in _OTHER_ARCHITECTURES if any(map(pattern.fullmatch, named))), None)
    if kind is None or other is not None:
        listing = ", ".join(quote(name) for name in sorted(named)[:6]) + (" ..." if len(named) > 6 else "")
        what = f"they look like {other}'s" if other else "they are not a BERT's"
        raise CheckpointError(
            f"{_variables(directory)}: the SavedModel's variables are {listing}; {what}. minibert opens BERT "
            f"modules only: a TF1 Hub module with {_TF1_WORD_EMBEDDINGS!r} (google-research/bert) or a TF2 "
            f"SavedModel with {_TF2_WORD_EMBEDDINGS!r} (TF Model Garden's BertEncoder)"
        )
    return kind, named


def module_tensors(directory: Path) -> dict[str, np.ndarray]:
    """The module's weights under transformers' names, in the file's dtypes, kernels as [out, in] (transposed views;
    checkpoint.read_tensors converts and lays them out)."""
    prefix = _variables(directory)
    keras = _keras_names(directory)
    if not keras:
        return tf_to_hf_names(load_tf_checkpoint(prefix))[0]  # [1] names the optimizer state it left out
    return _keras_to_hf(load_tf_checkpoint(prefix, names=set(keras)), keras, prefix)


def _keras_to_hf(tensors: dict[str, np.ndarray], keras: dict[str, str], prefix: Path) -> dict[str, np.ndarray]:
    renamed, unknown = {}, []
    for key, tensor in tensors.items():
        name = keras[key]
        for pattern, replacement, reshape in _COMPILED_KERAS_NAMES:
            match = pattern.fullmatch(name)
            if match:
                renamed[match.expand(replacement)] = reshape(tensor)
                break
        else:
            unknown.append(name)
    if unknown:
        listing = ", ".join(quote(name) for name in sorted(unknown)[:8]) + (" ..." if len(unknown) > 8 else "")
        raise CheckpointError(
            f"{prefix}: {len(unknown)} variable(s) with no transformers name: {listing}; minibert maps TF Model "
            "Garden's BertEncoder (word_embeddings, transformer/layer_<i>/..., pooler_transform)"
        )
    return renamed


# The config.


def module_config(directory: Path) -> dict[str, Any]:
    """BertConfig's fields as the module holds them: the sizes from its variables' shapes, and from its inference
    graph the number of heads, the activation, the attention mask's constant and LayerNorm's epsilon."""
    kind, shapes = _named_shapes(directory)
    graph = read_inference_graph(directory / SAVED_MODEL)
    if kind == "tf1":
        values = _tf1_sizes(shapes)
        scopes = [_scope(graph.nodes, "bert/")]
        layers = [_scope(graph.nodes, f"bert/encoder/layer_{i}/") for i in range(values["num_hidden_layers"])]
        values["num_attention_heads"] = _tf1_heads(graph, values, directory)
    else:
        values = _tf2_sizes(shapes)
        scopes = layers = [(nodes, list(nodes)) for nodes in _reachable_functions(graph, directory)]
    where = directory / SAVED_MODEL
    values["hidden_act"] = _activation(layers, where)
    values["attention_mask_value"] = _single_value(_mask_values(scopes, where), "the attention mask's constant", where)
    values["layer_norm_eps"] = _single_value(_epsilons(scopes, where), "LayerNorm's epsilon", where)
    return values


def _tf1_sizes(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """google-research/bert's variables: bert/embeddings/*, bert/encoder/layer_<i>/*."""
    vocab_size, hidden_size = _shape(shapes, "bert/embeddings/word_embeddings", 2)
    layers = {int(m.group(1)) for name in shapes if (m := re.match(r"bert/encoder/layer_(\d+)/", name))}
    return {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": len(layers),
        "intermediate_size": _shape(shapes, "bert/encoder/layer_0/intermediate/dense/kernel", 2)[1],
        "max_position_embeddings": _shape(shapes, "bert/embeddings/position_embeddings", 2)[0],
        "type_vocab_size": _shape(shapes, "bert/embeddings/token_type_embeddings", 2)[0],
    }


def _tf2_sizes(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Model Garden's BertEncoder variables; the heads from the query kernel [H, N, D]."""
    vocab_size, hidden_size = _shape(shapes, "word_embeddings/embeddings", 2)
    layers = {int(m.group(1)) for name in shapes if (m := re.match(r"transformer/layer_(\d+)/", name))}
    return {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": len(layers),
        "num_attention_heads": _shape(shapes, "transformer/layer_0/self_attention/query/kernel", 3)[1],
        "intermediate_size": _shape(shapes, "transformer/layer_0/intermediate/kernel", 2)[1],
        "max_position_embeddings": _shape(shapes, "position_embedding/embeddings", 2)[0],
        "type_vocab_size": _shape(shapes, "type_embeddings/embeddings", 2)[0],
    }


def _shape(shapes: dict[str, tuple[int, ...]], name: str, rank: int) -> tuple[int, ...]:
    if name not in shapes or len(shapes[name]) != rank:
        found = f"shape {quote(shapes[name])}" if name in shapes else "no such variable"
        raise CheckpointError(
            f"{SAVED_MODEL_VARIABLES}: the module's variable {name!r} is needed with {rank} dimensions to read the "
            f"config; found {found}. The module is not a whole BERT (write its config.json beside saved_model.pb)"
        )
    return shapes[name]


def _scope(nodes: dict[str, Node], prefix: str) -> tuple[dict[str, Node], list[str]]:
    """(every node, for resolving inputs; the names of those under `prefix`)."""
    return nodes, [name for name in nodes if name.startswith(prefix)]


def _reachable_functions(graph: MetaGraph, directory: Path) -> list[dict[str, Node]]:
    """The bodies of the functions the SavedModel's serving signature runs (TF2): from the graph's call nodes named
    by serving_default's outputs, each function's calls followed (the `f` attribute of PartitionedCall and
    StatefulPartitionedCall), every function once."""
    path = directory / SAVED_MODEL
    signature = graph.signatures.get("serving_default")
    if signature is None:
        raise CheckpointError(
            f"{path}: has no 'serving_default' signature (it has {quote(sorted(graph.signatures))}); minibert reads "
            "the computation a TF2 SavedModel serves, and a TF Hub BERT's SavedModel has that signature"
        )
    pending = [
        attr(graph.nodes[producer(t)], "f", path) for t in signature.outputs.values() if producer(t) in graph.nodes
    ]
    seen: dict[str, dict[str, Node]] = {}
    while pending:
        name = pending.pop()
        if not isinstance(name, str) or name in seen or name not in graph.functions:
            continue
        seen[name] = graph.functions[name]
        pending += [attr(node, "f", path) for node in seen[name].values() if node.op.endswith("PartitionedCall")]
    if not seen:
        raise CheckpointError(f"{path}: serving_default's outputs come from no function of the graph's library")
    return list(seen.values())


def _const(nodes: dict[str, Node], tensor: str, path: Path):
    """The value of `tensor` if a Const node makes it (through Identity nodes), else None."""
    node = nodes.get(producer(tensor))
    for _ in range(8):  # a chain of Identity nodes is short; a cycle of them must not hang
        if node is None or node.op != "Identity" or not node.inputs:
            break
        node = nodes.get(producer(node.inputs[0]))
    if node is None or node.op != "Const":
        return None
    return attr(node, "value", path)


def _scalar(nodes: dict[str, Node], tensor: str, path: Path) -> float | None:
    value = _const(nodes, tensor, path)
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "fi":
        return value.item()
    return None


def _tf1_heads(graph: MetaGraph, sizes: dict[str, Any], directory: Path) -> int:
    """N from modeling.py's transpose_for_scores: attention/self/Reshape* to [B, S, N, D], whose shape is a Const of
    four, or (batch and sequence dynamic) a Pack of four whose last two are Consts. Every layer's must agree."""
    path = directory / SAVED_MODEL
    found = set()
    for name in _scope(graph.nodes, "bert/encoder/layer_")[1]:
        node = graph.nodes[name]
        if node.op != "Reshape" or "/attention/self/" not in name or len(node.inputs) < 2:
            continue
        shape = _const(graph.nodes, node.inputs[1], path)
        if isinstance(shape, np.ndarray) and shape.shape == (4,):
            dims = [int(v) for v in shape[2:]]
        else:
            pack = graph.nodes.get(producer(node.inputs[1]))
            if pack is None or pack.op != "Pack" or len(pack.inputs) != 4:
                continue
            dims = [_scalar(graph.nodes, tensor, path) for tensor in pack.inputs[2:]]
        if None not in dims and dims[0] * dims[1] == sizes["hidden_size"]:
            found.add(int(dims[0]))
    return int(_single_value(found, "the number of attention heads (a Reshape to [B, S, N, D])", path))


# What the graph computes: activation, mask constant, epsilon.

GELU_TANH_COEFFICIENT = 0.044715  # x + 0.044715 x^3, in both modeling.py's gelu and tf.nn.gelu(approximate=True)


def _activation(layers: list[tuple[dict[str, Node], list[str]]], path: Path) -> str:
    """ "gelu" if the intermediate layers compute erf (an Erf op), "gelu_new" if they compute the tanh form (Tanh of
    a polynomial with Pow(x, 3) and 0.044715), as transformers names the two; anything else is refused."""
    found = set()
    for nodes, names in layers:
        ops = {nodes[name].op for name in names}
        if "Erf" in ops:
            found.add("gelu")
        if "Tanh" in ops and "Pow" in ops:
            cubes = [
                nodes[name]
                for name in names
                if nodes[name].op == "Pow" and _scalar(nodes, nodes[name].inputs[1], path) == 3
            ]
            coefficients = [
                nodes[name]
                for name in names
                if nodes[name].op == "Const"
                and math.isclose(_scalar(nodes, name, path) or 0.0, GELU_TANH_COEFFICIENT, rel_tol=1e-6)
            ]
            if not cubes or not coefficients:
                raise CheckpointError(
                    f"{path}: the intermediate layer has Tanh and Pow ops but not GELU's x^3 and 0.044715; minibert "
                    "cannot say what it computes. Pass hidden_act= to from_pretrained (--hidden-act) to choose"
                )
            found.add("gelu_new")
    return _single_value(found, "the activation (an Erf op for exact GELU, Tanh with Pow for its tanh form)", path)


def _mask_values(scopes: list[tuple[dict[str, Node], list[str]]], path: Path) -> set[float]:
    """The constant c of `(1.0 - cast(mask)) * c`, the additive attention mask modeling.py and Model Garden's
    MaskedSoftmax build: a Mul of a Sub from 1.0 and a scalar Const."""
    found = set()
    for nodes, names in scopes:
        for name in names:
            node = nodes[name]
            if node.op != "Mul" or len(node.inputs) != 2:
                continue
            for sub_input, const_input in (node.inputs, node.inputs[::-1]):
                sub = nodes.get(producer(sub_input))
                value = _scalar(nodes, const_input, path)
                if sub is not None and sub.op == "Sub" and value is not None and value < 0:
                    if sub.inputs and _scalar(nodes, sub.inputs[0], path) == 1.0:
                        found.add(float(np.float32(value)))
    return found


def _epsilons(scopes: list[tuple[dict[str, Node], list[str]]], path: Path) -> set[float]:
    """LayerNorm's epsilon: the scalar added to the variance before Rsqrt (tf.nn.batch_normalization, as modeling.py's
    layer_norm and Keras' LayerNormalization call it), or a FusedBatchNorm's `epsilon` attribute."""
    found = set()
    for nodes, names in scopes:
        for name in names:
            node = nodes[name]
            if node.op.startswith("FusedBatchNorm"):
                found.add(attr(node, "epsilon", path))
            elif node.op == "Rsqrt" and node.inputs:
                add = nodes.get(producer(node.inputs[0]))
                if add is not None and add.op in ("Add", "AddV2"):
                    values = [_scalar(nodes, tensor, path) for tensor in add.inputs]
                    found.update(v for v in values if v is not None)
    return {float(str(np.float32(value))) for value in found}  # the float32 the graph adds, written shortest


def _single_value(found: set, what: str, path: Path):
    if len(found) != 1:
        how = "found none" if not found else f"found several: {quote(sorted(found))}"
        override = (
            "pass hidden_act= to from_pretrained (--hidden-act on the command line)"
            if "activation" in what
            else "write the config beside saved_model.pb as config.json (then it is read instead of the graph)"
        )
        raise CheckpointError(f"{path}: cannot read {what} from the inference graph: {how}. To supply it, {override}")
    return next(iter(found))


# The tokenizer.


def module_tokenizer(directory: Path) -> tuple[Path, bool, int]:
    """(the vocabulary file under assets/, do_lower_case, the number of positions), as the module says: TF1 in its
    `tokenization_info` signature (outputs vocab_file, an asset, and do_lower_case, a Const); TF2 in its tracked
    `vocab_file` asset and `do_lower_case` variable; the positions from the position embeddings' shape."""
    path = directory / SAVED_MODEL
    graph = read_inference_graph(path)
    if graph.object_graph:
        asset = object_at(graph.object_graph, "vocab_file")
        if asset is None or asset.kind != "asset" or not 0 <= (asset.asset_index or 0) < len(graph.asset_files):
            raise CheckpointError(f"{path}: the SavedModel tracks no 'vocab_file' asset; a TF Hub BERT's does")
        vocab = graph.asset_files[asset.asset_index or 0][1]
        do_lower_case = _tf2_do_lower_case(directory)
    else:
        info = graph.signatures.get("tokenization_info")
        if info is None or not {"vocab_file", "do_lower_case"} <= set(info.outputs):
            raise CheckpointError(
                f"{path}: has no 'tokenization_info' signature with vocab_file and do_lower_case (its signatures: "
                f"{quote(sorted(graph.signatures))}); Google's BERT modules have one"
            )
        vocab = next((name for tensor, name in graph.asset_files if tensor == info.outputs["vocab_file"]), None)
        if vocab is None:
            raise CheckpointError(f"{path}: tokenization_info's vocab_file is not one of the module's assets")
        lower = _const(graph.nodes, info.outputs["do_lower_case"], path)
        if not isinstance(lower, np.ndarray) or lower.dtype != np.bool_ or lower.size != 1:
            raise CheckpointError(f"{path}: tokenization_info's do_lower_case is not a boolean constant")
        do_lower_case = bool(lower.item())
    if Path(vocab).name != vocab or vocab in ("", ".", ".."):
        raise CheckpointError(f"{path}: the vocabulary asset is {quote(vocab)}; expected a file name under assets/")
    kind, shapes = _named_shapes(directory)
    positions = _shape(
        shapes, "bert/embeddings/position_embeddings" if kind == "tf1" else "position_embedding/embeddings", 2
    )
    return directory / "assets" / vocab, do_lower_case, positions[0]


def _tf2_do_lower_case(directory: Path) -> bool:
    prefix = _variables(directory)
    node = object_at(read_checkpoint_object_graph(prefix), "do_lower_case")
    if node is None or _VARIABLE_VALUE not in node.attributes:
        raise CheckpointError(f"{prefix}: the SavedModel has no 'do_lower_case' variable; a TF Hub BERT's has one")
    key = node.attributes[_VARIABLE_VALUE][1]
    value = load_tf_checkpoint(prefix, names={key}).get(key)
    if value is None or value.dtype != np.bool_ or value.size != 1:
        raise CheckpointError(f"{prefix}: the do_lower_case variable ({quote(key)}) is not one boolean")
    return bool(value.item())
