"""The `minibert` command, run in-process through minibert.cli.main: what it prints, what it writes, how it refuses."""

import json
import re
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from support.helpers import ROOT, WEIGHTS

import minibert
from minibert.cli import main
from minibert.explainer.plot import DPI, FIGSIZE
from minibert.files import write_atomically

TEXT = "Why is the pooled output different?"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def png_size(path) -> tuple[int, int]:
    """Width and height from a PNG's header, after checking its signature and that IHDR comes first."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG: starts {header[:8]!r}"
    length, chunk, width, height = struct.unpack(">I4sII", header[8:24])
    assert chunk == b"IHDR" and length == 13
    return width, height


# ---- explain ----


def test_explain_prints_tokens_ids_the_pooler_steps_and_a_passing_check(capsys, minilm):
    directory, model, tokenizer = minilm
    code, out, err = run(capsys, "explain", TEXT, "--model", directory)
    assert code == 0 and err == ""
    encoded = tokenizer([TEXT])
    expected = model(**encoded)
    h0, pooled = expected.last_hidden_state[0, 0], expected.pooler_output[0]
    lines = out.splitlines()
    assert lines[0].split() == ["tokens", *tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])]
    assert lines[1].split() == ["ids", *map(str, encoded["input_ids"][0])]
    (h0_line,) = [line for line in lines if line.startswith("h0 = last_hidden_state[0, 0]")]
    assert h0_line.endswith(f"norm {np.linalg.norm(h0):.4f}")
    assert f"{h0[0]:7.4f}" in h0_line
    (pooled_line,) = [line for line in lines if line.startswith("pooler_output  ")]
    assert pooled_line.endswith(f"norm {np.linalg.norm(pooled):.4f}")
    cos = float(h0 @ pooled / np.linalg.norm(h0) / np.linalg.norm(pooled))
    assert f"cosine(h0, pooler_output)  = {cos:7.4f}" in out
    assert re.search(r"check: max \|tanh\(W h0 \+ b\) by hand - pooler_output\| = \S+ \(reproduced to float32", out)


def test_explain_fails_with_status_1_when_the_pooler_does_not_reproduce(capsys, minilm, monkeypatch):
    """The check can fail: a pooler that is off by 1e-4 is caught, reported and ends with exit status 1."""
    directory, _, _ = minilm
    original = minibert.model.bert_pooler
    monkeypatch.setattr(minibert.model, "bert_pooler", lambda *a, **k: original(*a, **k) + np.float32(1e-4))
    code, out, err = run(capsys, "explain", TEXT, "--model", directory)
    assert code == 1
    assert "= 0.0001 (NOT reproduced to float32 precision" in out
    assert err == "minibert explain: tanh(W h0 + b) does not reproduce pooler_output; this is a bug\n"


def test_explain_json_holds_the_full_vectors_for_scripts(capsys, minilm):
    directory, model, tokenizer = minilm
    code, out, _ = run(capsys, "explain", TEXT, "--model", directory, "--json", "--dtype", "float64")
    assert code == 0
    report = json.loads(out)
    expected = minibert.BertModel.from_pretrained(directory, dtype=np.float64)(**tokenizer([TEXT]))
    np.testing.assert_array_equal(report["h0"], expected.last_hidden_state[0, 0])
    np.testing.assert_array_equal(report["pooler_output"], expected.pooler_output[0])
    np.testing.assert_array_equal(report["pooler_activation"], np.tanh(report["pooler_dense"]))
    assert report["reproduced"] is True and report["max_abs_diff_by_hand"] <= 4 * np.finfo(np.float64).eps
    assert report["dtype"] == "float64" and report["tokens"][0] == "[CLS]"
    assert report["cosine_h0_pooler_output"] < 0.5  # the pooled vector points elsewhere than h0


def test_explain_pair_shows_both_segments_and_their_token_types(capsys, minilm):
    directory, _, _ = minilm
    code, out, _ = run(capsys, "explain", "first part", "--pair", "second part", "--model", directory)
    assert code == 0
    assert out.splitlines()[0].split() == ["tokens", "[CLS]", "first", "part", "[SEP]", "second", "part", "[SEP]"]
    assert out.splitlines()[2].split() == ["types", "0", "0", "0", "0", "1", "1", "1"]


def test_explain_plot_writes_a_png_of_the_figure_size(capsys, minilm, tmp_path):
    directory, _, _ = minilm
    path = tmp_path / "pooled.png"
    code, out, _ = run(capsys, "explain", TEXT, "--model", directory, "--plot", path, "--layer", "2", "--head", "5")
    assert code == 0 and f"wrote {path}" in out
    assert png_size(path) == (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))
    assert path.stat().st_size > 20_000  # four panels of real content, not an empty canvas
    assert [p.name for p in tmp_path.iterdir()] == ["pooled.png"]  # no temporary file left beside it


def test_explain_plot_without_matplotlib_says_which_extra_to_install(capsys, minilm, tmp_path, monkeypatch):
    directory, _, _ = minilm
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib...` raise ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, out, err = run(capsys, "explain", TEXT, "--model", directory, "--plot", tmp_path / "p.png")
    assert code == 2 and out == ""
    assert err == "minibert explain: error: plotting needs matplotlib: pip install 'minibert-numpy[plot]'\n"
    assert list(tmp_path.iterdir()) == []


# ---- trace ----


def test_trace_lists_every_intermediate_with_its_shape_and_first_values(capsys, minilm):
    directory, model, tokenizer = minilm
    code, out, _ = run(capsys, "trace", TEXT, "--model", directory, "--values", "3")
    assert code == 0
    _, expected = model.trace(**tokenizer([TEXT]))
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == list(expected)  # all 79, in forward order
    (probs,) = [line for line in lines if line.startswith("encoder.layer.3.attention.self.probs ")]
    values = " ".join(f"{x:8.4f}" for x in expected["encoder.layer.3.attention.self.probs"][0, 0, 0, :3])
    assert probs.split(None, 1)[1] == f"(1, 12, 10, 10)  [0, 0, 0, :] = [{values} ...]"


def test_trace_match_filters_and_output_writes_the_arrays(capsys, minilm, tmp_path):
    directory, model, tokenizer = minilm
    path = tmp_path / "trace.npz"
    code, out, _ = run(capsys, "trace", TEXT, "--model", directory, "--match", "pooler.", "--output", path)
    assert code == 0 and out == f"wrote {path}: 3 arrays (float32) and the inputs\n"
    encoded = tokenizer([TEXT])
    _, expected = model.trace(**encoded)
    with np.load(path) as f:
        assert sorted(f.files) == sorted(["pooler.first_token", "pooler.dense", "pooler.activation", *encoded])
        np.testing.assert_array_equal(f["pooler.dense"], expected["pooler.dense"])


# ---- run ----


def test_run_writes_the_chosen_output_as_npy(capsys, minilm, tmp_path):
    directory, model, tokenizer = minilm
    texts = ["first text", "a second, longer text"]
    path = tmp_path / "pooled.npy"
    code, out, _ = run(capsys, "run", *texts, "--model", directory, "--which", "pooler_output", "--output", path)
    assert code == 0 and out.startswith(f"wrote {path}: pooler_output (2, 384) float32")
    np.testing.assert_array_equal(np.load(path), model(**tokenizer(texts)).pooler_output)


def test_run_writes_several_outputs_and_the_inputs_as_npz(capsys, minilm, tmp_path):
    directory, _, tokenizer = minilm
    lines = tmp_path / "texts.txt"
    lines.write_text("one\ntwo more words\n", encoding="utf-8")
    path = tmp_path / "out.npz"
    argv = [
        "run",
        "--input",
        lines,
        "--model",
        directory,
        "--dtype",
        "float64",
        "--which",
        "last_hidden_state,hidden_states,attentions",
        "--output",
        path,
    ]
    assert run(capsys, *argv)[0] == 0
    encoded = tokenizer(["one", "two more words"])
    model = minibert.BertModel.from_pretrained(directory, dtype=np.float64)
    expected = model(**encoded, output_hidden_states=True, output_attentions=True)
    with np.load(path) as f:
        assert sorted(f.files) == sorted(["last_hidden_state", "hidden_states", "attentions", *encoded])
        np.testing.assert_array_equal(f["last_hidden_state"], expected.last_hidden_state)
        np.testing.assert_array_equal(f["hidden_states"], np.stack(expected.hidden_states))  # [L + 1, B, S, H]
        np.testing.assert_array_equal(f["attentions"], np.stack(expected.attentions))  # [L, B, N, S, S]
        np.testing.assert_array_equal(f["attention_mask"], encoded["attention_mask"])
        assert f["hidden_states"].dtype == np.float64


def test_run_without_output_prints_shapes_and_token_0_of_each_text(capsys, minilm, monkeypatch):
    directory, model, tokenizer = minilm
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("from stdin\n"))
    code, out, _ = run(capsys, "run", "an argument", "--input", "-", "--model", directory, "--values", "3")
    assert code == 0
    encoded = tokenizer(["an argument", "from stdin"])
    expected = model(**encoded).last_hidden_state
    lines = out.splitlines()
    assert lines[:3] == ["output last_hidden_state", f"shape  {expected.shape}", "dtype  float32"]
    n0, n1 = encoded["attention_mask"].sum(axis=1)
    assert lines[3].startswith(f"[0] 'an argument' ({n0} tokens): last_hidden_state[0, 0] = [")
    assert lines[4].startswith(f"[1] 'from stdin' ({n1} tokens): last_hidden_state[1, 0] = [")
    assert " ".join(f"{x:.4f}" for x in expected[1, 0, :3]) in lines[4]


def test_run_input_skips_blank_lines_and_says_so_as_embed_does(capsys, minilm, tmp_path):
    """A trailing blank line was refused with a hint about unset shell variables, which `embed` accepted; both
    commands now skip blank lines of a file and say how many."""
    directory, model, tokenizer = minilm
    texts = tmp_path / "texts.txt"
    texts.write_text("first\n\n  \nsecond\n\n", encoding="utf-8")
    code, _, err = run(capsys, "run", "--input", texts, "--model", directory, "--output", tmp_path / "o.npy")
    assert code == 0
    assert err == (
        f"minibert run: note: --input {texts}: 3 blank line(s) skipped (line 2, 3, 5); each output row is the next "
        "non-blank line\n"
    )
    expected = model(**tokenizer(["first", "second"])).last_hidden_state
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), expected)


def test_write_atomically_leaves_the_old_file_and_no_temporary_when_writing_fails(tmp_path):
    path = tmp_path / "out.npy"
    path.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"half of a new file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.npy"]


# ---- every refusal: one line on stderr, exit status 2, no traceback ----


@pytest.fixture(scope="module")
def no_pooler_model(tmp_path_factory):
    """tiny-relu-no-pooler with a made-up 64-word vocabulary, so that the CLI can tokenize for it."""
    directory = tmp_path_factory.mktemp("no-pooler")
    for name in ("config.json", "model.safetensors"):
        shutil.copy(WEIGHTS / "tiny-relu-no-pooler" / name, directory / name)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(59))]
    (directory / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    return directory


BAD = [  # (argv with {model}, {tmp} and {nopooler} filled in, words the message must contain)
    ([], "required: COMMAND"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["explain"], "required: text, --model"),
    (["explain", "x"], "required: --model"),
    (["explain", "x", "--model", "{tmp}/nowhere"], "no such directory"),
    (["explain", "x", "--model", "{tmp}"], "config.json: no such file"),
    (["explain", "", "--model", "{model}"], "the text is empty"),
    (["explain", "x", "--pair", "  ", "--model", "{model}"], "--pair is empty"),
    (["explain", "x", "--model", "{model}", "--layer", "6"], "--layer 6 is out of range: this model has 6 layers"),
    (["explain", "x", "--model", "{model}", "--head", "-1"], "--head -1 is out of range"),
    (["explain", "x", "--model", "{model}", "--layer", "two"], "invalid int value: 'two'"),
    (["explain", "x", "--model", "{model}", "--values", "0"], "at least 1, found 0"),
    (["explain", "x", "--model", "{model}", "--dtype", "float16"], "invalid choice: 'float16'"),
    (["explain", "x", "--model", "{model}", "--plot", "{tmp}/a.jpg"], "ending in .png"),
    # A missing folder of an output is created now, as `embed` does; a file on the way is not
    (["explain", "x", "--model", "{model}", "--plot", "{tmp}/latin1.txt/a.png"], "latin1.txt is a file"),
    (["explain", "x", "--model", "{nopooler}"], "no pooler weights"),
    (["run", "--model", "{model}"], "no text given"),
    (["run", "x", "--model", "{model}", "--which", "logits"], "--which 'logits' is not an output"),
    (
        ["run", "x", "--model", "{model}", "--which", "pooler_output,attentions", "--output", "{tmp}/o.npy"],
        "a .npy file holds one array",
    ),
    (["run", "x", "--model", "{model}", "--output", "{tmp}/o.txt"], "ending in .npy or .npz"),
    (["run", "x", "--model", "{model}", "--output", "{tmp}"], "is a directory"),
    (["run", "x", "--model", "{model}", "--output", "/proc/o.npy"], "cannot create a file in /proc"),
    (["run", "x", "--model", "{model}", "--input", "{tmp}/none.txt"], "no such file"),
    (["run", "--model", "{model}", "--input", "{tmp}/latin1.txt"], "not UTF-8 text"),
    # One rule for files, as `embed` has: blank lines are skipped; a file with no other line has no text to run.
    (["run", "--model", "{model}", "--input", "{tmp}/blank.txt"], "blank.txt: no text to run: its 2 line(s) are blank"),
    (["run", "--model", "{model}", "--input", "{tmp}/empty.txt"], "empty.txt: no text to run: it is empty"),
    (["run", "x", "--model", "{nopooler}", "--which", "pooler_output"], "no pooler weights"),
    (["run", "x", "--model", "{model}", "--max-length", "-3"], "--max-length -3 leaves no room"),
    (["run", "x", "--model", "{model}", "--bogus-flag"], "minibert run: error: unrecognized arguments: --bogus-flag"),
    # The subcommand's name kept, and where the flag is: a near miss, or the commands that take it.
    (["run", "x", "--model", "{model}", "--pair", "y"], "--pair y; --pair is an option of minibert explain and"),
    (["run", "x", "--model", "{model}", "--valus", "3"], "arguments: --valus 3; did you mean --values?"),
    (["trace", "x", "--model", "{model}", "--match", "layer.9."], "--match 'layer.9.' matches none of the 79"),
    (["trace", "x", "--model", "{model}", "--output", "{tmp}/t.npy"], "ending in .npz"),
    (["trace", "", "--model", "{model}"], "the text is empty"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a[:1] + a[2:3]) + f" [{m}]" for a, m in BAD])
def test_every_bad_command_line_gives_one_line_and_exit_status_2(
    capsys, tmp_path, minilm, no_pooler_model, argv, message
):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (tmp_path / "blank.txt").write_text("\n  \n", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    fill = {"model": minilm[0], "tmp": tmp_path, "nopooler": no_pooler_model}
    code, out, err = run(capsys, *(a.format(**fill) for a in argv))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("minibert"), err
    assert message in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank.txt", "empty.txt", "latin1.txt"]  # nothing written


@pytest.mark.parametrize("command", [[], ["explain"], ["run"], ["trace"]])
def test_help_describes_every_command(capsys, command):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert out.startswith(f"usage: minibert {' '.join(command)}".rstrip())
    for word in {
        (): ["explain", "run", "trace"],
        ("explain",): ["--plot", "--json", "--pair", "example"],
        ("run",): ["--output", "--which", "--input", "examples"],
        ("trace",): ["--match", "--output", "examples"],
    }[tuple(command)]:
        assert word in out


def test_python_dash_m_minibert_help_runs_as_a_program():
    result = subprocess.run([sys.executable, "-m", "minibert", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "explain" in result.stdout and "run" in result.stdout


def test_importing_minibert_and_its_cli_pulls_in_no_matplotlib():
    script = "import sys, minibert, minibert.cli\nassert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)


# ---- what a new user trips on ----

LONG_TEXT = "word " * 700  # 702 tokens with [CLS] and [SEP]: more than MiniLM's 512 positions


def test_run_says_on_stderr_which_texts_it_cut_to_how_many_tokens_and_how_to_change_it(capsys, minilm, tmp_path):
    directory, _, _ = minilm
    path = tmp_path / "out.npz"
    code, out, err = run(capsys, "run", "short", LONG_TEXT, "--model", directory, "--output", path)
    assert code == 0 and out.startswith(f"wrote {path}: last_hidden_state (2, 512, 384)")
    assert err == (
        "minibert run: note: 1 of 2 texts cut to 512 tokens, the model's maximum (text 2: 702 tokens); the tokens "
        "past 512 are not run. --max-length N sets the cut (at most 512).\n"
    )
    lines = tmp_path / "texts.txt"
    lines.write_text(f"{LONG_TEXT}\nthree more words\n", encoding="utf-8")
    code, _, err = run(capsys, "run", "--input", lines, "--model", directory, "--max-length", "4")
    assert code == 0
    assert err.startswith(
        f"minibert run: note: 2 of 2 texts cut to 4 tokens, as --max-length 4 asks (--input {lines}, line 1: 702 "
        f"tokens, --input {lines}, line 2: 5 tokens)"
    )


def test_run_cuts_to_the_models_positions_when_the_tokenizer_sets_no_limit(capsys, tmp_path):
    """tiny-mlm's tokenizer_config.json has transformers' "no limit"; its config has 64 positions. The command cuts
    at 64 and says so, where it used to fail with Python advice (Tokenizer(texts, truncation=True))."""
    code, out, err = run(
        capsys, "run", "the cat " * 40, "--model", WEIGHTS / "tiny-mlm", "--output", tmp_path / "o.npy"
    )
    assert code == 0 and "last_hidden_state (1, 64, 32)" in out
    assert "note: 1 of 1 text cut to 64 tokens, the model's maximum (text 1: 82 tokens)" in err


def test_trace_and_explain_say_when_they_cut_the_text(capsys, minilm):
    directory, _, _ = minilm
    code, out, err = run(capsys, "trace", LONG_TEXT, "--pair", "a pair", "--model", directory, "--match", "pooler.")
    assert code == 0 and out.splitlines()[0].startswith("pooler.first_token")
    assert "minibert trace: note: 1 of 1 text cut to 512 tokens, the model's maximum (the text and its --pair: " in err
    code, out, err = run(capsys, "explain", "a b c d e f", "--model", directory, "--max-length", "5")
    assert code == 0 and out.splitlines()[0].split() == ["tokens", "[CLS]", "a", "b", "c", "[SEP]"]
    assert "cut to 5 tokens, as --max-length 5 asks (the text: 8 tokens)" in err


@pytest.fixture(scope="module")
def odd_models(tmp_path_factory):
    """Model directories a command line can meet: one token type, a tokenizer larger than the model, a NaN weight."""
    from safetensors.numpy import load_file, save_file

    root = tmp_path_factory.mktemp("odd")
    made = {}
    for name, source, words in [("one-type", "tiny-silu", 45), ("big-vocab", "tiny-relu-no-pooler", 75)]:
        directory = root / name
        directory.mkdir()
        for file in ("config.json", "model.safetensors"):
            shutil.copy(WEIGHTS / source / file, directory / file)
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(words))]
        (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        made[name] = directory
    directory = shutil.copytree(made["big-vocab"], root / "nan-weight")
    tensors = load_file(directory / "model.safetensors")
    name = next(n for n in tensors if n.endswith("attention.output.dense.weight"))
    tensors[name][0, 0] = np.nan
    save_file(tensors, directory / "model.safetensors")
    made["nan-weight"] = directory
    return made


# No message a command line shows may tell its user to call Python; these are the Python spellings of the fixes.
PYTHON_ADVICE = ("Tokenizer(", "check_finite", "max_length", "truncation=", "errors=", "texts[", "text_pairs",
                 "minibert.", "=True", "=False", "input_ids[", "as the Tokenizer does")  # fmt: skip
NOT_UTF8 = b"caf\xe9".decode("utf-8", "surrogateescape")  # how Python hands a Latin-1 argument over (PEP 383)
CLI_ONLY = [  # (argv, what the message must say), each reaching a library check whose own fix is for Python
    (["run", "x", "--model", "{model}", "--max-length", "600"], "--max-length 600 is more than this model's 512"),
    (["run", "x", "--model", "{model}", "--max-length", "1"], "--max-length 1 leaves no room for a token of the text"),
    # One bound, one message: 0, 1 and 2 alike (2 once ran [CLS] [SEP] alone; 0 got argparse's "at least 1").
    (["run", "x", "--model", "{model}", "--max-length", "0"], "beside [CLS] and [SEP]; pass --max-length 3 or more"),
    (["run", "x", "--model", "{model}", "--max-length", "2"], "beside [CLS] and [SEP]; pass --max-length 3 or more"),
    (["trace", "x", "--pair", "y", "--model", "{model}", "--max-length", "4"], "pass --max-length 5 or more"),
    (["explain", "x", "--model", "{model}", "--max-length", "513"], "pass --max-length 512 or less"),
    (["run", NOT_UTF8, "--model", "{model}"], "text 1 is not UTF-8 text (byte 0xe9 at character 3)"),
    (["trace", NOT_UTF8, "--model", "{model}"], "the text is not UTF-8 text (byte 0xe9"),
    (["explain", "x", "--pair", NOT_UTF8, "--model", "{model}"], "--pair is not UTF-8 text (byte 0xe9"),
    (["trace", "w1", "--pair", "w2", "--model", "{one-type}"], "--pair: this model has one token type"),
    (["run", "w1 w70", "--model", "{big-vocab}"], "The tokenizer files of --model give ids this model does not have"),
    (["run", "w1", "--model", "{nan-weight}"], "NaN or infinite value(s); the checkpoint is corrupt (re-download"),
]


@pytest.mark.parametrize("argv, message", CLI_ONLY, ids=[m for _, m in CLI_ONLY])
def test_messages_name_flags_not_python_apis(capsys, minilm, odd_models, argv, message):
    fill = {"model": minilm[0], **odd_models}
    code, out, err = run(capsys, *(a.format(**fill) if "{" in a else a for a in argv))
    assert (code, out, err.count("\n")) == (2, "", 1), err
    assert message in err
    assert not [advice for advice in PYTHON_ADVICE if advice in err], err


def test_stdin_that_is_not_utf8_is_refused_as_a_file_is(capsys, minilm, monkeypatch):
    class Stdin:
        buffer = __import__("io").BytesIO("caf\xe9\n".encode("latin-1"))

    monkeypatch.setattr(sys, "stdin", Stdin)
    code, _, err = run(capsys, "run", "--input", "-", "--model", minilm[0])
    assert code == 2 and err == "minibert run: error: --input -: not UTF-8 text (invalid continuation byte at byte 3)\n"


def test_version_prints_the_version_written_in_minibert(capsys):
    """minibert.__version__, which pyproject.toml reads (tests/test_packaging.py): a checkout never installed, or one
    installed under the old distribution name, prints it too."""
    import minibert

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out == f"minibert {minibert.__version__}\n"


def test_layer_or_head_without_plot_says_it_changes_nothing(capsys, minilm):
    code, out, err = run(capsys, "explain", TEXT, "--model", minilm[0], "--layer", "2")
    assert code == 0 and out.startswith("tokens")
    assert err == (
        "minibert explain: note: --layer and --head choose the attention map that --plot draws; without --plot they "
        "change nothing\n"
    )
    assert run(capsys, "explain", TEXT, "--model", minilm[0])[2] == ""  # no note when neither is given


@pytest.mark.parametrize(
    "argv, output",
    [
        (["run", "x", "--output", "{out}/a/b/out.npy"], "a/b/out.npy"),
        (["trace", "x", "--output", "{out}/a/b/trace.npz"], "a/b/trace.npz"),
        (["explain", "x", "--plot", "{out}/a/b/p.png"], "a/b/p.png"),
    ],
)
def test_every_command_creates_a_missing_folder_of_its_output_as_embed_does(capsys, minilm, tmp_path, argv, output):
    code, out, err = run(capsys, *(a.format(out=tmp_path) for a in argv), "--model", minilm[0])
    assert code == 0, err
    assert (tmp_path / output).is_file() and f"wrote {tmp_path / output}" in out
    assert [p.name for p in (tmp_path / output).parent.iterdir()] == [(tmp_path / output).name]  # no temporary left


def test_a_failed_run_leaves_no_folder_behind(capsys, tmp_path):
    code, _, err = run(capsys, "run", "x", "--model", tmp_path / "no-model", "--output", tmp_path / "new" / "o.npy")
    assert code == 2 and "no such directory" in err
    assert list(tmp_path.iterdir()) == []


def test_the_checkouts_picture_is_ignored_by_git_and_the_docs_one_is_not():
    """The README's main command writes pooled_output.png into the checkout; docs/pooled_output.png is the README's."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    check = subprocess.run(
        ["git", "check-ignore", "--no-index", "pooled_output.png", "docs/pooled_output.png"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert check.stdout.splitlines() == ["pooled_output.png"]


def every_parser():
    """The top-level parser and each subcommand's, by name."""
    parser = minibert.cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction)]
    return {"": parser, **commands.choices}


