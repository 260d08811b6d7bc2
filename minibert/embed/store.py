"""The output of the embedding job: shards, the manifest, the final .npy, and reading them back.

An output directory holds

    manifest.json       what was asked (model and its weights' SHA-256, dtype, pooling, the input's path, size,
                        modification time and format, the partition boundaries) and, once every shard is written,
                        rows, dim and the bad lines
    part-00000.npz      one shard per partition: `embeddings` float32 [n, dim], `lines` int64 [n] (the 1-based input
                        line numbers of the rows), `bad_lines` and `bad_reasons`, and the manifest's `fingerprint`

Every file is written atomically (a temporary name, then os.replace), so a shard on disk is always complete. An
output named like `emb.npy` is worked on in `emb.parts/` and, when the last partition is done, assembled into one
memory-mappable `emb.npy` with its manifest beside it, `emb.manifest.json`.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import write_atomically

MANIFEST = "manifest.json"
# The keys every manifest has, and those a finished one adds (the .npy's sidecar has them too).
MANIFEST_KEYS = ("format", "version", "model", "input", "partitions", "rows", "fingerprint", "complete")
COMPLETE_KEYS = ("dim", "bad_lines")


# ---------------------------------------------------------------------------------------------------------------
# Where a run's files go.


@dataclass(frozen=True)
class OutputPaths:
    """Where one run writes: the directory of its shards and manifest, and the .npy they become (or None)."""

    directory: Path
    npy: Path | None = None

    @property
    def manifest(self) -> Path:
        return self.directory / MANIFEST

    @property
    def finished_manifest(self) -> Path:
        """The manifest a finished run leaves: beside the .npy, or in the directory."""
        return self.npy.with_suffix(".manifest.json") if self.npy is not None else self.manifest

    def shard(self, name: str) -> Path:
        return self.directory / name


def output_paths(output, clustered: bool) -> OutputPaths:
    """The paths of an output: a directory of shards, or a .npy (worked on in `<name>.parts/`, in-process only)."""
    output = Path(output)
    if output.suffix == ".npy":
        if clustered:
            raise InputError(
                f"{output}: a single .npy output is for in-process runs; with --workers or --scheduler pass a "
                "directory, whose shards the workers write in parallel"
            )
        return OutputPaths(output.with_suffix(".parts"), output)
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a directory; pass a directory (or a name ending in .npy)")
    return OutputPaths(output)


# ---------------------------------------------------------------------------------------------------------------
# Shards.


def write_shard(path, **arrays) -> None:
    # write_atomically's temporary name is unique: if Dask runs a task twice (a worker presumed lost that was not),
    # each copy writes its own file and the last rename wins with identical content.
    write_atomically(path, lambda f: np.savez(f, **arrays))


def shard_is_complete(path: Path, partition: dict, fingerprint: str, manifest_path: Path) -> bool:
    """True for a shard of this run with every row of its partition; False if missing or unreadable (recompute it).

    Raises for a readable shard of another run: it must not be mixed in, and silently overwriting it could destroy
    someone's finished work.
    """
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as shard:
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


def has_shards(directory: Path) -> bool:
    return any(directory.glob("part-*.npz"))


def _npz_array_header(npz, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of one array of an open .npz, from its header: without reading its 1.5 kB a row."""
    with npz.zip.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
    return shape, dtype


def shard_dim(path: Path) -> int:
    with np.load(path, allow_pickle=False) as shard:
        return int(_npz_array_header(shard, "embeddings")[0][1])


def shard_bad_lines(path: Path) -> list[tuple[int, str]]:
    with np.load(path, allow_pickle=False) as shard:
        return [(int(n), str(r)) for n, r in zip(shard["bad_lines"], shard["bad_reasons"], strict=True)]


# ---------------------------------------------------------------------------------------------------------------
# The manifest.


def write_manifest(path: Path, values: dict) -> None:
    write_atomically(path, lambda f: f.write((json.dumps(values, indent=1) + "\n").encode("utf-8")))


def read_manifest_file(path: Path) -> dict:
    """A manifest file, checked to be one: JSON, minibert's format, and every key the job and read_embeddings use."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
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

    write_atomically(paths.npy, write)
    sidecar = {k: v for k, v in manifest.items() if k != "partitions"}
    sidecar["partitions"] = [
        {k: p[k] for k in ("index", "start", "end", "first_line", "lines")} for p in manifest["partitions"]
    ]
    write_manifest(paths.finished_manifest, sidecar)
    shutil.rmtree(paths.directory)


# ---------------------------------------------------------------------------------------------------------------
# Reading an output back.


def read_manifest(output) -> dict:
    """The manifest of an output directory or of a .npy output (its `<name>.manifest.json`)."""
    output = Path(output)
    path = output / MANIFEST
    if output.suffix == ".npy":  # finished: beside the .npy; unfinished: in the work directory
        path = output.with_suffix(".manifest.json")
        if not path.is_file() and (output.with_suffix(".parts") / MANIFEST).is_file():
            path = output.with_suffix(".parts") / MANIFEST
    if not path.is_file():
        raise InputError(f"{output}: no {path.name} there; is it the output of `minibert embed`?")
    return read_manifest_file(path)


def read_embeddings(output) -> np.ndarray:
    """float32 [rows, dim], row i for input line i + 1 (NaN for bad lines), memory-mapped for a .npy output."""
    output = Path(output)
    manifest = read_manifest(output)
    if not manifest.get("complete"):
        raise InputError(f"{output}: the run that writes it has not finished; rerun the same command to complete it")
    if output.suffix == ".npy":
        embeddings = np.load(output, mmap_mode="r")
    else:
        embeddings = np.empty((manifest["rows"], manifest["dim"]), dtype=np.float32)
        for partition in manifest["partitions"]:
            with np.load(output / partition["shard"], allow_pickle=False) as shard:
                if str(shard["fingerprint"]) != manifest["fingerprint"]:
                    raise InputError(f"{output / partition['shard']}: made by another run than {output / MANIFEST}")
                first = partition["first_line"]
                embeddings[first - 1 : first - 1 + partition["lines"]] = shard["embeddings"]
    if embeddings.shape != (manifest["rows"], manifest["dim"]):
        raise InputError(
            f"{output}: holds {embeddings.shape}, the manifest says ({manifest['rows']}, {manifest['dim']})"
        )
    return embeddings
