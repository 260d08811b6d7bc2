"""`minibert embed`: a corpus, one row per line, resumable, in this process or on a Dask cluster."""

import shlex
import sys

from ..embed import EmbedInterrupted, embed_file, output_paths
from ..embed.cluster import start_client
from ..embed.partitions import BLANK
from ..errors import InputError
from ..sentence import BATCH_SIZE
from .common import add_command, byte_size, positive_int


def run(args) -> int:
    """Embed every line of a text or JSONL file, in this process or on a Dask cluster; rerun to resume."""
    if args.output.lower().startswith("memory://"):
        raise InputError(
            f"--output {args.output}: an in-memory store ends with this process, so the embeddings would be lost "
            "(it is for tests, from Python); pass a .npy file, a directory or a URL that outlives the run"
        )
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
        # Counted now that the cluster is closed: tasks running at Ctrl-C may have written their shards meanwhile.
        print(
            f"minibert embed: interrupted; {stop.recount()} of {stop.total} partitions are kept in {stop.directory}; "
            f"to resume, run the same command again: {embed_command(args)}",
            file=sys.stderr,
        )
        return 130
    blank = sum(reason == BLANK for _, reason in report.bad_lines)
    bad = len(report.bad_lines) - blank
    most = " (most of the input)" if 2 * bad > report.rows else ""
    shape = (
        f"{report.rows} rows x {report.dim} (float32, input order), {bad} bad line(s){most} and {blank} blank "
        "line(s) as NaN rows"
    )
    if report.cut_lines:
        shape += f", {len(report.cut_lines)} text(s) cut to the model's length"
    if report.already_complete:
        print(f"{report.output}: already complete, nothing embedded: {shape}")
    else:
        print(
            f"{report.output}: {shape}; {len(report.computed)} partition(s) embedded, {len(report.skipped)} already "
            f"done, {report.seconds:.1f} s"
        )
    return 0


def embed_command(args) -> str:
    """The `minibert embed` command line of `args`: the required options, then those that differ from the parser's
    defaults, in the parser's order."""
    words = ["minibert", "embed", args.input]
    for action in args.parser._actions:
        value = getattr(args, action.dest, None)
        default = action.default
        if isinstance(default, str) and action.type is not None:  # argparse parses a string default as the flag
            default = action.type(default)
        if not action.option_strings or action.dest == "help" or (value == default and not action.required):
            continue
        flag = action.option_strings[-1]
        words += [flag] if action.nargs == 0 else [flag, str(value)]  # a switch, or a flag and its value
    return shlex.join(words)


def partition_size(text: str) -> int | None:
    """'auto' (None: 1/16 of the input, within 4K-1M) or a size like 512K."""
    return None if text == "auto" else byte_size(text)


def add_parser(commands) -> None:
    """`minibert embed`: a corpus, one row per line, resumable, in-process or on Dask."""
    embed = add_command(
        commands,
        "embed",
        help="embed every line of a text or JSONL file (resumable; Dask optional)",
        description="Embed every line of a text file (one text a line) or a JSONL file with a sentence-transformers\n"
        "model: one float32 row per input line, in input order. Blank lines are skipped and bad lines (not\n"
        "UTF-8, JSON without --field) refused, each keeping a row of NaN, listed on stderr and in the manifest;\n"
        "an input with no text at all is refused before anything is written. Texts longer than the model's\n"
        "max_seq_length are cut, counted on stderr and listed in the manifest. The input is cut into partitions,\n"
        "each written as one shard, atomically; after Ctrl-C or a lost machine, the same command resumes where it\n"
        "stopped.",
        examples=[
            "minibert embed corpus.txt --output corpus.npy --model DIR",
            "minibert embed docs.jsonl --output docs-emb/ --model DIR --field body --batch-size 64",
            "minibert embed corpus.txt --output corpus-emb/ --model DIR --workers 4",
            "minibert embed s3://bucket/corpus.txt --output s3://bucket/emb/ --model /shared/minilm --scheduler tcp://host:8786",
        ],
        run=run,
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
        default=BATCH_SIZE,
        metavar="N",
        help="texts per forward pass, of similar lengths (sorted within each partition)",
    )
    embed.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="compute dtype")
    embed.add_argument("--format", choices=["auto", "text", "jsonl"], default="auto", help="auto: by file suffix")
    embed.add_argument("--field", default="text", help="the JSONL field holding the text")
    embed.add_argument(
        "--partition-size",
        type=partition_size,
        default="auto",
        metavar="SIZE",
        help="bytes of input per partition (one shard, one task), e.g. 64K or 1M; auto: 1/16 of the input, within "
        "4K-1M, so that an interrupted run keeps most of its work (in this process, Ctrl-C loses at most the few "
        "seconds of partitions being embedded together)",
    )
    where = embed.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=positive_int,
        help="start a local Dask cluster of N worker processes, each running minibert on 1 thread (N = the cores "
        "to use)",
    )
    where.add_argument("--scheduler", help="use a running Dask cluster, e.g. tcp://host:8786")
    embed.add_argument("--quiet", action="store_true", help="no progress bar")