@pytest.mark.parametrize("command", ["", "explain", "run", "trace"])
def test_help_shows_every_default_a_description_and_examples(command):
    parser = every_parser()[command]
    text = parser.format_help()
    assert parser.formatter_class is minibert.cli.HelpFormatter
    assert parser.description and "example" in parser.epilog
    for action in parser._actions:
        if not action.option_strings or action.required or action.default == __import__("argparse").SUPPRESS:
            continue  # --help and --version have no default; --model has none on purpose
        shown = " ".join(parser._get_formatter()._get_help_string(action).split()) % {"default": action.default}
        assert "(default: " in shown or action.default is False, f"{command} {action.option_strings}: {shown}"
        if action.default not in (None, False):
            assert f"(default: {action.default})" in " ".join(text.split()), action.option_strings


LONG_PAIR = (  # 72 tokens with their [CLS] and [SEP]s: the ~70 tokens at which the old picture's labels overlapped
    "The quick brown fox jumps over the lazy dog while the researchers at the laboratory carefully measure how "
    "attention flows between tokens in a long sentence that goes on and on, and then on some more, to reach about "
    "seventy tokens in total, counting the pair",
    "A second sentence that is paired with the first one, and it is also fairly long itself",
)


def test_plot_of_a_long_pair_keeps_the_title_inside_labels_apart_and_marks_h0s_largest_dimension(minilm):
    from minibert.explainer.plot import MAX_TOKEN_LABELS, explanation_figure

    _, model, tokenizer = minilm
    encoded = tokenizer([LONG_PAIR[0]], [LONG_PAIR[1]])
    _, trace = model.trace(**encoded)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    h0 = trace["pooler.first_token"][0]
    fig = explanation_figure(
        tokens=tokens,
        probs=trace["encoder.layer.5.attention.self.probs"][0, 0],
        layer=5,
        head=0,
        h0=h0,
        pooler_dense=trace["pooler.dense"][0],
        pooled=trace["pooler.activation"][0],
        title=[repr(LONG_PAIR[0]), f"--pair {LONG_PAIR[1]!r}"],
    )
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert len(tokens) == 72
    title = fig.get_suptitle()
    assert title.startswith("'The quick brown fox") and title.endswith(f"--pair {LONG_PAIR[1]!r}")
    box = fig._suptitle.get_window_extent(renderer)
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height, box
    attention, dims, _, hist = fig.axes[:4]
    for labels in (attention.get_xticklabels(), attention.get_yticklabels()):
        assert 0 < len(labels) <= MAX_TOKEN_LABELS
        boxes = [label.get_window_extent(renderer) for label in labels]
        assert not [i for i in range(len(boxes) - 1) if boxes[i].overlaps(boxes[i + 1])], "token labels overlap"
    top = int(np.argmax(np.abs(h0)))
    assert top == 99  # the dimension the README talks about
    legend = [text.get_text() for text in dims.get_legend().get_texts()]
    assert f"h0's largest: dimension 99, {h0[99]:.2f}, {h0[99] ** 2 / (h0**2).sum():.0%} of |h0|²" in legend
    assert "dimension 99" in [text.get_text() for text in hist.texts]


