"""Tables and figures of the CAML chapters, built from runs (:mod:`coloc.caml`).

Tables set measured rows beside the published ones (:mod:`coloc.reference`); a measured
cell this run could not fill says "not run" and why. Figures are drawn from real
tensors of the runs: inputs, transformed inputs, attention maps, masks and boxes, in
the book's one plotting style (:mod:`coloc.plots`: GT boxes red, predictions green).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from coloc import __version__, caml
from coloc.boxes import box_iou, boxes_from_scoremap
from coloc.caml import Evaluation, Run, attention_maps, upsample_maps
from coloc.data import collate_samples
from coloc.losses import background_mask
from coloc.metrics import CorLocEvaluator
from coloc.plots import grid, show_map
from coloc.ptap import normalize_attention, num_selected, pixelwise_topk_mean
from coloc.reference import CORLOC_COLUMNS, DATASET_COLUMNS, caml_table
from coloc.run import read_results, results_root

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


def corloc_beside(key: str, runs: Mapping[str, Run | Evaluation | None],
                  match: str = "method", why: str = "not run") -> pd.DataFrame:
    """A CorLoc table (Tables 3-6, supplement 1-2): published IoU columns beside the
    measured ones, row by row. ``runs`` maps the published row's ``match`` value to the
    run (or a test :class:`Evaluation` of one) that measures it; missing or None: "not
    run", with ``why``."""
    published = caml_table(key).frame()
    dataset = next((r.config.dataset for r in runs.values() if isinstance(r, Run)), "-")
    measured = []
    for value in published[match]:
        result = runs.get(value)
        if isinstance(result, Run):
            result = result.test
        measured.append(_round(result.corloc) if result is not None
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


# ----------------------------------------------------------------------------- ablations


@torch.no_grad()
def pooled_maps(model: torch.nn.Module, images: torch.Tensor,
                poolings: Mapping[str, tuple[float, bool]]) -> dict[str, torch.Tensor]:
    """CAML Figure 4: one trained model's ECA-weighted features ``F_w`` pooled several
    ways. ``poolings`` maps a label to ``(k_ratio, largest)`` (``(1.0, True)`` is the
    channel average, ``(0.3, False)`` bottom-30 %); returns upsampled ``[B, H, W]`` maps."""
    model.eval()
    weighted = model(images)["weighted"]
    channels = weighted.shape[1]
    return {label: upsample_maps(pixelwise_topk_mean(weighted, num_selected(channels, ratio),
                                                     largest), images.shape[-2:])
            for label, (ratio, largest) in poolings.items()}


def figure_poolings(maps: Mapping[str, torch.Tensor], batch: Mapping[str, Any],
                    threshold: float = 0.2, rule: str = "raw") -> plt.Figure:
    """CAML Figure 4: rows are poolings (:func:`pooled_maps`), columns images; GT boxes
    red, the CorLoc box green, its IoU in the title."""
    images = batch["image"]
    fig, axes = grid(len(maps), len(images), size=1.8)
    for row, (label, values) in enumerate(maps.items()):
        for col in range(len(images)):
            box = boxes_from_scoremap(values[col], threshold, rule=rule)
            gt = batch["boxes"][col]
            iou = float(box_iou(box[:1], gt).max())
            show_map(axes[row, col], images[col], values[col], gt, box,
                     title=f"{label}: IoU {iou:.2f}")
    fig.tight_layout()
    return fig


def _first_batches(dataset: Dataset, n: int, batch_size: int) -> Iterator[dict[str, Any]]:
    """The first ``n`` samples of ``dataset`` (all if fewer), collated ``batch_size`` at
    a time, in order."""
    n = min(n, len(dataset))
    for start in range(0, n, batch_size):
        yield collate_samples([dataset[i] for i in range(start, min(n, start + batch_size))])


@torch.no_grad()
def pooling_corloc(model: torch.nn.Module, dataset: Dataset,
                   poolings: Mapping[str, tuple[float, bool]], n: int = 200,
                   batch_size: int = 100) -> pd.DataFrame:
    """CAML Figure 4 in numbers: CorLoc of one model's maps under each pooling of
    :func:`pooled_maps`, over the first ``n`` images of ``dataset`` (the evaluator's
    defaults: threshold 0.2 of the max, largest contour)."""
    evaluators = {label: CorLocEvaluator() for label in poolings}
    for batch in _first_batches(dataset, n, batch_size):
        gt = [b.numpy() for b in batch["boxes"]]
        for label, maps in pooled_maps(model, batch["image"], poolings).items():
            evaluators[label].update(maps.numpy(), gt)
    rows = []
    for label, evaluator in evaluators.items():
        corloc = evaluator.compute()
        rows.append({"pooling": label,
                     **{f"CorLoc@{k}": round(v, 1) for k, v in corloc.items()}})
    return pd.DataFrame(rows)


@torch.no_grad()
def zero_channel_share(model: torch.nn.Module, dataset: Dataset, n: int = 200,
                       batch_size: int = 100) -> dict[str, float]:
    """How sparse the ECA-weighted features ``F_w`` are across channels, over the first
    ``n`` images: the mean share of channels that are exactly 0 at a pixel, and the
    share of pixels where at least 30 % are (there, top-70 % pooling is the channel
    average times ``C / k``: the two maps differ only by a constant)."""
    model.eval()
    zero, sparse = [], []
    for batch in _first_batches(dataset, n, batch_size):
        zeros = (model(batch["image"])["weighted"] == 0).float().mean(dim=1)
        zero.append(zeros.flatten())
        sparse.append((zeros >= 0.3).float().flatten())
    return {"zero channels per pixel (%)": 100 * float(torch.cat(zero).mean()),
            "pixels with >= 30 % zero channels (%)": 100 * float(torch.cat(sparse).mean())}


@torch.no_grad()
def background_share(model: torch.nn.Module, dataset: Dataset, thetas: Sequence[float],
                     headroom: float, n: int = 200, batch_size: int = 100) -> pd.DataFrame:
    """CAML Fig. 6 in numbers: per ``theta_bg``, the share of the map's pixels in
    ``M_bg`` (Eq. 3) and the share of the attention mass on the object (GT mask, pooled
    to the map's resolution) that ``M_bg`` keeps, i.e. the foreground left in the
    negative. Mean over the first ``n`` images of ``dataset``."""
    model.eval()
    pixels = {t: [] for t in thetas}
    kept = {t: [] for t in thetas}
    for batch in _first_batches(dataset, n, batch_size):
        a = normalize_attention(model(batch["image"])["attention"], headroom)
        on_object = torch.nn.functional.adaptive_avg_pool2d(
            batch["mask"].float()[:, None], a.shape[-2:])[:, 0]
        object_mass = (a * on_object).flatten(1).sum(1).clamp_min(1e-12)
        for theta in thetas:
            m = background_mask(a, theta).float()
            pixels[theta].append(m.flatten(1).mean(1))
            kept[theta].append((a * on_object * m).flatten(1).sum(1) / object_mass)
    return pd.DataFrame({
        "theta_bg": list(thetas),
        "pixels in M_bg (%)": [round(100 * float(torch.cat(pixels[t]).mean()), 1)
                               for t in thetas],
        "object attention kept in the negative (%)": [
            round(100 * float(torch.cat(kept[t]).mean()), 1) for t in thetas],
    })


@torch.no_grad()
def figure_background_masks(model: torch.nn.Module, batch: Mapping[str, Any],
                            thetas: Sequence[float], headroom: float) -> plt.Figure:
    """CAML Figure 6: for each image (row), the normalized map ``A`` and the negative
    ``A * M_bg`` (Eq. 3) for each ``theta_bg`` (columns), at feature resolution; GT box
    red on the input."""
    model.eval()
    a = normalize_attention(model(batch["image"])["attention"], headroom)
    vmax = float(a.max())
    fig, axes = grid(len(a), len(thetas) + 2, size=1.6)
    for row in range(len(a)):
        show_map(axes[row, 0], batch["image"][row], gt_boxes=batch["boxes"][row], title="x")
        _feature_map(axes[row, 1], a[row], "A", vmax)
        for col, theta in enumerate(thetas, start=2):
            mask = background_mask(a[row:row + 1], theta)[0]
            _feature_map(axes[row, col], a[row] * mask,
                         f"theta_bg {theta}: {100 * float(mask.float().mean()):.0f}% bg", vmax)
    fig.tight_layout()
    return fig


def figure_sweep(series: Mapping[str, Mapping[float, Run]], xlabel: str,
                 metric: str = "mean", baseline: Run | None = None,
                 xticklabels: Mapping[float, str] | None = None) -> plt.Figure:
    """CorLoc (``metric``: "mean" or an IoU such as "0.5") against a swept setting, one
    line per series (CAML supplement Figure 1, the theta_bg sweep of Sec. 4.2); the
    baseline, if given, as a horizontal line. With ``xticklabels`` the settings are
    evenly spaced categories with those labels."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    order = sorted(xticklabels) if xticklabels else None
    for label, runs in series.items():
        xs = sorted(runs)
        positions = [order.index(x) for x in xs] if order else xs
        ax.plot(positions, [runs[x].test.corloc[metric] for x in xs], "o-", label=label)
    if baseline is not None:
        ax.axhline(baseline.test.corloc[metric], color="gray", ls="--",
                   label="baseline (CAAM, L_cls)")
    if order:  # evenly spaced categories, e.g. max, 0.7, 1.0
        ax.set_xticks(range(len(order)), [xticklabels[x] for x in order])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"CorLoc {'mean' if metric == 'mean' else '@' + metric} (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def pretext_table(key: str, runs: Mapping[str, Mapping[str, Run]], dataset: str
                  ) -> pd.DataFrame:
    """CAML Table 7 / supplement Table 3 for one dataset: per pretext task, the published
    baseline and CAML CorLoc@0.5 (of ``dataset``, or of CUB for the synthetic benchmark)
    beside the measured ones and CAML's gain. ``runs``: ``{task: {"baseline": run,
    "ours": run}}``; a task without runs says "not run"."""
    published = caml_table(key).frame()
    source = dataset if dataset in DATASET_COLUMNS else "cub"
    published = published[published["dataset"] == source].set_index("task")
    rows = []
    for task in published.index:
        pair = runs.get(task, {})
        measured = {m: round(pair[m].test.corloc["0.5"], 2) if m in pair else "not run"
                    for m in ("baseline", "ours")}
        gain = (round(measured["ours"] - measured["baseline"], 2)
                if len(pair) == 2 else "-")
        rows.append({("", "task"): task,
                     (f"published ({source})", "baseline"): published.loc[task, "baseline"],
                     (f"published ({source})", "CAML"): published.loc[task, "ours"],
                     (f"published ({source})", "gain"): round(
                         published.loc[task, "ours"] - published.loc[task, "baseline"], 2),
                     (f"measured ({dataset})", "baseline"): measured["baseline"],
                     (f"measured ({dataset})", "CAML"): measured["ours"],
                     (f"measured ({dataset})", "gain"): gain})
    frame = pd.DataFrame(rows)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def figure_pretext_gains(runs: Mapping[str, Mapping[str, Run]], key: str = "table7",
                         source: str = "cub") -> plt.Figure:
    """CorLoc@0.5 per pretext task: measured baseline and CAML bars, with the published
    values of ``source`` (CUB by default) as markers."""
    published = caml_table(key).frame()
    published = published[published["dataset"] == source].set_index("task")
    tasks = [t for t in runs if len(runs[t]) == 2]
    x = np.arange(len(tasks))
    fig, ax = plt.subplots(figsize=(1.1 * len(tasks) + 2.5, 3.2))
    for offset, method, colour in ((-0.2, "baseline", "tab:gray"), (0.2, "ours", "tab:blue")):
        ax.bar(x + offset, [runs[t][method].test.corloc["0.5"] for t in tasks], 0.4,
               color=colour, label=f"measured {'CAML' if method == 'ours' else method}")
        known = np.array([t in published.index for t in tasks], dtype=bool)
        ax.plot((x + offset)[known], [published.loc[t, method] for t in np.array(tasks)[known]],
                "k^" if method == "ours" else "kv", ms=6,
                label=f"published {source} {'CAML' if method == 'ours' else method}")
    ax.set_xticks(x, tasks, rotation=20)
    ax.set_ylabel("CorLoc@0.5 (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


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


# ----------------------------------------------------------------------------- summary
# book/caml_summary: Tables 2 and 7 over every dataset with recorded runs, measured
# beside published. Runs are looked up by configuration, so the tables fill in as runs
# on cub, cars, aircraft and dogs complete.

SUMMARY_DATASETS = ("synthetic", *caml.CAML_DATASETS)
"""The summary's default columns: the synthetic benchmark and CAML's four datasets."""
TABLE7_PRETEXTS = caml.PRETEXTS[:6]
"""Table 7's six pretext tasks (:data:`coloc.transforms.TRANSFORMS`)."""
SUMMARY_METHODS = ("Baseline", "CAML")
"""The two methods of Tables 2 and 7: the PsyNet-style baseline
(:meth:`coloc.caml.CAMLConfig.baseline`, ``L_cls`` with CAAM) and the full method."""
NOT_RUN = "not run"
_PUBLISHED_COLUMN = {"Baseline": "baseline", "CAML": "ours"}
_RUN_FIELDS = ("pretext", "use_cls", "use_caml", "pooling")  # what a run's name says

