"""`minibert run`: plain inference on texts, printed or written to .npy/.npz."""

import sys
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import check_writable, write_atomically
from .common import (
    add_command,
    add_max_length_argument,
    add_model_arguments,
    aligned,
    check_text,
    encode,
    load,
    positive_int,
)

RUN_OUTPUTS = ("last_hidden_state", "pooler_output", "hidden_states", "attentions")


def read_texts(args) -> tuple[list[str], list[str]]:
    """The texts of the arguments and of --input, and a label for each ("text 2", "--input FILE, line 3").

    Blank lines of --input are skipped and said on stderr, as `minibert embed` skips them: in a file they are
    spacing, not texts. An empty TEXT argument is refused: on a command line it is nearly always an unset variable.
    """
    labels = [f"text {i + 1}" for i in range(len(args.texts))]
    texts = [check_text(label, text) for label, text in zip(labels, args.texts, strict=True)]
    if args.input is not None:
        lines = read_input_lines(args.input)
        blank = [n for n, line in enumerate(lines, start=1) if not line.strip()]
        for n, line in enumerate(lines, start=1):
            if line.strip():
                texts.append(check_text(f"--input {args.input}, line {n}", line))
                labels.append(f"--input {args.input}, line {n}")
        if not any(line.strip() for line in lines):
            what = "it is empty" if not lines else f"its {len(lines)} line(s) are blank"
            raise InputError(f"--input {args.input}: no text to run: {what}; give a file with one text per line")
        if blank:
            shown = ", ".join(map(str, blank[:10])) + (", ..." if len(blank) > 10 else "")
            print(
                f"minibert run: note: --input {args.input}: {len(blank)} blank line(s) skipped (line {shown}); "
                "each output row is the next non-blank line",
                file=sys.stderr,
            )
    if not texts:
        raise InputError("no text given: pass texts as arguments, or --input FILE with one text per line")
    return texts, labels


def read_input_lines(name: str) -> list[str]:
    """The lines of --input (a file, or '-' for stdin), decoded as UTF-8."""
    try:
        if name == "-":  # bytes, decoded here, so that stdin that is not UTF-8 gets the file's message
            data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        else:
            data = Path(name).read_bytes()
        return data.decode("utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"--input {name}: no such file") from None
    except UnicodeDecodeError as error:
        raise InputError(f"--input {name}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise InputError(f"--input {name}: cannot be read ({error.strerror})") from None


def run(args) -> int:
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


def add_parser(commands) -> None:
    """`minibert run`: plain inference on texts, printed or written to .npy/.npz."""
    parser = add_command(
        commands,
        "run",
        help="run the model on texts; print the outputs or write them to .npy/.npz",
        description="Plain inference on one or more texts (padded to the longest). Without --output, prints the\n"
        "shapes and the first values; with --output, writes the arrays atomically (a complete file or none).",
        examples=[
            "minibert run 'first text' 'second text' --model DIR --which pooler_output --output out.npy",
            "minibert run --input texts.txt --model DIR --which last_hidden_state,hidden_states --output out.npz",
        ],
        run=run,
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to run (or use --input)")
    parser.add_argument(
        "--input",
        metavar="FILE",
        help="a UTF-8 file with one text per line, run after the TEXT arguments; '-' reads stdin "
        "(default: only the TEXT arguments)",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--which",
        default="last_hidden_state",
        metavar="NAME[,NAME]",
        help=f"outputs to keep, from {', '.join(RUN_OUTPUTS)}; hidden_states and attentions are stacked over layers",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help=".npy (one output) or .npz (several, plus input_ids, token_type_ids and attention_mask); a missing "
        "folder is created (default: print shapes and first values)",
    )
    add_max_length_argument(parser, pair=False)
    parser.add_argument(
        "--values", type=positive_int, default=6, metavar="N", help="leading values to print without --output"
    )
