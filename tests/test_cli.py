"""The command line (coloc.cli) and the paper registry (coloc.papers)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
import torch

from coloc import caml, cli, papers
from coloc.runs import RunConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--pretrained", "false", "--image_size", "32", "--train_samples", "16",
        "--val_samples", "4", "--test_samples", "5", "--epochs", "2", "--batch_size", "8"]


def test_every_registered_paper_has_its_config():
    for paper in papers.PAPERS:
        cls = papers.config_class(paper)
        assert issubclass(cls, RunConfig) and cls.PAPER == paper
        assert callable(papers.module(paper).run)
    with pytest.raises(ValueError, match="allowed: caml, cam"):
        papers.module("nope")


def test_help_lists_fields_defaults_and_allowed_values(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "caml", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(caml.CAMLConfig):
        assert f"--{field.name}" in text
    assert "epochs (default: synthetic 6, real datasets 80)" in text
    assert "'ptap', 'caam'" in text and "'cub', 'cars', 'aircraft', 'dogs'" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "caml", "--bogus", "1"], "allowed: dataset, data_root"),
    (["train", "caml", "--pooling", "max"], "Literal['ptap', 'caam']"),
    (["train", "caml", "--dataset", "imagenet"], "'synthetic'"),
    (["train", "caml", "--pretext", "spin"], "unknown pretext 'spin'; allowed: 'rotation'"),
    (["train", "caml", "--dataset", "cars", "--data-root", "/nonexistent"],
     "Stanford Cars: dataset directory not found"),
])
def test_unknown_fields_and_values_fail_at_once(capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_options_resolve_like_the_chapters_parameters():
    options = {"dataset": "synthetic", "epochs": 3, "milestones": (1,), "lr": None,
               "output_dir": "x", "force": False}
    assert cli.resolve("caml", options) == caml.from_parameters(
        {"dataset": "synthetic", "epochs": 3, "milestones": [1], "lr": None})


def test_a_cli_run_is_found_by_the_chapters_profile_and_listed(tmp_path, capsys):
    assert cli.main(["train", "caml", *TINY, "--output-dir", str(tmp_path)]) == 0
    directory = Path(capsys.readouterr().out.splitlines()[0])
    parameters = {"dataset": "synthetic", "pretrained": False, "image_size": 32,
                  "train_samples": 16, "val_samples": 4, "test_samples": 5, "epochs": 2,
                  "batch_size": 8, "lr": None, "device": None}  # a parameters cell
    found = caml.find_run(caml.from_parameters(parameters), tmp_path)
    assert found is not None and found.directory == directory

    # An interrupted run: its checkpoint says which epoch it completed.
    state = torch.load(directory / "checkpoint.pt", weights_only=True)
    (directory / "results.json").unlink()
    torch.save({**state, "epoch": 0}, directory / "checkpoint.pt")
    assert cli.main(["runs", "--output_dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "caml/synthetic/caml-rotation-" in listing
    assert "interrupted at epoch 1/2" in listing
    assert "epochs=2" in listing and "pretrained=False" in listing  # differences


def test_runs_lists_metrics_of_complete_runs(tmp_path, capsys):
    cli.main(["train", "cam", *TINY, "--output_dir", str(tmp_path)])
    capsys.readouterr()
    rows = cli.recorded_runs(tmp_path)
    assert [(r["paper"], r["status"]) for r in rows] == [("cam", "complete")]
    assert set(rows[0]["metrics"]) == {"corloc", "max_box_acc_v2"}
    assert rows[0]["changes"]["epochs"] == 2 and "lr" not in rows[0]["changes"]


def test_the_console_script_is_the_cli():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"coloc": "coloc.cli:main"}
