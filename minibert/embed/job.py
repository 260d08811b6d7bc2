"""The embedding job: `embed_file` as a short pipeline of named steps, and `embed_partition`, the task it runs once
per partition (in this process, or on a Dask worker).

    check the arguments -> where the output goes -> the run's identity -> already finished? -> resume or plan
    -> the partitions still to do -> embed them -> gather bad lines and width -> finish (manifest, .npy)

Rerunning the same call skips every partition whose shard is there and valid, so an interrupted run loses at most
the partitions in flight (in this process, one group of them: GROUP_BYTES). Bad lines (empty, not valid UTF-8, not
JSON, JSON without the field) get a row of NaN rather than no row: row i is always input line i + 1, so embeddings
can be zipped with the input without a lookup, and a bad line cannot shift every row after it. They are listed,
with their line numbers and the reason, on `log` and in the manifest.
"""

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, MinibertError
from ..hub import Need, resolve_model_dir
from ..sentence import BATCH_SIZE, SentenceEncoder
from . import cluster
from .identity import check_same_run, fingerprint, model_identity, run_identity
from .partitions import (
    auto_partition_size,
    count_lines,
    input_format_of,
    input_identity,
    parse_line,
    plan_partitions,
    read_lines,
)
from .store import (
    OutputPaths,
    absolute,
    assemble_npy,
    has_shards,
    is_file,
    make_directory,
    output_paths,
    read_manifest_file,
    shard_bad_lines,
    shard_dim,
    shard_is_complete,
    write_manifest,
    write_shard,
)


@dataclass
class EmbedReport:
    """What one embed_file call did."""

    output: Path | str  # the .npy, the directory, or the URL
    rows: int  # input lines, bad ones included: the number of rows of read_embeddings(output)
    dim: int
    bad_lines: list[tuple[int, str]]  # (1-based line number, reason); their rows are NaN
    computed: list[int] = field(default_factory=list)  # partitions embedded by this call
    skipped: list[int] = field(default_factory=list)  # partitions whose shards were already complete
    texts_encoded: int = 0  # texts this call sent through the encoder
    seconds: float = 0.0

    @property
    def already_complete(self) -> bool:
        """True when an earlier run had done it all: this call embedded nothing."""
        return not self.computed and bool(self.skipped)


class EmbedInterrupted(KeyboardInterrupt):
    """Ctrl-C (or another KeyboardInterrupt) during embed_file: the shards written so far are kept, and rerunning
    the same call resumes from them. A KeyboardInterrupt, so code that catches that still does."""

    def __init__(self, directory, done: int, total: int):
        super().__init__(f"{done} of {total} partitions kept in {directory}")
        self.directory, self.done, self.total = directory, done, total


@dataclass(frozen=True)
class Job:
    """The checked arguments of one embed_file call that every task needs."""

    input_path: str
    input_format: str  # "text" or "jsonl"
    field: str
    dtype: str  # "float32" or "float64"
    batch_size: int
    partition_size: int | None  # bytes; None: chosen from the input's size (partitions.auto_partition_size)
    sort_by_length: bool


# ---------------------------------------------------------------------------------------------------------------
# The task: one partition. The weights are loaded by the process that runs it, once, and kept in _ENCODERS for
# every later task there.

_ENCODERS: dict[tuple[str, str], SentenceEncoder] = {}


def load_encoder(model_dir: str, dtype: str) -> SentenceEncoder:
    """The SentenceEncoder of `model_dir` in `dtype`, loaded once per process."""
    key = (model_dir, dtype)
    if key not in _ENCODERS:
        # A directory resolved once, by embed_file at its door: from_directory looks nothing up again.
        _ENCODERS[key] = SentenceEncoder.from_directory(Path(model_dir), dtype=np.dtype(dtype))
    return _ENCODERS[key]


def embed_partition(task: dict, encoder=None, on_batch: Callable[[int], None] | None = None) -> dict:
    """Embed the lines of one partition and write its shard atomically. Returns a small summary (no embeddings)."""
    return next(embed_partitions([task], encoder, on_batch))


# In this process, consecutive partitions are embedded together up to this much input, sorted by length across them
# all: a partition of the smallest size (4 KiB, ~30 lines) is one batch of every length, padded to its longest (the
# embed job at a third of encode's speed on 400 lines of documentation prose). Each still gets its own shard, written
# as soon as the group is embedded, so an interrupted run loses at most one group.
GROUP_BYTES = 1 << 18


