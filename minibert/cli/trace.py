"""`minibert trace`: every named intermediate of the forward pass of one text."""

import numpy as np

from ..errors import InputError
from ..files import check_writable, write_atomically
from .common import (
    add_command,
    add_text_and_pair_arguments,
    check_text_and_pair,
    encode_text_and_pair,
    load,
    positive_int,
)


def run(args) -> int:
    """Every intermediate of the forward pass of one text, by name, with its shape; optionally written to .npz."""
    check_text_and_pair(args)
    output = None
    if args.output is not None:
        output = check_writable(args.output, (".npz",))
    model, tokenizer = load(args)
    encoded = encode_text_and_pair(args, model, tokenizer)
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


def add_parser(commands) -> None:
    """`minibert trace`: every named intermediate of the forward pass."""
    trace = add_command(
        commands,
        "trace",
        help="every intermediate of the forward pass, by name, with its shape",
        description="Run one text and list every intermediate of the forward pass, named after the checkpoint's\n"
        "modules (embeddings.LayerNorm, encoder.layer.3.attention.self.probs, pooler.dense, ...), with its shape\n"
        "and first values; or write them all to an .npz file.",
        examples=[
            "minibert trace 'Some text.' --model DIR --match encoder.layer.3.",
            "minibert trace 'Some text.' --model DIR --output trace.npz",
        ],
        run=run,
    )
    add_text_and_pair_arguments(trace)
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
