"""The `minibert` command. Each subcommand is a function `cmd_<name>(args)`, registered in `build_parser`.

Every error a user can cause (a bad flag, a missing model, an empty text, an output path that cannot be written)
ends as one line on stderr and exit status 2, never as a traceback; exit status 1 means a check inside a run failed
or minibert itself broke (set MINIBERT_DEBUG=1 to see the traceback then).
"""

import argparse
import json
import os
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .embed import EmbedInterrupted, embed_file, output_paths
from .embed import cluster as embed_cluster
from .errors import InputError, MinibertError
from .explainer import Explanation, pooler_report, report_as_json

RUN_OUTPUTS = ("last_hidden_state", "pooler_output", "hidden_states", "attentions")


class UsageError(Exception):
    """A command line argparse refused; main prints it as one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the whole usage, then exit; one line is clearer
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


# ---- helpers shared by the subcommands ----


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, found {value}")
    return value


def byte_size(text: str) -> int:
    """'1048576', '512K', '4M', '1G' -> bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    scale = units.get(text[-1:].upper(), 1)
    try:
        value = int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 1048576, 512K, 4M or 1G, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte, found {text!r}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        metavar="ID_OR_PATH",
        help="a model directory (config.json, model.safetensors, tokenizer.json or vocab.txt) or a hub id "
        "'org/name', fetched through huggingface_hub's cache (required: there is no default model)",
    )
    parser.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float32",
        help="the precision of the forward pass (default: float32)",
    )


def load(args):
    """The model and tokenizer of `--model`, in `--dtype`."""
    from .model import BertModel
    from .tokenizer import Tokenizer

    return BertModel.from_pretrained(args.model, dtype=np.dtype(args.dtype)), Tokenizer.from_pretrained(args.model)


def check_text(what: str, text: str) -> str:
    if not text.strip():
        raise InputError(f"{what} is empty; give some text (an unset shell variable in quotes gives this too)")
    return text


def aligned(rows: list[list[str]], labels: list[str], width: int = 100) -> str:
    """Columns of strings lined up under each other (tokens over their ids), wrapped at `width` characters."""
    columns = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    label_width = max(len(label) for label in labels)
    blocks, start = [], 0
    while start < len(columns):
        end, used = start, label_width + 1
        while end < len(columns) and (end == start or used + columns[end] + 1 <= width):
            used += columns[end] + 1
            end += 1
        for label, row in zip(labels, rows, strict=True):
            cells = " ".join(row[i].ljust(columns[i]) for i in range(start, end))
            blocks.append(f"{label.ljust(label_width)} {cells}".rstrip())
        start = end
    return "\n".join(blocks)


# ---- minibert explain ----


def print_explanation(report: dict, values: int) -> None:
    def show(name, v):
        shown = " ".join(f"{x:7.4f}" for x in v[:values])
        print(f"{name:<30} [{shown} ...]  norm {np.linalg.norm(v):.4f}")

    tokens, ids = report["tokens"], [str(i) for i in report["input_ids"]]
    rows, labels = [tokens, ids], ["tokens", "ids"]
    if report["pair"] is not None:
        rows.append([str(t) for t in report["token_type_ids"]])
        labels.append("types")
    print(aligned(rows, labels))
    print()
    print(f"pooler_output = tanh(W h0 + b): h0 is token 0's ({tokens[0]}) last hidden state, W and b the weights of")
    print(f"pooler.dense. First {values} of {len(report['h0'])} values ({report['dtype']}):")
    show("h0 = last_hidden_state[0, 0]", report["h0"])
    show("W h0 + b       (pooler.dense)", report["pooler_dense"])
    show("tanh(W h0 + b) (activation)", report["pooler_activation"])
    show("pooler_output", report["pooler_output"])
    show("mean pooling (for comparison)", report["mean_pooling"])
    print()
    print(f"cosine(h0, pooler_output)  = {report['cosine_h0_pooler_output']:7.4f}")
    print(f"cosine(h0, mean pooling)   = {report['cosine_h0_mean_pooling']:7.4f}")
    verdict = "reproduced" if report["reproduced"] else "NOT reproduced"
    print(
        f"check: max |tanh(W h0 + b) by hand - pooler_output| = {report['max_abs_diff_by_hand']:.3g} "
        f"({verdict} to {report['dtype']} precision, eps {report['epsilon']:.3g})"
    )


