"""The corpus-scale embedding job: a text file (one text a line) or JSONL in, one float32 row per input line out.

    embed_file("corpus.txt", "out/", "path/to/all-MiniLM-L6-v2")        # in this process
    embed_file("corpus.txt", "out/", model_dir, client=dask_client)      # on a Dask cluster
    read_embeddings("out/")                                              # float32 [rows, dim], in input order

The input is cut into partitions: line-aligned byte ranges of about `partition_size` bytes, so whoever embeds a
partition reads only its own bytes of the file. Each partition becomes one shard, written atomically (a temporary
name, then os.replace), so a shard on disk is always complete. An output directory holds

    manifest.json       what was asked (model and its weights' SHA-256, dtype, pooling, the input's path, size,
                        modification time and format, the partition boundaries) and, once every shard is written,
                        rows, dim and the bad lines
    part-00000.npz      one shard per partition: `embeddings` float32 [n, dim], `lines` int64 [n] (the 1-based input
                        line numbers of the rows), `bad_lines` and `bad_reasons`, and the manifest's `fingerprint`

Rerunning the same call skips every partition whose shard is there and valid, so an interrupted run loses at most
the partitions in flight; a shard or manifest made for another model, dtype, pooling or input is refused, never
mixed in. An output named like `emb.npy` (in-process runs only) is worked on in `emb.parts/` and, when the last
partition is done, assembled into one memory-mappable `emb.npy` with its manifest beside it, `emb.manifest.json`.

Bad lines (empty, not valid UTF-8, not JSON, JSON without the field) get a row of NaN rather than no row: row i is
always input line i + 1, so embeddings can be zipped with the input without a lookup, and a bad line cannot shift
every row after it. They are listed, with their line numbers and the reason, on stderr and in the manifest.

Dask (`pip install 'minibert[cluster]'`) and tqdm (`minibert[progress]`) are imported only where they are used.
"""

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError, MinibertError
from .files import write_atomically

# About 1 MiB of text per partition: ~19k lines of ~55 bytes, ~6 minutes of one core at the ~50 lines/s measured,
# so a task's fixed costs (scheduling, reading 1 MiB, writing a ~29 MB shard) stay well under 1% of it, a lost
# worker costs minutes, and 100 million such lines make ~5,300 tasks, which the Dask scheduler handles easily.
# The estimate is in benchmarks/README.md.
DEFAULT_PARTITION_SIZE = 1 << 20
MANIFEST = "manifest.json"
FORMAT_VERSION = 1
JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass
class EmbedReport:
    """What one embed_file call did."""

    output: Path
    rows: int  # input lines, bad ones included: the number of rows of read_embeddings(output)
    dim: int
    bad_lines: list[tuple[int, str]]  # (1-based line number, reason); their rows are NaN
    computed: list[int] = field(default_factory=list)  # partitions embedded by this call
    skipped: list[int] = field(default_factory=list)  # partitions whose shards were already complete
    texts_encoded: int = 0  # texts this call sent through the encoder
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------------------------
# Reading the input: byte ranges, lines, texts. These run wherever a partition is embedded (a worker, or here).


def _open_input(path: str):
    """A binary file object; a URL (s3://, file://...) goes through fsspec, so workers can read shared storage."""
    if "://" in path:
        import fsspec

        return fsspec.open(path, "rb").open()
    return open(path, "rb")


def _input_identity(path: str) -> dict:
    """The input's path, size and modification time: what a resumed run checks to know the input has not changed."""
    try:
        if "://" in path:
            import fsspec

            fs, fs_path = fsspec.core.url_to_fs(path)
            info = fs.info(fs_path)
            mtime = info.get("mtime") or info.get("LastModified") or info.get("updated")
            return {"path": path, "size": int(info["size"]), "mtime": str(mtime) if mtime is not None else None}
        stat = os.stat(path)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read the input file ({error})") from None
    if not os.path.isfile(path):
        raise InputError(f"{path}: is not a file; pass a text file (one text a line) or a JSONL file")
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns}


