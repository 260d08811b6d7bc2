"""The output of the embedding job: shards, the manifest, the final .npy, and reading them back.

An output directory holds

    manifest.json       what was asked (model and its weights' SHA-256, dtype, pooling, the input's path, size,
                        modification time and format, the partition boundaries) and, once every shard is written,
                        rows, dim, the bad lines and the cut ones
    part-00000.npz      one shard per partition: `embeddings` float32 [n, dim], `lines` int64 [n] (the 1-based input
                        line numbers of the rows), `bad_lines` and `bad_reasons`, `cut_lines` int64 [k, 2] (the
                        line numbers and token counts of texts cut to the model's length), and the manifest's
                        `fingerprint`

Every file is written atomically, so a shard or manifest that is there is always complete. On a local disk: a
temporary name, then os.replace (files.write_atomically). At an fsspec URL (s3://bucket/emb/, gs://..., memory://):
the object is made in memory and stored with one put (fs.pipe_file), relying on the store's atomic put: S3, GCS and
Azure make an object visible only once its upload has completed, so a reader sees the old object or the whole new
one, and a writer killed mid-upload leaves nothing behind (an unfinished multipart upload is not an object). There
is no rename to rely on: S3 has none, and its copy-then-delete "move" is not atomic.

An output named like `emb.npy` (local, in-process runs only) is worked on in `emb.parts/` and, when the last
partition is done, assembled into one memory-mappable `emb.npy` with its manifest beside it, `emb.manifest.json`.
"""

import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

from .. import files
from ..errors import InputError

MANIFEST = "manifest.json"
# The keys every manifest has, and those a finished one adds (the .npy's sidecar has them too).
MANIFEST_KEYS = ("format", "version", "model", "input", "partitions", "rows", "fingerprint", "complete")
COMPLETE_KEYS = ("dim", "bad_lines")


# ---------------------------------------------------------------------------------------------------------------
# Locations: a local Path, or a URL string that fsspec opens (imported only for URLs).


def is_url(location) -> bool:
    return isinstance(location, str) and "://" in location


def _filesystem(url: str):
    """(fsspec filesystem, path in it) for `url`, its listing cache dropped: workers write shards behind its back."""
    try:
        import fsspec
    except ImportError:
        raise InputError(
            f"{url}: a URL needs fsspec: pip install 'minibert-numpy[cluster]' (and s3fs for s3://, gcsfs for gs://)"
        ) from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as error:  # an unknown protocol, or its package (s3fs, gcsfs) not installed
        raise InputError(f"{url}: cannot open this URL ({error})") from None
    fs.invalidate_cache()
    return fs, path


def join(directory, name: str):
    return f"{directory.rstrip('/')}/{name}" if is_url(directory) else Path(directory) / name


def absolute(location) -> str:
    """What a worker is given: the URL, or the absolute path (workers may run in another directory)."""
    return location if is_url(location) else str(Path(location).resolve())


def is_file(location) -> bool:
    if is_url(location):
        fs, path = _filesystem(location)
        return fs.isfile(path)
    return Path(location).is_file()


def open_binary(location):
    """A seekable binary file to read; at a URL, ranges are fetched as they are read (an .npz header is a few kB)."""
    if is_url(location):
        fs, path = _filesystem(location)
        return fs.open(path, "rb")
    return open(location, "rb")


def write_atomically(location, write) -> None:
    """Call `write(f)` and store what it wrote at `location`, whole or not at all (see the module docstring)."""
    if not is_url(location):
        files.write_atomically(location, write)
        return
    buffer = io.BytesIO()
    write(buffer)
    fs, path = _filesystem(location)
    try:
        fs.pipe_file(path, buffer.getvalue())  # one put: the object appears complete, or not at all
    except OSError as error:
        raise InputError(f"{location}: cannot write there ({error})") from None


def make_directory(location) -> None:
    """A local directory; nothing at a URL, where "directories" are key prefixes (and a bucket is not created: a
    missing one fails the first write, naming it)."""
    if not is_url(location):
        Path(location).mkdir(parents=True, exist_ok=True)


# ---------------------------------------------------------------------------------------------------------------
# Where a run's files go.