def cmd_explain(args) -> int:
    """Show where the pooled output comes from: token 0's last hidden state, the dense layer, the tanh."""
    check_text("the text", args.text)
    if args.pair is not None:
        check_text("--pair", args.pair)
    if args.plot is not None:  # before the forward pass, so that a typo or a missing extra costs nothing
        from .files import check_writable
        from .plot import require_matplotlib

        check_writable(args.plot, (".png",))
        require_matplotlib()
    if args.html is not None:
        from .files import check_writable

        check_writable(args.html, (".html",))
    model, tokenizer = load(args)
    layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
    if args.layer is None:
        args.layer = layers - 1
    if not 0 <= args.layer < layers:
        raise InputError(f"--layer {args.layer} is out of range: this model has {layers} layers, 0 to {layers - 1}")
    if not 0 <= args.head < heads:
        raise InputError(f"--head {args.head} is out of range: this model has {heads} heads, 0 to {heads - 1}")
    report, trace = pooler_report(model, tokenizer, args.text, args.pair)
    if args.json:
        print(json.dumps(report_as_json(report)))
    else:
        print_explanation(report, args.values)
    if args.plot is not None:
        from .plot import plot_explanation

        probs = trace[f"encoder.layer.{args.layer}.attention.self.probs"][0, args.head]  # [S, S]
        path = plot_explanation(
            args.plot,
            tokens=report["tokens"],
            probs=probs,
            layer=args.layer,
            head=args.head,
            h0=report["h0"],
            pooler_dense=report["pooler_dense"],
            pooled=report["pooler_output"],
            title=repr(args.text),
        )
        print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    if args.html is not None:
        path = Explanation.of(model, report, trace, source=args.model).save(args.html)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", file=sys.stderr if args.json else sys.stdout)
    if not report["reproduced"]:
        print("minibert explain: tanh(W h0 + b) does not reproduce pooler_output; this is a bug", file=sys.stderr)
        return 1
    return 0


# ---- minibert run ----


def read_texts(args) -> list[str]:
    texts = [check_text(f"text {i + 1}", t) for i, t in enumerate(args.texts)]
    if args.input is not None:
        if args.input == "-":
            lines = sys.stdin.read().splitlines()
        else:
            try:
                lines = Path(args.input).read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                raise InputError(f"--input {args.input}: no such file") from None
            except UnicodeDecodeError as error:
                raise InputError(
                    f"--input {args.input}: not UTF-8 text ({error.reason} at byte {error.start})"
                ) from None
            except OSError as error:
                raise InputError(f"--input {args.input}: cannot be read ({error.strerror})") from None
        texts += [check_text(f"--input {args.input}, line {n}", line) for n, line in enumerate(lines, 1)]
    if not texts:
        raise InputError("no text given: pass texts as arguments, or --input FILE with one text per line")
    return texts


