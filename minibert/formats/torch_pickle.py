"""Read a `pytorch_model.bin` written by `torch.save(state_dict)` into NumPy arrays, without torch.

The format is torch's zip serialization (torch >= 1.6), written by `_save` and read by `_load` in
https://github.com/pytorch/pytorch/blob/main/torch/serialization.py. The zip stores its entries
uncompressed under one top-level folder (named after the file at save time; `archive/` in recent torch):

    <root>/data.pkl      a pickle of the state dict. Each tensor is pickled as a call
                         torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
                                                         requires_grad, backward_hooks[, metadata])
                         whose storage is a persistent id ('storage', <torch.XStorage>, key, location, numel)
    <root>/data/<key>    the raw bytes of storage <key>: numel elements of XStorage's dtype
    <root>/byteorder     'little' or 'big' (files without it are little-endian, as torch assumes)
    <root>/version, <root>/.format_version, ...   not needed to read tensors

The file is untrusted, so it is read the way torch reads it and checked before anything is allocated:
- the zip must start at byte 0 (torch's own test), hold each name once, store every record uncompressed, and
  its records must lie inside the archive without overlapping, so the bytes read never exceed the file's;
- data.pkl is never given to `pickle`. It is first scanned (`pickletools.genops`) against the opcodes
  `torch.save` writes for a state dict, then run by `_Unpickler`, a small stack machine that knows only those
  opcodes, only the handful of globals a state dict needs (mapped to NumPy stand-ins, nothing is imported),
  and applies each opcode only to what torch.save applies it to (SETITEM to dicts, BUILD to OrderedDicts);
- tensor views are checked against their storage, and copies of views are bounded by the storages' size.
Files from torch < 1.6 (a bare pickle stream, not a zip) are refused.
"""

import collections
import math
import os
import pickletools
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from ..untrusted import check_extent, quote, regular_file_size
from .dtypes import bfloat16_bits_to_float32

# Storage classes as they appear in `persistent_load` ids, and the dtype of their elements. bfloat16 is
# read as its raw uint16 bits (NumPy has no bfloat16) and widened to float32 once, for the whole storage.
_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("f8"),
    "FloatStorage": np.dtype("f4"),
    "HalfStorage": np.dtype("f2"),
    "BFloat16Storage": np.dtype("u2"),
    "LongStorage": np.dtype("i8"),
    "IntStorage": np.dtype("i4"),
    "ShortStorage": np.dtype("i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
    "UntypedStorage": np.dtype("u1"),  # torch's untyped storages count bytes
}

# The only globals data.pkl may name: (module, name) -> the name of its stand-in (an _Unpickler method, the
# OrderedDict class, or a storage type).
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): "OrderedDict",
    ("torch._utils", "_rebuild_tensor_v2"): "_rebuild_tensor_v2",
    ("torch._utils", "_rebuild_tensor"): "_rebuild_tensor",
    ("torch._utils", "_rebuild_parameter"): "_rebuild_parameter",
    ("torch.storage", "UntypedStorage"): "UntypedStorage",
    **{("torch", name): name for name in _STORAGE_DTYPES},
}
# How many arguments each callable stand-in takes (torch's signatures in torch/_utils.py).
_ARITY = {"_rebuild_tensor_v2": range(4, 8), "_rebuild_tensor": range(4, 5), "_rebuild_parameter": range(3, 4)}

# The opcodes torch.save writes for a state dict (pickle protocol 2), found by disassembling its output for BERT
# models in every dtype, with nn.Parameters and the modules' `_metadata` (the one BUILD); BININT and LONG1 hold
# numbers past 65535 and 2**31, NONE and NEWTRUE argument values. torch's weights_only unpickler allows a few more
# (lists, sets, floats, byte strings), which no state dict holds. Everything else, EXT1/2/4 (served from
# copyreg's extension cache without a lookup), INST/OBJ/NEWOBJ, protocol 4's STACK_GLOBAL included, is refused.
_ALLOWED_OPCODES = frozenset(
    "PROTO GLOBAL BINPUT LONG_BINPUT BINGET LONG_BINGET MARK EMPTY_DICT EMPTY_TUPLE BININT BININT1 BININT2 LONG1 "
    "BINUNICODE NONE NEWTRUE NEWFALSE TUPLE TUPLE1 TUPLE2 TUPLE3 BINPERSID REDUCE BUILD SETITEM SETITEMS STOP".split()
)
_PUSHES_ITS_ARGUMENT = frozenset({"BININT", "BININT1", "BININT2", "LONG1", "BINUNICODE"})
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False, "EMPTY_TUPLE": ()}

