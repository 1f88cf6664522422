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