def embed_partitions(tasks: list[dict], encoder=None, on_batch: Callable[[int], None] | None = None) -> Iterator[dict]:
    """Embed the lines of several partitions in one pass, then write each one's shard atomically, yielding its summary
    once its shard is written."""
    started = time.perf_counter()
    if encoder is None:
        encoder = load_encoder(tasks[0]["model"], tasks[0]["dtype"])
    parsed = [_read_partition(task) for task in tasks]
    texts = [text for _, partition_texts, _, _ in parsed for text in partition_texts]
    embedded = _embed_texts(encoder, texts, tasks[0]["batch_size"], tasks[0]["sort_by_length"], on_batch)
    at = 0
    for task, (raw_lines, partition_texts, rows, bad) in zip(tasks, parsed, strict=True):
        embeddings = np.full((len(raw_lines), encoder.dim), np.nan, dtype=np.float32)  # bad lines stay NaN
        embeddings[rows] = embedded[at : at + len(partition_texts)]
        at += len(partition_texts)
        if on_batch is not None and bad:
            on_batch(len(bad))
        first = task["first_line"]
        write_shard(
            task["shard"],
            embeddings=embeddings,
            lines=np.arange(first, first + len(raw_lines), dtype=np.int64),
            bad_lines=np.asarray([n for n, _ in bad], dtype=np.int64),
            bad_reasons=np.asarray([r for _, r in bad], dtype=np.str_),
            fingerprint=np.asarray(task["fingerprint"]),
        )
        yield {
            "index": task["index"],
            "rows": len(raw_lines),
            "dim": int(embeddings.shape[1]),
            "bad": bad,
            "encoded": len(partition_texts),
            "seconds": time.perf_counter() - started,
            "pid": os.getpid(),
        }


def _read_partition(task: dict) -> tuple[list, list[str], list[int], list[tuple[int, str]]]:
    """(the partition's raw lines, its good texts, their rows in the partition, its bad lines with their reasons)."""
    raw_lines = read_lines(task["input"], task["start"], task["end"])
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
    return raw_lines, texts, rows, bad


def _groups(tasks: list[dict], group_bytes: int) -> Iterator[list[dict]]:
    """Consecutive tasks, as few to a group as make up group_bytes of input (the last group may hold less)."""
    group, size = [], 0
    for task in tasks:
        group.append(task)
        size += task["end"] - task["start"]
        if size >= group_bytes:
            yield group
            group, size = [], 0
    if group:
        yield group


def _embed_texts(encoder, texts: list[str], batch_size: int, sort_by_length: bool, on_batch) -> np.ndarray:
    """float32 [len(texts), dim], in the order of `texts`, computed in batches."""
    if sort_by_length:  # encode sorts by length and cuts batches of nearly one length, so little of each is padding
        return encoder.encode(texts, batch_size=batch_size, dtype=np.float32, on_batch=on_batch)
    embeddings = np.empty((len(texts), encoder.dim), dtype=np.float32)
    for b in range(0, len(texts), batch_size):
        embeddings[b : b + batch_size] = encoder.embed_batch(texts[b : b + batch_size])  # [b, dim], as float32
        if on_batch is not None:
            on_batch(len(texts[b : b + batch_size]))
    return embeddings


# ---------------------------------------------------------------------------------------------------------------
# The job's steps.


def _check_arguments(batch_size, partition_size, dtype, input_format) -> str:
    """The dtype's name, after checking every argument a user can get wrong."""
    try:
        dtype = np.dtype(dtype).name
    except TypeError:
        raise InputError(f"dtype must be float32 or float64, found {dtype!r}") from None
    for name, value in (("batch_size", batch_size), ("partition_size", partition_size)):
        if value is None and name == "partition_size":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, found {value!r}")
    if dtype not in ("float32", "float64"):
        raise InputError(f"dtype must be float32 or float64, found {dtype!r}")
    if input_format not in ("auto", "text", "jsonl"):
        raise InputError(f"input_format must be 'auto', 'text' or 'jsonl', found {input_format!r}")
    return dtype


def _identity(job: Job, model) -> dict:
    """The run's identity: the model resolved once, here, and the input as it is now."""
    model_dir = resolve_model_dir(model, Need.SENTENCE_MODEL)
    identity = run_identity(
        model_identity(model_dir, job.dtype), input_identity(job.input_path), job.input_format, job.field
    )
    if identity["input"]["size"] == 0:
        raise InputError(f"{job.input_path}: is empty; there is nothing to embed")
    return identity


def _finished_report(paths: OutputPaths, identity: dict, started: float) -> EmbedReport | None:
    """The report of a .npy output a previous run finished (every partition skipped), or None."""
    if paths.npy is None or not paths.npy.is_file() or not is_file(paths.finished_manifest):
        return None
    done = read_manifest_file(paths.finished_manifest)
    check_same_run(done, identity, paths.finished_manifest)
    bad = [tuple(b) for b in done["bad_lines"]]
    skipped = [p["index"] for p in done["partitions"]]
    return EmbedReport(
        paths.npy, done["rows"], done["dim"], bad, skipped=skipped, seconds=time.perf_counter() - started
    )