# Nesting torch.save never comes near (its state dicts open 3 MARKs at once and nest tuples 2 deep): deeper
# structures exist only to make hashing or printing them take forever.
_MAX_NESTING = 16
_MAX_DIMS = 64  # NumPy's limit, and torch's in practice
# Non-contiguous views are copied (the arrays minibert returns are C-contiguous). The copies may take at most the
# storages' own bytes plus this, so a stride-0 view cannot turn one float into gigabytes.
_COPY_SLACK_BYTES = 2**20
_ZIP_LOCAL_MAGIC = b"PK\x03\x04"  # torch.serialization._is_zipfile requires it at byte 0
_ZIP_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # signature, version, flags, method, time, date, crc, sizes, lengths

_LEGACY_HINT = (
    "it is a legacy (torch < 1.6) file, which minibert does not read; re-save it with torch>=1.6: "
    "torch.save(torch.load(path), path)"
)
_RESAVE = "If the file is trusted, load it with torch and save its state_dict as safetensors"


@dataclass(frozen=True)
class _StorageType:
    """What `torch.FloatStorage` and friends unpickle to: just the name and the element dtype."""

    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _Storage:
    """One storage record, read once and shared by every tensor that views it."""

    key: str
    type: _StorageType
    flat: np.ndarray  # [numel] in native byte order; bfloat16 already widened to float32


@dataclass(frozen=True)
class _Member:
    """A zip record whose place was checked against the archive: its directory entry and where its bytes start."""

    info: zipfile.ZipInfo
    data_offset: int


def load_torch_bin(path: str | Path) -> dict[str, np.ndarray]:
    """Read a state dict saved by `torch.save` as {name: array}, without running code from the file.

    Arrays are C-contiguous and in native byte order, with the tensor's dtype, except bfloat16 tensors,
    which come back as float32 (widened exactly by `bfloat16_bits_to_float32`). A tensor that spans its
    whole storage is a view of the bytes read from the file, so tensors tied to one storage (tied
    embeddings) share memory as they do in torch; every other tensor is a copy.
    """
    path = Path(path)
    if not os.path.lexists(path):
        raise CheckpointError(f"{path}: no such file; expected a pytorch_model.bin written by torch.save")
    regular_file_size(path)  # refuses FIFOs, devices and /proc files before they are opened
    with open(path, "rb") as f:
        archive = _open_archive(path, f)
        try:
            with archive:
                root = _archive_root(path, archive.namelist())
                members = _check_members(path, f, archive)
                unpickler = _Unpickler(path, f, members, root)
                state_dict = unpickler.load(unpickler.read_member(f"{root}/data.pkl"))
                # Its callables are its own bound methods, a cycle that would keep every storage it read (and so
                # every tensor's original once a caller replaces it with a copy) alive until the cyclic GC runs.
                unpickler.callables.clear()
        except CheckpointError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, EOFError, OSError, struct.error) as e:
            # A corrupt or hostile file can fail in any of pickletools' or zipfile's ways (a truncated opcode
            # argument, a bad UTF-8 string, ...): all of them mean "bad file". The message quotes, never echoes.
            raise CheckpointError(
                f"{path}: cannot read it as a torch.save archive ({type(e).__name__}: {quote(str(e), 200)}); "
                "the file is corrupt or truncated, download or save it again"
            ) from None
    return _check_state_dict(path, state_dict)


def _open_archive(path: Path, f) -> zipfile.ZipFile:
    """The zip archive of `f`, refused unless it starts at byte 0 as torch requires: a legacy torch stream with a
    zip appended is a legacy file to torch, and must not be a different checkpoint to minibert."""
    head = f.read(512)
    f.seek(0)
    try:
        is_zip = zipfile.is_zipfile(f)
        f.seek(0)
        if is_zip and head.startswith(_ZIP_LOCAL_MAGIC):
            return zipfile.ZipFile(f)
    except (zipfile.BadZipFile, ValueError, OSError, struct.error, EOFError) as e:
        # is_zipfile raises, not returns False, on some broken end records: a corrupt zip.
        raise CheckpointError(
            f"{path}: cannot read it as a torch.save archive ({type(e).__name__}: {quote(str(e), 200)}); "
            "the file is corrupt or truncated, download or save it again"
        ) from None
    if not is_zip:
        raise CheckpointError(f"{path}: {_why_not_a_zip(head)}")
    start = _LEGACY_HINT if head.startswith(b"\x80") else f"it starts with {quote(head[:4].hex())}"
    raise CheckpointError(
        f"{path}: has a zip archive after other data, so it is not an archive torch.save wrote (torch reads only "
        f"what starts at byte 0: {start}); save the state dict again with torch.save"
    )


