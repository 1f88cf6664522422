"""The report kit every chapter builds its tables, figures and sentences with.

Published beside measured (:func:`published`, :func:`corloc_beside`, :func:`as_printed`),
maps of recorded runs (:func:`figure_maps`, :func:`figure_maps_over_training`), training
curves (:func:`figure_losses`, :func:`figure_validation`), where maps put their mass
(:func:`map_statistics`), computed sentences (:func:`verdict`, :func:`ranking_sentence`)
and every recorded run of a paper that a summary does not show (:func:`other_runs`).
Everything here works on :class:`coloc.runs.Run` and the score-map contract of
:mod:`coloc.maps`, so it serves every paper; a paper's own tables and figures are in its
folder (e.g. :mod:`coloc.caml.report`). One plotting style: :mod:`coloc.plots`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from coloc.boxes import boxes_from_scoremap
from coloc.data import collate_samples
from coloc.evaluate import Evaluation
from coloc.maps import ScoreMaps, upsample_maps
from coloc.plots import grid, show_map
from coloc.reference import CORLOC_COLUMNS, Table
from coloc.runs import RESULTS_FILE, Run
from coloc.runtime import read_results, results_root

MEASURED = "measured"
NOT_RUN = "not run"


def published(table: Table) -> pd.DataFrame:
    """A published table's rows with a first column naming the source ("published
    (Table 3)")."""
    frame = table.frame()
    frame.insert(0, "source", f"published ({table.source.split(', ')[-1]})")
    return frame


