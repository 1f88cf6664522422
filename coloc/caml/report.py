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
from dataclasses import dataclass
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
from coloc.plots import grid, score_colorbar, show_map
from coloc.reference import caml as reference
from coloc.reference.caml import DATASET_COLUMNS
from coloc.report import (
    MEASURED,
    Claim,
    as_printed,
    box_size_ratio,
    feature_map,
    first_batches,
    published,
    rounded,
)
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
    image = feature_map(axes[0, 3], views["A_trans"][i], "A_trans", vmax)
    fig.tight_layout()
    fig.colorbar(image, ax=axes[0, 2:], shrink=0.8, label="attention (peak-normalized)")
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
    image = feature_map(axes[1, 4], views["A_trans2bg"][i], "negative: A_trans2bg", vmax)
    fig.tight_layout()
    fig.colorbar(image, ax=axes[:, 1:], shrink=0.6, label="attention (peak-normalized)")
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
    score_colorbar(fig, axes)
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
            image = feature_map(axes[row, col], a[row] * mask,
                                f"theta_bg {theta}: {100 * float(mask.float().mean()):.0f}% bg",
                                vmax)
    fig.tight_layout()
    fig.colorbar(image, ax=axes[:, 1:].ravel().tolist(), shrink=0.5,
                 label="attention (peak-normalized)")
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
    """What rotation training did to the maps, from :func:`coloc.report.map_statistics`
    rows (stand-in weights first, then the trained models), as computed sentences: the
    paper's premise is that rotation training moves mass off the object."""
    first, rest = stats.iloc[0], stats.iloc[1:]
    outside = "mass outside the object (%)"
    moves = ", ".join(f"{r['maps of']} {r['CorLoc@0.5 (%)']:.1f} %" for _, r in rest.iterrows())
    areas = ", ".join(f"{r['image above 0.2 of max (%)']:.1f} %" for _, r in rest.iterrows())
    shifts = {r["maps of"]: r[outside] - first[outside] for _, r in rest.iterrows()}
    moved = ", ".join(f"{label} {shift:+.1f} points" for label, shift in shifts.items())
    smear = next(iter(shifts.values()))  # the first trained model: the baseline
    reading = ("more than 2 points: rotation training smears the baseline's maps, the "
               "paper's premise" if smear > 2 else
               "no more than 2 points: rotation training does not smear the baseline's maps "
               "here, so the paper's premise does not show on this benchmark, and what "
               "CAML changes is how concentrated its maps are, not a smear it undoes")
    return (f"Rotation training took CorLoc@0.5 from {first['CorLoc@0.5 (%)']:.1f} % "
            f"(stand-in weights) to {moves}; the share of the image above the CorLoc "
            f"threshold went from {first['image above 0.2 of max (%)']:.1f} % to {areas} "
            f"(the object covers {first['object share of image (%)']:.1f} %). The share of "
            f"the maps' mass outside the object was {first[outside]:.1f} % before rotation "
            f"training and moved by {moved}; the baseline's shift is {reading}.")


def threshold_sentence(curves: Mapping[str, Mapping[str, np.ndarray]]) -> str:
    """What :func:`coloc.report.threshold_curves` shows, as computed sentences: each
    method's one-box accuracy at CorLoc's 0.2 and at its own best threshold."""
    thresholds = np.arange(0, 1, 0.01)
    parts = []
    for label, modes in curves.items():
        one = modes["one box"]
        best = int(np.argmax(one))
        parts.append(f"{label} {one[20]:.1f} % at 0.2 and {one[best]:.1f} % at its best "
                     f"threshold {thresholds[best]:.2f}")
    gaps = {label: float(modes["one box"][20]) for label, modes in curves.items()}
    bests = {label: float(modes["one box"].max()) for label, modes in curves.items()}
    (a, b) = list(curves)[:2]
    fixed, own = gaps[b] - gaps[a], bests[b] - bests[a]
    reading = (f"MaxBoxAccV2 chooses each method's best threshold, so it credits {a} with the "
               "boxes a stricter threshold gives it: more than half of the lead at the fixed "
               "threshold is where the threshold falls for each method, not better maps"
               if own < fixed / 2 else
               f"{b}'s lead mostly survives each method's best threshold: its maps are better, "
               "not only better suited to the fixed threshold")
    return (f"One box per image at IoU 0.5: {'; '.join(parts)}. At CorLoc's fixed threshold "
            f"{b} leads by {fixed:.1f} points; each at its own best threshold, by {own:.1f}. "
            f"{reading}.")