def _why_not_a_zip(head: bytes) -> str:
    """Say what a file that is not a zip archive probably is, and what to do."""
    if head.startswith(b"\x80"):  # pickle protocol >= 2: torch < 1.6 wrote a bare pickle stream
        return _LEGACY_HINT
    if head[257:262] == b"ustar":  # torch's oldest format was a tar archive
        return _LEGACY_HINT
    return (
        "not a zip archive, so not a pytorch_model.bin written by torch >= 1.6 (it may be truncated: download it again)"
    )


def _check_members(path: Path, f, archive: zipfile.ZipFile) -> dict[str, _Member]:
    """Every record of the archive, after checking what torch.save guarantees and a hostile zip breaks: each name
    once, stored (not compressed, not encrypted), its local header where the directory says, its bytes inside the
    archive and not overlapping another record's. Afterwards no record can make minibert read or allocate more
    bytes than the file holds."""
    names = [info.filename for info in archive.infolist()]
    twice = sorted(name for name, count in collections.Counter(names).items() if count > 1)
    if twice:
        raise CheckpointError(
            f"{path}: the zip holds {len(twice)} name(s) twice, e.g. {quote(twice[0])}; readers disagree on which "
            "copy counts (torch reads the first), so the file is ambiguous. Save it again with torch.save"
        )
    members, extents = {}, []
    for info in archive.infolist():
        what = f"record {quote(info.filename)}"
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise CheckpointError(
                f"{path}: {what} is compressed or encrypted (method {info.compress_type}); torch.save stores records "
                "as they are, and minibert does not inflate them (a small compressed record can expand to gigabytes)"
            )
        if info.compress_size != info.file_size:
            raise CheckpointError(
                f"{path}: {what} is stored with {info.compress_size} bytes but claims {info.file_size}; the file is "
                "corrupt, download or save it again"
            )
        check_extent(path, f"the local header of {what}", info.header_offset, _ZIP_LOCAL_HEADER.size, archive.start_dir)
        f.seek(info.header_offset)
        header = _ZIP_LOCAL_HEADER.unpack(f.read(_ZIP_LOCAL_HEADER.size))
        name_length, extra_length = header[-2], header[-1]
        local_name = f.read(name_length).decode("utf-8" if header[2] & 0x800 else "cp437")
        if header[0] != _ZIP_LOCAL_MAGIC or local_name != info.orig_filename:
            raise CheckpointError(
                f"{path}: {what}'s local header does not match the zip directory; the file is corrupt or was "
                "tampered with, download or save it again"
            )
        data_offset = info.header_offset + _ZIP_LOCAL_HEADER.size + name_length + extra_length
        check_extent(path, what, data_offset, info.file_size, archive.start_dir)
        members[info.filename] = _Member(info, data_offset)
        extents.append((info.header_offset, data_offset + info.file_size, info.filename))
    extents.sort()
    for (_, end, name), (start, _, next_name) in zip(extents, extents[1:], strict=False):
        if start < end:
            raise CheckpointError(
                f"{path}: records {quote(name)} and {quote(next_name)} overlap in the zip; torch.save never writes "
                "that, and it would let a small file claim many times its size. Save it again with torch.save"
            )
    return members


def _archive_root(path: Path, names: list[str]) -> str:
    """The top-level folder that holds data.pkl; torch names it after the file at save time."""
    if any(name.endswith("/constants.pkl") for name in names):
        # TorchScript archives also have a data.pkl, but it rebuilds scripted modules, not a state dict.
        raise CheckpointError(
            f"{path}: is a TorchScript archive (torch.jit.save); expected a state dict saved with "
            "torch.save(model.state_dict(), path)"
        )
    roots = [name[: -len("/data.pkl")] for name in names if name.endswith("/data.pkl")]
    roots = [root for root in roots if "/" not in root]
    if len(roots) != 1:
        raise CheckpointError(
            f"{path}: expected exactly one record '<folder>/data.pkl' as torch.save writes, found "
            f"{len(roots)}; is it a pytorch_model.bin?"
        )
    return roots[0]


