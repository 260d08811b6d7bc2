"""The embedding job: `embed_file` as a short pipeline of named steps, and `embed_partitions`, the task it runs once
per group of partitions (in this process, or on a Dask worker).

    check the arguments -> where the output goes -> the run's identity -> already finished? -> resume or plan
    -> the partitions still to do -> embed them -> gather bad lines and width -> finish (manifest, .npy)

Rerunning the same call skips every partition whose shard is there and valid, so an interrupted run loses at most
the partitions in flight (one group of them per process: a few seconds). Blank lines are skipped
and bad lines (not valid UTF-8, not JSON, JSON without the field) are refused, but each keeps a row, of NaN: row i is
always input line i + 1, so embeddings can be zipped with the input without a lookup, and a bad line cannot shift
every row after it. They are listed, with their line numbers and the reason, on `log` and in the manifest. An input
with no text at all (binary, or JSONL whose text is in another field) is refused before anything is written; texts
longer than the model's max_seq_length are cut, counted on `log` and listed in the manifest.
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
from .messages import progress_bar, report_lines
from .partitions import (
    auto_partition_size,
    check_has_texts,
    count_lines,
    input_format_of,
    input_identity,
    parse_line,
    plan_partitions,
    read_lines,
)
from .settings import DEFAULTS, finish_rows, output_dim, prompted, resolve_settings
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
    shard_cut_lines,
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
    bad_lines: list[tuple[int, str]]  # (1-based line number, reason); their rows are NaN; blank lines among them
    computed: list[int] = field(default_factory=list)  # partitions embedded by this call
    skipped: list[int] = field(default_factory=list)  # partitions whose shards were already complete
    texts_encoded: int = 0  # texts this call sent through the encoder
    cut_lines: list[tuple[int, int]] = field(default_factory=list)  # (line number, its tokens) of texts cut
    seconds: float = 0.0

    @property
    def already_complete(self) -> bool:
        """True when an earlier run had done it all: this call embedded nothing."""
        return not self.computed and bool(self.skipped)


class EmbedInterrupted(KeyboardInterrupt):
    """Ctrl-C (or another KeyboardInterrupt) during embed_file: the shards written so far are kept, and rerunning
    the same call resumes from them. A KeyboardInterrupt, so code that catches that still does."""

    def __init__(self, directory, done: int, total: int, count_kept: Callable[[], int] | None = None):
        super().__init__(f"{done} of {total} partitions kept in {directory}")
        self.directory, self.done, self.total = directory, done, total
        self._count_kept = count_kept

    def recount(self) -> int:
        """The partitions whose shards are complete on disk now (also stored as `done`). On a cluster, the tasks
        running at Ctrl-C may still write their shards until the cluster is closed: count after closing it."""
        if self._count_kept is not None:
            self.done = self._count_kept()
        return self.done


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
    settings: dict  # what encode is asked beyond the model (embed.settings): prompt, normalize, precision, ...


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
        _ENCODERS[key].default_prompt_name = None  # the job resolved the prompt at its door (settings.prompted)
    return _ENCODERS[key]


# Consecutive partitions are embedded together, sorted by length across them all: a partition of the smallest size
# (4 KiB, ~30 lines) is one batch of every length, padded to its longest (the embed job at a third of encode's speed
# on 400 lines of documentation prose). A group is as many partitions as make up GROUP_SECONDS of work at the rate
# measured so far, and at most GROUP_BYTES of input, but at least GROUP_LINES lines (the first group is that many,
# and measures the rate; on a cluster every group is that many, one task each). Each partition still gets its own
# shard, written as soon as its group is embedded, so Ctrl-C loses at most one group: a few seconds, whatever the
# input's size (a 233 KB file was one 256 KiB group, and an interrupt at 41% kept nothing).
GROUP_SECONDS = 3.0
GROUP_BYTES = 1 << 18
# Groups of one ~125-line partition took 3.3x the CPU time of one group of all 16 on a busy host (2,000 METADATA
# lines, MiniLM, 2 threads, load 18-22: 66.7 against 20.3 CPU-s; on 1 thread 16.3 against 14.3): encode's batches of
# one length hold few rows when it is given few texts, and a batch of few rows runs on BLAS's own threads, which
# spin when the other core is busy. With groups of at least 512 lines (16 batches of 32; ~2.5 s on 2 quiet cores) the
# same run took 22.4 CPU-s against 17.0 for one group (load 19-20).
GROUP_LINES = 512


def embed_partitions(
    tasks: list[dict], encoder=None, on_batch: Callable[[int], None] | None = None, threads: int | None = None
) -> Iterator[dict]:
    """Embed the lines of several partitions in one pass, then write each one's shard atomically, yielding its summary
    once its shard is written. `threads`: the model's threads (None: its default, MINIBERT_NUM_THREADS or every
    core)."""
    started = time.perf_counter()
    if encoder is None:
        encoder = load_encoder(tasks[0]["model"], tasks[0]["dtype"])
    parsed = [_read_partition(task) for task in tasks]
    texts = [text for _, partition_texts, _, _ in parsed for text in partition_texts]
    settings = tasks[0].get("settings", DEFAULTS)
    texts = prompted(texts, settings)  # what the model reads, the prompt in front
    embedded = _embed_texts(encoder, texts, tasks[0]["batch_size"], tasks[0]["sort_by_length"], on_batch, threads)
    embedded = finish_rows(embedded, settings)  # truncate_dim, normalize, precision
    tokens = _tokens_if_cut(encoder, texts)
    at = 0
    for task, (raw_lines, partition_texts, rows, bad) in zip(tasks, parsed, strict=True):
        embeddings = np.full((len(raw_lines), output_dim(encoder.dim, settings)), np.nan, dtype=np.float32)
        embeddings[rows] = embedded[at : at + len(partition_texts)]
        first = task["first_line"]
        cut = [(first + row, tokens[at + i]) for i, row in enumerate(rows) if tokens[at + i]]
        at += len(partition_texts)
        if on_batch is not None and bad:
            on_batch(len(bad))
        write_shard(
            task["shard"],
            embeddings=embeddings,
            lines=np.arange(first, first + len(raw_lines), dtype=np.int64),
            bad_lines=np.asarray([n for n, _ in bad], dtype=np.int64),
            bad_reasons=np.asarray([r for _, r in bad], dtype=np.str_),
            cut_lines=np.asarray(cut, dtype=np.int64).reshape(-1, 2),  # [n, 2]: line number, its tokens
            fingerprint=np.asarray(task["fingerprint"]),
        )
        yield {
            "index": task["index"],
            "rows": len(raw_lines),
            "bytes": task["end"] - task["start"],
            "dim": int(embeddings.shape[1]),
            "bad": bad,
            "cut": cut,
            "max_tokens": getattr(encoder, "max_seq_length", None),
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


def _tokens_if_cut(encoder, texts: list[str]) -> list[int]:
    """For each text, its token count if it is longer than the encoder's max_seq_length (so cut), else 0.

    A cut row is exactly max_seq_length tokens long, so only those are tokenized again, uncut, one at a time (an
    uncut batch would be padded to its longest text, however long)."""
    limit = getattr(encoder, "max_seq_length", None)
    if limit is None or not texts:  # an encoder=... stand-in that does not say
        return [0] * len(texts)
    tokens = [0] * len(texts)
    for start in range(0, len(texts), 1024):  # [1024, max_seq_length] ids at a time
        chunk = texts[start : start + 1024]
        lengths = encoder.tokenizer(chunk, max_length=limit)["attention_mask"].sum(axis=1)  # [C]
        for i in np.flatnonzero(lengths == limit):
            uncut = int(encoder.tokenizer([chunk[i]], truncation=False)["attention_mask"].sum())
            tokens[start + i] = uncut if uncut > limit else 0
    return tokens


def _groups(tasks: list[dict], seconds_per_byte: Callable[[], float | None]) -> Iterator[list[dict]]:
    """Consecutive tasks, as many to a group as make up GROUP_SECONDS of work at `seconds_per_byte()` (called before
    each group; None before anything is measured) and at most GROUP_BYTES of input, but at least GROUP_LINES lines."""
    at = 0
    while at < len(tasks):
        rate = seconds_per_byte()
        budget = 0 if rate is None else min(GROUP_BYTES, GROUP_SECONDS / max(rate, 1e-12))
        group, size, lines = [], 0, 0
        while at < len(tasks) and (not group or lines < GROUP_LINES or size + _bytes(tasks[at]) <= budget):
            group.append(tasks[at])
            size, lines = size + _bytes(tasks[at]), lines + tasks[at]["lines"]
            at += 1
        yield group


def _bytes(task: dict) -> int:
    return task["end"] - task["start"]


def _embed_texts(encoder, texts: list[str], batch_size: int, sort_by_length: bool, on_batch, threads) -> np.ndarray:
    """float32 [len(texts), dim], in the order of `texts`, computed in batches."""
    options = {} if threads is None else {"threads": threads}  # an encoder=... stand-in may not take threads
    if sort_by_length:  # encode sorts by length and cuts batches of nearly one length, so little of each is padding
        return encoder.encode(texts, batch_size=batch_size, dtype=np.float32, on_batch=on_batch, **options)
    embeddings = np.empty((len(texts), encoder.dim), dtype=np.float32)
    for b in range(0, len(texts), batch_size):
        embeddings[b : b + batch_size] = encoder.embed_batch(texts[b : b + batch_size], **options)  # [b, dim]
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
        model_identity(model_dir, job.dtype),
        input_identity(job.input_path),
        job.input_format,
        job.field,
        resolve_settings(model_dir, **job.settings),
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
    cut = [tuple(c) for c in done.get("cut_lines", [])]  # not in manifests of minibert before 0.2
    skipped = [p["index"] for p in done["partitions"]]
    return EmbedReport(
        paths.npy, done["rows"], done["dim"], bad, skipped=skipped, seconds=time.perf_counter() - started, cut_lines=cut
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
                "settings": manifest.get("settings", DEFAULTS),
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

    if client is not None:  # groups of GROUP_LINES lines at least, each embedded by one worker, sorted across it
        cluster.run_on_cluster(client, embed_partitions, list(_groups(tasks, lambda: None)), retries, done)
        return
    measured = [0.0, 0]  # seconds, bytes: of the groups done, to size the next one

    def seconds_per_byte() -> float | None:
        return measured[0] / measured[1] if measured[1] else None

    for group in _groups(tasks, seconds_per_byte):
        started = time.perf_counter()
        for summary in embed_partitions(group, encoder=encoder, on_batch=bar.update):
            done(summary)
        measured[0] += time.perf_counter() - started
        measured[1] += sum(task["end"] - task["start"] for task in group)


def _gather(paths: OutputPaths, manifest: dict, summaries: list[dict], skipped: list[int]):
    """(every bad line, sorted; every cut line, sorted; the embedding width), from this run's summaries and the
    shards it skipped."""
    shard = {p["index"]: paths.shard(p["shard"]) for p in manifest["partitions"]}
    bad = [tuple(b) for s in summaries for b in s["bad"]]
    cut = [tuple(c) for s in summaries for c in s["cut"]]
    for index in skipped:
        bad += shard_bad_lines(shard[index])
        cut += shard_cut_lines(shard[index])
    bad.sort()
    cut.sort()
    dims = {s["dim"] for s in summaries}
    if skipped:
        dims.add(shard_dim(shard[skipped[0]]))
    if len(dims) != 1:  # cannot happen with one model; checked because a mixed output would read back wrong
        raise MinibertError(f"{paths.directory}: shards of different widths {sorted(dims)}; delete it and start over")
    return bad, cut, dims.pop()


def _finish(paths: OutputPaths, manifest: dict, bad: list, cut: list, dim: int) -> None:
    """The manifest marked complete; for a .npy output, the shards assembled into it."""
    manifest.update(complete=True, dim=dim, bad_lines=[list(b) for b in bad], cut_lines=[list(c) for c in cut])
    write_manifest(paths.manifest, manifest)
    if paths.npy is not None:
        assemble_npy(paths, manifest)


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
    prompt_name: str | None = None,
    prompt: str | None = None,
    normalize: bool = False,
    precision: str = "float32",
    truncate_dim: int | None = None,
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
    `prompt_name`, `prompt`, `normalize`, `precision` (float32, binary, ubinary) and `truncate_dim` are
    SentenceEncoder.encode's (normalize is its normalize_embeddings); the manifest records them (the prompt as its
    text), and a resume with other settings is refused.
    """
    started = time.perf_counter()
    log = sys.stderr if log is None else log  # looked up per call, so that redirecting sys.stderr works
    input_path = str(input_path)
    dtype = _check_arguments(batch_size, partition_size, dtype, input_format)
    if encoder is not None and client is not None:
        raise InputError("encoder= is for in-process runs; on a cluster each worker loads the model itself")
    settings = dict(
        prompt_name=prompt_name, prompt=prompt, normalize=normalize, precision=precision, truncate_dim=truncate_dim
    )
    job = Job(
        input_path,
        input_format_of(input_path, input_format),
        field,
        dtype,
        batch_size,
        partition_size,
        sort_by_length,
        settings,
    )
    paths = output_paths(output, clustered=client is not None)
    identity = _identity(job, model)
    check_has_texts(job.input_path, job.input_format, job.field)  # before any output is made
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
    bar = progress_bar(manifest["rows"], done_rows, progress and bool(tasks))
    summaries = []
    try:
        _embed_pending(tasks, encoder, client, retries, bar, on_partition_done, summaries)
    except KeyboardInterrupt:
        bar.close()

        def count_kept() -> int:
            complete = [
                shard_is_complete(paths.shard(p["shard"]), p, manifest["fingerprint"], paths.manifest)
                for p in manifest["partitions"]
            ]
            return sum(complete)

        raise EmbedInterrupted(paths.directory, count_kept(), len(manifest["partitions"]), count_kept) from None
    finally:
        bar.close()

    bad, cut, dim = _gather(paths, manifest, summaries, skipped)
    _finish(paths, manifest, bad, cut, dim)
    limit = next((s["max_tokens"] for s in summaries), identity["model"].get("max_seq_length"))
    if tasks:  # a rerun of a finished output says only that (the caller's summary)
        report_lines(bad, cut, manifest["rows"], limit, paths.finished_manifest, log)
    return EmbedReport(
        output=paths.output,
        rows=manifest["rows"],
        dim=dim,
        bad_lines=bad,
        computed=sorted(s["index"] for s in summaries),
        skipped=skipped,
        texts_encoded=sum(s["encoded"] for s in summaries),
        seconds=time.perf_counter() - started,
        cut_lines=cut,
    )
