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


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2) like every other error of the command."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(prog="minibert", description="BERT's forward pass in NumPy.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    explain = commands.add_parser("explain", help="show how the pooled output is made from token 0's hidden state")
    explain.add_argument("text", help="the text to run")
    explain.add_argument("--model", required=True, help="a model directory (config.json, model.safetensors, tokenizer)")
    explain.add_argument("--pair", help="a second text, for a sentence pair")
    explain.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    explain.add_argument(
        "--values", type=_positive_int, default=6, help="how many leading values of each vector to show"
    )
    explain.set_defaults(run=cmd_explain)
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