SummaryKey = tuple[str, str, str]
"""``(dataset, pretext, method)``, e.g. ``("cub", "rotation", "CAML")``."""


@dataclass(frozen=True)
class SummaryCell:
    """One measured cell of the summary tables: the configuration a chapter trains by
    default for a dataset, pretext task and method, and its recorded run (None: not run)."""

    config: caml.CAMLConfig
    run: Run | None

    @property
    def corloc(self) -> float | None:
        """Test CorLoc@0.5 (%) of the run, or None when not run."""
        return None if self.run is None else float(self.run.test.corloc["0.5"])

    @property
    def value(self) -> float | str:
        """The table cell: CorLoc@0.5 rounded to two decimals, or "not run"."""
        return NOT_RUN if self.corloc is None else round(self.corloc, 2)


def summary_configs(datasets: Sequence[str] = SUMMARY_DATASETS,
                    pretexts: Sequence[str] = TABLE7_PRETEXTS,
                    **overrides: Any) -> dict[SummaryKey, caml.CAMLConfig]:
    """The configuration of every measured cell, ``(dataset, pretext, method)`` -> config:
    the run a chapter trains by default (:func:`coloc.caml.profile` of the dataset with
    ``overrides``, e.g. ``seed``; no data needed) with ``pretext``, and its baseline."""
    configs = {}
    for dataset in datasets:
        default = caml.profile(dataset, require_data=False, **overrides)
        for pretext in pretexts:
            ours = default.replace(pretext=pretext)
            configs[dataset, pretext, "Baseline"] = ours.baseline()
            configs[dataset, pretext, "CAML"] = ours
    return configs