def cmd_run(args) -> int:
    """Plain inference: the chosen outputs for one or more texts, printed, or written to .npy/.npz."""
    which = [name.strip() for name in args.which.split(",")]
    for name in which:
        if name not in RUN_OUTPUTS:
            raise InputError(f"--which {name!r} is not an output; choose from {', '.join(RUN_OUTPUTS)}")
    output = None
    if args.output is not None:
        from .files import check_writable

        output = check_writable(args.output, (".npy", ".npz"))
        if output.suffix.lower() == ".npy" and len(which) != 1:
            raise InputError(f"{output}: a .npy file holds one array; pick one --which, or write a .npz")
    texts = read_texts(args)
    model, tokenizer = load(args)
    encoded = tokenizer(texts, max_length=args.max_length)
    out = model(**encoded, output_hidden_states="hidden_states" in which, output_attentions="attentions" in which)
    arrays = {}
    for name in which:
        value = getattr(out, name)
        if value is None:
            raise InputError(f"--which {name}: this checkpoint has no pooler weights, so no pooler_output")
        # hidden_states [L + 1, B, S, H] (embeddings first) and attentions [L, B, N, S, S], stacked.
        arrays[name] = np.stack(value) if isinstance(value, tuple) else value
    if output is None:
        print(
            aligned(
                [list(arrays), [str(a.shape) for a in arrays.values()], [str(a.dtype) for a in arrays.values()]],
                ["output", "shape", "dtype"],
            )
        )
        name = which[0]
        for i, text in enumerate(texts):  # token 0's values (in the last layer, head 0) for each text
            index = {"hidden_states": (-1, i, 0), "attentions": (-1, i, 0, 0), "pooler_output": (i,)}.get(name, (i, 0))
            values = " ".join(f"{x:.4f}" for x in arrays[name][index][: args.values])
            tokens = int(encoded["attention_mask"][i].sum())
            print(f"[{i}] {text[:40]!r} ({tokens} tokens): {name}[{', '.join(map(str, index))}] = [{values} ...]")
        return 0

    from .files import write_atomically

    if output.suffix.lower() == ".npy":
        write_atomically(output, lambda f: np.save(f, arrays[which[0]]))
    else:  # the inputs too: the attention mask says which positions are padding
        write_atomically(output, lambda f: np.savez(f, **arrays, **encoded))
    shapes = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
    print(f"wrote {output}: {shapes} {args.dtype}, {len(texts)} text(s)")
    return 0


# ---- minibert trace ----


def cmd_trace(args) -> int:
    """Every intermediate of the forward pass of one text, by name, with its shape; optionally written to .npz."""
    check_text("the text", args.text)
    output = None
    if args.output is not None:
        from .files import check_writable

        output = check_writable(args.output, (".npz",))
    model, tokenizer = load(args)
    encoded = tokenizer([args.text], None if args.pair is None else [args.pair])
    _, trace = model.trace(**encoded)
    names = [name for name in trace if args.match is None or args.match in name]
    if not names:
        raise InputError(
            f"--match {args.match!r} matches none of the {len(trace)} traced names, e.g. {next(iter(trace))}"
        )
    if output is not None:
        from .files import write_atomically

        write_atomically(output, lambda f: np.savez(f, **{name: trace[name] for name in names}, **encoded))
        print(f"wrote {output}: {len(names)} arrays ({args.dtype}) and the inputs")
        return 0
    # The first row along the last axis of each array: token 0 (for scores and probs: head 0, query 0).
    indices = {name: (0,) * (trace[name].ndim - 1) for name in names}
    columns = [names, [str(trace[n].shape) for n in names], [f"[{', '.join(map(str, indices[n]))}, :]" for n in names]]
    widths = [max(len(cell) for cell in column) for column in columns]
    for name, shape, where in zip(*columns, strict=True):
        values = " ".join(f"{x:8.4f}" for x in trace[name][indices[name]][: args.values])
        print(f"{name:<{widths[0]}}  {shape:<{widths[1]}}  {where:<{widths[2]}} = [{values} ...]")
    return 0


# ---- minibert embed ----


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
        client, cluster = embed_cluster.open_client(workers=workers, scheduler=scheduler, timeout=timeout)
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
        embed_cluster.close_client(client, cluster)


