"""The explainer page in a real browser: Debian's chromium and chromium-driver (installed by .ci/run), driven by
selenium (the `browser` extra). Loads without console errors, every view draws, the views answer clicks and hovers
with the right numbers, export gives a real PNG and SVG, and a 512-token page loads.

Screenshots of each view land in tmp/artifacts/ (or $MINIBERT_ARTIFACTS), which git ignores."""

import base64
import json
import os
import struct
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from support import chromium
from support.helpers import ROOT

import minibert
from minibert import explainer
from minibert.explainer.page import TITLE_CHARACTERS, short_title

TEXT = "Why is the pooled output different?"
ARTIFACTS = Path(os.environ.get("MINIBERT_ARTIFACTS", ROOT / "tmp" / "artifacts"))
# A 600-word text of numbers, names and rare words: about 1,270 tokens, which the page cuts to MiniLM's 512.
SENTENCES = [
    "The tensor encoder.layer.3.attention.self.query has shape (1, 512, 384) and norm 41.27 in float32.",
    "Dimension 99 of h0 holds 5.90, that is 61% of its squared norm; the pooler's tanh(W·h0 + b) moves it to -0.0888.",
    "Tokenizers split unfamiliar words like photosynthesis, hyperparameterization or Schwarzschild into pieces.",
    "On 2026-12-04 at 19:42 UTC the benchmark measured 11.3 ms per batch of 8×128 tokens on AVX-512.",
    "LayerNorm uses eps = 1e-12, GELU uses erf, and the softmax subtracts the row maximum before exp().",
    "Quarks, gluons and neutrinos appear in physics papers; BERT's WordPiece vocabulary has 30,522 entries.",
]
LONG_TEXT = " ".join((" ".join(SENTENCES * 8)).split()[:600])
# The widths of a laptop's browser and of a narrow window (or half a screen); the window is 1,000 px high.
WIDTHS = (1400, 800)
VIEWS = ("head", "model", "neuron", "pooler", "trace")


@pytest.fixture(scope="module")
def browser():
    try:
        with chromium.chromium() as driver:
            yield driver
    except chromium.ChromiumMissing as missing:
        pytest.fail(str(missing))


@pytest.fixture(scope="module")
def page16(minilm, tmp_path_factory):
    """(path, data, trace) of the page of TEXT (10 tokens)."""
    directory, model, tokenizer = minilm
    report, trace = explainer.pooler_report(model, tokenizer, TEXT)
    explanation = explainer.Explanation.of(model, report, trace, source=directory)
    path = explanation.save(tmp_path_factory.mktemp("pages") / "page16.html")
    return path, explainer.read_page_data(path.read_text(encoding="utf-8")), trace


@pytest.fixture(scope="module")
def long_page(minilm, tmp_path_factory):
    """(path, data, tokens before the cut) of the page of LONG_TEXT."""
    directory, model, tokenizer = minilm
    explanation = minibert.explain(LONG_TEXT, directory)
    path = explanation.save(tmp_path_factory.mktemp("pages") / "page600words.html")
    total = int(tokenizer([LONG_TEXT], truncation=False)["attention_mask"].sum())
    return path, explainer.read_page_data(path.read_text(encoding="utf-8")), total


@pytest.fixture(params=WIDTHS, ids=lambda width: f"{width}px")
def width(request, browser):
    """The browser's window at each of WIDTHS (1,000 px high), back to the default afterwards."""
    browser.set_window_size(request.param, 1000)
    start = time.perf_counter()
    while browser.execute_script("return innerWidth") != request.param:
        assert time.perf_counter() - start < 10, f"the window did not take the width {request.param}"
        time.sleep(0.05)
    yield request.param
    browser.set_window_size(1280, 1000)


open_page, severe = chromium.open_page, chromium.severe


def show(driver, view: str):
    driver.execute_script("minibert.show(arguments[0])", view)
    return driver.find_element("css selector", f'[data-view="{view}"]')


def screenshot(driver, element, name: str) -> Path:
    return chromium.screenshot(driver, element, ARTIFACTS / name)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"not a PNG: starts {data[:8]!r}"
    return struct.unpack(">II", data[16:24])


