"""The safetensors format, read without the safetensors library: an 8-byte header length, a JSON table of contents,
then every tensor's bytes, little-endian. Every entry is checked against the file before a byte of it is read, so a
corrupt or hostile file gets a CheckpointError naming the tensor, never a wrong array or a crash.

    read_safetensors(path, dtype)                   -> {name: array} of one file
    read_sharded_safetensors(index_path, dtype)     -> {name: array} of the shards model.safetensors.index.json names

https://github.com/huggingface/safetensors/blob/v0.8.0/README.md#format
"""

import math
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from ..model_files import read_sharded_index
from ..untrusted import UntrustedJSONError, escape, extent_fits, parse_json, quote, regular_file_size
from .dtypes import bfloat16_bits_to_float32

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
_MAX_DIMS = 64  # NumPy's limit


def _is_natural(n, minimum: int = 0) -> bool:
    """An integer (JSON's true and false are not) of at least `minimum`."""
    return type(n) is int and n >= minimum


def read_safetensors_header(path: Path) -> tuple[dict[str, dict], int]:
    """A .safetensors file's table of contents, {name: {"dtype", "shape", "data_offsets"}}, and where its data starts.

    The file is an 8-byte little-endian header length, that many bytes of JSON, then the tensors' bytes. Every
    entry is checked against the file: a known dtype, a shape whose size fits the byte range, a range inside the file.
    """

    def corrupt(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: not a readable safetensors file ({why}); re-download or re-save it")

    file_size = regular_file_size(path)
    try:
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise corrupt(f"{file_size} bytes, shorter than the 8-byte header length")
            header_size = int.from_bytes(prefix, "little")
            if header_size > _MAX_HEADER_BYTES or not extent_fits(8, header_size, file_size):
                if all(32 <= byte < 127 or byte in b"\t\n\r" for byte in prefix):
                    # Text, so not a length: printing it as a number would print the start of a file that may be
                    # anything (a key, an environment), which the message has no business repeating.
                    raise corrupt("it starts with text where the 8-byte header length should be")
                raise corrupt(f"header length {header_size} does not fit in a file of {file_size} bytes")
            text = f.read(header_size)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        header = parse_json(text)
    except UntrustedJSONError as error:
        raise corrupt(f"header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise corrupt("header is not a JSON object")
    header.pop("__metadata__", None)
    data_start = 8 + header_size
    data_size = file_size - data_start
    for name, entry in header.items():
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise corrupt(f"tensor {quote(name)} has no dtype, shape and data_offsets")
        if entry["dtype"] not in SAFETENSORS_DTYPES:
            dtype = entry["dtype"]
            raise CheckpointError(
                f"{path}: tensor {quote(name)} has dtype {escape(dtype) if isinstance(dtype, str) else quote(dtype)}, "
                "which minibert does not read; "
                f"re-save the checkpoint as F32, F16 or BF16 (readable: {', '.join(SAFETENSORS_DTYPES)})"
            )
        shape, offsets = entry["shape"], entry["data_offsets"]
        if not (isinstance(shape, list) and all(_is_natural(n) for n in shape)):
            raise corrupt(f"tensor {quote(name)} has shape {quote(shape)}")
        if len(shape) > _MAX_DIMS:
            raise corrupt(f"tensor {quote(name)} has {len(shape)} dimensions; NumPy arrays have at most {_MAX_DIMS}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_natural(n, -(2**64)) for n in offsets)):
            raise corrupt(f"tensor {quote(name)} has data_offsets {quote(offsets)}")
        begin, end = offsets
        nbytes = math.prod(shape) * np.dtype(SAFETENSORS_DTYPES[entry["dtype"]]).itemsize
        if begin > end or not extent_fits(begin, end - begin, data_size) or end - begin != nbytes:
            raise corrupt(
                f"tensor {quote(name)} ({entry['dtype']}, shape {tuple(shape)}, {nbytes} bytes) has data_offsets "
                f"{offsets}; the file holds {data_size} bytes of data"
            )
    check_byte_ranges(path, header, data_size)
    return header, data_start


def check_byte_ranges(path: Path, header: dict[str, dict], data_size: int) -> None:
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
                f"{path}: not a readable safetensors file (tensor {quote(name)} has shape {tuple(entry['shape'])}, too "
                "large for any array); re-download or re-save it"
            )
        if begin != end:
            where = f"the previous tensor {quote(previous)} ends at {end}" if previous else "the data starts at 0"
            raise CheckpointError(
                f"{path}: not a readable safetensors file (tensor {quote(name)} starts at data byte {begin} but "
                f"{where}: the header's byte ranges {'overlap' if begin < end else 'leave a gap'}); re-download or "
                "re-save it"
            )
        end, previous = stop, name
    if end != data_size:
        raise CheckpointError(
            f"{path}: not a readable safetensors file (the header's tensors cover {end} bytes of data but the file "
            f"holds {data_size}); re-download or re-save it"
        )


def read_safetensors(path: Path, dtype=None, order=None) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as NumPy arrays: floating ones in `dtype` if given, else in the file's
    dtype (bfloat16 as float32); integer buffers as they are. `order(name, shape)`, if given, says which floating
    2-D tensors to lay out column-major ("F"; checkpoint.load_order); the rest are row-major, as stored.

    Each tensor's bytes are read straight into its own array and, if its dtype differs, converted before the next
    tensor is read, so loading holds one copy of the weights plus at most one tensor in the file's dtype. A
    column-major tensor is read a few rows at a time through a small buffer and written transposed from there.
    """
    header, data_start = read_safetensors_header(path)
    tensors = {}
    try:
        with open(path, "rb") as f:
            for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
                file_dtype, shape = np.dtype(SAFETENSORS_DTYPES[entry["dtype"]]), tuple(entry["shape"])
                floating = entry["dtype"] == "BF16" or file_dtype.kind == "f"
                f.seek(data_start + entry["data_offsets"][0])
                if floating and len(shape) == 2 and order is not None and order(name, shape) == "F":
                    wanted = dtype if dtype is not None else np.float32 if entry["dtype"] == "BF16" else file_dtype
                    tensors[name] = _read_column_major(f, shape, entry["dtype"], wanted, path, name)
                    continue
                tensor = np.empty(shape, dtype=file_dtype)
                _read_into(f, tensor, path, name)
                if entry["dtype"] == "BF16":
                    tensor = bfloat16_bits_to_float32(tensor)
                if dtype is not None and tensor.dtype.kind == "f":
                    tensor = tensor.astype(dtype, copy=False)  # a no-op when the file already holds `dtype`
                tensors[name] = tensor
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error})") from None
    return tensors


def _read_into(f, array: np.ndarray, path: Path, name: str) -> None:
    """The next array.nbytes bytes of `f` into a C-contiguous `array`, refusing a file that ends before them."""
    if f.readinto(array.reshape(-1).view(np.uint8)) != array.nbytes:
        raise CheckpointError(f"{path}: file ends inside tensor {quote(name)}; re-download or re-save it")


def _read_column_major(f, shape: tuple[int, int], stored: str, dtype, path: Path, name: str) -> np.ndarray:
    """A row-major [rows, cols] tensor of the file, in `dtype`, column-major. The rows pass through a buffer of one
    cache line's worth of them (16 float32s: each column of the result then gets whole lines), so the tensor is
    never held twice and the transposition reads from cache: bert-base's encoder costs 0.09 s more than a plain
    read this way, 0.36 s more as a whole-array copy after reading (benchmarks/README.md)."""
    tensor = np.empty(shape[::-1], dtype).T  # [rows, cols], column-major: its transpose is C-contiguous
    step = max(1, 64 // np.dtype(dtype).itemsize)
    buffer = np.empty((step, shape[1]), SAFETENSORS_DTYPES[stored])
    for start in range(0, shape[0], step):
        rows = buffer[: min(step, shape[0] - start)]
        _read_into(f, rows, path, name)
        tensor[start : start + len(rows)] = bfloat16_bits_to_float32(rows) if stored == "BF16" else rows
    return tensor


def read_sharded_safetensors(index_path: Path, dtype=None, order=None) -> dict[str, np.ndarray]:
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
            + ", ".join(
                f"{escape(shard)} (holds {len(shards[shard])} tensors, e.g. {quote(shards[shard][0])})"
                for shard in missing[:8]
            )
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
            problems.append(f"{quote(name)} is in {', '.join(map(escape, held))} but not in the index")
        elif not held:
            problems.append(
                f"{quote(name)}: the index puts it in {escape(listed)}, which does not hold it, nor does any shard"
            )
        else:
            problems.append(
                f"{quote(name)}: the index puts it in {escape(listed)}, but {', '.join(map(escape, held))} holds it"
            )
    if problems:
        raise CheckpointError(
            f"{index_path}: the index and the shards disagree on {len(problems)} tensor(s): "
            + "; ".join(problems[:4])
            + ("; ..." if len(problems) > 4 else "")
            + ". Re-download the index and the shards together"
        )
    tensors = {}
    for shard in shards:
        tensors.update(read_safetensors(index_path.parent / shard, dtype, order))
    return tensors
