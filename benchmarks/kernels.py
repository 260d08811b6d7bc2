"""Where a forward pass spends its time, by the machine code it runs: perf's samples of a pinned loop of forward
passes, grouped by what each function is (BLAS's multiply-adds and packing, NumPy's loops, the interpreter, ...).

    python benchmarks/kernels.py --model minilm --shape 1x512 --threads 1
    python benchmarks/kernels.py --model minilm --shape 8x128 --engine torch --out benchmarks/results/x.json
    python benchmarks/kernels.py --floor --threads 1 --seconds 8   # every cell of run.py, both engines: ~12 min

`--floor` asks, cell by cell, whether issue 22's goal (minibert at most 1.10x torch's time) is within reach of
NumPy's own BLAS: minibert's BLAS time alone (multiply-adds, packing, zeroing C), against torch's whole pass, and
what that leaves for everything else (the elementwise steps, copies, Python) against what minibert and torch spend
on it now.

What benchmarks/run.py's roofline column cannot tell: which kernel BLAS really runs in the timed process
(`sgemm_kernel_SKYLAKEX`, `sgemm_small_kernel_b0_nn_SKYLAKEX`, ...), how much of a pass it takes, and how the time
outside it divides among NumPy's loops (exp, multiply, the reductions) and Python. The engine runs in its own process,
pinned like run.py's workers; perf attaches once the engine is loaded and warm, so loading is not sampled. It needs
`perf` (Debian's linux-perf) and permission to attach to one's own processes (kernel.perf_event_paranoid <= 2, or
root). `-e cpu-clock` is a software clock: it works in the KVM guests here, which give perf no hardware counters.
"""

import argparse
import datetime
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Worker, describe_host, host_summary, protocol_stdout, start_pinned  # noqa: E402
from run import SHAPES, engine_report, load_engine, make_inputs, model_dirs  # noqa: E402

# What a sampled function is, by its library and name (the first match wins). perf names OpenBLAS's kernels after
# the core they were written for, so `sgemm_kernel_SKYLAKEX` says which kernel ran; `gemm_beta` is BLAS zeroing C
# before a product (NumPy asks for C = A B, beta = 0), through libc's memset.
GROUPS = (  # (group, library pattern, symbol pattern)
    ("Python", r"libpython|/python3", r""),
    ("BLAS: packing", r"", r"gemm_.*(copy|pack)"),  # OpenBLAS's sgemm_itcopy, MKL's sgemm_scopy_right16
    ("BLAS: zeroing C", r"", r"gemm_(beta|mscale)"),  # OpenBLAS's sgemm_beta, MKL's sgemm_mscale
    ("BLAS: multiply-adds", r"", r"gemm_(small_)?kernel|gemv_|mkl_blas_.*(gemm|gemv)|brgemm"),
    ("BLAS: threads waiting", r"", r"blas_thread_server|exec_blas|gomp_|__kmp|kmp_"),
    ("libc: memset, memcpy", r"libc", r"mem(set|move|cpy)"),
    ("NumPy: exp", r"numpy|_multiarray_umath", r"exp"),
    ("NumPy: reductions", r"numpy|_multiarray_umath", r"pairwise_sum|reduce|_(maximum|fmax)"),
    ("NumPy: copies", r"numpy|_multiarray_umath", r"strided_to|contig_to|_copy|assign|TransferNDim|npyiter_"),
    ("NumPy: elementwise", r"numpy|_multiarray_umath", r"^(FLOAT|DOUBLE)_|simd_"),
    ("NumPy: the rest", r"numpy|_multiarray_umath", r""),
    ("torch, onnxruntime: the rest", r"libtorch|libc10|onnxruntime|libgomp|libiomp", r""),
)
KERNEL = "Linux kernel"
OTHER = "other"


def parse_report(text: str) -> list[dict]:
    """`perf report --stdio --sort dso,sym --field-separator ';'` -> [{percent, dso, symbol, kernel_space}], largest
    first. Comment and blank lines are skipped; a symbol perf cannot name is kept as its address."""
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split(";")]
        if len(fields) < 3 or not fields[0].endswith("%"):
            continue
        percent, dso, symbol = float(fields[0].rstrip("%")), fields[1], ";".join(fields[2:])
        match = re.match(r"\[([.k])\]\s*(.*)", symbol)
        kernel_space = bool(match and match.group(1) == "k") or dso.startswith("[kernel")
        rows.append(
            {
                "percent": percent,
                "dso": dso,
                "symbol": match.group(2) if match else symbol,
                "kernel_space": kernel_space,
            }
        )
    return sorted(rows, key=lambda r: -r["percent"])