def js_fixed(x: float, digits: int = 4) -> str:
    """What the page's fmt() shows for x: 0 as "0", tiny and huge numbers in exponent form, else toFixed(digits)."""
    if x == 0:
        return "0"
    if abs(x) >= 1e6 or abs(x) < 10**-digits:
        mantissa, exponent = f"{x:.2e}".split("e")
        return f"{mantissa}e{int(exponent):+d}"
    return f"{x:.{digits}f}"


def lines(driver) -> list[dict]:
    """The head view's attention lines: query, key, head and opacity of each."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('[data-view=head] line.attn')).map(l => ({"
        "q: +l.dataset.query, k: +l.dataset.key, h: +l.dataset.head, w: +l.getAttribute('stroke-opacity')}))"
    )


def box(driver, selector: str) -> dict:
    """The element's box in the window (top, bottom, left, right, height), in CSS pixels."""
    return driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height}",
        selector,
    )


LAYOUT_FAULTS = """
const v = document.querySelector('[data-view="' + arguments[0] + '"]'), fig = v.querySelector('.figure');
const svg = fig.querySelector('svg.fig'), s = svg.getBoundingClientRect(), faults = [];
if (fig.scrollWidth > fig.clientWidth) faults.push('scrolls sideways: ' + fig.scrollWidth + ' > ' + fig.clientWidth);
const texts = Array.from(svg.querySelectorAll('text')).filter(t => t.textContent.trim());
const boxes = texts.map(t => t.getBoundingClientRect()), said = (t) => '"' + t.textContent.slice(0, 60) + '"';
texts.forEach((t, i) => {
  const b = boxes[i];
  if (b.left < s.left - 0.5 || b.right > s.right + 0.5)
    faults.push('outside the figure (' + Math.round(b.width) + ' px in ' + Math.round(s.width) + '): ' + said(t));
});
for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
  const a = boxes[i], b = boxes[j];
  const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
  const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
  if (w > 1 && h > 1.5) faults.push('over each other: ' + said(texts[i]) + ' and ' + said(texts[j]));
}
return faults;
"""


def layout_faults(driver, view: str) -> list[str]:
    """What a reader of the view would see cut or crowded: a figure that scrolls sideways, a text outside its
    drawing (clipped there, mid-word), or two texts drawn over each other (by more than a pixel each way)."""
    return driver.execute_script(LAYOUT_FAULTS, view)


def drawn_weights(probs: np.ndarray, heads, query=None) -> set:
    """(query, key, head) of every weight the head view draws: those of at least 0.005."""
    return {
        (q, k, h)
        for h in heads
        for q in (range(probs.shape[1]) if query is None else [query])
        for k in range(probs.shape[2])
        if probs[h, q, k] >= 0.005
    }


# ---- the tests ----


def test_the_page_loads_without_console_errors_and_a_broken_page_is_caught(browser, page16, tmp_path):
    path, _, _ = page16
    severe(browser)  # start from an empty log
    open_page(browser, path)
    assert severe(browser) == []
    assert browser.title == f"minibert explain: {TEXT}"
    # The check can fail: the same page with one name misspelt in its script logs an uncaught error.
    broken = tmp_path / "broken.html"
    broken.write_text(path.read_text(encoding="utf-8").replace("drawPooler();\n", "drawPooler2();\n"), "utf-8")
    browser.get(broken.as_uri())
    time.sleep(0.5)
    assert any("drawPooler2 is not defined" in message for message in severe(browser))


def test_every_view_draws_its_figure(browser, page16):
    path, data, trace = page16
    open_page(browser, path)
    S, L, N = len(data["explain"]["tokens"]), 6, 12
    counts = {}
    for view in ("head", "model", "neuron", "pooler", "trace"):
        element = show(browser, view)
        assert element.is_displayed()
        figure = element.find_element("css selector", "svg.fig")
        counts[view] = browser.execute_script("return arguments[0].querySelectorAll('*').length", figure)
        assert figure.size["width"] > 500 and figure.size["height"] > 200
        screenshot(browser, element, f"view-{view}.png")
    assert len(lines(browser)) == len(drawn_weights(data["attention"]["values"][L - 1], [0]))  # head 0 alone
    hrefs = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-view=model] g.thumb image'))"
        ".map(i => i.getAttribute('href'))"
    )
    assert len(hrefs) == L * N and all(h.startswith("data:image/png;base64,") for h in hrefs)
    assert png_size(base64.b64decode(hrefs[0].split(",", 1)[1])) == (S, S)  # one pixel per query and key
    assert len(browser.find_elements("css selector", "[data-view=neuron] g.key-row")) == S
    names = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-view=trace] g.trace-row')).map(g => g.dataset.name)"
    )
    assert names == list(trace)
    assert min(counts.values()) > 50, counts
    assert severe(browser) == []


