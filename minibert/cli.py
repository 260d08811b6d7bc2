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
from importlib import metadata
from pathlib import Path

import numpy as np

from .embed import EmbedInterrupted, embed_file, output_paths
from .embed import cluster as embed_cluster
from .errors import CheckpointError, InputError, MinibertError
from .explainer import Explanation, pooler_report, report_as_json
from .files import check_writable, write_atomically
from .model import BertModel
from .plot import plot_explanation, require_matplotlib
from .tokenizer import Tokenizer

RUN_OUTPUTS = ("last_hidden_state", "pooler_output", "hidden_states", "attentions")


class UsageError(Exception):
    """A command line argparse refused; main prints it as one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the whole usage, then exit; one line is clearer
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The one formatter of every command's --help: descriptions and examples as written, each option's default shown.

    Like argparse's ArgumentDefaultsHelpFormatter, but without its "(default: None)" and "(default: False)": an option
    with no default value (or a switch) says in its own help what happens without it.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


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
        "--dtype", choices=["float32", "float64"], default="float32", help="the precision of the forward pass"
    )


def add_max_length_argument(parser: argparse.ArgumentParser, pair: bool) -> None:
    parser.add_argument(
        "--max-length",
        type=positive_int,
        metavar="N",
        help=f"cut {'the text and its --pair' if pair else 'each text'} to N tokens, [CLS] and [SEP] included; "
        "a note on stderr says when a text is cut (default: the model's maximum, the smaller of "
        "tokenizer_config.json's model_max_length and config.json's max_position_embeddings: 512 for BERT)",
    )


def load(args):
    """The model and tokenizer of `--model`, in `--dtype`."""
    return BertModel.from_pretrained(args.model, dtype=np.dtype(args.dtype)), Tokenizer.from_pretrained(args.model)


def check_text(what: str, text: str) -> str:
    if not text.strip():
        raise InputError(f"{what} is empty; give some text (an unset shell variable in quotes gives this too)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # Python hands over bytes that are not UTF-8 as lone surrogates (PEP 383)
        code = ord(text[error.start])
        what_char = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"{text[error.start]!r}"
        raise InputError(
            f"{what} is not UTF-8 text ({what_char} at character {error.start}); convert it first, e.g. with "
            "iconv -f latin1 -t utf-8"
        ) from None
    return text


def encode(args, model, tokenizer, texts: list[str], pairs: list[str] | None = None, labels=None) -> dict:
    """The tokenizer's arrays for `texts` (and their `pairs`), cut to --max-length (by default the model's maximum).

    Every text that is cut is named in one note on stderr, with its length, so that a long text never loses its end
    silently. `labels` names the texts in that note ("text 1", "--input FILE, line 3", ...).
    """
    config, n = model.config, args.max_length
    specials = 2 if pairs is None else 3  # [CLS] A [SEP], or [CLS] A [SEP] B [SEP]
    if pairs is not None and config.type_vocab_size < 2:
        raise InputError(
            f"--pair: this model has one token type (type_vocab_size {config.type_vocab_size} in config.json), so "
            "it reads no sentence pairs; run the two texts on their own"
        )
    maximum = min(tokenizer.model_max_length, config.max_position_embeddings)
    if n is not None and n > config.max_position_embeddings:
        raise InputError(
            f"--max-length {n} is more than this model's {config.max_position_embeddings} positions "
            f"(max_position_embeddings in config.json); pass --max-length {config.max_position_embeddings} or less"
        )
    if n is not None and n < specials:
        layout = "[CLS] and [SEP]" if pairs is None else "[CLS], [SEP] and [SEP]"
        raise InputError(f"--max-length {n} leaves no room for {layout}; pass --max-length {specials + 1} or more")
    limit = maximum if n is None else n
    encoded = tokenizer(texts, pairs, max_length=limit)
    lengths = tokenizer(texts, pairs, truncation=False)["attention_mask"].sum(axis=1)  # [B]: before the cut
    cut = [i for i, length in enumerate(lengths) if length > limit]
    if cut:
        labels = labels or [f"text {i + 1}" for i in range(len(texts))]
        shown = ", ".join(f"{labels[i]}: {lengths[i]} tokens" for i in cut[:5])
        more = f", and {len(cut) - 5} more" if len(cut) > 5 else ""
        why = f"as --max-length {n} asks" if n is not None else "the model's maximum"
        print(
            f"minibert {args.command}: note: {len(cut)} of {len(texts)} {'texts' if len(texts) > 1 else 'text'} cut "
            f"to {limit} tokens, {why} ({shown}{more}); the tokens past {limit} are not run. --max-length N sets "
            f"the cut (at most {config.max_position_embeddings}).",
            file=sys.stderr,
        )
    return encoded


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
        check_writable(args.plot, (".png",))
        require_matplotlib()
    if args.html is not None:
        check_writable(args.html, (".html",))
    model, tokenizer = load(args)
    layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
    chosen = args.layer is not None or args.head is not None
    if args.layer is None:
        args.layer = layers - 1
    if args.head is None:
        args.head = 0
    if not 0 <= args.layer < layers:
        raise InputError(f"--layer {args.layer} is out of range: this model has {layers} layers, 0 to {layers - 1}")
    if not 0 <= args.head < heads:
        raise InputError(f"--head {args.head} is out of range: this model has {heads} heads, 0 to {heads - 1}")
    if chosen and args.plot is None:
        print(
            "minibert explain: note: --layer and --head choose the attention map that --plot draws; without --plot "
            "they change nothing",
            file=sys.stderr,
        )
    pairs = None if args.pair is None else [args.pair]
    encoded = encode(
        args, model, tokenizer, [args.text], pairs, labels=["the text" + (" and its --pair" * bool(pairs))]
    )
    report, trace = pooler_report(model, tokenizer, args.text, args.pair, encoded)
    if args.json:
        print(json.dumps(report_as_json(report)))
    else:
        print_explanation(report, args.values)
    if args.plot is not None:
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
            title=[repr(args.text)] + ([] if args.pair is None else [f"--pair {args.pair!r}"]),
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


def read_texts(args) -> tuple[list[str], list[str]]:
    """The texts of the arguments and of --input, and a label for each ("text 2", "--input FILE, line 3")."""
    labels = [f"text {i + 1}" for i in range(len(args.texts))]
    if args.input is not None:
        try:
            if args.input == "-":  # bytes, decoded here, so that stdin that is not UTF-8 gets the file's message
                data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
            else:
                data = Path(args.input).read_bytes()
            lines = data.decode("utf-8").splitlines()
        except FileNotFoundError:
            raise InputError(f"--input {args.input}: no such file") from None
        except UnicodeDecodeError as error:
            raise InputError(f"--input {args.input}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        except OSError as error:
            raise InputError(f"--input {args.input}: cannot be read ({error.strerror})") from None
        labels += [f"--input {args.input}, line {n}" for n in range(1, len(lines) + 1)]
    else:
        lines = []
    texts = [check_text(label, text) for label, text in zip(labels, [*args.texts, *lines], strict=True)]
    if not texts:
        raise InputError("no text given: pass texts as arguments, or --input FILE with one text per line")
    return texts, labels


def cmd_run(args) -> int:
    """Plain inference: the chosen outputs for one or more texts, printed, or written to .npy/.npz."""
    which = [name.strip() for name in args.which.split(",")]
    for name in which:
        if name not in RUN_OUTPUTS:
            raise InputError(f"--which {name!r} is not an output; choose from {', '.join(RUN_OUTPUTS)}")
    output = None
    if args.output is not None:
        output = check_writable(args.output, (".npy", ".npz"))
        if output.suffix.lower() == ".npy" and len(which) != 1:
            raise InputError(f"{output}: a .npy file holds one array; pick one --which, or write a .npz")
    texts, labels = read_texts(args)
    model, tokenizer = load(args)
    encoded = encode(args, model, tokenizer, texts, labels=labels)
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
    if args.pair is not None:
        check_text("--pair", args.pair)
    output = None
    if args.output is not None:
        output = check_writable(args.output, (".npz",))
    model, tokenizer = load(args)
    pairs = None if args.pair is None else [args.pair]
    encoded = encode(
        args, model, tokenizer, [args.text], pairs, labels=["the text" + (" and its --pair" * bool(pairs))]
    )
    _, trace = model.trace(**encoded)
    names = [name for name in trace if args.match is None or args.match in name]
    if not names:
        raise InputError(
            f"--match {args.match!r} matches none of the {len(trace)} traced names, e.g. {next(iter(trace))}"
        )
    if output is not None:
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


# What sentence.py and hub.py tell a Python caller who passed a plain BERT checkpoint, and a command-line user instead.
PLAIN_BERT_ADVICE = "for a plain BERT checkpoint use minibert.BertModel"
PLAIN_BERT_ADVICE_CLI = (
    "`minibert embed --model` needs one (e.g. sentence-transformers/all-MiniLM-L6-v2); for a plain BERT checkpoint "
    "use `minibert run --input FILE --model DIR --which pooler_output`"
)


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
    except CheckpointError as error:  # the library's advice to a Python caller, said for the command line
        raise CheckpointError(str(error).replace(PLAIN_BERT_ADVICE, PLAIN_BERT_ADVICE_CLI)) from None
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


def installed_version() -> str:
    """minibert's version, as its installed metadata (pyproject.toml's version) gives it."""
    try:
        return metadata.version("minibert")
    except metadata.PackageNotFoundError:  # run from a checkout that was never pip-installed
        return "(version unknown: not installed; pip install -e . in the checkout)"


def add_explain_command(commands) -> None:
    """`minibert explain`: the pooled output, step by step, as text, JSON, a picture or a page."""
    explain_ = commands.add_parser(
        "explain",
        help="show how the pooled output is made from token 0's hidden state",
        description="Run one text and show, with numbers, how pooler_output = tanh(W h0 + b) is made from\n"
        "token 0's last hidden state h0; check it by recomputing it by hand; optionally draw it.",
        epilog="examples:\n"
        "  minibert explain 'Why is the pooled output different?' --model DIR --plot pooled.png\n"
        "  minibert explain 'first part' --pair 'second part' --model DIR --json",
        formatter_class=HelpFormatter,
    )
    explain_.add_argument("text", help="the text to run")
    add_model_arguments(explain_)
    explain_.add_argument(
        "--pair", metavar="TEXT", help="a second text, for a sentence pair (default: one text, no pair)"
    )
    add_max_length_argument(explain_, pair=True)
    explain_.add_argument(
        "--values", type=positive_int, default=6, metavar="N", help="leading values of each vector to print"
    )
    explain_.add_argument("--json", action="store_true", help="print one JSON object (full vectors) for scripts")
    explain_.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw attention and pooler pictures (needs matplotlib); a missing folder is created "
        "(default: no picture)",
    )
    explain_.add_argument(
        "--html",
        metavar="FILE.html",
        help="also write a self-contained page: attention, the pooler, every intermediate (default: no page)",
    )
    explain_.add_argument(
        "--layer", type=int, help="the layer whose attention --plot draws, from 0 (default: the last)"
    )
    explain_.add_argument("--head", type=int, help="the head whose attention --plot draws, from 0 (default: 0)")
    explain_.set_defaults(run=cmd_explain)


def add_run_command(commands) -> None:
    """`minibert run`: plain inference on texts, printed or written to .npy/.npz."""
    run = commands.add_parser(
        "run",
        help="run the model on texts; print the outputs or write them to .npy/.npz",
        description="Plain inference on one or more texts (padded to the longest). Without --output, prints the\n"
        "shapes and the first values; with --output, writes the arrays atomically (a complete file or none).",
        epilog="examples:\n"
        "  minibert run 'first text' 'second text' --model DIR --which pooler_output --output out.npy\n"
        "  minibert run --input texts.txt --model DIR --which last_hidden_state,hidden_states --output out.npz",
        formatter_class=HelpFormatter,
    )
    run.add_argument("texts", nargs="*", metavar="TEXT", help="texts to run (or use --input)")
    run.add_argument(
        "--input",
        metavar="FILE",
        help="a UTF-8 file with one text per line, run after the TEXT arguments; '-' reads stdin "
        "(default: only the TEXT arguments)",
    )
    add_model_arguments(run)
    run.add_argument(
        "--which",
        default="last_hidden_state",
        metavar="NAME[,NAME]",
        help=f"outputs to keep, from {', '.join(RUN_OUTPUTS)}; hidden_states and attentions are stacked over layers",
    )
    run.add_argument(
        "--output",
        metavar="FILE",
        help=".npy (one output) or .npz (several, plus input_ids, token_type_ids and attention_mask); a missing "
        "folder is created (default: print shapes and first values)",
    )
    add_max_length_argument(run, pair=False)
    run.add_argument(
        "--values", type=positive_int, default=6, metavar="N", help="leading values to print without --output"
    )
    run.set_defaults(run=cmd_run)


def add_trace_command(commands) -> None:
    """`minibert trace`: every named intermediate of the forward pass."""
    trace = commands.add_parser(
        "trace",
        help="every intermediate of the forward pass, by name, with its shape",
        description="Run one text and list every intermediate of the forward pass, named after the checkpoint's\n"
        "modules (embeddings.LayerNorm, encoder.layer.3.attention.self.probs, pooler.dense, ...), with its shape\n"
        "and first values; or write them all to an .npz file.",
        epilog="examples:\n"
        "  minibert trace 'Some text.' --model DIR --match encoder.layer.3.\n"
        "  minibert trace 'Some text.' --model DIR --output trace.npz",
        formatter_class=HelpFormatter,
    )
    trace.add_argument("text", help="the text to run")
    add_model_arguments(trace)
    trace.add_argument("--pair", metavar="TEXT", help="a second text, for a sentence pair (default: one text, no pair)")
    add_max_length_argument(trace, pair=True)
    trace.add_argument(
        "--match", metavar="SUBSTRING", help="only the names containing this, e.g. 'layer.3.' (default: all names)"
    )
    trace.add_argument(
        "--output",
        metavar="FILE.npz",
        help="write the arrays (and the inputs) to an .npz file; a missing folder is created "
        "(default: print each array's shape and first values)",
    )
    trace.add_argument("--values", type=positive_int, default=4, metavar="N", help="leading values to print")
    trace.set_defaults(run=cmd_trace)


def add_embed_command(commands) -> None:
    """`minibert embed`: a corpus, one row per line, resumable, in-process or on Dask."""
    embed = commands.add_parser(
        "embed",
        help="embed every line of a text or JSONL file (resumable; Dask optional)",
        description="Embed every line of a text file (one text a line) or a JSONL file with a sentence-transformers\n"
        "model: one float32 row per input line, in input order. Bad lines (empty, not UTF-8, JSON without --field)\n"
        "become rows of NaN, listed on stderr and in the manifest. The input is cut into partitions, each written\n"
        "as one shard, atomically; after Ctrl-C or a lost machine, the same command resumes where it stopped.",
        epilog="examples:\n"
        "  minibert embed corpus.txt --output corpus.npy --model DIR\n"
        "  minibert embed docs.jsonl --output docs-emb/ --model DIR --field body --batch-size 64\n"
        "  minibert embed corpus.txt --output corpus-emb/ --model DIR --workers 4\n"
        "  minibert embed s3://bucket/corpus.txt --output s3://bucket/emb/ --model /shared/minilm "
        "--scheduler tcp://host:8786",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    embed.add_argument("input", help="a text file (one text a line) or JSONL (.jsonl/.ndjson, or --format jsonl)")
    embed.add_argument(
        "--output",
        required=True,
        help="a .npy file (in-process only), or a directory: a name without a suffix or ending in /, or a URL "
        "such as s3://bucket/emb/",
    )
    embed.add_argument(
        "--model",
        required=True,
        metavar="ID_OR_PATH",
        help="a sentence-transformers model (modules.json): a directory or a hub id 'org/name'",
    )
    embed.add_argument(
        "--batch-size",
        type=positive_int,
        default=32,
        metavar="N",
        help="texts per forward pass, of similar lengths (sorted within each partition) (default: 32)",
    )
    embed.add_argument(
        "--dtype", choices=["float32", "float64"], default="float32", help="compute dtype (default: float32)"
    )
    embed.add_argument(
        "--format", choices=["auto", "text", "jsonl"], default="auto", help="auto: by file suffix (default: auto)"
    )
    embed.add_argument("--field", default="text", help="the JSONL field holding the text (default: text)")
    embed.add_argument(
        "--partition-size",
        type=partition_size,
        default="auto",
        metavar="SIZE",
        help="bytes of input per partition (one shard, one task), e.g. 64K or 1M; auto: 1/16 of the input, within "
        "4K-1M, so that an interrupted run keeps most of its work (default: auto)",
    )
    where = embed.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=positive_int, help="start a local Dask cluster of N worker processes, 1 thread each"
    )
    where.add_argument("--scheduler", help="use a running Dask cluster, e.g. tcp://host:8786")
    embed.add_argument("--quiet", action="store_true", help="no progress bar")
    embed.set_defaults(run=cmd_embed)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="minibert",
        description="BERT's forward pass in NumPy, on real checkpoints.",
        epilog="examples:\n"
        "  minibert explain 'Why is the pooled output different?' --model DIR --plot pooled_output.png\n"
        "  minibert run 'first text' 'second text' --model DIR --output out.npy\n"
        "  minibert trace 'Some text.' --model DIR --match layer.3.attention.self\n"
        "  minibert embed corpus.txt --output corpus.npy --model DIR\n"
        "'minibert COMMAND --help' describes each command, its options and their defaults.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_explain_command(commands)
    add_run_command(commands)
    add_trace_command(commands)
    add_embed_command(commands)
    return parser


# The library's errors end with the fix for a Python caller; these are the ones a command line can reach, and the
# fix a command-line user has instead (tests/test_cli.py reaches each of them through the command line).
PYTHON_FIXES = {
    "(pass check_finite=False to load it anyway)": "(re-download or re-save it; minibert does not compute with it)",
    "Were these ids made by another model's tokenizer?": "The tokenizer files of --model give ids this model does not "
    "have: they belong to another model",
}


def for_the_command_line(message: str) -> str:
    """A library error's message with its Python advice replaced by what to do on the command line."""
    for python, command_line in PYTHON_FIXES.items():
        message = message.replace(python, command_line)
    return message


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
        print(f"{where}: error: {for_the_command_line(str(error))}", file=sys.stderr)
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
