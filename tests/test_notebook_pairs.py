"""Every book/*.py (jupytext percent) must match its paired .ipynb cell for cell.

`jupytext --diff` exits 0 even when files differ (STYLE.md), so we compare here.
"""

from pathlib import Path

import jupytext
import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
SCRIPTS = sorted(BOOK.glob("*.py"))


def cells(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_every_notebook_has_a_script_and_back():
    notebooks = {p.stem for p in BOOK.glob("*.ipynb")}
    assert notebooks == {p.stem for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_matches_notebook(script: Path):
    notebook = script.with_suffix(".ipynb")
    assert notebook.exists(), f"{script.name} has no paired {notebook.name}"
    from_script = jupytext.read(script)
    from_notebook = jupytext.read(notebook)
    assert cells(from_script) == cells(from_notebook), (
        f"{script.name} and {notebook.name} differ: run `jupytext --sync {script}` "
        "and re-execute the notebook")
    assert from_notebook.metadata.get("kernelspec"), f"{notebook.name} needs a kernelspec"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_chapter_with_parameters_checks_them_in_its_next_cell(script: Path):
    """papermill only warns about a parameter the parameters cell lacks (e.g. ``-p epoch
    1``) and runs the full default: the cell after the parameters stops it instead."""
    notebook = jupytext.read(script)
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    if tagged:
        assert "check_parameters()" in notebook.cells[tagged[0] + 1].source, script.name
