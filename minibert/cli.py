"""The `minibert` command. Each subcommand is a function `cmd_<name>(args)`, registered in `build_parser`.

Every error a user can cause ends as one line on stderr and exit status 2 (1 for failures inside a run), never as
a traceback.
"""

import argparse
import sys

import numpy as np

from .errors import MinibertError


def cmd_explain(args) -> None:
    """Show where the pooled output comes from: token 0's last hidden state, the dense layer, the tanh."""
    from .model import BertModel
    from .tokenizer import Tokenizer

    model = BertModel.from_pretrained(args.model, dtype=np.dtype(args.dtype))
    tokenizer = Tokenizer.from_pretrained(args.model)
    encoded = tokenizer([args.text], None if args.pair is None else [args.pair])
    out = model(**encoded)
    if out.pooler_output is None:
        raise MinibertError(f"{args.model}: this checkpoint has no pooler weights, so it has no pooled output")
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    h0 = out.last_hidden_state[0, 0]  # [H]
    dense = model.params["pooler"]["dense"]
    pre_tanh = dense["weight"] @ h0 + dense["bias"]  # [H]
    pooled = np.tanh(pre_tanh)
    n = args.values

    def show(name, v):
        values = np.array2string(v[:n], precision=4, floatmode="fixed", separator=" ")
        print(f"{name:<34} {values}  norm {np.linalg.norm(v):.4f}")

    print("tokens:", " ".join(tokens))
    print("ids:   ", " ".join(str(i) for i in encoded["input_ids"][0]))
    show("h0 = last_hidden_state[0, 0]", h0)
    show("W h0 + b (pooler.dense)", pre_tanh)
    show("tanh(W h0 + b)", pooled)
    show("pooler_output", out.pooler_output[0])
    cosine = float(h0 @ pooled / (np.linalg.norm(h0) * np.linalg.norm(pooled)))
    print(f"cosine(h0, pooler_output) = {cosine:.4f}")
    print(f"max |tanh(W h0 + b) - pooler_output| = {np.abs(pooled - out.pooler_output[0]).max():.3g}")


def _byte_size(text: str) -> int:
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


def cmd_embed(args) -> None:
    """Embed every line of a text or JSONL file, in this process or on a Dask cluster; rerun to resume."""
    from pathlib import Path

    from .embed import _layout, embed_file, start_client

    _layout(Path(args.output), clustered=args.workers is not None or args.scheduler is not None)  # before a cluster
    with start_client(workers=args.workers, scheduler=args.scheduler) as client:
        report = embed_file(
            args.input, args.output, args.model, batch_size=args.batch_size, dtype=args.dtype,
            input_format=args.format, field=args.field, client=client, partition_size=args.partition_size,
            progress=not args.quiet,
        )  # fmt: skip
    print(
        f"{report.output}: {report.rows} rows x {report.dim} (float32, input order), {len(report.bad_lines)} bad "
        f"line(s) as NaN rows; {len(report.computed)} partition(s) embedded, {len(report.skipped)} already done, "
        f"{report.seconds:.1f} s"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minibert", description="BERT's forward pass in NumPy.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    explain = commands.add_parser("explain", help="show how the pooled output is made from token 0's hidden state")
    explain.add_argument("text", help="the text to run")
    explain.add_argument("--model", required=True, help="a model directory (config.json, model.safetensors, tokenizer)")
    explain.add_argument("--pair", help="a second text, for a sentence pair")
    explain.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    explain.add_argument("--values", type=int, default=6, help="how many leading values of each vector to print")
    explain.set_defaults(run=cmd_explain)

    embed = commands.add_parser("embed", help="embed every line of a text or JSONL file (resumable; Dask optional)")
    embed.add_argument("input", help="a text file (one text a line) or JSONL (.jsonl/.ndjson, or --format jsonl)")
    embed.add_argument("--output", required=True, help="a directory of shards, or a .npy file (in-process only)")
    embed.add_argument("--model", required=True, help="a sentence-transformers model directory (modules.json)")
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="compute dtype")
    embed.add_argument("--format", choices=["auto", "text", "jsonl"], default="auto", help="auto: by file suffix")
    embed.add_argument("--field", default="text", help="the JSONL field holding the text")
    embed.add_argument("--partition-size", type=_byte_size, default="1M", help="bytes of input per shard/task")
    where = embed.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="start a local Dask cluster of N worker processes, 1 thread each")
    where.add_argument("--scheduler", help="use a running Dask cluster, e.g. tcp://host:8786")
    embed.add_argument("--quiet", action="store_true", help="no progress bar")
    embed.set_defaults(run=cmd_embed)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except MinibertError as error:
        print(f"minibert {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