def cmd_embed(args) -> int:
    """Embed every line of a text or JSONL file, in this process or on a Dask cluster; rerun to resume."""
    output_paths(args.output, clustered=args.workers is not None or args.scheduler is not None)  # before a cluster
    try:
        with start_client(workers=args.workers, scheduler=args.scheduler) as client:
            report = embed_file(
                args.input,
                args.output,
                args.model,
                batch_size=args.batch_size,
                dtype=args.dtype,
                input_format=args.format,
                field=args.field,
                client=client,
                partition_size=args.partition_size,
                progress=not args.quiet,
            )
    except EmbedInterrupted as stop:
        print(
            f"minibert embed: interrupted; {stop.done} of {stop.total} partitions are kept in {stop.directory}; "
            f"to resume, run the same command again: {embed_command(args)}",
            file=sys.stderr,
        )
        return 130
    shape = f"{report.rows} rows x {report.dim} (float32, input order), {len(report.bad_lines)} bad line(s) as NaN rows"
    if report.already_complete:
        print(f"{report.output}: already complete, nothing embedded: {shape}")
    else:
        print(
            f"{report.output}: {shape}; {len(report.computed)} partition(s) embedded, {len(report.skipped)} already "
            f"done, {report.seconds:.1f} s"
        )
    return 0


def embed_command(args) -> str:
    """The `minibert embed` command line of `args`: the options that differ from their defaults, in order."""
    words = ["minibert", "embed", args.input, "--output", args.output, "--model", args.model]
    defaults = {"batch_size": 32, "dtype": "float32", "format": "auto", "field": "text", "partition_size": None}
    for name, default in defaults.items():
        if getattr(args, name) != default:
            words += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    for name in ("workers", "scheduler"):
        if getattr(args, name) is not None:
            words += [f"--{name}", str(getattr(args, name))]
    return shlex.join(words + (["--quiet"] if args.quiet else []))


def partition_size(text: str) -> int | None:
    """'auto' (None: 1/16 of the input, within 4K-1M) or a size like 512K."""
    return None if text == "auto" else byte_size(text)


