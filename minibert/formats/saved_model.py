"""Read a TensorFlow SavedModel's saved_model.pb without TensorFlow or the protobuf package: the meta graph a model is
run with, its nodes, functions, signatures and assets, and the object graphs of TF2 (the SavedModel's, and the
variables checkpoint's `_CHECKPOINTABLE_OBJECT_GRAPH`).

    read_inference_graph(Path("module/saved_model.pb")) -> MetaGraph (the meta graph whose tags lack "train")
    read_checkpoint_object_graph(Path("module/variables/variables")) -> [ObjectNode] (node 0 is the root)

Both a TF1 Hub module (hub.Module's format: saved_model.pb with a tag set for inference and one with "train",
tfhub_module.pb, variables/, assets/) and a TF2 SavedModel (tf.saved_model.save: functions in the graph's library, an
object graph) are SavedModels. The messages and their field numbers are TensorFlow's (fields are never renumbered):
https://github.com/tensorflow/tensorflow/tree/master/tensorflow/core/protobuf saved_model.proto, meta_graph.proto,
saved_object_graph.proto, trackable_object_graph.proto, and .../core/framework graph.proto, node_def.proto,
function.proto, attr_value.proto, tensor.proto, tensor_shape.proto. Only the fields minibert uses are read; the wire
format is tf_checkpoint.proto_fields'. Checked on SavedModels written by TensorFlow 2.21 (weights/tf_hub/).

saved_model.pb comes from strangers. Nothing here recurses on the file's nesting (each message type is read by its
own function, to the depth the schema has), every length is checked against the bytes that exist, the number of
fields read from one file is bounded, and a constant is decoded only if it is small (minibert reads scalars and
shape vectors from a graph, never weights).
"""

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from ..untrusted import quote, read_bounded
from .tf_checkpoint import _TF_DTYPES, DT_STRING, _read_varint, proto_fields, read_string_tensor

# Protobuf refuses messages of 2 GiB or more, so TensorFlow cannot write a larger saved_model.pb.
MAX_SAVED_MODEL_BYTES = 2**31 - 1
# Fields read from one file, all messages together: a bound on the Python objects a hostile file can make us build
# (each kept one costs ~100 bytes). Measured: all-MiniLM-L6-v2 (6 layers) as a TF1 module 10,134 fields, as Model
# Garden's TF2 SavedModel 76,209 (2.2 MB, read in 0.67 s on a Zen 4 core); a 24-layer BERT-large about 4 times that.
MAX_FIELDS = 4_000_000
MAX_DIMS = 64  # NumPy's limit, as for checkpoints
# The constants minibert decodes are scalars and shape vectors; anything larger is never read from a graph.
MAX_CONST_ELEMENTS = 4096
CHECKPOINT_OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"  # the key tf.train.Checkpoint stores its object graph under


@dataclass(frozen=True)
class Node:
    """A NodeDef: name, op and inputs as written ("name", "name:1", "^control", in functions "name:output:0"), and
    the message itself, whose attributes `attr` reads when asked."""

    name: str
    op: str
    inputs: tuple[str, ...]
    raw: memoryview = field(repr=False)


@dataclass(frozen=True)
class Signature:
    """A SignatureDef: input and output keys -> tensor names ("bert/pooler/dense/Tanh:0")."""

    inputs: dict[str, str]
    outputs: dict[str, str]


@dataclass(frozen=True)
class ObjectNode:
    """One node of an object graph (SavedObjectGraph or the checkpoint's TrackableObjectGraph): its children by local
    name -> node id (checked to be a node of the graph), what kind of object it is, and what that kind carries."""

    children: dict[str, int]
    kind: str  # "user_object", "asset", "function", "variable", ...; "" in a checkpoint's graph
    asset_index: int | None = None  # SavedAsset: an index into MetaGraph.asset_files
    variable_name: str | None = None  # SavedVariable.name
    attributes: dict[str, tuple[str, str]] = field(default_factory=dict)  # checkpoint: name -> (full_name, key)


