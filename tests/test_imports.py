"""The house's shape: imports of minibert modules run one way, with no circle, counting imports inside functions too
(which is where a circle hides). Third-party optional extras are not part of the graph."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from support.helpers import ROOT

PACKAGE = ROOT / "minibert"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def minibert_imports(path: Path):
    """(imported module, line, at the top of the file) for every import of a minibert module in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            targets = [f"{base}.{node.module}"] if node.module else [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import | ast.ImportFrom) and (getattr(node, "module", "") or "").startswith(
            "minibert"
        ):
            targets = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names if alias.name.startswith("minibert")]
        else:
            continue
        for target in targets:
            yield target, node.lineno, id(node) in top


def test_the_import_graph_of_minibert_has_no_circle():
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {
        name: {target if target in modules else target.rpartition(".")[0] for target, _, _ in minibert_imports(path)}
        - {name}
        for name, path in modules.items()
    }
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise AssertionError(f"an import circle: {' -> '.join(reversed(error.args[1]))}") from None
    assert set(order) >= set(modules)


def test_every_minibert_import_sits_at_the_top_of_its_file():
    """A minibert import inside a function hides a circle; the one honest lazy import is of an optional extra."""
    inside = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in PACKAGE.rglob("*.py")
        for target, line, at_top in minibert_imports(path)
        if not at_top
    ]
    assert inside == []


def test_model_py_names_no_thread_block_or_budget():
    """model.py is BERT alone: scheduling lives in attention.py, layer_parts.py, batch_threads.py and parallel.py, and
    the BertModel class that calls it on the cores (with its public `threads=`) in pretrained.py."""
    source = (PACKAGE / "model.py").read_text(encoding="utf-8")
    imported = {target for target, _, _ in minibert_imports(PACKAGE / "model.py")}
    assert not imported & {"minibert.parallel", "minibert.tuning", "minibert.batch_threads"}
    for word in ("thread", "block", "budget"):
        lines = [line for line in source.splitlines() if word in line.lower()]
        assert lines == [], f"model.py mentions {word!r}: {lines}"