def collect_summary(configs: Mapping[SummaryKey, caml.CAMLConfig],
                    output_dir: str | Path | None = None,
                    train: Sequence[str] = caml.SYNTHETIC) -> dict[SummaryKey, SummaryCell]:
    """The recorded run of every configuration under ``output_dir`` (default ``results/``).

    Datasets in ``train`` (default: the synthetic benchmarks, a minute per run on a CPU)
    are trained when missing (:func:`coloc.caml.run`), so the summary is complete and
    deterministic on its own; every other dataset is only looked up
    (:func:`coloc.caml.find_run`), never trained: its missing cells say "not run".
    """
    cells = {}
    for key, config in configs.items():
        found = caml.run(config, output_dir) if config.dataset in train \
            else caml.find_run(config, output_dir)
        cells[key] = SummaryCell(config, found)
    return cells


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
    """CAML Table 2 (CorLoc@0.5) over every dataset of ``cells``, in their order.

    The published rows, then the measured baseline and CAML of ``pretext`` (rotation: the
    chapters' default run), one column per dataset holding the number or "not run".
    Published cells of a dataset the paper does not have (synthetic) are "-".
    """
    datasets = _axis(cells, 0)
    frame = _published("table2")
    descriptive = [c for c in frame.columns if c not in DATASET_COLUMNS]
    for dataset in datasets:
        if dataset not in frame.columns:
            frame[dataset] = None
    rows = []
    for method in SUMMARY_METHODS:
        chosen = {d: cells[d, pretext, method] for d in datasets}
        label = f"Baseline (PsyNet-style, {pretext})" if method == "Baseline" \
            else f"CAML ({pretext})"
        rows.append({"source": MEASURED, "backbone": _backbone_label(list(chosen.values())),
                     "method": label, **{d: cell.value for d, cell in chosen.items()}})
    frame = frame[descriptive + datasets].astype(object)
    frame = frame.where(frame.notna(), "-")
    return _as_printed(pd.concat([frame, pd.DataFrame(rows)], ignore_index=True))


