"""pyproject.toml and environment.yml must name the same dependencies with the same ranges."""

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += [line for line in extra if not line.startswith("coloc[")]
    return {Requirement(line).name.lower(): str(Requirement(line).specifier) for line in lines}


def environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lists = [item["pip"] for item in env["dependencies"] if isinstance(item, dict)]
    assert len(pip_lists) == 1, "environment.yml should have exactly one pip: section"
    return {Requirement(line).name.lower(): str(Requirement(line).specifier)
            for line in pip_lists[0]}


def test_environment_yml_matches_pyproject():
    assert environment_requirements() == pyproject_requirements()


def test_ranges_admit_the_torch_builds_on_local_disk():
    requirements = pyproject_requirements()
    assert Requirement("torch" + requirements["torch"]).specifier.contains("2.14.1")
    assert Requirement("torchvision" + requirements["torchvision"]).specifier.contains("0.29.1")


def test_book_and_test_tools_are_declared():
    names = set(pyproject_requirements())
    needed = {"torch", "torchvision", "jupyterlab", "jupytext", "papermill", "matplotlib",
              "seaborn", "opencv-python-headless", "nbval", "jupyter-book", "ipykernel", "tqdm"}
    assert needed <= names, f"missing: {sorted(needed - names)}"