def as_printed(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers with two decimals, as the papers print them, in columns that mix numbers
    and words ("-", "not run: ...")."""
    return frame.apply(lambda column: column.map(
        lambda v: f"{v:.2f}" if isinstance(v, float) else v))


def rounded(values: Mapping[str, float]) -> dict[str, float]:
    """``values`` rounded to two decimals (as floats)."""
    return {k: round(float(v), 2) for k, v in values.items()}


def corloc_beside(table: Table, runs: Mapping[str, Run | Evaluation | None],
                  match: str = "method", why: str = "not run", published_on: str = "CUB"
                  ) -> pd.DataFrame:
    """A CorLoc table (e.g. CAML Tables 3-6): the published IoU columns (measured on
    ``published_on``) beside the measured ones, row by row. ``runs`` maps the published
    row's ``match`` value to the run (or a test :class:`Evaluation` of one) that
    measures it; missing or None: "not run", with ``why``."""
    frame = table.frame()
    dataset = next((r.config.dataset for r in runs.values() if isinstance(r, Run)), "-")
    measured = []
    for value in frame[match]:
        result = runs.get(value)
        if isinstance(result, Run):
            result = result.test
        measured.append(rounded(result.corloc) if result is not None
                        else dict.fromkeys(CORLOC_COLUMNS, why))
    described = frame.drop(columns=list(CORLOC_COLUMNS))
    described.columns = pd.MultiIndex.from_product([[""], described.columns])
    left = frame[list(CORLOC_COLUMNS)]
    left.columns = pd.MultiIndex.from_product([[f"published ({published_on})"],
                                               CORLOC_COLUMNS])
    right = pd.DataFrame(measured, columns=list(CORLOC_COLUMNS))
    right.columns = pd.MultiIndex.from_product([[f"measured ({dataset})"], CORLOC_COLUMNS])
    return pd.concat([described, left, right], axis=1)


@torch.no_grad()
def map_statistics(score_maps: ScoreMaps, models: Mapping[str, torch.nn.Module],
                   dataset: Dataset, n: int = 200, threshold: float = 0.2) -> pd.DataFrame:
    """Where the maps go, on the first ``n`` images of ``dataset``: the share of the
    map's mass outside the GT object mask, the share of the image above ``threshold``
    of the max (the CorLoc foreground) and, for scale, the object's share of the image.
    """
    batch = collate_samples([dataset[i] for i in range(min(n, len(dataset)))])
    foreground = batch["mask"] == 1
    rows = []
    for label, model in models.items():
        maps = score_maps(model.eval(), batch)
        rows.append({
            "maps of": label,
            "mass outside the object (%)": round(100 * float((maps * ~foreground).sum()
                                                             / maps.sum()), 1),
            "image above 0.2 of max (%)": round(100 * float((maps > threshold).float().mean()),
                                                1),
            "object share of image (%)": round(100 * float(foreground.float().mean()), 1),
        })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- figures


def feature_map(ax: plt.Axes, values: torch.Tensor, title: str, vmax: float | None = None,
                 cmap: str = "jet") -> None:
    ax.imshow(values.numpy(), cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])



@torch.no_grad()
def figure_maps(runs: Mapping[str, Run], dataset: Dataset, indices: Sequence[int],
                size: float = 1.9) -> plt.Figure:
    """CAML Figures 2 and 7: each method's map on the same images, GT boxes red and the
    CorLoc box (largest contour at 0.2 of the max) green, IoU in the title."""
    batch = collate_samples([dataset[i] for i in indices])
    fig, axes = grid(len(runs), len(indices), size=size)
    for row, (label, result) in enumerate(runs.items()):
        maps = result.score_maps(batch)
        evaluation = result.test
        for col, index in enumerate(indices):
            box = boxes_from_scoremap(maps[col], evaluation.threshold, rule=evaluation.rule)
            iou = _iou_of(evaluation, index)
            show_map(axes[row, col], batch["image"][col], maps[col], batch["boxes"][col], box,
                     title=f"{label}: IoU {iou:.2f}")
    fig.tight_layout()
    return fig


def _iou_of(evaluation: Evaluation, index: int) -> float:
    where = np.flatnonzero(evaluation.indices == index)
    return float(evaluation.ious[where[0]]) if len(where) else float("nan")


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")



def figure_losses(runs: Mapping[str, Run], terms: Sequence[str], window: int = 10
                  ) -> plt.Figure:
    """Loss ``terms`` (e.g. CAML's ``("cls", "caml")``, Figure 5a) per training step
    (moving average of ``window`` steps) for each run that logged them; the first term
    solid, the others dashed."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for label, result in runs.items():
        for term, style in zip(terms, ["-"] + ["--"] * (len(terms) - 1), strict=True):
            values = result.curves["step_losses"].get(term)
            if values:
                ax.plot(_smooth(values, window), style, label=f"{label}: L_{term}")
    ax.set_xlabel(f"training step (moving average of {window})")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_validation(runs: Mapping[str, Run], metric: str = "corloc@0.5") -> plt.Figure:
    """Validation ``metric`` after every epoch, one line per run: how the localization
    the test split reports (last epoch) developed while training."""
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    for label, result in runs.items():
        values = [epoch[metric] for epoch in result.curves["val"]]
        ax.plot(range(1, len(values) + 1), values, "o-", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {metric.replace('corloc', 'CorLoc')} (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_maps_over_training(runs: Mapping[str, Run], dataset: Dataset,
                              images: Sequence[int] = (0, 1)) -> plt.Figure:
    """CAML Figure 5b: the probe maps each run recorded before training and after
    every epoch, upsampled like the evaluation maps, over the probe images."""
    epochs = sorted(int(e) for e in next(iter(runs.values())).curves["probe_maps"])
    fig, axes = grid(len(runs) * len(images), len(epochs), size=1.5)
    for r, (label, result) in enumerate(runs.items()):
        probes = result.curves["probe_maps"]
        for k, image in enumerate(images):
            sample = dataset[image]
            for c, epoch in enumerate(epochs):
                raw = torch.tensor(probes[str(epoch)][image])[None]
                score = upsample_maps(raw, sample["image"].shape[-2:])[0]
                when = "init" if epoch < 0 else f"epoch {epoch + 1}"
                show_map(axes[r * len(images) + k, c], sample["image"], score,
                         title=f"{label}, {when}")
    fig.tight_layout()
    return fig


def worst_cases(result: Run, k: int = 8) -> np.ndarray:
    """Dataset indices of the ``k`` test images with the lowest CorLoc IoU (ties by
    index), the cases of CAML Figure 8."""
    evaluation = result.test
    order = np.lexsort((evaluation.indices, evaluation.ious))[:k]
    return evaluation.indices[order]


def box_size_ratio(result: Run, dataset: Dataset, indices: Sequence[int]) -> np.ndarray:
    """Area of the predicted CorLoc box over the area of the largest GT box, per image."""
    evaluation = result.test
    ratios = []
    for index in indices:
        box = evaluation.boxes[np.flatnonzero(evaluation.indices == index)[0]]
        gt = dataset[index]["boxes"].numpy()
        area = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
        gt_area = ((gt[:, 2] - gt[:, 0] + 1) * (gt[:, 3] - gt[:, 1] + 1)).max()
        ratios.append(area / gt_area)
    return np.asarray(ratios)


def first_batches(dataset: Dataset, n: int, batch_size: int) -> Iterator[dict[str, Any]]:
    """The first ``n`` samples of ``dataset`` (all if fewer), collated ``batch_size`` at
    a time, in order."""
    n = min(n, len(dataset))
    for start in range(0, n, batch_size):
        yield collate_samples([dataset[i] for i in range(start, min(n, start + batch_size))])



def verdict(baseline: Run, method: Run, metric: str = "0.5", resolution: float = 3.0,
            name: str = "the method") -> str:
    """One sentence on whether ``method`` (called ``name``) beats ``baseline`` in test
    CorLoc@``metric``, from the measured numbers: differences under ``resolution``
    points are reported as no clear difference (a single seed does not resolve them)."""
    b, m = baseline.test.corloc[metric], method.test.corloc[metric]
    delta = m - b
    if abs(delta) < resolution:
        outcome = (f"no clear difference: {delta:+.1f} points, below the {resolution:.0f} "
                   "points one seed can resolve")
    elif delta > 0:
        outcome = f"{name} beats the baseline by {delta:.1f} points"
    else:
        outcome = f"{name} is {-delta:.1f} points below the baseline"
    return f"CorLoc@{metric}: baseline {b:.1f} %, {name} {m:.1f} %; {outcome}."


def ranking_sentence(runs: Mapping[str, Run], metric: str = "0.5") -> str:
    """The runs ordered by test CorLoc@``metric``, best first, as one computed sentence
    (the paper's Table 3 puts the full method first)."""
    order = sorted(runs.items(), key=lambda item: -item[1].test.corloc[metric])
    ranked = ", ".join(f"{label} {result.test.corloc[metric]:.1f} %" for label, result in order)
    return f"CorLoc@{metric}, best first: {ranked}."



# ----------------------------------------------------------------------------- recorded runs


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def differences(recorded: Mapping[str, Any], default: Mapping[str, Any]
                ) -> list[tuple[str, Any]]:
    """``(field, recorded value)`` for every configuration field that differs (JSON-wise,
    so tuples equal lists), in ``default``'s order; a field one side lacks differs."""
    recorded, default = _plain(dict(recorded)), _plain(dict(default))
    keys = list(dict.fromkeys([*default, *recorded]))
    return [(k, recorded.get(k, "<absent>")) for k in keys
            if recorded.get(k, "<absent>") != default.get(k, "<absent>")]


def other_runs(paper: str, shown: Iterable[Run], describe: Callable[[Mapping[str, Any]], str],
               output_dir: str | Path | None = None) -> pd.DataFrame:
    """Every run folder under ``<output_dir>/<paper>`` that is not one of ``shown``.

    One row per folder: dataset, folder name (method, configuration hash),
    ``describe(record)`` (how its configuration differs from its dataset's default run)
    and test CorLoc@0.5; a folder without results says so (training, or interrupted).
    """
    shown_dirs = {r.directory.resolve() for r in shown}
    root = results_root(output_dir) / paper
    columns = ["dataset", "run", "differs from the default in", "CorLoc@0.5"]
    rows = []
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        if folder.resolve() in shown_dirs:
            continue
        path = folder / RESULTS_FILE
        if not path.is_file():
            rows.append([folder.parent.name, folder.name, "-",
                         "no results yet (training or interrupted)"])
            continue
        record = read_results(path)
        rows.append([folder.parent.name, folder.name, describe(record),
                     round(float(record["metrics"]["test"]["corloc"]["0.5"]), 2)])
    return pd.DataFrame(rows, columns=columns)
