"""The explainer page's content, without a browser: its embedded report is `minibert explain --json`, its arrays are
the trace's (exactly up to 64 tokens, within the stated precision above), it is self-contained, and it is
packaged. tests/test_explainer_browser.py drives the same pages in Chromium."""

import html
import json
import re
from fnmatch import fnmatch

import numpy as np
import pytest
import tomllib
from support.helpers import ROOT, WEIGHTS, minilm_dir

import minibert
from minibert import explainer
from minibert.cli import main

TEXT = "Why is the pooled output different?"
PARAGRAPH = (
    "BERT reads a sentence as a sequence of word pieces. Each layer lets every token look at every other token "
    "through several attention heads, and the pooled output is one dense layer and a tanh over the first token. "
)
# sqrt-uint8 attention: p is stored as v = round(255 sqrt(p)), read back as (v / 255)^2; |sqrt(p) - v / 255| <= 1/510,
# so |p - (v / 255)^2| <= (2 sqrt(p) + 1/510) / 510, below 0.004 everywhere (plus float32 rounding of p itself).
SQRT_UINT8_SLACK = 1e-7


def text_of_tokens(tokenizer, n: int) -> str:
    """A text that encodes to exactly n tokens, [CLS] and [SEP] included."""
    ids = tokenizer([PARAGRAPH * 40], max_length=512)["input_ids"][0]
    text = tokenizer.decode(ids[1 : n - 1])
    assert tokenizer([text])["input_ids"].shape[1] == n
    return text


def probs_of(trace, layers: int) -> np.ndarray:
    return np.stack([trace[f"encoder.layer.{i}.attention.self.probs"][0] for i in range(layers)])  # [L, N, S, S]


