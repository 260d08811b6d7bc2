"""The README's walkthrough stays true: its pasted outputs are what the commands print today, its numbers are the
checkpoint's, and its links into minibert/model.py land on the functions they name."""

import importlib.util
import inspect
import json
import re

import numpy as np
import pytest
from support.helpers import ROOT, minilm_dir

import minibert
from minibert.cli import main

README = (ROOT / "README.md").read_text(encoding="utf-8")
TEXT = "Why is the pooled output different?"


BLOCKS = re.findall(r"^```([a-z]*)\n(.*?)^```$", README, re.S | re.M)  # (language, contents) of each fenced block


def output_block_after(command: str) -> str:
    """The contents of the fenced block that follows the block holding `command`: its pasted output."""
    (i,) = [i for i, (_, block) in enumerate(BLOCKS) if command in block]
    return BLOCKS[i + 1][1]


def compare_pooling():
    spec = importlib.util.spec_from_file_location("compare_pooling", ROOT / "docs" / "compare_pooling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_explain_output_is_what_minibert_explain_prints(capsys):
    assert main(["explain", TEXT, "--model", str(minilm_dir())]) == 0
    printed = capsys.readouterr().out
    pasted = output_block_after('minibert explain "Why is the pooled output different?"')
    assert pasted.replace("wrote pooled_output.png\n", "") == printed


def test_readme_pooling_table_is_what_the_script_prints_and_mean_pooling_separates_best(capsys):
    script = compare_pooling()
    model = minibert.BertModel.from_pretrained(minilm_dir())
    tokenizer = minibert.Tokenizer.from_pretrained(minilm_dir())
    related = script.cosines(model, tokenizer, script.RELATED)
    unrelated = script.cosines(model, tokenizer, script.UNRELATED)
    margins = {name: related[name].min() - unrelated[name].max() for name in related}
    # The README's claims: mean pooling has by far the widest margin and puts unrelated pairs near 0; token 0 and
    # the pooled output still score unrelated pairs 0.39 or more.
    assert margins["mean pooling"] > 0.6 > 0.25 > max(margins["CLS h0"], margins["pooler_output"]) > 0
    assert np.abs(unrelated["mean pooling"]).max() < 0.1
    assert min(unrelated["CLS h0"].min(), unrelated["pooler_output"].min()) > 0.385

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.argv", ["compare_pooling.py", "--model", str(minilm_dir())])
        script.main()
    assert output_block_after("python docs/compare_pooling.py") == capsys.readouterr().out


def test_readme_numbers_in_the_prose_are_the_checkpoints():
    model = minibert.BertModel.from_pretrained(minilm_dir())
    out, trace = model.trace(**minibert.Tokenizer.from_pretrained(minilm_dir())([TEXT]))
    to_cls = trace["encoder.layer.5.attention.self.probs"][0, 0, :, 0]  # [S]: every query's attention to [CLS]
    assert f"gives {to_cls.min():.2f} to {to_cls.max():.2f} of its attention to `[CLS]`" in README
    h0 = trace["pooler.first_token"][0]
    share = h0.max() ** 2 / (h0**2).sum()
    assert f"dimension {np.argmax(np.abs(h0))} holds {h0.max():.2f},\n   {share:.0%} of the squared norm" in README
    dense = trace["pooler.dense"][0]
    assert f"lie in [{dense.min():.2f}, {dense.max():.2f}]" in README
    pooling = json.loads((minilm_dir() / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] is True and pooling["pooling_mode_cls_token"] is False
    assert f"compares {sum(1 for n in trace if not n.endswith(('.scores', 'first_token')))} of the {len(trace)}" in (
        README
    )


def test_mean_pooling_normalized_is_the_checkpoints_sentence_embedding():
    """What the README calls the checkpoint's own embedding is what sentence-transformers computes from it."""
    sentence_transformers = pytest.importorskip("sentence_transformers")
    texts = ["A man is playing a guitar.", "How do I reset my password?"]
    expected = sentence_transformers.SentenceTransformer(str(minilm_dir()), device="cpu").encode(texts)
    model = minibert.BertModel.from_pretrained(minilm_dir())
    vectors = compare_pooling().sentence_vectors(model, minibert.Tokenizer.from_pretrained(minilm_dir()), texts)
    mean = vectors["mean pooling"] / np.linalg.norm(vectors["mean pooling"], axis=1, keepdims=True)
    np.testing.assert_allclose(mean, expected, atol=1e-5)  # float32, as the core's F32_TOL


@pytest.mark.parametrize("function", ["bert_embeddings", "bert_self_attention", "bert_pooler"])
def test_readme_links_into_model_py_span_the_function_they_name(function):
    first, last = (int(n) for n in re.search(rf"\[`{function}`\]\(minibert/model.py#L(\d+)-L(\d+)\)", README).groups())
    lines = (ROOT / "minibert" / "model.py").read_text().splitlines()
    assert lines[first - 1].startswith(f"def {function}("), f"README links {function} to line {first}: update it"
    body_end = next(i for i in range(first, len(lines)) if lines[i].startswith(("def ", "class ", "@")))
    while not lines[body_end - 1].strip():
        body_end -= 1
    assert last == body_end, f"README's link to {function} ends at line {last}; the function ends at {body_end}"


def test_readme_run_output_and_error_example_are_what_minibert_prints(capsys, tmp_path, monkeypatch):
    directory = str(minilm_dir())
    assert main(["run", "first text", "a second, longer text", "--model", directory, "--values", "4"]) == 0
    assert output_block_after('minibert run "first text" "a second, longer text"') == capsys.readouterr().out
    (example,) = [block for _, block in BLOCKS if block.startswith("$ minibert run")]
    command, message = example.splitlines()
    monkeypatch.chdir(tmp_path)
    assert main(["run", "some text", "--model", directory, "--output", "out.csv"]) == 2
    assert command.endswith("--output out.csv") and capsys.readouterr().err == message + "\n"


def test_readme_trace_snippet_prints_the_names_and_shapes_shown(capsys):
    (snippet,) = [block for language, block in BLOCKS if language == "python" and "model.trace(" in block]
    exec(compile(snippet, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    shown = output_block_after("out, trace = model.trace(").splitlines()
    cut = shown.index("...")
    assert shown[:cut] == printed[:cut] and shown[cut + 1 :] == printed[-(len(shown) - cut - 1) :]
    assert len(printed) == 79


def test_readme_trace_command_output_is_what_minibert_trace_prints(capsys):
    argv = ["trace", TEXT, "--model", str(minilm_dir()), "--match", "layer.3.attention.self"]
    assert main(argv) == 0
    assert output_block_after("--match layer.3.attention.self") == capsys.readouterr().out


def test_readme_pooler_excerpt_is_the_whole_function_as_model_py_has_it():
    """The README calls its excerpt "the whole of" bert_pooler: it must be the function's source, docstring included."""
    (block,) = [block for language, block in BLOCKS if language == "python" and block.startswith("# minibert/model.py")]
    assert block.removeprefix("# minibert/model.py\n") == inspect.getsource(minibert.model.bert_pooler), (
        "README.md's bert_pooler excerpt differs from minibert/model.py's bert_pooler: paste the function again"
    )


def test_readme_cut_example_is_what_minibert_run_prints(capsys, tmp_path, monkeypatch):
    (block,) = [block for _, block in BLOCKS if block.startswith("$ LONG=")]
    setting, command, *printed = block.splitlines()
    assert setting == """$ LONG="$(python -c 'print("word " * 700)')\"""" and "--output out.npy" in command
    monkeypatch.chdir(tmp_path)
    assert main(["run", "short", "word " * 700, "--model", str(minilm_dir()), "--output", "out.npy"]) == 0
    captured = capsys.readouterr()
    assert printed == captured.err.splitlines() + captured.out.splitlines()


def test_readme_says_what_an_empty_text_gives_in_python_and_on_the_command_line(capsys):
    tokenizer = minibert.Tokenizer.from_pretrained(minilm_dir())
    assert tokenizer.convert_ids_to_tokens(tokenizer([""])["input_ids"][0]) == ["[CLS]", "[SEP]"]
    assert main(["run", "", "--model", str(minilm_dir())]) == 2
    message = re.search(r"\(`minibert run \"\"` says `([^`]+)`\)", README).group(1)
    assert message in capsys.readouterr().err
    assert "from\nPython an empty text encodes as `[CLS] [SEP]`" in README


def test_readme_flag_message_example_is_what_minibert_prints(capsys):
    start, end = re.search(r"\(`(--max-length 600 [^`]*) \.\.\.; ([^`]*)`\)", README.replace("\n", " ")).groups()
    assert main(["run", "x", "--model", str(minilm_dir()), "--max-length", "600"]) == 2
    err = capsys.readouterr().err
    assert start in err and err.rstrip().endswith(end)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation but hyphens and underscores dropped, each
    space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readmes_links_into_other_markdown_files_land_on_a_heading():
    links = re.findall(r"\]\(([\w./-]+\.md)#([\w-]+)\)", README)
    assert links, "the README links into benchmarks/README.md's sections"
    for path, anchor in links:
        text = (ROOT / path).read_text(encoding="utf-8")
        headings = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
        assert anchor in headings, f"README links to {path}#{anchor}, which no heading of {path} has"
