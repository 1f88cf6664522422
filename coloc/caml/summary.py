"""CAML Tables 2 and 7 over every dataset with recorded runs (book/caml_summary).

Runs are looked up by configuration, so the tables fill in as runs on cub, cars,
aircraft and dogs complete; the synthetic benchmark's cells are trained when missing.
A cell without a run says "not run", and :func:`missing_runs` gives the command that
records it. A damaged or failed run folder does not stop the page: its cell says
"damaged" and :func:`damaged_runs` lists the folder, the problem and the remedy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from coloc.caml.config import CAML_DATASETS, PRETEXTS, CAMLConfig
from coloc.caml.method import find_run, run
from coloc.data.memory import SYNTHETIC
from coloc.reference import caml as reference
from coloc.reference.caml import DATASET_COLUMNS
from coloc.report import MEASURED, NOT_RUN, as_printed, differences, published
from coloc.runs import Run, RunFailedError
from coloc.runtime import RunFileError

SUMMARY_DATASETS = ("synthetic", *CAML_DATASETS)
"""The summary's default columns: the synthetic benchmark and CAML's four datasets."""
TABLE7_PRETEXTS = PRETEXTS[:6]
"""Table 7's six pretext tasks (:data:`coloc.caml.pretext.TRANSFORMS`)."""
SUMMARY_METHODS = ("Baseline", "CAML")
"""The two methods of Tables 2 and 7: the PsyNet-style baseline
(:meth:`coloc.CAMLConfig.baseline`, ``L_cls`` with CAAM) and the full method."""
_PUBLISHED_COLUMN = {"Baseline": "baseline", "CAML": "ours"}
_RUN_FIELDS = ("pretext", "use_cls", "use_caml", "pooling")  # what a run's name says

DAMAGED = "damaged"
"""A cell whose run folder is damaged or whose run failed (see :func:`damaged_runs`)."""

SummaryKey = tuple[str, str, str]
"""``(dataset, pretext, method)``, e.g. ``("cub", "rotation", "CAML")``."""


@dataclass(frozen=True)
class SummaryCell:
    """One measured cell of the summary tables: the configuration a chapter trains by
    default for a dataset, pretext task and method, and its recorded run (None: not run,
    or ``problem`` says why its folder could not be read)."""

    config: CAMLConfig
    run: Run | None
    problem: str | None = None

    @property
    def corloc(self) -> float | None:
        """Test CorLoc@0.5 (%) of the run, or None when not run."""
        return None if self.run is None else float(self.run.test.corloc["0.5"])

    @property
    def value(self) -> float | str:
        """The table cell: CorLoc@0.5 rounded to two decimals, "not run" or "damaged"."""
        if self.problem is not None:
            return DAMAGED
        return NOT_RUN if self.corloc is None else round(self.corloc, 2)


def summary_configs(datasets: Sequence[str] = SUMMARY_DATASETS,
                    pretexts: Sequence[str] = TABLE7_PRETEXTS,
                    **overrides: Any) -> dict[SummaryKey, CAMLConfig]:
    """The configuration of every measured cell, ``(dataset, pretext, method)`` -> config:
    the run a chapter trains by default (:func:`coloc.caml.profile` of the dataset with
    ``overrides``, e.g. ``seed``; no data needed) with ``pretext``, and its baseline."""
    configs = {}
    for dataset in datasets:
        default = CAMLConfig.profile(dataset, require_data=False, **overrides)
        for pretext in pretexts:
            ours = default.replace(pretext=pretext)
            configs[dataset, pretext, "Baseline"] = ours.baseline()
            configs[dataset, pretext, "CAML"] = ours
    return configs