def plan_partitions(path: str, size: int, partition_size: int) -> list[tuple[int, int]]:
    """Line-aligned byte ranges [start, end) of about partition_size bytes each, found by seeking, not by reading.

    Each boundary is the first line start at or after a multiple of partition_size past the previous boundary, so
    every line lies in exactly one range and a range is never empty.
    """
    if size == 0:
        return []
    starts = [0]
    with _open_input(path) as f:
        target = partition_size
        while target < size:
            f.seek(target - 1)
            f.readline()  # up to and including the next b"\n" at or after target - 1: the next line starts there
            boundary = f.tell()
            if boundary >= size:
                break
            starts.append(boundary)
            target = boundary + partition_size
    return list(zip(starts, starts[1:] + [size], strict=True))


def _read_lines(path: str, start: int, end: int) -> list[bytes]:
    """The lines whose first byte lies in [start, end), without their b"\\n"; a last line may lack one."""
    with _open_input(path) as f:
        f.seek(start)
        data = f.read(end - start)
    if not data:
        return []
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()  # the empty string after the last b"\n" is not a line
    return lines


def count_lines(path: str, start: int, end: int) -> int:
    """How many lines start in [start, end): the newlines, plus one for a last line without one."""
    with _open_input(path) as f:
        f.seek(start)
        data = f.read(end - start)
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def parse_line(raw: bytes, line_number: int, input_format: str, field: str) -> tuple[str | None, str | None]:
    """(text, None) for a usable line, (None, reason) for a bad one."""
    raw = raw.removesuffix(b"\r")  # a file written with \r\n line ends
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at byte {error.start} of the line)"
    if line_number == 1:
        line = line.removeprefix("\ufeff")  # a byte-order mark some editors write at the start of a file
    if not line.strip():
        return None, "empty line"
    if input_format == "text":
        return line, None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return None, f"not valid JSON ({error.msg} at column {error.colno})"
    if not isinstance(record, dict):
        return None, f"a JSON {type(record).__name__}, not an object with a {field!r} field"
    if field not in record:
        return None, f"JSON object without a {field!r} field"
    text = record[field]
    if not isinstance(text, str):
        return None, f"field {field!r} is a JSON {type(text).__name__}, not a string"
    if not text.strip():
        return None, f"field {field!r} is empty"
    return text, None


# ---------------------------------------------------------------------------------------------------------------
# Embedding one partition: the task. It receives only paths and numbers (a few hundred bytes through the scheduler);
# the weights are loaded by the process that runs it, once, and kept in _ENCODERS for every later task there.

_ENCODERS: dict[tuple[str, str], object] = {}
_LOADS = {"count": 0}  # how many times this process has loaded a model (the tests check it is once per worker)


def _load_encoder(model: str, dtype: str):
    key = (model, dtype)
    if key not in _ENCODERS:
        from .sentence import SentenceEncoder

        _ENCODERS[key] = SentenceEncoder.from_pretrained(model, dtype=np.dtype(dtype))
        _LOADS["count"] += 1
    return _ENCODERS[key]


