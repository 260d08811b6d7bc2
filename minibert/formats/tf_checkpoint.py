"""Read a TensorFlow checkpoint (tensor bundle) into NumPy arrays without TensorFlow, and rename Google
BERT's variables to transformers' BertModel state-dict keys.

A checkpoint `<prefix>` is `<prefix>.index` plus data shards `<prefix>.data-00000-of-0000N`. Sources of truth:
- The index is an SSTable in LevelDB's format (TF's copy lives in tsl/lib/io/table*), see
  https://github.com/google/leveldb/blob/main/doc/table_format.md: blocks of prefix-compressed key/value
  entries with restart points, each followed by a 1-byte compression type and a masked crc32c; an index
  block of handles to them; a 48-byte footer ending in the magic number 0xdb4775248b80fb57.
- Its keys are tensor names and its values serialized protobufs, defined in
  https://github.com/tensorflow/tensorflow/blob/master/tensorflow/core/protobuf/tensor_bundle.proto:
  the empty key holds a BundleHeaderProto (num_shards, endianness); every other key a BundleEntryProto
  (dtype, shape, shard_id, offset, size, crc32c) saying where the tensor's raw bytes lie.
  Protobuf's wire format: https://protobuf.dev/programming-guides/encoding/.
"""

import logging
import math
import os
import re
import struct
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from ..untrusted import check_extent, quote, regular_file_size
from .dtypes import bfloat16_bits_to_float32

logger = logging.getLogger(__name__)

TABLE_MAGIC = 0xDB4775248B80FB57  # LevelDB's kTableMagicNumber, also TF's
FOOTER_SIZE = 48  # two block handles padded to 40 bytes, then the 8-byte magic
BLOCK_TRAILER_SIZE = 5  # compression type (1 byte) + masked crc32c (4 bytes)
# Bounds no checkpoint comes near, checked before anything is built from the numbers a file declares.
MAX_SHARDS = 100_000  # TF names shards with 5 digits
MAX_DIMS = 64  # NumPy's limit