def collect_summary(configs: Mapping[SummaryKey, CAMLConfig],
                    output_dir: str | Path | None = None,
                    train: Sequence[str] = SYNTHETIC) -> dict[SummaryKey, SummaryCell]:
    """The recorded run of every configuration under ``output_dir`` (default ``results/``).

    Datasets in ``train`` (default: the synthetic benchmarks, a minute per run on a CPU)
    are trained when missing (:func:`coloc.caml.run`), so the summary is complete and
    deterministic on its own; every other dataset is only looked up
    (:func:`coloc.caml.find_run`), never trained: its missing cells say "not run". A
    damaged run folder or a failed run is skipped, not fatal: its cell keeps the problem
    (:func:`damaged_runs`).
    """
    cells = {}
    for key, config in configs.items():
        try:
            found = run(config, output_dir) if config.dataset in train \
                else find_run(config, output_dir)
        except (RunFileError, RunFailedError) as err:
            cells[key] = SummaryCell(config, None, str(err))
            continue
        cells[key] = SummaryCell(config, found)
    return cells


def damaged_runs(cells: Mapping[SummaryKey, SummaryCell]) -> pd.DataFrame:
    """The cells whose run folder is damaged or whose run failed: the problem, which names
    the file and the remedy (delete the folder, or train again with ``force=True``)."""
    rows = [{"dataset": key[0], "pretext": key[1], "method": key[2], "problem": cell.problem}
            for key, cell in cells.items() if cell.problem is not None]
    return pd.DataFrame(rows, columns=["dataset", "pretext", "method", "problem"])


def _axis(cells: Mapping[SummaryKey, SummaryCell], position: int) -> list[str]:
    return list(dict.fromkeys(key[position] for key in cells))


def _backbone_label(cells: Sequence[SummaryCell]) -> str:
    """"vgg16_psynet", or "small_cnn (synthetic); vgg16_psynet (cub, cars)" when mixed."""
    by_backbone: dict[str, list[str]] = {}
    for cell in cells:
        datasets = by_backbone.setdefault(cell.config.backbone, [])
        if cell.config.dataset not in datasets:
            datasets.append(cell.config.dataset)
    if len(by_backbone) == 1:
        return next(iter(by_backbone))
    return "; ".join(f"{b} ({', '.join(ds)})" for b, ds in by_backbone.items())


def summary_table2(cells: Mapping[SummaryKey, SummaryCell],
                   pretext: str = "rotation") -> pd.DataFrame:
    """CAML Table 2 (CorLoc@0.5): the published rows over CAML's four datasets, then the
    measured baseline and CAML of ``pretext`` (rotation: the chapters' default run) for
    every dataset of ``cells`` (pass :func:`measured` cells to show only what was run).
    A dataset the paper does not have (synthetic) comes first; "-" is a cell without a
    number (published: the paper has none; measured: not a dataset of ``cells``).
    """
    datasets = _axis(cells, 0)
    frame = published(reference.table("table2"))
    descriptive = [c for c in frame.columns if c not in DATASET_COLUMNS]
    for dataset in datasets:
        if dataset not in frame.columns:
            frame[dataset] = None
    columns = [*(d for d in datasets if d not in DATASET_COLUMNS), *DATASET_COLUMNS]
    rows = []
    for method in SUMMARY_METHODS:
        chosen = {d: cells[d, pretext, method] for d in datasets}
        label = f"Baseline (PsyNet-style, {pretext})" if method == "Baseline" \
            else f"CAML ({pretext})"
        rows.append({"source": MEASURED, "backbone": _backbone_label(list(chosen.values())),
                     "method": label, **{d: cell.value for d, cell in chosen.items()}})
    frame = frame[descriptive + columns].astype(object)
    frame = frame.where(frame.notna(), "-")
    table = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True)
    return as_printed(table.where(table.notna(), "-"))


def published_corloc(pretext: str, dataset: str, method: str) -> float | None:
    """The published CorLoc@0.5 of ``method`` ("Baseline" or "CAML") with ``pretext`` on
    ``dataset``: CAML Table 7 (six tasks) or supplement Table 3 (R+S, S+T); None if the
    paper has no such number."""
    for key in ("table7", "supp_table3"):
        try:
            row = reference.table(key).row(task=pretext, dataset=dataset)
            return row[_PUBLISHED_COLUMN[method]]
        except KeyError:
            continue
    return None