def embed_partition(task: dict, encoder=None, on_batch: Callable[[int], None] | None = None) -> dict:
    """Embed the lines of one partition and write its shard atomically. Returns a small summary (no embeddings)."""
    started = time.perf_counter()
    if encoder is None:
        encoder = _load_encoder(task["model"], task["dtype"])
    raw_lines = _read_lines(task["input"], task["start"], task["end"])
    if len(raw_lines) != task["lines"]:
        raise InputError(
            f"{task['input']}: bytes {task['start']}-{task['end']} hold {len(raw_lines)} lines, the manifest counted "
            f"{task['lines']}; the input changed during the run. Restore it, or start over with a new output"
        )
    first = task["first_line"]
    texts, rows, bad = [], [], []
    for i, raw in enumerate(raw_lines):
        text, reason = parse_line(raw, first + i, task["format"], task["field"])
        if reason is None:
            texts.append(text)
            rows.append(i)
        else:
            bad.append((first + i, reason))

    # Sorted by length, a batch holds texts of similar length, so little of it is padding; rows go back in place.
    # The sorting is done here, once, so the batches go straight to embed_batch (encode would sort each again).
    order = sorted(range(len(texts)), key=lambda j: len(texts[j])) if task["sort_by_length"] else range(len(texts))
    order = np.asarray(order, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    embeddings = np.full((len(raw_lines), encoder.dim), np.nan, dtype=np.float32)  # bad lines stay NaN
    batch_size = task["batch_size"]
    for b in range(0, len(order), batch_size):
        batch = order[b : b + batch_size]
        embeddings[rows[batch]] = encoder.embed_batch([texts[j] for j in batch])  # [b, dim], as float32
        if on_batch is not None:
            on_batch(len(batch))
    if on_batch is not None and bad:
        on_batch(len(bad))

    _write_shard(
        Path(task["shard"]),
        embeddings=embeddings,
        lines=np.arange(first, first + len(raw_lines), dtype=np.int64),
        bad_lines=np.asarray([n for n, _ in bad], dtype=np.int64),
        bad_reasons=np.asarray([r for _, r in bad], dtype=np.str_),
        fingerprint=np.asarray(task["fingerprint"]),
    )
    return {
        "index": task["index"],
        "rows": len(raw_lines),
        "dim": int(embeddings.shape[1]),
        "bad": bad,
        "encoded": len(texts),
        "seconds": time.perf_counter() - started,
        "pid": os.getpid(),
    }


def _write_shard(path: Path, **arrays) -> None:
    # write_atomically's temporary name is unique: if Dask runs a task twice (a worker presumed lost that was not),
    # each copy writes its own file and the last rename wins with identical content.
    write_atomically(path, lambda f: np.savez(f, **arrays))


# ---------------------------------------------------------------------------------------------------------------
# The manifest: what identifies a run, and the checks that keep shards of different runs apart.


def _write_json(path: Path, values: dict) -> None:
    write_atomically(path, lambda f: f.write((json.dumps(values, indent=1) + "\n").encode("utf-8")))


# The keys every manifest has, and those a finished one adds (the .npy's sidecar has them too).
_MANIFEST_KEYS = ("format", "version", "model", "input", "partitions", "rows", "fingerprint", "complete")
_COMPLETE_KEYS = ("dim", "bad_lines")


def _read_manifest(path: Path) -> dict:
    """A manifest file, checked to be one: JSON, minibert's format, and every key the job and read_embeddings use."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(
            f"{path}: cannot be read as JSON ({error}); it is damaged. Delete the output and run again"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != "minibert-embeddings":
        raise InputError(f"{path}: not a minibert embeddings manifest; pass another output")
    required = _MANIFEST_KEYS + (_COMPLETE_KEYS if manifest.get("complete") else ())
    missing = [key for key in required if key not in manifest]
    missing += [key for key in ("model", "input") if not isinstance(manifest.get(key, {}), dict)]
    missing += [key for key in ("partitions",) if not isinstance(manifest.get(key, []), list)]
    if missing:
        raise InputError(
            f"{path}: a minibert embeddings manifest without a valid {', '.join(missing)}; it is damaged. Delete "
            "the output and run again"
        )
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _model_identity(model, dtype: str) -> dict:
    """The model's path, its weights' SHA-256 (what the shards are checked against), revision if known, pooling.

    Reading the sentence-transformers config checks it too, so a directory that is not such a model is refused here,
    before the output is created. The SHA-256 covers the Transformer module's config and exactly the weight files
    minibert would read from its folder (model_files.local_weight_files: every shard, every TF .data-* file).
    """
    from .hub import Need, resolve_model_dir
    from .model_files import CONFIG_FILES, local_weight_files
    from .sentence import read_sentence_config

    directory = resolve_model_dir(model, Need.SENTENCE_MODEL).resolve()
    config = read_sentence_config(directory)
    transformer = config.transformer_dir
    config_file = [transformer / name for name in CONFIG_FILES if (transformer / name).is_file()][:1]
    files = [*config_file, *local_weight_files(transformer)]
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(directory).as_posix()}:{_sha256(path)}\n".encode())
    # A hub cache keeps each revision in snapshots/<commit>/.
    revision = directory.name if directory.parent.name == "snapshots" else None
    return {
        "path": str(directory),
        "revision": revision,
        "sha256": digest.hexdigest(),
        "files": [path.relative_to(directory).as_posix() for path in files],
        "dtype": dtype,
        "modules": list(config.modules),
        "pooling": config.pooling_config,
        "max_seq_length": config.max_seq_length,
        "do_lower_case": config.do_lower_case,
    }


# What must be equal for shards to belong together. Not batch size or partition size: neither changes which vectors
# a line gets (batch composition moves float32 results by an ulp or so, well inside the 1e-6 the job promises).
_IDENTITY_FIELDS = [
    ("model", "sha256", "model weights (SHA-256 of config.json and weights)"),
    ("model", "dtype", "dtype"),
    ("model", "modules", "sentence-transformers modules"),
    ("model", "pooling", "pooling"),
    ("model", "max_seq_length", "max_seq_length (sentence_bert_config.json)"),
    ("model", "do_lower_case", "do_lower_case (sentence_bert_config.json)"),
    ("input", "path", "input path"),
    ("input", "size", "input size in bytes"),
    ("input", "mtime", "input modification time"),
    ("input", "format", "input format"),
    ("input", "field", "JSONL field"),
]


def _fingerprint(manifest: dict) -> str:
    values = [manifest[section][key] for section, key, _ in _IDENTITY_FIELDS]
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def _check_same_run(found: dict, wanted: dict, where: Path) -> None:
    if found.get("format") != "minibert-embeddings" or found.get("version") != FORMAT_VERSION:
        raise InputError(
            f"{where}: not a minibert embeddings manifest of version {FORMAT_VERSION}; pass another --output"
        )
    for section, key, label in _IDENTITY_FIELDS:
        before, now = found[section].get(key), wanted[section][key]
        if before != now:
            raise InputError(
                f"{where}: the shards there were made with {label} {before!r}, this run has {now!r}; refusing to mix "
                "them. Pass another --output, or delete it to start over"
            )


def _shard_is_complete(path: Path, partition: dict, fingerprint: str) -> bool:
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
                    f"{path.parent / MANIFEST}); refusing to mix it in. Delete it, or pass another --output"
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


def _npz_array_header(npz, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of one array of an open .npz, from its header: without reading its 1.5 kB a row."""
    with npz.zip.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
    return shape, dtype


def _read_shard_bad_lines(path: Path) -> list[tuple[int, str]]:
    with np.load(path, allow_pickle=False) as shard:
        return [(int(n), str(r)) for n, r in zip(shard["bad_lines"], shard["bad_reasons"], strict=True)]


# ---------------------------------------------------------------------------------------------------------------
# The job.


def _layout(output: Path, clustered: bool) -> tuple[Path, Path | None]:
    """(directory of shards and manifest, final .npy or None)."""
    if output.suffix == ".npy":
        if clustered:
            raise InputError(
                f"{output}: a single .npy output is for in-process runs; with --workers or --scheduler pass a "
                "directory, whose shards the workers write in parallel"
            )
        return output.with_suffix(".parts"), output
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a directory; pass a directory (or a name ending in .npy)")
    return output, None


def _check_arguments(batch_size, partition_size, dtype, input_format) -> None:
    for name, value in (("batch_size", batch_size), ("partition_size", partition_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, found {value!r}")
    if dtype not in ("float32", "float64"):
        raise InputError(f"dtype must be float32 or float64, found {dtype!r}")
    if input_format not in ("auto", "text", "jsonl"):
        raise InputError(f"input_format must be 'auto', 'text' or 'jsonl', found {input_format!r}")


def _progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm bar counted in lines, or a stand-in that does nothing when tqdm is missing or progress is off."""
    if enabled:
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, initial=initial, unit="line", smoothing=0.05, file=sys.stderr)
        except ImportError:
            pass

    class NoBar:
        def update(self, n):
            pass

        def close(self):
            pass

    return NoBar()


def embed_file(
    input_path,
    output,
    model,
    *,
    batch_size: int = 32,
    dtype="float32",
    input_format: str = "auto",
    field: str = "text",
    client=None,
    partition_size: int = DEFAULT_PARTITION_SIZE,
    retries: int = 2,
    progress: bool = True,
    sort_by_length: bool = True,
    encoder=None,
    on_partition_done: Callable[[dict], None] | None = None,
    log=None,
) -> EmbedReport:
    """Embed every line of input_path with the sentence-transformers model directory `model` into `output`.

    Rows are in input order, one per input line; bad lines are NaN rows, reported with their line numbers to `log`
    and in the manifest. With a `dask.distributed.Client`, partitions run as tasks on its workers (which must see
    the input, the model directory and the output at the same paths); otherwise one after the other here.
    Rerunning an interrupted call continues where it stopped. `encoder` (in-process only) replaces loading `model`,
    which still names the model in the manifest: an object with `dim` and `embed_batch(texts) -> [len(texts), dim]`,
    as SentenceEncoder has; `on_partition_done` is called with each finished partition's
    summary.
    """
    started = time.perf_counter()
    log = sys.stderr if log is None else log  # looked up per call, so that redirecting sys.stderr works
    input_path, output = str(input_path), Path(output)
    try:
        dtype = np.dtype(dtype).name
    except TypeError:
        raise InputError(f"dtype must be float32 or float64, found {dtype!r}") from None
    _check_arguments(batch_size, partition_size, dtype, input_format)
    if encoder is not None and client is not None:
        raise InputError("encoder= is for in-process runs; on a cluster each worker loads the model itself")
    if input_format == "auto":
        input_format = "jsonl" if input_path.lower().endswith(JSONL_SUFFIXES) else "text"
    directory, final_npy = _layout(output, clustered=client is not None)

    wanted = {
        "format": "minibert-embeddings",
        "version": FORMAT_VERSION,
        "model": _model_identity(model, dtype),
        "input": {**_input_identity(input_path), "format": input_format, "field": field},
    }
    if wanted["input"]["size"] == 0:
        raise InputError(f"{input_path}: is empty; there is nothing to embed")
    # Absolute paths, so that workers started elsewhere find the same files (on a filesystem they share).
    model_path, input_path = wanted["model"]["path"], wanted["input"]["path"]
    manifest_path = directory / MANIFEST
    if final_npy is not None and final_npy.is_file():
        sidecar = final_npy.with_suffix(".manifest.json")
        if sidecar.is_file():
            done = _read_manifest(sidecar)
            _check_same_run(done, wanted, sidecar)
            print(f"{final_npy}: already complete, nothing to do", file=log)
            return EmbedReport(
                final_npy,
                done["rows"],
                done["dim"],
                [tuple(b) for b in done["bad_lines"]],
                seconds=time.perf_counter() - started,
            )
    manifest = None
    if manifest_path.is_file():
        try:
            manifest = _read_manifest(manifest_path)
            _check_same_run(manifest, wanted, manifest_path)
        except InputError as error:
            if any(directory.glob("part-*.npz")):
                raise
            # No shard was written under it (a run that failed at its start): nothing to keep apart, start afresh.
            print(f"{manifest_path}: replaced, since no shard was written under it ({error})", file=log)
            manifest = None
    if manifest is not None:
        if manifest.get("partition_size") != partition_size:
            print(
                f"{manifest_path}: resuming with the partitions of the first run ({manifest.get('partition_size')} "
                f"bytes), not {partition_size}",
                file=log,
            )
    else:
        if client is None and encoder is None:
            # Load now, so that a model that cannot be loaded fails before the output is created.
            encoder = _load_encoder(model_path, dtype)
        directory.mkdir(parents=True, exist_ok=True)
        manifest = _plan(wanted, input_path, partition_size, client)
        _write_json(manifest_path, manifest)
    fingerprint = manifest["fingerprint"]

    tasks, skipped = [], []
    for partition in manifest["partitions"]:
        shard = directory / partition["shard"]
        if _shard_is_complete(shard, partition, fingerprint):
            skipped.append(partition["index"])
            continue
        tasks.append(
            {
                **partition,
                "shard": str(shard.resolve()),
                "input": input_path,
                "model": model_path,
                "dtype": dtype,
                "format": input_format,
                "field": field,
                "batch_size": batch_size,
                "sort_by_length": sort_by_length,
                "fingerprint": fingerprint,
            }
        )
    done_rows = sum(p["lines"] for p in manifest["partitions"] if p["index"] in set(skipped))
    if skipped:
        print(f"{directory}: {len(skipped)} of {len(manifest['partitions'])} partitions already done", file=log)

    bar = _progress_bar(manifest["rows"], done_rows, progress and bool(tasks))
    summaries = []
    try:
        if client is None:
            if tasks and encoder is None:
                encoder = _load_encoder(model_path, dtype)
            for task in tasks:
                summaries.append(embed_partition(task, encoder=encoder, on_batch=bar.update))
                if on_partition_done is not None:
                    on_partition_done(summaries[-1])
        else:
            summaries = _run_on_cluster(client, tasks, retries, bar, on_partition_done, fingerprint)
    finally:
        bar.close()

    # Every shard is written: gather the bad lines (from this run's summaries, or the skipped shards themselves).
    bad = [tuple(b) for s in summaries for b in s["bad"]]
    for index in skipped:
        bad += _read_shard_bad_lines(directory / manifest["partitions"][index]["shard"])
    bad.sort()
    dims = {s["dim"] for s in summaries}
    if skipped:
        dims.add(_shard_dim(directory / manifest["partitions"][skipped[0]]["shard"]))
    if len(dims) != 1:  # cannot happen with one model; checked because a mixed output would read back wrong
        raise MinibertError(f"{directory}: shards of different widths {sorted(dims)}; delete it and start over")
    dim = dims.pop()
    manifest.update(complete=True, dim=dim, bad_lines=[list(b) for b in bad])
    _write_json(manifest_path, manifest)

    if final_npy is not None:
        _assemble_npy(directory, manifest, final_npy)
    _report_bad_lines(bad, final_npy or manifest_path, log)
    return EmbedReport(
        output=output,
        rows=manifest["rows"],
        dim=dim,
        bad_lines=bad,
        computed=sorted(s["index"] for s in summaries),
        skipped=skipped,
        texts_encoded=sum(s["encoded"] for s in summaries),
        seconds=time.perf_counter() - started,
    )


def _plan(wanted: dict, input_path: str, partition_size: int, client) -> dict:
    """Partition boundaries (found here by seeking) and their line counts (counted where the partitions are read)."""
    ranges = plan_partitions(input_path, wanted["input"]["size"], partition_size)
    if client is None:
        counts = [count_lines(input_path, start, end) for start, end in ranges]
    else:  # each worker counts its own byte ranges; only the integers come back
        futures = client.map(count_lines, [input_path] * len(ranges), *zip(*ranges, strict=True), pure=False)
        counts = client.gather(futures) if ranges else []
    partitions, first_line = [], 1
    for index, ((start, end), lines) in enumerate(zip(ranges, counts, strict=True)):
        partitions.append(
            {
                "index": index,
                "start": start,
                "end": end,
                "first_line": first_line,
                "lines": lines,
                "shard": f"part-{index:05d}.npz",
            }
        )
        first_line += lines
    manifest = {
        **wanted,
        "partition_size": partition_size,
        "partitions": partitions,
        "rows": first_line - 1,
        "complete": False,
        "dim": None,
        "bad_lines": None,
    }
    manifest["fingerprint"] = _fingerprint(manifest)
    return manifest


def _run_on_cluster(client, tasks, retries, bar, on_partition_done, fingerprint) -> list[dict]:
    """Submit one task per partition; Dask retries failures and reschedules the tasks of a worker that dies."""
    from distributed import as_completed

    keys = [f"minibert-embed-{fingerprint[:16]}-{task['index']:05d}" for task in tasks]
    futures = client.map(embed_partition, tasks, key=keys, retries=retries, pure=False)
    task_of = {future.key: task for future, task in zip(futures, tasks, strict=True)}
    summaries = []
    try:
        for future in as_completed(futures):
            try:
                summary = future.result()
            except MinibertError:
                raise
            except Exception as error:
                task = task_of[future.key]
                raise MinibertError(
                    f"partition {task['index']} (lines {task['first_line']}-{task['first_line'] + task['lines'] - 1})"
                    f" failed after {retries} retries: {type(error).__name__}: {error}. Rerun to resume"
                ) from error
            future.release()
            summaries.append(summary)
            bar.update(summary["rows"])
            if on_partition_done is not None:
                on_partition_done(summary)
    except BaseException:
        client.cancel(futures)
        raise
    return summaries


def _shard_dim(path: Path) -> int:
    with np.load(path, allow_pickle=False) as shard:
        return int(_npz_array_header(shard, "embeddings")[0][1])


def _assemble_npy(directory: Path, manifest: dict, final_npy: Path) -> None:
    """The shards, in order, streamed into one .npy written atomically; then its manifest; the parts go away."""
    import shutil

    def write(f) -> None:
        header = {"descr": "<f4", "fortran_order": False, "shape": (manifest["rows"], manifest["dim"])}
        np.lib.format.write_array_header_1_0(f, header)  # as np.save writes it, so np.load can memory-map the file
        # The partitions follow each other in the input, and each shard holds its lines in order (checked by
        # _shard_is_complete, or written so by embed_partition), so the rows go out in input order.
        for partition in manifest["partitions"]:
            with np.load(directory / partition["shard"], allow_pickle=False) as shard:
                f.write(np.ascontiguousarray(shard["embeddings"], dtype="<f4").tobytes())

    write_atomically(final_npy, write)
    sidecar = {k: v for k, v in manifest.items() if k != "partitions"}
    sidecar["partitions"] = [
        {k: p[k] for k in ("index", "start", "end", "first_line", "lines")} for p in manifest["partitions"]
    ]
    _write_json(final_npy.with_suffix(".manifest.json"), sidecar)
    shutil.rmtree(directory)


def _report_bad_lines(bad: list[tuple[int, str]], where: Path, log, limit: int = 20) -> None:
    if not bad:
        return
    print(f"{len(bad)} bad input line(s), embedded as rows of NaN and listed in {where}:", file=log)
    for line, reason in bad[:limit]:
        print(f"  line {line}: {reason}", file=log)
    if len(bad) > limit:
        print(f"  ... and {len(bad) - limit} more", file=log)


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
    return _read_manifest(path)


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


# ---------------------------------------------------------------------------------------------------------------
# A client for the CLI.


@contextmanager
def start_client(workers: int | None = None, scheduler: str | None = None, timeout: str = "20s", log=None):
    """None (in-process), a new local cluster of `workers` processes of one thread each, or the one at `scheduler`."""
    if workers is None and scheduler is None:
        yield None
        return
    if workers is not None and scheduler is not None:
        raise InputError("pass --workers N (a local cluster) or --scheduler ADDRESS (a running one), not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"--workers must be a positive integer, found {workers!r}")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--workers and --scheduler need Dask: pip install 'minibert[cluster]'") from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as error:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({error})") from None
        cluster = None
    else:
        # One thread per worker process: BERT's matmuls hold the GIL between BLAS calls, so processes, not
        # threads, are what scale; Dask also sets OMP/OPENBLAS_NUM_THREADS=1 in the workers it spawns.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
        client = Client(cluster)
    print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr if log is None else log)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