def _resumed_manifest(paths: OutputPaths, identity: dict, partition_size: int | None, log) -> dict | None:
    """The manifest of an earlier run of this identity at `paths`, or None to start afresh. It keeps its own
    partitions, whatever partition size this call asks for (or chooses): they are data in the manifest, so a run
    planned with other sizes (the 1 MiB default of minibert before 0.2, say) resumes as it was planned."""
    if not is_file(paths.manifest):
        return None
    try:
        manifest = read_manifest_file(paths.manifest)
        check_same_run(manifest, identity, paths.manifest)
    except InputError as error:
        if has_shards(paths.directory):
            raise
        # No shard was written under it (a run that failed at its start): nothing to keep apart, start afresh.
        print(f"{paths.manifest}: replaced, since no shard was written under it ({error})", file=log)
        return None
    if partition_size is not None and manifest.get("partition_size") != partition_size:
        print(
            f"{paths.manifest}: resuming with the partitions of the first run ({manifest.get('partition_size')} "
            f"bytes), not {partition_size}",
            file=log,
        )
    return manifest


def _resume_or_plan(paths: OutputPaths, identity: dict, job: Job, client, encoder, log):
    """(the manifest of this run: resumed, or planned and written; the encoder, loaded if a new run needs it)."""
    manifest = _resumed_manifest(paths, identity, job.partition_size, log)
    if manifest is not None:
        return manifest, encoder
    if client is None and encoder is None:
        # Load now, so that a model that cannot be loaded fails before the output is created.
        encoder = load_encoder(identity["model"]["path"], job.dtype)
    make_directory(paths.directory)
    manifest = _plan(identity, job.partition_size, client)
    write_manifest(paths.manifest, manifest)
    return manifest, encoder


def _plan(identity: dict, partition_size: int | None, client) -> dict:
    """A new manifest: partition boundaries (found here by seeking) and their line counts (counted where the
    partitions are read), not yet complete."""
    input_path = identity["input"]["path"]
    if partition_size is None:
        partition_size = auto_partition_size(identity["input"]["size"])
    ranges = plan_partitions(input_path, identity["input"]["size"], partition_size)
    if client is None:
        counts = [count_lines(input_path, start, end) for start, end in ranges]
    else:
        counts = cluster.count_lines_on_cluster(client, input_path, ranges)
    partitions, first_line = [], 1
    for index, ((start, end), lines) in enumerate(zip(ranges, counts, strict=True)):
        shard = f"part-{index:05d}.npz"
        partitions.append(
            {"index": index, "start": start, "end": end, "first_line": first_line, "lines": lines, "shard": shard}
        )
        first_line += lines
    manifest = {
        **identity,
        "partition_size": partition_size,
        "partitions": partitions,
        "rows": first_line - 1,
        "complete": False,
        "dim": None,
        "bad_lines": None,
    }
    manifest["fingerprint"] = fingerprint(manifest)
    return manifest


def _pending(paths: OutputPaths, manifest: dict, job: Job, model_dir: str) -> tuple[list[dict], list[int]]:
    """(the tasks of the partitions still to embed, the indices of those whose shards are complete)."""
    tasks, skipped = [], []
    for partition in manifest["partitions"]:
        shard = paths.shard(partition["shard"])
        if shard_is_complete(shard, partition, manifest["fingerprint"], paths.manifest):
            skipped.append(partition["index"])
            continue
        # Absolute paths, so that workers started elsewhere find the same files (on a filesystem they share).
        tasks.append(
            {
                **partition,
                "shard": absolute(shard),
                "input": manifest["input"]["path"],
                "model": model_dir,
                "dtype": job.dtype,
                "format": job.input_format,
                "field": job.field,
                "batch_size": job.batch_size,
                "sort_by_length": job.sort_by_length,
                "fingerprint": manifest["fingerprint"],
            }
        )
    return tasks, skipped


def _embed_pending(tasks, encoder, client, retries, bar, on_partition_done, summaries: list[dict]) -> None:
    """Every pending partition embedded, in this process one after the other, or as tasks on the cluster; each
    one's summary appended to `summaries` as it finishes (so an interrupted call knows what it kept)."""

    def done(summary):
        summaries.append(summary)
        if client is not None:
            bar.update(summary["rows"])  # in this process, the bar counts batches as they finish
        if on_partition_done is not None:
            on_partition_done(summary)

    if client is not None:
        cluster.run_on_cluster(client, embed_partition, tasks, retries, done)
        return
    for group in _groups(tasks, GROUP_BYTES):
        for summary in embed_partitions(group, encoder=encoder, on_batch=bar.update):
            done(summary)


