"""Bad command lines and broken models given to the `minibert` command: one line on stderr, exit status 2, never a
traceback (tests/test_cli.py tests the command's outputs in depth).

Broken checkpoints are made in tmp_path from the tiny checkpoints in weights/ (weights/make_reference.py made those),
with tests/support/bad_checkpoints.py.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.bad_checkpoints import TINY, copy_checkpoint
from support.helpers import ROOT, minilm_dir

from minibert.cli import main

# --- The command line: one line on stderr, exit status 2, never a traceback ------------------------------------------


def broken_model(tmp_path: Path, what: str) -> Path:
    directory = copy_checkpoint(tmp_path)
    shutil.copy(minilm_dir() / "tokenizer.json", directory)
    if what == "config":
        (directory / "config.json").write_text("{")
    elif what == "weights":
        (directory / "model.safetensors").write_bytes(b"\x00" * 7)
    elif what == "tokenizer":
        (directory / "tokenizer.json").unlink()
    elif what == "unreadable":
        (directory / "config.json").unlink()
        (directory / "config.json").mkdir()
    return directory


BAD_COMMAND_LINES = {
    "no command": ([], "minibert: error: the following arguments are required: COMMAND"),
    "unknown flag": (["explain", "hi", "--model", "x", "--bogus"], "unrecognized arguments: --bogus"),
    "missing --model": (["explain", "hi"], "minibert explain: error: the following arguments are required: --model"),
    "unsupported --dtype": (["explain", "hi", "--model", "x", "--dtype", "float16"], "invalid choice: 'float16'"),
    "--values 0": (["explain", "hi", "--model", "x", "--values", "0"], "expected a number of at least 1, found 0"),
    "--values x": (["explain", "hi", "--model", "x", "--values", "x"], "expected a whole number, found 'x'"),
    "no such model": (["explain", "hi", "--model", "{tmp}/absent"], "absent: no such directory"),
    "model is a file": (["explain", "hi", "--model", str(TINY / "config.json")], "is a file; pass the directory"),
    "invalid config.json": (["explain", "hi", "--model", "{config}"], "config.json: invalid JSON at line 1"),
    "corrupt weights": (
        ["explain", "hi", "--model", "{weights}"],
        "model.safetensors: not a readable safetensors file (7 bytes, shorter",
    ),
    "no tokenizer": (["explain", "hi", "--model", "{tokenizer}"], "no tokenizer.json or vocab.txt"),
    "unreadable config.json": (["explain", "hi", "--model", "{unreadable}"], "config.json: cannot be read"),
    "missing --input file": (["run", "--input", "{tmp}/absent.txt", "--model", "{minilm}"], "absent.txt: no such file"),
    "--input a directory": (["run", "--input", "{tmp}", "--model", "{minilm}"], "cannot be read (Is a directory)"),
    # A missing folder of an output is created, embed's rule for every command; a file on the way isn't
    "output under a file": (
        ["run", "hi", "--model", "{minilm}", "--output", "{minilm}/config.json/out.npy"],
        "{minilm}/config.json is a file, so it cannot hold a folder or file",
    ),
    "output a directory": (["run", "hi", "--model", "{minilm}", "--output", "{tmp}"], "is a directory; give a file"),
    "output of another format": (
        ["run", "hi", "--model", "{minilm}", "--output", "{tmp}/out.csv"],
        "the output must be a file ending in .npy or .npz, found 'out.csv'",
    ),
}


@pytest.mark.parametrize("argv, match", BAD_COMMAND_LINES.values(), ids=BAD_COMMAND_LINES.keys())
def test_bad_command_lines_print_one_line_and_exit_2(tmp_path, capsys, argv, match):
    places = {"tmp": tmp_path, "minilm": minilm_dir()}
    for what in ("config", "weights", "tokenizer", "unreadable"):
        if any("{" + what + "}" in arg for arg in argv):
            places[what] = broken_model(tmp_path, what)
    argv = [arg.format(**places) for arg in argv]
    try:
        status = main(argv)
    except SystemExit as exit:  # argparse's own exit, for usage errors
        status = exit.code
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1, captured.err
    assert captured.err.startswith("minibert")
    assert match.format(**places) in captured.err


def test_a_run_that_fails_leaves_the_old_output_file_whole_and_no_temporary(tmp_path, capsys):
    """The model is broken, found only after the output path was checked: nothing is written, nothing is left."""
    directory = broken_model(tmp_path, "weights")
    output = tmp_path / "out.npy"
    np.save(output, np.arange(3))
    assert main(["run", "hi", "--model", str(directory), "--output", str(output)]) == 2
    assert "model.safetensors: not a readable safetensors file" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(output), np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "out.npy"]


def test_command_line_error_through_python_dash_m_has_no_traceback(tmp_path):
    directory = broken_model(tmp_path, "weights")
    result = subprocess.run(
        [sys.executable, "-m", "minibert", "explain", "hi", "--model", str(directory)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "(7 bytes, shorter than the 8-byte header length)" in result.stderr