def summary_table7(cells: Mapping[SummaryKey, SummaryCell]) -> pd.DataFrame:
    """CAML Table 7 (CorLoc@0.5, baseline vs. CAML per pretext task) over every dataset.

    Rows ``(pretext task, method)``; columns ``(dataset, "published")`` (CAML Table 7,
    "-" where the paper has no number) beside ``(dataset, "measured")`` (the number or
    "not run"). A dataset the paper does not have (synthetic) has only a measured column.
    """
    index = pd.MultiIndex.from_product([_axis(cells, 1), _axis(cells, 2)],
                                       names=["pretext task", "method"])
    columns: dict[tuple[str, str], list] = {}
    for dataset in _axis(cells, 0):
        if dataset in DATASET_COLUMNS:
            columns[dataset, "published"] = [
                _dash(published_corloc(p, dataset, m)) for p, m in index]
        columns[dataset, MEASURED] = [cells[dataset, p, m].value for p, m in index]
    return as_printed(pd.DataFrame(columns, index=index))


def _dash(value: float | None) -> float | str:
    return "-" if value is None else float(value)


def _gain(cells: Mapping[SummaryKey, SummaryCell], dataset: str, pretext: str
          ) -> float | None:
    baseline, ours = (cells[dataset, pretext, m].corloc for m in ("Baseline", "CAML"))
    return None if baseline is None or ours is None else ours - baseline


def _published_gain(dataset: str, pretext: str) -> float | None:
    baseline, ours = (published_corloc(pretext, dataset, m) for m in ("Baseline", "CAML"))
    return None if baseline is None or ours is None else ours - baseline