def test_the_page_embeds_exactly_what_explain_json_prints(capsys, tmp_path):
    page = tmp_path / "page.html"
    assert main(["explain", TEXT, "--model", str(minilm_dir()), "--json", "--html", str(page)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB)\n"
    data = explainer.read_page_data(page.read_text(encoding="utf-8"))
    assert data["explain"] == json.loads(captured.out)  # every field, every float, bit for bit
    assert data["explain"]["tokens"][:3] == ["[CLS]", "why", "is"]


def test_the_text_output_is_unchanged_and_says_where_the_page_went(capsys, tmp_path):
    directory = str(minilm_dir())
    assert main(["explain", TEXT, "--model", directory]) == 0
    plain = capsys.readouterr().out
    assert main(["explain", TEXT, "--model", directory, "--html", str(tmp_path / "p.html")]) == 0
    with_page = capsys.readouterr().out
    size = (tmp_path / "p.html").stat().st_size / 1e6
    assert with_page == plain + f"wrote {tmp_path / 'p.html'} ({size:.1f} MB)\n"


def test_the_page_is_self_contained_and_its_data_cannot_close_the_script(minilm):
    _, model, tokenizer = minilm
    hostile = "</script><script>alert(1)</script> <!-- {{DATA}} /*SCRIPT*/"
    page = minibert.explain(hostile, model, tokenizer).html()
    assert page.count("</script>") == 2  # the data's and the code's, none from the text
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    urls = set(re.findall(r"https?://[^\s\"')]+", page))
    assert urls == {"http://www.w3.org/2000/svg"}, urls  # the SVG namespace only: nothing is fetched
    assert explainer.read_page_data(page)["explain"]["text"] == hostile


def test_up_to_64_tokens_the_views_hold_the_traces_numbers_exactly(minilm):
    directory, model, tokenizer = minilm
    explanation = minibert.explain(TEXT, directory)
    data = explainer.read_page_data(explanation.html())
    _, trace = model.trace(**tokenizer([TEXT]))
    L, N = model.config.num_hidden_layers, model.config.num_attention_heads
    assert data["attention"]["indices"] is None and data["attention"]["keys_kept"] == 10
    np.testing.assert_array_equal(data["attention"]["values"], probs_of(trace, L))
    query = trace["encoder.layer.4.attention.self.query"][0]  # [S, H]
    np.testing.assert_array_equal(data["qk"]["query"][4, 7], query[:, 7 * 32 : 8 * 32])  # head 7's slice
    np.testing.assert_array_equal(data["qk"]["key"][0, 0], trace["encoder.layer.0.attention.self.key"][0][:, :32])
    assert data["qk"]["query"].shape == (L, N, 10, 32)
    assert data["mask"] == [0.0] * 10 and data["notes"] == []
    rows = {row["name"]: row for row in data["trace"]}
    assert list(rows) == list(trace)  # every intermediate, in forward order
    x = trace["encoder.layer.2.intermediate.dense"].astype(np.float64)
    assert rows["encoder.layer.2.intermediate.dense"] == {
        "name": "encoder.layer.2.intermediate.dense",
        "shape": [1, 10, 1536],
        "mean": x.mean(),
        "std": x.std(),
        "min": x.min(),
        "max": x.max(),
        "norm": np.linalg.norm(x.ravel()),
    }


def test_the_pooler_data_says_what_the_tanh_does_and_what_the_checkpoint_uses(minilm):
    directory, _, _ = minilm
    data = explainer.read_page_data(minibert.explain(TEXT, directory).html())
    report, pooler = data["explain"], data["pooler"]
    dense = np.array(report["pooler_dense"])
    assert pooler["saturated"] == np.flatnonzero(np.abs(np.tanh(dense)) > 0.9).tolist() == []  # MiniLM: none
    assert pooler["dense_min"] == dense.min() and pooler["dense_max"] == dense.max()
    assert pooler["top_h0_dims"][0] == 99 and 0.6 < pooler["top_h0_share"][0] < 0.62  # the README's 61%
    assert pooler["norms"]["h0"] == pytest.approx(np.linalg.norm(report["h0"]), rel=1e-6)
    assert pooler["sentence"] == {
        "read": True,
        "modules": ["Transformer", "Pooling", "Normalize"],
        "pooling_modes": ["mean"],
        "normalize": True,
        "pooling_config_file": "1_Pooling/config.json",
        "pooling_config": json.loads((directory / "1_Pooling" / "config.json").read_text()),
        "uses_pooler": False,
    }


def test_a_plain_bert_directory_has_no_sentence_files_and_the_page_says_so():
    data = minibert.explain("a tiny model", WEIGHTS / "tiny-classifier").data
    assert data["pooler"]["sentence"]["read"] is False
    assert "tiny-classifier has no modules.json" in data["pooler"]["sentence"]["why"]


def test_at_128_tokens_every_weight_is_kept_to_within_0_004_and_the_page_is_under_5_mb(minilm):
    _, model, tokenizer = minilm
    text = text_of_tokens(tokenizer, 128)
    report, trace = explainer.pooler_report(model, tokenizer, text)
    html = explainer.Explanation.of(model, report, trace).html()
    assert len(html.encode("utf-8")) < 5_000_000
    data = explainer.read_page_data(html)
    probs = probs_of(trace, model.config.num_hidden_layers)
    attention = data["attention"]
    assert attention["indices"] is None and attention["keys_kept"] == 128 and attention["encoding"] == "sqrt-uint8"
    stored = (attention["values"] / 255.0) ** 2
    bound = (2 * np.sqrt(probs) + 1 / 510) / 510 + SQRT_UINT8_SLACK
    assert (np.abs(stored - probs) <= bound).all() and bound.max() < 0.004
    query = trace["encoder.layer.5.attention.self.query"][0][:, :32]
    np.testing.assert_array_equal(data["qk"]["query"][5, 0], query.astype(np.float16))
    assert data["qk"]["dtype"] == "float16"
    (note,) = data["notes"]
    assert note.startswith("128 tokens, so to keep the page small it holds every attention weight to within 0.004")


def test_at_512_tokens_each_query_keeps_its_largest_weights_and_the_page_says_how_much_they_hold(minilm):
    _, model, tokenizer = minilm
    text = text_of_tokens(tokenizer, 512)
    report, trace = explainer.pooler_report(model, tokenizer, text)
    data = explainer.read_page_data(explainer.Explanation.of(model, report, trace).html())
    probs = probs_of(trace, model.config.num_hidden_layers)  # [L, N, S, S]
    attention = data["attention"]
    k = attention["keys_kept"]
    assert k == explainer.keys_kept(6, 12, 512) == 16
    indices = attention["indices"].astype(np.int64)  # [L, N, S, k], in key order
    assert indices.shape == (6, 12, 512, k) and (np.diff(indices, axis=-1) > 0).all()
    kept = np.take_along_axis(probs, indices, axis=-1)
    dropped = probs.copy()
    np.put_along_axis(dropped, indices, -1.0, axis=-1)
    assert (kept.min(axis=-1) >= dropped.max(axis=-1)).all()  # the k largest of each query, none other
    stored = (attention["values"] / 255.0) ** 2
    assert (np.abs(stored - kept) <= (2 * np.sqrt(kept) + 1 / 510) / 510 + SQRT_UINT8_SLACK).all()
    mass = kept.sum(axis=-1, dtype=np.float64)
    assert attention["mass_kept_mean"] == pytest.approx(mass.mean()) and attention["mass_kept_min"] == mass.min()
    (note,) = data["notes"]
    assert f"each query's 16 largest attention weights of 512 (they hold {mass.mean():.0%}" in note


def test_a_cut_text_is_counted_in_the_report_and_named_first_on_the_page(minilm, capsys):
    directory, model, tokenizer = minilm
    long = PARAGRAPH * 12  # about 560 tokens

    def before_the_cut(text, pair=None):
        return int(tokenizer([text], None if pair is None else [pair], truncation=False)["attention_mask"].sum())

    data = minibert.explain(long, model, tokenizer).data
    total = before_the_cut(long)
    assert total > 512 and data["explain"]["num_truncated_tokens"] == total - 512
    assert data["notes"][0] == (
        f"512 of the text's {total:,} tokens ran: the text was cut to its first 512, so the last {total - 512:,} "
        "tokens are in no view."
    )
    data = minibert.explain(long, model, tokenizer, pair="A short second text.").data
    total = before_the_cut(long, "A short second text.")
    assert data["explain"]["num_truncated_tokens"] == total - 512
    assert data["explain"]["tokens"][-6:] == ["a", "short", "second", "text", ".", "[SEP]"]  # the longer text cut
    assert data["notes"][0].startswith(f"512 of the {total:,} tokens of the text and its pair ran: the longer text")
    # --max-length cuts before the report is made; the report counts that cut too.
    assert main(["explain", long, "--model", str(directory), "--json", "--max-length", "40"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["tokens"]) == 40 and report["num_truncated_tokens"] == before_the_cut(long) - 40
    # Nothing cut: zero, and no note.
    short = minibert.explain(TEXT, model, tokenizer).data
    assert short["explain"]["num_truncated_tokens"] == 0 and short["notes"] == []


def test_the_title_of_a_long_text_is_cut_at_a_word(minilm):
    _, model, tokenizer = minilm
    title = re.search(r"<title>(.*?)</title>", minibert.explain(PARAGRAPH * 3, model, tokenizer).html()).group(1)
    assert title == "minibert explain: BERT reads a sentence as a sequence of word pieces. Each…"
    assert len(html.unescape(title)) <= len("minibert explain: ") + explainer.page.TITLE_CHARACTERS


def test_explain_from_python_renders_in_jupyter_and_saves_the_page(minilm, tmp_path):
    directory, model, tokenizer = minilm
    explanation = minibert.explain(TEXT, model, tokenizer, pair="A second text.")
    assert explanation.report["tokens"][-4:] == ["second", "text", ".", "[SEP]"]
    assert explanation.data["name"] == "a BertModel" and explanation.data["pooler"]["sentence"]["read"] is False
    shown = re.fullmatch(
        r'<iframe srcdoc="([^"]*)" title="minibert explainer" style="[^"]*"></iframe>', explanation._repr_html_()
    )
    assert shown is not None and html.unescape(shown.group(1)) == explanation.html()  # the page, escaped whole
    path = explanation.save(tmp_path / "pair.html")
    assert path.read_text(encoding="utf-8") == explanation.html()
    assert repr(explanation) == "Explanation('Why is the pooled output different?', 15 tokens, a BertModel)"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, t: minibert.explain("", m, t), "text must be a non-empty string"),
        (lambda m, t: minibert.explain("x", m), "pass its tokenizer too"),
        (lambda m, t: minibert.explain("x", 3), "model must be a model directory, a hub id or a BertModel"),
        (lambda m, t: minibert.explain("x", m, t).save(f"{minibert.__file__}/page.html"), "is a file"),
        (lambda m, t: minibert.explain("x", m, t).save("page.htm"), "ending in .html"),
        (lambda m, t: explainer.read_page_data("<html></html>"), "not an explainer page"),
    ],
)
def test_bad_calls_say_what_is_wrong(minilm, call, message):
    _, model, tokenizer = minilm
    with pytest.raises(minibert.InputError, match=message):
        call(model, tokenizer)


@pytest.mark.parametrize(
    "argv, message", [(["--html", "{tmp}/a.htm"], "ending in .html"), (["--html", "{tmp}/f/a.html"], "is a file")]
)
def test_bad_html_paths_fail_before_the_forward_pass(capsys, tmp_path, argv, message):
    (tmp_path / "f").write_text("a file where a folder would be")  # a missing folder is created; a file is not
    code = main(["explain", "x", "--model", str(minilm_dir()), *(a.format(tmp=tmp_path) for a in argv)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and message in captured.err and captured.err.count("\n") == 1


def test_the_page_files_are_package_data():
    """pyproject.toml's package-data globs cover every file of minibert/explainer/assets, so a wheel carries them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["minibert"]
    files = sorted(
        p.relative_to(ROOT / "minibert").as_posix() for p in (ROOT / "minibert" / "explainer" / "assets").iterdir()
    )
    assert files == ["explainer/assets/page.css", "explainer/assets/page.html", "explainer/assets/page.js"]
    assert all(any(fnmatch(f, g) for g in globs) for f in files)
