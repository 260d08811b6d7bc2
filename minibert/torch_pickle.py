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

A pickle can call any importable function, so `data.pkl` is read by `_RestrictedUnpickler`, which knows
only the handful of globals a state dict needs and maps each to a NumPy stand-in; anything else is refused
before it is looked up. Files from torch < 1.6 (a bare pickle stream, not a zip) are refused.
"""

import collections
import io
import math
import pickle
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dtypes import bfloat16_bits_to_float32
from .errors import CheckpointError

# Storage classes as they appear in `persistent_load` ids, and the dtype of their elements. bfloat16 is
# read as its raw uint16 bits (NumPy has no bfloat16) and widened to float32 once the tensor is built.
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

# The only globals data.pkl may name: (module, name) -> what find_class returns (method names are bound
# per unpickler, so errors can name the file).
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): "_rebuild_tensor_v2",
    ("torch._utils", "_rebuild_tensor"): "_rebuild_tensor",
    ("torch._utils", "_rebuild_parameter"): "_rebuild_parameter",
    ("torch.storage", "UntypedStorage"): "UntypedStorage",
    **{("torch", name): name for name in _STORAGE_DTYPES},
}

_LEGACY_HINT = (
    "it is a legacy (torch < 1.6) file, which minibert does not read; re-save it with torch>=1.6: "
    "torch.save(torch.load(path), path)"
)


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
    flat: np.ndarray  # [numel] in the file's byte order


def load_torch_bin(path: str | Path) -> dict[str, np.ndarray]:
    """Read a state dict saved by `torch.save` as {name: array}, without running code from the file.

    Arrays are C-contiguous and in native byte order, with the tensor's dtype, except bfloat16 tensors,
    which come back as float32 (widened exactly by `bfloat16_bits_to_float32`). A tensor that spans its
    whole storage is a view of the bytes read from the file, so tensors tied to one storage (tied
    embeddings) share memory as they do in torch; every other tensor is a copy.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; expected a pytorch_model.bin written by torch.save")
    try:
        is_zip = zipfile.is_zipfile(path)
    except zipfile.BadZipFile:  # is_zipfile raises, not returns False, on some broken end records: a corrupt zip
        is_zip = True  # ZipFile below then fails inside the try, and says so
    if not is_zip:
        raise CheckpointError(f"{path}: {_why_not_a_zip(path)}")
    try:
        with zipfile.ZipFile(path) as archive:
            root = _archive_root(path, archive)
            unpickler = _RestrictedUnpickler(path, archive, root)
            state_dict = unpickler.load()
    except CheckpointError:
        raise
    except Exception as e:
        # A corrupt or hostile file can fail in any of pickle's or zipfile's many ways (BadZipFile,
        # UnpicklingError, EOFError, TypeError on odd arguments, ...); all of them mean "bad file".
        raise CheckpointError(
            f"{path}: cannot read it as a torch.save archive ({type(e).__name__}: {e}); "
            "the file is corrupt or truncated, download or save it again"
        ) from e
    return _check_state_dict(path, state_dict)


