"""Making broken checkpoints for the tests of bad inputs (tests/test_bad_*.py): a copy of a tiny checkpoint in tmp_path,
its config.json or tensors edited, or a safetensors file written by hand so that its header can lie."""

import json
import shutil
import struct
from pathlib import Path

from safetensors.numpy import load_file, save_file

from support.helpers import WEIGHTS

TINY = WEIGHTS / "tiny-gelu"  # vocab 99, hidden 32, 2 layers, 4 heads, max_position_embeddings 64, 2 token types


def copy_checkpoint(tmp_path: Path, source: Path = TINY) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(source / name, directory / name)
    return directory


def edit_config(directory: Path, drop=(), **changes) -> None:
    values = json.loads((directory / "config.json").read_text())
    for name in drop:
        del values[name]
    values.update(changes)
    (directory / "config.json").write_text(json.dumps(values))


def edit_tensors(directory: Path, edit) -> None:
    """Load model.safetensors, let `edit` change the dict of tensors in place, save it back (a valid file)."""
    tensors = load_file(directory / "model.safetensors")
    edit(tensors)
    save_file(tensors, directory / "model.safetensors")


def write_safetensors(path: Path, header, data: bytes, header_length: int | None = None) -> None:
    """A safetensors file by hand, so that its header can lie: length prefix, JSON header, data."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if header_length is None else header_length) + raw + data)
