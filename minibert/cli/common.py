"""What the subcommands share: the parser's classes, argument types, the --model and --max-length options, loading,
and encoding texts with the note that says what was cut."""

import argparse
import difflib
import sys

import numpy as np

from ..config import HIDDEN_ACTS
from ..errors import InputError
from ..pretrained import BertModel
from ..tokenizer import Tokenizer


class UsageError(Exception):
    """A command line argparse refused; main prints it as one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the whole usage, then exit; one line is clearer
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but arguments no parser took are refused by the subcommand's parser, so the message names
        the subcommand (`minibert run: error: ...`), with a hint for each unknown flag (unknown_flag_hint)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = getattr(parsed, "parser", self)
            hints = [hint for word in extras if (hint := unknown_flag_hint(word, parser, self))]
            parser.error(f"unrecognized arguments: {' '.join(extras)}" + "".join(f"; {hint}" for hint in hints))
        return parsed


def unknown_flag_hint(word: str, parser: argparse.ArgumentParser, top: argparse.ArgumentParser) -> str | None:
    """For an unknown flag: the command's own flag it nearly spells, or the other commands that take it."""
    if not word.startswith("-"):
        return None
    flag = word.partition("=")[0]
    own = [option for action in parser._actions for option in action.option_strings]
    close = difflib.get_close_matches(flag, own, n=1, cutoff=0.75)
    if close:
        return f"did you mean {close[0]}?"
    commands = next((action.choices for action in top._actions if isinstance(action, argparse._SubParsersAction)), {})
    takers = [
        f"minibert {name}"
        for name, other in commands.items()
        if other is not parser and any(flag in action.option_strings for action in other._actions)
    ]
    if takers:
        return f"{flag} is an option of {' and '.join(takers)}"
    return None


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
    parser.add_argument(
        "--hidden-act",
        choices=sorted(HIDDEN_ACTS),
        metavar="NAME",
        help="the activation to run instead of the config's, e.g. gelu_new: Google's TF code computes GELU's tanh "
        "form (transformers' gelu_new) where config.json says gelu; one of "
        f"{', '.join(sorted(HIDDEN_ACTS))} (default: config.json's hidden_act, or a TF module graph's activation)",
    )


# The one lower bound of --max-length: room for the special tokens and one token of each text. Checked in one
# place, min_max_length's caller, so that 0, 1 and 2 all get the same message (argparse's own "at least 1" and a
# pair's bound no longer disagree, and 2 no longer runs [CLS] [SEP] alone).
def min_max_length(pair: bool) -> int:
    """[CLS] a [SEP]: 3 tokens; [CLS] a [SEP] b [SEP]: 5."""
    return 5 if pair else 3


def add_max_length_argument(parser: argparse.ArgumentParser, pair: bool) -> None:
    bound = f"at least {min_max_length(False)}" + (f", {min_max_length(True)} with --pair" if pair else "")
    parser.add_argument(
        "--max-length",
        type=whole_number,
        metavar="N",
        help=f"cut {'the text and its --pair' if pair else 'each text'} to N tokens, [CLS] and [SEP] included "
        f"({bound}); a note on stderr says when a text is cut (default: the model's maximum, the smaller of "
        "tokenizer_config.json's model_max_length and config.json's max_position_embeddings: 512 for BERT)",
    )


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None


def load(args):
    """The model and tokenizer of `--model`, in `--dtype`, with `--hidden-act` if given."""
    model = BertModel.from_pretrained(args.model, dtype=np.dtype(args.dtype), hidden_act=args.hidden_act)
    return model, Tokenizer.from_pretrained(args.model)


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
    if n is not None and n < min_max_length(pairs is not None):
        room = "a token of the text beside [CLS] and [SEP]"
        if pairs is not None:
            room = "a token of the text and one of its --pair beside [CLS], [SEP] and [SEP]"
        raise InputError(
            f"--max-length {n} leaves no room for {room}; pass --max-length {min_max_length(pairs is not None)} or more"
        )
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


def check_text_and_pair(args) -> None:
    """Refuse an empty or non-UTF-8 text or --pair before anything is loaded (explain and trace)."""
    check_text("the text", args.text)
    if args.pair is not None:
        check_text("--pair", args.pair)


def encode_text_and_pair(args, model, tokenizer) -> dict:
    """The tokenizer's arrays for the one text and its --pair of explain and trace, cut to --max-length."""
    pairs = None if args.pair is None else [args.pair]
    label = "the text" + (" and its --pair" if pairs else "")
    return encode(args, model, tokenizer, [args.text], pairs, labels=[label])


def add_command(commands, name: str, *, help: str, description: str, examples: list[str], run) -> Parser:
    """One subcommand's parser, with its one-line help, description and examples, every option's default shown.
    `args.run` is the function that runs it and `args.parser` this parser (to read its defaults back)."""
    parser = commands.add_parser(
        name,
        help=help,
        description=description,
        epilog="examples:\n" + "\n".join(f"  {example}" for example in examples),
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(run=run, parser=parser)
    return parser


def add_text_and_pair_arguments(parser: argparse.ArgumentParser) -> None:
    """The one text of explain and trace, --model and --dtype, its --pair, and --max-length."""
    parser.add_argument("text", help="the text to run")
    add_model_arguments(parser)
    parser.add_argument(
        "--pair", metavar="TEXT", help="a second text, for a sentence pair (default: one text, no pair)"
    )
    add_max_length_argument(parser, pair=True)
