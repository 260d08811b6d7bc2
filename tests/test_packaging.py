"""The distribution's name and version, and every install hint a user may copy: PyPI's `minibert` is another project
(a PyTorch BERT), so a hint naming it would install that over this one (issue 25)."""

import re
import shlex

import tomllib
from support.helpers import ROOT

import minibert

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
DISTRIBUTION = PYPROJECT["project"]["name"]
EXTRAS = set(PYPROJECT["project"]["optional-dependencies"])

# What a user reads and copies: the package's own messages and docstrings, and the documents that tell them how to
# install it.
SOURCES = sorted(
    [*(ROOT / "minibert").rglob("*.py"), *(ROOT / "docs").glob("*.ipynb")]
    + [ROOT / name for name in ("README.md", "CONTRIBUTING.md", "benchmarks/README.md")]
)
# An install command runs up to the end of its shell command: a separator, a comment, or the end of the quoted text.
PIP_INSTALL = re.compile(r"pip install ([^\n`\"#;|&)]*)")
SELF_WITH_EXTRAS = re.compile(r"(?<![\w.-])(minibert[\w.-]*)\[([^\]]*)\]")  # minibert[...] or minibert-xyz[...]


def install_hints() -> list[tuple[str, str]]:
    """(file, the text after `pip install`) of every install command in SOURCES."""
    return [
        (path.relative_to(ROOT).as_posix(), match.group(1).strip())
        for path in SOURCES
        for match in PIP_INSTALL.finditer(path.read_text(encoding="utf-8"))
    ]


def requirements(arguments: str) -> list[str]:
    """The requirements of a `pip install` command's arguments: options dropped, `-e X` kept as X."""
    words = shlex.split(arguments)
    return [word for word in words if not word.startswith("-")]


def test_the_distribution_is_not_pypis_unrelated_minibert_and_its_extras_name_it():
    assert DISTRIBUTION == "minibert-numpy"
    for extra, needs in PYPROJECT["project"]["optional-dependencies"].items():
        for need in needs:
            match = re.match(r"(minibert[\w.-]*)\[", need)
            assert match is None or match.group(1) == DISTRIBUTION, f"extra {extra!r} needs {need!r}"
    assert PYPROJECT["project"]["scripts"] == {"minibert": "minibert.cli:main"}  # the command keeps its name


def test_every_install_hint_names_the_distribution_or_the_clone_and_existing_extras():
    hints = install_hints()
    assert len(hints) >= 8, hints  # the README, CONTRIBUTING, the benchmarks and the package's own messages
    for where, arguments in hints:
        for requirement in requirements(arguments):
            name, _, extras = requirement.partition("[")
            extras = {e.strip() for e in extras.rstrip("]").split(",") if e.strip()}
            assert name != "minibert", f"{where}: pip install {arguments} installs PyPI's unrelated minibert"
            if name in (".", DISTRIBUTION):
                assert extras <= EXTRAS, f"{where}: pip install {arguments}: no extra {sorted(extras - EXTRAS)}"


def test_every_mention_of_the_package_with_extras_names_the_distribution_and_existing_extras():
    for path in SOURCES:
        for name, extras in SELF_WITH_EXTRAS.findall(path.read_text(encoding="utf-8")):
            where = f"{path.relative_to(ROOT)}: {name}[{extras}]"
            assert name == DISTRIBUTION, where
            assert {e.strip() for e in extras.split(",")} <= EXTRAS, where


def test_a_hint_that_would_install_another_project_is_caught():
    """The check itself, on the hints the issue found."""
    for bad in ("'minibert[cluster]'", "-U 'minibert[plot]'", "minibert"):
        (requirement,) = requirements(bad)
        assert requirement.partition("[")[0] == "minibert"
    assert SELF_WITH_EXTRAS.findall("pip install 'minibert[cluster]'") == [("minibert", "cluster")]


def test_the_readme_test_command_is_the_last_line_of_ci_run():
    ci_last_line = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    venv = r"^python3 -m venv \.venv && \. \.venv/bin/activate && "
    (command,) = re.findall(venv + r"(pip install torch.*)$", readme, re.M)
    assert command == ci_last_line


def test_version_is_written_once_in_minibert_and_is_what_the_built_metadata_says():
    from setuptools.config.pyprojecttoml import read_configuration

    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", minibert.__version__)
    expanded = read_configuration(ROOT / "pyproject.toml", expand=True)  # what a build writes into the metadata
    assert expanded["project"]["version"] == minibert.__version__