def figure_summary_gains(cells: Mapping[SummaryKey, SummaryCell], reference: str = "cub"
                         ) -> plt.Figure:
    """CAML's gain over the baseline in CorLoc@0.5 (points) per pretext task, one panel per
    dataset: published (hatched grey) beside measured (solid blue; "not run" in the title,
    or above a task, where runs are missing). A dataset the paper does not have shows the
    published gain on ``reference`` (CUB: the synthetic benchmark's birds mirror it),
    labelled as such."""
    datasets, pretexts = _axis(cells, 0), _axis(cells, 1)
    fig, axes = plt.subplots(1, len(datasets), figsize=(0.6 + 2.4 * len(datasets), 3.2),
                             sharey=True, squeeze=False)
    x, width = np.arange(len(pretexts)), 0.4
    for ax, dataset in zip(axes[0], datasets, strict=True):
        source = dataset if dataset in DATASET_COLUMNS else reference
        published = [_published_gain(source, p) for p in pretexts]
        measured = [_gain(cells, dataset, p) for p in pretexts]
        ax.bar(x - width / 2, [np.nan if v is None else v for v in published], width,
               color="0.85", edgecolor="0.35", hatch="///", linewidth=0.6,
               label="published (VGG16, real data)")
        ax.bar(x + width / 2, [np.nan if v is None else v for v in measured], width,
               color="tab:blue", label="measured")
        for i, value in enumerate(measured):
            if value is None and any(v is not None for v in measured):
                ax.text(x[i] + width / 2, 1, NOT_RUN, rotation=90, ha="center",
                        va="bottom", fontsize=7, color="0.3")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, pretexts, rotation=60, fontsize=8)
        note = f"published: {source}" if source != dataset else ""
        if all(value is None for value in measured):
            note = ", ".join(filter(None, [note, f"measured: {NOT_RUN}"]))
        ax.set_title(f"{dataset}\n({note})" if note else dataset, fontsize=9)
    axes[0, 0].set_ylabel("CAML - baseline,\nCorLoc@0.5 (points)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


def direction_sentence(cells: Mapping[SummaryKey, SummaryCell], dataset: str,
                       resolution: float, reference: str = "cub") -> str:
    """Per pretext task, is CAML above the baseline on ``dataset`` (measured) and in the
    paper (``dataset``, or ``reference`` for synthetic data), as one computed sentence.
    Gains under ``resolution`` points (from seed spread) count as "within".
    """
    pretexts = _axis(cells, 1)
    source = dataset if dataset in DATASET_COLUMNS else reference

    def count(gains: Mapping[str, float | None]) -> str:
        known = {p: g for p, g in gains.items() if g is not None}
        if not known:
            return NOT_RUN
        above = [p for p, g in known.items() if g >= resolution]
        below = [p for p, g in known.items() if g <= -resolution]
        within = len(known) - len(above) - len(below)
        parts = [f"CAML above the baseline on {len(above)} of {len(known)} pretext tasks"
                 + (f" ({', '.join(above)})" if above else "")]
        if within:
            parts.append(f"within {resolution:.1f} points on {within}")
        if below:
            parts.append(f"below on {len(below)} ({', '.join(below)})")
        return ", ".join(parts)

    measured = count({p: _gain(cells, dataset, p) for p in pretexts})
    published = count({p: _published_gain(source, p) for p in pretexts})
    return f"{dataset}: measured, {measured}; published ({source}), {published}."


def train_command(config: CAMLConfig, data_root: str = "DATA") -> str:
    """The command that records the run of ``config``: the chapter that trains it
    (book/caml_rotation for rotation, book/caml_pretext for the other tasks), with ``-p``
    for the dataset, ``data_root`` (real data) and every setting that differs from the
    dataset's profile."""
    chapter = "caml_rotation" if config.pretext == "rotation" else "caml_pretext"
    params: list[tuple[str, Any]] = [("dataset", config.dataset)]
    if config.dataset not in SYNTHETIC:
        params.append(("data_root", data_root))
    default = CAMLConfig.profile(config.dataset, require_data=False).replace(
        **{name: getattr(config, name) for name in _RUN_FIELDS})
    params += [(k, v) for k, v in differences(config.identity(), default.identity())
               if k != "pretraining"]
    options = " ".join(f"-p {k} {v}" for k, v in params)
    return f"papermill book/{chapter}.ipynb {chapter}-{config.dataset}.ipynb {options}"


def measured(cells: Mapping[SummaryKey, SummaryCell]) -> dict[SummaryKey, SummaryCell]:
    """The cells of the datasets with at least one recorded run: what the summary's
    tables and figure show."""
    shown = {key[0] for key, cell in cells.items() if cell.run is not None}
    return {key: cell for key, cell in cells.items() if key[0] in shown}


def missing_runs(cells: Mapping[SummaryKey, SummaryCell], data_root: str = "DATA"
                 ) -> pd.DataFrame:
    """The "not run" cells, one row per dataset: how many runs are missing and the
    commands that record them (:func:`train_command`, one per chapter)."""
    groups: dict[str, dict[str, int]] = {}
    for cell in cells.values():
        if cell.run is None and cell.problem is None:
            commands = groups.setdefault(cell.config.dataset, {})
            command = train_command(cell.config, data_root)
            commands[command] = commands.get(command, 0) + 1
    rows = [{"dataset": dataset, "runs missing": sum(commands.values()),
             "commands": " ; ".join(commands)} for dataset, commands in groups.items()]
    return pd.DataFrame(rows, columns=["dataset", "runs missing", "commands"])


def summary_status(cells: Mapping[SummaryKey, SummaryCell]) -> pd.DataFrame:
    """Recorded runs per dataset: of Table 2's two (rotation) and of all the summary's."""
    rows = []
    for dataset in _axis(cells, 0):
        mine = {k: c for k, c in cells.items() if k[0] == dataset}
        table2 = [c for k, c in mine.items() if k[1] == "rotation"]
        rows.append({
            "dataset": dataset,
            "Table 2 runs recorded": f"{sum(c.run is not None for c in table2)} of {len(table2)}",
            "Table 7 runs recorded": f"{sum(c.run is not None for c in mine.values())} of "
                                     f"{len(mine)}",
        })
    return pd.DataFrame(rows)