# ---- the parser ----


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="minibert",
        description="BERT's forward pass in NumPy, on real checkpoints.",
        epilog="'minibert COMMAND --help' describes each command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    explain_ = commands.add_parser(
        "explain",
        help="show how the pooled output is made from token 0's hidden state",
        description="Run one text and show, with numbers, how pooler_output = tanh(W h0 + b) is made from\n"
        "token 0's last hidden state h0; check it by recomputing it by hand; optionally draw it.",
        epilog="example:\n  minibert explain 'Why is the pooled output different?' --model DIR --plot pooled.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain_.add_argument("text", help="the text to run")
    add_model_arguments(explain_)
    explain_.add_argument("--pair", metavar="TEXT", help="a second text, for a sentence pair")
    explain_.add_argument(
        "--values", type=positive_int, default=6, metavar="N", help="leading values of each vector to print"
    )
    explain_.add_argument("--json", action="store_true", help="print one JSON object (full vectors) for scripts")
    explain_.add_argument(
        "--plot", metavar="FILE.png", help="also draw attention and pooler pictures (needs matplotlib)"
    )
    explain_.add_argument(
        "--html",
        metavar="FILE.html",
        help="also write a self-contained page: attention, the pooler, every intermediate",
    )
    explain_.add_argument("--layer", type=int, help="the layer whose attention --plot shows (default: the last)")
    explain_.add_argument("--head", type=int, default=0, help="the head whose attention --plot shows (default: 0)")
    explain_.set_defaults(run=cmd_explain)

    run = commands.add_parser(
        "run",
        help="run the model on texts; print the outputs or write them to .npy/.npz",
        description="Plain inference on one or more texts (padded to the longest). Without --output, prints the\n"
        "shapes and the first values; with --output, writes the arrays atomically (a complete file or none).",
        epilog="examples:\n"
        "  minibert run 'first text' 'second text' --model DIR --which pooler_output --output out.npy\n"
        "  minibert run --input texts.txt --model DIR --which last_hidden_state,hidden_states --output out.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("texts", nargs="*", metavar="TEXT", help="texts to run (or use --input)")
    run.add_argument("--input", metavar="FILE", help="a UTF-8 file with one text per line; '-' reads stdin")
    add_model_arguments(run)
    run.add_argument(
        "--which",
        default="last_hidden_state",
        metavar="NAME[,NAME]",
        help=f"outputs to keep, from {', '.join(RUN_OUTPUTS)} (default: last_hidden_state); "
        "hidden_states and attentions are stacked over layers",
    )
    run.add_argument(
        "--output",
        metavar="FILE",
        help=".npy (one output) or .npz (several, plus input_ids, token_type_ids and attention_mask)",
    )
    run.add_argument("--max-length", type=positive_int, metavar="N", help="truncate each text to this many tokens")
    run.add_argument(
        "--values", type=positive_int, default=6, metavar="N", help="leading values to print without --output"
    )
    run.set_defaults(run=cmd_run)

    trace = commands.add_parser(
        "trace",
        help="every intermediate of the forward pass, by name, with its shape",
        description="Run one text and list every intermediate of the forward pass, named after the checkpoint's\n"
        "modules (embeddings.LayerNorm, encoder.layer.3.attention.self.probs, pooler.dense, ...), with its shape\n"
        "and first values; or write them all to an .npz file.",
        epilog="examples:\n"
        "  minibert trace 'Some text.' --model DIR --match encoder.layer.3.\n"
        "  minibert trace 'Some text.' --model DIR --output trace.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    trace.add_argument("text", help="the text to run")
    add_model_arguments(trace)
    trace.add_argument("--pair", metavar="TEXT", help="a second text, for a sentence pair")
    trace.add_argument("--match", metavar="SUBSTRING", help="only the names containing this, e.g. 'layer.3.'")
    trace.add_argument("--output", metavar="FILE.npz", help="write the arrays (and the inputs) to an .npz file")
    trace.add_argument("--values", type=positive_int, default=4, metavar="N", help="leading values to print")
    trace.set_defaults(run=cmd_trace)

    embed = commands.add_parser("embed", help="embed every line of a text or JSONL file (resumable; Dask optional)")
    embed.add_argument("input", help="a text file (one text a line) or JSONL (.jsonl/.ndjson, or --format jsonl)")
    embed.add_argument("--output", required=True, help="a directory of shards, or a .npy file (in-process only)")
    embed.add_argument(
        "--model",
        required=True,
        metavar="ID_OR_PATH",
        help="a sentence-transformers model (modules.json): a directory or a hub id 'org/name'",
    )
    embed.add_argument("--batch-size", type=positive_int, default=32)
    embed.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="compute dtype")
    embed.add_argument("--format", choices=["auto", "text", "jsonl"], default="auto", help="auto: by file suffix")
    embed.add_argument("--field", default="text", help="the JSONL field holding the text")
    embed.add_argument(
        "--partition-size",
        type=partition_size,
        default="auto",
        metavar="SIZE",
        help="bytes of input per partition (one shard, one task), e.g. 64K or 1M; auto: 1/16 of the input, within "
        "4K-1M, so that an interrupted run keeps most of its work",
    )
    where = embed.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=positive_int, help="start a local Dask cluster of N worker processes, 1 thread each"
    )
    where.add_argument("--scheduler", help="use a running Dask cluster, e.g. tcp://host:8786")
    embed.add_argument("--quiet", action="store_true", help="no progress bar")
    embed.set_defaults(run=cmd_embed)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except SystemExit as done:  # --help and --version print and exit 0
        return done.code if isinstance(done.code, int) else 0
    where = f"minibert {args.command}"
    try:
        return args.run(args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except MinibertError as error:
        print(f"{where}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`minibert run ... | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush does not complain
        return 0
    except OSError as error:  # reading a model or an input file, writing an output
        name = f"{error.filename}: " if error.filename else ""
        print(f"{where}: error: {name}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if os.environ.get("MINIBERT_DEBUG"):
            raise
        print(
            f"{where}: internal error: {type(error).__name__}: {error} (a bug in minibert; rerun with "
            "MINIBERT_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
