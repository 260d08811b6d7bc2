"""sentence-transformers' three model kinds, through the same API, minibert against sentence-transformers on torch:

    python benchmarks/st_api.py --threads 1,2            # 400 texts, 3 rounds (results/<date>-st-api.json)
    python benchmarks/st_api.py --threads 1 --texts 100  # a quick look

The models are weights/make_st_api_models.py's, built from the real all-MiniLM-L6-v2 weights (seeded heads change
no speed): the tasks, in float32, batches of 32,

  embed    SentenceTransformer(bge).encode_query(texts)       CLS pooling, Normalize, a query prompt
  rerank   CrossEncoder(rerank1).rank(query, texts)           BertForSequenceClassification, one label
  sparse   SparseEncoder(splade).encode(texts)                BertForMaskedLM + SpladePooling, [N, 30522]

with `from minibert import ...` or `from sentence_transformers import ...` and nothing else changed. The texts are
benchmarks/corpus.py's paragraphs of installed documentation. Each (engine, task, core count) runs in its own
process pinned to that many cores, every thread pool of that size, after one untimed warm-up on 16 texts; a round
runs each worker once, in an order that rotates each round; throughputs are medians of the rounds. The outputs of
the first round are compared (max abs difference; relative to max(|x|, 1) for sparse).
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # minibert from this checkout, not an installed copy
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "weights"))

from corpus import build_corpus, describe_corpus  # noqa: E402
from harness import (  # noqa: E402
    Worker,
    blas_info,
    describe_host,
    host_summary,
    protocol_stdout,
    rotation,
    start_pinned,
)

RESULTS = ROOT / "benchmarks" / "results"
ENGINES = ("minibert", "sentence-transformers")
TASKS = ("embed", "rerank", "sparse")
BATCH_SIZE = 32
QUERY = "How do I install a package and check which version is installed?"
WARM_UP_TEXTS = 16


def load_task(engine: str, task: str, models: Path):
    """A function texts -> NumPy array for one engine and task, its model loaded."""
    import numpy as np

    if engine == "minibert":
        import minibert as library
    else:
        import sentence_transformers as library
        import torch

        torch.set_num_threads(len(os.sched_getaffinity(0)))
    kwargs = {} if engine == "minibert" else {"device": "cpu"}
    if task == "embed":
        model = library.SentenceTransformer(str(models / "bge"), **kwargs)
        return lambda texts: model.encode_query(texts, batch_size=BATCH_SIZE)
    if task == "rerank":
        model = library.CrossEncoder(str(models / "rerank1"), **kwargs)

        def rerank(texts):
            ranked = model.rank(QUERY, texts, batch_size=BATCH_SIZE)
            return np.array([r["score"] for r in sorted(ranked, key=lambda r: r["corpus_id"])], dtype=np.float32)

        return rerank
    if task == "sparse":
        model = library.SparseEncoder(str(models / "splade"), **kwargs)
        if engine == "minibert":
            return lambda texts: model.encode(texts, batch_size=BATCH_SIZE)
        return lambda texts: model.encode(texts, batch_size=BATCH_SIZE).to_dense().numpy()
    raise ValueError(f"unknown task {task!r}")


def run_worker(engine: str, task: str, models: str, threads: int, texts_file: str) -> None:
    """Serve requests on stdin: run the task on the texts file, reply with the seconds, save the output if asked."""
    start_pinned(threads)
    import numpy as np

    reply = protocol_stdout()
    texts = Path(texts_file).read_text(encoding="utf-8").splitlines()
    run = load_task(engine, task, Path(models))
    run(texts[:WARM_UP_TEXTS])
    report = {"cores": sorted(os.sched_getaffinity(0)), "blas": blas_info()}
    print(json.dumps({"report": report}), file=reply, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        start, cpu = time.perf_counter(), time.process_time()
        out = run(texts)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        if request.get("save"):
            np.save(request["save"], np.asarray(out, dtype=np.float32))
        print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds}), file=reply, flush=True)


def difference(task: str, ours, theirs) -> float:
    import numpy as np

    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    scale = np.maximum(np.abs(theirs), 1.0) if task == "sparse" else 1.0
    return float(np.max(np.abs(ours - theirs) / scale))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=400, help="corpus size")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the corpus per worker")
    parser.add_argument("--threads", default="1", help="comma-separated core counts, e.g. 1,2")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument("--out", type=Path, help="results file (default benchmarks/results/<date>-st-api.json)")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        engine, task, models, threads, texts_file = args.worker
        run_worker(engine, task, models, int(threads), texts_file)
        return 0

    import numpy as np
    from make_st_api_models import build_bge, build_reranker, build_splade

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="minibert-st-api-bench-"))
    build_bge(work), build_reranker(work, 1), build_splade(work)
    texts = build_corpus(args.texts)
    corpus_file = work / "corpus.txt"
    corpus_file.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    thread_counts = [int(n) for n in args.threads.split(",")]
    tasks = [t for t in TASKS if t in args.tasks.split(",")]
    host = describe_host()
    corpus = describe_corpus(texts)
    print(f"host: {host_summary(host)}")
    median = corpus["characters_median"]
    print(f"corpus: {corpus['texts']} texts, characters median {median:.0f}; load {os.getloadavg()}")
    workers = {
        (engine, task, threads): Worker(
            Path(__file__).resolve(),
            [engine, task, str(work), str(threads), str(corpus_file)],
            f"{engine} {task} on {threads} cores",
        )
        for threads in thread_counts
        for task in tasks
        for engine in ENGINES
    }
    reports = {" ".join(map(str, key)): w.ready() for key, w in workers.items()}
    samples = {key: [] for key in workers}
    cpu_samples = {key: [] for key in workers}
    outputs = {}
    for r in range(args.rounds):
        for key in rotation(list(workers), r):
            save = str(work / ("-".join(map(str, key)) + ".npy")) if r == 0 else None
            answer = workers[key].ask({"save": save})
            samples[key].append(answer["seconds"])
            cpu_samples[key].append(answer["cpu_seconds"])
            if save:
                outputs[key] = np.load(save)
            rate = len(texts) / answer["seconds"]
            print(f"  round {r + 1}: {key[0]:22} {key[1]:7} {key[2]} cores {rate:7.1f} texts/s", flush=True)
    for w in workers.values():
        w.close()

    table = []
    for threads in thread_counts:
        for task in tasks:
            rate = {e: len(texts) / statistics.median(samples[e, task, threads]) for e in ENGINES}
            cpu_rate = {e: len(texts) / statistics.median(cpu_samples[e, task, threads]) for e in ENGINES}
            table.append(
                {
                    "task": task,
                    "threads": threads,
                    "texts_per_s": rate,
                    "ratio": rate["minibert"] / rate["sentence-transformers"],
                    "ratio_by_cpu_time": cpu_rate["minibert"] / cpu_rate["sentence-transformers"],
                    "max_difference": difference(
                        task, outputs["minibert", task, threads], outputs["sentence-transformers", task, threads]
                    ),
                }
            )
    print(f"\n{'task':8} {'cores':>5} {'minibert':>10} {'s-t':>10} {'ratio':>6} {'by CPU':>6} {'max diff':>9}")
    for row in table:
        rate = row["texts_per_s"]
        print(
            f"{row['task']:8} {row['threads']:>5} {rate['minibert']:>8.1f}/s {rate['sentence-transformers']:>8.1f}/s "
            f"{row['ratio']:>5.2f}x {row['ratio_by_cpu_time']:>5.2f}x {row['max_difference']:>9.1e}"
        )
    out = args.out or RESULTS / f"{datetime.date.today().isoformat()}-st-api.json"
    out.write_text(
        json.dumps(
            {
                "host": host,
                "corpus": corpus,
                "rounds": args.rounds,
                "batch_size": BATCH_SIZE,
                "workers": reports,
                "results": table,
                "seconds_each_round": {" ".join(map(str, k)): v for k, v in samples.items()},
                "wall_s": time.perf_counter() - started,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