# tensorflow/core/framework/types.proto DataType -> how its elements are stored. bfloat16 is read as raw
# uint16 bits and widened to float32 (NumPy has no bfloat16).
DT_STRING, DT_BFLOAT16 = 7, 14
_TF_DTYPES = {
    1: np.dtype("f4"),  # DT_FLOAT
    2: np.dtype("f8"),  # DT_DOUBLE
    3: np.dtype("i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    8: np.dtype("c8"),  # DT_COMPLEX64
    9: np.dtype("i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    DT_BFLOAT16: np.dtype("u2"),
    17: np.dtype("u2"),  # DT_UINT16
    18: np.dtype("c16"),  # DT_COMPLEX128
    19: np.dtype("f2"),  # DT_HALF
    22: np.dtype("u4"),  # DT_UINT32
    23: np.dtype("u8"),  # DT_UINT64
}


# Reading.


@dataclass(frozen=True)
class _Entry:
    """A BundleEntryProto: where one tensor's bytes are, and what they are."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked


def load_tf_checkpoint(
    prefix: str | Path, *, verify_crc32c: bool = False, names: Collection[str] | None = None
) -> dict[str, np.ndarray]:
    """Read every numeric tensor of the checkpoint `<prefix>` as {TF variable name: array}.

    `prefix` is the path without `.index` (e.g. `uncased_L-12_H-768_A-12/bert_model.ckpt`). Arrays are in
    native byte order with the tensor's dtype, except bfloat16, which comes back as float32 (widened exactly
    by `bfloat16_bits_to_float32`). String tensors (TF2's object graph, vocabularies) are skipped and
    logged. Index blocks are always checked against their crc32c and every tensor's size and place
    against its shard; `verify_crc32c=True` also checks each tensor's bytes, in pure Python,
    which is why it is off by default (about 10 MB/s: half a minute for BERT-base). `names`, if given, are the only
    tensors read (a SavedModel's variables hold a few that are not weights).
    """
    prefix = Path(prefix)
    index_path = _index_path(prefix)
    num_shards, byteorder, entries = _read_index(index_path)
    tensors = {}
    shard_files = {}
    try:
        for entry in entries:
            if names is not None and entry.name not in names:
                continue
            if entry.dtype == DT_STRING:
                logger.info("%s: skipping string tensor '%s'", index_path, entry.name)
                continue
            f, shard_path = _shard_of(entry, prefix, index_path, num_shards, shard_files)
            tensors[entry.name] = _read_tensor(f, shard_path, entry, byteorder, verify_crc32c)
    finally:
        for f in shard_files.values():
            f.close()
    return tensors


def tf_checkpoint_shapes(prefix: str | Path) -> dict[str, tuple[int, tuple[int, ...]]]:
    """{tensor name: (TF DataType, shape)} from the checkpoint's index alone: no tensor is read."""
    prefix = Path(prefix)
    _num_shards, _byteorder, entries = _read_index(_index_path(prefix))
    return {entry.name: (entry.dtype, entry.shape) for entry in entries}


def read_string_tensor(prefix: str | Path, name: str) -> list[bytes]:
    """The elements of the DT_STRING tensor `name` (a TF2 checkpoint's _CHECKPOINTABLE_OBJECT_GRAPH, for one).

    tensor_bundle.cc writes a string tensor as the varint64 length of each element, a 4-byte masked crc32c of those
    lengths, then the elements' bytes one after another; every length is checked against the tensor's size.
    """
    prefix = Path(prefix)
    index_path = _index_path(prefix)
    num_shards, _byteorder, entries = _read_index(index_path)
    entry = next((entry for entry in entries if entry.name == name), None)
    if entry is None:
        raise CheckpointError(f"{index_path}: has no tensor {quote(name)}")
    if entry.dtype != DT_STRING:
        raise CheckpointError(f"{index_path}: tensor {quote(name)} has TF DataType {entry.dtype}, not a string")
    shard_files: dict = {}
    try:
        f, shard_path = _shard_of(entry, prefix, index_path, num_shards, shard_files)
        check_extent(shard_path, f"tensor {quote(name)}", entry.offset, entry.size, os.fstat(f.fileno()).st_size)
        f.seek(entry.offset)
        data = f.read(entry.size)
    finally:
        for f in shard_files.values():
            f.close()
    numel = math.prod(entry.shape)
    if numel > entry.size:  # each element takes at least its one-byte length
        raise CheckpointError(
            f"{shard_path}: string tensor {quote(name)} of shape {entry.shape} cannot fit in its {entry.size} bytes"
        )
    lengths, pos = [], 0
    for _ in range(numel):
        length, pos = _read_varint(data, pos, shard_path)
        lengths.append(length)
    pos += 4  # the crc32c of the lengths
    if pos + sum(lengths) != len(data):
        raise CheckpointError(
            f"{shard_path}: string tensor {quote(name)}'s lengths add up to {pos + sum(lengths)} bytes; the index says "
            f"{len(data)}. The checkpoint is corrupt"
        )
    elements = []
    for length in lengths:
        elements.append(data[pos : pos + length])
        pos += length
    return elements


def _index_path(prefix: Path) -> Path:
    index_path = prefix.with_name(prefix.name + ".index")
    if not index_path.is_file():
        raise CheckpointError(
            f"{index_path}: no such file; expected a TensorFlow checkpoint given by its prefix "
            "(the path without .index / .data-*)"
        )
    return index_path


def _shard_of(entry: "_Entry", prefix: Path, index_path: Path, num_shards: int, shard_files: dict):
    """(open file, path) of the shard holding `entry`, opened once per shard into `shard_files`."""
    if not 0 <= entry.shard_id < num_shards:
        raise CheckpointError(
            f"{index_path}: tensor {quote(entry.name)} is in shard {entry.shard_id}; "
            f"the header says there are {num_shards}"
        )
    shard_path = _shard_path(prefix, entry.shard_id, num_shards)
    if shard_path not in shard_files:
        shard_files[shard_path] = _open_shard(shard_path, index_path)
    return shard_files[shard_path], shard_path


def _shard_path(prefix: Path, shard: int, num_shards: int) -> Path:
    return prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{num_shards:05d}")


def _open_shard(shard_path: Path, index_path: Path):
    if not os.path.lexists(shard_path):
        raise CheckpointError(
            f"{shard_path}: data shard missing; {index_path.name} stores tensors in it. "
            "Copy every .data-* file of the checkpoint next to the .index file"
        )
    regular_file_size(shard_path)  # a FIFO, a device or a /proc file is never a shard
    try:
        return open(shard_path, "rb")
    except OSError as error:
        raise CheckpointError(f"{shard_path}: cannot be read ({error.strerror})") from None


def _read_index(index_path: Path) -> tuple[int, str, list[_Entry]]:
    """(num_shards, byte order, entries) from the index file; the header is the entry with the empty key."""
    regular_file_size(index_path)
    table = index_path.read_bytes()
    records = list(_read_table(table, index_path))
    if not records or records[0][0] != b"":
        raise CheckpointError(f"{index_path}: has no header entry (empty key); is it a TF checkpoint index?")
    header = _parse_proto(records[0][1], index_path, "header")
    num_shards = _as_int64(_single(header, 1, 0, index_path, "header"))
    if not 1 <= num_shards <= MAX_SHARDS:
        raise CheckpointError(
            f"{index_path}: header says num_shards={num_shards}; expected 1 to {MAX_SHARDS}. The index is corrupt"
        )
    # Endianness enum: LITTLE=0, BIG=1
    byteorder = "big" if _single(header, 2, 0, index_path, "header") == 1 else "little"
    entries = [_parse_entry(key, value, index_path) for key, value in records[1:]]
    return num_shards, byteorder, entries


def _read_tensor(f, shard_path: Path, entry: _Entry, byteorder: str, verify_crc32c: bool) -> np.ndarray:
    """The tensor's bytes at entry.offset in its shard, as an array of its dtype and shape."""
    dtype = _TF_DTYPES.get(entry.dtype)
    if dtype is None:
        raise CheckpointError(
            f"{shard_path}: tensor {quote(entry.name)} has TF DataType {entry.dtype}, which minibert cannot read; "
            f"supported: {sorted(_TF_DTYPES)} (see tensorflow/core/framework/types.proto)"
        )
    if byteorder != sys.byteorder:
        dtype = dtype.newbyteorder()
    numel = math.prod(entry.shape)  # Python integers: a product of int64s would wrap
    if entry.size != numel * dtype.itemsize:
        raise CheckpointError(
            f"{shard_path}: tensor {quote(entry.name)} of shape {entry.shape} needs {numel * dtype.itemsize} bytes; "
            f"the index says {entry.size}. The checkpoint is corrupt"
        )
    # Before allocating: the bytes must exist (a 1 KB index can claim a tensor of gigabytes).
    check_extent(shard_path, f"tensor {quote(entry.name)}", entry.offset, entry.size, os.fstat(f.fileno()).st_size)
    f.seek(entry.offset)
    buffer = bytearray(entry.size)  # writable, so the array needs no copy
    if f.readinto(buffer) != entry.size:
        raise CheckpointError(
            f"{shard_path}: tensor {quote(entry.name)} lies at bytes {entry.offset}..{entry.offset + entry.size}, "
            "past the end of the file; the shard is truncated, copy it again"
        )
    if verify_crc32c and _masked_crc32c(buffer) != entry.crc32c:
        raise CheckpointError(
            f"{shard_path}: tensor {quote(entry.name)} fails its crc32c check; the shard is corrupt, copy it again"
        )
    array = np.frombuffer(buffer, dtype=dtype).reshape(entry.shape)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if entry.dtype == DT_BFLOAT16:
        array = bfloat16_bits_to_float32(array)
    return array


# The SSTable (LevelDB table format).


def _read_table(table: bytes, path: Path):
    """Yield (key, value) of every entry in the table, in key order.

    Each data block is listed once in the index block and keys strictly increase, as LevelDB's writer makes them;
    a table that repeats a block (200,000 handles to one block would be read and checksummed 200,000 times) or a
    key (two tensors of one name) is refused.
    """
    if len(table) < FOOTER_SIZE:
        raise CheckpointError(f"{path}: {len(table)} bytes is too short for an index file; it is truncated")
    footer = table[-FOOTER_SIZE:]
    magic = struct.unpack("<Q", footer[-8:])[0]
    if magic != TABLE_MAGIC:
        raise CheckpointError(
            f"{path}: footer magic number is {magic:#018x}, expected {TABLE_MAGIC:#018x}; "
            "the file is truncated or not a TensorFlow checkpoint index"
        )
    _metaindex, pos = _read_block_handle(footer, 0, path)  # the metaindex (filters) is not needed
    index_handle, _ = _read_block_handle(footer, pos, path)
    handles, previous = set(), None
    for _separator, handle_bytes in _block_entries(_read_block(table, index_handle, path), path):
        data_handle, _ = _read_block_handle(handle_bytes, 0, path)
        if data_handle in handles:
            raise CheckpointError(f"{path}: the index lists the block at {data_handle[0]} twice; the file is corrupt")
        handles.add(data_handle)
        for key, value in _block_entries(_read_block(table, data_handle, path), path):
            if previous is not None and key <= previous:
                raise CheckpointError(
                    f"{path}: key {quote(key.decode('utf-8', 'replace'))} is out of order or repeated; the file is "
                    "corrupt"
                )
            previous = key
            yield key, value


def _read_block_handle(buf: bytes, pos: int, path: Path) -> tuple[tuple[int, int], int]:
    """A BlockHandle is two varints, offset and size; returns ((offset, size), position after it)."""
    offset, pos = _read_varint(buf, pos, path)
    size, pos = _read_varint(buf, pos, path)
    return (offset, size), pos


def _read_block(table: bytes, handle: tuple[int, int], path: Path) -> bytes:
    """A block's contents, after checking its trailer: uncompressed, and the crc32c matches."""
    offset, size = handle
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > len(table) - FOOTER_SIZE:
        raise CheckpointError(f"{path}: block at {offset} of {size} bytes runs past the end; it is truncated")
    contents, compression = table[offset:end], table[end]
    stored_crc = struct.unpack("<I", table[end + 1 : end + 5])[0]
    # The checksum covers the contents and the compression byte.
    if _masked_crc32c(table[offset : end + 1]) != stored_crc:
        raise CheckpointError(f"{path}: block at {offset} fails its crc32c check; the index file is corrupt")
    if compression != 0:
        # TF's bundle writer never compresses (1 would be snappy); decompressing is not worth a dependency.
        raise CheckpointError(
            f"{path}: block at {offset} is compressed (type {compression}); minibert reads only the "
            "uncompressed index files TensorFlow writes"
        )
    return contents


def _block_entries(block: bytes, path: Path):
    """Yield (key, value) of a block. Each entry is varints (shared, non_shared, value_length), then the
    key's unshared suffix and the value; a key shares its first `shared` bytes with the previous key.
    The block ends with the restart offsets (uint32 each) and their count, which a full scan can ignore."""
    if len(block) < 4:
        raise CheckpointError(f"{path}: a block of {len(block)} bytes has no restart count; it is corrupt")
    num_restarts = struct.unpack("<I", block[-4:])[0]
    entries_end = len(block) - 4 - 4 * num_restarts
    if entries_end < 0:
        raise CheckpointError(f"{path}: a block claims {num_restarts} restart points; it is corrupt")
    key, pos = b"", 0
    while pos < entries_end:
        shared, pos = _read_varint(block, pos, path)
        non_shared, pos = _read_varint(block, pos, path)
        value_length, pos = _read_varint(block, pos, path)
        value_start = pos + non_shared
        if shared > len(key) or value_start + value_length > entries_end:
            raise CheckpointError(f"{path}: a block entry at {pos} overruns its block; the file is corrupt")
        key = key[:shared] + block[pos:value_start]
        pos = value_start + value_length
        yield key, block[value_start:pos]


# Protobuf wire format, just enough for BundleHeaderProto and BundleEntryProto.


def _read_varint(buf: bytes, pos: int, path: Path) -> tuple[int, int]:
    """A base-128 varint, least significant group first; returns (value, position after it)."""
    value = 0
    for shift in range(0, 70, 7):  # at most 10 bytes hold 64 bits
        if pos >= len(buf):
            raise CheckpointError(f"{path}: a varint runs past the end of its record; the file is corrupt")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    raise CheckpointError(f"{path}: a varint is longer than 10 bytes; the file is corrupt")


def proto_fields(buf: bytes | memoryview, path: Path, what: str):
    """Yield (field number, wire type, value) of a protobuf message, in the order they are written: an int for varint
    and fixed fields (wire types 0, 1, 5), a slice of `buf` for length-delimited ones (2: bytes, strings,
    sub-messages, packed numbers). A memoryview `buf` gives memoryview slices, so that nested messages are not
    copied. Every length is checked against the bytes that exist before it is used."""
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos, path)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:  # varint
            value, pos = _read_varint(buf, pos, path)
        elif wire_type == 1:  # fixed64
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire_type == 2:  # length-delimited: bytes, strings, sub-messages
            length, pos = _read_varint(buf, pos, path)
            value, pos = buf[pos : pos + length], pos + length
        elif wire_type == 5:  # fixed32
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise CheckpointError(f"{path}: {what} has protobuf wire type {wire_type}; the file is corrupt")
        if pos > len(buf):
            raise CheckpointError(f"{path}: {what} field {number} runs past its record; the file is corrupt")
        yield number, wire_type, value


def _parse_proto(buf: bytes, path: Path, what: str) -> dict[int, list]:
    """{field number: [values]}: ints for varint and fixed fields, bytes for length-delimited ones."""
    fields: dict[int, list] = {}
    for number, _wire_type, value in proto_fields(buf, path, what):
        fields.setdefault(number, []).append(value)
    return fields


def _single(fields: dict[int, list], number: int, default, path: Path, what: str):
    """A singular field; proto3 omits fields equal to their default, and the last occurrence wins. Its wire type must
    give the default's type: a number (varint, fixed) or bytes (length-delimited)."""
    value = fields.get(number, [default])[-1]
    if type(value) is not type(default):
        kind = "a number" if isinstance(default, int) else "bytes or a message"
        raise CheckpointError(f"{path}: {what} field {number} has the wrong wire type (expected {kind}); it is corrupt")
    return value


def _repeated(fields: dict[int, list], number: int, path: Path, what: str) -> list[bytes]:
    """A repeated message field: every occurrence must be length-delimited."""
    values = fields.get(number, [])
    if any(type(value) is not bytes for value in values):
        raise CheckpointError(
            f"{path}: {what} field {number} has the wrong wire type (expected a message); it is corrupt"
        )
    return values


def _as_int64(value: int) -> int:
    """Varints carry negative int64 values as their two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _parse_entry(key: bytes, value: bytes, path: Path) -> _Entry:
    """BundleEntryProto: dtype=1, shape=2 (TensorShapeProto: dim=2 {size=1}), shard_id=3, offset=4,
    size=5, crc32c=6 (fixed32), slices=7 (only in partitioned variables, which minibert does not read)."""
    name = key.decode("utf-8", "replace")
    what = f"entry {quote(name)}"
    fields = _parse_proto(value, path, what)
    if 7 in fields:
        raise CheckpointError(
            f"{path}: tensor {quote(name)} is saved as slices of a partitioned variable; minibert reads only "
            "whole tensors. Re-save the checkpoint without partitioning"
        )
    what = f"shape of {quote(name)}"
    shape_fields = _parse_proto(_single(fields, 2, b"", path, what), path, what)
    dims = _repeated(shape_fields, 2, path, what)
    if len(dims) > MAX_DIMS:
        raise CheckpointError(f"{path}: tensor {quote(name)} has {len(dims)} dimensions; at most {MAX_DIMS} are read")
    shape = tuple(_as_int64(_single(_parse_proto(dim, path, what), 1, 0, path, what)) for dim in dims)
    if _single(shape_fields, 3, 0, path, what) or any(n < 0 for n in shape):
        raise CheckpointError(f"{path}: tensor {quote(name)} has unknown shape {shape}; a checkpoint's must be known")
    what = f"entry {quote(name)}"
    return _Entry(
        name=name,
        dtype=_single(fields, 1, 0, path, what),
        shape=shape,
        shard_id=_single(fields, 3, 0, path, what),
        offset=_as_int64(_single(fields, 4, 0, path, what)),
        size=_as_int64(_single(fields, 5, 0, path, what)),
        crc32c=_single(fields, 6, 0, path, what),
    )


# crc32c (Castagnoli), as LevelDB and TF store it: "masked" so that a crc of data holding crcs stays strong.


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # reversed Castagnoli polynomial
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    # leveldb/util/crc32c.h Mask(): rotate right by 15 bits and add a constant.
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# Google BERT names -> transformers names.

# One row per TF variable pattern (matched whole): transformers key, and whether to transpose. TF dense
# kernels are [in, out] and transformers' nn.Linear weights [out, in], so kernels are transposed; the
# heads' `output_weights` are already [out, in] (they are used with transpose_b=True) and are not.
# `cls.*` keys are those of BertForPreTraining; `classifier.*` those of BertForSequenceClassification
# (run_classifier.py's output layer).
_L = r"bert/encoder/layer_(\d+)"
TF_TO_HF_NAMES: list[tuple[str, str, bool]] = [
    (r"bert/embeddings/(word|position|token_type)_embeddings", r"embeddings.\1_embeddings.weight", False),
    (r"bert/embeddings/LayerNorm/gamma", r"embeddings.LayerNorm.weight", False),
    (r"bert/embeddings/LayerNorm/beta", r"embeddings.LayerNorm.bias", False),
    (_L + r"/attention/self/(query|key|value)/kernel", r"encoder.layer.\1.attention.self.\2.weight", True),
    (_L + r"/attention/self/(query|key|value)/bias", r"encoder.layer.\1.attention.self.\2.bias", False),
    (_L + r"/attention/output/dense/kernel", r"encoder.layer.\1.attention.output.dense.weight", True),
    (_L + r"/attention/output/dense/bias", r"encoder.layer.\1.attention.output.dense.bias", False),
    (_L + r"/attention/output/LayerNorm/gamma", r"encoder.layer.\1.attention.output.LayerNorm.weight", False),
    (_L + r"/attention/output/LayerNorm/beta", r"encoder.layer.\1.attention.output.LayerNorm.bias", False),
    (_L + r"/intermediate/dense/kernel", r"encoder.layer.\1.intermediate.dense.weight", True),
    (_L + r"/intermediate/dense/bias", r"encoder.layer.\1.intermediate.dense.bias", False),
    (_L + r"/output/dense/kernel", r"encoder.layer.\1.output.dense.weight", True),
    (_L + r"/output/dense/bias", r"encoder.layer.\1.output.dense.bias", False),
    (_L + r"/output/LayerNorm/gamma", r"encoder.layer.\1.output.LayerNorm.weight", False),
    (_L + r"/output/LayerNorm/beta", r"encoder.layer.\1.output.LayerNorm.bias", False),
    (r"bert/pooler/dense/kernel", r"pooler.dense.weight", True),
    (r"bert/pooler/dense/bias", r"pooler.dense.bias", False),
    (r"cls/predictions/transform/dense/kernel", r"cls.predictions.transform.dense.weight", True),
    (r"cls/predictions/transform/dense/bias", r"cls.predictions.transform.dense.bias", False),
    (r"cls/predictions/transform/LayerNorm/gamma", r"cls.predictions.transform.LayerNorm.weight", False),
    (r"cls/predictions/transform/LayerNorm/beta", r"cls.predictions.transform.LayerNorm.bias", False),
    (r"cls/predictions/output_bias", r"cls.predictions.bias", False),
    (r"cls/seq_relationship/output_weights", r"cls.seq_relationship.weight", False),
    (r"cls/seq_relationship/output_bias", r"cls.seq_relationship.bias", False),
    (r"output_weights", r"classifier.weight", False),
    (r"output_bias", r"classifier.bias", False),
]

# Training state, not weights: AdamWeightDecayOptimizer's slots (google-research/bert optimization.py),
# tf.train.AdamOptimizer's slots and powers, and the step counter.
_OPTIMIZER_STATE = re.compile(r".*/(adam_m|adam_v|Adam|Adam_1)|global_step|beta[12]_power")

_COMPILED_NAMES = [(re.compile(pattern), replacement, transpose) for pattern, replacement, transpose in TF_TO_HF_NAMES]


def tf_to_hf_names(tf_tensors: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Rename Google BERT variables to transformers keys, transposing dense kernels to [out, in].

    Returns (tensors by transformers name, sorted names of the optimizer state that was skipped).
    A variable that is neither in TF_TO_HF_NAMES nor optimizer state is an error, so nothing is lost
    silently.
    """
    renamed, skipped, unknown = {}, [], []
    for tf_name, value in tf_tensors.items():
        if _OPTIMIZER_STATE.fullmatch(tf_name):
            skipped.append(tf_name)
            continue
        for pattern, replacement, transpose in _COMPILED_NAMES:
            match = pattern.fullmatch(tf_name)
            if match:
                # [in, out] -> [out, in] as a view: checkpoint.to_params lays each tensor out as it is used (the
                # encoder's weights column-major, which this view already is, except on Intel's CPUs; the rest copied
                # row-major: checkpoint.load_order).
                renamed[match.expand(replacement)] = value.T if transpose else value
                break
        else:
            unknown.append(tf_name)
    if unknown:
        listing = ", ".join(quote(name) for name in sorted(unknown)[:8]) + (" ..." if len(unknown) > 8 else "")
        raise CheckpointError(
            f"TF checkpoint variables with no transformers name: {len(unknown)}: {listing}; minibert maps "
            "BertModel, the pretraining heads (cls/*) and run_classifier's output layer"
        )
    return renamed, sorted(skipped)