def test_clicking_a_model_view_thumbnail_opens_that_head_in_the_head_view(browser, page16):
    path, data, _ = page16
    open_page(browser, path, "model")
    before = lines(browser)
    browser.find_element("css selector", '[data-view=model] g.thumb[data-layer="2"][data-head="7"] image').click()
    head = browser.find_element("css selector", '[data-view="head"]')
    assert head.is_displayed() and not browser.find_element("css selector", '[data-view="model"]').is_displayed()
    svg = head.find_element("css selector", "svg.fig")
    assert (svg.get_attribute("data-layer"), svg.get_attribute("data-heads")) == ("2", "7")
    assert head.find_element("css selector", "select[data-control=layer]").get_attribute("value") == "2"
    after = lines(browser)
    assert after != before
    probs = data["attention"]["values"][2]  # [N, S, S], float32, exactly the trace's
    assert {(d["q"], d["k"], d["h"]) for d in after} == drawn_weights(probs, [7])
    assert all(d["w"] == float(f"{probs[7, d['q'], d['k']]:.3f}") for d in after)  # opacity = weight


def test_hovering_a_token_isolates_its_lines_and_leaving_brings_them_back(browser, page16):
    from selenium.webdriver import ActionChains

    path, data, _ = page16
    open_page(browser, path)
    browser.find_element("css selector", "[data-view=head] [data-control=all-heads]").click()
    probs = data["attention"]["values"][5]  # the last layer (the default), all heads
    everything = lines(browser)
    assert len(everything) == len(drawn_weights(probs, range(12)))
    token = browser.find_element("css selector", '[data-view=head] text[data-side="query"][data-token="4"]')
    ActionChains(browser).move_to_element(token).perform()
    isolated = lines(browser)
    assert {(d["q"], d["k"], d["h"]) for d in isolated} == drawn_weights(probs, range(12), query=4)
    assert len(isolated) < len(everything)
    info = browser.find_element("css selector", "[data-view=head] svg.fig [data-role=info]").text
    assert info.startswith("“poole” (4) attends most to: ")
    key = browser.find_element("css selector", '[data-view=head] text[data-side="key"][data-token="0"]')
    ActionChains(browser).move_to_element(key).perform()
    assert {d["k"] for d in lines(browser)} == {0}  # what attends to [CLS]
    ActionChains(browser).move_to_element(browser.find_element("css selector", "h1")).perform()
    assert len(lines(browser)) == len(everything)


def test_the_pooler_views_numbers_are_the_reports(browser, page16):
    path, data, _ = page16
    open_page(browser, path, "pooler")
    report, pooler = data["explain"], data["pooler"]
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-view=pooler] [data-field][data-index]'))"
        ".map(t => [t.dataset.field, +t.dataset.index, t.textContent])"
    )
    assert {field for field, _, _ in cells} == {
        "h0",
        "pooler_dense",
        "pooler_activation",
        "pooler_output",
        "mean_pooling",
    }
    assert {index for _, index, _ in cells} == {0, 1, 2, 3, 4, 5, *pooler["top_h0_dims"]}
    for field, index, shown in cells:
        assert shown == js_fixed(report[field][index]), (field, index)

    def field(name):
        element = browser.find_element("css selector", f'[data-view=pooler] [data-field="{name}"]')
        return element.get_attribute("textContent")  # a long line is drawn as several <tspan>s

    assert field("cosine_h0_pooler_output") == js_fixed(report["cosine_h0_pooler_output"]) == "-0.0888"
    assert field("cosine_h0_mean_pooling") == js_fixed(report["cosine_h0_mean_pooling"])
    assert field("cosine_pooler_output_mean_pooling") == js_fixed(pooler["cosine_pooler_output_mean_pooling"])
    assert field("saturated_count") == "0 of 384 dimensions saturate"
    assert field("max_abs_diff_by_hand").endswith("max |difference| = 0 (reproduced)")
    assert field("pooling_config").startswith("1_Pooling/config.json: pooling_mode_cls_token: false, ")
    assert "pooling_mode_mean_tokens: true" in field("pooling_config")
    assert field("modules") == "modules.json: Transformer, Pooling, Normalize"
    norms = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-view=pooler] [data-field=norm]'))"
        ".map(t => [t.dataset.vector, t.textContent])"
    )
    assert dict(norms) == {name: f"norm {js_fixed(value)}" for name, value in pooler["norms"].items()}
    assert dict(norms)["h0"] == "norm 7.5808"  # the README's number


