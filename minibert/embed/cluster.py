"""The embedding job on a Dask cluster: one task per partition, and a client to run them on.

Dask (`pip install 'minibert[cluster]'`) is imported here only, inside the functions that use it, so that
`import minibert` stays light. Tasks receive only paths and numbers (a few hundred bytes through the scheduler);
each worker loads the model itself, once (job.load_encoder).
"""

import sys
from collections.abc import Callable
from contextlib import contextmanager

from ..errors import InputError, MinibertError
from .partitions import count_lines


def count_lines_on_cluster(client, input_path: str, ranges: list[tuple[int, int]]) -> list[int]:
    """Each worker counts the lines of its own byte ranges; only the integers come back."""
    if not ranges:
        return []
    futures = client.map(count_lines, [input_path] * len(ranges), *zip(*ranges, strict=True), pure=False)
    return client.gather(futures)


def run_on_cluster(
    client,
    embed_partition: Callable[[dict], dict],
    tasks: list[dict],
    retries: int,
    on_done: Callable[[dict], None],
) -> list[dict]:
    """Submit one task per partition; Dask retries failures and reschedules the tasks of a worker that dies."""
    from distributed import as_completed

    # Named by the run and the partition, so a task's key says whose it is (the fault test finds them by it).
    keys = [f"minibert-embed-{task['fingerprint'][:16]}-{task['index']:05d}" for task in tasks]
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
            on_done(summary)
    except BaseException:
        client.cancel(futures)
        raise
    return summaries


def open_client(workers: int | None = None, scheduler: str | None = None, timeout: str = "20s"):
    """(client, cluster): a new local cluster of `workers` processes of one thread each, or the one at `scheduler`
    (cluster None). Raises ImportError without Dask, OSError or TimeoutError when the scheduler cannot be reached."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        return Client(scheduler, timeout=timeout), None
    # One thread per worker process: BERT's matmuls hold the GIL between BLAS calls, so processes, not
    # threads, are what scale; Dask also sets OMP/OPENBLAS_NUM_THREADS=1 in the workers it spawns.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
    return Client(cluster), cluster


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
    try:
        client, cluster = open_client(workers=workers, scheduler=scheduler, timeout=timeout)
    except ImportError:
        raise InputError("--workers and --scheduler need Dask: pip install 'minibert[cluster]'") from None
    except (OSError, TimeoutError) as error:
        if scheduler is None:
            raise
        raise InputError(f"--scheduler {scheduler}: cannot connect ({error})") from None
    print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)
    try:
        yield client
    finally:
        close_client(client, cluster)