def test_explain_plot_titles_a_pair_with_both_texts(capsys, minilm, tmp_path, monkeypatch):
    import minibert.explainer.plot

    titles = []
    original = minibert.explainer.plot.explanation_figure
    monkeypatch.setattr(
        minibert.explainer.plot, "explanation_figure", lambda **k: titles.append(k["title"]) or original(**k)
    )
    code, _, _ = run(capsys, "explain", "first part", "--pair", "second part", "--model", minilm[0], "--plot",
                     tmp_path / "p.png")  # fmt: skip
    assert code == 0 and titles == [["'first part'", "--pair 'second part'"]]


@pytest.mark.parametrize("length", [10, 32, 33, 40, 64, 72, 300, 512])
def test_plot_token_labels_never_overlap(length):
    from minibert.explainer.plot import MAX_TOKEN_LABELS, explanation_figure

    rng = np.random.default_rng(length)
    words = ["[CLS]", *(["researchers", "a", "##ing", "laboratory", ","] * length)[: length - 2], "[SEP]"]
    h0 = rng.normal(size=32)
    probs = rng.dirichlet(np.ones(length), size=length)  # [S, S], rows sum to 1
    fig = explanation_figure(
        tokens=words, probs=probs, layer=0, head=0, h0=h0, pooler_dense=h0, pooled=np.tanh(h0), title="t"
    )
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    attention = fig.axes[0]
    for labels in (attention.get_xticklabels(), attention.get_yticklabels()):
        assert len(labels) == min(length, len(range(0, length, -(-length // MAX_TOKEN_LABELS))))
        boxes = [label.get_window_extent(renderer) for label in labels]
        assert not [i for i in range(len(boxes) - 1) if boxes[i].overlaps(boxes[i + 1])], "token labels overlap"