def group_of(row: dict) -> str:
    """The GROUPS name of one perf row (KERNEL for the kernel's own functions, OTHER for what matches none)."""
    if row["kernel_space"]:
        return KERNEL
    for name, library, symbol in GROUPS:
        if re.search(library, row["dso"]) and re.search(symbol, row["symbol"]):
            return name
    return OTHER


def summarise(rows: list[dict], seconds_per_call: float) -> dict:
    """Percent and milliseconds per forward pass of each group, and the BLAS kernels seen (by name)."""
    total = sum(r["percent"] for r in rows) or 1.0
    groups: dict[str, float] = {}
    for row in rows:
        groups[group_of(row)] = groups.get(group_of(row), 0.0) + row["percent"]
    kernels = sorted({r["symbol"] for r in rows if group_of(r) == "BLAS: multiply-adds" and r["percent"] >= 0.1})
    return {
        "groups": {
            name: {"percent": round(100 * p / total, 2), "ms_per_call": round(1e3 * seconds_per_call * p / total, 3)}
            for name, p in sorted(groups.items(), key=lambda kv: -kv[1])
        },
        "blas_kernels": kernels,
        "top_symbols": [
            {
                "percent": round(100 * r["percent"] / total, 2),
                "symbol": r["symbol"],
                "dso": Path(r["dso"]).name,
                "group": group_of(r),
            }
            for r in rows[:25]
        ],
    }


def run_worker(engine: str, name: str, directory: str, threads: int, batch: int, seq: int) -> None:
    """In the worker: load and warm the engine, report, then on {"seconds": s} run forward passes for s seconds and
    answer with their number and time (harness.Worker's protocol)."""
    start_pinned(threads)
    reply = protocol_stdout()
    forward = load_engine(engine, name, Path(directory), threads)
    vocab_size = json.loads((Path(directory) / "config.json").read_text())["vocab_size"]
    inputs = make_inputs(batch, seq, vocab_size)
    for _ in range(3):
        forward(*inputs)
    print(json.dumps({"report": engine_report(engine, threads)}), file=reply, flush=True)
    seconds = json.loads(sys.stdin.readline())["seconds"]
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        forward(*inputs)
        calls += 1
    elapsed = time.perf_counter() - start
    print(json.dumps({"calls": calls, "seconds": elapsed}), file=reply, flush=True)


