"""The embedding job on a Dask cluster: one task per group of partitions, and a client to run them on.

Dask (`pip install 'minibert-numpy[cluster]'`) is imported here only, inside the functions that use it, so that
`import minibert` stays light. Tasks receive only paths and numbers (a few hundred bytes through the scheduler);
each worker loads the model itself, once (job.load_encoder).
"""

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import InputError, MinibertError
from ..parallel import THREADS_ENV, resolve_threads
from .partitions import count_lines


def count_lines_on_cluster(client, input_path: str, ranges: list[tuple[int, int]]) -> list[int]:
    """Each worker counts the lines of its own byte ranges; only the integers come back."""
    if not ranges:
        return []
    futures = client.map(count_lines, [input_path] * len(ranges), *zip(*ranges, strict=True), pure=False)
    return client.gather(futures)


def task_threads() -> int:
    """The threads one task uses on a Dask worker: one. A worker runs as many tasks at once as the threads it was given
    (`dask worker --nthreads`, LocalCluster's threads_per_worker), so with one thread each its tasks use what it was
    given: minibert's default, every core of the machine per task, made two 1-thread workers on 2 cores run 4
    threads and take 2-6x the time of one process (issue 25). $MINIBERT_NUM_THREADS in the worker's environment sets
    another count."""
    return resolve_threads() if os.environ.get(THREADS_ENV, "").strip() else 1


def on_worker(embed_partitions: Callable[..., Iterator[dict]], group: list[dict]) -> list[dict]:
    """The task as a worker runs it: a group of partitions, on task_threads() threads; their summaries."""
    return list(embed_partitions(group, threads=task_threads()))


def run_on_cluster(
    client,
    embed_partitions: Callable[..., Iterator[dict]],
    groups: list[list[dict]],
    retries: int,
    on_done: Callable[[dict], None],
) -> list[dict]:
    """Submit one task per group of partitions; Dask retries failures and reschedules the tasks of a worker that
    dies. `on_done` gets each partition's summary."""
    from distributed import as_completed

    # Named by the run and the partitions, so a task's key says whose they are (the fault test finds them by it).
    keys = [f"minibert-embed-{g[0]['fingerprint'][:16]}-{g[0]['index']:05d}-{g[-1]['index']:05d}" for g in groups]
    futures = client.map(on_worker, [embed_partitions] * len(groups), groups, key=keys, retries=retries, pure=False)
    group_of = {future.key: group for future, group in zip(futures, groups, strict=True)}
    summaries = []
    try:
        for future in as_completed(futures):
            try:
                group_summaries = future.result()
            except MinibertError:
                raise
            except Exception as error:
                first, last = group_of[future.key][0], group_of[future.key][-1]
                raise MinibertError(
                    f"partitions {first['index']}-{last['index']} (lines {first['first_line']}-"
                    f"{last['first_line'] + last['lines'] - 1}) failed after {retries} retries: "
                    f"{type(error).__name__}: {error}. Rerun to resume"
                ) from error
            future.release()
            for summary in group_summaries:
                summaries.append(summary)
                on_done(summary)
    except BaseException:
        client.cancel(futures)
        raise
    return summaries


