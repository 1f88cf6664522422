"""Tables and figures of the CAML chapters, built from runs (:mod:`coloc.caml.method`).

Tables set measured rows beside the published ones (:mod:`coloc.reference.caml`); a
measured cell this run could not fill says "not run" and why. Figures are drawn from real
tensors of the runs: inputs, transformed inputs, attention maps, masks and boxes. What
every paper's chapters share (published beside measured, maps of runs, curves,
sentences) is :mod:`coloc.report`; Tables 2 and 7 over every dataset are
:mod:`coloc.caml.summary`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from coloc.boxes import box_iou, boxes_from_scoremap
from coloc.caml.losses import background_mask
from coloc.caml.ptap import normalize_attention, num_selected, pixelwise_topk_mean
from coloc.maps import upsample_maps
from coloc.metrics import CorLocEvaluator
from coloc.plots import grid, show_map
from coloc.reference import caml as reference
from coloc.reference.caml import DATASET_COLUMNS
from coloc.report import MEASURED, as_printed, feature_map, first_batches, published, rounded
from coloc.runs import Run

NOT_RUN_DATASET = "not run: other dataset"
"""A measured cell of another dataset: a notebook run trains one dataset; the summary
chapter gathers every dataset's recorded runs."""


def table2(runs: Mapping[str, Run], dataset: str) -> pd.DataFrame:
    """CAML Table 2 (CorLoc@0.5) with this run's baseline and CAML rows.

    ``runs``: ``{"Baseline": run, "CAML": run}`` (row label -> run). The measured value
    goes into the run's dataset column (a new column for the synthetic benchmark); the
    other datasets' cells say "not run: other dataset" and, unless the run used it, the
    SE-ResNet50 rows "not run: backbone is <backbone>".
    """
    frame = published(reference.table("table2"))
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
    return as_printed(pd.concat([frame, pd.DataFrame(rows)], ignore_index=True).fillna("-"))


def table1(runs: Mapping[str, Run], dataset: str) -> pd.DataFrame:
    """CAML Table 1 (MaxBoxAccV2 at IoU 0.3/0.5/0.7 and mean) with measured rows."""
    frame = published(reference.table("table1"))
    frame.insert(1, "dataset", "cub")
    rows = [{"source": MEASURED, "dataset": dataset, "method": label,
             "supervision": "none", **rounded(result.test.max_box_acc_v2)}
            for label, result in runs.items()]
    return as_printed(pd.concat([frame, pd.DataFrame(rows)], ignore_index=True).fillna("-"))


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



# ----------------------------------------------------------------------------- figures


def figure_framework(views: Mapping[str, torch.Tensor], i: int = 0) -> plt.Figure:
    """CAML Figure 1: two views of one image and their attention maps."""
    fig, axes = grid(1, 4, size=2.2)
    vmax = float(max(views["A_ori"][i].max(), views["A_trans"][i].max()))
    show_map(axes[0, 0], views["image"][i], title="x (original view)")
    show_map(axes[0, 1], views["transformed"][i], title="T(x) (transformed view)")
    feature_map(axes[0, 2], views["A_ori"][i], "A_ori", vmax)
    feature_map(axes[0, 3], views["A_trans"][i], "A_trans", vmax)
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
    feature_map(axes[0, 1], views["A_ori"][i], "positive: A_ori", vmax)
    feature_map(axes[0, 2], views["A_trans2ori"][i],
                 "anchor: T^-1(A_trans)" + d.get("ori", ""), vmax)
    feature_map(axes[0, 3], views["M_bg_ori"][i].float(), "M_bg(A_ori)", 1.0, "gray")
    feature_map(axes[0, 4], views["A_ori2bg"][i], "negative: A_ori2bg", vmax)
    show_map(axes[1, 0], views["transformed"][i], title="T(x)")
    feature_map(axes[1, 1], views["A_trans"][i], "positive: A_trans", vmax)
    feature_map(axes[1, 2], views["A_ori2trans"][i],
                 "anchor: T(A_ori)" + d.get("trans", ""), vmax)
    feature_map(axes[1, 3], views["M_bg_trans"][i].float(), "M_bg(A_trans)", 1.0, "gray")
    feature_map(axes[1, 4], views["A_trans2bg"][i], "negative: A_trans2bg", vmax)
    fig.tight_layout()
    return fig



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


@torch.no_grad()
def pooling_corloc(model: torch.nn.Module, dataset: Dataset,
                   poolings: Mapping[str, tuple[float, bool]], n: int = 200,
                   batch_size: int = 100) -> pd.DataFrame:
    """CAML Figure 4 in numbers: CorLoc of one model's maps under each pooling of
    :func:`pooled_maps`, over the first ``n`` images of ``dataset`` (the evaluator's
    defaults: threshold 0.2 of the max, largest contour)."""
    evaluators = {label: CorLocEvaluator() for label in poolings}
    for batch in first_batches(dataset, n, batch_size):
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
    for batch in first_batches(dataset, n, batch_size):
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
    for batch in first_batches(dataset, n, batch_size):
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
        feature_map(axes[row, 1], a[row], "A", vmax)
        for col, theta in enumerate(thetas, start=2):
            mask = background_mask(a[row:row + 1], theta)[0]
            feature_map(axes[row, col], a[row] * mask,
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
    published = reference.table(key).frame()
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
    published = reference.table(key).frame()
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