def test_the_neuron_view_recomputes_the_traces_scores_and_softmax(browser, page16):
    path, data, trace = page16
    open_page(browser, path)
    # In the head view: layer 1, head 3 alone, then a click on "different" (query 7) on the left.
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("css selector", "[data-view=head] select[data-control=layer]")).select_by_value("1")
    browser.find_element("css selector", "[data-view=head] [data-control=no-heads]").click()
    browser.find_element("css selector", '[data-view=head] [data-control=heads] button[data-head="3"]').click()
    browser.find_element("css selector", '[data-view=head] text[data-side="query"][data-token="7"]').click()
    neuron = browser.find_element("css selector", '[data-view="neuron"]')
    assert neuron.is_displayed()
    svg = neuron.find_element("css selector", "svg.fig")
    assert [svg.get_attribute(a) for a in ("data-layer", "data-head", "data-query")] == ["1", "3", "7"]

    def column(name):
        return [float(t.text) for t in neuron.find_elements("css selector", f'text[data-field="{name}"]')]

    scores = trace["encoder.layer.1.attention.self.scores"][0, 3, 7]  # [S]: q·k/√D + mask, as the trace holds it
    probs = trace["encoder.layer.1.attention.self.probs"][0, 3, 7]
    np.testing.assert_allclose(column("score"), scores, atol=5e-4 + 1e-6)  # shown to 3 decimals
    np.testing.assert_allclose(column("softmax"), probs, atol=5e-5 + 1e-6)  # shown to 4 decimals
    np.testing.assert_allclose(column("trace"), probs, atol=5e-5 + 1e-7)
    assert column("mask") == [0.0] * len(probs)
    agreement = neuron.find_element("css selector", '[data-field="agreement"]').get_attribute("textContent")
    assert float(agreement.split("= ")[1].split(" ")[0]) < 1e-6  # float64 here against float32 there
    screenshot(browser, neuron, "view-neuron-layer1-head3-query7.png")