def open_client(workers: int | None = None, scheduler: str | None = None, timeout: str = "20s"):
    """(client, cluster): a new local cluster of `workers` processes of one thread each, or the one at `scheduler`
    (cluster None). Raises ImportError without Dask, OSError or TimeoutError when the scheduler cannot be reached."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        return Client(scheduler, timeout=timeout), None
    # One thread per worker process: BERT's matmuls hold the GIL between BLAS calls, so processes, not
    # threads, are what scale; Dask also sets OMP/OPENBLAS_NUM_THREADS=1 in the workers it spawns, minibert runs each
    # task on one thread (task_threads), and the tokenizers library, which would encode a batch on every core, on one.
    # Dask logs errors only here, and only what is critical in the workers (quiet_worker_plugin): what goes wrong in a
    # task comes back as its exception, and the warnings (a task cancelled by Ctrl-C, a worker killed at close, a slow
    # event loop on a busy machine) reached the terminal as noise around the job's lines. The dashboard takes a free
    # port (the job prints its link) rather than warning that 8787 is taken.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    # Dask starts its workers with MALLOC_TRIM_THRESHOLD_=65536, so that they give memory back to the system. Setting
    # it fixes glibc's mmap threshold at 128 KiB: every array above it is mapped afresh and faulted in page by page,
    # and a worker's task took 1.35x its CPU time (2,000 lines, MiniLM, one thread: 16.8 s with 4.4 s in the kernel,
    # against 12.4 s with 0.4). A task here keeps a few MB of arrays; what it frees, malloc reuses. A value set in
    # this process's environment is kept.
    with (
        sigint_ignored_by_children(),
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
    ):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            env={"RAYON_NUM_THREADS": "1"},
            dashboard_address="127.0.0.1:0",
        )
    client = Client(cluster)
    client.register_plugin(quiet_worker_plugin(), name="minibert-quiet-worker")  # workers started later get it too
    return client, cluster


def quiet_worker_plugin():
    """A Dask worker plugin that makes the worker's Dask log only what is critical (defined here: Dask is imported
    lazily). A worker's errors reach the job otherwise: a task's failure comes back as its exception, a lost worker as
    the client's KilledWorker. What the worker's own log added was noise after the job's line: a worker stopped by the
    closing cluster while its heartbeat was in flight logged "Failed to communicate with scheduler during heartbeat"
    and a 30-line traceback, at ERROR, after Ctrl-C (seen once in the test suite)."""
    from distributed import WorkerPlugin

    class QuietWorker(WorkerPlugin):
        def setup(self, worker) -> None:
            logging.getLogger("distributed").setLevel(logging.CRITICAL)

    return QuietWorker()


@contextmanager
def sigint_ignored_by_children() -> Iterator[None]:
    """SIGINT ignored while worker processes are started, so that they inherit its being ignored (across exec too).
    Ctrl-C in a terminal signals the whole process group: without this, every worker printed its own traceback
    (KeyboardInterrupt, CancelledError, state-machine warnings: ~60 lines) before the job's one line. The job, in this
    process, gets the Ctrl-C, cancels the tasks and closes the cluster, which stops the workers."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def environment_kept() -> Iterator[None]:
    """This process's environment as it was before, once the block ends. Dask's nanny sets its workers' variables
    (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1, ...) in the process that spawns them, and they stayed there after the
    cluster had closed: every later child process inherited them (a server started afterwards ran BLAS on one
    thread). They are needed while the cluster runs: the nanny may spawn a worker after it has started."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(before):
            del os.environ[name]
        os.environ.update(before)


def close_client(client, cluster) -> None:
    client.close()
    if cluster is not None:
        cluster.close()


@contextmanager
def start_client(workers: int | None = None, scheduler: str | None = None, timeout: str = "20s"):
    """None (in-process), a new local Dask cluster of `workers` processes, or the one at `scheduler`."""
    if workers is None and scheduler is None:
        yield None
        return
    if workers is not None and scheduler is not None:
        raise InputError("pass --workers N (a local cluster) or --scheduler ADDRESS (a running one), not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"--workers must be a positive integer, found {workers!r}")
    with environment_kept():  # a local cluster's nanny sets its workers' variables here; gone once it is closed
        try:
            client, cluster = open_client(workers=workers, scheduler=scheduler, timeout=timeout)
        except ImportError:
            raise InputError("--workers and --scheduler need Dask: pip install 'minibert-numpy[cluster]'") from None
        except (OSError, TimeoutError) as error:
            if scheduler is None:
                raise
            raise InputError(f"--scheduler {scheduler}: cannot connect ({error})") from None
        print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        try:
            yield client
        finally:
            close_client(client, cluster)