@dataclass
class MetaGraph:
    """The parts of a MetaGraphDef minibert reads."""

    tags: frozenset[str]
    nodes: dict[str, Node]  # the GraphDef's nodes by name
    functions: dict[str, dict[str, Node]]  # the function library: function name -> its nodes by name
    signatures: dict[str, Signature]
    asset_files: list[tuple[str, str]]  # AssetFileDefs: (tensor name, file name under assets/)
    object_graph: list[ObjectNode]  # TF2's SavedObjectGraph; empty for a TF1 graph


_SAVED_OBJECT_KINDS = {4: "user_object", 5: "asset", 6: "function", 7: "variable", 8: "bare_concrete_function"}
_SAVED_OBJECT_KINDS |= {9: "constant", 10: "resource", 12: "captured_tensor"}


class _Reader:
    """The fields of one file's messages, counted against MAX_FIELDS, with errors naming the file."""

    def __init__(self, path: Path):
        self.path = path
        self.budget = MAX_FIELDS

    def fields(self, buf: memoryview, what: str):
        for item in proto_fields(buf, self.path, what):
            self.budget -= 1
            if self.budget < 0:
                raise CheckpointError(
                    f"{self.path}: holds more than {MAX_FIELDS} protobuf fields, far more than any model's graph; "
                    "it is corrupt or not a SavedModel"
                )
            yield item

    def message(self, wire_type: int, value, what: str) -> memoryview:
        if wire_type != 2:
            raise CheckpointError(f"{self.path}: {what} has the wrong wire type (expected a message); it is corrupt")
        return value

    def string(self, wire_type: int, value, what: str) -> str:
        return bytes(self.message(wire_type, value, what)).decode("utf-8", "replace")

    def number(self, wire_type: int, value, what: str) -> int:
        if wire_type == 2:
            raise CheckpointError(f"{self.path}: {what} has the wrong wire type (expected a number); it is corrupt")
        return value

    def map_entry(self, buf: memoryview, what: str) -> tuple[str, memoryview]:
        """A map<string, Message> entry: key=1, value=2."""
        key, value = "", memoryview(b"")
        for number, wire_type, item in self.fields(buf, what):
            if number == 1:
                key = self.string(wire_type, item, what)
            elif number == 2:
                value = self.message(wire_type, item, what)
        return key, value

    def error(self, message: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: {message}")


# saved_model.pb -> the inference meta graph.


def read_inference_graph(path: Path) -> MetaGraph:
    """The meta graph of saved_model.pb a model is run with: the one whose tag set lacks "train" (a TF1 Hub module
    also holds the training graph, with dropout; a TF2 SavedModel has one meta graph, tagged "serve")."""
    reader = _Reader(path)
    view = memoryview(read_bounded(path, MAX_SAVED_MODEL_BYTES))
    metas = [
        reader.message(wire_type, value, "meta_graphs")
        for number, wire_type, value in reader.fields(view, "SavedModel")
        if number == 2  # SavedModel.meta_graphs
    ]
    if not metas:
        raise reader.error("holds no meta graph; is it a SavedModel's saved_model.pb?")
    tags = [_meta_graph_tags(reader, meta) for meta in metas]
    inference = [i for i, tag_set in enumerate(tags) if "train" not in tag_set]
    if len(inference) > 1:  # prefer the one a loader asks for by default
        inference = [i for i in inference if tags[i] in (frozenset(), frozenset({"serve"}))][:1] or inference
    if len(inference) != 1:
        found = ", ".join(quote(sorted(tag_set)) for tag_set in tags)
        raise reader.error(
            f"has meta graphs tagged {found}; minibert reads the one inference graph (a tag set without 'train'), "
            f"and found {len(inference)}"
        )
    return _meta_graph(reader, metas[inference[0]], tags[inference[0]])


def _meta_graph_tags(reader: _Reader, meta: memoryview) -> frozenset[str]:
    tags = set()
    for number, wire_type, value in reader.fields(meta, "MetaGraphDef"):
        if number == 1:  # meta_info_def
            for n, w, v in reader.fields(reader.message(wire_type, value, "meta_info_def"), "MetaInfoDef"):
                if n == 4:  # tags
                    tags.add(reader.string(w, v, "meta_info_def.tags"))
    return frozenset(tags)


def _meta_graph(reader: _Reader, meta: memoryview, tags: frozenset[str]) -> MetaGraph:
    graph = MetaGraph(tags, {}, {}, {}, [], [])
    for number, wire_type, value in reader.fields(meta, "MetaGraphDef"):
        if number == 2:  # graph_def
            _graph_def(reader, reader.message(wire_type, value, "graph_def"), graph)
        elif number == 4:  # collection_def: TF1 writers list assets in the "saved_model_assets" collection
            name, collection = reader.map_entry(reader.message(wire_type, value, "collection_def"), "collection_def")
            if name == "saved_model_assets":
                graph.asset_files += _asset_collection(reader, collection)
        elif number == 5:  # signature_def
            name, signature = reader.map_entry(reader.message(wire_type, value, "signature_def"), "signature_def")
            graph.signatures[name] = _signature(reader, signature, name)
        elif number == 6:  # asset_file_def
            graph.asset_files.append(_asset_file(reader, reader.message(wire_type, value, "asset_file_def")))
        elif number == 7:  # object_graph_def
            graph.object_graph = _saved_object_graph(reader, reader.message(wire_type, value, "object_graph_def"))
    return graph


def _graph_def(reader: _Reader, buf: memoryview, graph: MetaGraph) -> None:
    """GraphDef: node=1, library=2 (FunctionDefLibrary: function=1)."""
    for number, wire_type, value in reader.fields(buf, "GraphDef"):
        if number == 1:
            node = _node(reader, reader.message(wire_type, value, "graph_def.node"))
            graph.nodes[node.name] = node
        elif number == 2:
            for n, w, v in reader.fields(reader.message(wire_type, value, "graph_def.library"), "library"):
                if n == 1:
                    name, nodes = _function(reader, reader.message(w, v, "library.function"))
                    graph.functions[name] = nodes


def _node(reader: _Reader, buf: memoryview) -> Node:
    """NodeDef: name=1, op=2, input=3, attr=5 (read by `attr` when asked)."""
    name, op, inputs = "", "", []
    for number, wire_type, value in reader.fields(buf, "NodeDef"):
        if number == 1:
            name = reader.string(wire_type, value, "NodeDef.name")
        elif number == 2:
            op = reader.string(wire_type, value, "NodeDef.op")
        elif number == 3:
            inputs.append(reader.string(wire_type, value, "NodeDef.input"))
    return Node(name, op, tuple(inputs), buf)


def _function(reader: _Reader, buf: memoryview) -> tuple[str, dict[str, Node]]:
    """FunctionDef: signature=1 (OpDef: name=1), node_def=3."""
    name, nodes = "", {}
    for number, wire_type, value in reader.fields(buf, "FunctionDef"):
        if number == 1:
            for n, w, v in reader.fields(reader.message(wire_type, value, "FunctionDef.signature"), "OpDef"):
                if n == 1:
                    name = reader.string(w, v, "OpDef.name")
        elif number == 3:
            node = _node(reader, reader.message(wire_type, value, "FunctionDef.node_def"))
            nodes[node.name] = node
    return name, nodes


def _signature(reader: _Reader, buf: memoryview, name: str) -> Signature:
    """SignatureDef: inputs=1, outputs=2 (map<string, TensorInfo>; TensorInfo.name=1)."""
    inputs, outputs = {}, {}
    for number, wire_type, value in reader.fields(buf, f"signature {name}"):
        if number in (1, 2):
            key, info = reader.map_entry(reader.message(wire_type, value, "SignatureDef"), "SignatureDef")
            (inputs if number == 1 else outputs)[key] = _tensor_info_name(reader, info)
    return Signature(inputs, outputs)


def _tensor_info_name(reader: _Reader, buf: memoryview) -> str:
    for number, wire_type, value in reader.fields(buf, "TensorInfo"):
        if number == 1:
            return reader.string(wire_type, value, "TensorInfo.name")
    return ""


def _asset_file(reader: _Reader, buf: memoryview) -> tuple[str, str]:
    """AssetFileDef: tensor_info=1, filename=2."""
    tensor, filename = "", ""
    for number, wire_type, value in reader.fields(buf, "AssetFileDef"):
        if number == 1:
            tensor = _tensor_info_name(reader, reader.message(wire_type, value, "AssetFileDef.tensor_info"))
        elif number == 2:
            filename = reader.string(wire_type, value, "AssetFileDef.filename")
    return tensor, filename


def _asset_collection(reader: _Reader, buf: memoryview) -> list[tuple[str, str]]:
    """CollectionDef.any_list=5 (AnyList.value=1: Any {type_url=1, value=2}) of AssetFileDefs."""
    assets = []
    for number, wire_type, value in reader.fields(buf, "CollectionDef"):
        if number == 5:
            for n, w, v in reader.fields(reader.message(wire_type, value, "any_list"), "AnyList"):
                if n == 1:
                    for n2, w2, v2 in reader.fields(reader.message(w, v, "Any"), "Any"):
                        if n2 == 2:
                            assets.append(_asset_file(reader, reader.message(w2, v2, "Any.value")))
    return assets


# Object graphs.


def _saved_object_graph(reader: _Reader, buf: memoryview) -> list[ObjectNode]:
    """SavedObjectGraph: nodes=1 (SavedObject: children=1, then the kind of object, one of fields 4-12)."""
    nodes = []
    for number, wire_type, value in reader.fields(buf, "SavedObjectGraph"):
        if number != 1:
            continue
        children, kind, asset_index, variable_name = {}, "", None, None
        for n, w, v in reader.fields(reader.message(wire_type, value, "SavedObject"), "SavedObject"):
            if n == 1:
                local_name, node_id = _object_reference(reader, reader.message(w, v, "children"))
                children[local_name] = node_id
            elif n in _SAVED_OBJECT_KINDS:
                kind = _SAVED_OBJECT_KINDS[n]
                for n2, w2, v2 in reader.fields(reader.message(w, v, kind), kind):
                    if kind == "asset" and n2 == 1:  # SavedAsset.asset_file_def_index
                        asset_index = reader.number(w2, v2, "asset_file_def_index")
                    elif kind == "variable" and n2 == 6:  # SavedVariable.name
                        variable_name = reader.string(w2, v2, "SavedVariable.name")
        nodes.append(ObjectNode(children, kind, asset_index, variable_name))
    return _check_references(reader, nodes, "the SavedModel's object graph")


def read_checkpoint_object_graph(prefix: Path) -> list[ObjectNode]:
    """The TrackableObjectGraph tf.train.Checkpoint saves beside the variables (a TF2 SavedModel's variables/): each
    node's children and its attributes, name -> (full_name, checkpoint_key). A variable's node has the attribute
    "VARIABLE_VALUE", whose full_name is the variable's own name ("transformer/layer_0/self_attention/query/kernel")
    and whose checkpoint_key is the key its value is stored under."""
    elements = read_string_tensor(prefix, CHECKPOINT_OBJECT_GRAPH)
    path = prefix.with_name(prefix.name + ".index")
    if len(elements) != 1:
        raise CheckpointError(f"{path}: {CHECKPOINT_OBJECT_GRAPH} holds {len(elements)} strings; expected one")
    reader = _Reader(path)
    nodes = []
    for number, wire_type, value in reader.fields(memoryview(elements[0]), CHECKPOINT_OBJECT_GRAPH):
        if number != 1:  # TrackableObjectGraph.nodes
            continue
        children, attributes = {}, {}
        for n, w, v in reader.fields(reader.message(wire_type, value, "TrackableObject"), "TrackableObject"):
            if n == 1:
                local_name, node_id = _object_reference(reader, reader.message(w, v, "children"))
                children[local_name] = node_id
            elif n == 2:  # SerializedTensor: name=1, full_name=2, checkpoint_key=3
                strings = {1: "", 2: "", 3: ""}
                for n2, w2, v2 in reader.fields(reader.message(w, v, "attributes"), "SerializedTensor"):
                    if n2 in strings:
                        strings[n2] = reader.string(w2, v2, "SerializedTensor")
                attributes[strings[1]] = (strings[2], strings[3])
        nodes.append(ObjectNode(children, "", attributes=attributes))
    return _check_references(reader, nodes, CHECKPOINT_OBJECT_GRAPH)


def _object_reference(reader: _Reader, buf: memoryview) -> tuple[str, int]:
    """ObjectReference: node_id=1, local_name=2."""
    node_id, local_name = 0, ""
    for number, wire_type, value in reader.fields(buf, "ObjectReference"):
        if number == 1:
            node_id = reader.number(wire_type, value, "ObjectReference.node_id")
        elif number == 2:
            local_name = reader.string(wire_type, value, "ObjectReference.local_name")
    return local_name, node_id


def _check_references(reader: _Reader, nodes: list[ObjectNode], what: str) -> list[ObjectNode]:
    """Every child reference must name a node of the graph (a cycle is harmless: nothing here walks the graph
    without a path to follow)."""
    for i, node in enumerate(nodes):
        for local_name, node_id in node.children.items():
            if not 0 <= node_id < len(nodes):
                raise reader.error(
                    f"{what}: node {i}'s child {quote(local_name)} refers to node {quote(node_id)}; the graph has "
                    f"{len(nodes)} nodes. The file is corrupt"
                )
    return nodes


def object_at(nodes: list[ObjectNode], path: str) -> ObjectNode | None:
    """The node reached from the root (node 0) by the local names of `path` ("do_lower_case", "a/b"), or None."""
    if not nodes:
        return None
    node = nodes[0]
    for part in path.split("/"):
        if part not in node.children:
            return None
        node = nodes[node.children[part]]
    return node


# Attributes and constants.


def producer(tensor: str) -> str:
    """The node that makes `tensor`: "name:1" -> "name", "^name" (a control input) -> "name", and in a function's
    body "name:output:0" -> "name"."""
    return tensor.lstrip("^").split(":", 1)[0]


def attr(node: Node, key: str, path: Path):
    """The AttrValue `key` of `node`, decoded: an int, float, bool, str (a string or a function's name), a DataType
    code, an ndarray (a tensor, or a list of numbers), or None if the node has no such attribute.
    AttrValue: list=1, s=2, i=3, f=4, b=5, type=6, shape=7, tensor=8, func=10 (NameAttrList.name=1)."""
    reader = _Reader(path)
    what = f"node {quote(node.name)} attribute {quote(key)}"
    for number, wire_type, value in reader.fields(node.raw, "NodeDef"):
        if number != 5:
            continue
        name, attr_value = reader.map_entry(reader.message(wire_type, value, what), what)
        if name != key:
            continue
        for n, w, v in reader.fields(attr_value, what):
            if n == 2:
                return bytes(reader.message(w, v, what)).decode("utf-8", "replace")
            if n in (3, 6):
                return _int64(reader.number(w, v, what))
            if n == 4:
                if w != 5:
                    raise reader.error(f"{what} is a float of the wrong wire type ({w}); the file is corrupt")
                return struct.unpack("<f", v.to_bytes(4, "little"))[0]
            if n == 5:
                return bool(reader.number(w, v, what))
            if n == 8:
                return tensor_value(reader, reader.message(w, v, what), what)
            if n == 10:
                for n2, w2, v2 in reader.fields(reader.message(w, v, what), what):
                    if n2 == 1:
                        return reader.string(w2, v2, what)
                return ""
        return None
    return None


def tensor_value(reader: _Reader, buf: memoryview, what: str) -> np.ndarray | list[bytes]:
    """A TensorProto's value: an array of its dtype and shape (a list of bytes for strings). TensorProto: dtype=1,
    tensor_shape=2, tensor_content=4 (raw little-endian bytes), or the typed values float_val=5, double_val=6,
    int_val=7, string_val=8, int64_val=10, bool_val=11, half_val=13; one typed value stands for every element."""
    dtype_code, shape, content, values, strings = 0, (), None, [], []
    for number, wire_type, value in reader.fields(buf, what):
        if number == 1:
            dtype_code = reader.number(wire_type, value, what)
        elif number == 2:
            shape = _shape(reader, reader.message(wire_type, value, what), what)
        elif number == 4:
            content = bytes(reader.message(wire_type, value, what))
        elif number == 8:
            strings.append(bytes(reader.message(wire_type, value, what)))
        elif number in (5, 6, 7, 10, 11, 13):
            values += _scalars(reader, number, wire_type, value, what)
    numel = int(np.prod(shape, dtype=object)) if shape else 1
    if numel > MAX_CONST_ELEMENTS:
        raise reader.error(
            f"{what} is a constant of shape {quote(shape)}; minibert reads only constants of at most "
            f"{MAX_CONST_ELEMENTS} elements from a graph (scalars and shapes), so the file is corrupt or not a BERT's"
        )
    if dtype_code == DT_STRING:
        return strings
    dtype = _TF_DTYPES.get(dtype_code)
    if dtype is None:
        raise reader.error(f"{what} has TF DataType {dtype_code}, which minibert cannot read")
    if content is not None:
        if len(content) != numel * dtype.itemsize:
            raise reader.error(f"{what}: {len(content)} bytes of content for shape {quote(shape)}; it is corrupt")
        return np.frombuffer(content, dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    if len(values) not in (0, 1, numel):
        raise reader.error(f"{what}: {len(values)} values for shape {quote(shape)}; it is corrupt")
    if not values:  # proto3: a tensor whose values are all zero may hold none
        return np.zeros(shape, dtype)
    if any(isinstance(v, float) for v in values):  # float_val, double_val
        array = np.array(values, dtype=np.float64)
    else:  # int_val, int64_val, bool_val; half_val holds a float16's bits
        array = np.array([_int64(int(v)) for v in values], dtype=np.int64)
        if dtype_code == 19:
            array = array.astype(np.uint16).view(np.float16)
    with np.errstate(all="ignore"):  # a value out of the dtype's range wraps or saturates, as TensorFlow's cast
        array = array.astype(dtype)
    return (array if len(values) == numel else np.full(numel, array[0], dtype)).reshape(shape)


def _shape(reader: _Reader, buf: memoryview, what: str) -> tuple[int, ...]:
    """TensorShapeProto: dim=2 (size=1), unknown_rank=3."""
    dims = []
    for number, wire_type, value in reader.fields(buf, what):
        if number == 2:
            size = 0
            for n, w, v in reader.fields(reader.message(wire_type, value, what), what):
                if n == 1:
                    size = _int64(reader.number(w, v, what))
            dims.append(size)
            if len(dims) > MAX_DIMS:
                raise reader.error(f"{what} has more than {MAX_DIMS} dimensions; it is corrupt")
        elif number == 3 and value:
            raise reader.error(f"{what} has an unknown rank; a constant's shape must be known")
    if any(size < 0 for size in dims):
        raise reader.error(f"{what} has shape {quote(tuple(dims))}; a constant's sizes are known")
    return tuple(dims)


def _scalars(reader: _Reader, number: int, wire_type: int, value, what: str) -> list:
    """The values of a repeated numeric field, packed (wire type 2) or one per field; floats as floats."""
    fixed = {5: "<f", 6: "<d"}.get(number)
    if wire_type != 2:
        if fixed and wire_type != {5: 5, 6: 1}[number]:
            raise reader.error(f"{what}: field {number} has the wrong wire type ({wire_type}); it is corrupt")
        if fixed:
            return [struct.unpack(fixed, value.to_bytes(struct.calcsize(fixed), "little"))[0]]
        return [value]
    data = bytes(value)
    if fixed:
        if len(data) % struct.calcsize(fixed):
            raise reader.error(f"{what}: packed values of {len(data)} bytes; it is corrupt")
        return [float(v) for v in np.frombuffer(data, fixed)]
    values, pos = [], 0
    while pos < len(data):
        item, pos = _read_varint(data, pos, reader.path)
        values.append(item)
        if len(values) > MAX_CONST_ELEMENTS:
            raise reader.error(f"{what} holds more than {MAX_CONST_ELEMENTS} values; minibert reads small constants")
    return values


def _int64(value: int) -> int:
    """Varints carry negative int32 and int64 values as their 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value