def test_save_png_and_svg_give_real_images_of_the_view(browser, page16):
    path, _, _ = page16
    open_page(browser, path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for view in ("model", "pooler"):
        show(browser, view)
        svg = browser.find_element("css selector", f'[data-view="{view}"] svg.fig')
        width, height = (int(svg.get_attribute(a)) for a in ("width", "height"))
        export = "return minibert.exportView(arguments[0], arguments[1])"  # a Promise, awaited
        png = browser.execute_script(export, view, "png")
        assert png.startswith("data:image/png;base64,")
        data = base64.b64decode(png.split(",", 1)[1])
        assert png_size(data) == (2 * width, 2 * height)  # drawn at twice the size, for sharp prints
        assert len(data) > 20_000  # a drawing, not an empty canvas
        (ARTIFACTS / f"export-{view}.png").write_bytes(data)
        drawing = browser.execute_script(export, view, "svg")
        assert drawing.startswith("data:image/svg+xml;base64,")
        root = ET.fromstring(base64.b64decode(drawing.split(",", 1)[1]))
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and len(list(root.iter())) > 100
    assert severe(browser) == []


def test_a_512_token_page_loads_draws_and_says_what_it_kept(browser, minilm, tmp_path):
    _, model, tokenizer = minilm
    text = " ".join(["Each layer lets every token look at every other token, and the pooler reads the first."] * 40)
    explanation = minibert.explain(text, model, tokenizer)
    assert len(explanation.report["tokens"]) == 512  # truncated to the model's maximum, as transformers does
    path = explanation.save(tmp_path / "page512.html")
    severe(browser)
    milliseconds = open_page(browser, path)
    assert severe(browser) == []
    assert len(lines(browser)) > 512  # head 0 of the last layer, each query's largest weights
    cut, kept = (p.text for p in browser.find_elements("css selector", "#notes p"))
    total = int(tokenizer([text], truncation=False)["attention_mask"].sum())
    assert cut.startswith(f"512 of the text's {total} tokens ran: the text was cut to its first 512")
    assert kept.startswith(
        "512 tokens, so to keep the page small the head and model views draw each query's 16 largest"
    )
    for view in ("model", "neuron", "pooler", "trace"):
        show(browser, view)
    assert len(browser.find_elements("css selector", "[data-view=neuron] g.key-row")) == 64  # the 64 largest
    screenshot(browser, show(browser, "model"), "view-model-512-tokens.png")
    record = {"tokens": 512, "bytes": path.stat().st_size, "load_ms": milliseconds}
    (ARTIFACTS / "page512-load.json").write_text(json.dumps(record) + "\n", encoding="utf-8")


# ---- a long text (600 words, cut to 512 tokens), at 1,400 and 800 px wide ----


def test_a_long_texts_title_is_two_lines_and_the_whole_text_is_one_click_away(browser, long_page, page16, width):
    path, data, total = long_page
    open_page(browser, path)
    line = browser.execute_script("return parseFloat(getComputedStyle(document.querySelector('h1')).lineHeight)")
    assert box(browser, "h1")["height"] <= 2 * line + 1  # two lines, the rest under "…"
    assert browser.title == "minibert explain: " + short_title(LONG_TEXT)
    assert len(browser.title) <= len("minibert explain: ") + TITLE_CHARACTERS and browser.title.endswith("…")
    assert LONG_TEXT.startswith(browser.title.removeprefix("minibert explain: ").removesuffix("…"))
    whole = browser.find_element("css selector", "#whole-text")
    summary = whole.find_element("css selector", "summary")
    assert (
        summary.text == f"the whole text: {len(LONG_TEXT):,} characters, {total:,} tokens, of which the first 512 ran"
    )
    assert whole.get_attribute("open") is None
    summary.click()  # the one click
    assert whole.get_attribute("open") == "true"
    shown = whole.find_element("css selector", "p")
    assert shown.is_displayed() and shown.get_attribute("textContent") == LONG_TEXT
    last = whole.find_element("css selector", "p.cut").text
    assert last.startswith("The last words the model ran: “…") and f"the {total - 512:,} tokens after them" in last
    # A short text is its own title, whole, with nothing to open.
    open_page(browser, page16[0])
    assert browser.find_element("css selector", "h1").text == f"“{TEXT}”"
    assert not browser.find_element("css selector", "#whole-text").is_displayed()


def test_the_top_says_what_was_cut_and_what_the_views_keep_before_the_tabs(browser, long_page, width):
    path, data, total = long_page
    assert data["explain"]["num_truncated_tokens"] == total - 512 > 700
    open_page(browser, path)
    notes = [p.text for p in browser.find_elements("css selector", "header #notes p")]
    attention = data["attention"]
    assert notes == [
        f"512 of the text's {total:,} tokens ran: the text was cut to its first 512, so the last {total - 512:,} "
        "tokens are in no view.",
        "512 tokens, so to keep the page small the head and model views draw each query's 16 largest attention "
        f"weights of 512 (they hold {attention['mass_kept_mean']:.0%} of its attention on average, "
        f"{attention['mass_kept_min']:.0%} at least), each to within 0.004; the neuron view recomputes all 512 from "
        "queries and keys kept in float16. Up to 64 tokens the page holds every number in float32, as the trace does; "
        "the pooler and trace views are exact at any length.",
    ]
    tabs = box(browser, ".tabs")
    assert box(browser, "header #notes")["bottom"] < tabs["top"] < 0.7 * 1000  # on the first screen
    assert tabs["height"] < 50  # the tabs and the export buttons on one line
    screenshot(browser, browser.find_element("css selector", "body"), f"long-top-{width}px.png")


def test_clicking_a_tab_brings_its_view_into_sight(browser, long_page, width):
    path, _, _ = long_page
    open_page(browser, path)
    for start in ("top", "bottom"):
        for view in ("model", "neuron", "pooler", "trace", "head"):
            browser.execute_script("scrollTo(0, arguments[0] === 'top' ? 0 : document.body.scrollHeight)", start)
            browser.find_element("css selector", f'.tabs [data-tab="{view}"]').click()
            heading, figure = box(browser, f'[data-view="{view}"] h2'), box(browser, f'[data-view="{view}"] .figure')
            tabs = box(browser, ".tabs")
            assert tabs["bottom"] <= heading["top"] < figure["top"] < 1000 - 200, (start, view, heading, figure)


@pytest.mark.parametrize("which", ["short", "long"])
def test_every_figure_fits_the_page_and_no_text_is_cut_or_drawn_over_another(browser, page16, long_page, width, which):
    path = page16[0] if which == "short" else long_page[0]
    open_page(browser, path)
    for view in VIEWS:
        element = show(browser, view)
        assert layout_faults(browser, view) == [], (view, width)
        if view in ("neuron", "pooler"):
            screenshot(browser, element, f"view-{view}-{which}-{width}px.png")
    # The neuron view's caption is whole: one text, its lines inside the figure (the check above), every word there.
    caption = browser.find_element("css selector", '[data-view=neuron] [data-field="agreement"]')
    assert caption.get_attribute("textContent").endswith(("(float32 rounding)", "at reduced precision)"))


def test_the_trace_columns_dash_is_explained_where_it_shows(browser, long_page, page16, width):
    path, data, _ = long_page
    open_page(browser, path, "neuron")  # layer 5, head 0, query 0: the 64 keys with the largest weights
    kept = set(data["attention"]["indices"][5, 0, 0].tolist())  # the 16 keys whose weights the page holds
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-view=neuron] [data-field=trace]'))"
        ".map(t => [+t.dataset.key, t.firstChild.nodeValue, (t.querySelector('title') || {}).textContent || null])"
    )
    dashes = [key for key, shown, _ in cells if shown == "—"]
    assert len(cells) == 64 and dashes == [key for key, _, _ in cells if key not in kept] and len(dashes) >= 48
    assert all(
        tip == "not kept on this page: it holds each query's 16 largest of 512 weights"
        for _, shown, tip in cells
        if shown == "—"
    )
    note = browser.find_element("css selector", '[data-view=neuron] [data-field="not-kept"]').get_attribute(
        "textContent"
    )
    assert note.startswith(f"— in the trace column ({len(dashes)} of these 64 keys): a weight not kept on this page")
    assert layout_faults(browser, "neuron") == []
    # Where every weight is kept, no dash and no note.
    open_page(browser, page16[0], "neuron")
    assert browser.find_elements("css selector", '[data-view=neuron] [data-field="not-kept"]') == []


