"""Root pytest configuration.

Notebook kernels started by nbval inherit this process's environment: progress bars are
switched off there (their refresh count depends on timing, so nbval could never match
them). Each notebook fixes torch's thread count itself (coloc.run.seed_everything).
"""

import os

os.environ["COLOC_PROGRESS"] = "0"


_notebook_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Add up each notebook's cell times (nbval makes one test item per cell)."""
    notebook = report.location[0]
    if report.when == "call" and notebook.endswith(".ipynb"):
        _notebook_seconds[notebook] = _notebook_seconds.get(notebook, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """Print each notebook's wall time, so a chapter's nbval budget is a number."""
    if _notebook_seconds:
        terminalreporter.section("notebook wall time (nbval)")
        for notebook, seconds in sorted(_notebook_seconds.items()):
            terminalreporter.write_line(f"{notebook}: {seconds / 60:.1f} min")
        total = sum(_notebook_seconds.values())
        terminalreporter.write_line(f"all notebooks: {total / 60:.1f} min")