def profile(engine: str, name: str, directory: Path, threads: int, batch: int, seq: int, seconds: float) -> dict:
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("kernels.py needs perf: apt-get install linux-perf (Debian), then run it again")
    args = [engine, name, str(directory), str(threads), str(batch), str(seq)]
    worker = Worker(Path(__file__).resolve(), args, label=f"{engine} on {threads} cores")
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "perf.data"
        try:
            report = worker.ready()  # loaded and warm: perf samples the timed loop only
            recorder = subprocess.Popen(
                [perf, "record", "-q", "-e", "cpu-clock", "-F", "1999", "-p", str(worker.process.pid), "-o", str(data)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(0.5)  # perf attached before the timed loop starts
            if recorder.poll() is not None:
                raise SystemExit(f"perf record could not attach: {recorder.stderr.read().strip()}")
            done = worker.ask({"seconds": seconds})
            worker.close()
            recorder.wait(timeout=60)  # perf stops when the process it follows exits
        finally:
            if worker.process.poll() is None:
                worker.process.kill()
        listing = subprocess.run(
            [perf, "report", "-i", str(data), "--stdio", "--sort", "dso,sym", "--field-separator", ";"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    seconds_per_call = done["seconds"] / done["calls"]
    return {
        "engine": engine,
        "model": name,
        "batch": batch,
        "seq": seq,
        "threads": threads,
        "calls": done["calls"],
        "seconds_per_call": seconds_per_call,
        "worker": report,
        **summarise(parse_report(listing), seconds_per_call),
    }


def print_profile(result: dict) -> None:
    print(
        f"{result['engine']} {result['model']} {result['batch']}x{result['seq']} on {result['threads']} cores: "
        f"{1e3 * result['seconds_per_call']:.2f} ms per call over {result['calls']} calls"
    )
    for name, group in result["groups"].items():
        print(f"  {group['percent']:6.2f}%  {group['ms_per_call']:9.3f} ms  {name}")
    print(f"  BLAS kernels seen: {', '.join(result['blas_kernels']) or 'none named'}")
    for row in result["top_symbols"][:12]:
        print(f"    {row['percent']:6.2f}%  {row['symbol']}  ({row['dso']}; {row['group']})")


BLAS_GROUPS = ("BLAS: multiply-adds", "BLAS: packing", "BLAS: zeroing C")


def floor_row(minibert: dict, torch: dict, goal: float = 1.10) -> dict:
    """One cell of --floor from the two engines' profiles (`profile`'s results): milliseconds per call of each,
    minibert's BLAS time, which no change outside BLAS lowers, as a fraction of torch's whole pass, and what a pass at
    `goal` x torch's time leaves for the rest of minibert's (negative: the products alone exceed the goal), beside
    what the rest costs minibert and torch now."""

    def ms(result: dict, groups=None) -> float:
        if groups is None:
            return 1e3 * result["seconds_per_call"]
        return sum(result["groups"].get(name, {}).get("ms_per_call", 0.0) for name in groups)

    ours, theirs = ms(minibert), ms(torch)
    blas, their_blas = ms(minibert, BLAS_GROUPS), ms(torch, BLAS_GROUPS)
    return {
        "model": minibert["model"],
        "shape": f"{minibert['batch']}x{minibert['seq']}",
        "minibert_ms": round(ours, 3),
        "torch_ms": round(theirs, 3),
        "minibert/torch": round(ours / theirs, 3),
        "minibert_blas_ms": round(blas, 3),
        "minibert_blas/torch": round(blas / theirs, 3),
        "rest_allowed_ms": round(goal * theirs - blas, 3),
        "minibert_rest_ms": round(ours - blas, 3),
        "torch_rest_ms": round(theirs - their_blas, 3),
    }


def print_floor(rows: list[dict], goal: float) -> None:
    print(
        f"\nminibert's BLAS time against torch's whole pass; 'allowed' is what {goal:.2f}x torch's time leaves the rest"
    )
    columns = ("minibert", "torch", "ratio", "BLAS", "BLAS/torch", "allowed", "rest now", "torch rest")
    print(f"{'cell':18s} " + " ".join(f"{c:>10s}" for c in columns))
    for r in rows:
        values = [r[k] for k in ("minibert_ms", "torch_ms", "minibert/torch", "minibert_blas_ms")]
        values += [r[k] for k in ("minibert_blas/torch", "rest_allowed_ms", "minibert_rest_ms", "torch_rest_ms")]
        print(f"{r['model'] + ' ' + r['shape']:18s} " + " ".join(f"{v:10.2f}" for v in values))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm", choices=["minilm", "bert-base"])
    parser.add_argument("--shape", default="1x512", help="batch x sequence, e.g. 8x128")
    parser.add_argument("--threads", type=int, default=1, help="cores (and threads) of the engine's process")
    parser.add_argument("--engine", default="minibert", choices=["minibert", "torch"])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the sampled loop runs")
    parser.add_argument("--out", type=Path, help="also write the result to this JSON file")
    parser.add_argument("--floor", action="store_true", help="every cell of run.py, both engines (see above)")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        engine, name, directory, threads, batch, seq = args.worker
        run_worker(engine, name, directory, int(threads), int(batch), int(seq))
        return 0
    try:
        batch, seq = (int(n) for n in args.shape.lower().split("x"))
    except ValueError:
        parser.error(f"--shape {args.shape!r}: expected batch x sequence, e.g. 8x128")
    host, date = describe_host(), datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print(f"host: {host_summary(host)}")
    if args.floor:
        goal, rows, profiles = 1.10, [], []
        for name in ("minilm", "bert-base"):
            for batch, seq in SHAPES:
                pair = [
                    profile(engine, name, model_dirs()[name], args.threads, batch, seq, args.seconds)
                    for engine in ("minibert", "torch")
                ]
                rows.append(floor_row(*pair, goal))
                profiles += pair
                row = rows[-1]
                print(
                    f"{name} {batch}x{seq}: minibert/torch {row['minibert/torch']:.2f}, "
                    f"its BLAS alone {row['minibert_blas/torch']:.2f}x torch's pass",
                    flush=True,
                )
        print_floor(rows, goal)
        result = {
            "date": date,
            "host": host,
            "threads": args.threads,
            "goal": goal,
            "floor": rows,
            "profiles": profiles,
        }
    else:
        result = profile(args.engine, args.model, model_dirs()[args.model], args.threads, batch, seq, args.seconds)
        result = {"date": date, "host": host, **result}
        print_profile(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
