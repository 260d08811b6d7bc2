"""The `minibert` command: one module per subcommand (explain, run, trace, embed), each with `add_parser` and `run`.

Every error a user can cause (a bad flag, a missing model, an empty text, an output path that cannot be written)
ends as one line on stderr and exit status 2, never as a traceback; exit status 1 means a check inside a run failed
or minibert itself broke (set MINIBERT_DEBUG=1 to see the traceback then). A library error's advice to a Python
caller is replaced by its advice for the command line where it has one (MinibertError.for_command_line).
"""

import os
import sys

from .. import __version__
from ..errors import MinibertError
from . import embed, explain, run, trace
from .common import HelpFormatter, Parser, UsageError

COMMANDS = (explain, run, trace, embed)  # in the order `minibert --help` lists them


def build_parser() -> Parser:
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for command in COMMANDS:
        command.add_parser(commands)
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
        print(f"{where}: error: {error.for_command_line()}", file=sys.stderr)
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