def test_the_short_page_opens_one_head_and_all_heads_are_one_click_away(browser, page16, width):
    path, data, _ = page16
    open_page(browser, path)
    svg = browser.find_element("css selector", "[data-view=head] svg.fig")
    probs = data["attention"]["values"][5]  # [N, S, S]: the last layer, the one the view opens
    assert svg.get_attribute("data-heads") == "0"
    assert {(d["q"], d["k"], d["h"]) for d in lines(browser)} == drawn_weights(probs, [0])
    screenshot(browser, show(browser, "head"), f"view-head-opening-{width}px.png")
    browser.find_element("css selector", "[data-view=head] [data-control=all-heads]").click()
    svg = browser.find_element("css selector", "[data-view=head] svg.fig")
    assert svg.get_attribute("data-heads") == ",".join(map(str, range(12)))
    assert {(d["q"], d["k"], d["h"]) for d in lines(browser)} == drawn_weights(probs, range(12))


def test_a_narrowed_window_redraws_every_view_to_its_new_width(browser, long_page):
    path, _, _ = long_page
    browser.set_window_size(1400, 1000)
    open_page(browser, path, "pooler")
    wide = browser.execute_script("return document.querySelector('[data-view=pooler] svg.fig').width.baseVal.value")
    try:
        browser.set_window_size(800, 1000)
        start = time.perf_counter()
        while (
            browser.execute_script("return document.querySelector('[data-view=pooler] svg.fig').width.baseVal.value")
            == wide
        ):
            assert time.perf_counter() - start < 10, "the pooler view was not redrawn after the window narrowed"
            time.sleep(0.05)
        for view in VIEWS:
            show(browser, view)
            assert layout_faults(browser, view) == [], view
        assert severe(browser) == []
    finally:
        browser.set_window_size(1280, 1000)