def published_corloc(pretext: str, dataset: str, method: str) -> float | None:
    """The published CorLoc@0.5 of ``method`` ("Baseline" or "CAML") with ``pretext`` on
    ``dataset``: CAML Table 7 (six tasks) or supplement Table 3 (R+S, S+T); None if the
    paper has no such number."""
    for key in ("table7", "supp_table3"):
        try:
            return caml_table(key).row(task=pretext, dataset=dataset)[_PUBLISHED_COLUMN[method]]
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
    return _as_printed(pd.DataFrame(columns, index=index))


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
                       resolution: float = 3.0, reference: str = "cub") -> str:
    """Per pretext task, is CAML above the baseline on ``dataset`` (measured) and in the
    paper (``dataset``, or ``reference`` for synthetic data), as one computed sentence.
    Gains under ``resolution`` points count as "within": one seed does not resolve them.
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
            parts.append(f"within {resolution:.0f} points on {within}")
        if below:
            parts.append(f"below on {len(below)} ({', '.join(below)})")
        return ", ".join(parts)

    measured = count({p: _gain(cells, dataset, p) for p in pretexts})
    published = count({p: _published_gain(source, p) for p in pretexts})
    return f"{dataset}: measured, {measured}; published ({source}), {published}."


def train_command(config: caml.CAMLConfig, data_root: str = "DATA") -> str:
    """The command that records the run of ``config``: the chapter that trains it
    (book/caml_rotation for rotation, book/caml_pretext for the other tasks), with ``-p``
    for the dataset, ``data_root`` (real data) and every setting that differs from the
    dataset's profile."""
    chapter = "caml_rotation" if config.pretext == "rotation" else "caml_pretext"
    params: list[tuple[str, Any]] = [("dataset", config.dataset)]
    if config.dataset not in caml.SYNTHETIC:
        params.append(("data_root", data_root))
    default = caml.profile(config.dataset, require_data=False).replace(
        **{name: getattr(config, name) for name in _RUN_FIELDS})
    params += [(k, v) for k, v in _differences(config.identity(), default.identity())
               if k != "pretraining"]
    options = " ".join(f"-p {k} {v}" for k, v in params)
    return f"papermill book/{chapter}.ipynb {chapter}-{config.dataset}.ipynb {options}"


