"""docs/pooled_output.ipynb runs top to bottom in a fresh kernel of this interpreter (nbclient, the `notebook` extra),
every `assert` in it holds, and it is committed without outputs."""

import json
import sys

import nbformat
import pytest
from support.helpers import ROOT, minilm_dir

NOTEBOOK = ROOT / "docs" / "pooled_output.ipynb"
CELL_SECONDS = 300  # per cell, a bound for a loaded machine; the whole notebook takes seconds


def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 9
    assert [(cell.outputs, cell.execution_count) for cell in code] == [([], None)] * len(code)


@pytest.fixture
def venv_kernel(tmp_path, monkeypatch):
    """A kernel spec that starts ipykernel with this very interpreter (the venv's python), found through
    JUPYTER_PATH; a 'python3' spec elsewhere on the machine could point at another Python."""
    spec = tmp_path / "kernels" / "minibert-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "minibert tests", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    return "minibert-test"


def test_the_notebook_runs_top_to_bottom_in_a_fresh_kernel(venv_kernel):
    from nbclient import NotebookClient

    minilm_dir()  # the real checkpoint, checked, before the kernel starts
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))  # which Python ran it
    client = NotebookClient(
        notebook,
        kernel_name=venv_kernel,
        timeout=CELL_SECONDS,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},  # run in docs/, beside compare_pooling.py
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails (its asserts included)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert code[-1].outputs[0]["text"].strip() == sys.executable
    shown = code[-2].outputs  # the explainer, displayed inline as the last expression of its cell
    (html,) = [output["data"]["text/html"] for output in shown if output["output_type"] == "execute_result"]
    assert html.startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;') and "minibert-report" in html
    printed = "".join(output.get("text", "") for cell in code for output in cell.outputs)
    assert "max |tanh(W h0 + b) - pooler_output| = 0.0" in printed
    assert "cosine(h0, pooled) = -0.0888" in printed
