"""`minibert explain`: the pooled output of one text, step by step, as text, JSON, a picture or a page."""

import json
import sys

import numpy as np

from ..errors import InputError
from ..explainer import Explanation, pooler_report, report_as_json
from ..explainer.plot import plot_explanation, require_matplotlib
from ..explainer.report import ACTIVATION_FORMULAS
from ..files import check_writable
from .common import (
    add_command,
    add_text_and_pair_arguments,
    aligned,
    check_text_and_pair,
    encode_text_and_pair,
    load,
    positive_int,
)


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
    formula = ACTIVATION_FORMULAS.get(report["hidden_act"], report["hidden_act"])
    print(f"activation: {report['hidden_act']} ({formula}), from {report['hidden_act_source']}")
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


def run(args) -> int:
    """Show where the pooled output comes from: token 0's last hidden state, the dense layer, the tanh."""
    check_text_and_pair(args)
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
    encoded = encode_text_and_pair(args, model, tokenizer)
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


def add_parser(commands) -> None:
    """`minibert explain`: the pooled output, step by step, as text, JSON, a picture or a page."""
    explain_ = add_command(
        commands,
        "explain",
        help="show how the pooled output is made from token 0's hidden state",
        description="Run one text and show, with numbers, how pooler_output = tanh(W h0 + b) is made from\n"
        "token 0's last hidden state h0; check it by recomputing it by hand; optionally draw it.",
        examples=[
            "minibert explain 'Why is the pooled output different?' --model DIR --plot pooled.png",
            "minibert explain 'first part' --pair 'second part' --model DIR --json",
        ],
        run=run,
    )
    add_text_and_pair_arguments(explain_)
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
