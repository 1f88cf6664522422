"""Tables and figures of the CAML chapters, built from runs (:mod:`coloc.caml`).

Tables set measured rows beside the published ones (:mod:`coloc.reference`); a measured
cell this run could not fill says "not run" and why. Figures are drawn from real
tensors of the runs: inputs, transformed inputs, attention maps, masks and boxes, in
the book's one plotting style (:mod:`coloc.plots`: GT boxes red, predictions green).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from coloc.boxes import boxes_from_scoremap
from coloc.caml import Evaluation, Run, attention_maps, upsample_maps
from coloc.data import collate_samples
from coloc.plots import grid, show_map
from coloc.reference import CORLOC_COLUMNS, DATASET_COLUMNS, caml_table

MEASURED = "measured"
NOT_RUN_DATASET = "not run: other dataset"
"""A measured cell of another dataset: a notebook run trains one dataset; the summary
chapter gathers every dataset's recorded runs."""


def _published(key: str) -> pd.DataFrame:
    table = caml_table(key)
    frame = table.frame()
    frame.insert(0, "source", f"published ({table.source.split(', ')[-1]})")
    return frame


def _as_printed(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers with two decimals, as the paper prints them, in columns that mix numbers
    and words ("-", "not run: ...")."""
    return frame.apply(lambda column: column.map(
        lambda v: f"{v:.2f}" if isinstance(v, float) else v))


def _round(values: Mapping[str, float]) -> dict[str, float]:
    return {k: round(float(v), 2) for k, v in values.items()}


def table2(runs: Mapping[str, Run], dataset: str) -> pd.DataFrame:
    """CAML Table 2 (CorLoc@0.5) with this run's baseline and CAML rows.

    ``runs``: ``{"Baseline": run, "CAML": run}`` (row label -> run). The measured value
    goes into the run's dataset column (a new column for the synthetic benchmark); the
    other datasets' cells say "not run: other dataset" and, unless the run used it, the
    SE-ResNet50 rows "not run: backbone is <backbone>".
    """
    frame = _published("table2")
    column = dataset
    if column not in frame.columns:
        frame[column] = "-"
    rows = []
    for label, result in runs.items():
        row = {"source": MEASURED, "backbone": result.config.backbone, "method": label}
        row.update({c: NOT_RUN_DATASET for c in DATASET_COLUMNS if c != column})
        row[column] = round(result.test.corloc["0.5"], 2)
        rows.append(row)
    backbone = next(iter(runs.values())).config.backbone
    if backbone != "seresnet50":
        for label in runs:
            rows.append({"source": MEASURED, "backbone": "SE-ResNet50", "method": label,
                         **{c: NOT_RUN_DATASET for c in DATASET_COLUMNS if c != column},
                         column: f"not run: backbone is {backbone}"})
    return _as_printed(pd.concat([frame, pd.DataFrame(rows)], ignore_index=True).fillna("-"))


def table1(runs: Mapping[str, Run], dataset: str) -> pd.DataFrame:
    """CAML Table 1 (MaxBoxAccV2 at IoU 0.3/0.5/0.7 and mean) with measured rows."""
    frame = _published("table1")
    frame.insert(1, "dataset", "cub")
    rows = [{"source": MEASURED, "dataset": dataset, "method": label,
             "supervision": "none", **_round(result.test.max_box_acc_v2)}
            for label, result in runs.items()]
    return _as_printed(pd.concat([frame, pd.DataFrame(rows)], ignore_index=True).fillna("-"))


def corloc_beside(key: str, runs: Mapping[str, Run | None], match: str = "method",
                  why: str = "not run") -> pd.DataFrame:
    """A CorLoc table (Tables 3-6, supplement 1-2): published IoU columns beside the
    measured ones, row by row. ``runs`` maps the published row's ``match`` value to the
    run that measures it (None: "not run", with ``why``)."""
    published = caml_table(key).frame()
    dataset = next((r.config.dataset for r in runs.values() if r is not None), "-")
    measured = []
    for value in published[match]:
        result = runs.get(value)
        measured.append(_round(result.test.corloc) if result is not None
                        else dict.fromkeys(CORLOC_COLUMNS, why))
    described = published.drop(columns=list(CORLOC_COLUMNS))
    described.columns = pd.MultiIndex.from_product([[""], described.columns])
    left = published[list(CORLOC_COLUMNS)]
    left.columns = pd.MultiIndex.from_product([["published (CUB)"], CORLOC_COLUMNS])
    right = pd.DataFrame(measured, columns=list(CORLOC_COLUMNS))
    right.columns = pd.MultiIndex.from_product([[f"measured ({dataset})"], CORLOC_COLUMNS])
    return pd.concat([described, left, right], axis=1)


def run_summary(runs: Mapping[str, Run]) -> pd.DataFrame:
    """One line per run: CorLoc, MaxBoxAccV2 mean, last-epoch losses, hinge activity."""
    rows = []
    for label, result in runs.items():
        losses = result.curves["epoch_losses"]
        rows.append({
            "run": label, "folder": result.directory.name,
            **{f"CorLoc@{k}": round(v, 2) for k, v in result.test.corloc.items()},
            "MaxBoxAccV2 mean": round(result.test.max_box_acc_v2["mean"], 2),
            "L_cls (last epoch)": round(losses["cls"][-1], 3) if "cls" in losses else "-",
            "L_caml (last epoch)": round(losses["caml"][-1], 3) if "caml" in losses else "-",
            "hinge open (last epoch)": round(losses["hinge_active"][-1], 3)
            if "hinge_active" in losses else "-",
        })
    return pd.DataFrame(rows)


@torch.no_grad()
def map_statistics(models: Mapping[str, torch.nn.Module], dataset: Dataset, n: int = 200,
                   threshold: float = 0.2) -> pd.DataFrame:
    """Where the maps go, on the first ``n`` images of ``dataset``: the share of the
    map's mass outside the GT object mask, the share of the image above ``threshold``
    of the max (the CorLoc foreground) and, for scale, the object's share of the image.
    """
    batch = collate_samples([dataset[i] for i in range(min(n, len(dataset)))])
    foreground = batch["mask"] == 1
    rows = []
    for label, model in models.items():
        maps = attention_maps(model, batch["image"])
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


def _feature_map(ax: plt.Axes, values: torch.Tensor, title: str, vmax: float | None = None,
                 cmap: str = "jet") -> None:
    ax.imshow(values.numpy(), cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def figure_framework(views: Mapping[str, torch.Tensor], i: int = 0) -> plt.Figure:
    """CAML Figure 1: two views of one image and their attention maps."""
    fig, axes = grid(1, 4, size=2.2)
    vmax = float(max(views["A_ori"][i].max(), views["A_trans"][i].max()))
    show_map(axes[0, 0], views["image"][i], title="x (original view)")
    show_map(axes[0, 1], views["transformed"][i], title="T(x) (transformed view)")
    _feature_map(axes[0, 2], views["A_ori"][i], "A_ori", vmax)
    _feature_map(axes[0, 3], views["A_trans"][i], "A_trans", vmax)
    fig.tight_layout()
    return fig


def figure_pipeline(views: Mapping[str, torch.Tensor], i: int = 0,
                    distances: Mapping[str, float] | None = None) -> plt.Figure:
    """CAML Figure 3: both triplets of Eq. 4 as the loss sees them (feature resolution).

    Top row, original frame: x, positive ``A_ori``, anchor ``T^-1(A_trans)``, the
    background mask ``M_bg(A_ori)`` and the negative ``A_ori2bg``; bottom row, the same in
    the transformed frame.
    """
    fig, axes = grid(2, 5, size=2.0)
    vmax = float(max(views["A_ori"][i].max(), views["A_trans"][i].max()))
    d = distances or {}
    show_map(axes[0, 0], views["image"][i], title="x")
    _feature_map(axes[0, 1], views["A_ori"][i], "positive: A_ori", vmax)
    _feature_map(axes[0, 2], views["A_trans2ori"][i],
                 "anchor: T^-1(A_trans)" + d.get("ori", ""), vmax)
    _feature_map(axes[0, 3], views["M_bg_ori"][i].float(), "M_bg(A_ori)", 1.0, "gray")
    _feature_map(axes[0, 4], views["A_ori2bg"][i], "negative: A_ori2bg", vmax)
    show_map(axes[1, 0], views["transformed"][i], title="T(x)")
    _feature_map(axes[1, 1], views["A_trans"][i], "positive: A_trans", vmax)
    _feature_map(axes[1, 2], views["A_ori2trans"][i],
                 "anchor: T(A_ori)" + d.get("trans", ""), vmax)
    _feature_map(axes[1, 3], views["M_bg_trans"][i].float(), "M_bg(A_trans)", 1.0, "gray")
    _feature_map(axes[1, 4], views["A_trans2bg"][i], "negative: A_trans2bg", vmax)
    fig.tight_layout()
    return fig


@torch.no_grad()
def figure_maps(runs: Mapping[str, Run], dataset: Dataset, indices: Sequence[int],
                size: float = 1.9) -> plt.Figure:
    """CAML Figures 2 and 7: each method's map on the same images, GT boxes red and the
    CorLoc box (largest contour at 0.2 of the max) green, IoU in the title."""
    batch = collate_samples([dataset[i] for i in indices])
    fig, axes = grid(len(runs), len(indices), size=size)
    for row, (label, result) in enumerate(runs.items()):
        maps = attention_maps(result.model(), batch["image"])
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


def figure_losses(runs: Mapping[str, Run], window: int = 10) -> plt.Figure:
    """CAML Figure 5a: L_cls and L_caml per training step (moving average of
    ``window`` steps) for each run that has them."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for label, result in runs.items():
        for term, style in (("cls", "-"), ("caml", "--")):
            values = result.curves["step_losses"].get(term)
            if values:
                ax.plot(_smooth(values, window), style, label=f"{label}: L_{term}")
    ax.set_xlabel(f"training step (moving average of {window})")
    ax.set_ylabel("loss")
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


def figure_hinge(runs: Mapping[str, Run]) -> plt.Figure:
    """Share of CAML triplets whose hinge is open (that send a gradient), per epoch."""
    fig, ax = plt.subplots(figsize=(5, 2.8))
    for label, result in runs.items():
        values = result.curves["epoch_losses"].get("hinge_active")
        if values:
            ax.plot(range(1, len(values) + 1), values, "o-", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("triplets with an open hinge")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def verdict(baseline: Run, method: Run, metric: str = "0.5", resolution: float = 3.0
            ) -> str:
    """One sentence on whether ``method`` beats ``baseline`` in test CorLoc@``metric``,
    from the measured numbers: differences under ``resolution`` points are reported as
    no clear difference (a single seed does not resolve them)."""
    b, m = baseline.test.corloc[metric], method.test.corloc[metric]
    delta = m - b
    if abs(delta) < resolution:
        outcome = (f"no clear difference: {delta:+.1f} points, below the {resolution:.0f} "
                   "points one seed can resolve")
    elif delta > 0:
        outcome = f"CAML beats the baseline by {delta:.1f} points"
    else:
        outcome = f"CAML is {-delta:.1f} points below the baseline"
    return f"CorLoc@{metric}: baseline {b:.1f} %, CAML {m:.1f} %; {outcome}."


def smearing_sentence(stats: pd.DataFrame) -> str:
    """What rotation training did to the maps, from :func:`map_statistics` rows
    (stand-in weights first, then the trained models), as one computed sentence."""
    first, rest = stats.iloc[0], stats.iloc[1:]
    moves = ", ".join(f"{r['maps of']} {r['CorLoc@0.5 (%)']:.1f} %" for _, r in rest.iterrows())
    areas = ", ".join(f"{r['image above 0.2 of max (%)']:.1f} %" for _, r in rest.iterrows())
    return (f"Rotation training took CorLoc@0.5 from {first['CorLoc@0.5 (%)']:.1f} % "
            f"(stand-in weights) to {moves}; the share of the image above the CorLoc "
            f"threshold went from {first['image above 0.2 of max (%)']:.1f} % to {areas} "
            f"(the object covers {first['object share of image (%)']:.1f} %).")


def ranking_sentence(runs: Mapping[str, Run], metric: str = "0.5") -> str:
    """The runs ordered by test CorLoc@``metric``, best first, as one computed sentence
    (the paper's Table 3 puts the full method first)."""
    order = sorted(runs.items(), key=lambda item: -item[1].test.corloc[metric])
    ranked = ", ".join(f"{label} {result.test.corloc[metric]:.1f} %" for label, result in order)
    return f"CorLoc@{metric}, best first: {ranked}."
