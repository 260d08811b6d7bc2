"""Writing output files atomically: a reader sees the old file or the complete new one, never half of one."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import InputError


def check_writable(path, suffixes: tuple[str, ...]) -> Path:
    """`path` as a Path, after checking that it can be an output file with one of `suffixes` (e.g. ".npy").

    A missing folder on the way is not an error: write_atomically creates it, once the work is done (so a run that
    fails leaves no empty folder behind). What is checked now is that the nearest folder that exists takes new files.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file name, e.g. {path / ('out' + suffixes[0])}")
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{path}: the output must be a file ending in {' or '.join(suffixes)}, found {path.name!r}")
    existing = next(folder for folder in path.absolute().parents if folder.exists())
    if not existing.is_dir():
        raise InputError(f"{path}: {existing} is a file, so it cannot hold a folder or file; choose another path")
    try:  # find out now, not after the work, that the folder takes no new files
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise InputError(f"{path}: cannot create a file in {existing} ({error.strerror})") from None
    return path


def write_atomically(path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(f)` on a temporary file beside `path`, then rename it to `path` (os.replace is atomic).

    The temporary name is unique, so two writers of the same file (a Dask task run twice) never share one; the
    last rename wins. The file is fsynced before the rename and the directory after it, so that after a power loss
    `path` is the old file or the complete new one, not a renamed empty one.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # as `minibert embed` does for its output folder
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise InputError(f"{path}: cannot write there ({error.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private (0600); give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable. POSIX only: Windows cannot open a directory, and needs no such step."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems (network mounts) refuse fsync on a directory; the rename still happened
        pass
    finally:
        os.close(fd)