def _why_not_a_zip(path: Path) -> str:
    """Say what a file that is not a zip archive probably is, and what to do."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"\x80"):  # pickle protocol >= 2: torch < 1.6 wrote a bare pickle stream
        return _LEGACY_HINT
    if head[257:262] == b"ustar":  # torch's oldest format was a tar archive
        return _LEGACY_HINT
    return (
        "not a zip archive, so not a pytorch_model.bin written by torch >= 1.6 (it may be truncated: download it again)"
    )


def _archive_root(path: Path, archive: zipfile.ZipFile) -> str:
    """The top-level folder that holds data.pkl; torch names it after the file at save time."""
    names = archive.namelist()
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


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles data.pkl allowing only the globals in `_ALLOWED_GLOBALS`, rebuilding tensors as arrays."""

    def __init__(self, path: Path, archive: zipfile.ZipFile, root: str):
        super().__init__(io.BytesIO(archive.read(f"{root}/data.pkl")))
        self.path, self.archive, self.root = path, archive, root
        self.byteorder = self._read_byteorder()
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        """Refuse every global but the few a state dict needs; never import anything."""
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise CheckpointError(
                f"{self.path}: data.pkl refuses to load global '{module}.{name}': pickle files can run "
                "code; only tensors and ordered dicts are allowed. If the file is trusted, load it with "
                "torch and save its state_dict as safetensors"
            )
        if isinstance(allowed, str) and allowed in _STORAGE_DTYPES:
            return _StorageType(allowed, _STORAGE_DTYPES[allowed])
        if isinstance(allowed, str):
            return getattr(self, allowed)
        return allowed

    def persistent_load(self, pid):
        """Resolve ('storage', storage_type, key, location, numel) to the storage's elements, read once."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(
                f"{self.path}: data.pkl has persistent id {pid!r}; expected "
                "('storage', storage_type, key, location, numel)"
            )
        # location ('cpu', 'cuda:0', ...) is where torch would put the storage; NumPy has only the host.
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or type(numel) is not int:
            raise CheckpointError(f"{self.path}: data.pkl has a malformed storage id {pid!r}")
        if key not in self.storages:
            self.storages[key] = self._read_storage(storage_type, key, numel)
        storage = self.storages[key]
        if storage.type != storage_type:
            raise CheckpointError(
                f"{self.path}: storage '{key}' is used as both {storage.type.name} and {storage_type.name}"
            )
        return storage

    def _read_byteorder(self) -> str:
        name = f"{self.root}/byteorder"
        if name not in self.archive.NameToInfo:
            return "little"  # files from before torch wrote this record were little-endian
        byteorder = self.archive.read(name).decode("ascii", "replace")
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{self.path}: record '{name}' says {byteorder!r}; expected little or big")
        return byteorder

    def _read_storage(self, storage_type: _StorageType, key: str, numel: int) -> _Storage:
        name = f"{self.root}/data/{key}"
        info = self.archive.NameToInfo.get(name)
        if info is None:
            raise CheckpointError(
                f"{self.path}: data.pkl refers to storage '{key}' but the record '{name}' is missing; "
                "the file is incomplete, save or download it again"
            )
        dtype = storage_type.dtype
        if self.byteorder != sys.byteorder:
            dtype = dtype.newbyteorder()  # swapped: _rebuild_tensor converts to native order
        if info.file_size != numel * dtype.itemsize:
            raise CheckpointError(
                f"{self.path}: record '{name}' has {info.file_size} bytes; data.pkl says it holds "
                f"{numel} {storage_type.name} elements ({numel * dtype.itemsize} bytes)"
            )
        # A writable buffer, so arrays that view it whole need no copy; reading to the end checks the CRC.
        buffer = bytearray(info.file_size)
        with self.archive.open(info) as f:
            f.readinto(buffer)
        return _Storage(key, storage_type, np.frombuffer(buffer, dtype=dtype))

    def _rebuild_tensor_v2(
        self, storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
    ) -> np.ndarray:
        # requires_grad, backward hooks and metadata describe autograd state, not values.
        return self._rebuild_tensor(storage, storage_offset, size, stride)

    def _rebuild_parameter(self, data, requires_grad, backward_hooks) -> np.ndarray:
        return data  # an nn.Parameter is its tensor plus requires_grad

    def _rebuild_tensor(self, storage, storage_offset, size, stride) -> np.ndarray:
        """The tensor torch would view into `storage`, as a C-contiguous native-endian array."""
        if not isinstance(storage, _Storage):
            raise CheckpointError(f"{self.path}: data.pkl builds a tensor from {type(storage).__name__}")
        size, stride = tuple(size), tuple(stride)
        if not _are_naturals(size, stride, (storage_offset,)) or len(size) != len(stride):
            raise CheckpointError(
                f"{self.path}: storage '{storage.key}' is viewed with size {size}, stride {stride} and "
                f"offset {storage_offset!r}; expected non-negative integers, one stride per dimension"
            )
        flat = storage.flat
        if 0 in size:
            array = np.empty(size, flat.dtype)
        else:
            # Check bounds ourselves: as_strided would happily read memory outside the storage.
            last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
            if last >= flat.size:
                raise CheckpointError(
                    f"{self.path}: a tensor of size {size}, stride {stride}, offset {storage_offset} reads "
                    f"element {last} of storage '{storage.key}', which has {flat.size}"
                )
            if storage_offset == 0 and _is_c_contiguous(size, stride) and math.prod(size) == flat.size:
                array = flat.reshape(size)
            else:
                strides = tuple(s * flat.itemsize for s in stride)
                view = np.lib.stride_tricks.as_strided(
                    flat[storage_offset:], shape=size, strides=strides, writeable=False
                )
                array = view.copy(order="C")  # [*size]: own, contiguous memory, not a view of neighbours
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        if storage.type.name == "BFloat16Storage":
            array = bfloat16_bits_to_float32(array)
        return array


def _are_naturals(*groups: tuple) -> bool:
    return all(type(n) is int and n >= 0 for group in groups for n in group)


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
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: holds a {type(state_dict).__name__}; expected a state dict {{name: tensor}}")
    for name, value in state_dict.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise CheckpointError(
                f"{path}: entry {name!r} is a {type(value).__name__}; expected a state dict {{name: tensor}}. "
                "For a training checkpoint, save its model state_dict on its own"
            )
    return dict(state_dict)