@dataclass(frozen=True)
class OutputPaths:
    """Where one run writes: the directory of its shards and manifest (a Path, or a URL), and the .npy they become
    (or None)."""

    directory: Path | str
    npy: Path | None = None

    @property
    def manifest(self) -> Path | str:
        return join(self.directory, MANIFEST)

    @property
    def finished_manifest(self) -> Path | str:
        """The manifest a finished run leaves: beside the .npy, or in the directory."""
        return self.npy.with_suffix(".manifest.json") if self.npy is not None else self.manifest

    @property
    def output(self) -> Path | str:
        """What the user named: the .npy, or the directory."""
        return self.npy if self.npy is not None else self.directory

    def shard(self, name: str) -> Path | str:
        return join(self.directory, name)


def output_paths(output, clustered: bool) -> OutputPaths:
    """Where an output's files go: a directory of shards (a path, or an fsspec URL), or a local .npy file (worked on
    in `<name>.parts/`, in-process only). Any other name is refused, before any work."""
    text = os.fspath(output)
    if text.startswith("file://"):
        text = unquote(urlparse(text).path)  # a local path: written with os.replace, as any local output
    if is_url(text):
        if text.rstrip("/").endswith(".npy"):
            raise InputError(
                f"{text}: a .npy output is a local file; at a URL pass a directory, e.g. "
                f"{text.rstrip('/')[: -len('.npy')]}/, and read it back with minibert.read_embeddings"
            )
        _filesystem(text)  # fsspec and the protocol's package are there: fail now, not after the work
        return OutputPaths(text.rstrip("/"))
    path = Path(text).expanduser()
    if path.suffix == ".npy":
        if clustered:
            raise InputError(
                f"{path}: a single .npy output is for in-process runs; with --workers or --scheduler pass a "
                "directory, whose shards the workers write in parallel"
            )
        return OutputPaths(path.with_suffix(".parts"), path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a directory; pass a directory (or a name ending in .npy)")
    if path.suffix and not path.is_dir() and not text.endswith(("/", os.sep)):
        raise InputError(
            f"{path}: the output must be a .npy file or a directory (a name without a suffix, or ending in /), "
            f"found {path.suffix!r}; pass e.g. {path.with_suffix('.npy')} or {path.with_suffix('')}/"
        )
    return OutputPaths(path)


# ---------------------------------------------------------------------------------------------------------------
# Shards.


def write_shard(location, **arrays) -> None:
    # A local temporary name is unique: if Dask runs a task twice (a worker presumed lost that was not), each copy
    # writes its own file and the last rename wins with identical content; at a URL the last put wins, as whole.
    write_atomically(location, lambda f: np.savez(f, **arrays))


def shard_is_complete(path, partition: dict, fingerprint: str, manifest_path) -> bool:
    """True for a shard of this run with every row of its partition; False if missing or unreadable (recompute it).

    Raises for a readable shard of another run: it must not be mixed in, and silently overwriting it could destroy
    someone's finished work.
    """
    if not is_file(path):
        return False
    try:
        with open_binary(path) as f, np.load(f, allow_pickle=False) as shard:
            if str(shard["fingerprint"]) != fingerprint:
                raise InputError(
                    f"{path}: this shard was made by another run (model, dtype or input differ from "
                    f"{manifest_path}); refusing to mix it in. Delete it, or pass another --output"
                )
            lines = shard["lines"]
            shape, dtype = _npz_array_header(shard, "embeddings")
    except InputError:
        raise
    except Exception:  # truncated or corrupt: a zip, npy or key error; the partition is simply done again
        return False
    first, n = partition["first_line"], partition["lines"]
    return (
        dtype == np.float32
        and len(shape) == 2
        and shape[0] == n
        and lines.shape == (n,)
        and np.array_equal(lines, np.arange(first, first + n))
    )


def has_shards(directory) -> bool:
    if is_url(directory):
        fs, path = _filesystem(directory)
        return bool(fs.glob(f"{path}/part-*.npz"))
    return any(Path(directory).glob("part-*.npz"))


def _npz_array_header(npz, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of one array of an open .npz, from its header: without reading its 1.5 kB a row."""
    with npz.zip.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
    return shape, dtype


def shard_dim(path) -> int:
    with open_binary(path) as f, np.load(f, allow_pickle=False) as shard:
        return int(_npz_array_header(shard, "embeddings")[0][1])


def shard_bad_lines(path) -> list[tuple[int, str]]:
    with open_binary(path) as f, np.load(f, allow_pickle=False) as shard:
        return [(int(n), str(r)) for n, r in zip(shard["bad_lines"], shard["bad_reasons"], strict=True)]


def shard_cut_lines(path) -> list[tuple[int, int]]:
    """(line number, its tokens) of each text the shard's partition cut to the model's length; none in shards of
    minibert before 0.2, which did not record them."""
    with open_binary(path) as f, np.load(f, allow_pickle=False) as shard:
        if "cut_lines" not in shard.files:
            return []
        return [(int(n), int(t)) for n, t in shard["cut_lines"]]


# ---------------------------------------------------------------------------------------------------------------
# The manifest.


def write_manifest(path, values: dict) -> None:
    write_atomically(path, lambda f: f.write((json.dumps(values, indent=1) + "\n").encode("utf-8")))


def read_manifest_file(path) -> dict:
    """A manifest file, checked to be one: JSON, minibert's format, and every key the job and read_embeddings use."""
    try:
        with open_binary(path) as f:
            manifest = json.loads(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(
            f"{path}: cannot be read as JSON ({error}); it is damaged. Delete the output and run again"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != "minibert-embeddings":
        raise InputError(f"{path}: not a minibert embeddings manifest; pass another output")
    required = MANIFEST_KEYS + (COMPLETE_KEYS if manifest.get("complete") else ())
    missing = [key for key in required if key not in manifest]
    missing += [key for key in ("model", "input") if not isinstance(manifest.get(key, {}), dict)]
    missing += [key for key in ("partitions",) if not isinstance(manifest.get(key, []), list)]
    if missing:
        raise InputError(
            f"{path}: a minibert embeddings manifest without a valid {', '.join(missing)}; it is damaged. Delete "
            "the output and run again"
        )
    return manifest


# ---------------------------------------------------------------------------------------------------------------
# The final .npy.


def assemble_npy(paths: OutputPaths, manifest: dict) -> None:
    """The shards, in order, streamed into one .npy written atomically; then its manifest; the parts go away."""

    def write(f) -> None:
        header = {"descr": "<f4", "fortran_order": False, "shape": (manifest["rows"], manifest["dim"])}
        np.lib.format.write_array_header_1_0(f, header)  # as np.save writes it, so np.load can memory-map the file
        # The partitions follow each other in the input, and each shard holds its lines in order (checked by
        # shard_is_complete, or written so by the job), so the rows go out in input order.
        for partition in manifest["partitions"]:
            with np.load(paths.shard(partition["shard"]), allow_pickle=False) as shard:
                f.write(np.ascontiguousarray(shard["embeddings"], dtype="<f4").tobytes())

    files.write_atomically(paths.npy, write)
    sidecar = {k: v for k, v in manifest.items() if k != "partitions"}
    sidecar["partitions"] = [
        {k: p[k] for k in ("index", "start", "end", "first_line", "lines")} for p in manifest["partitions"]
    ]
    write_manifest(paths.finished_manifest, sidecar)
    shutil.rmtree(paths.directory)


# ---------------------------------------------------------------------------------------------------------------
# Reading an output back.


def read_manifest(output) -> dict:
    """The manifest of an output directory (or URL), or of a .npy output (its `<name>.manifest.json`)."""
    paths = output_paths(output, clustered=False)
    path = paths.finished_manifest
    if paths.npy is not None and not is_file(path) and is_file(paths.manifest):
        path = paths.manifest  # unfinished: in the work directory
    if not is_file(path):
        raise InputError(f"{paths.output}: no {Path(str(path)).name} there; is it the output of `minibert embed`?")
    return read_manifest_file(path)


def read_embeddings(output) -> np.ndarray:
    """float32 [rows, dim], row i for input line i + 1 (NaN for bad lines), memory-mapped for a .npy output."""
    paths = output_paths(output, clustered=False)
    manifest = read_manifest(output)
    if not manifest.get("complete"):
        raise InputError(
            f"{paths.output}: the run that writes it has not finished; rerun the same command to complete it"
        )
    if paths.npy is not None:
        embeddings = np.load(paths.npy, mmap_mode="r")
    else:
        embeddings = np.empty((manifest["rows"], manifest["dim"]), dtype=np.float32)
        for partition in manifest["partitions"]:
            location = paths.shard(partition["shard"])
            with open_binary(location) as f, np.load(f, allow_pickle=False) as shard:
                if str(shard["fingerprint"]) != manifest["fingerprint"]:
                    raise InputError(f"{location}: made by another run than {paths.manifest}")
                first = partition["first_line"]
                embeddings[first - 1 : first - 1 + partition["lines"]] = shard["embeddings"]
    if embeddings.shape != (manifest["rows"], manifest["dim"]):
        raise InputError(
            f"{paths.output}: holds {embeddings.shape}, the manifest says ({manifest['rows']}, {manifest['dim']})"
        )
    return embeddings