def _gather(paths: OutputPaths, manifest: dict, summaries: list[dict], skipped: list[int]):
    """(every bad line, sorted; the embedding width), from this run's summaries and the shards it skipped."""
    shard = {p["index"]: paths.shard(p["shard"]) for p in manifest["partitions"]}
    bad = [tuple(b) for s in summaries for b in s["bad"]]
    for index in skipped:
        bad += shard_bad_lines(shard[index])
    bad.sort()
    dims = {s["dim"] for s in summaries}
    if skipped:
        dims.add(shard_dim(shard[skipped[0]]))
    if len(dims) != 1:  # cannot happen with one model; checked because a mixed output would read back wrong
        raise MinibertError(f"{paths.directory}: shards of different widths {sorted(dims)}; delete it and start over")
    return bad, dims.pop()


def _finish(paths: OutputPaths, manifest: dict, bad: list, dim: int) -> None:
    """The manifest marked complete; for a .npy output, the shards assembled into it."""
    manifest.update(complete=True, dim=dim, bad_lines=[list(b) for b in bad])
    write_manifest(paths.manifest, manifest)
    if paths.npy is not None:
        assemble_npy(paths, manifest)


def _report_bad_lines(bad: list[tuple[int, str]], where: Path, log, limit: int = 20) -> None:
    if not bad:
        return
    print(f"{len(bad)} bad input line(s), embedded as rows of NaN and listed in {where}:", file=log)
    for line, reason in bad[:limit]:
        print(f"  line {line}: {reason}", file=log)
    if len(bad) > limit:
        print(f"  ... and {len(bad) - limit} more", file=log)


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


# ---------------------------------------------------------------------------------------------------------------
# The job.


def embed_file(
    input_path,
    output,
    model,
    *,
    batch_size: int = BATCH_SIZE,
    dtype="float32",
    input_format: str = "auto",
    field: str = "text",
    client=None,
    partition_size: int | None = None,
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
    as SentenceEncoder has; `on_partition_done` is called with each finished partition's summary.
    `partition_size` (bytes of input per partition and shard) is by default 1/16 of the input, within 4 KiB-1 MiB.
    A KeyboardInterrupt (Ctrl-C) comes out as EmbedInterrupted, which says what was kept.
    """
    started = time.perf_counter()
    log = sys.stderr if log is None else log  # looked up per call, so that redirecting sys.stderr works
    input_path = str(input_path)
    dtype = _check_arguments(batch_size, partition_size, dtype, input_format)
    if encoder is not None and client is not None:
        raise InputError("encoder= is for in-process runs; on a cluster each worker loads the model itself")
    job = Job(
        input_path, input_format_of(input_path, input_format), field, dtype, batch_size, partition_size, sort_by_length
    )
    paths = output_paths(output, clustered=client is not None)
    identity = _identity(job, model)
    if (report := _finished_report(paths, identity, started)) is not None:
        return report
    manifest, encoder = _resume_or_plan(paths, identity, job, client, encoder, log)
    model_dir = identity["model"]["path"]
    tasks, skipped = _pending(paths, manifest, job, model_dir)
    if skipped and tasks:
        print(f"{paths.directory}: {len(skipped)} of {len(manifest['partitions'])} partitions already done", file=log)
    if tasks and client is None and encoder is None:
        encoder = load_encoder(model_dir, dtype)
    done_rows = sum(p["lines"] for p in manifest["partitions"] if p["index"] in set(skipped))
    bar = _progress_bar(manifest["rows"], done_rows, progress and bool(tasks))
    summaries = []
    try:
        _embed_pending(tasks, encoder, client, retries, bar, on_partition_done, summaries)
    except KeyboardInterrupt:
        bar.close()
        kept = len(skipped) + len(summaries)
        raise EmbedInterrupted(paths.directory, kept, len(manifest["partitions"])) from None
    finally:
        bar.close()

    bad, dim = _gather(paths, manifest, summaries, skipped)
    _finish(paths, manifest, bad, dim)
    _report_bad_lines(bad, paths.finished_manifest, log)
    return EmbedReport(
        output=paths.output,
        rows=manifest["rows"],
        dim=dim,
        bad_lines=bad,
        computed=sorted(s["index"] for s in summaries),
        skipped=skipped,
        texts_encoded=sum(s["encoded"] for s in summaries),
        seconds=time.perf_counter() - started,
    )