def _scan_opcodes(path: Path, data: bytes) -> None:
    """Refuse data.pkl if it names a global outside the allow-list or uses an opcode torch.save does not write.

    Runs over the whole pickle before anything is built. Globals are named first, being the more telling refusal
    (a protocol-4 pickle's STACK_GLOBAL is named from the two strings before it, where it can be).
    """
    refused, strings = None, []
    for opcode, arg, pos in pickletools.genops(data):
        if opcode.name == "GLOBAL":
            _check_global(path, *_global_at(data, pos))
        elif opcode.name == "STACK_GLOBAL" and len(strings) == 2:
            _check_global(path, *strings)
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"):
            strings = [*strings[-1:], arg]
        if opcode.name not in _ALLOWED_OPCODES and refused is None:
            refused = (opcode.name, pos)
    if refused is not None:
        name, pos = refused
        raise CheckpointError(
            f"{path}: data.pkl uses the pickle opcode {name} (at byte {pos}), which torch.save never writes for a "
            f"state dict; minibert refuses it, since a pickle can do more than build tensors. {_RESAVE}"
        )


def _global_at(data: bytes, pos: int) -> tuple[str, str]:
    """The module and name of the GLOBAL opcode at `pos`, exactly as pickle reads them (two UTF-8 lines).

    pickletools' own argument undoes backslash escapes, which pickle does not: `torch\\x2e_utils` is not a module."""
    end_module = data.index(b"\n", pos + 1)
    end_name = data.index(b"\n", end_module + 1)
    return data[pos + 1 : end_module].decode("utf-8"), data[end_module + 1 : end_name].decode("utf-8")


def _check_global(path: Path, module: str, name: str) -> str:
    """The stand-in's name for an allowed global; refuse every other global, never importing anything."""
    allowed = _ALLOWED_GLOBALS.get((module, name))
    if allowed is None:
        refused = quote(f"{module}.{name}", 120)[1:-1]  # escaped: a name may hold newlines or terminal escapes
        raise CheckpointError(
            f"{path}: data.pkl refuses to load global '{refused}': pickle files can run code; only tensors and "
            f"ordered dicts are allowed. {_RESAVE}"
        )
    return allowed


