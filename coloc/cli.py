"""The command line: train any paper's configuration, list the recorded runs.

::

    python -m coloc train caml --dataset cars --data-root /data --epochs 10
    torchrun --nproc_per_node 4 -m coloc train caml --dataset cub --data-root /data
    python -m coloc runs

``train <paper>`` resolves the same configuration as the chapter's parameters cell
(:meth:`coloc.runs.RunConfig.profile`: the dataset's profile, then the options given),
trains it (or loads it, if recorded) and records it in the run store under the same
configuration hash, so the chapter opened afterwards with the same parameters renders
from it. The options are derived by jsonargparse from the typed fields of the paper's
config (:mod:`coloc.papers`): categorical fields become Literal choices, an unknown
option or value fails at once naming the allowed ones, and an option left out keeps
the profile's value. ``runs`` lists the run store.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from jsonargparse import ArgumentError as JsonArgumentError
from jsonargparse import ArgumentParser, Namespace

from coloc import distributed, papers
from coloc.data import DatasetError
from coloc.runs import CHECKPOINT_FILE, CONFIG_FILE, RESULTS_FILE, RunConfig
from coloc.runtime import RunFileError, jsonable, load_torch, read_json, read_results, results_root


def _option_type(cls: type[RunConfig], name: str, hint: Any) -> Any:
    """The jsonargparse type of a field: its allowed values as a Literal where the config
    lists them (``DATASETS``, ``CHOICES``), else its type hint; None (keep the profile's
    value) allowed for every field but ``dataset``."""
    allowed = cls.DATASETS if name == "dataset" else cls.CHOICES.get(name)
    if allowed is not None:
        values = tuple(v for v in allowed if v is not None)
        hint = Literal[values]  # type: ignore[valid-type]
    return hint if name == "dataset" else hint | None


def _default_text(cls: type[RunConfig], name: str) -> str:
    default = {f.name: f.default for f in dataclasses.fields(cls)}[name]
    cpu, paper = cls.CPU_PROFILE.get(name, default), cls.PAPER_PROFILE.get(name, default)
    if cpu == paper:
        return f"default {cpu!r}"
    return f"default: synthetic {cpu!r}, real datasets {paper!r}"


def paper_parser(paper: str) -> ArgumentParser:
    """The options of ``train <paper>``: one per field of its config class."""
    cls = papers.config_class(paper)
    hints = typing.get_type_hints(cls)
    parser = ArgumentParser(description=f"Train-or-load a {paper} run ({cls.__name__}); an "
                                        "option left out keeps the dataset profile's value.")
    for field in dataclasses.fields(cls):
        name = field.name
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        parser.add_argument(*flags, type=_option_type(cls, name, hints[name]),
                            default="synthetic" if name == "dataset" else None,
                            help=f"{name} ({_default_text(cls, name)})")
    parser.add_argument("--output_dir", "--output-dir", type=str | None, default=None,
                        help="run store (default: results/ of the checkout)")
    parser.add_argument("--force", type=bool, default=False,
                        help="delete a recorded run of this configuration and train again")
    return parser


def build_parser() -> ArgumentParser:
    """``coloc train <paper> ...`` and ``coloc runs``."""
    parser = ArgumentParser(prog="coloc", exit_on_error=False,
                            description="Train the papers' configurations; list runs.")
    commands = parser.add_subcommands(dest="command")
    train_parser = ArgumentParser(description="Train-or-load one paper's configuration.")
    commands.add_subcommand("train", train_parser, help="train-or-load a run")
    runs_parser = ArgumentParser(description="List the recorded runs.")
    runs_parser.add_argument("--output_dir", "--output-dir", type=str | None, default=None)
    commands.add_subcommand("runs", runs_parser, help="list the recorded runs")
    by_paper = train_parser.add_subcommands(dest="paper")
    for paper in papers.PAPERS:
        by_paper.add_subcommand(paper, paper_parser(paper), help=f"a {paper} run")
    return parser


def resolve(paper: str, options: dict[str, Any]) -> RunConfig:
    """The configuration of ``train <paper>`` with ``options`` (None: the profile's)."""
    cls = papers.config_class(paper)
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls.from_parameters({k: v for k, v in options.items() if k in fields})


def train(paper: str, options: dict[str, Any]) -> Any:
    """Train-or-load the run of ``options`` (every process of a torchrun launch)."""
    config = resolve(paper, options)
    return papers.module(paper).run(config, options.get("output_dir"),
                                    force=bool(options.get("force")))


def recorded_runs(output_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Every run folder of the store: paper, dataset, folder, status (``complete``,
    ``interrupted at epoch N/M``, ``started``), its configuration's differences from the
    dataset's profile, and its test metrics (means)."""
    rows = []
    for directory in sorted(results_root(output_dir).glob("*/*/*/")):
        paper, dataset = directory.parts[-3], directory.parts[-2]
        results, checkpoint = directory / RESULTS_FILE, directory / CHECKPOINT_FILE
        config_file = directory / CONFIG_FILE
        try:
            record = read_results(results) if results.is_file() else None
            if record is None and not config_file.is_file():
                continue  # not a run folder (e.g. a cached pretraining's)
            config = record["config"] if record else read_json(config_file)
            if record is not None:
                status = record.get("status", "complete")
            elif checkpoint.is_file():
                epoch = load_torch(checkpoint)["epoch"]
                status = f"interrupted at epoch {epoch + 1}/{config.get('epochs')}"
            else:
                status = "started, no epoch completed"
        except RunFileError as err:  # listed, not fatal: the message names file and remedy
            record, config, status = None, {}, f"damaged: {err}"
        rows.append({"paper": paper, "dataset": dataset, "run": directory.name,
                     "status": status, "changes": _changes(paper, dataset, config),
                     "metrics": _means(record["metrics"].get("test", {}) if record else {})})
    return rows


def _changes(paper: str, dataset: str, config: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``config`` that differ from the dataset's profile (or all of them
    when the paper is not in the registry)."""
    try:
        default = jsonable(papers.config_class(paper).profile(
            dataset, require_data=False).identity())
    except (ValueError, LookupError):
        return config
    return {k: v for k, v in config.items() if default.get(k) != v}


def _means(test: dict[str, Any]) -> dict[str, float]:
    """A test record's headline numbers: each metric's mean (or the number itself, e.g.
    a PxAP), leaving out the settings recorded beside them (``corloc_threshold``)."""
    means = {}
    for name, value in test.items():
        if isinstance(value, dict) and "mean" in value:
            means[name] = value["mean"]
        elif (isinstance(value, int | float) and not isinstance(value, bool)
              and not name.endswith("_threshold")):  # a number, not a setting
            means[name] = value
    return means


def format_runs(rows: Sequence[dict[str, Any]]) -> str:
    """One line per run: paper/dataset/folder, status, changes, metrics."""
    if not rows:
        return "no recorded runs"
    lines = []
    for row in rows:
        changes = ", ".join(f"{k}={v}" for k, v in row["changes"].items()) or "profile"
        metrics = ", ".join(f"{k} {v:.2f}" for k, v in row["metrics"].items()) or "-"
        lines.append(f"{row['paper']}/{row['dataset']}/{row['run']}  {row['status']}  "
                     f"[{changes}]  {metrics}")
    return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"coloc: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``coloc`` console script, ``python -m coloc``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args: Namespace = parser.parse_args(argv)
    except JsonArgumentError as err:
        message = str(err)
        paper = argv[1] if len(argv) > 1 and argv[0] == "train" else None
        if "unrecognized arguments" in message and paper in papers.PAPERS:
            names = [f.name for f in dataclasses.fields(papers.config_class(paper))]
            message += f"; allowed: {', '.join(names + ['output_dir', 'force'])}"
        return _fail(message)
    if args.command == "runs":
        print(format_runs(recorded_runs(args.runs.output_dir)))
        return 0
    paper = args.train.paper
    options = args.train[paper].as_dict()
    try:
        run = train(paper, options)
        if distributed.is_main():  # before teardown: afterwards every process is "rank 0"
            print(f"{run.directory}")
            print(", ".join(f"{k} {v:.2f}"
                            for k, v in _means(run.record["metrics"]["test"]).items()))
    except (ValueError, TypeError, DatasetError) as err:  # unknown values, missing data
        return _fail(str(err))
    finally:
        distributed.teardown()
    return 0