@dataclass(frozen=True)
class ValidationChoice:
    """A design choice made on the validation split: the table it rests on and the
    sentence that states it."""

    table: pd.DataFrame
    sentence: str
    chosen: str


def validation_choice(runs: Mapping[str, Run], metric: str = "corloc@0.5") -> ValidationChoice:
    """Choose among ``runs`` (same method, one setting varied) by validation ``metric``
    after the last epoch; test numbers are not looked at. The table adds each run's share
    of open hinges in the last epoch."""
    rows = []
    for label, result in runs.items():
        losses = result.curves["epoch_losses"]
        rows.append({"setting": label,
                     f"val {metric.replace('corloc', 'CorLoc')} (%)":
                         round(result.curves["val"][-1][metric], 2),
                     "val CorLoc mean (%)": round(result.curves["val"][-1]["corloc@mean"], 2),
                     "hinge open (last epoch)": round(losses["hinge_active"][-1], 3)
                     if "hinge_active" in losses else "-"})
    table = pd.DataFrame(rows)
    scores = {label: r.curves["val"][-1][metric] for label, r in runs.items()}
    chosen = max(scores, key=scores.get)
    others = ", ".join(f"{label} {score:.1f} %" for label, score in scores.items()
                       if label != chosen)
    sentence = (f"On the validation split, {chosen} reaches {scores[chosen]:.1f} % "
                f"{metric.replace('corloc', 'CorLoc')} against {others}, so {chosen} is "
                "the setting kept (the test split was not consulted).")
    return ValidationChoice(table, sentence, chosen)


def validation_sentence(runs: Mapping[str, Run], metric: str = "corloc@0.5") -> str:
    """Each run's validation ``metric`` at its best epoch and at the last, as one
    computed sentence (is the reported last epoch near the peak?)."""
    parts = []
    for label, result in runs.items():
        values = [epoch[metric] for epoch in result.curves["val"]]
        best = int(np.argmax(values))
        parts.append(f"{label} peaks at {values[best]:.1f} % after epoch {best + 1} and ends "
                     f"at {values[-1]:.1f} %")
    return f"Validation {metric.replace('corloc', 'CorLoc')}: {'; '.join(parts)}."


def failure_sentence(result: Run, dataset: Dataset, indices: Sequence[int]) -> str:
    """Whether the worst boxes of ``result`` (``indices``) miss the object or are too
    large, from their IoU and their area over the GT box's, as one computed sentence."""
    evaluation = result.test
    ious = np.array([evaluation.ious[np.flatnonzero(evaluation.indices == i)[0]]
                     for i in indices])
    ratios = box_size_ratio(result, dataset, indices)
    misses = int((ious == 0).sum())
    larger = int((ratios[ious > 0] > 1).sum())
    verdict = ("mostly misses: the map sits on a distractor or the ground, unlike the "
               "paper's too-large boxes" if misses > len(indices) / 2 else
               "mostly boxes that overlap the object, as in the paper")
    counted = (f"all {misses} miss the object entirely (IoU 0)" if misses == len(indices)
               else f"{misses} miss the object entirely (IoU 0) and {larger} of the other "
                    f"{len(indices) - misses} are larger than it")
    return f"Of the {len(indices)} worst boxes, {counted}: CAML's failures here are {verdict}."