class _Unpickler:
    """Runs data.pkl's opcodes (checked by `_scan_opcodes`) on a stack, rebuilding tensors as arrays.

    Each opcode is applied only to what torch.save applies it to, the rest is refused: SETITEM(S) adds str keys to a
    dict; BUILD sets an OrderedDict's state (the modules' `_metadata`, dropped); REDUCE calls only the allowed
    stand-ins; a persistent id must be a storage's. MARKs and tuples nest at most `_MAX_NESTING` deep.
    """

    def __init__(self, path: Path, f, members: dict[str, _Member], root: str):
        self.path, self.file, self.members, self.root = path, f, members, root
        self.byteorder = self._read_byteorder()
        self.storages: dict[str, _Storage] = {}
        self.copy_budget = _COPY_SLACK_BYTES  # grows by each storage's bytes as it is read
        self.callables = {
            "OrderedDict": collections.OrderedDict,
            "_rebuild_tensor_v2": self._rebuild_tensor_v2,
            "_rebuild_tensor": self._rebuild_tensor,
            "_rebuild_parameter": self._rebuild_parameter,
        }
        self.depths: dict[int, int] = {id(()): 1}  # id(tuple) -> nesting, for the tuples built here
        self.tuples: list[tuple] = []  # keeps them alive, so their ids stay theirs

    def read_member(self, name: str) -> bytearray:
        """A record's bytes, read once into a writable buffer and checked against the zip's CRC."""
        info, offset = self.members[name].info, self.members[name].data_offset
        buffer = bytearray(info.file_size)  # its size was checked against the archive by _check_members
        self.file.seek(offset)
        if self.file.readinto(buffer) != info.file_size or zlib.crc32(buffer) != info.CRC:
            raise CheckpointError(
                f"{self.path}: record {quote(name)} fails its CRC check; the file is corrupt, download or save it again"
            )
        return buffer

    def load(self, data: bytes):
        _scan_opcodes(self.path, data)
        stack: list = []
        marks: list[int] = []  # the stack's length at each open MARK
        memo: dict[int, object] = {}
        for opcode, arg, pos in pickletools.genops(data):
            op = opcode.name
            if op in _PUSHES_ITS_ARGUMENT:
                stack.append(arg)
            elif op in _CONSTANTS:
                stack.append(_CONSTANTS[op])
            elif op == "EMPTY_DICT":
                stack.append({})
            elif op == "MARK":
                if len(marks) >= _MAX_NESTING:
                    raise self._malformed(f"opens more than {_MAX_NESTING} MARKs at once", pos)
                marks.append(len(stack))
            elif op == "TUPLE":
                items = self._pop(stack, marks, len(stack) - marks[-1] if marks else -1, op, pos)
                marks.pop()
                stack.append(self._tuple(items, pos))
            elif op in ("TUPLE1", "TUPLE2", "TUPLE3"):
                stack.append(self._tuple(self._pop(stack, marks, int(op[-1]), op, pos), pos))
            elif op in ("BINPUT", "LONG_BINPUT"):
                memo[arg] = self._pop(stack, marks, 1, op, pos)[0]
                stack.append(memo[arg])
            elif op in ("BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise self._malformed(f"reads memo entry {arg}, which was never stored", pos)
                stack.append(memo[arg])
            elif op == "GLOBAL":
                allowed = _check_global(self.path, *_global_at(data, pos))
                stack.append(self.callables.get(allowed) or _StorageType(allowed, _STORAGE_DTYPES[allowed]))
            elif op == "BINPERSID":
                stack.append(self.persistent_load(self._pop(stack, marks, 1, op, pos)[0]))
            elif op == "REDUCE":
                function, args = self._pop(stack, marks, 2, op, pos)
                stack.append(self._call(function, args, pos))
            elif op == "BUILD":
                target, state = self._pop(stack, marks, 2, op, pos)
                if type(target) is not collections.OrderedDict or type(state) is not dict:
                    raise self._malformed(
                        f"sets the state of a {type(target).__name__} (BUILD); torch.save does that only to "
                        "OrderedDicts, and torch refuses it on anything else",
                        pos,
                    )
                stack.append(target)  # the state is the modules' _metadata (version numbers), not weights
            elif op in ("SETITEM", "SETITEMS"):
                count = 2 if op == "SETITEM" else (len(stack) - marks[-1] if marks else -1)
                items = self._pop(stack, marks, count, op, pos)
                if op == "SETITEMS":
                    marks.pop()
                target = self._pop(stack, marks, 1, op, pos)[0]
                self._setitems(target, items, pos)
                stack.append(target)
            elif op == "PROTO":
                pass
            elif op == "STOP":
                return self._pop(stack, marks, 1, op, pos)[0]
            else:  # _scan_opcodes refused it already; kept so that a gap between the two lists cannot go unnoticed
                raise self._malformed(f"uses opcode {op}", pos)
        raise self._malformed("ends without a STOP opcode", len(data))

    def _malformed(self, why: str, pos: int) -> CheckpointError:
        return CheckpointError(
            f"{self.path}: cannot read it as a torch.save archive (data.pkl {why}, at byte {pos}); the file is "
            "corrupt or was not written by torch.save"
        )

    def _pop(self, stack: list, marks: list[int], count: int, op: str, pos: int) -> list:
        """The top `count` values, which must all lie above the innermost open MARK (`count` -1: there is none)."""
        floor = marks[-1] if marks else 0
        if count < 0 or len(stack) - count < floor:
            raise self._malformed(f"has too few values on its stack for {op}", pos)
        items = stack[len(stack) - count :]
        del stack[len(stack) - count :]
        return items

    def _tuple(self, items: list, pos: int) -> tuple:
        depth = 1 + max((self.depths.get(id(item), 0) for item in items if type(item) is tuple), default=0)
        if depth > _MAX_NESTING:
            raise self._malformed(f"nests tuples more than {_MAX_NESTING} deep", pos)
        result = tuple(items)
        self.depths[id(result)] = depth
        self.tuples.append(result)
        return result

    def _call(self, function, args, pos: int):
        """REDUCE: call an allowed stand-in with a tuple of arguments of the count its torch original takes."""
        if function is collections.OrderedDict:
            if type(args) is not tuple or args:
                raise self._malformed("calls OrderedDict with arguments; torch.save calls it with none", pos)
            return collections.OrderedDict()
        name = next((name for name, f in self.callables.items() if f is function), None)
        if name is None or type(args) is not tuple or len(args) not in _ARITY[name]:
            what = name or f"a {type(function).__name__}"
            raise self._malformed(f"calls {what} with {quote(args)}; torch.save writes no such call", pos)
        return function(*args)

    def _setitems(self, target, items: list, pos: int) -> None:
        """SETITEM(S): str keys into a dict built here; never into an array, a storage or a tuple."""
        if type(target) not in (dict, collections.OrderedDict):
            raise self._malformed(f"sets items of a {type(target).__name__}; torch.save sets items only of dicts", pos)
        for key, value in zip(items[::2], items[1::2], strict=True):
            if type(key) is not str:
                raise self._malformed(f"has a dict key that is {quote(key)}; a state dict's keys are strings", pos)
            if type(value) in (tuple, _Storage, _StorageType) or callable(value):
                raise self._malformed(f"stores {quote(value)} under key {quote(key)} in a dict", pos)
            target[key] = value

    def persistent_load(self, pid) -> _Storage:
        """Resolve ('storage', storage_type, key, location, numel) to the storage's elements, read once."""
        if not (type(pid) is tuple and len(pid) == 5 and type(pid[0]) is str and pid[0] == "storage"):
            raise CheckpointError(
                f"{self.path}: data.pkl has persistent id {quote(pid)}; expected "
                "('storage', storage_type, key, location, numel)"
            )
        # location ('cpu', 'cuda:0', ...) is where torch would put the storage; NumPy has only the host.
        _, storage_type, key, location, numel = pid
        if not (
            isinstance(storage_type, _StorageType)
            and type(key) is str
            and type(location) is str
            and type(numel) is int
            and numel >= 0
        ):
            raise CheckpointError(
                f"{self.path}: data.pkl has a malformed storage id (type {quote(storage_type)}, key {quote(key)}, "
                f"numel {quote(numel)}); expected ('storage', storage_type, key, location, numel)"
            )
        if key not in self.storages:
            self.storages[key] = self._read_storage(storage_type, key, numel)
        storage = self.storages[key]
        if storage.type != storage_type:
            raise CheckpointError(
                f"{self.path}: storage {quote(key)} is used as both {storage.type.name} and {storage_type.name}"
            )
        return storage

    def _read_byteorder(self) -> str:
        name = f"{self.root}/byteorder"
        if name not in self.members:
            return "little"  # files from before torch wrote this record were little-endian
        if self.members[name].info.file_size > 16:
            raise CheckpointError(f"{self.path}: record '{name}' is not 'little' or 'big'")
        byteorder = self.read_member(name).decode("ascii", "replace")
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{self.path}: record '{name}' says {quote(byteorder)}; expected little or big")
        return byteorder

    def _read_storage(self, storage_type: _StorageType, key: str, numel: int) -> _Storage:
        name = f"{self.root}/data/{key}"
        if name not in self.members:
            raise CheckpointError(
                f"{self.path}: data.pkl refers to storage {quote(key)} but the record {quote(name)} is missing; "
                "the file is incomplete, save or download it again"
            )
        size, itemsize = self.members[name].info.file_size, storage_type.dtype.itemsize
        if size != numel * itemsize:
            raise CheckpointError(
                f"{self.path}: record {quote(name)} has {size} bytes; data.pkl says it holds "
                f"{numel} {storage_type.name} elements ({numel * itemsize} bytes)"
            )
        # A writable buffer, so arrays that view it whole need no copy, swapped to native order in place.
        flat = np.frombuffer(self.read_member(name), dtype=storage_type.dtype)
        if self.byteorder != sys.byteorder:
            flat = flat.byteswap(inplace=True)
        if storage_type.name == "BFloat16Storage":
            flat = bfloat16_bits_to_float32(flat)
        self.copy_budget += flat.nbytes
        return _Storage(key, storage_type, flat)

    def _rebuild_tensor_v2(
        self, storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
    ) -> np.ndarray:
        # requires_grad, backward hooks and metadata describe autograd state, not values.
        return self._rebuild_tensor(storage, storage_offset, size, stride)

    def _rebuild_parameter(self, data, requires_grad, backward_hooks) -> np.ndarray:
        if not isinstance(data, np.ndarray):
            raise CheckpointError(f"{self.path}: data.pkl makes a parameter of {quote(data)}; expected a tensor")
        return data  # an nn.Parameter is its tensor plus requires_grad

    def _rebuild_tensor(self, storage, storage_offset, size, stride) -> np.ndarray:
        """The tensor torch would view into `storage`, as a C-contiguous native-endian array."""
        if not isinstance(storage, _Storage):
            raise CheckpointError(f"{self.path}: data.pkl builds a tensor from a {type(storage).__name__}")
        if type(size) is not tuple or type(stride) is not tuple:
            raise CheckpointError(
                f"{self.path}: a tensor of storage {quote(storage.key)} has size {quote(size)} and stride "
                f"{quote(stride)}; expected tuples of integers"
            )
        if len(size) > _MAX_DIMS:
            raise CheckpointError(
                f"{self.path}: a tensor of storage {quote(storage.key)} has {len(size)} dimensions; NumPy arrays have "
                f"at most {_MAX_DIMS}"
            )
        if not _are_naturals(size, stride, (storage_offset,)) or len(size) != len(stride):
            raise CheckpointError(
                f"{self.path}: storage {quote(storage.key)} is viewed with size {_ints(size)}, stride {_ints(stride)} "
                f"and offset {quote(storage_offset)}; expected non-negative integers, one stride per dimension"
            )
        flat = storage.flat
        nbytes = math.prod(size) * flat.itemsize
        if math.prod(n for n in size if n) * flat.itemsize > np.iinfo(np.intp).max:
            raise CheckpointError(
                f"{self.path}: a tensor of storage {quote(storage.key)} has size {_ints(size)}, too large for any array"
            )
        if nbytes == 0:
            return np.empty(size, flat.dtype)
        # Check bounds ourselves: as_strided would happily read memory outside the storage.
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= flat.size:
            raise CheckpointError(
                f"{self.path}: a tensor of size {_ints(size)}, stride {_ints(stride)}, offset {quote(storage_offset)} "
                f"reads element {quote(last)} of storage {quote(storage.key)}, which has {flat.size}"
            )
        if storage_offset == 0 and _is_c_contiguous(size, stride) and math.prod(size) == flat.size:
            return flat.reshape(size)
        self.copy_budget -= nbytes
        if self.copy_budget < 0:
            raise CheckpointError(
                f"{self.path}: a tensor of size {_ints(size)} and stride {_ints(stride)} views storage "
                f"{quote(storage.key)} ({flat.nbytes} bytes) repeatedly (stride 0 or overlapping views); as a "
                f"contiguous array the views would take more memory than all the file's storages. {_RESAVE}"
            )
        strides = tuple(s * flat.itemsize for s in stride)
        view = np.lib.stride_tricks.as_strided(flat[storage_offset:], shape=size, strides=strides, writeable=False)
        return view.copy(order="C")  # [*size]: own, contiguous memory, not a view of neighbours


def _are_naturals(*groups: tuple) -> bool:
    return all(type(n) is int and n >= 0 for group in groups for n in group)


def _ints(values: tuple) -> str:
    """A tuple of untrusted integers for a message, each quoted (a 600-digit one prints as its bit count)."""
    return "(" + ", ".join(quote(n) for n in values) + ("," if len(values) == 1 else "") + ")"


def _is_c_contiguous(size: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    """True if (size, stride) is the row-major layout; strides of length-1 dimensions do not matter."""
    expected = 1
    for n, s in reversed(list(zip(size, stride, strict=True))):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def _check_state_dict(path: Path, state_dict) -> dict[str, np.ndarray]:
    """The file must hold a flat {str: tensor} mapping, as `model.state_dict()` is."""
    if type(state_dict) not in (dict, collections.OrderedDict):
        raise CheckpointError(f"{path}: holds a {type(state_dict).__name__}; expected a state dict {{name: tensor}}")
    for name, value in state_dict.items():
        if not isinstance(value, np.ndarray):
            raise CheckpointError(
                f"{path}: entry {quote(name)} is a {type(value).__name__}; expected a state dict {{name: tensor}}. "
                "For a training checkpoint, save its model state_dict on its own"
            )
    return dict(state_dict)