def missing_runs(cells: Mapping[SummaryKey, SummaryCell], data_root: str = "DATA"
                 ) -> pd.DataFrame:
    """The "not run" cells grouped by the command that records them: dataset, pretext
    tasks, number of runs and command (:func:`train_command`), one row per command."""
    groups: dict[str, list[SummaryCell]] = {}
    for cell in cells.values():
        if cell.run is None:
            groups.setdefault(train_command(cell.config, data_root), []).append(cell)
    rows = [{"dataset": group[0].config.dataset,
             "pretext tasks": ", ".join(dict.fromkeys(c.config.pretext for c in group)),
             "runs": len(group), "command": command} for command, group in groups.items()]
    return pd.DataFrame(rows, columns=["dataset", "pretext tasks", "runs", "command"])


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


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _differences(recorded: Mapping[str, Any], default: Mapping[str, Any]
                 ) -> list[tuple[str, Any]]:
    """``(field, recorded value)`` for every configuration field that differs (JSON-wise,
    so tuples equal lists), in ``default``'s order; a field one side lacks differs."""
    recorded, default = _plain(dict(recorded)), _plain(dict(default))
    keys = list(dict.fromkeys([*default, *recorded]))
    return [(k, recorded.get(k, "<absent>")) for k in keys
            if recorded.get(k, "<absent>") != default.get(k, "<absent>")]


def _describe(record: Mapping[str, Any], overrides: Mapping[str, Any]) -> str:
    config = record.get("config", {})
    try:
        default = caml.profile(config["dataset"], require_data=False, **overrides).replace(
            **{name: config[name] for name in _RUN_FIELDS if name in config})
    except (KeyError, TypeError, ValueError) as err:
        return f"cannot compare: {err}"
    parts = [f"{k}={v}" for k, v in _differences(config, default.identity())]
    if record.get("version") != __version__:
        parts.append(f"recorded by coloc {record.get('version')}")
    return ", ".join(parts) or "none"


def other_runs(cells: Mapping[SummaryKey, SummaryCell], output_dir: str | Path | None = None,
               **overrides: Any) -> pd.DataFrame:
    """Every run folder under ``<output_dir>/caml`` that is not a cell of ``cells``.

    One row per folder: dataset, folder name (method, pretext task, configuration hash),
    the fields in which its configuration differs from the default run of its dataset,
    method and pretext task (:func:`coloc.caml.profile` with ``overrides``; "none" when
    it is that default run, e.g. of a dataset the summary does not show), and test
    CorLoc@0.5; a folder without results says so (training, or interrupted).
    """
    shown = {c.run.directory.resolve() for c in cells.values() if c.run is not None}
    root = results_root(output_dir) / "caml"
    columns = ["dataset", "run", "differs from the default in", "CorLoc@0.5"]
    rows = []
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        if folder.resolve() in shown:
            continue
        path = folder / caml.RESULTS_FILE
        if not path.is_file():
            rows.append([folder.parent.name, folder.name, "-",
                         "no results yet (training or interrupted)"])
            continue
        record = read_results(path)
        rows.append([folder.parent.name, folder.name, _describe(record, overrides),
                     round(float(record["metrics"]["test"]["corloc"]["0.5"]), 2)])
    return pd.DataFrame(rows, columns=columns)