def pretext_claims(runs: Mapping[str, Mapping[str, Run]], dataset: str, resolution: float
                   ) -> list[Claim]:
    """Table 7's claims for one dataset (CUB's published numbers on the synthetic
    benchmark): CAML beats the baseline on each task (CorLoc@0.5), and CAML evens out the
    tasks (the baseline's spread over tasks, max minus min, minus CAML's). ``runs``:
    ``{task: {"baseline": run, "ours": run}}``."""
    source = dataset if dataset in DATASET_COLUMNS else "cub"
    table = reference.table("table7")
    published = {task: table.row(task=task, dataset=source) for task in runs}
    measured = {task: {m: pair[m].test.corloc["0.5"] for m in ("baseline", "ours")}
                for task, pair in runs.items()}
    claims = [Claim("CAML", f"Table 7 ({task}, {source})", f"CAML beats the baseline ({task})",
                    round(published[task]["ours"] - published[task]["baseline"], 2),
                    round(measured[task]["ours"] - measured[task]["baseline"], 2), resolution)
              for task in runs]

    def spread(values: Mapping[str, Mapping[str, float]], method: str) -> float:
        column = [v[method] for v in values.values()]
        return max(column) - min(column)

    claims.append(Claim(
        "CAML", f"Table 7 ({source})", "CAML evens out the tasks (smaller spread over tasks)",
        round(spread(published, "baseline") - spread(published, "ours"), 2),
        round(spread(measured, "baseline") - spread(measured, "ours"), 2), resolution))
    return claims


# ----------------------------------------------------------------------------- claims

TABLE3_CLAIMS = {
    "Baseline": "CAML beats the PsyNet-style baseline",
    "- L_cls": "L_cls helps: CAML beats CAML without it",
    "- L_caml": "L_caml helps: CAML beats CAML without it",
    "- A_PTAP": "PTAP helps: CAML beats CAML with CAAM pooling",
}
"""Table 3's comparative claims, by the row CAML ("Ours") is compared with."""


def table_claims(key: str, match: str, ours_value: Any, ours: Run,
                 others: Mapping[Any, tuple[str, Any]], resolution: float) -> list[Claim]:
    """Claims of one published CorLoc table (``reference.table(key)``): CAML (the row
    whose ``match`` column is ``ours_value``, measured by ``ours``) beats each row of
    ``others`` (``{row value: (claim, run or Evaluation or None)}``) in CorLoc mean;
    published effect from the table, measured from the runs."""
    table = reference.table(key)
    where = key.replace("supp_table", "Supplement Table ").replace("table", "Table ")
    published_ours = table.row(**{match: ours_value})["mean"]
    claims = []
    for value, (claim, other) in others.items():
        result = other.test if isinstance(other, Run) else other
        measured = None if result is None else round(
            ours.test.corloc["mean"] - result.corloc["mean"], 2)
        claims.append(Claim("CAML", where, claim,
                            round(published_ours - table.row(**{match: value})["mean"], 2),
                            measured, resolution, "CorLoc mean"))
    return claims


def rotation_claims(runs: Mapping[str, Run], by_seed: Mapping[str, Sequence[Run]],
                    resolution: Mapping[str, float]) -> list[Claim]:
    """The rotation chapter's claims: Table 7's rotation row on CUB (CorLoc@0.5, CAML
    minus baseline, measured as the mean over ``by_seed``) and Table 3's four comparisons
    (:data:`TABLE3_CLAIMS`, CorLoc mean as the paper's text reads them, measured on the
    seed of ``runs``; a row not trained is "not run"). ``resolution``: per metric key
    ("0.5", "mean"), from :func:`coloc.report.seed_resolution`."""
    table7 = reference.table("table7").row(task="rotation", dataset="cub")
    means = {label: float(np.mean([r.test.corloc["0.5"] for r in seeds]))
             for label, seeds in by_seed.items()}
    claims = [Claim("CAML", "Table 7 (rotation, CUB)", "CAML beats the PsyNet-style baseline",
                    round(table7["ours"] - table7["baseline"], 2),
                    round(means["CAML"] - means["Baseline"], 2), resolution["0.5"],
                    "CorLoc@0.5")]
    others = {row: (claim, runs.get(row)) for row, claim in TABLE3_CLAIMS.items()}
    return claims + table_claims("table3", "method", "Ours", runs["CAML"], others,
                                 resolution["mean"])
